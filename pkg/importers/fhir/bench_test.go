package fhir

import (
	"context"
	"testing"

	"github.com/phr-project/phr/pkg/importers"
	"github.com/phr-project/phr/pkg/importers/importertest"
)

func benchImport(b *testing.B, imp importers.Importer, path string) {
	data := importertest.ReadFile(b, path)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		s := &importertest.CountSink{}
		if err := imp.Import(context.Background(), importertest.Input(path, data, nil), s); err != nil {
			b.Fatal(err)
		}
		n = s.N
	}
	b.ReportMetric(float64(n), "records/op")
}

func BenchmarkImportFHIR(b *testing.B) {
	benchImport(b, New(), syntheaDir+"/Babara_Rice_1343812f-e993-4973-a849-e3dad63c3e74.json")
}

func BenchmarkImportNDJSON(b *testing.B) {
	benchImport(b, NewNDJSON(), bulkDir+"/Encounter.000.ndjson")
}
