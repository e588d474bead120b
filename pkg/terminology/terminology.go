package terminology

import (
	"bytes"
	"compress/gzip"
	_ "embed"
	"io"
	"strings"
	"sync"
)

// Canonical URIs of the code systems phr meets most.
const (
	LOINC      = "http://loinc.org"
	SNOMED     = "http://snomed.info/sct"
	RxNorm     = "http://www.nlm.nih.gov/research/umls/rxnorm"
	CVX        = "http://hl7.org/fhir/sid/cvx"
	UCUMSystem = "http://unitsofmeasure.org"
	NullFlavor = "http://terminology.hl7.org/CodeSystem/v3-NullFlavor"
	// DataAbsentReason is FHIR's code system for why a value is missing.
	DataAbsentReason = "http://terminology.hl7.org/CodeSystem/data-absent-reason"
)

//go:embed data/names.tsv.gz
var namesGz []byte

// table holds the names; systemAliases and knownSystems
// (systems_gen.go) are small and need no loading.
type table struct {
	names map[string]map[string]string // system -> code -> display
}

var (
	loadOnce sync.Once
	tbl      table
)

func load() {
	zr, err := gzip.NewReader(bytes.NewReader(namesGz))
	if err != nil {
		panic("terminology: embedded data: " + err.Error())
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		panic("terminology: embedded data: " + err.Error())
	}
	// Strings below are substrings of one string: no copy per entry.
	data := string(raw)
	tbl = table{names: make(map[string]map[string]string, len(knownSystems))}
	var cur map[string]string
	for len(data) > 0 {
		line := data
		if i := strings.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			data = ""
		}
		if line == "" {
			continue
		}
		switch line[0] {
		case '#':
			cur = map[string]string{}
			tbl.names[line[1:]] = cur
		default:
			if code, disp, ok := strings.Cut(line, "\t"); ok && cur != nil {
				cur[code] = disp
			}
		}
	}
}

// System returns the canonical URI of a code system named by an alias: an
// OID ("2.16.840.1.113883.6.1"), "urn:oid:" and an OID, an older URI, or
// the canonical URI with a trailing slash or "https". Other names come
// back unchanged.
func System(s string) string {
	if knownSystems[s] {
		return s // the common case
	}
	if c, ok := systemAliases[s]; ok {
		return c
	}
	if oid, ok := strings.CutPrefix(s, "urn:oid:"); ok {
		if c, ok := systemAliases[oid]; ok {
			return c
		}
	}
	t := strings.TrimSuffix(s, "/")
	if rest, ok := strings.CutPrefix(t, "https://"); ok {
		t = "http://" + rest
	}
	if t != s {
		if knownSystems[t] {
			return t
		}
		if c, ok := systemAliases[t]; ok {
			return c
		}
	}
	return s
}

// Display returns the published name of code in system, and whether there
// is one. system may be any name System accepts.
func Display(system, code string) (string, bool) {
	if code == "" {
		return "", false
	}
	sys := System(system)
	if !knownSystems[sys] || sys == UCUMSystem {
		return "", false // without loading the table: a local system
	}
	loadOnce.Do(load)
	d, ok := tbl.names[sys][code]
	return d, ok
}

// Names returns every code of system that Display names, with its name,
// in a new map the caller may change; nil when the table has no names in
// system. system may be any name System accepts. It is for generators that
// carry the names to other places (the viewer's CVX table), so that they
// say what Display says.
func Names(system string) map[string]string {
	sys := System(system)
	if !knownSystems[sys] || sys == UCUMSystem {
		return nil
	}
	loadOnce.Do(load)
	m := tbl.names[sys]
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]string, len(m))
	for c, d := range m {
		out[c] = d
	}
	return out
}

// Name returns a short human name of a code system ("SNOMED CT", "LOINC"),
// or "" for systems it does not know.
func Name(system string) string {
	switch System(system) {
	case LOINC:
		return "LOINC"
	case SNOMED:
		return "SNOMED CT"
	case RxNorm:
		return "RxNorm"
	case CVX:
		return "CVX"
	case UCUMSystem:
		return "UCUM"
	}
	return ""
}
