package vault

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/phr-project/phr/pkg/kv"
	"github.com/phr-project/phr/pkg/record"
)

// Imports written in several transactions.
//
// A file too large for one transaction is written in batches (see
// pkg/importers). So that a crash between two batches cannot leave part of
// a file in the vault, the transaction of the first batch also stores a
// marker: a sealed setting named importMarkPrefix + 16 random hex digits
// whose plaintext is
//
//	version (1 byte, = 1) ‖ change sequence before the import (uint64 BE) ‖ SHA-256 of the file (32 bytes)
//
// and the transaction of the last batch deletes it. A marker found when
// the vault is opened for writing belongs to an import that died: Open
// removes the records it added (as PurgeImport does) and then the marker.

// importMarkPrefix starts the setting name of an import marker.
const importMarkPrefix = "import."

const importMarkVersion = 1

// errImportDone: the Import was committed or aborted already.
var errImportDone = errors.New("vault: import already committed or aborted")

// Import is one file being written in several transactions: all of it or
// none of it ends up in the vault, even if the process dies between two
// transactions. Make it with BeginImport, write batches with Add, and end
// with Commit (the last batch) or Abort. An Import is used by one
// goroutine at a time.
//
// Imports of the same file (the same SHA-256) into one open vault take
// turns: from its first Add to its Commit or Abort an import holds the
// file's turn, and another import of that file waits in Add or Commit. An
// Abort removes the records of the file written since the import began,
// so without turns it would also remove what a concurrent import of the
// same file had added, or had found as duplicates of this one's records
// (phrd gets the same upload twice when a phone retries).
type Import struct {
	v     *Vault
	sha   string
	key   []byte // the marker's setting name, once the first Add wrote it
	since uint64 // the vault's change sequence before the first Add
	done  bool
	turn  bool // holds the file's turn
	// written counts the records of Add batches since the vault's
	// database was last reopened (see Vault.reopen).
	written int
	// occ: the file's resources seen so far whose content the vault
	// held (see occurrences), across the import's batches.
	occ occurrences
	// samples: records to train compression dictionaries on, across the
	// import's batches (compress.go).
	samples dictSamples
	// last: the batch being written is the last (Commit).
	last bool
	// pendingN counts the fingerprints it has not written (pending.go).
	pendingN int
}

func (im *Import) dictSamples() dictSamples {
	if im.samples == nil {
		im.samples = dictSamples{}
	}
	return im.samples
}

func (im *Import) occurrences() occurrences {
	if im.occ == nil {
		im.occ = occurrences{}
	}
	return im.occ
}

// reopenEvery is how many records an Import writes between reopenings
// of the vault's database (Vault.reopen): about 5 MB of bbolt's freelist
// bookkeeping.
var reopenEvery = 500_000

// errImportLost: the import's marker is gone, so another process rolled
// the import back while the database was being reopened.
var errImportLost = errors.New("vault: another process opened the vault during the import and rolled it back; import the file again")

// stillMarked fails a transaction of a running import whose marker is
// gone.
func (im *Import) stillMarked(tx kv.Tx) error {
	if tx.Bucket([]byte{bucketSettings}).Get(im.key) == nil {
		return errImportLost
	}
	return nil
}

// fileTurns serialises the imports of one file (see Import).
type fileTurns struct {
	mu   sync.Mutex
	busy map[string]chan struct{} // closed when the turn is released
}

func (t *fileTurns) take(sha string) {
	for {
		t.mu.Lock()
		ch, busy := t.busy[sha]
		if !busy {
			if t.busy == nil {
				t.busy = map[string]chan struct{}{}
			}
			t.busy[sha] = make(chan struct{})
			t.mu.Unlock()
			return
		}
		t.mu.Unlock()
		<-ch
	}
}

func (t *fileTurns) release(sha string) {
	t.mu.Lock()
	ch := t.busy[sha]
	delete(t.busy, sha)
	t.mu.Unlock()
	close(ch)
}

func (im *Import) takeTurn() {
	if !im.turn {
		im.v.fileTurns.take(im.sha)
		im.turn = true
	}
}

func (im *Import) releaseTurn() {
	if im.turn {
		im.turn = false
		im.v.fileTurns.release(im.sha)
	}
}

