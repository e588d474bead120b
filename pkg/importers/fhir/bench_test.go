package fhir

import (
	"context"
	"testing"

	"github.com/phr-project/phr/pkg/importers"
	"github.com/phr-project/phr/pkg/record"
)

func benchImport(b *testing.B, imp importers.Importer, path string) {
	data := readFile(b, path)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		s := &countSink{}
		if err := imp.Import(context.Background(), input(path, data), s); err != nil {
			b.Fatal(err)
		}
		n = s.n
	}
	b.ReportMetric(float64(n), "records/op")
}

// countSink counts records and keeps nothing, as a vault batch would.
type countSink struct{ n int }

func (s *countSink) Record(record.Record) error { s.n++; return nil }
func (s *countSink) Skip(string, string)        {}
func (s *countSink) Fail(*importers.ItemError)  {}

func BenchmarkImportFHIR(b *testing.B) {
	benchImport(b, New(), syntheaDir+"/Babara_Rice_1343812f-e993-4973-a849-e3dad63c3e74.json")
}

func BenchmarkImportNDJSON(b *testing.B) {
	benchImport(b, NewNDJSON(), bulkDir+"/Encounter.000.ndjson")
}
