package vault

import (
	"testing"
	"time"

	"github.com/phr-project/phr/pkg/record"
	bolt "go.etcd.io/bbolt"
)

// fingerprintFill is how full the dedup index's leaf pages are.
func fingerprintFill(t testing.TB, v *Vault) float64 {
	t.Helper()
	var fill float64
	db := v.boltFile()
	if db == nil {
		t.Fatal("not a vault file")
	}
	db.View(func(tx *bolt.Tx) error {
		s := tx.Bucket([]byte{bucketFinger}).Stats()
		fill = float64(s.LeafInuse) / float64((s.LeafPageN+s.LeafOverflowN)*db.Info().PageSize)
		return nil
	})
	return fill
}

// An import of samples laid out as an Apple Health export lays them out
// (copies of weeks of samples, type after type, each type's in date
// order) writes its fingerprints in flushes that leave the dedup index's
// pages nearly full (pending.go). Made-up samples: the shape, not the
// content, is what matters, and a real export of this size is 100 MB.
func TestImportFingerprintPagesFill(t *testing.T) {
	if testing.Short() {
		t.Skip("imports 36,000 records")
	}
	// The export of docs/performance.md repeats copies of 11,000
	// samples, and a flush of fpFlushAt takes 3 of them; here a copy is
	// 2,400 samples (4 types over 10 weeks, clusters of about 240, as
	// there), and a quarter of fpFlushAt takes 3.4. The index's pages
	// fill about as they do there: 85% here, 88% there (69.6% and 70%
	// with the flushes of 8,192 and fill of 0.85 of before).
	defer func(n int) { fpFlushAt = n }(fpFlushAt)
	fpFlushAt /= 4
	const wantFill = 0.82
	tv := newTestVault(t)
	sha := fileSHA("export.xml")
	im, err := tv.BeginImport(sha)
	if err != nil {
		t.Fatal(err)
	}
	var recs []record.Record
	start := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	for copy := range 15 {
		for _, code := range []string{"Heart rate", "Steps", "Distance", "Energy"} {
			// 600 samples of a type over 10 weeks: 60 a week.
			for i := range 600 {
				when := start.AddDate(copy, 0, 0).Add(time.Duration(i) * 168 * time.Minute)
				recs = append(recs, sample(t, code, when.Format(time.RFC3339), i))
			}
		}
	}
	importIn512s(t, im, recs)
	n := len(recs)
	if got := countFingerprints(t, tv.Vault); got != n {
		t.Fatalf("%d fingerprints, want %d", got, n)
	}
	fill := fingerprintFill(t, tv.Vault)
	t.Logf("flushes of %d, fill percent %.2f: pages %.1f%% full", fpFlushAt, fpFill, 100*fill)
	if fill < wantFill {
		t.Errorf("pages %.1f%% full, want at least %.0f%%", 100*fill, 100*wantFill)
	}
}

// importIn512s adds recs to im in batches of 512, as the importers'
// pipeline does, and commits it.
func importIn512s(t *testing.T, im *Import, recs []record.Record) {
	t.Helper()
	for len(recs) >= 512 {
		if _, err := im.Add(recs[:512]); err != nil {
			t.Fatal(err)
		}
		recs = recs[512:]
	}
	if _, err := im.Commit(recs); err != nil {
		t.Fatal(err)
	}
}
