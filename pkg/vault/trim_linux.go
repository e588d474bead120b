//go:build linux

package vault

import (
	"bytes"
	"os"
	"strconv"
	"time"

	"github.com/phr-project/phr/pkg/kv"
	"golang.org/x/sys/unix"
)

// trimMinSize is the vault size below which trimMapped does nothing.
const trimMinSize = 32 << 20

// trimAbove is the resident file-backed memory (the vault's mapped pages
// and phr's own code) above which trimTx drops the vault's pages.
var trimAbove = 20 << 20

// readTrimAbove is trimAbove for long reads (listings, exports, checks):
// a read faults back what it drops, which costs more than a writer's
// commit does, so it drops less often.
const readTrimAbove = 36 << 20

// residentFileBytes returns how much of this process's resident set is
// file-backed (or shared), from /proc/self/statm.
func residentFileBytes() (int, bool) {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0, false
	}
	f := bytes.Fields(b)
	if len(f) < 3 {
		return 0, false
	}
	pages, err := strconv.Atoi(string(f[2]))
	if err != nil {
		return 0, false
	}
	return pages * os.Getpagesize(), true
}

// trimInTx is how many records a write handles between trims.
const trimInTx = 128

// trimMapped tells the kernel this process no longer needs the vault
// file's mapped pages. bbolt reads the file through a shared, read-only
// mapping; a long import touches most of it, and the touched pages count
// towards the process's resident memory although the page cache holds
// them anyway. Dropping them from this mapping is safe: the next access
// faults them back in from the page cache. It runs inside a read
// transaction, which keeps bbolt from remapping meanwhile.
func (v *Vault) trimMapped() {
	v.view(func(tx kv.Tx) error {
		v.trimTx(tx)
		return nil
	})
}

// trimTx drops the mapped pages from inside a transaction, which keeps
// bbolt from remapping meanwhile. Writers call it every trimInTx records:
// each page fault on the mapping also maps the pages around it that the
// page cache holds (Linux's fault-around, 64 KiB), so a batch's random
// lookups in the dedup index alone would otherwise map tens of megabytes.
// Pages the transaction still points into fault back in, unchanged: the
// file's pages under the mapping do not change until the commit.
func (v *Vault) trimTx(tx kv.Tx) { v.trimTxAbove(tx, trimAbove) }

// trimTxAbove is trimTx with another threshold.
func (v *Vault) trimTxAbove(tx kv.Tx, above int) {
	bt := kv.BoltTx(tx)
	if bt == nil {
		return // a store with no mapping of ours
	}
	size := int(bt.Size())
	if size < trimMinSize {
		return // small vaults: not worth a system call
	}
	if n, ok := residentFileBytes(); ok && n < above {
		// Dropping the pages costs a page fault for each the next
		// transactions touch again (the branch pages of every tree, at
		// least): on a vault of gigabytes that was a third of an
		// import's time when done every 128 records regardless.
		return
	}
	// The address stays a uintptr: the mapping is not Go memory.
	unix.Syscall(unix.SYS_MADVISE, bt.DB().Info().Data, uintptr(size), unix.MADV_DONTNEED)
}

// scanTrimEvery is how many values a long read (a listing, a check, an
// export) handles between looks at the resident set, and
// scanTrimBytes how many bytes of larger values (the listing index's
// nodes are kilobytes each).
const (
	scanTrimEvery = 4096
	scanTrimBytes = 4 << 20
)

// scanTrim drops the vault's mapped pages now and then during a long
// read, once more than trimAbove of the resident set is file-backed: a
// pass over a vault of gigabytes would otherwise map all of it. A page
// dropped and read again costs a fault, which is why it waits for that
// much.
type scanTrim struct {
	v     *Vault
	n     int
	bytes int
}

func (v *Vault) scanTrimmer() *scanTrim { return &scanTrim{v: v} }

// tick counts one value read inside tx.
func (s *scanTrim) tick(tx kv.Tx) {
	s.n++
	if s.n%scanTrimEvery == 0 {
		s.v.trimTxAbove(tx, readTrimAbove)
	}
}

// read counts one value of n bytes read inside tx: large values are
// counted by their size.
func (s *scanTrim) read(tx kv.Tx, n int) {
	s.bytes += n
	if s.bytes >= scanTrimBytes {
		s.bytes = 0
		s.v.trimTxAbove(tx, readTrimAbove)
		return
	}
	s.tick(tx)
}

// guardMapped drops the whole mapping every so often while fn runs, once
// more than trimAbove of the resident set is file-backed: for a reader
// that does not go page by page (bbolt's own check of the file).
func (v *Vault) guardMapped(tx kv.Tx, fn func()) {
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				v.trimTxAbove(tx, readTrimAbove)
			}
		}
	}()
	fn()
	close(done)
	<-stopped
}
