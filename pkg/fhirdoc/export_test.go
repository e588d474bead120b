package fhirdoc

import (
	"bytes"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/phr-project/phr/pkg/record"
)

// exportRecords are the records of the export golden files: every row
// shape of the CSV template, a record each of the writers leaves out or
// keeps as is, a resource without an id and one written with spaces.
// Made here (no shared file holds them all at once); IDs fixed so that
// the output is the same on every run.
var exportResources = []struct{ id, resource string }{
	{"rec-patient", `{"resourceType":"Patient","id":"p1","name":[{"text":"Ada Lovelace"}],"birthDate":"1815-12-10"}`},
	{"rec-med", `{"resourceType":"MedicationStatement","id":"ms1","status":"active",
		"medicationCodeableConcept":{"coding":[{"system":"http://www.nlm.nih.gov/research/umls/rxnorm","code":"860975","display":"metformin 500 MG"}],"text":"Metformin 500 mg"},
		"dosage":[{"doseAndRate":[{"doseQuantity":{"value":500,"unit":"mg"}}]}],
		"effectivePeriod":{"start":"2030-01-04T08:00:00+01:00","end":"2030-03-01"},"note":[{"text":"with food"}]}`},
	{"rec-med-noname", `{"resourceType":"MedicationStatement","status":"active","effectiveDateTime":"2030-01-01"}`},
	{"rec-med-date", `{"resourceType":"MedicationStatement","id":"ms2","status":"completed",
		"medicationCodeableConcept":{"text":"Ibuprofen"},"effectiveDateTime":"2029-12"}`},
	{"rec-bp", `{"resourceType":"Observation","id":"bp1","status":"final",
		"category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"vital-signs"}]}],
		"code":{"coding":[{"system":"http://loinc.org","code":"85354-9"}]},"effectiveDateTime":"2030-03-04T09:30:00+01:00",
		"component":[{"code":{"coding":[{"system":"http://loinc.org","code":"8480-6"}]},"valueQuantity":{"value":120,"unit":"mm[Hg]"}},
		{"code":{"coding":[{"system":"http://loinc.org","code":"8462-4"}]},"valueQuantity":{"value":80,"unit":"mm[Hg]"}}]}`},
	{"rec-weight", `{"resourceType":"Observation","id":"w1","status":"final",
		"category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"vital-signs"}]}],
		"code":{"coding":[{"system":"http://loinc.org","code":"29463-7"}]},"effectiveDateTime":"2030-03-04",
		"valueQuantity":{"value":154.0,"unit":"[lb_av]"},"note":[{"text":"after breakfast"}]}`},
	{"rec-lab-lt", `{"resourceType":"Observation","id":"lab1","status":"final",
		"category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"laboratory"}]}],
		"code":{"coding":[{"system":"http://loinc.org","code":"2339-0","display":"Glucose"}]},
		"effectivePeriod":{"start":"2030-02-01T07:00:00Z","end":"2030-02-01T08:00:00Z"},"valueQuantity":{"value":5.40,"comparator":"<","unit":"mmol/L"}}`},
	{"rec-lab-string", `{"resourceType":"Observation","status":"final",
		"category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"laboratory"}]}],
		"code":{"text":"Urine color"},"effectiveDateTime":"2030-02-01T07:00:00","valueString":"amber"}`},
	{"rec-lab-concept", `{"resourceType":"Observation","id":"lab3","status":"final",
		"category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"laboratory"}]}],
		"code":{"coding":[{"system":"http://snomed.info/sct","code":"165816005"}],"text":"HIV test"},"effectiveDateTime":"2030",
		"valueCodeableConcept":{"text":"Negative"}}`},
	{"rec-condition", `{ "resourceType" : "Condition", "id" : "c1",
		"code" : { "text" : "Hypertension" } }`},
}

