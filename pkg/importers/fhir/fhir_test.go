package fhir

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/phr-project/phr/pkg/importers"
	"github.com/phr-project/phr/pkg/importers/importertest"
	"github.com/phr-project/phr/pkg/record"
)

var (
	syntheaDir    = testdata + "/fhir/synthea-r4"
	usCoreDir     = testdata + "/fhir/us-core-examples"
	blueButtonDir = testdata + "/fhir/cms-bluebutton/apps/fhir/bluebutton/tests/fhir_resources"
	bulkDir       = testdata + "/fhir/bulk-ndjson-10-patients"
	shcDir        = testdata + "/shc/input/images"
)

func glob(t *testing.T, pattern string) []string {
	t.Helper()
	files, err := filepath.Glob(pattern)
	if err != nil || len(files) == 0 {
		t.Fatalf("no test files for %s", pattern)
	}
	return files
}

func TestDetect(t *testing.T) {
	type want struct{ fhir, ndjson bool }
	cases := map[string]want{
		syntheaDir + "/Liz_Conn_27c911c6-f045-4ffa-af5d-6eba57ac94b2.json":    {true, false},
		syntheaDir + "/Babara_Rice_1343812f-e993-4973-a849-e3dad63c3e74.json": {true, false},
		usCoreDir + "/patient-example.json":                                   {true, false},
		usCoreDir + "/bundle-docref-example2.json":                            {true, false},
		blueButtonDir + "/eob_search_v2.json":                                 {true, false},
		blueButtonDir + "/userinfo_v2.json":                                   {false, false},
		bulkDir + "/Patient.000.ndjson":                                       {false, true},
		bulkDir + "/DocumentReference.000.ndjson":                             {false, true},
		bulkDir + "/log.ndjson":                                               {false, true},
		shcDir + "/example-00-a-fhirBundle.json":                              {true, false},
		shcDir + "/example-00-b-jws-payload-expanded.json":                    {false, false},
		shcDir + "/example-00-c-jws-payload-minified.json":                    {false, false},
		shcDir + "/example-00-d-jws.txt":                                      {false, false},
		shcDir + "/example-00-e-file.smart-health-card":                       {false, false},
		shcDir + "/example-00-f-qr-code-numeric-value-0.txt":                  {false, false},
		shcDir + "/example-00-g-qr-code-0.svg":                                {false, false},
		testdata + "/apple-health/ashtom-hkimport/Data/export.xml":            {false, false},
		testdata + "/ccda/hl7-c-cda-examples/Documents/CCD/CCD 2/CCD.xml":     {false, false},
	}
	for path, w := range cases {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Errorf("%s: %v", path, err)
			continue
		}
		h := importertest.Head(b)
		if got := New().Detect(h); got != w.fhir {
			t.Errorf("fhir.Detect(%s) = %v", filepath.Base(path), got)
		}
		if got := NewNDJSON().Detect(h); got != w.ndjson {
			t.Errorf("ndjson.Detect(%s) = %v", filepath.Base(path), got)
		}
	}
	crafted := []struct {
		name         string
		in           string
		fhir, ndjson bool
	}{
		{"pretty resource", "{\n  \"resourceType\": \"Patient\",\n  \"id\": \"a\"\n}\n", true, false},
		{"one line, no newline", `{"resourceType":"Patient","id":"a"}`, true, false},
		{"one line and a newline", "{\"resourceType\":\"Patient\",\"id\":\"a\"}\n", false, true},
		{"two lines", "{\"resourceType\":\"Patient\",\"id\":\"a\"}\n{\"resourceType\":\"Patient\",\"id\":\"b\"}", false, true},
		{"blank lines first, CRLF", "\r\n\r\n{\"resourceType\":\"Patient\"}\r\n{\"resourceType\":\"Patient\"}\r\n", false, true},
		{"BOM", "\xef\xbb\xbf{\"resourceType\": \"Patient\"}", true, false},
		{"resourceType not first", "{\"id\": \"a\", \"resourceType\": \"Patient\"}", true, false},
		{"array", `[{"resourceType":"Patient"}]`, false, false},
		{"SHC file", `{"verifiableCredential":["a.b.c"]}`, false, false},
		{"not JSON", "resourceType,Patient\n", false, false},
		{"JSON without resourceType", `{"a":1}`, false, false},
		{"CSV", "date,type,value\n2020-01-01,weight,70\n", false, false},
		{"empty", "", false, false},
	}
	for _, c := range crafted {
		if got := New().Detect([]byte(c.in)); got != c.fhir {
			t.Errorf("fhir.Detect(%s) = %v", c.name, got)
		}
		if got := NewNDJSON().Detect([]byte(c.in)); got != c.ndjson {
			t.Errorf("ndjson.Detect(%s) = %v", c.name, got)
		}
	}
	// A bulk file whose first line is longer than the detection window.
	long := `{"resourceType":"DocumentReference","id":"x","content":[{"attachment":{"data":"` +
		strings.Repeat("QUJD", 4000) + `"}}]}` + "\n"
	if New().Detect(importertest.Head([]byte(long+long))) || !NewNDJSON().Detect(importertest.Head([]byte(long+long))) {
		t.Error("long first NDJSON line not detected as ndjson")
	}
}

