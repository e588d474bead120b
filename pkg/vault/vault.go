package vault

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/phr-project/phr/pkg/kv"
	"github.com/phr-project/phr/pkg/record"
	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// FormatVersion is the vault format this code writes. Older formats are
// migrated on open for writing; newer ones are refused.
//
// Format 2 (2026-11): fingerprints are keyed by cluster (fingerprintKey).
// Format 3 (2026-12): sealed values are bound to their version, and an
// authenticated head covers every value (head.go); fingerprints are of
// content only, with an identity index and a history of earlier versions
// (versions.go).
// Format 4 (2026-12): envelopes are compressed (compress.go), and a
// sealed listing index (listing.go) replaces the kind index.
const FormatVersion = 4

// magic identifies a phr vault in its meta bucket.
const magic = "phr-vault"

// Bucket names: single letters that say nothing.
var (
	bucketMeta     = byte('m')
	bucketSlots    = byte('k')
	bucketRecords  = byte('r')
	bucketIndex    = byte('x')
	bucketFinger   = byte('f')
	bucketChanges  = byte('c')
	bucketSettings = byte('s')
	bucketIdentity = byte('i') // since format 3
	bucketHistory  = byte('h') // since format 3
	bucketListing  = byte('l') // since format 4
	bucketDicts    = byte('z') // since format 4
	// bucketCursor is no bucket: listing cursors are sealed as if they
	// were values of it, so that nothing else opens as one.
	bucketCursor = byte('q')
	// allBuckets are the buckets of every format, in the order the head
	// lists its totals.
	allBuckets = []byte{bucketMeta, bucketSlots, bucketRecords, bucketIndex, bucketFinger, bucketChanges, bucketSettings, bucketIdentity, bucketHistory, bucketListing, bucketDicts}
	// The buckets of each format: a vault of an older format gets the
	// newer ones (and loses the kind index) when it is upgraded.
	format2Buckets = allBuckets[:7]
	format3Buckets = allBuckets[:9]
	format4Buckets = []byte{bucketMeta, bucketSlots, bucketRecords, bucketFinger, bucketChanges, bucketSettings, bucketIdentity, bucketHistory, bucketListing, bucketDicts}
)

// bucketsOf returns the buckets a vault of the given format has.
func bucketsOf(format uint32) []byte {
	switch {
	case format < 3:
		return format2Buckets
	case format == 3:
		return format3Buckets
	}
	return format4Buckets
}

// Options tune how a vault is opened.
type Options struct {
	// LockTimeout is how long Open waits for another process to release
	// the vault before it returns ErrLocked. Default 2s.
	LockTimeout time.Duration
	// ReadOnly opens the file with a shared lock; writes fail.
	ReadOnly bool
	// NoSync skips fsync after each transaction. Benchmarks only.
	NoSync bool
	// Now replaces time.Now (tests).
	Now func() time.Time
	// Heads, if set, remembers the newest head this device has seen of
	// each vault. Open refuses a file older than that with a
	// RollbackError (ErrRolledBack), and Open and Close remember the
	// file's head.
	Heads HeadStore
	// AcceptRollback opens a file older than the one Heads remembers,
	// and remembers its head as the newest: for an older copy or a
	// backup restored on purpose.
	AcceptRollback bool
	// Unverified opens a file that does not match its authenticated
	// head (ErrTampered) instead of refusing it, so that Check can say
	// what is wrong; a vault so opened rolls no interrupted import back.
	Unverified bool
}

// allocSize is how much a vault's file grows at a time beyond what it
// needs (bbolt's default is 16 MiB): the file is what the patient keeps,
// copies and backs up, so it carries little slack.
const allocSize = 1 << 20

func (o *Options) boltOptions() *bolt.Options {
	to := 2 * time.Second
	if o != nil && o.LockTimeout > 0 {
		to = o.LockTimeout
	}
	bo := &bolt.Options{Timeout: to, FreelistType: bolt.FreelistMapType}
	if o != nil {
		bo.ReadOnly = o.ReadOnly
		bo.NoSync = o.NoSync
	}
	return bo
}

