package crash

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestCrash runs the import lanes and the phrd lanes side by side (their
// processes mostly wait on fsync, so this is faster than one after the
// other even on two cores) and logs the summary.
func TestCrash(t *testing.T) {
	seed := *seedFlag
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (replay the kill delays with -crash.seed=%d)", seed, seed)
	start := time.Now()
	f := newFixture(t)
	scale := func(n int) int {
		if testing.Short() {
			return max(1, n/4)
		}
		return n
	}
	imports := []importLane{
		{name: "import/per-file", rerun: true, kills: scale(8), from: 0, to: 1.1},
		{name: "import/folder", folder: true, rerun: true, kills: scale(5), from: 0, to: 1},
		// Past its first 5,000 records the file is written 128 records
		// per transaction: the kill comes after the first of them (which
		// come after reading 5,000 records; writing the rest takes
		// longer than that), and the next run may be killed again.
		{name: "import/large", big: true, kills: scale(2), from: 0.05, to: 0.7, afterWrite: true},
	}
	daemons := []phrdLane{
		{name: "phrd/records", records: 3, kills: scale(12)},
		{name: "phrd/readings", records: 1, readings: 2, kills: scale(12)},
		{name: "phrd/mixed", records: 1, readings: 1, imports: 1, kills: scale(12)},
		// The same on PostgreSQL. Without uploads: an import a kill
		// interrupts keeps its lease (5 minutes) in a store, where the
		// next node's open does not roll it back at once as a file's does.
		{name: "phrd/records-postgres", postgres: true, records: 2, readings: 1, kills: scale(12)},
	}
	// The share store on both of its backends.
	shares := []sharesLane{
		{name: "phrd/shares-file", kills: scale(8)},
		{name: "phrd/shares-postgres", postgres: true, kills: scale(8)},
	}
	var st stats
	var ran atomic.Int64 // lanes that ran (-run may select some)
	var wg sync.WaitGroup
	lane := uint64(0)
	// Subtests run from goroutines, not with t.Parallel: -parallel
	// defaults to the number of CPUs, and these lanes mostly wait.
	for _, l := range imports {
		lane++
		rng := rand.New(rand.NewPCG(seed, lane))
		wg.Add(1)
		go func() {
			defer wg.Done()
			t.Run(l.name, func(t *testing.T) { ran.Add(1); f.runImportLane(t, l, rng, &st) })
		}()
	}
	for _, l := range daemons {
		lane++
		rng := rand.New(rand.NewPCG(seed, lane))
		wg.Add(1)
		go func() {
			defer wg.Done()
			t.Run(l.name, func(t *testing.T) { ran.Add(1); f.runPhrdLane(t, l, rng, &st) })
		}()
	}
	for _, l := range shares {
		lane++
		rng := rand.New(rand.NewPCG(seed, lane))
		wg.Add(1)
		go func() {
			defer wg.Done()
			t.Run(l.name, func(t *testing.T) { ran.Add(1); f.runSharesLane(t, l, rng, &st) })
		}()
	}
	wg.Wait()
	t.Logf("crash summary: %s; %v", &st, time.Since(start).Round(time.Second))
	if st.losses.Load() != 0 || st.duplicates.Load() != 0 {
		t.Errorf("losses %d, duplicates %d: both must be 0", st.losses.Load(), st.duplicates.Load())
	}
	if !testing.Short() && !t.Failed() && ran.Load() == int64(len(imports)+len(daemons)+len(shares)) && st.kills.Load() < 50 {
		t.Errorf("%d kills, want at least 50", st.kills.Load())
	}
}