var referenceRE = regexp.MustCompile(`"reference":"([^"]*)"`)

func TestImportSynthea(t *testing.T) {
	for _, path := range glob(t, syntheaDir+"/*.json") {
		t.Run(filepath.Base(path), func(t *testing.T) {
			data := importertest.ReadFile(t, path)
			s := mustRun(t, New(), path)
			if len(s.Fails) > 0 || len(s.Skips) > 0 {
				t.Fatalf("fails %v, skips %v", s.Fails, s.Skips)
			}
			want := importertest.BundleCounts(t, data)
			if got := s.Counts(); !maps.Equal(got, want) {
				t.Errorf("counts = %v, want %v", got, want)
			}
			ids := map[string]bool{}
			for _, r := range s.Records {
				res, err := record.Parse(r.Resource)
				if err != nil {
					t.Fatal(err)
				}
				ids[res.Type()+"/"+res.ID()] = true
				p := r.Provenance
				if p.Method != record.MethodImported || p.Importer != "fhir" || p.File != filepath.Base(path) ||
					len(p.FileSHA256) != 64 || p.System != "" || p.OriginalID != res.ID() || p.OriginalID == "" {
					t.Fatalf("provenance %+v", p)
				}
			}
			// Every urn:uuid reference now points at an imported entry.
			for _, r := range s.Records {
				for _, m := range referenceRE.FindAllSubmatch(r.Resource, -1) {
					ref := string(m[1])
					if strings.HasPrefix(ref, "urn:uuid:") {
						t.Fatalf("unresolved reference %s in %s", ref, r.ResourceType)
					}
					if !strings.HasPrefix(ref, "#") && !ids[ref] {
						t.Fatalf("reference %s to nothing imported", ref)
					}
				}
			}
		})
	}
}

func TestImportSyntheaValues(t *testing.T) {
	s := mustRun(t, New(), syntheaDir+"/Jorge_Brekke_ac7921e0-c949-4b42-97f2-fad5d171cd01.json")
	if n := s.Counts()["AllergyIntolerance"]; n != 10 {
		t.Errorf("AllergyIntolerance = %d, want 10", n)
	}
	var pat *record.Record
	for i := range s.Records {
		if s.Records[i].ResourceType == "Patient" {
			pat = &s.Records[i]
		}
	}
	if pat == nil || pat.Kind != record.KindPatient || pat.Provenance.OriginalID != "272539c2-e516-4f16-8f47-573923bf9924" {
		t.Fatalf("patient record %+v", pat)
	}
	// The first Observation, checked against the file decoded on its own.
	var b struct {
		Entry []struct {
			Resource map[string]any `json:"resource"`
		} `json:"entry"`
	}
	json.Unmarshal(importertest.ReadFile(t, syntheaDir+"/Jorge_Brekke_ac7921e0-c949-4b42-97f2-fad5d171cd01.json"), &b)
	var want record.Resource
	for _, e := range b.Entry {
		if e.Resource["resourceType"] == "Observation" {
			want = e.Resource
			break
		}
	}
	for _, r := range s.Records {
		if r.ResourceType != "Observation" {
			continue
		}
		got, _ := record.Parse(r.Resource)
		if got.ID() != want.ID() || got.Str("code.coding.0.code") != want.Str("code.coding.0.code") ||
			got.Str("code.coding.0.system") != record.LOINC {
			t.Fatalf("first observation %s %s, want %s %s", got.ID(), got.Str("code.coding.0.code"), want.ID(), want.Str("code.coding.0.code"))
		}
		wd, _ := record.ParseDate(want.Str("effectiveDateTime"))
		if !r.Date.Equal(wd) || r.Date.IsZero() {
			t.Errorf("date %v, want %v", r.Date, wd)
		}
		if got.Str("subject.reference") != "Patient/272539c2-e516-4f16-8f47-573923bf9924" {
			t.Errorf("subject %q", got.Str("subject.reference"))
		}
		break
	}
}

