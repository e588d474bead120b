package record_test

import (
	"bytes"
	"context"
	"os"
	"testing"

	"github.com/phr-project/phr/pkg/importers"
	"github.com/phr-project/phr/pkg/importers/applehealth"
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
