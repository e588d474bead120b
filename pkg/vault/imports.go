package vault

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/phr-project/phr/pkg/kv"
	"github.com/phr-project/phr/pkg/record"
)

// Imports written in several transactions.
//
// A file too large for one transaction is written in batches (see
// pkg/importers). So that a crash between two batches cannot leave part of
// a file in the vault, the transaction of the first batch also stores a
// marker: a sealed setting named importMarkPrefix + 16 random hex digits
// whose plaintext is (version 2)
//
//	0x02 ‖ change sequence before the import (uint64 BE) ‖ SHA-256 of the file (32 bytes)
//	     ‖ owner (16 bytes) ‖ lease expiry (int64 BE, Unix milliseconds)
//
// and the transaction of the last batch deletes it. Version 1 had no
// owner and no lease (0x01 ‖ sequence ‖ SHA-256); it is still read, as a
// marker whose lease has expired.
//
// The owner is a random handle of the open Vault that writes the import
// (Vault.handle); every batch's transaction renews the lease, and so does
// the Vault's renewer (renewLoop) while the import runs, so that a slow
// client between two batches does not lose it. A marker is dead, and its
// import is rolled back (by Open for writing, Check with repair, or an
// import of the same file that finds it), when it is of this Vault and no
// import of this Vault holds it (an Abort that failed), when its lease
// has expired, or, in a vault file of its own (Open), always: the file's
// lock lets no other process write while this one has it open. A live
// marker of another Vault (another phrd node on the same PostgreSQL
// namespace) is left alone. Rolling back first claims the marker (rewrites
// it with the claimer as owner and a fresh lease, in one transaction that
// checks it is still dead), so two nodes never roll back one import at
// once, and the import's own Vault, if it still runs, fails its next batch
// (errImportLost) instead of writing on.

// importMarkPrefix starts the setting name of an import marker.
const importMarkPrefix = "import."

// Import marker plaintext versions: 1 (no owner, no lease: read as
// expired) and 2.
const (
	importMarkV1      = 1
	importMarkV2      = 2
	importMarkVersion = importMarkV2
)

// importLease is how long an import's marker stays live after its last
// renewal, and leaseRenewEvery how often a running import renews it when
// no batch did. Five minutes, renewed every minute: a renewal may wait
// behind another node's long transaction (a rotation or an upgrade of a
// large vault holds the store's write lock for tens of seconds), and the
// nodes' clocks differ by seconds, not minutes; an import that died is
// then rolled back by the first opener at most five minutes later, and
// the records it left are in the vault (visible, and left out of
// backups) until then.
var (
	importLease     = 5 * time.Minute
	leaseRenewEvery = time.Minute
)

// errImportDone: the Import was committed or aborted already.
var errImportDone = errors.New("vault: import already committed or aborted")

// Import is one file being written in several transactions: all of it or
// none of it ends up in the vault, even if the process dies between two
// transactions. Make it with BeginImport, write batches with Add, and end
// with Commit (the last batch) or Abort. An Import is used by one
// goroutine at a time.
//
// Imports of the same file (the same SHA-256) into one vault take turns,
// within one open Vault (fileTurns) and across the Vaults open on one
// store (waitFile): from its first Add to its Commit or Abort an import
// holds the file's turn, and another import of that file waits in Add or
// Commit (bounded by BeginImportContext's context, if any), as does a
// PurgeImport of it, which holds the turn while it removes. An
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
	// ctx bounds the wait for the file's turn (BeginImportContext).
	ctx context.Context
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

// errImportLost: the import's marker is gone or belongs to another Vault
// now, so another process (or node) rolled the import back: one that
// opened the file while the database was being reopened, or one that
// found the marker's lease expired.
var errImportLost = errors.New("vault: another process rolled the import back (the vault was opened while the file was reopened, or the import's lease expired); import the file again")

// stillMarked fails a transaction of a running import whose marker is
// gone or is not its own any more, and renews its lease otherwise.
func (im *Import) stillMarked(tx kv.Tx) error {
	return im.v.renewMark(tx.Bucket([]byte{bucketSettings}), im.key)
}

