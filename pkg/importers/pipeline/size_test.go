package pipeline_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"filippo.io/age"
	"github.com/phr-project/phr/pkg/importers"
	"github.com/phr-project/phr/pkg/importers/applehealth"
	"github.com/phr-project/phr/pkg/importers/pipeline"
	"github.com/phr-project/phr/pkg/kv"
	"github.com/phr-project/phr/pkg/vault"
)

// The real Apple Health export of the shared test data (3.8 MB, 11,000
// samples), imported as phr import does, is stored compactly: the
// records' sealed values (docs/format.md: bucket "r", the compressed
// envelope plus 53 bytes) average under 360 bytes a sample. Dictionaries
// trained with 6-byte hashes on 2,000 samples made them 372 bytes; with
// 8-byte hashes on 1,000, 348 (docs/performance.md, "Reading at any
// size").
func TestAppleHealthRecordSize(t *testing.T) {
	if testing.Short() {
		t.Skip("imports 11,000 samples")
	}
	data, err := os.ReadFile("../../../../shared/testdata/apple-health/ashtom-hkimport/Data/export.xml")
	if err != nil {
		t.Fatal(err)
	}
	id, _ := age.GenerateX25519Identity()
	path := filepath.Join(t.TempDir(), "v.phr")
	v, err := vault.Create(path, []vault.SlotSpec{{Kind: vault.SlotDevice, Recipients: []age.Recipient{id.Recipient()}}}, &vault.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	reg := &importers.Registry{}
	reg.Register(applehealth.New())
	in := &importers.Input{Name: "export.xml", R: bytes.NewReader(data), ReaderAt: bytes.NewReader(data), Size: int64(len(data)), SHA256: sha}
	rep, err := pipeline.Import(context.Background(), reg, v, in, pipeline.Options{AcceptPatientMismatch: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
	st, err := kv.BoltFileStats(path)
	if err != nil {
		t.Fatal(err)
	}
	n, total := 0, 0
	for _, b := range st.Buckets {
		if string(b.Name) == "r" {
			n, total = b.Keys, b.ValueBytes
		}
	}
	if n != rep.Added || n < 10_000 {
		t.Fatalf("%d records stored, %d added", n, rep.Added)
	}
	mean := float64(total) / float64(n)
	t.Logf("%d records, %.0f bytes each sealed", n, mean)
	if mean > 360 {
		t.Errorf("records take %.0f bytes each sealed, want at most 360", mean)
	}
}