func exportRecords(t *testing.T) []record.Record {
	t.Helper()
	var recs []record.Record
	for _, e := range exportResources {
		r := record.Record{ID: e.id, Provenance: record.Provenance{Method: record.MethodImported, Importer: "fhir"}, Resource: []byte(e.resource)}
		if err := r.Derive(); err != nil {
			t.Fatalf("%s: %v", e.id, err)
		}
		recs = append(recs, r)
	}
	return recs
}

// each gives recs in order.
func each(recs []record.Record) Each {
	return func(fn func(record.Record) error) error {
		for _, r := range recs {
			if err := fn(r); err != nil {
				return err
			}
		}
		return nil
	}
}

// TestExportGolden: the writers of phr export write exactly the files in
// testdata/export, which the CLI's writers wrote before they moved here
// (outputs byte for byte unchanged), with the counts they returned.
func TestExportGolden(t *testing.T) {
	recs := exportRecords(t)
	tests := []struct {
		file           string
		write          func(w *bytes.Buffer) (n, skipped int, err error)
		wantN, wantSkp int
	}{
		{"records.ndjson", func(w *bytes.Buffer) (int, int, error) {
			n, err := WriteNDJSON(w, each(recs))
			return n, 0, err
		}, 10, 0},
		{"records.bundle.json", func(w *bytes.Buffer) (int, int, error) {
			n, err := WriteBundle(w, each(recs))
			return n, 0, err
		}, 10, 0},
		{"records.csv", func(w *bytes.Buffer) (int, int, error) { return WriteCSV(w, each(recs)) }, 7, 3},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			var b bytes.Buffer
			n, skipped, err := tt.write(&b)
			if err != nil {
				t.Fatal(err)
			}
			if n != tt.wantN || skipped != tt.wantSkp {
				t.Errorf("wrote %d, left out %d; want %d, %d", n, skipped, tt.wantN, tt.wantSkp)
			}
			want, err := os.ReadFile("testdata/export/" + tt.file)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(b.Bytes(), want) {
				t.Errorf("output differs from testdata/export/%s:\n%s", tt.file, b.Bytes())
			}
		})
	}
}

// TestExportErrors: a resource that is not JSON stops NDJSON and the
// bundle with an error naming the record by its ID (never its content);
// the CSV leaves it out, as it does a deleted record; the source's own
// error comes back as is.
func TestExportErrors(t *testing.T) {
	bad := record.Record{ID: "rec-bad", ResourceType: "Observation", Resource: []byte(`{"resourceType":"Observation","valueString":"secret`)}
	deleted := exportRecords(t)[6] // the lab with a comparator
	deleted.Deleted = true
	if _, err := WriteNDJSON(&bytes.Buffer{}, each([]record.Record{bad})); err == nil || !strings.Contains(err.Error(), "record rec-bad") || strings.Contains(err.Error(), "secret") {
		t.Errorf("WriteNDJSON error = %v", err)
	}
	if _, err := WriteBundle(&bytes.Buffer{}, each([]record.Record{bad})); err == nil || !strings.Contains(err.Error(), "record rec-bad") || strings.Contains(err.Error(), "secret") {
		t.Errorf("WriteBundle error = %v", err)
	}
	var b bytes.Buffer
	if n, skipped, err := WriteCSV(&b, each([]record.Record{bad, deleted})); err != nil || n != 0 || skipped != 2 {
		t.Errorf("WriteCSV = %d, %d, %v; want 0, 2, nil", n, skipped, err)
	}
	if got := b.String(); got != strings.Join(CSVColumns, ",")+"\n" {
		t.Errorf("WriteCSV wrote %q; want the header only", got)
	}
	stop := errors.New("source failed")
	failing := func(func(record.Record) error) error { return stop }
	if _, err := WriteNDJSON(&bytes.Buffer{}, failing); !errors.Is(err, stop) {
		t.Errorf("WriteNDJSON error = %v", err)
	}
	if _, _, err := WriteCSV(&bytes.Buffer{}, failing); !errors.Is(err, stop) {
		t.Errorf("WriteCSV error = %v", err)
	}
}
