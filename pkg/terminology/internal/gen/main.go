// Command gen writes the terminology data that package terminology embeds.
// It is run by `go generate ./pkg/terminology` (never by tests or CI) and
// needs npm and the npm registry:
//
//   - it downloads the pinned packages below with `npm pack` into a
//     temporary directory and checks each tarball's SHA-512 against the
//     pinned integrity, so a run either reproduces the committed data or
//     fails;
//   - it reads the code systems, value sets and profiles it needs straight
//     from the tarballs, plus two extracts beside this file that stand in
//     for sources not published on the npm registry (see their headers):
//     uscore-3.1.1.tsv (US Core 3.1.1) and cvx-cdc-20251031.tsv (the CDC's
//     CVX table of 2025-10-31);
//   - it writes ../../data/names.tsv.gz, ../../data/ucum-common.txt,
//     ../../systems_gen.go and ../../ucum_atoms.go.
//
// docs/dependencies.md says what each source is and its licence.
package main

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"go/format"
	"io"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
)

// pkg is one npm package at a pinned version.
type pkg struct {
	name, version, integrity, tarball string
}

var packages = []pkg{
	{"hl7.terminology.r4", "7.0.1", "sha512-UamZUcARk/TEaJb7X0hDyANmC7bCv0Jof0u0uGIOB2O9VQX0uV45Vf4EyONHM6Sejv6q7sXEAzKAQsgw1Cld3A==", "hl7.terminology.r4-7.0.1.tgz"},
	{"hl7.fhir.uv.ips", "2.0.0", "sha512-4PWToJ9b1FgXsm9DIvHiU6HO9Z5m75jxk0e0MXOmhFlf2m2slk/d6RoiSYIChKJlvmtJ7GbRftt7PphlwmZcbQ==", "hl7.fhir.uv.ips-2.0.0.tgz"},
	{"@lhncbc/ucum-lhc", "7.1.10", "sha512-70X5VSaO0M6YDbj+rEfaMX5Vm0YJeNFYTVOQ5vXWCffOEdH1YZUdiuTKRKx8eYBHLGTecFrVnsnhPjT8KTiJeQ==", "lhncbc-ucum-lhc-7.1.10.tgz"},
}

// Canonical URIs of the external code systems.
const (
	loinc  = "http://loinc.org"
	snomed = "http://snomed.info/sct"
	rxnorm = "http://www.nlm.nih.gov/research/umls/rxnorm"
	cvx    = "http://hl7.org/fhir/sid/cvx"
	ucum   = "http://unitsofmeasure.org"
)

// thoCodeSystems are the HL7 code systems (hl7.terminology.r4) whose
// codes appear in clinical records: statuses, categories, reasons,
// encounter classes, interpretations, routes, roles, null flavors.
var thoCodeSystems = []string{
	"condition-clinical", "condition-ver-status", "condition-category",
	"allergyintolerance-clinical", "allergyintolerance-verification",
	"observation-category", "v3-ObservationInterpretation", "v3-ActCode",
	"v3-NullFlavor", "data-absent-reason", "list-empty-reason", "v3-ActReason",
	"v3-RouteOfAdministration", "v2-0074", "v3-ActPriority",
	"medicationrequest-category", "immunization-origin", "immunization-funding-source",
	"v3-ParticipationType", "v2-0203", "v2-0131", "v3-MaritalStatus",
	"v3-AdministrativeGender", "v3-RoleCode", "dose-rate-type", "reason-medication-given",
	"v3-ActStatus", "v3-ActClass", "v3-Confidentiality", "v3-ActSite",
	"v3-substanceAdminSubstitution", "v3-TargetAwareness", "discharge-disposition",
	"admit-source", "consentcategorycodes",
	"goal-achievement", "claim-type", "processpriority", "claiminformationcategory",
	"ex-diagnosistype", "v2-0360", "library-type",
}

