package pdfdoc_test

import (
	"bytes"
	"testing"

	"github.com/phr-project/phr/pkg/pdfdoc"
	"github.com/phr-project/phr/pkg/record"
)

// FuzzSummary renders any resource a record can hold (imports bring
// resources from outside, with any values in any field): Summary never
// panics and makes a PDF.
func FuzzSummary(f *testing.F) {
	for _, s := range []string{
		`{"resourceType":"AllergyIntolerance","code":{"text":"Penicillin"},"criticality":"high","reaction":[{"manifestation":[{"text":"hives"}],"severity":"severe"}]}`,
		`{"resourceType":"AllergyIntolerance","criticality":5,"reaction":"x","code":[1]}`,
		`{"resourceType":"Observation","category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"vital-signs"}]}],"code":{"coding":[{"system":"http://loinc.org","code":"85354-9"}]},"effectiveDateTime":"2026-06-14T08:00:00-05:00","component":[{"code":{"coding":[{"system":"http://loinc.org","code":"8480-6"}]},"valueQuantity":{"value":"high"}},{"code":"x"}]}`,
		`{"resourceType":"Observation","code":{"text":"HbA1c"},"valueQuantity":{"value":7.123456789,"unit":"{ratio}"},"referenceRange":[{"low":{"value":"a"},"high":{"value":5.6}}],"interpretation":{"coding":"H"}}`,
		`{"resourceType":"MedicationStatement","status":"active","medicationCodeableConcept":{"text":"\u0007\u200bx\u2028y"},"dosage":[{"doseAndRate":[{"doseQuantity":{"value":500,"unit":"mg"}}],"route":{"text":"oral"}}]}`,
		`{"resourceType":"Immunization","status":"not-done","vaccineCode":{"text":"Flu"},"statusReason":{"text":"refused"},"protocolApplied":[{"doseNumberPositiveInt":2}]}`,
		`{"resourceType":"Condition","clinicalStatus":{"coding":[{"code":"resolved"}]},"code":{"coding":[{"system":"http://snomed.info/sct","code":"38341003"}]},"onsetDateTime":"not a date"}`,
		`{"resourceType":"Patient","name":"x","birthDate":12,"identifier":[{"value":{}}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := record.New(data, record.Provenance{Method: record.MethodImported, Importer: "fhir"})
		if err != nil {
			return
		}
		pdf, err := pdfdoc.Summary(record.Record{}, []record.Record{r}, pdfdoc.Options{Now: now, Complete: true})
		if err != nil {
			t.Fatalf("Summary: %v", err)
		}
		if !bytes.HasPrefix(pdf, []byte("%PDF-")) {
			t.Fatal("not a PDF")
		}
	})
}