// BeginImport prepares the import of the file whose SHA-256 (lower-case
// hex) is fileSHA256: the value its records carry in
// Provenance.FileSHA256. It writes nothing.
func (v *Vault) BeginImport(fileSHA256 string) (*Import, error) {
	if b, err := hex.DecodeString(fileSHA256); err != nil || len(b) != 32 || hex.EncodeToString(b) != fileSHA256 {
		return nil, errors.New("vault: import: the file's SHA-256 must be 64 lower-case hex digits")
	}
	return &Import{v: v, sha: fileSHA256}, nil
}

// Add writes one batch in one transaction, as Vault.Add does. The first
// Add stores the import's marker in the same transaction.
func (im *Import) Add(recs []record.Record) ([]AddResult, error) {
	if im.done {
		return nil, errImportDone
	}
	if im.key != nil {
		if im.written >= reopenEvery {
			if err := im.v.reopen(); err != nil {
				return nil, err
			}
			im.written = 0
		}
		im.written += len(recs)
		return im.v.add(recs, false, im, func(tx kv.Tx, _ uint64) error { return im.stillMarked(tx) })
	}
	im.takeTurn()
	key := newImportMarkKey()
	// Live before it exists, so that Check in this process never takes
	// it for the marker of a dead import.
	im.v.liveImports.Store(string(key), true)
	res, err := im.v.add(recs, false, im, func(tx kv.Tx, seq uint64) error {
		im.since = seq
		return im.v.putSetting(tx.Bucket([]byte{bucketSettings}), key, encodeImportMark(seq, im.sha))
	})
	if err != nil {
		im.v.liveImports.Delete(string(key))
		im.releaseTurn() // nothing written: nothing to abort
		return nil, err
	}
	im.key = key
	return res, nil
}

// Commit writes the last batch (recs may be empty) and deletes the
// marker in the same transaction: from its commit on, the whole file is
// in the vault. An Import whose Add was never called writes recs in one
// transaction, without a marker.
func (im *Import) Commit(recs []record.Record) ([]AddResult, error) {
	if im.done {
		return nil, errImportDone
	}
	if im.key == nil {
		if len(recs) == 0 {
			im.done = true
			return nil, nil
		}
		im.takeTurn()
		defer im.releaseTurn()
		im.last = true
		res, err := im.v.add(recs, false, im, nil)
		if err == nil {
			im.done = true
		}
		return res, err
	}
	im.last = true
	res, err := im.v.add(recs, false, im, func(tx kv.Tx, _ uint64) error {
		if err := im.stillMarked(tx); err != nil {
			return err
		}
		return im.v.deleteSealed(tx.Bucket([]byte{bucketSettings}), bucketSettings, im.key)
	})
	if err != nil {
		return nil, err
	}
	im.done = true
	im.v.liveImports.Delete(string(im.key))
	im.releaseTurn()
	return res, nil
}

// Abort removes the records Add wrote (as PurgeImport does) and the
// marker, and returns how many records it removed. If Abort fails, the
// marker stays and the next Open for writing finishes the job.
func (im *Import) Abort() (int, error) {
	if im.done {
		return 0, errImportDone
	}
	im.done = true
	im.v.dropFingerprints(im)
	if im.key == nil {
		return 0, nil
	}
	// From here on it is the marker of an import that stopped: if the
	// rollback fails, Check reports it (and the next Open for writing
	// rolls it back).
	defer im.releaseTurn()
	defer im.v.liveImports.Delete(string(im.key))
	return im.v.rollBack(im.key, im.since, im.sha, false)
}

// Rollback is an import that a crash interrupted and that opening the
// vault undid.
type Rollback struct {
	// FileSHA256 is the SHA-256 of the file, in hex: what the records'
	// provenance named (not the file's name).
	FileSHA256 string `json:"fileSha256"`
	// Records is how many records of it were removed.
	Records int `json:"records"`
}

// RolledBack returns the interrupted imports that Open rolled back: the
// records they had written are gone. It is empty for a vault opened
// read-only, which rolls nothing back (see InterruptedImports).
func (v *Vault) RolledBack() []Rollback {
	v.rbMu.Lock()
	defer v.rbMu.Unlock()
	return slices.Clone(v.rolledBack)
}

// InterruptedImports returns how many imports a crash interrupted (or
// whose Abort failed) are still to be rolled back; their records are in
// the vault until then. Open rolls them back when it opens the vault for
// writing, so it is a vault opened read-only that has them.
func (v *Vault) InterruptedImports() (int, error) {
	var n int
	err := v.view(func(tx kv.Tx) error {
		for range v.deadImportMarks(tx) {
			n++
		}
		return nil
	})
	return n, err
}