// externalNamingSystems give the OIDs and older URIs of the external
// systems (hl7.terminology.r4 NamingSystem resources).
var externalNamingSystems = []string{"v3-loinc", "v3-snomed-CT", "v3-rxNorm", "CVX", "v3-ucum"}

func main() {
	log.SetFlags(0)
	cache := flag.String("cache", "", "directory holding the tarballs already (skips npm pack)")
	flag.Parse()
	dir := *cache
	if dir == "" {
		tmp, err := os.MkdirTemp("", "phr-terminology-")
		if err != nil {
			log.Fatal(err)
		}
		defer os.RemoveAll(tmp)
		dir = tmp
		for _, p := range packages {
			cmd := exec.Command("npm", "pack", "--silent", p.name+"@"+p.version, "--pack-destination", dir)
			cmd.Stderr = os.Stderr
			if out, err := cmd.Output(); err != nil {
				log.Fatalf("npm pack %s@%s: %v (%s)", p.name, p.version, err, out)
			}
		}
	}
	files := map[string]map[string][]byte{}
	for _, p := range packages {
		b, err := os.ReadFile(filepath.Join(dir, p.tarball))
		if err != nil {
			log.Fatal(err)
		}
		sum := sha512.Sum512(b)
		if got := "sha512-" + base64.StdEncoding.EncodeToString(sum[:]); got != p.integrity {
			log.Fatalf("%s: integrity %s, pinned %s", p.tarball, got, p.integrity)
		}
		if files[p.name], err = untar(b); err != nil {
			log.Fatalf("%s: %v", p.tarball, err)
		}
	}

	n := newNames()
	tho, ips := files["hl7.terminology.r4"], files["hl7.fhir.uv.ips"]

	// 1. HL7 code systems, with their OIDs as aliases.
	for _, cs := range thoCodeSystems {
		var r struct {
			URL        string `json:"url"`
			Identifier []struct {
				Value string `json:"value"`
			} `json:"identifier"`
			Concept []concept `json:"concept"`
		}
		mustJSON(tho, "package/CodeSystem-"+cs+".json", &r)
		for _, id := range r.Identifier {
			if oid, ok := strings.CutPrefix(id.Value, "urn:oid:"); ok {
				n.alias(oid, r.URL)
			}
		}
		n.addConcepts(r.URL, r.Concept)
	}
	for _, ns := range externalNamingSystems {
		var r struct {
			UniqueID []struct {
				Type      string `json:"type"`
				Value     string `json:"value"`
				Preferred bool   `json:"preferred"`
			} `json:"uniqueId"`
		}
		mustJSON(tho, "package/NamingSystem-"+ns+".json", &r)
		canon := ""
		for _, u := range r.UniqueID {
			if u.Type == "uri" && u.Preferred {
				canon = u.Value
			}
		}
		for _, u := range r.UniqueID {
			if u.Value != canon && (u.Type == "oid" || u.Type == "uri") {
				n.alias(u.Value, canon)
			}
		}
	}

	// 2. SNOMED CT: the Global Patient Set, fully specified names without
	// their semantic tag.
	var gps valueSet
	mustJSON(tho, "package/ValueSet-snomed-intl-gps.json", &gps)
	for _, inc := range gps.Compose.Include {
		for _, c := range inc.Concept {
			n.add(snomed, c.Code, stripTag(c.Display), "gps")
		}
	}

	// 2a. CVX: the CDC's table (cvx-cdc-20251031.tsv beside this file), before
	// every other source of CVX names, so that the CDC's current name wins
	// over the older ones of US Core 3.1.1 and the IPS examples.
	if err := readTSV(cvxFile, 2, func(cols []string) { n.add(cvx, cols[0], cols[1], "cdc") }); err != nil {
		log.Fatal(err)
	}

	// 3. IPS: enumerated value sets.
	for _, name := range sortedKeys(ips) {
		base := strings.TrimPrefix(name, "package/")
		switch {
		case strings.HasPrefix(base, "ValueSet-"):
			var vs valueSet
			mustJSON(ips, name, &vs)
			for _, inc := range vs.Compose.Include {
				for _, c := range inc.Concept {
					n.add(inc.System, c.Code, c.Display, "ips")
				}
			}
		}
	}
	// 4. US Core 3.1.1 value sets (CVX codes the CDC table lacks, RxNorm
	// allergy substances, LOINC).
	if err := readTSV("internal/gen/uscore-3.1.1.tsv", 4, func(cols []string) { n.add(cols[0], cols[1], cols[2], "uscore") }); err != nil {
		log.Fatal(err)
	}

	// 5. Codings fixed by the IPS profiles and used in its examples, last:
	// LOINC section codes and answers, CVX and RxNorm codes no value set
	// above enumerates.
	for _, name := range sortedKeys(ips) {
		base := strings.TrimPrefix(name, "package/")
		if strings.HasPrefix(base, "StructureDefinition-") || strings.HasPrefix(base, "example/") {
			var v any
			mustJSON(ips, name, &v)
			walkCodings(v, func(system, code, display string) {
				if system == loinc || system == cvx || system == rxnorm {
					n.add(system, code, display, "ips")
				}
			})
		}
	}

	if err := n.write("data/names.tsv.gz"); err != nil {
		log.Fatal(err)
	}
	if err := n.writeSystems("systems_gen.go"); err != nil {
		log.Fatal(err)
	}

	// UCUM: the atoms and prefixes of the UCUM table, and THO's common
	// units (see UCUM's rule for case-insensitive readings).
	if err := writeUCUM(files["@lhncbc/ucum-lhc"], "ucum_atoms.go"); err != nil {
		log.Fatal(err)
	}
	var common valueSet
	mustJSON(tho, "package/ValueSet-ucum-common.json", &common)
	var sb strings.Builder
	sb.WriteString("# UCUM codes of the value set ucum-common (hl7.terminology.r4 7.0.1), written by internal/gen.\n")
	for _, inc := range common.Compose.Include {
		for _, c := range inc.Concept {
			sb.WriteString(c.Code + "\n")
		}
	}
	if err := os.WriteFile("data/ucum-common.txt", []byte(sb.String()), 0o644); err != nil {
		log.Fatal(err)
	}
	for _, s := range n.order {
		log.Printf("%s: %d codes", s, len(n.bySystem[s]))
	}
}

