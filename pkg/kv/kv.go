// Package kv is the storage interface under everything phrd keeps: an
// ordered key-value store with the shape of bbolt (transactions, nested
// buckets, ordered cursors, per-bucket sequences), so that code written
// for bbolt moves onto it line for line. Every value is an opaque []byte
// that the caller has already sealed: no implementation ever sees
// plaintext, and none interprets what it stores.
//
// Two implementations pass one conformance suite (kv_suite_test.go):
//
//   - OpenBolt: a thin wrapper around a bbolt file, the embedded default.
//   - Postgres.Namespace: one namespace (an account's vault, the share
//     store, ...) in a PostgreSQL table, for any number of phrd nodes.
//
// # Semantics both give
//
// View runs fn in a read-only snapshot: it never sees a write committed
// after it began, nor a half-done one. Update runs fn in a read-write
// transaction; the Updates of one DB (one namespace) are serialised, so a
// read-modify-write inside one never loses another's write. If fn returns
// an error the transaction is rolled back and nothing of it is visible.
// Inside an Update, reads see the transaction's own writes. Keys inside a
// bucket are ordered bytewise (bytes.Compare); a nested bucket shows in
// its parent's cursor as its name with a nil value, as in bbolt.
//
// A slice returned by Get or a cursor is valid only until the transaction
// ends (bbolt's rule; the PostgreSQL implementation is more lenient, but
// callers must not rely on that). Put copies nothing the caller keeps: do
// not change a slice passed to Put before the transaction ends.
//
// # Failures of the backend
//
// Get and the cursor methods return no error, as in bbolt. When the
// backend fails underneath them (PostgreSQL unreachable, a statement
// timed out), the transaction remembers the first such failure: later
// operations in it do nothing, View and Update return that failure in
// place of whatever fn returned, and the Update is rolled back. fn may
// therefore treat a nil from Get as "absent": if it was a failure, its
// conclusion is discarded. Bucket, after such a failure, returns a
// bucket that does nothing rather than nil, so that code which knows its
// buckets exist runs on to the end (PostgreSQL sends a transaction's
// first statement only when fn first reads, so a database that is down
// shows inside fn). Failures of the backend match ErrUnavailable with
// errors.Is (phrd answers 503).
//
// # What only bbolt has
//
// A store written for both may still use what only a bbolt file has,
// behind a check of the backend: BoltTx gives the bbolt transaction under
// a Tx (its page check, its size, its mapping) or nil, and SetFillPercent
// sets a bucket's page fill where it has pages (FillPercenter) and does
// nothing elsewhere.
package kv

import "errors"

// DB is a store: a bbolt file or one PostgreSQL namespace.
type DB interface {
	// View runs fn in a read-only transaction.
	View(fn func(Tx) error) error
	// Update runs fn in a read-write transaction and commits it when fn
	// returns nil.
	Update(fn func(Tx) error) error
	// Batch is Update for many concurrent small writers: an
	// implementation may run several callers' fn in one transaction, and
	// may run a fn more than once, so fn must be idempotent and must not
	// depend on its side effects outside the transaction.
	Batch(fn func(Tx) error) error
	// Close releases the store; later calls return ErrClosed. Closing a
	// namespace of a PostgreSQL pool leaves the pool open.
	Close() error
}

// KeyedDB is a DB whose writers may lock less than the whole store.
// UpdateKeys and BatchKeys are Update and Batch for an fn that writes
// only keys belonging to the lock keys given (a partition of the store
// that the caller defines: the share store locks a share's lookup key,
// and writes only that share's keys). Two of them with no lock key in
// common may run at the same time; each excludes every other holding one
// of its keys, and Update and Batch exclude all of them. fn may read
// anything, but only what it wrote or what its keys cover is safe from
// concurrent change. The PostgreSQL implementation is one; bbolt, with
// its single writer, needs none (UpdateKeys and BatchKeys below fall back
// to Update and Batch).
type KeyedDB interface {
	DB
	UpdateKeys(keys [][]byte, fn func(Tx) error) error
	BatchKeys(keys [][]byte, fn func(Tx) error) error
}

// UpdateKeys runs db.UpdateKeys if db is a KeyedDB, else db.Update.
func UpdateKeys(db DB, keys [][]byte, fn func(Tx) error) error {
	if k, ok := db.(KeyedDB); ok {
		return k.UpdateKeys(keys, fn)
	}
	return db.Update(fn)
}

// BatchKeys runs db.BatchKeys if db is a KeyedDB, else db.Batch.
func BatchKeys(db DB, keys [][]byte, fn func(Tx) error) error {
	if k, ok := db.(KeyedDB); ok {
		return k.BatchKeys(keys, fn)
	}
	return db.Batch(fn)
}

