package shc

import (
	"context"
	"testing"

	"github.com/phr-project/phr/pkg/importers/importertest"
)

// BenchmarkImportSHC imports the IPS example card (the largest), verifying
// its signature.
func BenchmarkImportSHC(b *testing.B) {
	data := importertest.ReadFile(b, images+"/example-02-e-file.smart-health-card")
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		s := &importertest.CountSink{}
		if err := New().Import(context.Background(), importertest.Input("card", data, withKeys), s); err != nil || s.N == 0 {
			b.Fatal(err)
		}
	}
}
