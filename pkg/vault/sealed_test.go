package vault

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/phr-project/phr/pkg/kv"
	"github.com/phr-project/phr/pkg/record"
)

// TestSealedValue holds the vault to docs/security.md's "What is
// encrypted with what": a sealed value is its plaintext plus 53 bytes
// (so the file shows each value's size, and nothing more of it), and it
// opens only at its own vault, bucket, key and version: moved anywhere
// else, or relabelled, it is ErrCorrupt.
func TestSealedValue(t *testing.T) {
	tv := newTestVault(t)
	if sealOverhead != 53 {
		t.Errorf("sealOverhead %d, docs/security.md says 53", sealOverhead)
	}
	for _, n := range []int{0, 1, 100, 4096, 1 << 16} {
		pt := bytes.Repeat([]byte{'x'}, n)
		if got := len(tv.keys.seal(bucketSettings, []byte("k"), 1, pt)); got != n+53 {
			t.Errorf("a plaintext of %d bytes seals to %d, want %d", n, got, n+53)
		}
	}

	pt := []byte("Zorblaxian setting value")
	sealed := tv.keys.seal(bucketSettings, []byte("k"), 7, pt)
	var otherID [16]byte
	copy(otherID[:], tv.keys.vaultID[:])
	otherID[0] ^= 1
	otherVault, err := deriveKeyring(tv.vaultKey, otherID, tv.keys.term)
	if err != nil {
		t.Fatal(err)
	}
	relabelled := bytes.Clone(sealed)
	relabelled[12] ^= 1 // the value's version, last byte of its 8
	tests := []struct {
		name   string
		keys   *keyring
		bucket byte
		key    string
		sealed []byte
		ok     bool
	}{
		{"where it was sealed", tv.keys, bucketSettings, "k", sealed, true},
		{"another vault (same key, another vault ID)", otherVault, bucketSettings, "k", sealed, false},
		{"another bucket", tv.keys, bucketRecords, "k", sealed, false},
		{"another key", tv.keys, bucketSettings, "j", sealed, false},
		{"another version", tv.keys, bucketSettings, "k", relabelled, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, _, err := tc.keys.openInto(nil, nil, tc.bucket, []byte(tc.key), tc.sealed)
			switch {
			case tc.ok && (err != nil || !bytes.Equal(got, pt)):
				t.Errorf("opened %q, %v; want the plaintext", got, err)
			case !tc.ok && !errors.Is(err, ErrCorrupt):
				t.Errorf("opened %q, %v; want ErrCorrupt", got, err)
			}
		})
	}
}

// TestDictionariesSealed: the compression dictionaries an import trains
// hold strings of the patient's records, so they are sealed like records
// (docs/security.md, "compression dictionaries"): after an import of
// enough records of one kind to train one (the positive control: the
// dictionary's plaintext holds the records' distinctive text), the file
// holds that text nowhere, in any case.
func TestDictionariesSealed(t *testing.T) {
	const text = "Zorblaxian pulse of Quimbleforth"
	tv := newTestVault(t)
	im, err := tv.BeginImport(fileSHA("export.xml"))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	var recs []record.Record
	for i := range dictMinSamples + 500 {
		recs = append(recs, sample(t, fmt.Sprintf("%s %d", text, i%3), start.Add(time.Duration(i)*7*time.Minute).Format(time.RFC3339), 50+i%70))
	}
	importIn512s(t, im, recs)

	var dicts int
	err = tv.view(func(tx kv.Tx) error {
		return tx.Bucket([]byte{bucketDicts}).ForEach(func(k, sealed []byte) error {
			dicts++
			pt, err := tv.keys.open(bucketDicts, k, sealed)
			if err != nil {
				return err
			}
			if !bytes.Contains(pt, []byte("Zorblaxian")) {
				t.Errorf("dictionary %x does not hold the records' text: its absence from the file proves nothing", k)
			}
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	if dicts == 0 {
		t.Fatal("no dictionary trained")
	}
	if err := tv.Close(); err != nil {
		t.Fatal(err)
	}
	file, err := os.ReadFile(tv.path)
	if err != nil {
		t.Fatal(err)
	}
	lower := bytes.ToLower(file)
	for _, s := range strings.Fields(strings.ToLower(text)) {
		if len(s) < 4 {
			continue
		}
		if i := bytes.Index(lower, []byte(s)); i >= 0 {
			t.Errorf("the vault file holds %q at byte %d", s, i)
		}
	}
}
