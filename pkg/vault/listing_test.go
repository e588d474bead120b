package vault

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/phr-project/phr/pkg/record"
)

// whenRaw finds the date as written without decoding the resource; it
// must agree with record.When on every resource: the entries of the
// shared Synthea bundles, and the cases below that the fast path hands
// to the decoder (written for this test: no shared file has them).
func TestWhenRaw(t *testing.T) {
	var recs []record.Record
	files, _ := filepath.Glob("../../../shared/testdata/fhir/synthea-r4/*.json")
	if len(files) == 0 {
		t.Fatal("no shared Synthea bundles")
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var b struct {
			Entry []struct {
				Resource json.RawMessage `json:"resource"`
			} `json:"entry"`
		}
		if err := json.Unmarshal(data, &b); err != nil {
			t.Fatal(err)
		}
		for _, e := range b.Entry {
			r, err := record.New(e.Resource, record.Provenance{Method: record.MethodImported, Importer: "fhir"})
			if err != nil {
				t.Fatal(err)
			}
			recs = append(recs, r)
		}
	}
	for _, res := range []string{
		// The date twice, written alike: one string.
		`{"resourceType":"Observation","status":"final","code":{"text":"x"},"effectivePeriod":{"start":"2026-01-02T10:00:00+01:00","end":"2026-01-02T10:00:00+01:00"}}`,
		// The same instant written two ways: the decoder decides.
		`{"resourceType":"Observation","status":"final","code":{"text":"x"},"effectivePeriod":{"start":"2026-01-02T10:00:00+01:00","end":"2026-01-02T09:00:00Z"}}`,
		// A day.
		`{"resourceType":"Condition","code":{"text":"x"},"onsetDateTime":"2013-08-15","recordedDate":"2014-01-01"}`,
		// A time without an offset.
		`{"resourceType":"Observation","status":"final","code":{"text":"x"},"effectiveDateTime":"2013-08-15T10:30:00"}`,
		// An escaped string before the date.
		`{"resourceType":"Observation","status":"final","code":{"text":"a \"quoted\" name"},"effectiveDateTime":"2013-08-15T10:30:00Z"}`,
		// No date.
		`{"resourceType":"Patient","birthDate":"1970-01-01"}`,
	} {
		r, err := record.New([]byte(res), record.Provenance{Method: record.MethodImported, Importer: "fhir"})
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, r)
	}
	for i := range recs {
		if got, want := whenRaw(&recs[i]), recs[i].When().Raw; got != want {
			t.Errorf("%s: whenRaw = %q, When = %q", recs[i].ResourceType, got, want)
		}
	}
	t.Logf("%d resources", len(recs))
}
