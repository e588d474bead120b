package sharestore

import (
	"context"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/phr-project/phr/internal/seal"
	"github.com/phr-project/phr/pkg/kv"
)

// FormatVersion is the version of the store file's layout (docs/share-protocol.md).
const FormatVersion = 1

// Bucket names: single letters that say nothing.
var (
	bucketMeta   = []byte{'m'} // "magic", "version", "check"
	bucketShares = []byte{'s'} // lookup key (32) -> JSON shareRecord
	bucketOwners = []byte{'o'} // owner tag (32) || lookup key (32) -> empty
	bucketFiles  = []byte{'f'} // lookup key (32) || file id (16) -> compact JWE
	bucketLogs   = []byte{'l'} // lookup key (32) || seq (8, big endian) -> sealed log entry
	allBuckets   = [][]byte{bucketMeta, bucketShares, bucketOwners, bucketFiles, bucketLogs}
)

const magic = "phr-sharestore"

// Defaults.
const (
	// DefaultMaxAttempts is a share's lifetime budget of wrong passcodes
	// when ShareSpec.MaxAttempts is 0.
	DefaultMaxAttempts = 10
	// DefaultRetention is how long a share's metadata and access log are
	// kept after it stopped being servable (Sweep deletes them then).
	DefaultRetention = 90 * 24 * time.Hour
	// DefaultMaxLogEntries bounds each share's access log; older entries
	// are dropped first.
	DefaultMaxLogEntries = 1000
	// DefaultMaxLogPerMinute bounds the access log entries one share
	// writes in a minute; further accesses in that minute are counted,
	// not logged one by one, so that a link holder cannot flood the log.
	DefaultMaxLogPerMinute = 10
	// DefaultMaxChecksPerShare bounds the passcode checks of one share in
	// flight at once (waiting for the gate or running).
	DefaultMaxChecksPerShare = 2
	// SecretSize is the size of the store secret.
	SecretSize = 32
)

// Gate bounds the passcode work (scrypt: tens of MiB and milliseconds
// each) that runs at once. Acquire waits for a slot and returns an error,
// holding nothing, when none comes free in time or ctx ends; Release gives
// a slot back. phrd passes the gate its passphrase logins use, so that
// passcode checks and logins together never run more key derivations than
// it allows.
type Gate interface {
	Acquire(ctx context.Context) error
	Release()
}

// Options tune Open.
type Options struct {
	// Secret keys the store: lookup keys of manifest ids, owner tags,
	// location tokens and the sealing of ids, labels and recipient names
	// are all derived from it. At least 32 bytes; required. Keep it apart
	// from the store file (LoadOrCreateSecret reads it from a key file):
	// whoever holds both can tell which owner made which share.
	Secret []byte
	// Gate, if set, bounds the passcode work: Create and Access hold one
	// of its slots while they hash or check a passcode.
	Gate Gate
	// MaxChecksPerShare bounds the passcode checks of one share in flight
	// at once; further requests for that share get ErrBusy at once.
	// Default DefaultMaxChecksPerShare.
	MaxChecksPerShare int
	// MaxLogPerMinute bounds the access log entries one share writes in
	// a minute; the rest are counted (Share.Unlogged, and one not-logged
	// entry per minute with their count). Default DefaultMaxLogPerMinute.
	MaxLogPerMinute int
	// LockTimeout is how long Open waits for another process to release
	// the file before it returns ErrLocked. Default 2s.
	LockTimeout time.Duration
	// NoSync skips fsync after each transaction (tests and benchmarks).
	NoSync bool
	// Retention is how long Sweep keeps metadata and logs of shares that
	// can no longer be served. Default DefaultRetention.
	Retention time.Duration
	// MaxLogEntries bounds each share's access log. Default
	// DefaultMaxLogEntries.
	MaxLogEntries int
}

// Store is an open share store. Its methods are safe for concurrent use.
type Store struct {
	db        kv.DB
	bolt      *kv.BoltDB // the file, when the store is one (Open); nil on OpenDB
	k         keys
	retention time.Duration
	maxLog    uint64
	logRate   int
	gate      Gate
	maxChecks int

	checksMu sync.Mutex
	checks   map[string]int // passcode checks in flight, by lookup key

	logMu   sync.Mutex // guards pending, dropped
	pending []pendingEntry
	dropped uint64
	flushMu sync.Mutex // one flush at a time
	kick    chan struct{}
	stop    chan struct{}
	done    chan struct{}

	closeOnce sync.Once
	closeErr  error
}

// keys are the subkeys derived from the store secret, one per purpose.
type keys struct {
	lookup [32]byte // HMAC key: manifest id -> bucket key
	owner  [32]byte // HMAC key: owner -> owner tag
	token  [32]byte // HMAC key: location tokens
	check  [32]byte // stored in meta to recognise the right secret
	seal   cipher.AEAD
}