func TestImportUSCore(t *testing.T) {
	total := 0
	for _, path := range glob(t, usCoreDir+"/*.json") {
		s := mustRun(t, New(), path)
		if len(s.Fails) > 0 || len(s.Skips) > 0 {
			t.Errorf("%s: fails %v, skips %v", filepath.Base(path), s.Fails, s.Skips)
		}
		if len(s.Records) == 0 {
			t.Errorf("%s: no records", filepath.Base(path))
		}
		total += len(s.Records)
	}
	if total < 230 {
		t.Errorf("%d records from the US Core examples", total)
	}
	cases := []struct {
		file   string
		counts map[string]int
		check  func(t *testing.T, r record.Resource, rec record.Record)
	}{
		{"allergyintolerance-example.json", map[string]int{"AllergyIntolerance": 1}, func(t *testing.T, r record.Resource, rec record.Record) {
			if rec.Kind != record.KindAllergy || !r.HasCoding("code", record.SNOMED, "763875007") {
				t.Errorf("allergy %s %v", rec.Kind, r.Codings("code"))
			}
		}},
		{"bundle-docref-example2.json", map[string]int{"DocumentReference": 3}, nil},
		{"allergyintolerance-provenance-example1.json", map[string]int{"AllergyIntolerance": 1, "Provenance": 1}, nil},
		{"PractitionerRole_Practitioner_Endpoint_Bundle_Example.json", map[string]int{"PractitionerRole": 1, "Practitioner": 1, "Endpoint": 1}, nil},
		{"library-uscore-modelinfo.json", map[string]int{"Library": 1}, nil},
		{"media-ekg-strip.json", map[string]int{"Media": 1}, nil},
		{"blood-pressure.json", map[string]int{"Observation": 1}, func(t *testing.T, r record.Resource, rec record.Record) {
			if rec.Kind != record.KindVital || !r.HasCoding("code", record.LOINC, "85354-9") || rec.Date.IsZero() {
				t.Errorf("bp %s %v %v", rec.Kind, r.Codings("code"), rec.Date)
			}
			if rec.Provenance.OriginalID != "blood-pressure" {
				t.Errorf("original id %q", rec.Provenance.OriginalID)
			}
		}},
		{"medicationrequest-contained-oral-axid.json", map[string]int{"MedicationRequest": 1}, func(t *testing.T, r record.Resource, rec record.Record) {
			if r.Str("medicationReference.reference") != "#med2" {
				t.Errorf("contained reference changed: %q", r.Str("medicationReference.reference"))
			}
		}},
	}
	for _, c := range cases {
		s := mustRun(t, New(), usCoreDir+"/"+c.file)
		if got := s.Counts(); !maps.Equal(got, c.counts) {
			t.Errorf("%s: counts %v, want %v", c.file, got, c.counts)
		}
		if c.check != nil {
			r, _ := record.Parse(s.Records[0].Resource)
			c.check(t, r, s.Records[0])
		}
	}
}

