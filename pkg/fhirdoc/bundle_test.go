package fhirdoc

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/phr-project/phr/pkg/record"
)

var tb0 = time.Date(2030, 3, 4, 9, 30, 0, 0, time.UTC)

type testVault struct {
	patient record.Record
	recs    []record.Record
}

// mustRecord panics on a builder error: the builders' inputs here are
// fixed and valid.
func mustRecord(r record.Record, err error) record.Record {
	if err != nil {
		panic(err)
	}
	return r
}

// imported wraps a resource as an imported record.
func imported(t *testing.T, resource string) record.Record {
	t.Helper()
	r, err := record.New([]byte(resource), record.Provenance{Method: record.MethodImported, Importer: "fhir", System: "https://ehr.example.org"})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// sampleVault holds a patient, patient-entered data and imported data
// whose references point at the source system's ids.
func sampleVault(t *testing.T) testVault {
	pat := mustRecord(record.NewPatient(record.Common{Now: tb0}, "Ada Lovelace", time.Date(1815, 12, 10, 0, 0, 0, 0, time.UTC)))
	c := record.Common{Subject: "Patient/" + pat.ID, Now: tb0}
	bp, err := record.ParseVital("bp", "120/80")
	if err != nil {
		t.Fatal(err)
	}
	v := testVault{patient: pat}
	v.recs = []record.Record{
		mustRecord(record.NewMedication(c, record.Medication{Name: `<script>alert("x")</script> & Co`, Dose: "500 mg", Start: tb0.AddDate(0, -1, 0)})),
		mustRecord(record.NewAllergy(c, record.Allergy{Substance: "Penicillin", Reaction: "rash"})),
		mustRecord(record.NewCondition(c, "Hypertension", tb0.AddDate(-2, 0, 0), "")),
		mustRecord(record.NewVital(c, bp, tb0)),
		mustRecord(record.NewImmunization(c, "Influenza vaccine", tb0.AddDate(0, -3, 0), "")),
		mustRecord(record.NewSymptom(c, record.Symptom{Name: "Headache", Severity: 4, At: tb0})),
		// Imported: the source system's own patient id and references.
		imported(t, `{"resourceType":"Patient","id":"src-patient","name":[{"text":"Ada L."}]}`),
		imported(t, `{"resourceType":"Observation","id":"obs1","status":"final",
			"category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"laboratory"}]}],
			"code":{"coding":[{"system":"http://loinc.org","code":"2339-0","display":"Glucose"}]},
			"subject":{"reference":"Patient/src-patient"},
			"performer":[{"reference":"Practitioner/dr1","display":"Dr. One"},{"reference":"https://other.example/fhir/Organization/o9"}],
			"effectiveDateTime":"2030-02-01","valueQuantity":{"value":5.40,"unit":"mmol/L"}}`),
		imported(t, `{"resourceType":"DiagnosticReport","id":"rep1","status":"final",
			"code":{"text":"Metabolic panel"},"subject":{"reference":"https://ehr.example.org/fhir/Patient/src-patient/_history/3"},
			"result":[{"reference":"Observation/obs1"}],"effectiveDateTime":"2030-02-01"}`),
		imported(t, `{"resourceType":"Medication","id":"med1","code":{"text":"Metformin 500 mg tablet"}}`),
		imported(t, `{"resourceType":"MedicationStatement","id":"ms1","status":"active",
			"medicationReference":{"reference":"Medication/med1"},"subject":{"reference":"Patient/src-patient"},
			"contained":[{"resourceType":"Medication","id":"c1"}],"reasonReference":[{"reference":"#c1"}],
			"effectiveDateTime":"2029-06-01"}`),
		imported(t, `{"resourceType":"Condition","id":"cond-err","verificationStatus":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/condition-ver-status","code":"entered-in-error"}]},
			"code":{"text":"Mistake"},"subject":{"reference":"Patient/src-patient"}}`),
	}
	deleted := mustRecord(record.NewCondition(c, "Deleted condition", tb0, ""))
	deleted.Deleted = true
	v.recs = append(v.recs, deleted)
	return v
}

type parsedBundle struct {
	ResourceType string `json:"resourceType"`
	Type         string `json:"type"`
	Timestamp    string `json:"timestamp"`
	Identifier   *struct {
		System, Value string
	} `json:"identifier"`
	Entry []struct {
		FullURL  string         `json:"fullUrl"`
		Resource map[string]any `json:"resource"`
	} `json:"entry"`
}

func parseBundle(t *testing.T, data []byte) parsedBundle {
	t.Helper()
	var b parsedBundle
	if err := json.Unmarshal(data, &b); err != nil {
		t.Fatalf("bundle is not JSON: %v", err)
	}
	if b.ResourceType != "Bundle" {
		t.Fatalf("resourceType %q", b.ResourceType)
	}
	return b
}

// checkReferences fails unless every reference in the bundle names an
// entry's fullUrl (or a contained resource), and every fullUrl is a
// unique urn:uuid.
func checkReferences(t *testing.T, b parsedBundle) {
	t.Helper()
	urls := map[string]bool{}
	for _, e := range b.Entry {
		if !strings.HasPrefix(e.FullURL, "urn:uuid:") || len(e.FullURL) != len("urn:uuid:")+36 {
			t.Errorf("fullUrl %q", e.FullURL)
		}
		if urls[e.FullURL] {
			t.Errorf("duplicate fullUrl %q", e.FullURL)
		}
		urls[e.FullURL] = true
	}
	for _, e := range b.Entry {
		walkReferences(e.Resource, func(ref map[string]any) {
			s := ref["reference"].(string)
			if !urls[s] && !strings.HasPrefix(s, "#") {
				t.Errorf("%s: reference %q does not resolve inside the bundle", e.Resource["resourceType"], s)
			}
		})
	}
}

func findEntries(b parsedBundle, resourceType string) []map[string]any {
	var out []map[string]any
	for _, e := range b.Entry {
		if e.Resource["resourceType"] == resourceType {
			out = append(out, e.Resource)
		}
	}
	return out
}

func TestBuildBundle(t *testing.T) {
	v := sampleVault(t)
	data, err := BuildBundle(v.patient, v.recs)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(data), `{"resourceType":"Bundle",`) {
		t.Errorf("bundle starts %.40q", data)
	}
	b := parseBundle(t, data)
	if b.Type != "collection" {
		t.Errorf("type %q", b.Type)
	}
	// Patient first; the imported Patient and the deleted record left out;
	// everything else in order.
	if len(b.Entry) != 1+len(v.recs)-2 {
		t.Fatalf("%d entries", len(b.Entry))
	}
	if b.Entry[0].Resource["resourceType"] != "Patient" || b.Entry[0].Resource["id"] != v.patient.ID {
		t.Fatalf("first entry %v", b.Entry[0].Resource)
	}
	patientURL := b.Entry[0].FullURL
	if n := len(findEntries(b, "Patient")); n != 1 {
		t.Errorf("%d Patients", n)
	}
	checkReferences(t, b)

	obs := findEntries(b, "Observation")
	var lab map[string]any
	for _, o := range obs {
		if o["id"] == "obs1" {
			lab = o
		}
		if got := record.Resource(o).Str("subject.reference"); got != patientURL {
			t.Errorf("observation subject %q, want the bundle patient", got)
		}
	}
	if lab == nil {
		t.Fatal("lab observation missing")
	}
	// Unresolvable references keep a display and lose the reference.
	perf := record.Resource(lab).List("performer")
	if p0 := perf[0].(map[string]any); p0["display"] != "Dr. One" || p0["reference"] != nil {
		t.Errorf("performer[0] = %v", p0)
	}
	if p1 := perf[1].(map[string]any); p1["display"] != "Organization (not included in this share)" || p1["reference"] != nil {
		t.Errorf("performer[1] = %v", p1)
	}
	// Numbers are kept as written.
	if !strings.Contains(string(data), `"value":5.40`) {
		t.Errorf("valueQuantity changed: numbers must be kept exactly")
	}
	rep := findEntries(b, "DiagnosticReport")[0]
	if got := record.Resource(rep).Str("subject.reference"); got != patientURL {
		t.Errorf("absolute history reference to the patient became %q", got)
	}
	ms := findEntries(b, "MedicationStatement")
	for _, m := range ms {
		if m["id"] != "ms1" {
			continue
		}
		if got := record.Resource(m).Str("reasonReference.0.reference"); got != "#c1" {
			t.Errorf("contained reference became %q", got)
		}
	}
	// A bundle without a patient record still builds; an imported Patient
	// stands in.
	data, err = BuildBundle(record.Record{}, v.recs)
	if err != nil {
		t.Fatal(err)
	}
	b = parseBundle(t, data)
	if b.Entry[0].Resource["id"] != "src-patient" {
		t.Errorf("stand-in patient %v", b.Entry[0].Resource["id"])
	}
	checkReferences(t, b)
}

