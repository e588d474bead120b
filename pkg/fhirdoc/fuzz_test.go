package fhirdoc

import (
	"encoding/json"
	"errors"
	"testing"
)

// FuzzCheckKTCBundle checks that CheckKTCBundle never panics, that every
// error is an ErrKTC, and that what it accepts is a collection Bundle
// with a timestamp, at least two entries and exactly one Patient.
func FuzzCheckKTCBundle(f *testing.F) {
	f.Add([]byte(`{"resourceType":"Bundle","type":"collection","timestamp":"2026-01-30T12:00:00Z","entry":[{"fullUrl":"urn:uuid:1","resource":{"resourceType":"Patient"}},{"fullUrl":"urn:uuid:2","resource":{"resourceType":"Condition","code":{"text":"x"}}}]}`))
	f.Add([]byte(`{"resourceType":"Bundle","type":"collection","timestamp":"2026","entry":[{"fullUrl":"a","resource":{"resourceType":"Patient"}},{"fullUrl":"b","resource":{"resourceType":"DocumentReference","status":"current","type":{"coding":[{"system":"http://loinc.org","code":"60591-5"}]},"category":[{"coding":[{"system":"https://cms.gov/fhir/CodeSystem/patient-shared-category","code":"patient-shared"}]}],"subject":{"reference":"a"},"author":[{"reference":"a"}],"date":"2026","content":[{"attachment":{"contentType":"application/pdf","data":"JVBERi0="}}]}}]}`))
	f.Add([]byte(`{"resourceType":"Bundle","type":"document","entry":[]}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"resourceType":"Bundle","type":"collection","timestamp":"2026-01-30T12:00:00Z","entry":[{"fullUrl":"u","resource":null},{}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		err := CheckKTCBundle(data)
		if err != nil {
			if !errors.Is(err, ErrKTC) {
				t.Fatalf("error %v is not an ErrKTC", err)
			}
			return
		}
		var b struct {
			Type, Timestamp string
			Entry           []struct{ Resource map[string]any }
		}
		if json.Unmarshal(data, &b) != nil || b.Type != "collection" || b.Timestamp == "" || len(b.Entry) < 2 {
			t.Fatalf("accepted %q", data)
		}
		patients := 0
		for _, e := range b.Entry {
			if e.Resource["resourceType"] == "Patient" {
				patients++
			}
		}
		if patients != 1 {
			t.Fatalf("accepted %d Patients", patients)
		}
	})
}