func TestImportBlueButton(t *testing.T) {
	cases := []struct {
		file    string
		records map[string]int
		skips   int
		skipHas string
		fails   bool
	}{
		{"patient_read_v2.json", map[string]int{"Patient": 1}, 0, "", false},
		{"patient_search_v2.json", map[string]int{"Patient": 1}, 0, "", false},
		{"coverage_read_v2.json", map[string]int{"Coverage": 1}, 0, "", false},
		{"coverage_search_v2.json", map[string]int{"Coverage": 4}, 0, "", false},
		{"eob_read_carrier_v2.json", map[string]int{"ExplanationOfBenefit": 1}, 0, "", false},
		{"eob_read_in_pt_v2.json", map[string]int{"ExplanationOfBenefit": 1}, 0, "", false},
		{"eob_read_out_pt_v2.json", map[string]int{"ExplanationOfBenefit": 1}, 0, "", false},
		{"eob_search_v2.json", map[string]int{"ExplanationOfBenefit": 10}, 0, "", false},
		{"eob_search_pt_v2.json", map[string]int{"ExplanationOfBenefit": 10}, 0, "", false},
		{"fhir_meta_v2.json", map[string]int{"CapabilityStatement": 1}, 0, "", false},
		// STU3 (v1): recognized and skipped, except what R4 reads alike.
		{"patient_read_v1.json", map[string]int{"Patient": 1}, 0, "", false},
		{"patient_search_v1.json", map[string]int{"Patient": 1}, 0, "", false},
		{"coverage_read_v1.json", map[string]int{}, 1, "Coverage.grouping", false},
		{"coverage_search_v1.json", map[string]int{}, 4, "not FHIR R4", false},
		{"eob_read_carrier_v1.json", map[string]int{}, 1, "not FHIR R4", false},
		{"eob_read_in_pt_v1.json", map[string]int{}, 1, "not FHIR R4", false},
		{"eob_read_out_pt_v1.json", map[string]int{}, 1, "not FHIR R4", false},
		{"eob_search_v1.json", map[string]int{}, 10, "not FHIR R4", false},
		{"eob_search_pt_v1.json", map[string]int{}, 10, "not FHIR R4", false},
		{"fhir_meta_v1.json", map[string]int{}, 1, "fhirVersion 3.0.2", false},
		{"resource_error_response.json", map[string]int{}, 1, "OperationOutcome", false},
		{"userinfo_v1.json", nil, 0, "", true},
	}
	for _, c := range cases {
		s, err := run(New(), c.file, importertest.ReadFile(t, blueButtonDir+"/"+c.file))
		if c.fails {
			var pe *importers.ParseError
			if !errors.As(err, &pe) || !errors.Is(err, ErrNotResource) {
				t.Errorf("%s: err = %v, want a ParseError (not a resource)", c.file, err)
			}
			continue
		}
		if err != nil || len(s.Fails) > 0 {
			t.Errorf("%s: %v %v", c.file, err, s.Fails)
			continue
		}
		if got := s.Counts(); !maps.Equal(got, c.records) {
			t.Errorf("%s: records %v, want %v", c.file, got, c.records)
		}
		if len(s.Skips) != c.skips {
			t.Errorf("%s: %d skips, want %d", c.file, len(s.Skips), c.skips)
		}
		for _, sk := range s.Skips {
			if !strings.Contains(sk.Reason, c.skipHas) {
				t.Errorf("%s: skip reason %q", c.file, sk.Reason)
			}
		}
	}
	s := mustRun(t, New(), blueButtonDir+"/eob_read_carrier_v2.json")
	r := s.Records[0]
	if r.Provenance.OriginalID != "carrier--10045426206" && r.Provenance.OriginalID == "" {
		t.Errorf("original id %q", r.Provenance.OriginalID)
	}
	if r.Date.IsZero() || r.Kind != "explanationofbenefit" {
		t.Errorf("eob kind %q date %v", r.Kind, r.Date)
	}
}