func deriveKeys(secret []byte) (keys, error) {
	var k keys
	derive := func(dst *[32]byte, label string) {
		m := hmac.New(sha256.New, secret)
		m.Write([]byte("phr sharestore v1 " + label))
		copy(dst[:], m.Sum(nil))
	}
	derive(&k.lookup, "lookup")
	derive(&k.owner, "owner")
	derive(&k.token, "token")
	derive(&k.check, "check")
	var sk [32]byte
	derive(&sk, "seal")
	aead, err := seal.New(sk[:])
	if err != nil {
		return keys{}, err
	}
	k.seal = aead
	return k, nil
}

// Open opens (creating if needed) the store file at path.
func Open(path string, opts *Options) (*Store, error) {
	o, k, err := optionKeys(opts)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	to := 2 * time.Second
	if o.LockTimeout > 0 {
		to = o.LockTimeout
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: to, NoSync: o.NoSync, FreelistType: bolt.FreelistMapType})
	if err != nil {
		switch {
		case errors.Is(err, bolterrors.ErrTimeout):
			return nil, ErrLocked
		case errors.Is(err, bolterrors.ErrInvalid), errors.Is(err, bolterrors.ErrVersionMismatch), errors.Is(err, bolterrors.ErrChecksum):
			return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
		}
		return nil, err
	}
	// Batches coalesce concurrent manifest requests into one commit; a
	// short delay keeps a lone request fast.
	db.MaxBatchDelay = time.Millisecond
	bdb := kv.WrapBolt(db)
	s, err := openStore(bdb, k, &o)
	if err != nil {
		db.Close()
		return nil, err
	}
	s.bolt = bdb
	return s, nil
}

// OpenDB opens (creating if needed) the store in db: a namespace of
// phrd's PostgreSQL database. The store closes db when it closes. The
// database holds exactly what the file would: keyed names and sealed
// values, never an id, a label, a recipient or a link key.
func OpenDB(db kv.DB, opts *Options) (*Store, error) {
	o, k, err := optionKeys(opts)
	if err != nil {
		return nil, err
	}
	return openStore(db, k, &o)
}

// optionKeys returns the options (the zero Options for nil) and the keys
// derived from their secret.
func optionKeys(opts *Options) (Options, keys, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if len(o.Secret) < SecretSize {
		return o, keys{}, fmt.Errorf("%w: secret must be at least %d bytes", ErrInvalid, SecretSize)
	}
	k, err := deriveKeys(o.Secret)
	return o, k, err
}

func openStore(db kv.DB, k keys, opts *Options) (*Store, error) {
	o := *opts
	if err := initMeta(db, k); err != nil {
		return nil, err
	}
	s := &Store{
		db: db, k: k, retention: o.Retention, maxLog: uint64(o.MaxLogEntries),
		logRate: o.MaxLogPerMinute, gate: o.Gate, maxChecks: o.MaxChecksPerShare, checks: map[string]int{},
		kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
	}
	if s.retention <= 0 {
		s.retention = DefaultRetention
	}
	if o.MaxLogEntries <= 0 {
		s.maxLog = DefaultMaxLogEntries
	}
	if s.logRate <= 0 {
		s.logRate = DefaultMaxLogPerMinute
	}
	if s.maxChecks <= 0 {
		s.maxChecks = DefaultMaxChecksPerShare
	}
	go s.logWriter()
	return s, nil
}

func initMeta(db kv.DB, k keys) error {
	return db.Update(func(tx kv.Tx) error {
		for _, b := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		m := tx.Bucket(bucketMeta)
		if m.Get([]byte("magic")) == nil {
			var ver [4]byte
			binary.BigEndian.PutUint32(ver[:], FormatVersion)
			if err := m.Put([]byte("magic"), []byte(magic)); err != nil {
				return err
			}
			if err := m.Put([]byte("version"), ver[:]); err != nil {
				return err
			}
			return m.Put([]byte("check"), k.check[:])
		}
		if string(m.Get([]byte("magic"))) != magic {
			return fmt.Errorf("%w: not a share store", ErrCorrupt)
		}
		ver := m.Get([]byte("version"))
		if len(ver) != 4 {
			return fmt.Errorf("%w: no format version", ErrCorrupt)
		}
		if v := binary.BigEndian.Uint32(ver); v > FormatVersion {
			return fmt.Errorf("%w (format %d, this phr reads up to %d)", ErrNewerVersion, v, FormatVersion)
		}
		if !hmac.Equal(m.Get([]byte("check")), k.check[:]) {
			return ErrWrongSecret
		}
		return nil
	})
}

// LoadOrCreateSecret reads a store secret from the key file at path (64
// hex digits), creating the file (0600, in a 0700 directory if it has to
// make one; never overwriting) with a random secret when it does not
// exist. created reports whether it did.
func LoadOrCreateSecret(path string) (secret []byte, created bool, err error) {
	secret, err = loadOrCreateSecret(path, &created)
	return secret, created, err
}

