package fhirdoc

import (
	"strings"
	"testing"

	"github.com/phr-project/phr/pkg/record"
)

// TestIPSSectionPlacement puts the smallest resource of each kind through
// BuildIPS and checks the section IPS 2.0.0 expects it in, negations and
// "none known" statements included (DECISIONS 5), and what BuildIPS adds
// that IPS requires.
func TestIPSSectionPlacement(t *testing.T) {
	rec := func(js string) record.Record {
		r, err := record.New([]byte(js), record.Provenance{Method: record.MethodImported, Importer: "fhir", System: "Clinic"})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	const snomed, loinc = `"http://snomed.info/sct"`, `"http://loinc.org"`
	status := func(sys, code string) string {
		return `{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/` + sys + `","code":"` + code + `"}]}`
	}
	tests := []struct {
		name, resource, section string
		narrative               string // in the section's narrative
	}{
		{"no known allergy", `{"resourceType":"AllergyIntolerance","code":{"coding":[{"system":` + snomed + `,"code":"716186003","display":"No known allergy"}]}}`, LOINCAllergies, "No known allergy"},
		{"refuted allergy", `{"resourceType":"AllergyIntolerance","verificationStatus":` + status("allergyintolerance-verification", "refuted") + `,"code":{"text":"Sulfa"}}`, LOINCAllergies, "Sulfa — refuted"},
		{"no known medications", `{"resourceType":"MedicationStatement","status":"active","medicationCodeableConcept":{"coding":[{"system":` + snomed + `,"code":"787481004","display":"No known medications"}]},"effectiveDateTime":"2026-01-02"}`, LOINCMedications, "No known medications"},
		{"medication not taken", `{"resourceType":"MedicationStatement","status":"not-taken","medicationCodeableConcept":{"text":"Ibuprofen"}}`, LOINCMedications, "Ibuprofen — not taken"},
		{"no current problems", `{"resourceType":"Condition","clinicalStatus":` + status("condition-clinical", "inactive") + `,"code":{"coding":[{"system":` + snomed + `,"code":"160245001","display":"No current problems or disability"}]}}`, LOINCProblems, "No current problems or disability"},
		{"refuted problem", `{"resourceType":"Condition","verificationStatus":` + status("condition-ver-status", "refuted") + `,"code":{"text":"Asthma"}}`, LOINCProblems, "Asthma — refuted"},
		{"active problem", `{"resourceType":"Condition","clinicalStatus":` + status("condition-clinical", "active") + `,"code":{"text":"Hypertension"},"onsetDateTime":"2019-05"}`, LOINCProblems, "Hypertension (2019-05)"},
		{"resolved problem", `{"resourceType":"Condition","clinicalStatus":` + status("condition-clinical", "resolved") + `,"code":{"text":"Appendicitis"},"onsetDateTime":"2009"}`, LOINCPastProblems, "Appendicitis (2009)"},
		{"vaccine not given", `{"resourceType":"Immunization","status":"not-done","vaccineCode":{"text":"Influenza vaccine"},"statusReason":{"text":"patient objection"},"occurrenceDateTime":"2024-10-01"}`, LOINCImmunizations, "Influenza vaccine — not given: patient objection (2024-10-01)"},
		{"no known immunizations", `{"resourceType":"Immunization","status":"not-done","vaccineCode":{"coding":[{"system":` + snomed + `,"code":"787482006","display":"No known immunizations"}]}}`, LOINCImmunizations, "No known immunizations"},
		{"smoking status", `{"resourceType":"Observation","status":"final","code":{"coding":[{"system":` + loinc + `,"code":"72166-2"}],"text":"Tobacco smoking status"},"valueCodeableConcept":{"text":"Never smoker"},"effectiveDateTime":"2026-03-01"}`, LOINCSocialHistory, "Never smoker"},
		{"pregnancy status", `{"resourceType":"Observation","status":"final","code":{"coding":[{"system":` + loinc + `,"code":"82810-3"}],"text":"Pregnancy status"},"valueCodeableConcept":{"text":"Not pregnant"},"effectiveDateTime":"2026-03-01"}`, LOINCPregnancy, "Not pregnant"},
		{"lab result", `{"resourceType":"Observation","status":"final","category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"laboratory"}]}],"code":{"text":"HbA1c"},"valueQuantity":{"value":7.9,"unit":"%"},"effectiveDateTime":"2026-05-20T08:15:00-05:00"}`, LOINCResults, "HbA1c: 7.9 % (2026-05-20 08:15)"},
		{"device use", `{"resourceType":"DeviceUseStatement","status":"active","device":{"display":"Hip prosthesis"}}`, LOINCMedicalDevices, "Hip prosthesis"},
		{"alert", `{"resourceType":"Flag","status":"active","code":{"text":"Shellfish free diet"}}`, LOINCAlerts, "Shellfish free diet"},
		{"advance directive", `{"resourceType":"Consent","status":"active","scope":{"text":"Treatment"},"category":[{"text":"Do not resuscitate"}]}`, LOINCAdvanceDirect, "Do not resuscitate"},
		{"care plan", `{"resourceType":"CarePlan","status":"active","intent":"plan","title":"Weight management"}`, LOINCPlanOfCare, "Weight management"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data, err := BuildIPS(record.Record{}, []record.Record{rec(tt.resource)}, tb0)
			if err != nil {
				t.Fatal(err)
			}
			b := parseBundle(t, data)
			checkReferences(t, b)
			secs := sectionsByCode(t, b.Entry[0].Resource)
			sec, ok := secs[tt.section]
			if !ok || len(record.Resource(sec).List("entry")) != 1 {
				t.Fatalf("not the one entry of section %s: %v", tt.section, secs)
			}
			if div := record.Resource(sec).Str("text.div"); !strings.Contains(div, tt.narrative) {
				t.Errorf("narrative %q lacks %q", div, tt.narrative)
			}
			for code, s := range secs {
				if code != tt.section && record.Resource(s).Get("entry") != nil {
					t.Errorf("also in section %s", code)
				}
			}
			// Every entry refers to the bundle's Patient (added when the
			// record had no subject).
			res := record.Resource(b.Entry[len(b.Entry)-1].Resource)
			field := ipsSubjectField[res.Type()]
			if res.Str(field+".reference") != b.Entry[1].FullURL {
				t.Errorf("%s.%s = %q, want the Patient", res.Type(), field, res.Str(field+".reference"))
			}
		})
	}
}

