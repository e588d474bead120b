package applehealth

import (
	"testing"
)

// TestStreamingMemoryBounded streams a synthetic export through a pipe and
// checks that the heap stays far below the size of the input: nothing
// holds the file, its records or its workout routes.
func TestStreamingMemoryBounded(t *testing.T) {
	size := int64(8 << 20)
	if testing.Short() {
		size = 4 << 20
	}
	s, want := streamSynthetic(t, size, nil)
	if s.n != want || s.fails != 0 {
		t.Fatalf("%d records (%d fails), want %d", s.n, s.fails, want)
	}
	const limit = 8 << 20
	if s.maxHeap == 0 || s.maxHeap > limit {
		t.Errorf("peak heap growth %.1f MiB for a %d MiB export, want under %d MiB", float64(s.maxHeap)/(1<<20), size>>20, limit>>20)
	}
	t.Logf("%d MiB export, %d records, peak heap growth %.1f MiB", size>>20, s.n, float64(s.maxHeap)/(1<<20))
}
