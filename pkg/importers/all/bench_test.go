package all_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"filippo.io/age"
	"github.com/phr-project/phr/pkg/importers"
	"github.com/phr-project/phr/pkg/importers/all"
	"github.com/phr-project/phr/pkg/importers/pipeline"
	"github.com/phr-project/phr/pkg/record"
	"github.com/phr-project/phr/pkg/vault"
)

const shared = "../../../../shared/testdata/"

func benchVault(b *testing.B) *vault.Vault {
	id, _ := age.GenerateX25519Identity()
	v, err := vault.Create(filepath.Join(b.TempDir(), "v.phr"), []vault.SlotSpec{{Kind: vault.SlotDevice, Recipients: []age.Recipient{id.Recipient()}}}, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { v.Close() })
	return v
}

func readAll(b *testing.B, paths []string) [][]byte {
	var out [][]byte
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			b.Fatal(err)
		}
		out = append(out, data)
	}
	return out
}

// importEach imports each file into a fresh vault per iteration: parse,
// map, dedup, seal and store, end to end, as `phr import FOLDER` does
// (small files share transactions: pipeline.Group). With perFile, each
// file is committed on its own, as a single upload to phrd is.
func importEach(b *testing.B, files [][]byte, perFile bool) {
	reg := all.Default()
	var total int64
	for _, f := range files {
		total += int64(len(f))
	}
	b.SetBytes(total)
	docs := 0
	for b.Loop() {
		b.StopTimer()
		v := benchVault(b)
		b.StartTimer()
		var opts pipeline.Options
		if !perFile {
			opts.Group = pipeline.NewGroup(v)
		}
		for i, data := range files {
			in := &importers.Input{Name: "f", R: bytes.NewReader(data), ReaderAt: bytes.NewReader(data), Size: int64(len(data)), SHA256: fmt.Sprintf("%064x", i+1)}
			if _, err := pipeline.Import(context.Background(), reg, v, in, opts); err != nil {
				b.Fatal(err)
			}
			docs++
		}
		if opts.Group != nil {
			if _, err := opts.Group.Flush(); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(docs)/b.Elapsed().Seconds(), "docs/s")
}

// BenchmarkEndToEndCCDA imports the 20 EMERGE C-CDAs as one folder.
func BenchmarkEndToEndCCDA(b *testing.B) { importEach(b, emerge(b), false) }

// BenchmarkEndToEndCCDAPerFile imports them one transaction each.
func BenchmarkEndToEndCCDAPerFile(b *testing.B) { importEach(b, emerge(b), true) }

func emerge(b *testing.B) [][]byte {
	paths, _ := filepath.Glob(shared + "ccda/chb-sample_ccdas/EMERGE/*.xml")
	if len(paths) != 20 {
		b.Fatalf("%d EMERGE files", len(paths))
	}
	return readAll(b, paths)
}

func synthea(b *testing.B) [][]byte {
	paths, _ := filepath.Glob(shared + "fhir/synthea-r4/*.json")
	return readAll(b, paths)
}

// BenchmarkEndToEndFHIR imports the six Synthea bundles.
func BenchmarkEndToEndFHIR(b *testing.B) { importEach(b, synthea(b), true) }

// BenchmarkFHIRBaseline only decodes the same bundles' JSON and stores each
// entry's resource as it is, 1,000 per transaction: no mapping, no
// reference resolution, no derived fields, no dedup.
func BenchmarkFHIRBaseline(b *testing.B) {
	files := synthea(b)
	var total int64
	for _, f := range files {
		total += int64(len(f))
	}
	b.SetBytes(total)
	for b.Loop() {
		b.StopTimer()
		v := benchVault(b)
		b.StartTimer()
		for _, data := range files {
			var bundle struct {
				Entry []struct {
					Resource json.RawMessage `json:"resource"`
				} `json:"entry"`
			}
			if err := json.Unmarshal(data, &bundle); err != nil {
				b.Fatal(err)
			}
			batch := make([]record.Record, 0, 1000)
			for _, e := range bundle.Entry {
				batch = append(batch, record.Record{ID: record.NewID(), Kind: "x", ResourceType: "x", Resource: e.Resource})
				if len(batch) == cap(batch) {
					if _, err := v.Add(batch); err != nil {
						b.Fatal(err)
					}
					batch = batch[:0]
				}
			}
			if _, err := v.Add(batch); err != nil {
				b.Fatal(err)
			}
		}
	}
}