func TestReimportIsStable(t *testing.T) {
	files := []struct {
		imp  importers.Importer
		path string
	}{
		{New(), syntheaDir + "/Reyna_Ziemann_08f8bfce-34cf-4b5a-a398-8e49650c6e3c.json"},
		{New(), usCoreDir + "/bundle-docref-example2.json"},
		{New(), shcDir + "/example-02-a-fhirBundle.json"},
		{NewNDJSON(), bulkDir + "/Immunization.000.ndjson"},
	}
	for _, f := range files {
		a, b := mustRun(t, f.imp, f.path), mustRun(t, f.imp, f.path)
		fa, fb := a.Fingerprints(), b.Fingerprints()
		if len(fa) == 0 || !slices.Equal(fa, fb) {
			t.Errorf("%s: fingerprints differ between two imports", filepath.Base(f.path))
		}
		for i := range a.Records {
			if !bytes.Equal(a.Records[i].Resource, b.Records[i].Resource) || a.Records[i].ID == b.Records[i].ID {
				t.Errorf("%s: record %d differs (or shares its record ID)", filepath.Base(f.path), i)
				break
			}
		}
	}
}

const refBundle = `{
  "resourceType": "Bundle",
  "meta": {"source": "https://ehr.example.org/fhir#req-77"},
  "type": "collection",
  "entry": [
    {"fullUrl": "urn:uuid:11111111-2222-3333-4444-555555555555",
     "resource": {"resourceType": "Patient", "name": [{"family": "Test"}]}},
    {"fullUrl": "https://ehr.example.org/fhir/Practitioner/dr1",
     "resource": {"resourceType": "Practitioner"}},
    {"fullUrl": "https://ehr.example.org/fhir/Observation/o1",
     "resource": {"resourceType": "Observation", "id": "o1", "status": "final",
       "meta": {"source": "https://lab.example.org"},
       "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
       "subject": {"reference": "urn:uuid:11111111-2222-3333-4444-555555555555"},
       "performer": [{"reference": "Practitioner/dr1"}, {"reference": "https://ehr.example.org/fhir/Practitioner/dr1"},
                     {"reference": "Organization/elsewhere"}, {"reference": "urn:uuid:00000000-0000-0000-0000-000000000000"}],
       "effectiveDateTime": "2024-03-01T10:00:00Z"}},
    {"fullUrl": "urn:oid:1.2.3.4", "resource": {"id": "x", "resourceType": "Condition",
       "subject": {"reference": "urn:uuid:11111111-2222-3333-4444-555555555555"},
       "evidence": [{"detail": [{"reference": "urn:oid:1.2.3.4"}]}]}},
    {"resource": {"resourceType": "Basic", "code": {"text": "no fullUrl"}}},
    {"search": {"mode": "outcome"}, "resource": {"resourceType": "OperationOutcome", "issue": []}},
    {"request": {"method": "DELETE", "url": "Patient/9"}},
    {"fullUrl": "urn:uuid:99999999-2222-3333-4444-555555555555",
     "resource": {"resourceType": "Bundle", "type": "document", "entry": [
       {"fullUrl": "urn:uuid:aaaaaaaa-2222-3333-4444-555555555555",
        "resource": {"resourceType": "Composition", "subject": {"reference": "urn:uuid:11111111-2222-3333-4444-555555555555"},
          "section": [{"entry": [{"reference": "urn:uuid:bbbbbbbb-2222-3333-4444-555555555555"}]}]}},
       {"fullUrl": "urn:uuid:bbbbbbbb-2222-3333-4444-555555555555",
        "resource": {"resourceType": "AllergyIntolerance", "patient": {"reference": "urn:uuid:11111111-2222-3333-4444-555555555555"}}}
     ]}},
    {"fullUrl": "resource:0", "resource": {"resourceType": "Immunization", "patient": {"reference": "urn:uuid:11111111-2222-3333-4444-555555555555"}}},
    {"fullUrl": "resource:1", "resource": {"resourceType": "Immunization", "patient": {"reference": "resource:0"}}}
  ]
}`

