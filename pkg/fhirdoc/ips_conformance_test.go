package fhirdoc_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"encoding/xml"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/phr-project/phr/internal/vaulttest"
	"github.com/phr-project/phr/pkg/fhirdoc"
	"github.com/phr-project/phr/pkg/record"
)

const sharedData = "../../../shared/testdata/"

var ipsNow = time.Date(2026, 12, 4, 9, 30, 0, 0, time.UTC)

// ipsSections is testdata/ips-2.0.0/sections.json: what IPS 2.0.0's
// Composition profile says of each section.
type ipsSectionRule struct {
	Name       string   `json:"name"`
	Min        int      `json:"min"`
	Code       string   `json:"code"`
	EntryTypes []string `json:"entryTypes"`
}

func loadSectionRules(t *testing.T) map[string]ipsSectionRule {
	t.Helper()
	data, err := os.ReadFile("testdata/ips-2.0.0/sections.json")
	if err != nil {
		t.Fatal(err)
	}
	var f struct{ Sections []ipsSectionRule }
	if err := json.Unmarshal(data, &f); err != nil {
		t.Fatal(err)
	}
	out := map[string]ipsSectionRule{}
	for _, s := range f.Sections {
		out[s.Code] = s
	}
	if len(out) != 16 {
		t.Fatalf("%d sections in sections.json", len(out))
	}
	return out
}

type fhirBundle struct {
	ResourceType string `json:"resourceType"`
	Type         string `json:"type"`
	Timestamp    string `json:"timestamp"`
	Identifier   *struct {
		System, Value string
	} `json:"identifier"`
	Entry []struct {
		FullURL  string          `json:"fullUrl"`
		Resource json.RawMessage `json:"resource"`
		Search   any             `json:"search"`
		Request  any             `json:"request"`
		Response any             `json:"response"`
	} `json:"entry"`
}