func TestIPSRequiredAbsences(t *testing.T) {
	rec := func(js string) record.Record {
		r, err := record.New([]byte(js), record.Provenance{Method: record.MethodImported, Importer: "fhir"})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	smoking := func(day, value string) record.Record {
		return rec(`{"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"72166-2"}]},"valueCodeableConcept":{"text":"` + value + `"},"effectiveDateTime":"` + day + `"}`)
	}
	unnamed := rec(`{"resourceType":"Patient","gender":"female"}`)
	data, err := BuildIPS(unnamed, []record.Record{
		rec(`{"resourceType":"MedicationStatement","status":"active","medicationCodeableConcept":{"text":"Metformin"}}`),
		smoking("2020-01-01", "Current every day smoker"),
		smoking("2026-01-01", "Former smoker"),
		smoking("2023-01-01", "Current some day smoker"),
	}, tb0)
	if err != nil {
		t.Fatal(err)
	}
	b := parseBundle(t, data)
	p := record.Resource(b.Entry[1].Resource)
	if p.Str("gender") != "female" || p.Str("name.0._text.extension.0.valueCode") != "unknown" || p.Str("_birthDate.extension.0.valueCode") != "unknown" {
		t.Errorf("patient %v", p)
	}
	secs := sectionsByCode(t, b.Entry[0].Resource)
	social := record.Resource(secs[LOINCSocialHistory])
	if n := len(social.List("entry")); n != 1 || !strings.Contains(social.Str("text.div"), "Former smoker") {
		t.Errorf("social history: %d entries, %s", n, social.Str("text.div"))
	}
	for _, e := range b.Entry {
		r := record.Resource(e.Resource)
		if r.Type() == "MedicationStatement" && r.Str("_effectiveDateTime.extension.0.valueCode") != "unknown" {
			t.Errorf("medication statement without effective time: %v", r)
		}
		if r.Type() == "Observation" && strings.Contains(r.Str("valueCodeableConcept.text"), "Current") {
			t.Errorf("an older smoking status is in the summary: %v", r)
		}
	}
}