// cvxFile is the CDC's CVX table (see its header for where it comes from).
const cvxFile = "internal/gen/cvx-cdc-20251031.tsv"

// readTSV calls fn with the columns of each line of a tab-separated file
// that is neither empty nor a "#" comment; every such line must have ncols
// columns.
func readTSV(path string, ncols int, fn func(cols []string)) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		text := sc.Text()
		if text == "" || text[0] == '#' {
			continue
		}
		cols := strings.Split(text, "\t")
		if len(cols) != ncols {
			return fmt.Errorf("%s:%d: %d columns, want %d", path, line, len(cols), ncols)
		}
		fn(cols)
	}
	return sc.Err()
}

type concept struct {
	Code    string    `json:"code"`
	Display string    `json:"display"`
	Concept []concept `json:"concept"`
}

type valueSet struct {
	Compose struct {
		Include []struct {
			System  string    `json:"system"`
			Concept []concept `json:"concept"`
		} `json:"include"`
	} `json:"compose"`
}

// names collects code -> display per system, first source wins.
type names struct {
	bySystem map[string]map[string]string
	order    []string
	aliases  map[string]string
}

func newNames() *names {
	return &names{bySystem: map[string]map[string]string{}, aliases: map[string]string{}}
}

func (n *names) alias(from, to string) {
	if from != "" && to != "" && from != to {
		n.aliases[from] = to
	}
}

