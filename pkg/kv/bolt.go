package kv

import (
	"bytes"
	"errors"
	"os"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// BoltDB is a DB on a bbolt file: each method passes straight through to
// bbolt, translating its errors into this package's.
type BoltDB struct {
	db *bolt.DB
}

// BoltOptions are bbolt's options for OpenBolt, so that callers need not
// import the storage engine themselves (internal/layering).
type BoltOptions = bolt.Options

// OpenBolt opens (creating it if needed) the bbolt file at path.
func OpenBolt(path string, mode os.FileMode, opts *bolt.Options) (*BoltDB, error) {
	db, err := bolt.Open(path, mode, opts)
	if err != nil {
		return nil, err
	}
	return &BoltDB{db: db}, nil
}

// WrapBolt makes a DB of an open bbolt handle; Close closes it.
func WrapBolt(db *bolt.DB) *BoltDB { return &BoltDB{db: db} }

// Bolt returns the underlying handle (for bbolt's own check, stats and
// compaction, which have no PostgreSQL counterpart).
func (d *BoltDB) Bolt() *bolt.DB { return d.db }

func (d *BoltDB) View(fn func(Tx) error) error {
	return boltErr(d.db.View(func(tx *bolt.Tx) error { return fn(boltTx{tx}) }))
}

func (d *BoltDB) Update(fn func(Tx) error) error {
	return boltErr(d.db.Update(func(tx *bolt.Tx) error { return fn(boltTx{tx}) }))
}

func (d *BoltDB) Batch(fn func(Tx) error) error {
	return boltErr(d.db.Batch(func(tx *bolt.Tx) error { return fn(boltTx{tx}) }))
}

func (d *BoltDB) Close() error { return d.db.Close() }

type boltTx struct{ tx *bolt.Tx }

func (t boltTx) Bucket(name []byte) Bucket { return wrapBucket(t.tx.Bucket(name)) }

func (t boltTx) CreateBucket(name []byte) (Bucket, error) {
	b, err := t.tx.CreateBucket(name)
	return wrapBucket(b), boltErr(err)
}

func (t boltTx) CreateBucketIfNotExists(name []byte) (Bucket, error) {
	b, err := t.tx.CreateBucketIfNotExists(name)
	return wrapBucket(b), boltErr(err)
}

func (t boltTx) DeleteBucket(name []byte) error { return boltErr(t.tx.DeleteBucket(name)) }
func (t boltTx) ForEach(fn func(name []byte, b Bucket) error) error {
	return t.tx.ForEach(func(name []byte, b *bolt.Bucket) error { return fn(name, wrapBucket(b)) })
}
func (t boltTx) Writable() bool { return t.tx.Writable() }

type boltBucket struct{ b *bolt.Bucket }

// wrapBucket keeps a missing bucket an untyped nil, so that callers'
// "b == nil" tests work.
func wrapBucket(b *bolt.Bucket) Bucket {
	if b == nil {
		return nil
	}
	return boltBucket{b}
}

func (b boltBucket) Get(key []byte) []byte { return b.b.Get(key) }
func (b boltBucket) Put(key, value []byte) error {
	if value == nil {
		value = []byte{}
	}
	return boltErr(b.b.Put(key, value))
}
func (b boltBucket) Delete(key []byte) error   { return boltErr(b.b.Delete(key)) }
func (b boltBucket) Bucket(name []byte) Bucket { return wrapBucket(b.b.Bucket(name)) }
func (b boltBucket) CreateBucket(name []byte) (Bucket, error) {
	nb, err := b.b.CreateBucket(name)
	return wrapBucket(nb), boltErr(err)
}
func (b boltBucket) CreateBucketIfNotExists(name []byte) (Bucket, error) {
	nb, err := b.b.CreateBucketIfNotExists(name)
	return wrapBucket(nb), boltErr(err)
}
func (b boltBucket) DeleteBucket(name []byte) error { return boltErr(b.b.DeleteBucket(name)) }
func (b boltBucket) Cursor() Cursor                 { return b.b.Cursor() }
func (b boltBucket) ForEach(fn func(k, v []byte) error) error {
	return b.b.ForEach(fn)
}
func (b boltBucket) NextSequence() (uint64, error) {
	n, err := b.b.NextSequence()
	return n, boltErr(err)
}
func (b boltBucket) Sequence() uint64           { return b.b.Sequence() }
func (b boltBucket) SetSequence(v uint64) error { return boltErr(b.b.SetSequence(v)) }
func (b boltBucket) Tx() Tx                     { return boltTx{b.b.Tx()} }

// boltErr translates bbolt's errors into this package's; others pass.
func boltErr(err error) error {
	if err == nil {
		return nil
	}
	for _, m := range [...]struct{ from, to error }{
		{bolterrors.ErrBucketNotFound, ErrBucketNotFound},
		{bolterrors.ErrBucketExists, ErrBucketExists},
		{bolterrors.ErrBucketNameRequired, ErrBucketNameRequired},
		{bolterrors.ErrKeyRequired, ErrKeyRequired},
		{bolterrors.ErrKeyTooLarge, ErrKeyTooLarge},
		{bolterrors.ErrValueTooLarge, ErrValueTooLarge},
		{bolterrors.ErrIncompatibleValue, ErrIncompatibleValue},
		{bolterrors.ErrTxNotWritable, ErrTxNotWritable},
		{bolterrors.ErrDatabaseNotOpen, ErrClosed},
	} {
		if errors.Is(err, m.from) {
			return m.to
		}
	}
	return err
}

// BoltTx returns the bbolt transaction under tx, or nil when tx is not
// one of a BoltDB: for what only a bbolt file has (its page check, its
// size and mapping), behind a check of the backend.
func BoltTx(tx Tx) *bolt.Tx {
	if t, ok := tx.(boltTx); ok {
		return t.tx
	}
	return nil
}

// FillPercenter is a Bucket whose writes can fill its pages more or less
// than half before splitting them (bbolt's Bucket.FillPercent, for this
// transaction's writes). Only the bbolt implementation has pages.
type FillPercenter interface {
	FillPercent(f float64)
}

// FillPercent sets how full bbolt fills the bucket's pages before
// splitting them, for the rest of the transaction.
func (b boltBucket) FillPercent(f float64) { b.b.FillPercent = f }

// SetFillPercent sets b's fill percent when b has pages
// (FillPercenter); it does nothing otherwise.
func SetFillPercent(b Bucket, f float64) {
	if p, ok := b.(FillPercenter); ok {
		p.FillPercent(f)
	}
}

// BucketStats is where one top-level bucket of a bbolt file keeps its
// bytes (FileStats).
type BucketStats struct {
	Name                                 []byte
	Keys                                 int // at every depth
	KeyBytes, ValueBytes                 int // of the bucket's own keys and values
	LeafPages, LeafOverflow, BranchPages int
	PagesBytes                           int     // every page of the bucket
	LeafFill                             float64 // used share of the leaf pages, 0-1
}

// FileStats is where a bbolt file's bytes go.
type FileStats struct {
	Buckets                    []BucketStats
	FreeBytes, HighWater, Size int64
}

// BoltFileStats reads where the bytes of the bbolt file at path go, per
// top-level bucket, opening it read-only. It reads no value's content:
// what it shows, anyone holding the file sees.
func BoltFileStats(path string) (FileStats, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return FileStats{}, err
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: 5 * time.Second})
	if err != nil {
		return FileStats{}, err
	}
	defer db.Close()
	fs := FileStats{Size: fi.Size()}
	err = db.View(func(tx *bolt.Tx) error {
		ps := db.Info().PageSize
		err := tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			bs := BucketStats{Name: bytes.Clone(name)}
			b.ForEach(func(k, v []byte) error {
				bs.KeyBytes += len(k)
				bs.ValueBytes += len(v)
				return nil
			})
			s := b.Stats()
			bs.Keys, bs.LeafPages, bs.LeafOverflow, bs.BranchPages = s.KeyN, s.LeafPageN, s.LeafOverflowN, s.BranchPageN
			bs.PagesBytes = (s.LeafPageN + s.LeafOverflowN + s.BranchPageN + s.BranchOverflowN) * ps
			if alloc := (s.LeafPageN + s.LeafOverflowN) * ps; alloc > 0 {
				bs.LeafFill = float64(s.LeafInuse) / float64(alloc)
			}
			fs.Buckets = append(fs.Buckets, bs)
			return nil
		})
		st := db.Stats()
		fs.FreeBytes = int64((st.FreePageN + st.PendingPageN) * ps)
		fs.HighWater = tx.Size()
		return err
	})
	return fs, err
}