func TestReferenceResolution(t *testing.T) {
	s, err := run(New(), "bundle.json", []byte(refBundle))
	if err != nil || len(s.Fails) > 0 {
		t.Fatal(err, s.Fails)
	}
	want := []string{"Patient", "Practitioner", "Observation", "Condition", "Basic", "Composition", "AllergyIntolerance", "Immunization", "Immunization"}
	var got []string
	res := map[string]record.Resource{}
	for _, r := range s.Records {
		got = append(got, r.ResourceType)
		p, err := record.Parse(r.Resource)
		if err != nil {
			t.Fatal(err)
		}
		if p.ID() == "" {
			t.Errorf("%s has no id", r.ResourceType)
		}
		res[r.ResourceType] = p
		if r.Provenance.OriginalID != p.ID() {
			t.Errorf("%s: OriginalID %q, id %q", r.ResourceType, r.Provenance.OriginalID, p.ID())
		}
		sys := "https://ehr.example.org/fhir"
		if r.ResourceType == "Observation" {
			sys = "https://lab.example.org"
		}
		if r.Provenance.System != sys {
			t.Errorf("%s: System %q, want %q", r.ResourceType, r.Provenance.System, sys)
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("records %v, want %v", got, want)
	}
	if len(s.Skips) != 2 {
		t.Errorf("skips %v", s.Skips)
	}
	pid := "Patient/11111111-2222-3333-4444-555555555555"
	checks := []struct{ typ, path, want string }{
		{"Patient", "id", "11111111-2222-3333-4444-555555555555"},
		{"Practitioner", "id", "dr1"},
		{"Observation", "subject.reference", pid},
		{"Observation", "performer.0.reference", "Practitioner/dr1"},
		{"Observation", "performer.1.reference", "Practitioner/dr1"},
		{"Observation", "performer.2.reference", "Organization/elsewhere"},
		{"Observation", "performer.3.reference", "urn:uuid:00000000-0000-0000-0000-000000000000"},
		{"Condition", "id", "x"},
		{"Condition", "subject.reference", pid},
		{"Condition", "evidence.0.detail.0.reference", "Condition/x"},
		{"Composition", "subject.reference", pid},
		{"Composition", "section.0.entry.0.reference", "AllergyIntolerance/bbbbbbbb-2222-3333-4444-555555555555"},
		{"AllergyIntolerance", "patient.reference", pid},
	}
	for _, c := range checks {
		if got := res[c.typ].Str(c.path); got != c.want {
			t.Errorf("%s.%s = %q, want %q", c.typ, c.path, got, c.want)
		}
	}
	// resourceType stays first; the id follows it.
	if !bytes.HasPrefix(s.Records[0].Resource, []byte(`{"resourceType":"Patient","id":"11111111-`)) {
		t.Errorf("patient JSON starts %s", s.Records[0].Resource[:40])
	}
	// Digest ids for resources without a usable fullUrl; references follow.
	imm0, _ := record.Parse(s.Records[7].Resource)
	imm1, _ := record.Parse(s.Records[8].Resource)
	if len(imm0.ID()) != 32 || imm1.Str("patient.reference") != "Immunization/"+imm0.ID() {
		t.Errorf("immunization ids %q -> %q", imm0.ID(), imm1.Str("patient.reference"))
	}
	// The Observation kept every field and its date.
	obs := s.Records[2]
	if obs.Kind != record.KindObservation || !obs.Date.Equal(time.Date(2024, 3, 1, 10, 0, 0, 0, time.UTC)) {
		t.Errorf("observation %s %v", obs.Kind, obs.Date)
	}
}

func TestKeepsUnknownTypesAndFields(t *testing.T) {
	in := `{"resourceType":"FancyFutureThing","id":"f1","_status":{"extension":[]},"value":1.50,"nested":{"deep":[1,2,{"x":"<&>"}]}}`
	s, err := run(New(), "x.json", []byte("\n  "+in+"\n"))
	if err != nil || len(s.Records) != 1 {
		t.Fatal(err, s.Skips, s.Fails)
	}
	if string(s.Records[0].Resource) != in {
		t.Errorf("resource = %s", s.Records[0].Resource)
	}
	if s.Records[0].Kind != "fancyfuturething" {
		t.Errorf("kind %q", s.Records[0].Kind)
	}
}

func TestBadInput(t *testing.T) {
	synthea := importertest.ReadFile(t, syntheaDir+"/Liz_Conn_27c911c6-f045-4ffa-af5d-6eba57ac94b2.json")
	deep := `{"resourceType":"Basic","x":` + strings.Repeat("[", 200) + strings.Repeat("]", 200) + `}`
	cases := []struct {
		name     string
		in       string
		is       error
		path     string
		line     int
		atOffset bool
	}{
		{"truncated bundle", string(synthea[:len(synthea)/2]), ErrTruncated, "entry[", 0, true},
		{"truncated resource", `{"resourceType":"Patient","name":[{"family":`, ErrTruncated, "name", 1, true},
		{"syntax error", "{\n\"resourceType\": \"Patient\",\n\"id\": x\n}", ErrInvalidJSON, "id", 3, true},
		{"empty", "", ErrInvalidJSON, "", 0, false},
		{"not an object", `["resourceType"]`, ErrNotResource, "", 0, false},
		{"no resourceType", `{"id":"a"}`, ErrNotResource, "", 0, false},
		{"resourceType not a string", `{"resourceType":5}`, ErrNotResource, "resourceType", 0, false},
		{"entry not an array", `{"resourceType":"Bundle","entry":{"resource":{}}}`, ErrWrongType, "entry", 1, true},
		{"bundle meta not an object", `{"resourceType":"Bundle","meta":[],"entry":[]}`, ErrWrongType, "meta", 0, false},
		{"trailing data", "{\"resourceType\":\"Patient\"}\n{\"resourceType\":\"Patient\"}", ErrTrailingData, "", 2, true},
		{"too deep", deep, ErrTooDeep, "", 0, false},
		{"resourceType twice", `{"resourceType":"Bundle","entry":[],"resourceType":"Patient"}`, ErrInvalidJSON, "resourceType", 1, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, err := run(New(), "dir/bad.json", []byte(c.in))
			var pe *importers.ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("err = %v (%T), want *ParseError", err, err)
			}
			if !errors.Is(err, c.is) {
				t.Errorf("err = %v, want %v", err, c.is)
			}
			if pe.File != "bad.json" || !strings.HasPrefix(pe.Path, c.path) {
				t.Errorf("file %q path %q, want %q", pe.File, pe.Path, c.path)
			}
			if c.line > 0 && pe.Line != c.line {
				t.Errorf("line %d, want %d", pe.Line, c.line)
			}
			if c.atOffset && pe.Offset <= 0 {
				t.Errorf("no offset in %v", err)
			}
			if strings.Contains(err.Error(), "Patient\"") || strings.Contains(err.Error(), "Test") {
				t.Errorf("error quotes the file: %v", err)
			}
			if len(s.Records) > 0 && c.name != "truncated bundle" {
				t.Errorf("%d records from a bad file", len(s.Records))
			}
		})
	}
}