// Vault is an open, unlocked vault. Its methods are safe for concurrent
// use.
type Vault struct {
	// mu guards keys and vaultKey: transactions hold it for reading,
	// Rotate for writing.
	mu sync.RWMutex
	// db is the store: the vault's own bbolt file (Create, Open), or a
	// store it was opened in (CreateIn, OpenIn: path is empty).
	db       kv.DB
	boltOpts *bolt.Options // to reopen db (reopen)
	path     string
	// ownsDB: Close closes db (a file the vault opened; not a store it
	// was opened in).
	ownsDB   bool
	id       [16]byte
	vaultKey []byte
	keys     *keyring
	readOnly bool
	now      func() time.Time
	written  atomic.Int64 // records written by Add, for trimAfter
	// fpLegacy: the dedup index may hold legacy fingerprint keys (format
	// 1), so lookups try those too (see fingerprintKey).
	fpLegacy atomic.Bool
	// fpScheme2: the dedup index may hold fingerprints computed as
	// formats 1 and 2 did (record.LegacyFingerprint), so imports look
	// those up too (versions.go).
	fpScheme2 atomic.Bool
	// fpDay: the dedup index may hold fingerprints keyed by day
	// clusters, as format 3 keyed them (see cluster), so lookups try
	// those too.
	fpDay  atomic.Bool
	format uint32    // the format version found at Open
	meta   metaIndex // the listing index in memory, before format 4 (meta.go)
	codec  codec     // envelope compression (compress.go)
	// codecDirty: the running write transaction trained a dictionary; if
	// it does not commit, the codec forgets it. Guarded by wmu, which
	// each write transaction holds from before it begins until after the
	// codec is reset (bbolt's own writer lock is released inside Commit,
	// before the transaction's outcome is known here).
	codecDirty bool
	wmu        sync.Mutex
	// committed run after the running write transaction commits
	// (onCommit), guarded by wmu.
	committed []func()
	// pending are the fingerprints imports have not written yet
	// (pending.go), guarded by pendMu.
	pendMu  sync.Mutex
	pending map[fpKey]pendingFP
	// wl are the listing changes of the running write transaction
	// (listing.go), committed with it; wlMerge has it merge every
	// change into the tree (the last batch of an import).
	wl      []listChange
	wlMerge bool

	// wh is the authenticated head of the write transaction running
	// (head.go); verified: Verify passed.
	wh       *headState
	verified atomic.Bool
	// tamper lists what did not match the head at Open (with
	// Options.Unverified): such a vault rolls no import back and is never
	// taken as verified.
	tamper []string
	// heads remembers what this device has seen (Options.Heads);
	// remembered is the head it last remembered.
	heads      HeadStore
	remembered Head
	// unlockedBy is the ID of the slot that opened the vault.
	unlockedBy string
	// ids makes this vault's record IDs (NewID).
	ids record.IDRun

	// liveImports holds the marker names of this process's imports in
	// progress (imports.go); rolledBack, guarded by rbMu, what Open (or
	// Check) rolled back.
	liveImports sync.Map
	rbMu        sync.Mutex
	rolledBack  []Rollback
	fileTurns   fileTurns // imports of one file take turns (imports.go)
	// handle is this open Vault's random name: the owner its import
	// markers name (imports.go).
	handle [16]byte
	// The renewer of the leases of the markers it holds (renewLoop):
	// leaseStop stops it, closing says Close has begun.
	leaseMu   sync.Mutex
	leaseStop chan struct{}
	closing   bool
	leaseWG   sync.WaitGroup
	// opened: open has returned the Vault (view's check of the format).
	opened atomic.Bool
	// upgrading: the transactions of an upgrade in a store hold its
	// lease (holdUpgrade); set only while open runs.
	upgrading bool
}

// Create makes a new vault at path with a fresh vault key wrapped in the
// given slots (at least one). The file is written under a temporary name
// and renamed into place, so a crash leaves no half-made vault. It refuses
// an existing path with ErrExists.
func Create(path string, slots []SlotSpec, opts *Options) (*Vault, error) {
	if len(slots) == 0 {
		return nil, errors.New("vault: create needs at least one key slot")
	}
	if _, err := os.Lstat(path); err == nil {
		return nil, ErrExists
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	var rnd [8]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return nil, err
	}
	tmp := filepath.Join(filepath.Dir(path), ".phr-create-"+hex.EncodeToString(rnd[:]))
	bdb, err := bolt.Open(tmp, 0o600, opts.boltOptions())
	if err != nil {
		return nil, err
	}
	bdb.AllocSize = allocSize
	db := kv.WrapBolt(bdb)
	fail := func(err error) (*Vault, error) {
		db.Close()
		os.Remove(tmp)
		return nil, err
	}
	v, err := initVault(db, slots, opts)
	if err != nil {
		return fail(err)
	}
	v.path = path
	if err := db.Close(); err != nil {
		return fail(err)
	}
	if err := os.Link(tmp, path); err != nil { // unlike rename, never replaces
		os.Remove(tmp)
		if errors.Is(err, fs.ErrExist) {
			return nil, ErrExists
		}
		return nil, err
	}
	os.Remove(tmp)
	if err := syncDir(filepath.Dir(path)); err != nil {
		return nil, err
	}
	v.boltOpts = opts.boltOptions()
	if bdb, err = bolt.Open(path, 0o600, v.boltOpts); err != nil {
		return nil, openError(err)
	}
	bdb.AllocSize = allocSize
	v.db, v.ownsDB = kv.WrapBolt(bdb), true
	v.verified.Store(true)
	if opts != nil && opts.Heads != nil {
		v.heads = opts.Heads
		v.rememberHead()
	}
	return v, nil
}