// checkIPS checks a document against what IPS 2.0.0 requires of it
// (Bundle-uv-ips, Composition-uv-ips, Patient-uv-ips): a document Bundle
// with an identifier and a timestamp; the Composition first and only
// once (bdl-ips-1); one Patient; a fullUrl on every entry and no
// search/request/response; the Composition's type 60591-5, status, date,
// author, title and subject (the Patient); at least three sections, each
// with a title, a code and a narrative (well-formed XHTML); the problems,
// allergies and medications sections present, each with entries or an
// emptyReason and never both (ips-comp-1, cmp-2); each section's entries
// resolving in the bundle to the resource types its slice allows; the
// Patient's name (ips-pat-1) and birth date present, if only as absent
// with a reason; at most one smoking and one alcohol entry in social
// history; and every reference of every resource resolving inside the
// bundle. It returns the resources by fullUrl.
func checkIPS(t *testing.T, data []byte, rules map[string]ipsSectionRule) map[string]record.Resource {
	t.Helper()
	var b fhirBundle
	if err := json.Unmarshal(data, &b); err != nil {
		t.Fatal(err)
	}
	if b.ResourceType != "Bundle" || b.Type != "document" {
		t.Fatalf("resourceType %q type %q", b.ResourceType, b.Type)
	}
	if b.Identifier == nil || b.Identifier.System == "" || b.Identifier.Value == "" {
		t.Error("Bundle.identifier is required")
	}
	if _, err := time.Parse(time.RFC3339, b.Timestamp); err != nil {
		t.Errorf("Bundle.timestamp %q", b.Timestamp)
	}
	if len(b.Entry) < 2 {
		t.Fatalf("%d entries", len(b.Entry))
	}
	byURL := map[string]record.Resource{}
	var patientURL string
	compositions := 0
	for i, e := range b.Entry {
		if e.FullURL == "" || e.Search != nil || e.Request != nil || e.Response != nil {
			t.Errorf("entry %d: fullUrl %q, search/request/response must be absent", i, e.FullURL)
		}
		r, err := record.Parse(e.Resource)
		if err != nil {
			t.Fatalf("entry %d: %v", i, err)
		}
		if _, dup := byURL[e.FullURL]; dup {
			t.Errorf("fullUrl %s twice", e.FullURL)
		}
		byURL[e.FullURL] = r
		switch r.Type() {
		case "Composition":
			compositions++
			if i != 0 {
				t.Error("a Composition after the first entry (bdl-ips-1)")
			}
		case "Patient":
			if patientURL != "" {
				t.Error("two Patients")
			}
			patientURL = e.FullURL
		}
	}
	comp := byURL[b.Entry[0].FullURL]
	if comp.Type() != "Composition" || compositions != 1 {
		t.Fatalf("first entry %s, %d Compositions", comp.Type(), compositions)
	}
	if patientURL == "" {
		t.Fatal("no Patient")
	}
	if !comp.HasCoding("type", record.LOINC, fhirdoc.LOINCPatientSummary) || comp.Str("status") == "" || comp.Str("date") == "" ||
		comp.Str("title") == "" || len(comp.List("author")) == 0 || comp.Str("subject.reference") != patientURL {
		t.Errorf("composition header: type, status, date, title, author, subject: %v", comp)
	}
	p := byURL[patientURL]
	named := false
	for _, n := range p.List("name") {
		m := n.(map[string]any)
		named = named || m["family"] != nil || m["given"] != nil || m["text"] != nil || m["_text"] != nil
	}
	if !named || (p.Str("birthDate") == "" && p.Get("_birthDate") == nil) {
		t.Errorf("Patient name (ips-pat-1) and birthDate: %v", p)
	}
	secs := comp.List("section")
	if len(secs) < 3 {
		t.Errorf("%d sections, IPS requires at least 3", len(secs))
	}
	seen := map[string]int{}
	for i, s := range secs {
		sec := record.Resource(s.(map[string]any))
		code := sec.Str("code.coding.0.code")
		seen[code]++
		rule, known := rules[code]
		if sec.Str("title") == "" || !known {
			t.Errorf("section %d: title %q, code %q (not an IPS section)", i, sec.Str("title"), code)
			continue
		}
		div := sec.Str("text.div")
		if !strings.HasPrefix(div, `<div xmlns="http://www.w3.org/1999/xhtml">`) || xml.Unmarshal([]byte(div), new(any)) != nil {
			t.Errorf("section %s: narrative %q", code, div)
		}
		entries := sec.List("entry")
		if len(entries) > 0 && sec.Get("emptyReason") != nil {
			t.Errorf("section %s has entries and an emptyReason (cmp-2)", code)
		}
		if rule.Min > 0 && len(entries) == 0 && sec.Get("emptyReason") == nil {
			t.Errorf("required section %s has neither entries nor an emptyReason (ips-comp-1)", code)
		}
		smoking, alcohol := 0, 0
		for _, e := range entries {
			ref, _ := e.(map[string]any)["reference"].(string)
			r, ok := byURL[ref]
			if !ok {
				t.Errorf("section %s: entry %q is not in the bundle", code, ref)
				continue
			}
			if len(rule.EntryTypes) > 0 && !slices.Contains(rule.EntryTypes, r.Type()) {
				t.Errorf("section %s (%s) holds a %s; IPS allows %v", code, rule.Name, r.Type(), rule.EntryTypes)
			}
			if r.HasCoding("code", record.LOINC, "72166-2") {
				smoking++
			}
			if r.HasCoding("code", record.LOINC, "74013-4") {
				alcohol++
			}
		}
		if smoking > 1 || alcohol > 1 {
			t.Errorf("social history: %d smoking and %d alcohol entries, IPS allows one each", smoking, alcohol)
		}
	}
	for code, rule := range rules {
		if rule.Min > 0 && seen[code] != 1 {
			t.Errorf("required section %s (%s) appears %d times", code, rule.Name, seen[code])
		}
	}
	for url, r := range byURL {
		walkRefs(r, func(ref string) {
			if _, ok := byURL[ref]; !ok && !strings.HasPrefix(ref, "#") {
				t.Errorf("%s (%s): reference %q leaves the bundle", r.Type(), url, ref)
			}
		})
	}
	return byURL
}

func walkRefs(v any, fn func(string)) {
	switch v := v.(type) {
	case record.Resource:
		walkRefs(map[string]any(v), fn)
	case map[string]any:
		if s, ok := v["reference"].(string); ok {
			fn(s)
		}
		for _, c := range v {
			walkRefs(c, fn)
		}
	case []any:
		for _, c := range v {
			walkRefs(c, fn)
		}
	}
}

// importInto imports files into a new vault and returns, as phr export
// --format ips does, the vault's patient and the other records.
func importInto(t *testing.T, paths ...string) (record.Record, []record.Record) {
	t.Helper()
	v := vaulttest.New(t)
	vaulttest.Import(t, v, paths...)
	patient, recs := vaulttest.Contents(t, v)
	if patient.ID == "" {
		return patient, recs // no owner: the builder takes the file's Patient
	}
	var others []record.Record
	for _, r := range recs {
		if r.ID != patient.ID && r.Kind != record.KindPatient {
			others = append(others, r)
		}
	}
	return patient, others
}