// importMark is a decoded marker.
type importMark struct {
	key   []byte
	since uint64
	sha   string
	err   error // the marker does not open
}

// deadImportMarks returns the markers of imports that are not running in
// this process. A marker that does not open is returned with err set.
func (v *Vault) deadImportMarks(tx kv.Tx) []importMark { return v.importMarks(tx, false) }

// importMarks returns the import markers, those of this process's running
// imports too if live.
func (v *Vault) importMarks(tx kv.Tx, live bool) []importMark {
	var out []importMark
	c := tx.Bucket([]byte{bucketSettings}).Cursor()
	prefix := []byte(importMarkPrefix)
	for k, val := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, val = c.Next() {
		if _, running := v.liveImports.Load(string(k)); running && !live {
			continue
		}
		m := importMark{key: append([]byte(nil), k...)}
		m.since, m.sha, m.err = v.openImportMark(k, val)
		out = append(out, m)
	}
	return out
}

// rollBackInterrupted undoes every import a crash interrupted and
// returns how many it undid; Open calls it on a vault opened for writing.
// A marker that does not open is left for Check to report.
func (v *Vault) rollBackInterrupted() (int, error) {
	var marks []importMark
	if err := v.view(func(tx kv.Tx) error {
		marks = v.deadImportMarks(tx)
		return nil
	}); err != nil {
		return 0, err
	}
	done := 0
	for _, m := range marks {
		if m.err != nil {
			continue
		}
		n, err := v.rollBack(m.key, m.since, m.sha, true)
		if err != nil {
			return done, fmt.Errorf("vault: rolling back an interrupted import: %w", err)
		}
		v.rbMu.Lock()
		v.rolledBack = append(v.rolledBack, Rollback{FileSHA256: m.sha, Records: n})
		v.rbMu.Unlock()
		done++
	}
	return done, nil
}

// rollBack removes the records of an import and then its marker.
func (v *Vault) rollBack(key []byte, since uint64, sha string, lenient bool) (int, error) {
	n, err := v.purgeImport(since, sha, lenient)
	if err != nil {
		return 0, err
	}
	return n, v.update(func(tx kv.Tx) error {
		return v.deleteSealed(tx.Bucket([]byte{bucketSettings}), bucketSettings, key)
	})
}

func newImportMarkKey() []byte {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("vault: no randomness: " + err.Error())
	}
	return []byte(importMarkPrefix + hex.EncodeToString(b[:]))
}

func encodeImportMark(since uint64, sha string) []byte {
	out := make([]byte, 1+8, 1+8+32)
	out[0] = importMarkVersion
	binary.BigEndian.PutUint64(out[1:], since)
	sum, _ := hex.DecodeString(sha) // checked by BeginImport
	return append(out, sum...)
}

func (v *Vault) openImportMark(key, sealed []byte) (since uint64, sha string, err error) {
	pt, err := v.keys.open(bucketSettings, key, sealed)
	if err != nil {
		return 0, "", err
	}
	if len(pt) != 1+8+32 {
		return 0, "", fmt.Errorf("%w: import marker", ErrCorrupt)
	}
	if pt[0] != importMarkVersion {
		if pt[0] > importMarkVersion {
			return 0, "", ErrNewerVersion
		}
		return 0, "", fmt.Errorf("%w: import marker version", ErrCorrupt)
	}
	return binary.BigEndian.Uint64(pt[1:9]), hex.EncodeToString(pt[9:]), nil
}

// unfinishedImports returns the bbolt keys of the records that imports
// still in progress (or interrupted) have written: a backup leaves them
// out, as it leaves out their markers, so that it never holds part of a
// file.
func (v *Vault) unfinishedImports(tx kv.Tx) (map[string]bool, error) {
	marks := v.importMarks(tx, true)
	if len(marks) == 0 {
		return nil, nil
	}
	rb, _, _, cb := v.buckets(tx)
	skip := map[string]bool{}
	for _, m := range marks {
		if m.err != nil {
			continue
		}
		ids, err := v.importIDsTx(rb, cb, m.since, m.sha, true)
		if err != nil {
			return nil, err
		}
		for _, id := range ids {
			skip[string(keyOf(id))] = true
		}
	}
	return skip, nil
}