// initVault makes a new vault in db, which must hold no bucket
// (ErrExists), with a fresh vault key wrapped in the given slots, in one
// transaction.
func initVault(db kv.DB, slots []SlotSpec, opts *Options) (*Vault, error) {
	v := &Vault{db: db, vaultKey: make([]byte, 32), now: time.Now, format: FormatVersion}
	if opts != nil && opts.Now != nil {
		v.now = opts.Now
	}
	if _, err := rand.Read(v.vaultKey); err != nil {
		return nil, err
	}
	if _, err := rand.Read(v.handle[:]); err != nil {
		return nil, err
	}
	if _, err := rand.Read(v.id[:]); err != nil {
		return nil, err
	}
	var err error
	if v.keys, err = deriveKeyring(v.vaultKey, v.id, 1); err != nil {
		return nil, err
	}
	err = db.Update(func(tx kv.Tx) error {
		if err := tx.ForEach(func([]byte, kv.Bucket) error { return ErrExists }); err != nil {
			return err
		}
		for _, b := range format4Buckets {
			if _, err := tx.CreateBucket([]byte{b}); err != nil {
				return err
			}
		}
		m := tx.Bucket([]byte{bucketMeta})
		var ver [4]byte
		binary.BigEndian.PutUint32(ver[:], FormatVersion)
		var term [4]byte
		binary.BigEndian.PutUint32(term[:], 1)
		for k, val := range map[string][]byte{"magic": []byte(magic), "version": ver[:], "id": v.id[:], "term": term[:]} {
			if err := m.Put([]byte(k), val); err != nil {
				return err
			}
		}
		sb := tx.Bucket([]byte{bucketSlots})
		for _, spec := range slots {
			id := newSlotID()
			enc, err := v.encodeSlot(id, spec, v.vaultKey, v.keys)
			if err != nil {
				return err
			}
			if err := sb.Put([]byte(id), enc); err != nil {
				return err
			}
		}
		h := computeHead(tx, v.keys, 1)
		h.list = newListMeta()
		return storeHead(tx, v.keys, h)
	})
	if err != nil {
		v.keys.wipe()
		clear(v.vaultKey)
		return nil, err
	}
	return v, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Open opens and unlocks the vault at path with secret. Opened for
// writing, it first rolls back the imports a crash interrupted (see
// Import and RolledBack).
//
// Opened for writing, a vault of an older format is upgraded to the
// current one. Open checks the authenticated head (head.go) and refuses a
// file that does not match it (ErrTampered) unless opts.Unverified; with
// opts.Heads it refuses a file older than the newest this device has seen
// (ErrRolledBack) unless opts.AcceptRollback.
func Open(path string, secret Secret, opts *Options) (*Vault, error) {
	bopts := opts.boltOptions()
	db, err := openBolt(path, bopts)
	if err != nil {
		return nil, err
	}
	v := &Vault{db: kv.WrapBolt(db), ownsDB: true, boltOpts: bopts, path: path}
	return v.open(secret, opts)
}

// open unlocks v (its store set) and does the rest of Open, OpenIn.
func (v *Vault) open(secret Secret, opts *Options) (*Vault, error) {
	v.now, v.readOnly = time.Now, opts != nil && opts.ReadOnly
	if opts != nil && opts.Now != nil {
		v.now = opts.Now
	}
	if _, err := rand.Read(v.handle[:]); err != nil {
		return nil, err
	}
	if err := v.unlock(secret); err != nil {
		if v.ownsDB {
			v.db.Close()
		}
		return nil, err
	}
	fail := func(err error) (*Vault, error) {
		v.heads = nil // remember nothing of a file refused
		v.Close()
		return nil, err
	}
	_, bad, err := v.verifyOpen()
	if err != nil {
		return fail(err)
	}
	if len(bad) > 0 {
		if opts == nil || !opts.Unverified {
			return fail(tampered(strings.Join(bad, "; ")))
		}
		v.tamper = bad
	}
	if opts != nil && opts.Heads != nil {
		if err := v.compareSeen(opts.Heads, opts.AcceptRollback); err != nil {
			return fail(err)
		}
		v.heads = opts.Heads
	}
	if !v.readOnly {
		if v.path != "" {
			removeCompactLeftovers(v.path)
		}
		if err := v.upgrade(); err != nil {
			return fail(err)
		}
		// Imports a crash interrupted leave nothing behind (imports.go),
		// unless the settings that name them do not match the head: a
		// marker put back from an older copy must not remove records.
		if v.tamper == nil {
			if _, err := v.rollBackInterrupted(); err != nil {
				return fail(err)
			}
		}
	}
	if v.heads != nil {
		v.rememberHead()
	}
	v.opened.Store(true)
	return v, nil
}

// openBolt opens the bbolt file at path, making sure that the file it
// locked is still the one at path: a process that waited for the lock
// while another compacted the vault (compact.go) holds the replaced file,
// and opens again.
func openBolt(path string, bopts *bolt.Options) (*bolt.DB, error) {
	for range 10 {
		if err := precheck(path); err != nil {
			return nil, err
		}
		before, err := os.Stat(path)
		if err != nil {
			return nil, err
		}
		db, err := bolt.Open(path, 0o600, bopts)
		if err != nil {
			return nil, openError(err)
		}
		db.AllocSize = allocSize
		after, err := os.Stat(path)
		if err == nil && os.SameFile(before, after) {
			return db, nil
		}
		db.Close()
	}
	return nil, ErrLocked
}

// metaLegacyFingerprints, in the meta bucket, says that the dedup index
// may still hold fingerprints under their format-1 keys.
const metaLegacyFingerprints = "fp16"

// metaDayFingerprints, in the meta bucket, says that the dedup index may
// hold fingerprints keyed by day clusters (formats 2 and 3; see cluster).
const metaDayFingerprints = "fpd"

// metaScheme2Fingerprints, in the meta bucket, says that the dedup index
// may still hold fingerprints computed as formats 1 and 2 computed them
// (by source id or identifiers before content).
const metaScheme2Fingerprints = "fpv2"

// upgrade moves a vault opened for writing to FormatVersion. Format 2
// keys fingerprints by cluster (fingerprintKey); the format-1 keys already
// stored stay valid and are looked up too, until a rebuild of the index
// (Check with repair, Rotate) rewrites them all.
//
// Format 3 seals values with their version and covers them with the
// authenticated head: the upgrade computes the head from what the file
// holds (a scan of every value, unsealing nothing) and writes it. Values
// sealed before stay as they are, bound to their place (seal version 1),
// and are covered by the head like the others; each is sealed anew with
// its version the next time it is written. A value sealed with its
// version cannot be in a file of format 1 or 2: finding one means the
// file's format version was lowered to have its head recomputed, and the
// upgrade refuses it. Format 3 also fingerprints content only and adds
// the identity index and the history; the fingerprints already stored
// stay and are looked up as earlier versions would have computed them
// (see findEarlier), so that nothing imported before comes back twice.
//
// Another Vault on the same store may upgrade it at the same time (two
// phrd nodes opening an account's vault after an update): a step that
// finds the store at another format than this Vault read (ErrStale)
// takes the store's format and flags and goes on from there.
func (v *Vault) upgrade() error {
	wait := fileWaitMin
	for v.format < FormatVersion {
		was, busy := v.format, false
		var err error
		if v.format < 3 {
			err = v.upgrade3()
		} else {
			err = v.upgrade4()
		}
		if errors.Is(err, errUpgradeBusy) {
			// Another Vault is upgrading the store: wait for it to
			// finish (or for its lease to expire), then go on from
			// the format it left.
			busy = true
			time.Sleep(wait)
			wait = min(2*wait, fileWaitMax)
			err = v.adoptFormat()
		}
		if errors.Is(err, ErrStale) || (err == nil && v.format == was) {
			err = v.adoptFormat()
		}
		if err != nil {
			return err
		}
		if v.format == was && !busy {
			if v.tamper != nil {
				return nil // upgrade4 leaves a file that does not match its head as it is
			}
			return fmt.Errorf("vault: the upgrade from format %d made no progress", was)
		}
	}
	return nil
}

// metaUpgrade, in the meta bucket, is the lease of a Vault moving the
// vault to format 4 (which may take several transactions): owner (16
// bytes) ‖ expiry (int64 BE, Unix milliseconds). Not sealed: it says only
// that an upgrade runs (or died). Its last transaction deletes it.
const metaUpgrade = "upgrading"

// errUpgradeBusy: another Vault holds the upgrade's lease.
var errUpgradeBusy = errors.New("vault: another opener is upgrading the vault")

// holdUpgrade takes or renews the upgrade's lease in tx, or returns
// errUpgradeBusy while another Vault's is live. An upgrade that died
// leaves a lease that expires; the next one drops the nodes it wrote
// (dropNodesExcept) and starts over. In a vault file of its own, whose
// lock keeps every other writer out, any lease found is a dead one's.
func (v *Vault) holdUpgrade(tx kv.Tx) error {
	m := tx.Bucket([]byte{bucketMeta})
	now := v.now()
	if cur := m.Get([]byte(metaUpgrade)); v.path == "" && len(cur) == 24 && [16]byte(cur[:16]) != v.handle &&
		now.Before(time.UnixMilli(int64(binary.BigEndian.Uint64(cur[16:])))) {
		return errUpgradeBusy
	}
	val := make([]byte, 24)
	copy(val, v.handle[:])
	binary.BigEndian.PutUint64(val[16:], uint64(now.Add(importLease).UnixMilli()))
	return m.Put([]byte(metaUpgrade), val)
}

// releaseUpgrade drops this Vault's upgrade lease after its upgrade
// failed, so that the next opener need not wait for it to expire.
func (v *Vault) releaseUpgrade() {
	v.update(func(tx kv.Tx) error {
		m := tx.Bucket([]byte{bucketMeta})
		if cur := m.Get([]byte(metaUpgrade)); len(cur) == 24 && [16]byte(cur[:16]) == v.handle {
			return m.Delete([]byte(metaUpgrade))
		}
		return nil
	})
}

// readFlags sets the dedup index's flags from the meta bucket m of a vault
// of the given format.
func (v *Vault) readFlags(m kv.Bucket, version uint32) {
	v.fpLegacy.Store(version < 2 || m.Get([]byte(metaLegacyFingerprints)) != nil)
	v.fpScheme2.Store(version < 3 || m.Get([]byte(metaScheme2Fingerprints)) != nil)
	v.fpDay.Store(version >= 4 && m.Get([]byte(metaDayFingerprints)) != nil)
}

// storedFormat is the format version the meta bucket m records, one this
// code reads.
func storedFormat(m kv.Bucket) (uint32, error) {
	ver := m.Get([]byte("version"))
	if len(ver) != 4 {
		return 0, fmt.Errorf("%w: no format version", ErrCorrupt)
	}
	version := binary.BigEndian.Uint32(ver)
	if version > FormatVersion {
		return 0, ErrNewerVersion
	}
	return version, nil
}

// adoptFormat takes the format and flags of the store, which another
// Vault upgraded while this one was being opened.
func (v *Vault) adoptFormat() error {
	return v.db.View(func(tx kv.Tx) error {
		m := tx.Bucket([]byte{bucketMeta})
		version, err := storedFormat(m)
		if err != nil {
			return err
		}
		if version < v.format {
			return tampered(fmt.Sprintf("the format version went down from %d to %d while the vault was opened", v.format, version))
		}
		v.format = version
		v.readFlags(m, version)
		return nil
	})
}

// upgrade3 moves a vault of format 1 or 2 to format 3.
func (v *Vault) upgrade3() error {
	upgraded := false
	err := v.update(func(tx kv.Tx) error {
		m := tx.Bucket([]byte{bucketMeta})
		old := binary.BigEndian.Uint32(m.Get([]byte("version")))
		if old >= 3 {
			return nil
		}
		hasFingerprints := false
		if k, _ := tx.Bucket([]byte{bucketFinger}).Cursor().First(); k != nil {
			hasFingerprints = true
		}
		if old < 2 {
			if hasFingerprints {
				if err := m.Put([]byte(metaLegacyFingerprints), []byte{1}); err != nil {
					return err
				}
			} else {
				v.onCommit(func() { v.fpLegacy.Store(false) })
			}
		}
		if hasFingerprints {
			if err := m.Put([]byte(metaScheme2Fingerprints), []byte{1}); err != nil {
				return err
			}
			v.onCommit(func() { v.fpScheme2.Store(true) })
		} else {
			v.onCommit(func() { v.fpScheme2.Store(false) })
		}
		if m.Get([]byte(headKey)) != nil || hasSealV2(tx) {
			return tampered("a file of format " + fmt.Sprint(old) + " holds values of format 3: its format version was lowered")
		}
		for _, b := range format3Buckets {
			if _, err := tx.CreateBucketIfNotExists([]byte{b}); err != nil {
				return err
			}
		}
		h := computeHead(tx, v.keys, 1)
		if err := storeHead(tx, v.keys, h); err != nil {
			return err
		}
		var ver [4]byte
		binary.BigEndian.PutUint32(ver[:], 3)
		if err := m.Put([]byte("version"), ver[:]); err != nil {
			return err
		}
		upgraded = true
		return nil
	})
	if err == nil && upgraded {
		// Set after the commit, before Open returns: nothing else runs
		// on this vault yet.
		v.format = 3
		v.verified.Store(true)
	}
	return err
}

// upgradeTxEntries is how many records an upgrade to format 4 writes the
// listing entries of per transaction.
var upgradeTxEntries = 100_000

// upgrade4 moves a vault of format 3 to format 4: it builds the listing
// index from the records (buildListing: a pass that decodes every
// record's facts, then one that reads every record in listing order) in
// transactions of upgradeTxEntries records, and in the last one stores
// the index's root in the head, drops the kind index and sets the format.
// An upgrade that stops half-way leaves nodes that no head names; the
// next one drops them first. Records are not rewritten: each is
// compressed the next time it is written.
func (v *Vault) upgrade4() error {
	if v.tamper != nil {
		return nil // a file that does not match its head is not upgraded (Check opens it)
	}
	// The index is built from the records: first make sure they are the
	// ones the head covers.
	if err := v.Verify(); err != nil {
		return err
	}
	small := false
	install := func(tx kv.Tx, nm *listMeta, first uint64) error {
		if tx.Bucket([]byte{bucketIndex}) != nil {
			if err := tx.DeleteBucket([]byte{bucketIndex}); err != nil {
				return err
			}
		}
		if v.wh == nil {
			return tampered("the head is missing")
		}
		delete(v.wh.totals, bucketIndex)
		v.wh.list = nm
		m := tx.Bucket([]byte{bucketMeta})
		if k, _ := tx.Bucket([]byte{bucketFinger}).Cursor().First(); k != nil {
			// Fingerprints keyed by day clusters stay, and are looked up.
			if err := m.Put([]byte(metaDayFingerprints), []byte{1}); err != nil {
				return err
			}
			v.onCommit(func() { v.fpDay.Store(true) })
		}
		if err := m.Delete([]byte(metaUpgrade)); err != nil {
			return err
		}
		var ver [4]byte
		binary.BigEndian.PutUint32(ver[:], 4)
		return m.Put([]byte("version"), ver[:])
	}
	// Each transaction of the upgrade holds its lease (holdUpgrade): in
	// a store, another Vault may be upgrading too.
	v.upgrading = true
	defer func() {
		v.upgrading = false
		if v.format < 4 { // it failed: let the next opener go on at once
			v.releaseUpgrade()
		}
	}()
	err := v.update(func(tx kv.Tx) error {
		if h := v.wh; h != nil && h.list != nil {
			return tampered("a file of format 3 has the head of format 4: its format version was lowered")
		}
		for _, b := range []byte{bucketListing, bucketDicts} {
			if _, err := tx.CreateBucketIfNotExists([]byte{b}); err != nil {
				return err
			}
		}
		if err := v.dropNodesExcept(tx, 0, 0); err != nil {
			return err
		}
		// A vault of up to upgradeTxEntries records is upgraded in this
		// one transaction.
		if tx.Bucket([]byte{bucketChanges}).Sequence() > uint64(upgradeTxEntries) {
			return nil
		}
		small = true
		return v.buildListing(tx, nil, 0, install)
	})
	if err == nil && !small {
		err = v.buildListing(nil, nil, upgradeTxEntries, install)
	}
	if err == nil {
		v.format = 4
	}
	return err
}

// hasSealV2 reports whether any value the head covers is sealed with its
// version (seal version 2), which only format 3 writes.
func hasSealV2(tx kv.Tx) bool {
	for _, b := range []byte{bucketRecords, bucketSettings} {
		c := tx.Bucket([]byte{b}).Cursor()
		for k, val := c.First(); k != nil; k, val = c.Next() {
			if len(val) > 0 && val[0] == sealV2 {
				return true
			}
		}
	}
	return false
}

// fingerprintsRebuilt records, in a transaction that rebuilt the whole
// dedup index, that it holds no legacy keys any more.
func (v *Vault) fingerprintsRebuilt(tx kv.Tx) error {
	if err := tx.Bucket([]byte{bucketMeta}).Delete([]byte(metaLegacyFingerprints)); err != nil {
		return err
	}
	v.onCommit(func() { v.fpLegacy.Store(false) })
	return nil
}

func openError(err error) error {
	switch {
	case errors.Is(err, bolterrors.ErrTimeout):
		return ErrLocked
	case errors.Is(err, bolterrors.ErrInvalid), errors.Is(err, bolterrors.ErrVersionMismatch):
		return ErrNotVault
	case errors.Is(err, bolterrors.ErrChecksum):
		return fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	return err
}

// precheck reads the bbolt meta pages before bbolt maps the file, so that
// a truncated file is refused instead of faulting later.
func precheck(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() {
		return ErrNotVault
	}
	const metaMagic = 0xED0CDAED
	var hdr [64]byte
	if _, err := io.ReadFull(f, hdr[:]); err != nil {
		return ErrNotVault
	}
	le := binary.LittleEndian
	if le.Uint32(hdr[16:]) != metaMagic {
		return ErrNotVault
	}
	pageSize := int64(le.Uint32(hdr[24:]))
	if pageSize < 512 || pageSize > 1<<20 {
		return fmt.Errorf("%w: bad page size", ErrCorrupt)
	}
	best := uint64(0)
	var hwm uint64
	for i := int64(0); i < 2; i++ {
		var m [64]byte
		if _, err := f.ReadAt(m[:], i*pageSize); err != nil {
			return fmt.Errorf("%w: truncated", ErrCorrupt)
		}
		if le.Uint32(m[16:]) != metaMagic {
			continue
		}
		txid := le.Uint64(m[64-16:])
		if txid >= best {
			best, hwm = txid, le.Uint64(m[56:])
		}
	}
	if hwm == 0 || int64(hwm)*pageSize > st.Size() {
		return fmt.Errorf("%w: truncated", ErrCorrupt)
	}
	return nil
}

func (v *Vault) unlock(secret Secret) error {
	type slot struct {
		id string
		st storedSlot
	}
	var slots []slot
	var term uint32
	err := v.view(func(tx kv.Tx) error {
		m := tx.Bucket([]byte{bucketMeta})
		if m == nil || string(m.Get([]byte("magic"))) != magic {
			return ErrNotVault
		}
		version, err := storedFormat(m)
		if err != nil {
			return err
		}
		v.format = version
		// The move to format 4 makes these buckets in its first
		// transaction and sets the version in its last, and marks the
		// vault as being upgraded meanwhile (metaUpgrade).
		if version < 4 && (tx.Bucket([]byte{bucketListing}) != nil || tx.Bucket([]byte{bucketDicts}) != nil) && m.Get([]byte(metaUpgrade)) == nil {
			return tampered(fmt.Sprintf("a file of format %d holds values of format 4: its format version was lowered", version))
		}
		v.readFlags(m, version)
		id, t := m.Get([]byte("id")), m.Get([]byte("term"))
		if len(id) != 16 || len(t) != 4 {
			return fmt.Errorf("%w: bad vault header", ErrCorrupt)
		}
		copy(v.id[:], id)
		term = binary.BigEndian.Uint32(t)
		for _, b := range bucketsOf(version) {
			if tx.Bucket([]byte{b}) == nil {
				return fmt.Errorf("%w: missing bucket", ErrCorrupt)
			}
		}
		return forEachSlot(tx.Bucket([]byte{bucketSlots}), func(k []byte, st storedSlot) error {
			slots = append(slots, slot{string(k), st})
			return nil
		})
	})
	if err != nil {
		return err
	}
	for _, s := range slots {
		key, err := secret.unwrapSlot(v.id, term, s.id, s.st)
		if err != nil {
			return err
		}
		if key == nil {
			continue
		}
		keys, err := deriveKeyring(key, v.id, term)
		if err != nil {
			return err
		}
		// The slot's sealed info proves the key belongs to this vault.
		if _, err := keys.open(bucketSlots, []byte(s.id), s.st.Info); err != nil {
			return err
		}
		v.vaultKey, v.keys = key, keys
		v.unlockedBy = s.id
		return nil
	}
	return ErrWrongKey
}

// view and update run bbolt transactions, turning panics and memory faults
// from a damaged file into ErrCorrupt.
//
// A read that fails, and every read of a vault of an older format (open
// read-only) once Open has returned it (until then the upgrade handles a
// format another Vault changed: upgrade), checks that the store is still at this Vault's key
// and format (stale): another opener may have rotated the key or
// upgraded the vault, and what it then reads does not open with this
// Vault's key, or is not where this Vault looks for it.
func (v *Vault) view(fn func(kv.Tx) error) (err error) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer recoverCorrupt(&err)
	return v.db.View(func(tx kv.Tx) error {
		if v.format < FormatVersion && v.opened.Load() {
			if err := v.stale(tx); err != nil {
				return err
			}
		}
		err := fn(tx)
		if err != nil && v.keys != nil {
			if s := v.stale(tx); s != nil {
				return s
			}
		}
		return err
	})
}

// stale returns ErrStale (errKeyChanged for a rotation) when the store's
// key term or format version is not the one this Vault opened: another
// Vault on the same store rotated the key or upgraded the vault since.
// A write transaction checks it first, so that nothing is ever written
// under a key the store no longer uses.
func (v *Vault) stale(tx kv.Tx) error {
	m := tx.Bucket([]byte{bucketMeta})
	if m == nil {
		return nil
	}
	if t := m.Get([]byte("term")); len(t) == 4 && binary.BigEndian.Uint32(t) != v.keys.term {
		return errKeyChanged
	}
	if ver := m.Get([]byte("version")); len(ver) == 4 && binary.BigEndian.Uint32(ver) != v.format {
		return fmt.Errorf("%w: the vault is at format %d, this Vault opened format %d", ErrStale, binary.BigEndian.Uint32(ver), v.format)
	}
	return nil
}

func (v *Vault) update(fn func(kv.Tx) error) (err error) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.updateLocked(fn)
}

