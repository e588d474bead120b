package shc

import (
	"context"
	"testing"

	"github.com/phr-project/phr/pkg/importers"
	"github.com/phr-project/phr/pkg/record"
)

type countSink struct{ n int }

func (s *countSink) Record(record.Record) error { s.n++; return nil }
func (s *countSink) Skip(string, string)        {}
func (s *countSink) Fail(*importers.ItemError)  {}

// BenchmarkImportSHC imports the IPS example card (the largest), verifying
// its signature.
func BenchmarkImportSHC(b *testing.B) {
	data := readFile(b, images+"/example-02-e-file.smart-health-card")
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		s := &countSink{}
		if err := New().Import(context.Background(), input("card", data, withKeys), s); err != nil || s.n == 0 {
			b.Fatal(err)
		}
	}
}