func (n *names) add(system, code, display, source string) {
	display = oneLine(display)
	if system == "" || code == "" || display == "" || strings.ContainsAny(code, "\t\n") {
		return
	}
	if system == snomed && source != "gps" {
		return // SNOMED CT names come from the GPS only (its licence is CC BY 4.0)
	}
	m := n.bySystem[system]
	if m == nil {
		m = map[string]string{}
		n.bySystem[system] = m
		n.order = append(n.order, system)
	}
	if _, ok := m[code]; !ok {
		m[code] = display
	}
}

func (n *names) addConcepts(system string, cs []concept) {
	for _, c := range cs {
		n.add(system, c.Code, c.Display, "tho")
		n.addConcepts(system, c.Concept)
	}
}

// write writes the table: per system a "#system" line followed by
// "code\tdisplay" lines, everything sorted, gzip-compressed without a
// timestamp so that runs are reproducible.
func (n *names) write(path string) error {
	var buf bytes.Buffer
	systems := slices.Clone(n.order)
	sort.Strings(systems)
	for _, s := range systems {
		fmt.Fprintf(&buf, "#%s\n", s)
		m := n.bySystem[s]
		for _, c := range sortedKeys(m) {
			fmt.Fprintf(&buf, "%s\t%s\n", c, m[c])
		}
	}
	var out bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&out, gzip.BestCompression)
	zw.Write(buf.Bytes())
	if err := zw.Close(); err != nil {
		return err
	}
	log.Printf("names: %d bytes, %d compressed", buf.Len(), out.Len())
	return os.WriteFile(path, out.Bytes(), 0o644)
}

// writeSystems writes the systems the table names and their aliases as
// Go maps, so that lookups in other systems never load the table.
func (n *names) writeSystems(path string) error {
	var b bytes.Buffer
	b.WriteString("// Code generated by internal/gen; DO NOT EDIT.\n\n")
	b.WriteString("// data/names.tsv.gz is written from: ")
	for _, p := range packages {
		if p.name != "@lhncbc/ucum-lhc" {
			b.WriteString(p.name + " " + p.version + ", ")
		}
	}
	b.WriteString("\n// the CDC's CVX table of 2025-10-31 (" + filepath.Base(cvxFile) + ") and US Core 3.1.1\n// (uscore-3.1.1.tsv).\n\npackage terminology\n\n")
	b.WriteString("// knownSystems are the systems data/names.tsv.gz has names for.\nvar knownSystems = map[string]bool{\n")
	systems := slices.Clone(n.order)
	sort.Strings(systems)
	for _, s := range systems {
		fmt.Fprintf(&b, "\t%q: true,\n", s)
	}
	b.WriteString("}\n\n// systemAliases maps OIDs and older URIs to canonical system URIs.\nvar systemAliases = map[string]string{\n")
	for _, a := range sortedKeys(n.aliases) {
		fmt.Fprintf(&b, "\t%q: %q,\n", a, n.aliases[a])
	}
	b.WriteString("}\n")
	src, err := format.Source(b.Bytes())
	if err != nil {
		return err
	}
	return os.WriteFile(path, src, 0o644)
}

var semanticTag = regexp.MustCompile(` \([a-z][a-z /-]*\)$`)

// stripTag turns a SNOMED CT fully specified name into a display:
// "Asthma (disorder)" -> "Asthma".
func stripTag(fsn string) string { return semanticTag.ReplaceAllString(fsn, "") }

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

func walkCodings(v any, fn func(system, code, display string)) {
	switch v := v.(type) {
	case map[string]any:
		s, _ := v["system"].(string)
		c, _ := v["code"].(string)
		d, _ := v["display"].(string)
		if s != "" && c != "" && d != "" {
			fn(s, c, d)
		}
		for _, k := range sortedKeys(v) {
			walkCodings(v[k], fn)
		}
	case []any:
		for _, x := range v {
			walkCodings(x, fn)
		}
	}
}

func untar(tgz []byte) (map[string][]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(tgz))
	if err != nil {
		return nil, err
	}
	tr := tar.NewReader(zr)
	out := map[string][]byte{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		if h.Typeflag != tar.TypeReg || !strings.HasSuffix(h.Name, ".json") {
			continue
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			return nil, err
		}
		out[h.Name] = b
	}
}