// updateLocked runs a write transaction; the caller holds mu.
func (v *Vault) updateLocked(fn func(kv.Tx) error) (err error) {
	if v.readOnly {
		return ErrReadOnly
	}
	v.wmu.Lock()
	defer v.wmu.Unlock()
	// What asked to run after the commit (onCommit) runs once the
	// transaction has committed; registered first, it runs after
	// recoverCorrupt has turned a panic into err.
	defer func() {
		hooks := v.committed
		v.committed = nil
		if err == nil {
			for _, fn := range hooks {
				fn()
			}
		}
	}()
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if err != nil && v.codecDirty {
			v.codec.reset() // it knows a dictionary that was not stored
		}
		v.codecDirty = false
	}()
	defer recoverCorrupt(&err)
	return v.db.Update(func(tx kv.Tx) error {
		v.committed = v.committed[:0]
		if err := v.stale(tx); err != nil {
			return err
		}
		if v.upgrading {
			if err := v.holdUpgrade(tx); err != nil {
				return err
			}
		}
		// Every write transaction keeps the authenticated head up to
		// date (head.go): the write helpers add and remove elements of
		// v.wh, and the head is sealed with the next counter at the end.
		h, err := v.beginHead(tx)
		if err != nil {
			return err
		}
		v.wh, v.wl, v.wlMerge, v.codecDirty = h, nil, false, false
		defer func() { v.wh, v.wl, v.wlMerge = nil, nil, false }()
		if err := fn(tx); err != nil {
			return err
		}
		if h == nil {
			return nil
		}
		if len(v.wl) > 0 || v.wlMerge {
			if h.list == nil {
				return fmt.Errorf("%w: the head has no listing index", ErrCorrupt)
			}
			if err := v.commitListing(tx, h.list, v.wl, v.wlMerge); err != nil {
				return err
			}
		}
		return v.commitHead(tx, h)
	})
}