// renewMark rewrites this Vault's marker key with a fresh lease, or
// returns errImportLost if it is gone or another Vault's.
func (v *Vault) renewMark(b kv.Bucket, key []byte) error {
	sealed := b.Get(key)
	if sealed == nil {
		return errImportLost
	}
	m, err := v.openImportMark(key, sealed)
	if err != nil {
		return err
	}
	if m.legacy || m.owner != v.handle {
		return errImportLost
	}
	return v.putSetting(b, key, encodeImportMark(m.since, m.sha, v.handle, v.now().Add(importLease)))
}

// holdMark registers a marker of this Vault (an import running, or a
// rollback in progress), which its renewer keeps live.
func (v *Vault) holdMark(key []byte) {
	v.liveImports.Store(string(key), true)
	v.startRenewer()
}

func (v *Vault) releaseMark(key []byte) { v.liveImports.Delete(string(key)) }

// startRenewer starts the goroutine that renews the leases of the
// markers this Vault holds (not for a file of its own, whose lock keeps
// everyone else out). Close stops it.
func (v *Vault) startRenewer() {
	if v.path != "" {
		return
	}
	v.leaseMu.Lock()
	defer v.leaseMu.Unlock()
	if v.leaseStop != nil || v.closing {
		return
	}
	v.leaseStop = make(chan struct{})
	v.leaseWG.Add(1)
	go v.renewLoop(v.leaseStop)
}

// errVaultClosed: the Vault was closed while an import waited for its
// turn.
var errVaultClosed = errors.New("vault: closed")

func (v *Vault) isClosing() bool {
	v.leaseMu.Lock()
	defer v.leaseMu.Unlock()
	return v.closing
}

func (v *Vault) stopRenewer() {
	v.leaseMu.Lock()
	v.closing = true
	if v.leaseStop != nil {
		close(v.leaseStop)
		v.leaseStop = nil
	}
	v.leaseMu.Unlock()
	v.leaseWG.Wait()
}

// renewLoop renews, every leaseRenewEvery, the leases of the markers this
// Vault holds; a marker that is not its own any more is left as it is
// (the import's next batch fails).
func (v *Vault) renewLoop(stop <-chan struct{}) {
	defer v.leaseWG.Done()
	t := time.NewTicker(leaseRenewEvery)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		v.renewHeld()
	}
}

// renewHeld renews the leases of the markers this Vault holds, in one
// transaction.
func (v *Vault) renewHeld() error {
	var keys [][]byte
	v.liveImports.Range(func(k, _ any) bool {
		keys = append(keys, []byte(k.(string)))
		return true
	})
	if len(keys) == 0 {
		return nil
	}
	return v.update(func(tx kv.Tx) error {
		b := tx.Bucket([]byte{bucketSettings})
		for _, k := range keys {
			if b.Get(k) == nil {
				continue // not written yet, or done
			}
			if err := v.renewMark(b, k); err != nil && !errors.Is(err, errImportLost) {
				return err
			}
		}
		return nil
	})
}

// fileTurns serialises the imports of one file (see Import).
type fileTurns struct {
	mu   sync.Mutex
	busy map[string]chan struct{} // closed when the turn is released
}