func mustJSON(files map[string][]byte, name string, v any) {
	b, ok := files[name]
	if !ok {
		log.Fatalf("%s: not in the package", name)
	}
	if err := json.Unmarshal(b, v); err != nil {
		log.Fatalf("%s: %v", name, err)
	}
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// writeUCUM writes the UCUM atoms and prefixes as Go tables, from the
// UCUM-sourced rows of ucum-lhc's ucumDefs (the units it adds from LOINC
// combinations are left out: they are expressions, not atoms).
func writeUCUM(files map[string][]byte, path string) error {
	var defs struct {
		Prefixes struct {
			Config []any   `json:"config"`
			Data   [][]any `json:"data"`
		} `json:"prefixes"`
		Units struct {
			Config []any   `json:"config"`
			Data   [][]any `json:"data"`
		} `json:"units"`
	}
	mustJSON(files, "package/data/ucumDefs.min.json", &defs)
	col := func(cfg []any, name string) int {
		for i, c := range cfg {
			if s, ok := c.(string); ok && s == name {
				return i
			}
		}
		log.Fatalf("ucumDefs: no column %s", name)
		return -1
	}
	pc, pci := col(defs.Prefixes.Config, "code_"), col(defs.Prefixes.Config, "ciCode_")
	uc, uci, um, ub, us := col(defs.Units.Config, "csCode_"), col(defs.Units.Config, "ciCode_"),
		col(defs.Units.Config, "isMetric_"), col(defs.Units.Config, "isBase_"), col(defs.Units.Config, "source_")
	var b bytes.Buffer
	b.WriteString("// Code generated by internal/gen from @lhncbc/ucum-lhc 7.1.10 (data/ucumDefs.min.json); DO NOT EDIT.\n\n")
	b.WriteString("package terminology\n\n")
	b.WriteString("// ucumPrefixes are the UCUM prefixes: case-sensitive code, case-insensitive code.\n")
	b.WriteString("var ucumPrefixes = [][2]string{\n")
	type row struct{ cs, ci string }
	var prefixes []row
	for _, p := range defs.Prefixes.Data {
		prefixes = append(prefixes, row{p[pc].(string), p[pci].(string)})
	}
	sort.Slice(prefixes, func(i, j int) bool { return prefixes[i].cs < prefixes[j].cs })
	for _, p := range prefixes {
		fmt.Fprintf(&b, "\t{%q, %q},\n", p.cs, p.ci)
	}
	b.WriteString("}\n\n")
	b.WriteString("// ucumAtoms are the UCUM unit atoms: case-sensitive code, case-insensitive code,\n// and whether prefixes apply (metric units, base units included).\n")
	b.WriteString("var ucumAtoms = []ucumAtom{\n")
	type atom struct {
		cs, ci string
		metric bool
	}
	var atoms []atom
	seen := map[string]bool{}
	for _, u := range defs.Units.Data {
		if s, _ := u[us].(string); s != "UCUM" {
			continue
		}
		cs, _ := u[uc].(string)
		ci, _ := u[uci].(string)
		if cs == "" || seen[cs] {
			continue
		}
		seen[cs] = true
		metric, _ := u[um].(bool)
		base, _ := u[ub].(bool)
		atoms = append(atoms, atom{cs, ci, metric || base})
	}
	sort.Slice(atoms, func(i, j int) bool { return atoms[i].cs < atoms[j].cs })
	for _, a := range atoms {
		fmt.Fprintf(&b, "\t{%q, %q, %v},\n", a.cs, a.ci, a.metric)
	}
	b.WriteString("}\n")
	src, err := format.Source(b.Bytes())
	if err != nil {
		return err
	}
	log.Printf("ucum: %d prefixes, %d atoms", len(prefixes), len(atoms))
	return os.WriteFile(path, src, 0o644)
}
