package record

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestParseVital(t *testing.T) {
	tests := []struct {
		kind, in string
		want     Vital
		errPart  string
	}{
		{"bp", "120/80", Vital{Kind: "bp", Value: 120, Value2: 80, Unit: "mm[Hg]"}, ""},
		{"bp", "120/80 mmHg", Vital{Kind: "bp", Value: 120, Value2: 80, Unit: "mm[Hg]"}, ""},
		{"BP", " 135 / 85 ", Vital{Kind: "bp", Value: 135, Value2: 85, Unit: "mm[Hg]"}, ""},
		{"bp", "80/120", Vital{}, "not plausible"},
		{"bp", "120", Vital{}, "systolic/diastolic"},
		{"hr", "72", Vital{Kind: "hr", Value: 72, Unit: "/min"}, ""},
		{"hr", "72 bpm", Vital{Kind: "hr", Value: 72, Unit: "/min"}, ""},
		{"hr", "720", Vital{}, "plausible"},
		{"weight", "70kg", Vital{Kind: "weight", Value: 70, Unit: "kg"}, ""},
		{"weight", "154 lb", Vital{Kind: "weight", Value: 154, Unit: "[lb_av]"}, ""},
		{"weight", "154lbs", Vital{Kind: "weight", Value: 154, Unit: "[lb_av]"}, ""},
		{"weight", "70", Vital{}, "needs a unit"},
		{"weight", "70 stone", Vital{}, "unknown weight unit"},
		{"temp", "37.2C", Vital{Kind: "temp", Value: 37.2, Unit: "Cel"}, ""},
		{"temp", "99.1F", Vital{Kind: "temp", Value: 99.1, Unit: "[degF]"}, ""},
		{"temp", "99.1C", Vital{}, "plausible"},
		{"temp", "37.2K", Vital{}, "unknown temp unit"},
		{"glucose", "5.4mmol/L", Vital{Kind: "glucose", Value: 5.4, Unit: "mmol/L"}, ""},
		{"glucose", "97mg/dL", Vital{Kind: "glucose", Value: 97, Unit: "mg/dL"}, ""},
		{"glucose", "97", Vital{}, "needs a unit"},
		{"spo2", "97%", Vital{Kind: "spo2", Value: 97, Unit: "%"}, ""},
		{"spo2", "97", Vital{Kind: "spo2", Value: 97, Unit: "%"}, ""},
		{"spo2", "101%", Vital{}, "plausible"},
		{"stature", "180cm", Vital{}, "unknown vital"},
		{"hr", "", Vital{}, "empty"},
		{"hr", "fast", Vital{}, "must start with a number"},
	}
	for _, tt := range tests {
		t.Run(tt.kind+" "+tt.in, func(t *testing.T) {
			got, err := ParseVital(tt.kind, tt.in)
			if tt.errPart != "" {
				var ie *InputError
				if !errors.As(err, &ie) || !strings.Contains(err.Error(), tt.errPart) {
					t.Fatalf("err = %v, want InputError containing %q", err, tt.errPart)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Kind != tt.want.Kind || got.Value != tt.want.Value || got.Value2 != tt.want.Value2 || got.Unit != tt.want.Unit {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestParseWhen(t *testing.T) {
	loc := time.FixedZone("X", 3600)
	now := time.Date(2026, 11, 24, 15, 30, 0, 0, loc)
	tests := []struct {
		in   string
		want time.Time
		bad  bool
	}{
		{"2026-11-24", Day(2026, 11, 24), false},
		{"2026-11-24T08:30", time.Date(2026, 11, 24, 8, 30, 0, 0, loc), false},
		{"2026-11-24 08:30", time.Date(2026, 11, 24, 8, 30, 0, 0, loc), false},
		{"2026-11-24T08:30:15Z", time.Date(2026, 11, 24, 8, 30, 15, 0, time.UTC), false},
		{"today", Day(2026, 11, 24), false},
		{"Yesterday", Day(2026, 11, 23), false},
		{"now", now, false},
		{"2h ago", now.Add(-2 * time.Hour), false},
		{"30m ago", now.Add(-30 * time.Minute), false},
		{"3 days ago", now.Add(-72 * time.Hour), false},
		{"1w ago", now.Add(-7 * 24 * time.Hour), false},
		{"", time.Time{}, true},
		{"2026-13-01", time.Time{}, true},
		{"2h", time.Time{}, true},
		{"ago", time.Time{}, true},
		{"5 parsecs ago", time.Time{}, true},
		{"next tuesday", time.Time{}, true},
		{"0001-01-01", time.Time{}, true},
		{"1849-12-31", time.Time{}, true},
		{"1850-01-01", Day(1850, 1, 1), false},
		{"2127-01-01", time.Time{}, true},
		{"99999 w ago", time.Time{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseWhen(tt.in, now)
			if tt.bad {
				if err == nil {
					t.Fatalf("ParseWhen(%q) = %v, want error", tt.in, got)
				}
				return
			}
			if err != nil || !got.Equal(tt.want) || IsDay(got) != IsDay(tt.want) {
				t.Fatalf("ParseWhen(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestBuildersProduceValidCodedFHIR(t *testing.T) {
	c := Common{Subject: "Patient/p1", Now: time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)}
	bp, _ := ParseVital("bp", "120/80")
	wt, _ := ParseVital("weight", "154lb")
	gl, _ := ParseVital("glucose", "5.4mmol/L")
	at := time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)
	tests := []struct {
		name         string
		build        func() (Record, error)
		resourceType string
		kind         string
		display      string
		paths        map[string]string // path -> expected string value
	}{
		{"medication", func() (Record, error) {
			return NewMedication(c, Medication{Name: "Metformin", Dose: "500 mg", Frequency: "twice daily", Start: at, Reason: "Diabetes"})
		}, "MedicationStatement", KindMedication, "Metformin — 500 mg twice daily", map[string]string{
			"status": "active", "dosage.doseAndRate.doseQuantity.code": "mg", "dosage.doseAndRate.doseQuantity.system": UCUM,
			"effectivePeriod.start": "2026-11-23T08:00:00Z", "subject.reference": "Patient/p1", "reasonCode.text": "Diabetes"}},
		{"stopped medication", func() (Record, error) {
			return NewMedication(c, Medication{Name: "Amoxicillin", Start: at.AddDate(0, 0, -10), Stop: at})
		}, "MedicationStatement", KindMedication, "Amoxicillin — stopped 2026-11-23 08:00", map[string]string{"status": "completed", "effectivePeriod.end": "2026-11-23T08:00:00Z"}},
		{"dose", func() (Record, error) { return NewDose(c, Dose{Name: "Ibuprofen", At: at, Amount: "400 mg"}) },
			"MedicationAdministration", KindDose, "Ibuprofen — 400 mg", map[string]string{"status": "completed", "effectiveDateTime": "2026-11-23T08:00:00Z", "dosage.dose.code": "mg"}},
		{"symptom", func() (Record, error) { return NewSymptom(c, Symptom{Name: "Headache", Severity: 6, At: at}) },
			"Observation", KindSymptom, "Headache (severity 6/10)", map[string]string{"valueInteger": "6", "category.coding.code": SymptomCategory}},
		{"bp", func() (Record, error) { return NewVital(c, bp, at) }, "Observation", KindVital, "Blood pressure: 120/80 mmHg",
			map[string]string{"code.coding.code": LoincBP, "component.0.code.coding.code": LoincSystolic, "component.1.code.coding.code": LoincDiastolic,
				"component.0.valueQuantity.code": "mm[Hg]", "category.coding.code": "vital-signs"}},
		{"weight", func() (Record, error) { return NewVital(c, wt, at) }, "Observation", KindVital, "Body weight: 154 lb",
			map[string]string{"code.coding.code": LoincWeight, "valueQuantity.code": "[lb_av]", "valueQuantity.system": UCUM}},
		{"glucose mmol", func() (Record, error) { return NewVital(c, gl, at) }, "Observation", KindVital, "Blood glucose: 5.4 mmol/L",
			map[string]string{"code.coding.code": LoincGlucoseMol, "valueQuantity.code": "mmol/L"}},
		{"condition", func() (Record, error) { return NewCondition(c, "Asthma", at, "") }, "Condition", KindCondition, "Asthma",
			map[string]string{"clinicalStatus.coding.code": "active", "onsetDateTime": "2026-11-23T08:00:00Z"}},
		{"allergy", func() (Record, error) {
			return NewAllergy(c, Allergy{Substance: "Penicillin", Reaction: "Hives", Severity: "moderate"})
		}, "AllergyIntolerance", KindAllergy, "Penicillin (Hives)", map[string]string{"reaction.severity": "moderate", "patient.reference": "Patient/p1"}},
		{"immunization", func() (Record, error) { return NewImmunization(c, "Influenza", at, "lot 42") }, "Immunization", KindImmunization, "Influenza",
			map[string]string{"status": "completed", "occurrenceDateTime": "2026-11-23T08:00:00Z", "primarySource": "false"}},
		{"note", func() (Record, error) { return NewNote(c, "Walked 5 km", at) }, "DocumentReference", KindNote, "Walked 5 km",
			map[string]string{"type.coding.code": PatientNoteType, "content.attachment.contentType": "text/plain; charset=utf-8"}},
		{"patient", func() (Record, error) {
			return NewPatient(c, "Alice B Example", time.Date(1980, 2, 3, 0, 0, 0, 0, time.UTC))
		}, "Patient", KindPatient, "Alice B Example",
			map[string]string{"name.family": "Example", "birthDate": "1980-02-03"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := tt.build()
			if err != nil {
				t.Fatal(err)
			}
			if r.ResourceType != tt.resourceType || r.Kind != tt.kind || r.Display != tt.display {
				t.Fatalf("got %s/%s %q, want %s/%s %q", r.ResourceType, r.Kind, r.Display, tt.resourceType, tt.kind, tt.display)
			}
			res, err := Parse(r.Resource)
			if err != nil {
				t.Fatal(err)
			}
			if res.ID() != r.ID || !ValidID(r.ID) {
				t.Fatalf("resource id %q, record id %q", res.ID(), r.ID)
			}
			for p, want := range tt.paths {
				if got := res.Str(p); got != want {
					t.Errorf("%s = %q, want %q", p, got, want)
				}
			}
			if r.Provenance.Method != MethodSelf || r.Provenance.Source() != "self" {
				t.Errorf("provenance = %+v", r.Provenance)
			}
			if FingerprintInput(&r) != nil {
				t.Error("self-entered record has a fingerprint")
			}
		})
	}
}

func TestBuilderRefusals(t *testing.T) {
	c := Common{}
	tests := []struct {
		name  string
		field string
		build func() (Record, error)
	}{
		{"empty med", "name", func() (Record, error) { return NewMedication(c, Medication{Name: "  "}) }},
		{"stop before start", "stop", func() (Record, error) {
			return NewMedication(c, Medication{Name: "x", Start: time.Now(), Stop: time.Now().Add(-time.Hour)})
		}},
		{"bad dose", "dose", func() (Record, error) { return NewMedication(c, Medication{Name: "x", Dose: "lots"}) }},
		{"severity 11", "severity", func() (Record, error) { return NewSymptom(c, Symptom{Name: "x", Severity: 11}) }},
		{"allergy severity", "severity", func() (Record, error) { return NewAllergy(c, Allergy{Substance: "x", Severity: "deadly"}) }},
		{"empty note", "text", func() (Record, error) { return NewNote(c, "", time.Time{}) }},
		{"huge note", "text", func() (Record, error) { return NewNote(c, strings.Repeat("x", maxText+1), time.Time{}) }},
		{"invalid utf8", "name", func() (Record, error) { return NewCondition(c, "\xff\xfe", time.Time{}, "") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.build()
			var ie *InputError
			if !errors.As(err, &ie) || ie.Field != tt.field {
				t.Fatalf("err = %v, want InputError on %q", err, tt.field)
			}
		})
	}
}

func TestDeriveImported(t *testing.T) {
	tests := []struct {
		json    string
		kind    string
		date    string
		display string
	}{
		{`{"resourceType":"Observation","category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"laboratory"}]}],"code":{"coding":[{"system":"http://loinc.org","code":"4548-4","display":"Hemoglobin A1c"}]},"valueQuantity":{"value":6.1,"unit":"%"},"effectiveDateTime":"2019-03"}`,
			KindLab, "2019-03-01", "Hemoglobin A1c: 6.1 %"},
		{`{"resourceType":"Encounter","class":{"code":"AMB"},"type":[{"text":"Checkup"}],"period":{"start":"2018-05-01T10:00:00-05:00"}}`,
			KindEncounter, "2018-05-01", "Checkup"},
		{`{"resourceType":"CarePlan","title":"Diabetes plan","period":{"start":"2017"}}`, "careplan", "2017-01-01", "Diabetes plan"},
		{`{"resourceType":"Patient","name":[{"given":["Jorge"],"family":"Brekke"}]}`, KindPatient, "", "Jorge Brekke"},
		{`{"resourceType":"DiagnosticReport","code":{"text":"CBC"},"issued":"2020-01-02T03:04:05Z"}`, KindLab, "2020-01-02", "CBC"},
		{`{"resourceType":"Immunization","vaccineCode":{"coding":[{"system":"http://hl7.org/fhir/sid/cvx","code":"140"}]},"occurrenceDateTime":"2021-09-09"}`,
			KindImmunization, "2021-09-09", "Influenza, split virus, trivalent, injectable, preservative free"}, // CVX name from the terminology
		{`{"resourceType":"Basic"}`, "basic", "", "Basic"},
	}
	for _, tt := range tests {
		r, err := New([]byte(tt.json), Provenance{Method: MethodImported, Importer: "fhir"})
		if err != nil {
			t.Fatal(err)
		}
		d := ""
		if !r.Date.IsZero() {
			d = r.Date.UTC().Format("2006-01-02")
		}
		if r.Kind != tt.kind || d != tt.date || r.Display != tt.display {
			t.Errorf("%s: got %s %q %q, want %s %q %q", tt.json[:40], r.Kind, d, r.Display, tt.kind, tt.date, tt.display)
		}
	}
	for _, bad := range []string{``, `null`, `[]`, `{"id":"x"}`, `{"resourceType":7}`, `{`} {
		if _, err := New([]byte(bad), Provenance{}); !errors.Is(err, ErrNotResource) {
			t.Errorf("New(%q) = %v, want ErrNotResource", bad, err)
		}
	}
}

func TestFingerprintInput(t *testing.T) {
	imp := func(js string, p Provenance) []byte {
		p.Method = MethodImported
		r, err := New([]byte(js), p)
		if err != nil {
			t.Fatal(err)
		}
		return FingerprintInput(&r)
	}
	tests := []struct {
		name   string
		a, b   string
		pa, pb Provenance
		same   bool
	}{
		{"same source id, other content", `{"resourceType":"Condition","id":"1","code":{"text":"A"}}`, `{"resourceType":"Condition","id":"1","code":{"text":"changed"}}`,
			Provenance{System: "S", OriginalID: "1"}, Provenance{System: "S", OriginalID: "1"}, false},
		{"same identifier, other content", `{"resourceType":"Condition","identifier":[{"system":"x","value":"1"}],"code":{"text":"A"}}`, `{"resourceType":"Condition","identifier":[{"system":"x","value":"1"}],"code":{"text":"B"}}`,
			Provenance{}, Provenance{}, false},
		{"same content, other id, meta and member order", `{"resourceType":"Condition","meta":{"lastUpdated":"x"},"id":"9","code":{"text":"A"}}`, `{"code":{"text":"A"},"resourceType":"Condition","id":"7"}`,
			Provenance{}, Provenance{}, true},
		{"same content, other narrative", `{"resourceType":"Condition","text":{"status":"generated","div":"<div>a</div>"},"code":{"text":"A"}}`, `{"resourceType":"Condition","code":{"text":"A"}}`,
			Provenance{}, Provenance{}, true},
		{"same content, references to other ids", `{"resourceType":"Condition","subject":{"reference":"Patient/1"},"code":{"text":"A"}}`, `{"resourceType":"Condition","subject":{"reference":"Patient/2"},"code":{"text":"A"}}`,
			Provenance{}, Provenance{}, true},
		{"a reference's display is content", `{"resourceType":"MedicationStatement","medicationReference":{"reference":"Medication/1","display":"Aspirin"}}`, `{"resourceType":"MedicationStatement","medicationReference":{"reference":"Medication/1","display":"Ibuprofen"}}`,
			Provenance{}, Provenance{}, false},
		{"same content, other source", `{"resourceType":"Condition","code":{"text":"A"}}`, `{"resourceType":"Condition","code":{"text":"A"}}`,
			Provenance{}, Provenance{System: "Other"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(imp(tt.a, tt.pa)) == string(imp(tt.b, tt.pb)); got != tt.same {
				t.Errorf("same fingerprint = %v, want %v", got, tt.same)
			}
		})
	}
}

func TestIdentities(t *testing.T) {
	ids := func(js string, p Provenance) [][]byte {
		p.Method = MethodImported
		r, err := New([]byte(js), p)
		if err != nil {
			t.Fatal(err)
		}
		return Identities(&r)
	}
	shared := func(a, b [][]byte) bool {
		for _, x := range a {
			for _, y := range b {
				if bytes.Equal(x, y) {
					return true
				}
			}
		}
		return false
	}
	withID := `{"resourceType":"Immunization","identifier":[{"system":"urn:x","value":"1"}],"vaccineCode":{"text":"A"}}`
	tests := []struct {
		name   string
		a, b   string
		pa, pb Provenance
		shared bool
	}{
		{"one identifier, other content", withID, `{"resourceType":"Immunization","identifier":[{"system":"urn:x","value":"1"}],"vaccineCode":{"text":"A"},"occurrenceDateTime":"2020-01-01"}`, Provenance{}, Provenance{}, true},
		{"one identifier, another thing (a template's reused id)", withID, `{"resourceType":"Immunization","identifier":[{"system":"urn:x","value":"1"}],"vaccineCode":{"text":"B"}}`, Provenance{}, Provenance{}, false},
		{"one identifier, a shared code among others", `{"resourceType":"Condition","identifier":[{"system":"urn:x","value":"1"}],"code":{"coding":[{"system":"http://snomed.info/sct","code":"195967001"}]}}`, `{"resourceType":"Condition","identifier":[{"system":"urn:x","value":"1"}],"code":{"coding":[{"system":"2.16.840.1.113883.6.96","code":"195967001"},{"system":"http://hl7.org/fhir/sid/icd-10-cm","code":"J45.909"}]}}`, Provenance{}, Provenance{}, true},
		{"one identifier, other source", withID, withID, Provenance{}, Provenance{System: "Other"}, false},
		{"one identifier, other type", withID, `{"resourceType":"Procedure","identifier":[{"system":"urn:x","value":"1"}]}`, Provenance{}, Provenance{}, false},
		{"one shared identifier among others names nothing (Synthea's claim group)", `{"resourceType":"ExplanationOfBenefit","identifier":[{"system":"urn:clm","value":"1"},{"system":"urn:group","value":"9"}]}`, `{"resourceType":"ExplanationOfBenefit","identifier":[{"system":"urn:clm","value":"2"},{"system":"urn:group","value":"9"}]}`, Provenance{}, Provenance{}, false},
		{"an identifier without a system names nothing", `{"resourceType":"Immunization","identifier":[{"value":"1"}]}`, `{"resourceType":"Immunization","identifier":[{"value":"1"}]}`, Provenance{}, Provenance{}, false},
		{"source id in a known system", `{"resourceType":"Condition","code":{"text":"x"}}`, `{"resourceType":"Condition","code":{"text":"X"},"onsetDateTime":"2020"}`, Provenance{System: "S", OriginalID: "1"}, Provenance{System: "S", OriginalID: "1"}, true},
		{"source id without a system names nothing", `{"resourceType":"Condition"}`, `{"resourceType":"Condition"}`, Provenance{OriginalID: "1"}, Provenance{OriginalID: "1"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := shared(ids(tt.a, tt.pa), ids(tt.b, tt.pb)); got != tt.shared {
				t.Errorf("shared identity = %v, want %v", got, tt.shared)
			}
		})
	}
	self, _ := NewNote(Common{}, "x", time.Time{})
	if Identities(&self) != nil {
		t.Error("a self-entered record has identities")
	}
}

func TestFingerprintCluster(t *testing.T) {
	fp := func(js string, p Provenance) (in, cl []byte) {
		p.Method = MethodImported
		r, err := New([]byte(js), p)
		if err != nil {
			t.Fatal(err)
		}
		return Fingerprint(&r)
	}
	hk := Provenance{System: "Apple Health"}
	obs := func(when string, v int) string {
		return fmt.Sprintf(`{"resourceType":"Observation","code":{"text":"Heart rate"},"effectiveDateTime":%q,"valueQuantity":{"value":%d}}`, when, v)
	}
	tests := []struct {
		name                   string
		a, b                   string
		pa, pb                 Provenance
		sameInput, sameCluster bool
		noCluster              bool
	}{
		{"same content, other id and meta", obs("2024-03-05T08:00:00Z", 60), `{"id":"x","meta":{"versionId":"2"},` + obs("2024-03-05T08:00:00Z", 60)[1:], hk, hk, true, true, false},
		{"same day, other value", obs("2024-03-05T08:00:00Z", 60), obs("2024-03-05T23:59:59Z", 61), hk, hk, false, true, false},
		{"same instant in another zone is the same day in UTC", obs("2024-03-05T08:00:00Z", 60), obs("2024-03-05T09:00:00+01:00", 61), hk, hk, false, true, false},
		{"other day", obs("2024-03-05T08:00:00Z", 60), obs("2024-03-06T08:00:00Z", 60), hk, hk, false, false, false},
		{"other source", obs("2024-03-05T08:00:00Z", 60), obs("2024-03-05T08:00:00Z", 60), hk, Provenance{System: "Clinic"}, false, false, false},
		{"no date", `{"resourceType":"Observation","code":{"text":"a"}}`, `{"resourceType":"Observation","code":{"text":"b"}}`, hk, hk, false, true, false},
		{"source ids: clustered by content too", obs("2024-03-05T08:00:00Z", 60), obs("2024-03-05T08:00:00Z", 61), Provenance{System: "S", OriginalID: "1"}, Provenance{System: "S", OriginalID: "2"}, false, true, false},
		{"identifiers: other day, other cluster", `{"resourceType":"Condition","identifier":[{"value":"1"}],"onsetDateTime":"2020-01-01"}`, `{"resourceType":"Condition","identifier":[{"value":"1"}],"onsetDateTime":"2021-01-01"}`, hk, hk, false, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ia, ca := fp(tt.a, tt.pa)
			ib, cb := fp(tt.b, tt.pb)
			if got := bytes.Equal(ia, ib); got != tt.sameInput {
				t.Errorf("same input = %v, want %v", got, tt.sameInput)
			}
			if got := bytes.Equal(ca, cb); got != tt.sameCluster {
				t.Errorf("same cluster = %v, want %v", got, tt.sameCluster)
			}
			if (ca == nil) != tt.noCluster || (cb == nil) != tt.noCluster {
				t.Errorf("clusters %x, %x; want none: %v", ca, cb, tt.noCluster)
			}
		})
	}
}

func TestSummaryJSON(t *testing.T) {
	r, _ := NewCondition(Common{}, "Asthma", time.Date(2020, 1, 2, 0, 0, 0, 0, time.UTC), "")
	b, _ := json.Marshal(r.Summarize())
	for _, k := range []string{`"id"`, `"type":"condition"`, `"resourceType":"Condition"`, `"date":"2020-01-02T00:00:00Z"`, `"display":"Asthma"`, `"source":"self"`} {
		if !strings.Contains(string(b), k) {
			t.Errorf("summary %s lacks %s", b, k)
		}
	}
}

func FuzzParseVital(f *testing.F) {
	for _, s := range []string{"120/80", "70kg", "154 lb", "37.2C", "99.1F", "5.4mmol/L", "97mg/dL", "97%", "1e400", "/", ".", "-5kg"} {
		for _, k := range VitalKinds {
			f.Add(k, s)
		}
	}
	f.Fuzz(func(t *testing.T, kind, value string) {
		v, err := ParseVital(kind, value)
		if err != nil {
			var ie *InputError
			if !errors.As(err, &ie) {
				t.Fatalf("non-input error %T: %v", err, err)
			}
			return
		}
		if _, err := NewVital(Common{}, v, time.Unix(0, 0)); err != nil {
			t.Fatalf("parsed vital does not build: %v", err)
		}
	})
}

func FuzzParseWhen(f *testing.F) {
	for _, s := range []string{"2026-11-24", "2026-11-24T08:30", "today", "yesterday", "2h ago", "1.5 d ago", "99999999 w ago", "2026-11-24T08:30:00+01:00"} {
		f.Add(s)
	}
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseWhen(s, now)
		if err == nil && got.IsZero() {
			t.Fatalf("ParseWhen(%q) returned the zero time without error", s)
		}
	})
}

func FuzzDerive(f *testing.F) {
	f.Add([]byte(`{"resourceType":"Observation","code":{"text":"x"},"valueQuantity":{"value":1}}`))
	f.Add([]byte(`{"resourceType":"Patient","name":[{"given":["a"]}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r := Record{Resource: data, Provenance: Provenance{Method: MethodImported}}
		if err := r.Derive(); err != nil {
			return
		}
		// What Derive cached is what a record read back computes.
		in, cl := Fingerprint(&r)
		back := Record{Resource: r.Resource, ResourceType: r.ResourceType, Provenance: r.Provenance}
		in2, cl2 := Fingerprint(&back)
		if !bytes.Equal(in, in2) || !bytes.Equal(cl, cl2) {
			t.Fatalf("cached fingerprint %x/%x, recomputed %x/%x", in, cl, in2, cl2)
		}
	})
}

// A day stays a day, a time keeps what its source wrote.
func TestWhenAsWritten(t *testing.T) {
	tests := []struct {
		raw, text, clock string
		prec             Precision
		zone             bool
		y                int
		m                time.Month
		d                int
	}{
		{"2026-06-01", "2026-06-01", "", PrecisionDay, false, 2026, 6, 1},
		{"2013", "2013", "", PrecisionYear, false, 2013, 1, 1},
		{"2013-08", "2013-08", "", PrecisionMonth, false, 2013, 8, 1},
		{"2013-08-15T10:30:00", "2013-08-15 10:30", "10:30", PrecisionSecond, false, 2013, 8, 15},
		{"2013-08-15T23:30:00-05:00", "2013-08-15 23:30", "23:30", PrecisionSecond, true, 2013, 8, 15},
		{"2013-08-15T00:30:00+14:00", "2013-08-15 00:30", "00:30", PrecisionSecond, true, 2013, 8, 15},
		{"2024-01-02T03:04:05.678Z", "2024-01-02 03:04", "03:04", PrecisionSecond, true, 2024, 1, 2},
	}
	for _, tt := range tests {
		t.Run(tt.raw, func(t *testing.T) {
			for _, zone := range []string{"America/Los_Angeles", "Pacific/Kiritimati", "UTC"} {
				loc, err := time.LoadLocation(zone)
				if err != nil {
					t.Skip(err)
				}
				old := time.Local
				time.Local = loc
				w, err := ParseWhenValue(tt.raw)
				time.Local = old
				if err != nil {
					t.Fatal(err)
				}
				if w.String() != tt.text || w.Clock() != tt.clock || w.Precision != tt.prec || w.Zone != tt.zone {
					t.Errorf("%s: %q %q %v %v", zone, w.String(), w.Clock(), w.Precision, w.Zone)
				}
				if y, m, d := w.Date(); y != tt.y || m != tt.m || d != tt.d {
					t.Errorf("%s: day %d-%d-%d", zone, y, m, d)
				}
			}
		})
	}
	// A day typed by the patient is written as a FHIR date.
	day, err := ParseWhen("2026-06-01", time.Date(2026, 7, 1, 12, 0, 0, 0, time.FixedZone("W", -3*3600)))
	if err != nil || FHIRTime(day) != "2026-06-01" {
		t.Fatalf("FHIRTime(ParseWhen(2026-06-01)) = %q, %v", FHIRTime(day), err)
	}
	r, err := NewMedication(Common{}, Medication{Name: "x", Start: day})
	if err != nil {
		t.Fatal(err)
	}
	if w := r.When(); w.Raw != "2026-06-01" || w.Precision != PrecisionDay {
		t.Fatalf("medication start %+v", w)
	}
}

func TestNotFuture(t *testing.T) {
	now := time.Date(2026, 11, 24, 15, 30, 0, 0, time.FixedZone("X", 3600))
	for _, tt := range []struct {
		t    time.Time
		fine bool
	}{
		{Day(2026, 11, 24), true},
		{Day(2026, 11, 25), false},
		{now.Add(30 * time.Second), true},
		{now.Add(2 * time.Hour), false},
		{Day(2030, 1, 1), false},
	} {
		if err := NotFuture("at", tt.t, now); (err == nil) != tt.fine {
			t.Errorf("NotFuture(%v) = %v", tt.t, err)
		}
	}
}

// A stopped medication says so, and since when, in every listing.
func TestDisplayStoppedMedication(t *testing.T) {
	for _, tt := range []struct{ res, want string }{
		{`{"resourceType":"MedicationStatement","status":"completed","medicationCodeableConcept":{"text":"Metformin"},"effectivePeriod":{"start":"2026-01-10","end":"2026-11-20"}}`, "Metformin — stopped 2026-11-20"},
		{`{"resourceType":"MedicationStatement","status":"stopped","medicationCodeableConcept":{"text":"Metformin"}}`, "Metformin — stopped"},
		{`{"resourceType":"MedicationStatement","status":"on-hold","medicationCodeableConcept":{"text":"Metformin"}}`, "Metformin — on hold"},
		{`{"resourceType":"MedicationStatement","status":"active","medicationCodeableConcept":{"text":"Metformin"}}`, "Metformin"},
	} {
		r, err := Parse([]byte(tt.res))
		if err != nil {
			t.Fatal(err)
		}
		if got := DisplayOf(r); got != tt.want {
			t.Errorf("DisplayOf = %q, want %q", got, tt.want)
		}
	}
}

// TestCheckDates: the dates a record is listed by must be FHIR dates when
// people and apps write them; any precision is one.
func TestCheckDates(t *testing.T) {
	for _, tc := range []struct {
		resource string
		field    string // "" when it passes
	}{
		{`{"resourceType":"Condition","onsetDateTime":"2024"}`, ""},
		{`{"resourceType":"Condition","onsetDateTime":"2024-05"}`, ""},
		{`{"resourceType":"Condition","onsetDateTime":"2024-05-01T10:30:00+02:00"}`, ""},
		{`{"resourceType":"Condition"}`, ""},
		{`{"resourceType":"Patient","birthDate":"whenever"}`, ""},
		{`{"resourceType":"Condition","onsetDateTime":"Plorkington"}`, "onsetDateTime"},
		{`{"resourceType":"Observation","effectiveDateTime":"05/01/2024"}`, "effectiveDateTime"},
		{`{"resourceType":"Immunization","occurrenceDateTime":"2024-13-01"}`, "occurrenceDateTime"},
	} {
		res, err := Parse([]byte(tc.resource))
		if err != nil {
			t.Fatal(err)
		}
		err = CheckDates(res)
		var ie *InputError
		switch {
		case tc.field == "" && err != nil:
			t.Errorf("%s: %v", tc.resource, err)
		case tc.field != "" && (!errors.As(err, &ie) || ie.Field != tc.field):
			t.Errorf("%s: %v, want an InputError on %s", tc.resource, err, tc.field)
		}
	}
}
