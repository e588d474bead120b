package vault

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// FormatVersion is the vault format this code writes. Older formats are
// migrated on open for writing; newer ones are refused.
//
// Format 2 (2026-11): fingerprints are keyed by cluster (fingerprintKey).
// Format 3 (2026-12): fingerprints are of content only; an identity index
// and a history of earlier versions (versions.go).
const FormatVersion = 3

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
	allBuckets     = []byte{bucketMeta, bucketSlots, bucketRecords, bucketIndex, bucketFinger, bucketChanges, bucketSettings, bucketIdentity, bucketHistory}
	// format2Buckets are the buckets every vault has; a vault of an older
	// format gets the others when it is upgraded.
	format2Buckets = allBuckets[:7]
)

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
}

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
	mu       sync.RWMutex
	db       *bolt.DB
	boltOpts *bolt.Options // to reopen db (reopen)
	path     string
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
	format    uint32    // the format version found at Open
	meta      metaIndex // the listing index (meta.go)

	// liveImports holds the marker names of this process's imports in
	// progress (imports.go); rolledBack, guarded by rbMu, what Open (or
	// Check) rolled back.
	liveImports sync.Map
	rbMu        sync.Mutex
	rolledBack  []Rollback
	fileTurns   fileTurns // imports of one file take turns (imports.go)
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
	db, err := bolt.Open(tmp, 0o600, opts.boltOptions())
	if err != nil {
		return nil, err
	}
	v := &Vault{db: db, path: path, vaultKey: make([]byte, 32), now: time.Now, format: FormatVersion}
	if opts != nil && opts.Now != nil {
		v.now = opts.Now
	}
	fail := func(err error) (*Vault, error) {
		db.Close()
		os.Remove(tmp)
		return nil, err
	}
	if _, err := rand.Read(v.vaultKey); err != nil {
		return fail(err)
	}
	if _, err := rand.Read(v.id[:]); err != nil {
		return fail(err)
	}
	if v.keys, err = deriveKeyring(v.vaultKey, v.id, 1); err != nil {
		return fail(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range allBuckets {
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
		return nil
	})
	if err != nil {
		return fail(err)
	}
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
	if v.db, err = bolt.Open(path, 0o600, v.boltOpts); err != nil {
		return nil, openError(err)
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
func Open(path string, secret Secret, opts *Options) (*Vault, error) {
	if err := precheck(path); err != nil {
		return nil, err
	}
	bopts := opts.boltOptions()
	db, err := bolt.Open(path, 0o600, bopts)
	if err != nil {
		return nil, openError(err)
	}
	v := &Vault{db: db, boltOpts: bopts, path: path, now: time.Now, readOnly: opts != nil && opts.ReadOnly}
	if opts != nil && opts.Now != nil {
		v.now = opts.Now
	}
	if err := v.unlock(secret); err != nil {
		db.Close()
		return nil, err
	}
	if !v.readOnly {
		if err := v.upgrade(); err != nil {
			v.Close()
			return nil, err
		}
		// Imports a crash interrupted leave nothing behind (imports.go).
		if _, err := v.rollBackInterrupted(); err != nil {
			v.Close()
			return nil, err
		}
	}
	return v, nil
}

// metaLegacyFingerprints, in the meta bucket, says that the dedup index
// may still hold fingerprints under their format-1 keys.
const metaLegacyFingerprints = "fp16"

// metaScheme2Fingerprints, in the meta bucket, says that the dedup index
// may still hold fingerprints computed as formats 1 and 2 computed them
// (by source id or identifiers before content).
const metaScheme2Fingerprints = "fpv2"

// upgrade moves a vault opened for writing to FormatVersion. Format 2
// keys fingerprints by cluster (fingerprintKey); the format-1 keys already
// stored stay valid and are looked up too, until a rebuild of the index
// (Check with repair, Rotate) rewrites them all. Format 3 fingerprints
// content only and adds the identity index and the history; the
// fingerprints already stored stay and are looked up as earlier versions
// would have computed them (see findEarlier), so that nothing imported
// before comes back twice.
func (v *Vault) upgrade() error {
	if v.format >= FormatVersion {
		return nil // no transaction: opening must not change the file
	}
	return v.update(func(tx *bolt.Tx) error {
		m := tx.Bucket([]byte{bucketMeta})
		version := binary.BigEndian.Uint32(m.Get([]byte("version")))
		if version >= FormatVersion {
			return nil
		}
		hasFingerprints := false
		if k, _ := tx.Bucket([]byte{bucketFinger}).Cursor().First(); k != nil {
			hasFingerprints = true
		}
		if version < 2 {
			if hasFingerprints {
				if err := m.Put([]byte(metaLegacyFingerprints), []byte{1}); err != nil {
					return err
				}
			} else {
				tx.OnCommit(func() { v.fpLegacy.Store(false) })
			}
		}
		if hasFingerprints {
			if err := m.Put([]byte(metaScheme2Fingerprints), []byte{1}); err != nil {
				return err
			}
			tx.OnCommit(func() { v.fpScheme2.Store(true) })
		} else {
			tx.OnCommit(func() { v.fpScheme2.Store(false) })
		}
		for _, b := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists([]byte{b}); err != nil {
				return err
			}
		}
		var ver [4]byte
		binary.BigEndian.PutUint32(ver[:], FormatVersion)
		return m.Put([]byte("version"), ver[:])
	})
}

// fingerprintsRebuilt records, in a transaction that rebuilt the whole
// dedup index, that it holds no legacy keys any more.
func (v *Vault) fingerprintsRebuilt(tx *bolt.Tx) error {
	if err := tx.Bucket([]byte{bucketMeta}).Delete([]byte(metaLegacyFingerprints)); err != nil {
		return err
	}
	tx.OnCommit(func() { v.fpLegacy.Store(false) })
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
	err := v.view(func(tx *bolt.Tx) error {
		m := tx.Bucket([]byte{bucketMeta})
		if m == nil || string(m.Get([]byte("magic"))) != magic {
			return ErrNotVault
		}
		ver := m.Get([]byte("version"))
		if len(ver) != 4 {
			return fmt.Errorf("%w: no format version", ErrCorrupt)
		}
		version := binary.BigEndian.Uint32(ver)
		if version > FormatVersion {
			return ErrNewerVersion
		}
		v.format = version
		v.fpLegacy.Store(version < 2 || m.Get([]byte(metaLegacyFingerprints)) != nil)
		v.fpScheme2.Store(version < 3 || m.Get([]byte(metaScheme2Fingerprints)) != nil)
		id, t := m.Get([]byte("id")), m.Get([]byte("term"))
		if len(id) != 16 || len(t) != 4 {
			return fmt.Errorf("%w: bad vault header", ErrCorrupt)
		}
		copy(v.id[:], id)
		term = binary.BigEndian.Uint32(t)
		want := allBuckets
		if version < 3 {
			want = format2Buckets
		}
		for _, b := range want {
			if tx.Bucket([]byte{b}) == nil {
				return fmt.Errorf("%w: missing bucket", ErrCorrupt)
			}
		}
		return tx.Bucket([]byte{bucketSlots}).ForEach(func(k, val []byte) error {
			var st storedSlot
			if err := json.Unmarshal(val, &st); err != nil {
				return fmt.Errorf("%w: key slot", ErrCorrupt)
			}
			slots = append(slots, slot{string(k), st})
			return nil
		})
	})
	if err != nil {
		return err
	}
	for _, s := range slots {
		key, err := secret.unwrap(s.st)
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
		return nil
	}
	return ErrWrongKey
}

// view and update run bbolt transactions, turning panics and memory faults
// from a damaged file into ErrCorrupt.
func (v *Vault) view(fn func(*bolt.Tx) error) (err error) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer recoverCorrupt(&err)
	return v.db.View(fn)
}

