package vault

import (
	"fmt"
	"testing"
	"time"

	"github.com/phr-project/phr/pkg/kv"
	"github.com/phr-project/phr/pkg/record"
	"golang.org/x/sys/unix"
)

func TestTrimMappedKeepsData(t *testing.T) {
	tv := newTestVault(t)
	recs := make([]record.Record, 0, 500)
	for i := 0; i < 500; i++ {
		recs = append(recs, must(t)(record.NewNote(record.Common{}, fmt.Sprint("note ", i), time.Time{})))
	}
	tv.Add(recs)
	for i := 0; i < 3; i++ {
		tv.trimMapped() // below trimMinSize: a no-op
		tv.db.View(func(tx kv.Tx) error {
			unix.Syscall(unix.SYS_MADVISE, tv.boltFile().Info().Data, uintptr(kv.BoltTx(tx).Size()), unix.MADV_DONTNEED)
			return nil
		})
		got, err := tv.List(Query{})
		if err != nil || len(got) != 500 {
			t.Fatalf("after trim: %d records, %v", len(got), err)
		}
	}
	if r, _ := tv.Check(false); !r.OK() {
		t.Fatalf("check: %+v", r.Problems)
	}
}

func TestResidentFileBytes(t *testing.T) {
	n, ok := residentFileBytes()
	if !ok || n <= 0 {
		t.Fatalf("residentFileBytes() = %d, %v; want the resident size of at least this test's code", n, ok)
	}
}