func TestBadEntries(t *testing.T) {
	in := `{"resourceType":"Bundle","type":"collection","entry":[
	  {"fullUrl": 5, "resource": {"resourceType":"Patient"}},
	  {"resource": ["not", "an", "object"]},
	  {"resource": {"id": "no-type"}},
	  "a string",
	  {"resource": {"resourceType":"Patient","id":"ok","name":[{"family":"Secret"}]}}
	]}`
	s, err := run(New(), "b.json", []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Records) != 1 || s.Records[0].Provenance.OriginalID != "ok" {
		t.Fatalf("records %v", s.Records)
	}
	wantPaths := []string{"entry[0].fullUrl", "entry[1].resource", "entry[2].resource", "entry[3]"}
	if len(s.Fails) != len(wantPaths) {
		t.Fatalf("fails %v", s.Fails)
	}
	for i, f := range s.Fails {
		if f.Path != wantPaths[i] || f.File != "b.json" || f.Line != i+2 {
			t.Errorf("fail %d: %v", i, f)
		}
		if strings.Contains(f.Error(), "Secret") {
			t.Errorf("error quotes the file: %v", f)
		}
	}
	if !errors.Is(s.Fails[0], ErrWrongType) || !errors.Is(s.Fails[2], ErrNotResource) {
		t.Errorf("fail kinds: %v, %v", s.Fails[0], s.Fails[2])
	}
}