func (v *Vault) update(fn func(*bolt.Tx) error) (err error) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.updateLocked(fn)
}

// updateLocked runs a write transaction; the caller holds mu.
func (v *Vault) updateLocked(fn func(*bolt.Tx) error) (err error) {
	if v.readOnly {
		return ErrReadOnly
	}
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer recoverCorrupt(&err)
	return v.db.Update(fn)
}

func recoverCorrupt(err *error) {
	if r := recover(); r != nil {
		*err = fmt.Errorf("%w: %v", ErrCorrupt, r)
	}
}

// Close forgets the key and closes the file.
func (v *Vault) Close() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.keys != nil {
		v.keys.wipe()
	}
	clear(v.vaultKey)
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
func (v *Vault) reopen() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if err := v.db.Close(); err != nil {
		return err
	}
	db, err := bolt.Open(v.path, 0o600, v.boltOpts)
	if err != nil {
		return fmt.Errorf("vault: reopening the file: %w", openError(err))
	}
	v.db = db
	return nil
}

// ID returns the vault's random ID, in hex. It is not secret.
func (v *Vault) ID() string { return hex.EncodeToString(v.id[:]) }

// Path returns the vault's file path.
func (v *Vault) Path() string { return v.path }

// Slots lists the key slots.
func (v *Vault) Slots() ([]Slot, error) {
	var out []Slot
	err := v.view(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte{bucketSlots}).ForEach(func(k, val []byte) error {
			var st storedSlot
			if err := json.Unmarshal(val, &st); err != nil {
				return fmt.Errorf("%w: key slot", ErrCorrupt)
			}
			pt, err := v.keys.open(bucketSlots, k, st.Info)
			if err != nil {
				return err
			}
			var info slotInfo
			if err := json.Unmarshal(pt, &info); err != nil {
				return fmt.Errorf("%w: key slot", ErrCorrupt)
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
	err := v.update(func(tx *bolt.Tx) error {
		enc, err := v.encodeSlot(id, spec, v.vaultKey, v.keys)
		if err != nil {
			return err
		}
		return tx.Bucket([]byte{bucketSlots}).Put([]byte(id), enc)
	})
	return Slot{ID: id, Kind: spec.Kind, Label: spec.Label}, err
}

// RemoveSlot deletes a key slot. It refuses to remove the last one.
func (v *Vault) RemoveSlot(id string) error {
	return v.update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte{bucketSlots})
		if b.Get([]byte(id)) == nil {
			return ErrNotFound
		}
		if b.Stats().KeyN <= 1 {
			return ErrLastSlot
		}
		return b.Delete([]byte(id))
	})
}

