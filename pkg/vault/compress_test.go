package vault

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"testing"
	"time"

	"github.com/phr-project/phr/pkg/kv"
	"github.com/phr-project/phr/pkg/record"
)

// recordDicts counts the vault's records by the dictionary their sealed
// plaintext names (-1: stored uncompressed), and its dictionaries.
func recordDicts(t testing.TB, v *Vault) (byDict map[int]int, dicts int) {
	t.Helper()
	byDict = map[int]int{}
	err := v.view(func(tx kv.Tx) error {
		dicts = countKeys(tx.Bucket([]byte{bucketDicts}))
		return tx.Bucket([]byte{bucketRecords}).ForEach(func(k, sealed []byte) error {
			pt, _, err := v.keys.openInto(nil, nil, bucketRecords, k, sealed)
			if err != nil {
				return err
			}
			id := -1
			if pt[0] == plainS2 {
				n, _ := binary.Uvarint(pt[1:])
				id = int(n)
			}
			byDict[id]++
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return byDict, dicts
}

// An import trains a dictionary for a kind once it has dictMinSamples
// records of it, on dictMaxSamples of them, and compresses the rest of
// the kind's records with it; it trains a new one only after
// retrainAfter more records of the kind (then 4 times that many, ...).
// Training is most of what compression adds to a small import's time
// (docs/performance.md), so an import of fewer than retrainAfter
// records trains each kind once.
func TestImportTrainsDictionaries(t *testing.T) {
	tests := []struct {
		name         string
		records      int
		retrainAfter int
		wantTrained  int
		// wantWithDict: records compressed with each dictionary, at least.
		wantWithDict map[int]int
	}{
		{"too few for a dictionary", dictMinSamples - 100, 20_000, 0, map[int]int{0: dictMinSamples - 200}},
		{"one dictionary", 5000, 20_000, 1, map[int]int{1: 5000 - 1024}},
		{"trained again after retrainAfter", 4000, 500, 2, map[int]int{1: 1500, 2: 900}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func(n int) { retrainAfter = n }(retrainAfter)
			retrainAfter = tt.retrainAfter
			tv := newTestVault(t)
			im, err := tv.BeginImport(fileSHA("export.xml"))
			if err != nil {
				t.Fatal(err)
			}
			start := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
			var recs []record.Record
			for i := range tt.records {
				when := start.Add(time.Duration(i) * 7 * time.Minute)
				recs = append(recs, sample(t, "Heart rate", when.Format(time.RFC3339), 50+i%70))
			}
			importIn512s(t, im, recs)
			trained := 0
			if ks := im.samples[sample(t, "Heart rate", "2024-01-01", 1).Kind]; ks != nil {
				trained = ks.trained
			}
			byDict, dicts := recordDicts(t, tv.Vault)
			t.Logf("trained %d, %d dictionaries, records by dictionary %v", trained, dicts, byDict)
			if trained != tt.wantTrained || dicts != tt.wantTrained {
				t.Errorf("trained %d times, %d dictionaries stored; want %d", trained, dicts, tt.wantTrained)
			}
			for id, n := range tt.wantWithDict {
				if byDict[id] < n {
					t.Errorf("%d records compressed with dictionary %d, want at least %d", byDict[id], id, n)
				}
			}
			// Every record reads back.
			if rep, err := tv.CheckDeep(false); err != nil || !rep.OK() || rep.Records != tt.records {
				t.Fatalf("check: %v %+v", err, rep)
			}
		})
	}
}

// Check reads every record, compressed or not, into buffers it reuses
// from one record to the next: records stored as they are (compression
// would not shrink them) between compressed ones check and read back.
func TestCheckMixedCompression(t *testing.T) {
	tv := newTestVault(t)
	var recs []record.Record
	for i := range 600 {
		if i%3 == 0 {
			// Hex of random bytes: S2 finds nothing to shrink. Larger
			// than the compressed records' envelopes, so that a buffer
			// it was read into would be large enough to take theirs.
			noise := make([]byte, 1500)
			rand.Read(noise)
			recs = append(recs, must(t)(record.New([]byte(`{"resourceType":"Basic","id":"`+record.NewID()+`","text":{"div":"`+hex.EncodeToString(noise)+`"}}`), record.Provenance{Method: record.MethodSelf})))
			continue
		}
		recs = append(recs, sample(t, "Heart rate", time.Date(2024, 1, 1, 0, i, 0, 0, time.UTC).Format(time.RFC3339), i))
	}
	if _, err := tv.Add(recs); err != nil {
		t.Fatal(err)
	}
	byDict, _ := recordDicts(t, tv.Vault)
	if byDict[-1] == 0 || byDict[-1] == len(recs) {
		t.Fatalf("records by dictionary %v: want some stored uncompressed, some not", byDict)
	}
	for _, deep := range []bool{false, true} {
		check := tv.Check
		if deep {
			check = tv.CheckDeep
		}
		rep, err := check(false)
		if err != nil || !rep.OK() || rep.Records != len(recs) {
			t.Fatalf("check (deep %v): %v %+v", deep, err, rep)
		}
	}
}