func loadOrCreateSecret(path string, created *bool) ([]byte, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		secret := make([]byte, SecretSize)
		rand.Read(secret)
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, err
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, fs.ErrExist) { // another process made it first
			return loadOrCreateSecret(path, created)
		}
		if err != nil {
			return nil, err
		}
		_, werr := f.Write([]byte(hex.EncodeToString(secret) + "\n"))
		if werr == nil {
			werr = f.Sync()
		}
		if cerr := f.Close(); werr == nil {
			werr = cerr
		}
		if werr != nil {
			os.Remove(path)
			return nil, werr
		}
		*created = true
		return secret, nil
	}
	if err != nil {
		return nil, err
	}
	secret, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(secret) < SecretSize {
		return nil, fmt.Errorf("%w: %s is not a store secret (64 hex digits)", ErrInvalid, filepath.Base(path))
	}
	return secret, nil
}

// Close writes the pending access log entries and closes the file.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		close(s.stop)
		<-s.done
		ferr := s.flushPending()
		s.closeErr = s.db.Close()
		if s.closeErr == nil {
			s.closeErr = ferr
		}
	})
	return s.closeErr
}

// updateShare runs fn, which writes only the keys of the share lk (its
// record, owner entry, files and log), under that share's lock: on
// PostgreSQL, writers of different shares run at once on any nodes, and
// the writers of one share take turns (kv.KeyedDB). Everything else
// (Sweep, the background log writer) uses the store-wide Update.
func (s *Store) updateShare(lk []byte, fn func(kv.Tx) error) error {
	return kv.UpdateKeys(s.db, [][]byte{lk}, fn)
}

// batchShare is updateShare through Batch (fn may run more than once).
func (s *Store) batchShare(lk []byte, fn func(kv.Tx) error) error {
	return kv.BatchKeys(s.db, [][]byte{lk}, fn)
}

// lookupKey maps a manifest id to its bucket key. The file holds only
// these HMACs, so it does not reveal the ids (which are capabilities).
func (s *Store) lookupKey(id string) []byte {
	m := hmac.New(sha256.New, s.k.lookup[:])
	m.Write([]byte(id))
	return m.Sum(nil)
}

// ownerTag maps an owner to the tag stored with its shares.
func (s *Store) ownerTag(owner string) []byte {
	m := hmac.New(sha256.New, s.k.owner[:])
	m.Write([]byte(owner))
	return m.Sum(nil)
}

// seal encrypts plaintext bound to purpose and lk (the share's lookup key),
// so a sealed value cannot be moved to another share or field.
// A sealed value is internal/seal's nonce ‖ ciphertext ‖ tag, with no
// header of its own.
func (s *Store) seal(purpose string, lk, plaintext []byte) []byte {
	return seal.Append(make([]byte, 0, seal.Overhead+len(plaintext)), s.k.seal, plaintext, sealAD(purpose, lk))
}

func (s *Store) unseal(purpose string, lk, sealed []byte) ([]byte, error) {
	pt, err := seal.Open(nil, s.k.seal, sealed, sealAD(purpose, lk))
	switch {
	case errors.Is(err, seal.ErrShort):
		return nil, fmt.Errorf("%w: sealed value too short", ErrCorrupt)
	case err != nil:
		return nil, fmt.Errorf("%w: sealed value does not authenticate", ErrCorrupt)
	}
	return pt, nil
}

func sealAD(purpose string, lk []byte) []byte {
	ad := make([]byte, 0, 32+len(purpose)+len(lk))
	ad = append(ad, "phr sharestore v1 "...)
	ad = append(ad, purpose...)
	ad = append(ad, 0)
	return append(ad, lk...)
}

// Check runs bbolt's consistency check on a store file (tests call it at
// cleanup). It runs inside a write transaction, which it rolls back:
// bbolt's checker reads the freelist, which a concurrent commit would
// change under it. A store in PostgreSQL has no file to check (the
// database keeps its own consistency): Check only tells whether the store
// is open and its database answers.
func (s *Store) Check() error {
	if s.bolt == nil {
		err := s.db.View(func(kv.Tx) error { return nil })
		if errors.Is(err, kv.ErrClosed) {
			return ErrClosed
		}
		return err
	}
	var first error
	errRollback := errors.New("rollback")
	err := s.bolt.Bolt().Update(func(tx *bolt.Tx) error {
		for err := range tx.Check() { // drain, so the checker goroutine ends
			if first == nil {
				first = err
			}
		}
		return errRollback
	})
	switch {
	case errors.Is(err, bolterrors.ErrDatabaseNotOpen):
		return ErrClosed
	case err != nil && err != errRollback:
		return err
	}
	return first
}