func TestBundleMemberOrder(t *testing.T) {
	// resourceType and meta after the entries.
	in := `{"entry":[{"fullUrl":"urn:uuid:a","resource":{"resourceType":"Patient"}},
	  {"resource":{"resourceType":"Observation","subject":{"reference":"urn:uuid:a"}}}],
	  "type":"collection","meta":{"source":"https://x.example"},"resourceType":"Bundle"}`
	s, err := run(New(), "o.json", []byte(in))
	if err != nil || len(s.Records) != 2 {
		t.Fatal(err, s.Fails)
	}
	obs, _ := record.Parse(s.Records[1].Resource)
	if obs.Str("subject.reference") != "Patient/a" || s.Records[1].Provenance.System != "https://x.example" {
		t.Errorf("observation %s, system %q", s.Records[1].Resource, s.Records[1].Provenance.System)
	}
	// A List has an "entry" member of its own: it stays one resource.
	list := `{"entry":[{"item":{"reference":"Patient/a"}}],"resourceType":"List","status":"current"}`
	s, err = run(New(), "l.json", []byte(list))
	if err != nil || len(s.Records) != 1 || string(s.Records[0].Resource) != list {
		t.Errorf("list: %v %v", err, s.Records)
	}
}

func TestImportBundleHelper(t *testing.T) {
	data := importertest.ReadFile(t, shcDir+"/example-00-a-fhirBundle.json")
	s := &importertest.Sink{}
	prov := record.Provenance{Method: record.MethodImported, Importer: "shc", File: "card", System: "https://issuer.example", Verified: true}
	if err := ImportBundle(context.Background(), data, prov, s); err != nil {
		t.Fatal(err)
	}
	if got := s.Counts(); got["Patient"] != 1 || got["Immunization"] != 3 {
		t.Fatalf("counts %v", got)
	}
	pat, _ := record.Parse(s.Records[0].Resource)
	for _, r := range s.Records {
		if !r.Provenance.Verified || r.Provenance.System != "https://issuer.example" || r.Provenance.OriginalID == "" {
			t.Errorf("provenance %+v", r.Provenance)
		}
		if r.ResourceType == "Immunization" {
			imm, _ := record.Parse(r.Resource)
			if imm.Str("patient.reference") != "Patient/"+pat.ID() {
				t.Errorf("patient reference %q", imm.Str("patient.reference"))
			}
		}
	}
	err := ImportBundle(context.Background(), []byte(`{"resourceType":"Patient"}`), prov, s)
	var pe *importers.ParseError
	if !errors.As(err, &pe) || pe.File != "card" {
		t.Errorf("non-bundle: %v", err)
	}
}

func TestNestedTooDeep(t *testing.T) {
	in := `{"resourceType":"Patient"}`
	for range MaxBundleNesting + 2 {
		in = `{"resourceType":"Bundle","entry":[{"resource":` + in + `}]}`
	}
	s, err := run(New(), "n.json", []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Records) != 0 || len(s.Fails) != 1 || !errors.Is(s.Fails[0], ErrTooDeep) {
		t.Errorf("records %d fails %v", len(s.Records), s.Fails)
	}
}

func TestCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	data := importertest.ReadFile(t, syntheaDir+"/Liz_Conn_27c911c6-f045-4ffa-af5d-6eba57ac94b2.json")
	err := New().Import(ctx, importertest.Input("x.json", data, nil), &importertest.Sink{})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v", err)
	}
}

type stopSink struct{ importertest.Sink }

var errStop = errors.New("stop")

func (s *stopSink) Record(r record.Record) error { return errStop }

func TestSinkErrorStops(t *testing.T) {
	data := importertest.ReadFile(t, syntheaDir+"/Liz_Conn_27c911c6-f045-4ffa-af5d-6eba57ac94b2.json")
	if err := New().Import(context.Background(), importertest.Input("x.json", data, nil), &stopSink{}); !errors.Is(err, errStop) {
		t.Errorf("fhir: err = %v", err)
	}
	data = importertest.ReadFile(t, bulkDir+"/Patient.000.ndjson")
	if err := NewNDJSON().Import(context.Background(), importertest.Input("x.ndjson", data, nil), &stopSink{}); !errors.Is(err, errStop) {
		t.Errorf("ndjson: err = %v", err)
	}
}