func TestIPSConformance(t *testing.T) {
	rules := loadSectionRules(t)
	tests := []struct {
		name  string
		files []string
		// sections the document must have (besides the required three)
		sections []string
	}{
		{name: "empty vault"},
		{name: "synthea", files: []string{sharedData + "fhir/synthea-r4/Jorge_Brekke_ac7921e0-c949-4b42-97f2-fad5d171cd01.json"},
			sections: []string{fhirdoc.LOINCImmunizations, fhirdoc.LOINCResults, fhirdoc.LOINCVitalSigns, fhirdoc.LOINCProcedures, fhirdoc.LOINCSocialHistory, fhirdoc.LOINCPastProblems}},
		{name: "C-CDA with no known allergies", files: []string{sharedData + "ccda/hl7-c-cda-examples/Documents/CCD/CCD 2/CCD.xml"},
			sections: []string{fhirdoc.LOINCVitalSigns, fhirdoc.LOINCSocialHistory}},
		{name: "US Core examples", files: []string{
			sharedData + "fhir/us-core-examples/Observation-10-minute-apgar-color.json",
			sharedData + "fhir/us-core-examples/DiagnosticReport-chest-xray-report.json",
		}, sections: []string{fhirdoc.LOINCResults}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, f := range tt.files {
				if _, err := os.Stat(f); err != nil {
					t.Skipf("shared test data missing: %v", err)
				}
			}
			patient, recs := importInto(t, tt.files...)
			data, err := fhirdoc.BuildIPS(patient, recs, ipsNow)
			if err != nil {
				t.Fatal(err)
			}
			byURL := checkIPS(t, data, rules)
			var comp record.Resource
			for _, r := range byURL {
				if r.Type() == "Composition" {
					comp = r
				}
			}
			var codes []string
			for _, s := range comp.List("section") {
				codes = append(codes, record.Resource(s.(map[string]any)).Str("code.coding.0.code"))
			}
			for _, want := range tt.sections {
				if !slices.Contains(codes, want) {
					t.Errorf("no section %s among %v", want, codes)
				}
			}
		})
	}
}

// clinicalTypes are the resource types whose facts a summary must carry;
// supporting resources (Medication, Device, Organization, ...) must come
// along when a clinical one refers to them.
var clinicalTypes = map[string]bool{
	"AllergyIntolerance": true, "Condition": true, "MedicationStatement": true, "MedicationRequest": true,
	"Immunization": true, "Observation": true, "DiagnosticReport": true, "Procedure": true,
	"DeviceUseStatement": true, "Flag": true, "CarePlan": true, "Consent": true, "Patient": true,
	"ClinicalImpression": true, "ImmunizationRecommendation": true,
}

// exampleResources reads an example file's resources: a Bundle's entries,
// or the one resource.
type exampleEntry struct {
	fullURL string
	res     map[string]any
}

func exampleResources(t *testing.T, data []byte) []exampleEntry {
	var top map[string]any
	if err := json.Unmarshal(data, &top); err != nil {
		t.Fatal(err)
	}
	if top["resourceType"] != "Bundle" {
		return []exampleEntry{{res: top}}
	}
	var out []exampleEntry
	for _, e := range top["entry"].([]any) {
		em := e.(map[string]any)
		url, _ := em["fullUrl"].(string)
		out = append(out, exampleEntry{fullURL: url, res: em["resource"].(map[string]any)})
	}
	return out
}

// fact is the clinical content of a resource as a comparable value: the
// resource normalized as imports are (record.Normalize), without id,
// meta and narrative, and with each reference replaced by "REF" when it
// resolves inside its file (a summary must keep it, resolved) or by a
// wildcard when it does not (a summary keeps only a display of it).
func fact(res map[string]any, resolves func(ref string) bool) any {
	c := deepCopy(res).(map[string]any)
	record.Normalize(record.Resource(c))
	delete(c, "id")
	delete(c, "meta")
	delete(c, "text")
	var walk func(v any) any
	walk = func(v any) any {
		switch v := v.(type) {
		case map[string]any:
			if ref, ok := v["reference"].(string); ok {
				if resolves == nil || resolves(ref) {
					return "REF"
				}
				return wildcard{}
			}
			for k, x := range v {
				v[k] = walk(x)
			}
		case []any:
			for i, x := range v {
				v[i] = walk(x)
			}
		}
		return v
	}
	return walk(c)
}

