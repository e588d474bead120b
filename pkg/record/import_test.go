package record_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"testing"

	"github.com/phr-project/phr/pkg/importers"
	"github.com/phr-project/phr/pkg/importers/applehealth"
	"github.com/phr-project/phr/pkg/importers/fhir"
	"github.com/phr-project/phr/pkg/record"
)

type collectSink struct{ res [][]byte }

func (s *collectSink) Record(r record.Record) error { s.res = append(s.res, r.Resource); return nil }
func (s *collectSink) Skip(string, string)          {}
func (s *collectSink) Fail(*importers.ItemError)    {}

// BenchmarkNewAppleHealth measures what normalization adds to
// record.New on the resources of a real Apple Health export (11,000
// records): "new" is record.New as an importer calls it, "unnormalized"
// the same without normalization. Compare the two within one run (-count
// interleaves them): the machines are shared and wall times are noisy.
func BenchmarkNewAppleHealth(b *testing.B) {
	data, err := os.ReadFile("../../../shared/testdata/apple-health/ashtom-hkimport/Data/export.xml")
	if err != nil {
		b.Skip(err)
	}
	s := &collectSink{}
	in := &importers.Input{Name: "export.xml", R: bytes.NewReader(data), Size: int64(len(data))}
	if err := applehealth.New().Import(context.Background(), in, s); err != nil {
		b.Fatal(err)
	}
	prov := record.Provenance{Method: record.MethodImported, Importer: "applehealth"}
	for _, skip := range []bool{false, true} {
		name := map[bool]string{false: "new", true: "unnormalized"}[skip]
		b.Run(name, func(b *testing.B) {
			record.SetSkipNormalize(skip)
			defer record.SetSkipNormalize(false)
			b.ReportAllocs()
			for b.Loop() {
				for _, res := range s.res {
					if _, err := record.New(res, prov); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}

// importFHIR imports FHIR files from the shared test data, as one file's
// records each, in order.
func importFHIR(t *testing.T, paths ...string) []record.Record {
	t.Helper()
	s := &keepSink{}
	for _, p := range paths {
		data, err := os.ReadFile("../../../shared/testdata/" + p)
		if err != nil {
			t.Skip(err)
		}
		in := &importers.Input{Name: p, R: bytes.NewReader(data), Size: int64(len(data))}
		if err := fhir.New().Import(context.Background(), in, s); err != nil {
			t.Fatal(err)
		}
	}
	return s.recs
}

type keepSink struct{ recs []record.Record }

func (s *keepSink) Record(r record.Record) error { s.recs = append(s.recs, r); return nil }
func (s *keepSink) Skip(string, string)          {}
func (s *keepSink) Fail(*importers.ItemError)    {}

// TestResolveMedicationRefs: medications that name their drug only by a
// reference to a Medication of the same file read as that medication.
func TestResolveMedicationRefs(t *testing.T) {
	t.Run("US Core MedicationRequest with a contained Medication", func(t *testing.T) {
		// The example carries the display already; without it, New finds
		// the name in the contained Medication.
		recs := importFHIR(t, "fhir/us-core-examples/medicationrequest-contained-oral-axid.json")
		mr := findRecord(t, recs, "MedicationRequest")
		res, _ := record.Parse(mr.Resource)
		delete(res["medicationReference"].(map[string]any), "display")
		b, _ := json.Marshal(map[string]any(res))
		self, err := record.New(b, record.Provenance{Method: record.MethodSelf})
		if err != nil {
			t.Fatal(err)
		}
		imported, err := record.New(b, mr.Provenance)
		if err != nil {
			t.Fatal(err)
		}
		want := "Nizatidine 15 MG/ML Oral Solution [Axid] — 10 mL bid"
		if self.Display != want || imported.Display != want {
			t.Errorf("display %q (not normalized), %q (normalized); want %q", self.Display, imported.Display, want)
		}
		if r, _ := record.Parse(imported.Resource); r.Str("medicationReference.display") != "Nizatidine 15 MG/ML Oral Solution [Axid]" {
			t.Errorf("reference display not written: %s", imported.Resource)
		}
	})
	t.Run("US Core MedicationRequest and Medication in separate files", func(t *testing.T) {
		recs := importFHIR(t, "fhir/us-core-examples/uscore-med2.json", "fhir/us-core-examples/medicationrequest-referenced-oral-axid.json")
		// The example carries a display already; take it out to see it
		// come back from the Medication.
		mr := findRecord(t, recs, "MedicationRequest")
		res, _ := record.Parse(mr.Resource)
		delete(res["medicationReference"].(map[string]any), "display")
		b, _ := json.Marshal(map[string]any(res))
		stripped, err := record.New(b, mr.Provenance)
		if err != nil {
			t.Fatal(err)
		}
		if stripped.Display != "MedicationRequest — 10 mL bid" {
			t.Fatalf("stripped: %q", stripped.Display)
		}
		for i := range recs {
			if recs[i].ResourceType == "MedicationRequest" {
				recs[i] = stripped
			}
		}
		if err := record.ResolveMedicationRefs(recs); err != nil {
			t.Fatal(err)
		}
		if got := findRecord(t, recs, "MedicationRequest").Display; got != "Nizatidine 15 MG/ML Oral Solution [Axid] — 10 mL bid" {
			t.Errorf("after: %q", got)
		}
	})
	t.Run("no Medication among the records: nothing changes", func(t *testing.T) {
		recs := importFHIR(t, "fhir/us-core-examples/medicationrequest-referenced-oral-axid.json")
		before := string(recs[0].Resource)
		if err := record.ResolveMedicationRefs(recs); err != nil || string(recs[0].Resource) != before {
			t.Errorf("changed: %v", err)
		}
	})
}

func findRecord(t *testing.T, recs []record.Record, typ string) record.Record {
	t.Helper()
	for _, r := range recs {
		if r.ResourceType == typ {
			return r
		}
	}
	t.Fatalf("no %s among %d records", typ, len(recs))
	return record.Record{}
}

// BenchmarkSummarizeAppleHealth measures the listing shape of 11,000
// Apple Health records, whose negation Summarize reads from the resource
// bytes without parsing them.
func BenchmarkSummarizeAppleHealth(b *testing.B) {
	data, err := os.ReadFile("../../../shared/testdata/apple-health/ashtom-hkimport/Data/export.xml")
	if err != nil {
		b.Skip(err)
	}
	s := &keepSink{}
	in := &importers.Input{Name: "export.xml", R: bytes.NewReader(data), Size: int64(len(data))}
	if err := applehealth.New().Import(context.Background(), in, s); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		for i := range s.recs {
			if s.recs[i].Summarize().Negation != "" {
				b.Fatal("negated sample")
			}
		}
	}
}