// take waits for the file's turn and takes it, or returns ctx's error
// if ctx is done first.
func (t *fileTurns) take(ctx context.Context, sha string) error {
	for {
		t.mu.Lock()
		ch, busy := t.busy[sha]
		if !busy {
			if t.busy == nil {
				t.busy = map[string]chan struct{}{}
			}
			t.busy[sha] = make(chan struct{})
			t.mu.Unlock()
			return nil
		}
		t.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (t *fileTurns) release(sha string) {
	t.mu.Lock()
	ch := t.busy[sha]
	delete(t.busy, sha)
	t.mu.Unlock()
	close(ch)
}

func (im *Import) takeTurn() error {
	if !im.turn {
		if err := im.v.fileTurns.take(im.ctx, im.sha); err != nil {
			return err
		}
		im.turn = true
	}
	return nil
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
	return v.BeginImportContext(context.Background(), fileSHA256)
}

// BeginImportContext is BeginImport with a context that bounds how long
// the import waits for its turn (see Import): an Add or Commit that is
// still waiting when ctx is done returns ctx's error, having written
// nothing.
func (v *Vault) BeginImportContext(ctx context.Context, fileSHA256 string) (*Import, error) {
	if err := checkFileSHA(fileSHA256); err != nil {
		return nil, err
	}
	if ctx == nil {
		ctx = context.Background()
	}
	return &Import{v: v, sha: fileSHA256, ctx: ctx}, nil
}

// checkFileSHA checks that sha is a file's SHA-256 as its records'
// provenance names it: 64 lower-case hex digits.
func checkFileSHA(sha string) error {
	if b, err := hex.DecodeString(sha); err != nil || len(b) != 32 || hex.EncodeToString(b) != sha {
		return errors.New("vault: import: the file's SHA-256 must be 64 lower-case hex digits")
	}
	return nil
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
	if err := im.takeTurn(); err != nil {
		return nil, err
	}
	for {
		if err := im.v.waitFile(im.ctx, im.sha); err != nil {
			im.releaseTurn()
			return nil, err
		}
		key := newImportMarkKey()
		// Held before it exists, so that Check in this Vault never
		// takes it for the marker of a dead import.
		im.v.holdMark(key)
		res, err := im.v.add(recs, false, im, func(tx kv.Tx, seq uint64) error {
			im.since = seq
			return im.v.putFileMark(tx, key, seq, im.sha)
		})
		if err != nil {
			im.v.releaseMark(key)
			if errors.Is(err, errFileBusy) {
				continue // another Vault began an import of the file first
			}
			im.releaseTurn() // nothing written: nothing to abort
			return nil, err
		}
		im.key = key
		return res, nil
	}
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
		if err := im.takeTurn(); err != nil {
			return nil, err
		}
		defer im.releaseTurn()
		im.last = true
		for {
			if err := im.v.waitFile(im.ctx, im.sha); err != nil {
				return nil, err
			}
			res, err := im.v.add(recs, false, im, func(tx kv.Tx, _ uint64) error { return im.v.fileFree(tx, im.sha) })
			if errors.Is(err, errFileBusy) {
				continue
			}
			if err == nil {
				im.done = true
			}
			return res, err
		}
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
	im.v.releaseMark(im.key)
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
	defer im.v.releaseMark(im.key)
	// A marker that is gone or another's was rolled back (or is being
	// rolled back) by whoever took it: purging the file's records again
	// could remove those of an import of the same file begun since.
	err := im.v.update(func(tx kv.Tx) error { return im.stillMarked(tx) })
	if errors.Is(err, errImportLost) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return im.v.rollBack(im.key, im.since, im.sha, false)
}

// PurgeImport removes, as Purge does, the records changed after sequence
// since whose provenance names the file fileSHA256: the undo of a failed
// import, without having to remember every ID it added.
//
// It takes the file's turn as an import of the file does (see Import): it
// waits while an import of the file runs, in this Vault or in another on
// the same store, so that it never removes part of an import still
// running, and an import of the file begun meanwhile waits for it. Like
// an import, it holds a marker of the file while it removes (naming
// since), so that if it stops half-way (a crash, a failed write) the
// rollback of that dead marker finishes the job. Do not call it for a
// file whose import the same goroutine holds: Abort that import.
func (v *Vault) PurgeImport(since uint64, fileSHA256 string) (int, error) {
	return v.PurgeImportContext(context.Background(), since, fileSHA256)
}

// PurgeImportContext is PurgeImport with a context that bounds how long it
// waits for the file's turn: if ctx is done first it returns ctx's error,
// having removed nothing.
func (v *Vault) PurgeImportContext(ctx context.Context, since uint64, fileSHA256 string) (int, error) {
	if err := checkFileSHA(fileSHA256); err != nil {
		return 0, err
	}
	if ctx == nil {
		ctx = context.Background()
	}
	if v.readOnly {
		return 0, ErrReadOnly
	}
	if err := v.fileTurns.take(ctx, fileSHA256); err != nil {
		return 0, err
	}
	defer v.fileTurns.release(fileSHA256)
	for {
		if err := v.waitFile(ctx, fileSHA256); err != nil {
			return 0, err
		}
		key := newImportMarkKey()
		v.holdMark(key) // before it exists, as Import.Add does
		err := v.update(func(tx kv.Tx) error { return v.putFileMark(tx, key, since, fileSHA256) })
		if errors.Is(err, errFileBusy) {
			v.releaseMark(key)
			continue // another Vault began an import of the file first
		}
		if err != nil {
			v.releaseMark(key)
			return 0, err
		}
		defer v.releaseMark(key)
		return v.rollBack(key, since, fileSHA256, false)
	}
}

// errFileBusy: another Vault's import of the same file holds a live
// marker (see waitFile).
var errFileBusy = errors.New("vault: another import of the file is running")

// fileFree, in the transaction that begins an import, fails with
// errFileBusy if a marker of the same file is there that no import of
// this Vault holds: another Vault's live import (wait for it), or a dead
// one (roll it back first: its rollback would remove this import's
// records too). waitFile does both.
func (v *Vault) fileFree(tx kv.Tx, sha string) error {
	if v.fileMark(tx, sha) != nil {
		return errFileBusy
	}
	return nil
}

// putFileMark, in the transaction that begins an import of file sha (or
// a PurgeImport of it), writes its marker key, of this Vault, naming the
// change sequence since before it, after checking that the file is free
// (fileFree). The caller holds key (holdMark) already.
func (v *Vault) putFileMark(tx kv.Tx, key []byte, since uint64, sha string) error {
	if err := v.fileFree(tx, sha); err != nil {
		return err
	}
	return v.putSetting(tx.Bucket([]byte{bucketSettings}), key, encodeImportMark(since, sha, v.handle, v.now().Add(importLease)))
}

// fileMark returns a marker of file sha that no import of this Vault
// holds, or nil.
func (v *Vault) fileMark(tx kv.Tx, sha string) *importMark {
	for _, m := range v.importMarks(tx, true) {
		if _, held := v.liveImports.Load(string(m.key)); m.err == nil && m.sha == sha && !held {
			return &m
		}
	}
	return nil
}

// Backoff of waitFile's polls.
const (
	fileWaitMin = 10 * time.Millisecond
	fileWaitMax = time.Second
)

// waitFile waits until no marker of file sha is left that this Vault
// does not hold: an import of the same file by another Vault (a phrd
// node) takes its turn as one of this Vault does (fileTurns), so that
// this import then finds that one's records as duplicates instead of
// adding them again, and so that neither's rollback (nor a PurgeImport)
// removes the other's records. It polls with backoff, never past the
// lease the marker names; a marker whose lease expired belongs to an
// import that died and is rolled back here. ctx bounds the wait.
func (v *Vault) waitFile(ctx context.Context, sha string) error {
	wait := fileWaitMin
	for {
		if v.isClosing() {
			return errVaultClosed
		}
		var block *importMark
		err := v.view(func(tx kv.Tx) error {
			block = v.fileMark(tx, sha)
			return nil
		})
		if err != nil || block == nil {
			return err
		}
		now := v.now()
		if v.markDead(*block, now) {
			if _, err := v.rollBackDead(*block); err != nil {
				return err
			}
			continue
		}
		d := min(wait, max(block.expires.Sub(now), 0)+fileWaitMin)
		wait = min(2*wait, fileWaitMax)
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
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
	key     []byte
	since   uint64
	sha     string
	owner   [16]byte  // the Vault that holds it (version 2)
	expires time.Time // its lease (version 2)
	legacy  bool      // version 1: no owner, no lease
	err     error     // the marker does not open
}

// deadImportMarks returns the markers of imports that died (markDead).
// A marker that does not open is returned with err set.
func (v *Vault) deadImportMarks(tx kv.Tx) []importMark { return v.importMarks(tx, false) }

// importMarks returns the import markers: all of them if live, else the
// dead ones (markDead) and those that do not open.
func (v *Vault) importMarks(tx kv.Tx, live bool) []importMark {
	var out []importMark
	c := tx.Bucket([]byte{bucketSettings}).Cursor()
	prefix := []byte(importMarkPrefix)
	now := v.now()
	for k, val := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, val = c.Next() {
		if _, held := v.liveImports.Load(string(k)); held && !live {
			continue
		}
		m, err := v.openImportMark(k, val)
		m.key, m.err = append([]byte(nil), k...), err
		if !live && err == nil && !v.markDead(m, now) {
			continue
		}
		out = append(out, m)
	}
	return out
}

// markDead reports whether m (which opened) belongs to an import that
// no longer runs: not one this Vault holds, and either of this Vault, or
// of version 1, or in a vault file of its own (whose lock keeps every
// other writer out), or with its lease expired at now.
func (v *Vault) markDead(m importMark, now time.Time) bool {
	if _, held := v.liveImports.Load(string(m.key)); held {
		return false
	}
	return v.path != "" || m.legacy || m.owner == v.handle || now.After(m.expires)
}

// rollBackInterrupted undoes every import that died (markDead) and
// returns how many it undid; Open calls it on a vault opened for
// writing, Check with repair too. A marker that does not open is left
// for Check to report; a live marker of another Vault is left alone.
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
		ok, err := v.rollBackDead(m)
		if err != nil {
			return done, fmt.Errorf("vault: rolling back an interrupted import: %w", err)
		}
		if ok {
			done++
		}
	}
	return done, nil
}

// RollBackDead rolls back the imports whose Vault died in the middle of
// them, as the next Vault opened for writing would: in a store that
// several Vaults share (OpenIn, phrd's nodes), an import whose marker's
// lease has run out, so that a Vault that stays open does not keep a dead
// node's half-written file in view until someone opens the vault again.
// It returns how many it rolled back; RolledBack lists them. A read-only
// Vault, or one opened Unverified with a head that did not match, rolls
// back nothing.
func (v *Vault) RollBackDead() (int, error) {
	if v.readOnly || v.tamper != nil {
		return 0, nil
	}
	return v.rollBackInterrupted()
}

// rollBackDead claims the marker of a dead import (in one transaction
// that checks it is still dead: its owner may have renewed it since it
// was read), rolls the import back and records it in RolledBack. It
// reports false if the marker was gone or live again.
func (v *Vault) rollBackDead(m importMark) (bool, error) {
	claimed := false
	err := v.update(func(tx kv.Tx) error {
		b := tx.Bucket([]byte{bucketSettings})
		sealed := b.Get(m.key)
		if sealed == nil {
			return nil
		}
		cur, err := v.openImportMark(m.key, sealed)
		if err != nil {
			return err
		}
		cur.key = m.key
		if !v.markDead(cur, v.now()) {
			return nil
		}
		m, claimed = cur, true
		// Held from here on: its lease is renewed while the rollback
		// runs, and nothing else of this Vault takes it for dead.
		v.holdMark(m.key)
		return v.putSetting(b, m.key, encodeImportMark(m.since, m.sha, v.handle, v.now().Add(importLease)))
	})
	if claimed {
		defer v.releaseMark(m.key)
	}
	if err != nil || !claimed {
		return false, err
	}
	n, err := v.rollBack(m.key, m.since, m.sha, true)
	if err != nil {
		return false, err
	}
	v.rbMu.Lock()
	v.rolledBack = append(v.rolledBack, Rollback{FileSHA256: m.sha, Records: n})
	v.rbMu.Unlock()
	return true, nil
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

// encodeImportMark encodes a marker of version 2.
func encodeImportMark(since uint64, sha string, owner [16]byte, expires time.Time) []byte {
	out := make([]byte, 1+8, importMarkV2Len)
	out[0] = importMarkV2
	binary.BigEndian.PutUint64(out[1:], since)
	sum, _ := hex.DecodeString(sha) // checked by BeginImport
	out = append(out, sum...)
	out = append(out, owner[:]...)
	return binary.BigEndian.AppendUint64(out, uint64(expires.UnixMilli()))
}

const (
	importMarkV1Len = 1 + 8 + 32
	importMarkV2Len = importMarkV1Len + 16 + 8
)

func (v *Vault) openImportMark(key, sealed []byte) (importMark, error) {
	var m importMark
	pt, err := v.keys.open(bucketSettings, key, sealed)
	if err != nil {
		return m, err
	}
	if len(pt) == 0 {
		return m, fmt.Errorf("%w: import marker", ErrCorrupt)
	}
	switch {
	case pt[0] > importMarkVersion:
		return m, ErrNewerVersion
	case pt[0] == importMarkV1 && len(pt) == importMarkV1Len:
		m.legacy = true
	case pt[0] == importMarkV2 && len(pt) == importMarkV2Len:
		copy(m.owner[:], pt[importMarkV1Len:])
		m.expires = time.UnixMilli(int64(binary.BigEndian.Uint64(pt[importMarkV1Len+16:])))
	default:
		return m, fmt.Errorf("%w: import marker", ErrCorrupt)
	}
	m.since, m.sha = binary.BigEndian.Uint64(pt[1:9]), hex.EncodeToString(pt[9:41])
	return m, nil
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