type wildcard struct{}

// within reports whether the fact in is contained in out: every member
// of in is in out with a contained value, arrays element by element;
// out may have more (a reference IPS requires, a data-absent reason).
func within(in, out any) bool {
	switch in := in.(type) {
	case wildcard:
		return true
	case map[string]any:
		o, ok := out.(map[string]any)
		if !ok {
			return false
		}
		for k, v := range in {
			if !within(v, o[k]) {
				return false
			}
		}
		return true
	case []any:
		o, ok := out.([]any)
		if !ok || len(o) != len(in) {
			return false
		}
		for i := range in {
			if !within(in[i], o[i]) {
				return false
			}
		}
		return true
	}
	inJ, _ := json.Marshal(in)
	outJ, _ := json.Marshal(out)
	return bytes.Equal(inJ, outJ)
}

func deepCopy(v any) any {
	data, _ := json.Marshal(v)
	var out any
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	d.Decode(&out)
	return out
}

// TestIPSExamplesRoundTrip imports each of IPS 2.0.0's 44 examples
// through phr's importers into a vault of its own, exports the vault as
// an IPS document (as phr export --format ips does), checks the document
// against the IG's requirements, and compares the clinical facts in and
// out: every clinical resource of the example (not entered in error) is
// in the document with all its content (normalized, references resolved
// the same way), and every Medication, Device or other resource a
// clinical one refers to inside the file comes along.
func TestIPSExamplesRoundTrip(t *testing.T) {
	rules := loadSectionRules(t)
	f, err := os.Open("testdata/ips-2.0.0/examples.tar.gz")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	n := 0
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasSuffix(h.Name, ".json") {
			continue
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		n++
		name := filepath.Base(h.Name)
		t.Run(strings.TrimSuffix(name, ".json"), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), name)
			if err := os.WriteFile(path, data, 0o600); err != nil {
				t.Fatal(err)
			}
			patient, recs := importInto(t, path)
			doc, err := fhirdoc.BuildIPS(patient, recs, ipsNow)
			if err != nil {
				t.Fatal(err)
			}
			byURL := checkIPS(t, doc, rules)
			var outFacts []any
			outTypes := map[string]int{}
			for _, r := range byURL {
				outFacts = append(outFacts, fact(r, nil))
				outTypes[r.Type()]++
			}
			in := exampleResources(t, data)
			// What resolves inside the example file: fullUrls, and
			// Type/id of its entries (relative, or at the end of a URL).
			keys := map[string]bool{}
			for _, e := range in {
				keys[e.fullURL] = e.fullURL != ""
				if id, _ := e.res["id"].(string); id != "" {
					keys[e.res["resourceType"].(string)+"/"+id] = true
				}
			}
			resolves := func(ref string) bool {
				if keys[ref] {
					return true
				}
				parts := strings.Split(strings.Split(ref, "/_history/")[0], "/")
				return len(parts) >= 2 && keys[parts[len(parts)-2]+"/"+parts[len(parts)-1]]
			}
			referenced := map[string]bool{}
			for _, e := range in {
				if clinicalTypes[e.res["resourceType"].(string)] {
					walkRefs(e.res, func(ref string) { referenced[ref] = true })
				}
			}
			checked := 0
			for _, e := range in {
				rt := e.res["resourceType"].(string)
				isRef := referenced[e.fullURL]
				if id, _ := e.res["id"].(string); id != "" {
					for ref := range referenced {
						if ref == rt+"/"+id || strings.HasSuffix(ref, "/"+rt+"/"+id) {
							isRef = true
						}
					}
				}
				if rt == "Composition" || (!clinicalTypes[rt] && !isRef) {
					continue
				}
				if rt == "Patient" && isRef == false && len(in) > 1 {
					// a Bundle's patient is the document's: checked as a fact below too
				}
				if neg := record.NegationOf(record.Resource(e.res)); neg == record.NegEnteredInError {
					continue
				}
				checked++
				want := fact(e.res, resolves)
				found := false
				for _, o := range outFacts {
					if within(want, o) {
						found = true
						break
					}
				}
				if !found {
					js, _ := json.Marshal(want)
					t.Errorf("%s lost or changed in the summary: %s", rt, js)
				}
			}
			t.Logf("%d resources in, %d facts checked, out: %v", len(in), checked, outTypes)
		})
	}
	if n != 44 {
		t.Errorf("%d examples, want the package's 44", n)
	}
}