func recoverCorrupt(err *error) {
	if r := recover(); r != nil {
		*err = fmt.Errorf("%w: %v", ErrCorrupt, r)
	}
}

// Close forgets the key and closes the file. The leases of imports still
// running stop being renewed: another Vault rolls them back once they
// expire.
func (v *Vault) Close() error {
	v.stopRenewer()
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.heads != nil && v.keys != nil {
		v.rememberHead()
	}
	if v.keys != nil {
		v.keys.wipe()
	}
	clear(v.vaultKey)
	v.codec.reset()
	if !v.ownsDB {
		return nil
	}
	return v.db.Close()
}

// reopen closes and reopens the bbolt database. For as long as a database
// is open, bbolt's freelist remembers which transaction allocated each
// page it hands out again: about 10 bytes per record written, 30 MB per GB
// of Apple Health export, kept until the database closes. Imports reopen
// it every reopenEvery records, so that their memory stays bounded
// whatever the file's size.
//
// Between the close and the open, another process may take the file's
// lock. If it writes, it rolls back the running import (its marker belongs
// to no import of that process), and the import's next Add fails on the
// missing marker. If the lock is not free again within the vault's lock
// timeout, reopen fails and the Vault can only be closed: the import's
// marker stays, and the next open for writing rolls it back.
//
// A vault in a store (OpenIn) has no file to reopen: reopen does nothing.
func (v *Vault) reopen() error {
	if v.path == "" {
		return nil
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if err := v.db.Close(); err != nil {
		return err
	}
	db, err := bolt.Open(v.path, 0o600, v.boltOpts)
	if err != nil {
		return fmt.Errorf("vault: reopening the file: %w", openError(err))
	}
	db.AllocSize = allocSize
	v.db = kv.WrapBolt(db)
	return nil
}

// ID returns the vault's random ID, in hex. It is not secret.
func (v *Vault) ID() string { return hex.EncodeToString(v.id[:]) }

// Path returns the vault's file path ("" for a vault in a store:
// CreateIn, OpenIn).
func (v *Vault) Path() string { return v.path }

// Slots lists the key slots.
func (v *Vault) Slots() ([]Slot, error) {
	var out []Slot
	err := v.view(func(tx kv.Tx) error {
		return forEachSlot(tx.Bucket([]byte{bucketSlots}), func(k []byte, st storedSlot) error {
			info, err := v.keys.openSlotInfo(k, st)
			if err != nil {
				return err
			}
			out = append(out, Slot{ID: string(k), Kind: st.Kind, Label: info.Label, Created: info.Created})
			return nil
		})
	})
	return out, err
}

// AddSlot wraps the vault key in a new slot.
func (v *Vault) AddSlot(spec SlotSpec) (Slot, error) {
	id := newSlotID()
	err := v.update(func(tx kv.Tx) error {
		enc, err := v.encodeSlot(id, spec, v.vaultKey, v.keys)
		if err != nil {
			return err
		}
		return v.putSealedValue(tx.Bucket([]byte{bucketSlots}), bucketSlots, []byte(id), enc)
	})
	return Slot{ID: id, Kind: spec.Kind, Label: spec.Label}, err
}

// RemoveSlot deletes a key slot. It refuses to remove the last one. The
// file is then compacted (Compact), so that the slot is gone from it
// entirely.
func (v *Vault) RemoveSlot(id string) error {
	return v.revoking(func(tx kv.Tx) error {
		b := tx.Bucket([]byte{bucketSlots})
		if b.Get([]byte(id)) == nil {
			return ErrNotFound
		}
		if countKeys(b) <= 1 {
			return ErrLastSlot
		}
		return v.deleteSealed(b, bucketSlots, []byte(id))
	})
}

// Setting returns a sealed setting, or ErrNotFound.
func (v *Vault) Setting(name string) ([]byte, error) {
	var out []byte
	err := v.view(func(tx kv.Tx) error {
		val := tx.Bucket([]byte{bucketSettings}).Get([]byte(name))
		if val == nil {
			return ErrNotFound
		}
		var err error
		out, err = v.keys.open(bucketSettings, []byte(name), val)
		return err
	})
	return out, err
}

// SetSetting seals and stores a setting (the vault's own Patient ID, ...).
func (v *Vault) SetSetting(name string, value []byte) error {
	return v.update(func(tx kv.Tx) error {
		return v.putSetting(tx.Bucket([]byte{bucketSettings}), []byte(name), value)
	})
}

// putSetting seals a setting as the next version of its name.
func (v *Vault) putSetting(b kv.Bucket, name, value []byte) error {
	return v.putSealed(b, bucketSettings, name, sealedVersion(b.Get(name))+1, value)
}

// DeleteSetting removes a setting; removing one that is not there is not
// an error.
func (v *Vault) DeleteSetting(name string) error {
	return v.update(func(tx kv.Tx) error {
		return v.deleteSealed(tx.Bucket([]byte{bucketSettings}), bucketSettings, []byte(name))
	})
}

// ReplaceSlots removes every slot of spec.Kind and adds spec in their
// place, in one transaction: changing the passphrase, or making a new
// recovery code (the old one stops working). The file is then compacted
// (Compact), so that the old slots are gone from it entirely.
func (v *Vault) ReplaceSlots(spec SlotSpec) (Slot, error) {
	out, err := v.ReplaceSlotsOf([]SlotKind{spec.Kind}, nil, spec)
	if err != nil {
		return Slot{}, err
	}
	return out[0], nil
}

// ReplaceSlotsOf removes every slot of the given kinds except those
// whose IDs are in keep, and adds specs, in one transaction; then it
// compacts the file. It is what a recovery does (every passphrase, every
// device but the caller's and the recovery code replaced at once). It
// refuses to leave no slot.
func (v *Vault) ReplaceSlotsOf(kinds []SlotKind, keep []string, specs ...SlotSpec) ([]Slot, error) {
	out := make([]Slot, len(specs))
	encs := make([][]byte, len(specs))
	for i, spec := range specs {
		out[i] = Slot{ID: newSlotID(), Kind: spec.Kind, Label: spec.Label}
	}
	err := v.revoking(func(tx kv.Tx) error {
		for i, spec := range specs {
			enc, err := v.encodeSlot(out[i].ID, spec, v.vaultKey, v.keys)
			if err != nil {
				return err
			}
			encs[i] = enc
		}
		b := tx.Bucket([]byte{bucketSlots})
		var old [][]byte
		left := 0
		if err := forEachSlot(b, func(k []byte, st storedSlot) error {
			if slices.Contains(kinds, st.Kind) && !slices.Contains(keep, string(k)) {
				old = append(old, append([]byte(nil), k...))
			} else {
				left++
			}
			return nil
		}); err != nil {
			return err
		}
		if left+len(specs) == 0 {
			return ErrLastSlot
		}
		for _, k := range old {
			if err := v.deleteSealed(b, bucketSlots, k); err != nil {
				return err
			}
		}
		for i := range specs {
			if err := v.putSealedValue(b, bucketSlots, []byte(out[i].ID), encs[i]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil && !errors.Is(err, ErrNotCompacted) {
		return nil, err
	}
	return out, err
}

// UnlockedBy returns the ID of the key slot that opened the vault.
func (v *Vault) UnlockedBy() string { return v.unlockedBy }

// SlotsOpenedBy returns the IDs of the slots that secret opens (this
// device's slots, for an identity), without reopening the file.
func (v *Vault) SlotsOpenedBy(secret Secret) ([]string, error) {
	type slot struct {
		id string
		st storedSlot
	}
	var slots []slot
	var term uint32 // the store's: a session secret's key is checked under it
	haveTerm := false
	err := v.view(func(tx kv.Tx) error {
		if t := tx.Bucket([]byte{bucketMeta}).Get([]byte("term")); len(t) == 4 {
			term, haveTerm = binary.BigEndian.Uint32(t), true
		}
		return forEachSlot(tx.Bucket([]byte{bucketSlots}), func(k []byte, st storedSlot) error {
			slots = append(slots, slot{string(k), st})
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	v.mu.RLock()
	if !haveTerm {
		term = v.keys.term
	}
	var out []string
	other := false
	for _, s := range slots {
		key, err := secret.unwrapSlot(v.id, term, s.id, s.st)
		if err != nil {
			v.mu.RUnlock()
			return nil, err
		}
		if key != nil && subtle.ConstantTimeCompare(key, v.vaultKey) == 1 {
			out = append(out, s.id)
		} else if key != nil {
			other = true
		}
	}
	v.mu.RUnlock()
	if len(out) == 0 && other {
		// The secret opens a slot, of another key: another Vault of
		// the store rotated it (ErrStale), unless the slot was put
		// there without the key.
		if err := v.view(func(tx kv.Tx) error { return v.stale(tx) }); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Opens reports whether secret opens one of this vault's slots, without
// reopening the file (which this process holds).
func (v *Vault) Opens(secret Secret) (bool, error) {
	ids, err := v.SlotsOpenedBy(secret)
	return len(ids) > 0, err
}