// Setting returns a sealed setting, or ErrNotFound.
func (v *Vault) Setting(name string) ([]byte, error) {
	var out []byte
	err := v.view(func(tx *bolt.Tx) error {
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
	return v.update(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte{bucketSettings}).Put([]byte(name), v.keys.seal(bucketSettings, []byte(name), value))
	})
}

// DeleteSetting removes a setting; removing one that is not there is not
// an error.
func (v *Vault) DeleteSetting(name string) error {
	return v.update(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte{bucketSettings}).Delete([]byte(name))
	})
}

// ReplaceSlots removes every slot of spec.Kind and adds spec in their
// place, in one transaction: changing the passphrase, or making a new
// recovery code (the old one stops working).
func (v *Vault) ReplaceSlots(spec SlotSpec) (Slot, error) {
	id := newSlotID()
	err := v.update(func(tx *bolt.Tx) error {
		enc, err := v.encodeSlot(id, spec, v.vaultKey, v.keys)
		if err != nil {
			return err
		}
		b := tx.Bucket([]byte{bucketSlots})
		var old [][]byte
		if err := b.ForEach(func(k, val []byte) error {
			var st storedSlot
			if err := json.Unmarshal(val, &st); err != nil {
				return fmt.Errorf("%w: key slot", ErrCorrupt)
			}
			if st.Kind == spec.Kind {
				old = append(old, append([]byte(nil), k...))
			}
			return nil
		}); err != nil {
			return err
		}
		for _, k := range old {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		return b.Put([]byte(id), enc)
	})
	return Slot{ID: id, Kind: spec.Kind, Label: spec.Label}, err
}

// Opens reports whether secret opens one of this vault's slots, without
// reopening the file (which this process holds).
func (v *Vault) Opens(secret Secret) (bool, error) {
	var slots []storedSlot
	err := v.view(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte{bucketSlots}).ForEach(func(_, val []byte) error {
			var st storedSlot
			if err := json.Unmarshal(val, &st); err != nil {
				return fmt.Errorf("%w: key slot", ErrCorrupt)
			}
			slots = append(slots, st)
			return nil
		})
	})
	if err != nil {
		return false, err
	}
	v.mu.RLock()
	defer v.mu.RUnlock()
	for _, st := range slots {
		key, err := secret.unwrap(st)
		if err != nil {
			return false, err
		}
		if key != nil && subtle.ConstantTimeCompare(key, v.vaultKey) == 1 {
			return true, nil
		}
	}
	return false, nil
}