// Tx is a transaction: the top-level buckets.
type Tx interface {
	// Bucket returns the top-level bucket name, or nil when there is none.
	Bucket(name []byte) Bucket
	CreateBucket(name []byte) (Bucket, error)
	CreateBucketIfNotExists(name []byte) (Bucket, error)
	DeleteBucket(name []byte) error
	// ForEach calls fn for every top-level bucket, in name order.
	ForEach(fn func(name []byte, b Bucket) error) error
	Writable() bool
}

// Bucket is an ordered set of keys with values, and of nested buckets.
type Bucket interface {
	// Get returns the key's value, or nil when the key is absent or names
	// a nested bucket. A stored empty value is a non-nil empty slice.
	Get(key []byte) []byte
	Put(key, value []byte) error
	Delete(key []byte) error

	Bucket(name []byte) Bucket
	CreateBucket(name []byte) (Bucket, error)
	CreateBucketIfNotExists(name []byte) (Bucket, error)
	DeleteBucket(name []byte) error

	Cursor() Cursor
	// ForEach calls fn for every key in order (v is nil for a nested
	// bucket); an error from fn stops it and is returned. fn must not
	// change the bucket.
	ForEach(fn func(k, v []byte) error) error

	// NextSequence increments and returns the bucket's sequence.
	NextSequence() (uint64, error)
	Sequence() uint64
	SetSequence(v uint64) error

	// Tx returns the transaction the bucket belongs to.
	Tx() Tx
}

// ManyGetter is a Bucket that reads many keys at once: in one statement
// on PostgreSQL, where each Get is a round trip to the database.
type ManyGetter interface {
	GetMany(keys [][]byte) [][]byte
}

// GetMany returns the values of keys in b, in the order of keys: nil for
// a key that is absent, empty or names a nested bucket, as Get gives. It
// uses b's GetMany when b has one, and Get for each key otherwise. The
// values follow Get's rule: valid until the transaction ends.
func GetMany(b Bucket, keys [][]byte) [][]byte {
	if m, ok := b.(ManyGetter); ok {
		return m.GetMany(keys)
	}
	out := make([][]byte, len(keys))
	for i, k := range keys {
		out[i] = b.Get(k)
	}
	return out
}

// OneGetter is a DB that reads one key without a transaction of its own.
type OneGetter interface {
	GetOne(bucket, key []byte) ([]byte, error)
}

// GetOne returns the value of key in the top-level bucket (nil when
// either is absent), read in a snapshot of its own: on PostgreSQL one
// statement, where a View costs a round trip for its BEGIN (with the
// read) and one for its COMMIT. The value is the caller's to keep.
func GetOne(db DB, bucket, key []byte) ([]byte, error) {
	if g, ok := db.(OneGetter); ok {
		return g.GetOne(bucket, key)
	}
	var v []byte
	err := db.View(func(tx Tx) error {
		if b := tx.Bucket(bucket); b != nil {
			if got := b.Get(key); got != nil {
				v = append([]byte{}, got...)
			}
		}
		return nil
	})
	return v, err
}

// Prefetcher is a Bucket that reads keys ahead of their Gets.
type Prefetcher interface {
	Prefetch(keys [][]byte)
}

// Prefetch says that keys of b are about to be read: a PostgreSQL bucket
// reads them all now, in one statement, and answers their Gets from what
// it read for the rest of the transaction; bbolt, whose reads are
// lookups in a mapped file, does nothing.
func Prefetch(b Bucket, keys [][]byte) {
	if p, ok := b.(Prefetcher); ok {
		p.Prefetch(keys)
	}
}

// Cursor walks a bucket in key order. Each method returns the key and
// value it lands on, or a nil key when it runs off either end.
type Cursor interface {
	First() (k, v []byte)
	Last() (k, v []byte)
	Next() (k, v []byte)
	Prev() (k, v []byte)
	// Seek moves to the first key >= seek.
	Seek(seek []byte) (k, v []byte)
}

// Errors, the same from every implementation.
var (
	ErrBucketNotFound     = errors.New("kv: bucket not found")
	ErrBucketExists       = errors.New("kv: bucket already exists")
	ErrBucketNameRequired = errors.New("kv: bucket name required")
	ErrKeyRequired        = errors.New("kv: key required")
	ErrKeyTooLarge        = errors.New("kv: key too large")
	ErrValueTooLarge      = errors.New("kv: value too large")
	ErrIncompatibleValue  = errors.New("kv: incompatible value (a key where a bucket is, or the reverse)")
	ErrTxNotWritable      = errors.New("kv: transaction not writable")
	// ErrClosed: the DB (or namespace handle) was closed.
	ErrClosed = errors.New("kv: store closed")
	// ErrUnavailable: the backend cannot be reached or did not answer in
	// time. Nothing of the transaction was committed.
	ErrUnavailable = errors.New("kv: storage unavailable")
)

// Limits, bbolt's own, enforced by both implementations so that data moves
// between them.
const (
	MaxKeySize   = 32768
	MaxValueSize = (1 << 31) - 2
	// maxPGValue is PostgreSQL's limit on one bytea (1 GiB), below
	// MaxValueSize.
	maxPGValue = 1<<30 - 1
)
