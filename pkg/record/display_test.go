package record

import (
	"testing"
)

func TestDisplayOfNegations(t *testing.T) {
	tests := []struct {
		name, in, display, negation string
	}{
		{"refused vaccine",
			`{"resourceType":"Immunization","status":"not-done","vaccineCode":{"text":"Influenza vaccine"},"statusReason":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v3-ActReason","code":"PATOBJ"}]}}`,
			"Influenza vaccine — not given: patient objection", NegNotDone},
		{"refused vaccine, reason as text",
			`{"resourceType":"Immunization","status":"not-done","vaccineCode":{"coding":[{"system":"http://hl7.org/fhir/sid/cvx","code":"88"}]},"statusReason":{"text":"patient refused"}}`,
			"influenza virus vaccine, unspecified formulation — not given: patient refused", NegNotDone},
		{"vaccine not given, no reason",
			`{"resourceType":"Immunization","status":"not-done","vaccineCode":{"text":"MMR"}}`,
			"MMR — not given", NegNotDone},
		{"procedure not done",
			`{"resourceType":"Procedure","status":"not-done","code":{"text":"Colonoscopy"}}`,
			"Colonoscopy — not done", NegNotDone},
		{"medication not taken, dose left out",
			`{"resourceType":"MedicationStatement","status":"not-taken","medicationCodeableConcept":{"text":"Aspirin"},"dosage":[{"text":"81 mg daily"}],"statusReason":[{"text":"stomach upset"}]}`,
			"Aspirin — not taken: stomach upset", NegNotTaken},
		{"refuted problem",
			`{"resourceType":"Condition","verificationStatus":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/condition-ver-status","code":"refuted"}]},"code":{"text":"Asthma"}}`,
			"Asthma — refuted", NegRefuted},
		{"refuted allergy",
			`{"resourceType":"AllergyIntolerance","verificationStatus":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/allergyintolerance-verification","code":"refuted"}]},"code":{"text":"Penicillin"}}`,
			"Penicillin — refuted", NegRefuted},
		{"allergy entered in error",
			`{"resourceType":"AllergyIntolerance","verificationStatus":{"coding":[{"code":"entered-in-error"}]},"code":{"text":"Latex"}}`,
			"Latex — entered in error", NegEnteredInError},
		{"observation entered in error",
			`{"resourceType":"Observation","status":"entered-in-error","code":{"text":"Heart rate"},"valueQuantity":{"value":72,"unit":"/min"}}`,
			"Heart rate: 72/min — entered in error", NegEnteredInError},
		{"no known allergy, coded only",
			`{"resourceType":"AllergyIntolerance","code":{"coding":[{"system":"http://snomed.info/sct","code":"716186003"}]}}`,
			"No known allergy", NegNoneKnown},
		{"no known problems",
			`{"resourceType":"Condition","code":{"coding":[{"system":"http://snomed.info/sct","code":"160245001","display":"No current problems or disability"}]}}`,
			"No current problems or disability", NegNoneKnown},
		{"IPS absent-unknown code",
			`{"resourceType":"MedicationStatement","status":"active","medicationCodeableConcept":{"coding":[{"system":"http://hl7.org/fhir/uv/ips/CodeSystem/absent-unknown-uv-ips","code":"no-known-medications","display":"No known medications"}]}}`,
			"No known medications", NegNoneKnown},
		{"an observation coded like a situation is a fact",
			`{"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://snomed.info/sct","code":"716186003","display":"No known allergy"}]}}`,
			"No known allergy", ""},
		{"plain fact",
			`{"resourceType":"Immunization","status":"completed","vaccineCode":{"text":"Influenza vaccine"}}`,
			"Influenza vaccine", ""},
		// Names: raw codes read as their published names.
		{"SNOMED code without display",
			`{"resourceType":"AllergyIntolerance","code":{"coding":[{"system":"http://snomed.info/sct","code":"373270004"}]}}`,
			"Substance with penicillin structure and antibacterial mechanism of action", ""},
		{"medication by contained reference",
			`{"resourceType":"MedicationRequest","contained":[{"resourceType":"Medication","id":"med2","code":{"coding":[{"system":"http://www.nlm.nih.gov/research/umls/rxnorm","code":"582620","display":"Nizatidine 15 MG/ML Oral Solution [Axid]"}]}}],"medicationReference":{"reference":"#med2"}}`,
			"Nizatidine 15 MG/ML Oral Solution [Axid]", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Parse([]byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if got := DisplayOf(r); got != tt.display {
				t.Errorf("DisplayOf = %q, want %q", got, tt.display)
			}
			if got := NegationOf(r); got != tt.negation {
				t.Errorf("NegationOf = %q, want %q", got, tt.negation)
			}
			// The listing's fast path agrees, for a self-entered record
			// (not normalized) as for an imported one.
			for _, m := range []string{MethodSelf, MethodImported} {
				rec, err := New([]byte(tt.in), Provenance{Method: m})
				if err != nil {
					t.Fatal(err)
				}
				if s := rec.Summarize(); s.Negation != tt.negation || s.Display != tt.display {
					t.Errorf("%s: Summarize = %q, %q; want %q, %q", m, s.Display, s.Negation, tt.display, tt.negation)
				}
			}
		})
	}
}

func TestDisplayKeepsNegationWhenLong(t *testing.T) {
	long := make([]byte, 300)
	for i := range long {
		long[i] = 'x'
	}
	r := Resource{"resourceType": "Immunization", "status": "not-done", "vaccineCode": map[string]any{"text": string(long)}}
	got := []rune(DisplayOf(r))
	if len(got) > 200 || string(got[len(got)-len([]rune(" — not given")):]) != " — not given" {
		t.Errorf("DisplayOf = %q", string(got))
	}
}