func TestBuildBundleErrors(t *testing.T) {
	if _, err := BuildBundle(record.Record{}, []record.Record{{ID: "x", Resource: []byte(`[1]`)}}); err == nil {
		t.Error("a non-resource record was accepted")
	}
	obs := record.Record{ID: "y", Resource: []byte(`{"resourceType":"Observation"}`)}
	if _, err := BuildBundle(obs, nil); err == nil {
		t.Error("a non-Patient patient was accepted")
	}
	data, err := BuildBundle(record.Record{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if b := parseBundle(t, data); len(b.Entry) != 0 {
		t.Errorf("empty bundle has %d entries", len(b.Entry))
	}
}

func TestParseReference(t *testing.T) {
	for ref, want := range map[string]string{
		"Patient/123":                            "Patient 123",
		"https://x.org/fhir/Observation/a":       "Observation a",
		"Observation/a/_history/2":               "Observation a",
		"urn:uuid:1234":                          "",
		"#c1":                                    "",
		"Patient?identifier=x":                   "",
		"patient/1":                              "",
		"Patient/":                               "",
		"justanid":                               "",
		"https://x.org/fhir/Patient/p/_history/": "Patient p",
	} {
		typ, id, ok := parseReference(ref)
		got := ""
		if ok {
			got = typ + " " + id
		}
		if got != want {
			t.Errorf("parseReference(%q) = %q, want %q", ref, got, want)
		}
	}
}

// TestBuildBundleNormalizes: records stored before imports were normalized
// leave in a share with names, UCUM units and medication names.
func TestBuildBundleNormalizes(t *testing.T) {
	recs := []record.Record{
		stored(t, `{"resourceType":"Immunization","id":"i1","status":"completed","vaccineCode":{"coding":[{"system":"http://hl7.org/fhir/sid/cvx","code":"140"}]}}`),
		stored(t, `{"resourceType":"Medication","id":"m1","code":{"text":"Lisinopril 10 MG Oral Tablet"}}`),
		stored(t, `{"resourceType":"MedicationRequest","id":"mr1","status":"active","intent":"order","medicationReference":{"reference":"Medication/m1"}}`),
		stored(t, `{"resourceType":"Observation","id":"o1","status":"final","code":{"text":"Dose"},"valueQuantity":{"value":1,"unit":"tablet","system":"http://unitsofmeasure.org","code":"tablet"}}`),
	}
	data, err := BuildBundle(record.Record{}, recs)
	if err != nil {
		t.Fatal(err)
	}
	b := parseBundle(t, data)
	checkReferences(t, b)
	if d := record.Resource(findEntries(b, "Immunization")[0]).Str("vaccineCode.coding.0.display"); d != "Influenza, split virus, trivalent, injectable, preservative free" {
		t.Errorf("vaccine display %q", d)
	}
	if d := record.Resource(findEntries(b, "MedicationRequest")[0]).Str("medicationReference.display"); d != "Lisinopril 10 MG Oral Tablet" {
		t.Errorf("medication reference display %q", d)
	}
	if q := record.Resource(findEntries(b, "Observation")[0]); q.Get("valueQuantity.system") != nil || q.Str("valueQuantity.unit") != "tablet" {
		t.Errorf("non-UCUM unit still labelled UCUM: %v", q["valueQuantity"])
	}
}
