package kv_test

// The conformance suite: every implementation of kv.DB runs every test
// here (as restic runs one suite against each of its backends).

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/phr-project/phr/pkg/kv"
	"github.com/phr-project/phr/pkg/kv/kvtest"
)

// backend opens stores of one implementation.
type backend struct {
	name string
	// open returns a fresh empty store, and a function that opens a
	// second handle on the same store, as another phrd node would (for
	// bbolt, which one process opens once, the same handle).
	open func(t *testing.T) (db kv.DB, again func() kv.DB)
	// spec names the store for a child process (crash test).
	spec func(t *testing.T) string
}

func backends() []backend {
	return []backend{
		{
			name: "bolt",
			open: func(t *testing.T) (kv.DB, func() kv.DB) {
				db := openBoltSpec(t, filepath.Join(t.TempDir(), "kv.db"))
				return db, func() kv.DB { return db }
			},
			spec: func(t *testing.T) string { return "bolt:" + filepath.Join(t.TempDir(), "kv.db") },
		},
		{
			name: "postgres",
			open: func(t *testing.T) (kv.DB, func() kv.DB) {
				p, u := kvtest.Open(t, nil)
				return p.Namespace("suite"), func() kv.DB {
					p2, err := kv.OpenPostgres(context.Background(), u, nil)
					if err != nil {
						t.Fatal(err)
					}
					t.Cleanup(p2.Close)
					return p2.Namespace("suite")
				}
			},
			spec: func(t *testing.T) string { return "postgres:" + kvtest.URL(t) },
		},
	}
}

func openBoltSpec(t testing.TB, path string) *kv.BoltDB {
	// A large initial map: a reader open while a writer grows the file
	// must not block it (the isolation test holds one open).
	db, err := kv.OpenBolt(path, 0o600, &bolt.Options{Timeout: 5 * time.Second, InitialMmapSize: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// openSpec opens a store named by a backend's spec (in the child of the
// crash test).
func openSpec(spec string) (kv.DB, func(), error) {
	if path, ok := bytes.CutPrefix([]byte(spec), []byte("bolt:")); ok {
		db, err := kv.OpenBolt(string(path), 0o600, &bolt.Options{Timeout: 5 * time.Second})
		if err != nil {
			return nil, nil, err
		}
		return db, func() { db.Close() }, nil
	}
	u, _ := bytes.CutPrefix([]byte(spec), []byte("postgres:"))
	p, err := kv.OpenPostgres(context.Background(), string(u), nil)
	if err != nil {
		return nil, nil, err
	}
	return p.Namespace("crash"), p.Close, nil
}

func TestConformance(t *testing.T) {
	tests := []struct {
		name string
		fn   func(t *testing.T, b backend)
	}{
		{"Ordering", testOrdering},
		{"CursorWalks", testCursorWalks},
		{"NestedBuckets", testNestedBuckets},
		{"Sequences", testSequences},
		{"Errors", testErrors},
		{"Rollback", testRollback},
		{"ReadYourWrites", testReadYourWrites},
		{"GetMany", testGetMany},
		{"ViewIsolation", testViewIsolation},
		{"ConcurrentWriters", testConcurrentWriters},
		{"BatchWithFailures", testBatchWithFailures},
		{"LargeValues", testLargeValues},
		{"Crash", testCrash},
		{"Closed", testClosed},
		{"BucketTx", testBucketTx},
	}
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			for _, tc := range tests {
				t.Run(tc.name, func(t *testing.T) {
					t.Parallel()
					tc.fn(t, b)
				})
			}
		})
	}
}

func mustUpdate(t *testing.T, db kv.DB, fn func(kv.Tx) error) {
	t.Helper()
	if err := db.Update(fn); err != nil {
		t.Fatalf("update: %v", err)
	}
}

func mustView(t *testing.T, db kv.DB, fn func(kv.Tx) error) {
	t.Helper()
	if err := db.View(fn); err != nil {
		t.Fatalf("view: %v", err)
	}
}

// walk lists a bucket's keys forward with a cursor.
func walk(b kv.Bucket) [][]byte {
	var ks [][]byte
	c := b.Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		ks = append(ks, slices.Clone(k))
	}
	return ks
}

func walkBack(b kv.Bucket) [][]byte {
	var ks [][]byte
	c := b.Cursor()
	for k, _ := c.Last(); k != nil; k, _ = c.Prev() {
		ks = append(ks, slices.Clone(k))
	}
	return ks
}

func sorted(ks [][]byte) [][]byte {
	s := slices.Clone(ks)
	slices.SortFunc(s, bytes.Compare)
	return s
}

func equalKeys(a, b [][]byte) bool {
	return slices.EqualFunc(a, b, bytes.Equal)
}

func testOrdering(t *testing.T, b backend) {
	db, _ := b.open(t)
	// Bytewise order: 0x00 and 0xff bytes, prefixes before their
	// extensions, bytes above 0x7f after ASCII (no signed compare, no
	// collation).
	keys := [][]byte{
		{0x00}, {0x00, 0x00}, {0x00, 0x01}, {0x01}, {0x7f}, {0x80}, {0xfe, 0xff}, {0xff}, {0xff, 0x00}, {0xff, 0xff}, {0xff, 0xff, 0xff},
		[]byte("a"), []byte("A"), []byte("ab"), []byte("abc"), []byte("b"), []byte("a\x00"), []byte("a\xff"), []byte("é"),
	}
	perm := mrand.Perm(len(keys))
	mustUpdate(t, db, func(tx kv.Tx) error {
		bk, err := tx.CreateBucket([]byte("o"))
		if err != nil {
			return err
		}
		for _, i := range perm {
			if err := bk.Put(keys[i], append([]byte("v"), keys[i]...)); err != nil {
				return err
			}
		}
		return nil
	})
	want := sorted(keys)
	mustView(t, db, func(tx kv.Tx) error {
		bk := tx.Bucket([]byte("o"))
		if got := walk(bk); !equalKeys(got, want) {
			t.Errorf("forward:\n got %q\nwant %q", got, want)
		}
		rev := slices.Clone(want)
		slices.Reverse(rev)
		if got := walkBack(bk); !equalKeys(got, rev) {
			t.Errorf("backward:\n got %q\nwant %q", got, rev)
		}
		var each [][]byte
		bk.ForEach(func(k, v []byte) error {
			if !bytes.Equal(v, append([]byte("v"), k...)) {
				t.Errorf("ForEach %q: value %q", k, v)
			}
			each = append(each, slices.Clone(k))
			return nil
		})
		if !equalKeys(each, want) {
			t.Errorf("ForEach:\n got %q\nwant %q", each, want)
		}
		for _, tc := range []struct{ seek, want []byte }{
			{nil, []byte{0x00}},
			{[]byte{}, []byte{0x00}},
			{[]byte{0x00}, []byte{0x00}},
			{[]byte{0x00, 0x00, 0x00}, []byte{0x00, 0x01}},
			{[]byte("a"), []byte("a")},
			{[]byte("a\x01"), []byte("ab")},
			{[]byte("ac"), []byte("a\xff")},
			{[]byte("aa"), []byte("ab")},
			{[]byte{0xff, 0x01}, []byte{0xff, 0xff}},
			{[]byte{0xff, 0xff, 0xff, 0x00}, nil},
		} {
			k, v := bk.Cursor().Seek(tc.seek)
			if !bytes.Equal(k, tc.want) || (k == nil) != (tc.want == nil) {
				t.Errorf("Seek(%q) = %q, want %q", tc.seek, k, tc.want)
			}
			if k != nil && !bytes.Equal(v, append([]byte("v"), k...)) {
				t.Errorf("Seek(%q) value %q", tc.seek, v)
			}
		}
		return nil
	})
}

// testCursorWalks walks more keys than one fetch holds, turning around
// on the way.
func testCursorWalks(t *testing.T, b backend) {
	db, _ := b.open(t)
	const n = 700
	var keys [][]byte
	mustUpdate(t, db, func(tx kv.Tx) error {
		bk, err := tx.CreateBucket([]byte("w"))
		if err != nil {
			return err
		}
		for i := range n {
			k := binary.BigEndian.AppendUint32(nil, uint32(i*3))
			keys = append(keys, k)
			if err := bk.Put(k, []byte(strconv.Itoa(i))); err != nil {
				return err
			}
		}
		return nil
	})
	mustView(t, db, func(tx kv.Tx) error {
		bk := tx.Bucket([]byte("w"))
		if got := walk(bk); !equalKeys(got, keys) {
			t.Errorf("forward walk: %d keys, want %d", len(got), n)
		}
		if got := walkBack(bk); len(got) != n || !bytes.Equal(got[0], keys[n-1]) {
			t.Errorf("backward walk: %d keys", len(got))
		}
		// Forward 300 from a seek, back 250, forward again.
		c := bk.Cursor()
		k, _ := c.Seek(binary.BigEndian.AppendUint32(nil, 3*100-1)) // between keys
		pos := 100
		for step := range 300 {
			if !bytes.Equal(k, keys[pos]) {
				t.Fatalf("forward step %d: at %x, want %x", step, k, keys[pos])
			}
			k, _ = c.Next()
			pos++
		}
		for step := range 250 {
			k, _ = c.Prev()
			pos--
			if !bytes.Equal(k, keys[pos]) {
				t.Fatalf("backward step %d: at %x, want %x", step, k, keys[pos])
			}
		}
		k, _ = c.Next()
		if !bytes.Equal(k, keys[pos+1]) {
			t.Errorf("turning forward: at %x, want %x", k, keys[pos+1])
		}
		// Off the end and off the start.
		c = bk.Cursor()
		if k, _ := c.Last(); !bytes.Equal(k, keys[n-1]) {
			t.Errorf("Last = %x", k)
		}
		if k, _ := c.Next(); k != nil {
			t.Errorf("Next after Last = %x, want nil", k)
		}
		if k, _ := c.First(); !bytes.Equal(k, keys[0]) {
			t.Errorf("First = %x", k)
		}
		if k, _ := c.Prev(); k != nil {
			t.Errorf("Prev before First = %x, want nil", k)
		}
		// An empty bucket.
		return nil
	})
	mustUpdate(t, db, func(tx kv.Tx) error {
		e, err := tx.CreateBucket([]byte("empty"))
		if err != nil {
			return err
		}
		c := e.Cursor()
		for name, k := range map[string][]byte{"First": first(c), "Last": last(c), "Seek": seek(c, []byte("x"))} {
			if k != nil {
				t.Errorf("empty bucket: %s = %q", name, k)
			}
		}
		return nil
	})
}

func first(c kv.Cursor) []byte          { k, _ := c.First(); return k }
func last(c kv.Cursor) []byte           { k, _ := c.Last(); return k }
func seek(c kv.Cursor, s []byte) []byte { k, _ := c.Seek(s); return k }

func testNestedBuckets(t *testing.T, b backend) {
	db, _ := b.open(t)
	mustUpdate(t, db, func(tx kv.Tx) error {
		a, err := tx.CreateBucket([]byte("a"))
		if err != nil {
			return err
		}
		// Sibling names that share a prefix, and a name that is another's
		// path when encoded naively.
		for _, name := range []string{"a\xff", "a\x00", "ab"} {
			s, err := tx.CreateBucket([]byte(name))
			if err != nil {
				return err
			}
			if err := s.Put([]byte("k"), []byte(name)); err != nil {
				return err
			}
		}
		if err := a.Put([]byte("k1"), []byte("1")); err != nil {
			return err
		}
		ab, err := a.CreateBucket([]byte("b"))
		if err != nil {
			return err
		}
		if err := ab.Put([]byte("k2"), []byte("2")); err != nil {
			return err
		}
		abc, err := ab.CreateBucketIfNotExists([]byte("c"))
		if err != nil {
			return err
		}
		return abc.Put([]byte("k3"), []byte("3"))
	})
	mustView(t, db, func(tx kv.Tx) error {
		a := tx.Bucket([]byte("a"))
		if a == nil {
			t.Fatal("bucket a missing")
		}
		// The parent's cursor shows the nested bucket with a nil value.
		var got []string
		a.ForEach(func(k, v []byte) error {
			got = append(got, fmt.Sprintf("%s=%v", k, v == nil))
			return nil
		})
		if want := []string{"b=true", "k1=false"}; !slices.Equal(got, want) {
			t.Errorf("a holds %v, want %v", got, want)
		}
		if v := a.Get([]byte("b")); v != nil {
			t.Errorf("Get of a bucket's name = %q, want nil", v)
		}
		c := a.Bucket([]byte("b")).Bucket([]byte("c"))
		if c == nil || string(c.Get([]byte("k3"))) != "3" {
			t.Fatal("a/b/c/k3 missing")
		}
		if tx.Bucket([]byte("b")) != nil || tx.Bucket([]byte("nope")) != nil || a.Bucket([]byte("k1")) != nil {
			t.Error("Bucket returned a bucket that does not exist")
		}
		for _, name := range []string{"a\xff", "a\x00", "ab"} {
			if v := tx.Bucket([]byte(name)).Get([]byte("k")); string(v) != name {
				t.Errorf("bucket %q holds %q", name, v)
			}
		}
		return nil
	})
	// Deleting a bucket deletes what it holds, at every depth, and
	// nothing of its siblings.
	mustUpdate(t, db, func(tx kv.Tx) error {
		if err := tx.DeleteBucket([]byte("a")); err != nil {
			return err
		}
		if tx.Bucket([]byte("a")) != nil {
			t.Error("deleted bucket still there in its transaction")
		}
		a, err := tx.CreateBucket([]byte("a"))
		if err != nil {
			return err
		}
		if got := walk(a); len(got) != 0 {
			t.Errorf("re-created bucket holds %q", got)
		}
		b, err := a.CreateBucket([]byte("b"))
		if err != nil {
			return err
		}
		if got := walk(b); len(got) != 0 {
			t.Errorf("re-created nested bucket holds %q", got)
		}
		return nil
	})
	mustView(t, db, func(tx kv.Tx) error {
		for _, name := range []string{"a\xff", "a\x00", "ab"} {
			if bk := tx.Bucket([]byte(name)); bk == nil || string(bk.Get([]byte("k"))) != name {
				t.Errorf("sibling bucket %q lost its key", name)
			}
		}
		return nil
	})
}

func testSequences(t *testing.T, b backend) {
	db, _ := b.open(t)
	mustUpdate(t, db, func(tx kv.Tx) error {
		s, err := tx.CreateBucket([]byte("s"))
		if err != nil {
			return err
		}
		n, err := s.CreateBucket([]byte("n"))
		if err != nil {
			return err
		}
		for i := 1; i <= 3; i++ {
			got, err := s.NextSequence()
			if err != nil || got != uint64(i) {
				t.Errorf("NextSequence = %d, %v; want %d", got, err, i)
			}
		}
		if err := n.SetSequence(1 << 40); err != nil {
			return err
		}
		return nil
	})
	mustUpdate(t, db, func(tx kv.Tx) error {
		s := tx.Bucket([]byte("s"))
		if s.Sequence() != 3 {
			t.Errorf("Sequence after commit = %d, want 3", s.Sequence())
		}
		if got, _ := s.Bucket([]byte("n")).NextSequence(); got != 1<<40+1 {
			t.Errorf("nested NextSequence = %d", got)
		}
		return nil
	})
}

func testErrors(t *testing.T, b backend) {
	db, _ := b.open(t)
	mustUpdate(t, db, func(tx kv.Tx) error {
		bk, err := tx.CreateBucket([]byte("e"))
		if err != nil {
			return err
		}
		if _, err := bk.CreateBucket([]byte("sub")); err != nil {
			return err
		}
		if err := bk.Put([]byte("key"), []byte("v")); err != nil {
			return err
		}
		for _, tc := range []struct {
			name string
			err  error
			want error
		}{
			{"empty key", bk.Put(nil, []byte("x")), kv.ErrKeyRequired},
			{"key too large", bk.Put(make([]byte, kv.MaxKeySize+1), nil), kv.ErrKeyTooLarge},
			{"put over bucket", bk.Put([]byte("sub"), []byte("x")), kv.ErrIncompatibleValue},
			{"delete bucket name", bk.Delete([]byte("sub")), kv.ErrIncompatibleValue},
			{"bucket over key", second(bk.CreateBucket([]byte("key"))), kv.ErrIncompatibleValue},
			{"bucket exists", second(tx.CreateBucket([]byte("e"))), kv.ErrBucketExists},
			{"bucket name required", second(tx.CreateBucket(nil)), kv.ErrBucketNameRequired},
			{"delete missing bucket", bk.DeleteBucket([]byte("nope")), kv.ErrBucketNotFound},
			{"delete key as bucket", bk.DeleteBucket([]byte("key")), kv.ErrIncompatibleValue},
			{"delete absent key", bk.Delete([]byte("absent")), nil},
		} {
			if !errors.Is(tc.err, tc.want) {
				t.Errorf("%s: %v, want %v", tc.name, tc.err, tc.want)
			}
		}
		// Empty and nil values are stored as empty, not absent.
		if err := bk.Put([]byte("empty"), []byte{}); err != nil {
			return err
		}
		if err := bk.Put([]byte("nil"), nil); err != nil {
			return err
		}
		for _, k := range []string{"empty", "nil"} {
			if v := bk.Get([]byte(k)); v == nil || len(v) != 0 {
				t.Errorf("Get(%s) = %v, want an empty non-nil value", k, v)
			}
		}
		return nil
	})
	mustView(t, db, func(tx kv.Tx) error {
		bk := tx.Bucket([]byte("e"))
		if tx.Writable() {
			t.Error("View's transaction says it is writable")
		}
		for name, err := range map[string]error{
			"put":           bk.Put([]byte("k"), []byte("v")),
			"delete":        bk.Delete([]byte("key")),
			"create bucket": second(tx.CreateBucket([]byte("x"))),
			"delete bucket": tx.DeleteBucket([]byte("e")),
		} {
			if !errors.Is(err, kv.ErrTxNotWritable) {
				t.Errorf("%s in View: %v, want ErrTxNotWritable", name, err)
			}
		}
		if _, err := bk.NextSequence(); !errors.Is(err, kv.ErrTxNotWritable) {
			t.Errorf("NextSequence in View: %v", err)
		}
		if v := bk.Get([]byte("empty")); v == nil || len(v) != 0 {
			t.Errorf("empty value after commit = %v", v)
		}
		return nil
	})
}

func second[T any](_ T, err error) error { return err }

func testRollback(t *testing.T, b backend) {
	db, _ := b.open(t)
	mustUpdate(t, db, func(tx kv.Tx) error {
		bk, err := tx.CreateBucket([]byte("r"))
		if err != nil {
			return err
		}
		return bk.Put([]byte("k"), []byte("before"))
	})
	boom := errors.New("boom")
	err := db.Update(func(tx kv.Tx) error {
		bk := tx.Bucket([]byte("r"))
		if err := bk.Put([]byte("k"), []byte("after")); err != nil {
			return err
		}
		if err := bk.Put([]byte("k2"), []byte("new")); err != nil {
			return err
		}
		if _, err := bk.NextSequence(); err != nil {
			return err
		}
		if _, err := tx.CreateBucket([]byte("r2")); err != nil {
			return err
		}
		if err := tx.Bucket([]byte("r")).Delete([]byte("k")); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Update returned %v, want fn's error", err)
	}
	mustView(t, db, func(tx kv.Tx) error {
		bk := tx.Bucket([]byte("r"))
		if v := bk.Get([]byte("k")); string(v) != "before" {
			t.Errorf("k = %q after a rolled-back update", v)
		}
		if bk.Get([]byte("k2")) != nil || tx.Bucket([]byte("r2")) != nil || bk.Sequence() != 0 {
			t.Error("a rolled-back update left a trace")
		}
		return nil
	})
}

func testReadYourWrites(t *testing.T, b backend) {
	db, _ := b.open(t)
	mustUpdate(t, db, func(tx kv.Tx) error {
		bk, err := tx.CreateBucket([]byte("y"))
		if err != nil {
			return err
		}
		for i := range 300 {
			if err := bk.Put(binary.BigEndian.AppendUint16(nil, uint16(2*i)), []byte("old")); err != nil {
				return err
			}
		}
		return nil
	})
	mustUpdate(t, db, func(tx kv.Tx) error {
		bk := tx.Bucket([]byte("y"))
		c := bk.Cursor()
		k, _ := c.First()
		// Writes while a cursor is half-way show to it when it is
		// positioned again (bbolt's cursor may not see them before):
		// an odd key just ahead, and a changed value.
		for range 150 {
			k, _ = c.Next()
		}
		at := binary.BigEndian.Uint16(k)
		if err := bk.Put(binary.BigEndian.AppendUint16(nil, at+1), []byte("new")); err != nil {
			return err
		}
		if err := bk.Put(binary.BigEndian.AppendUint16(nil, at+2), []byte("changed")); err != nil {
			return err
		}
		k, v := c.Seek(binary.BigEndian.AppendUint16(nil, at+1))
		if binary.BigEndian.Uint16(k) != at+1 || string(v) != "new" {
			t.Errorf("after writing: Next = %x %q, want %x new", k, v, at+1)
		}
		k, v = c.Next()
		if binary.BigEndian.Uint16(k) != at+2 || string(v) != "changed" {
			t.Errorf("after writing: Next = %x %q, want %x changed", k, v, at+2)
		}
		if got := bk.Get(binary.BigEndian.AppendUint16(nil, at+1)); string(got) != "new" {
			t.Errorf("Get of own write = %q", got)
		}
		if err := bk.Delete(binary.BigEndian.AppendUint16(nil, 0)); err != nil {
			return err
		}
		if k := first(bk.Cursor()); binary.BigEndian.Uint16(k) != 2 {
			t.Errorf("First after deleting key 0 = %x", k)
		}
		if got := len(walk(bk)); got != 300 {
			t.Errorf("walk sees %d keys, want 300", got)
		}
		return nil
	})
}

// testViewIsolation: a View sees one snapshot: neither an Update's
// uncommitted writes nor one that commits while the View runs.
func testViewIsolation(t *testing.T, b backend) {
	db, again := b.open(t)
	other := again()
	mustUpdate(t, db, func(tx kv.Tx) error {
		bk, err := tx.CreateBucket([]byte("i"))
		if err != nil {
			return err
		}
		return bk.Put([]byte("k"), []byte("1"))
	})
	inUpdate, release := make(chan struct{}), make(chan struct{})
	committed := make(chan error, 1)
	go func() {
		committed <- other.Update(func(tx kv.Tx) error {
			if err := tx.Bucket([]byte("i")).Put([]byte("k"), []byte("2")); err != nil {
				return err
			}
			if err := tx.Bucket([]byte("i")).Put([]byte("k2"), []byte("2")); err != nil {
				return err
			}
			close(inUpdate)
			<-release
			return nil
		})
	}()
	<-inUpdate
	mustView(t, db, func(tx kv.Tx) error {
		bk := tx.Bucket([]byte("i"))
		if v := bk.Get([]byte("k")); string(v) != "1" {
			t.Errorf("View sees an uncommitted write: k = %q", v)
		}
		close(release)
		if err := <-committed; err != nil {
			t.Fatalf("concurrent update: %v", err)
		}
		if v := bk.Get([]byte("k")); string(v) != "1" {
			t.Errorf("View sees a write committed after it began: k = %q", v)
		}
		if got := walk(bk); len(got) != 1 {
			t.Errorf("View's cursor sees %d keys, want 1", len(got))
		}
		return nil
	})
	mustView(t, db, func(tx kv.Tx) error {
		if v := tx.Bucket([]byte("i")).Get([]byte("k")); string(v) != "2" {
			t.Errorf("a later View sees k = %q, want 2", v)
		}
		return nil
	})
}

// testConcurrentWriters: read-modify-write Updates from many goroutines
// and (PostgreSQL) two handles, as two nodes, lose nothing.
func testConcurrentWriters(t *testing.T, b backend) {
	db, again := b.open(t)
	dbs := []kv.DB{db, again()}
	mustUpdate(t, db, func(tx kv.Tx) error {
		_, err := tx.CreateBucket([]byte("c"))
		return err
	})
	const workers, each = 10, 20
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d := dbs[w%2]
			for i := range each {
				update := d.Update
				if i%2 == 1 {
					update = d.Batch
				}
				errs <- update(func(tx kv.Tx) error {
					bk := tx.Bucket([]byte("c"))
					n, _ := strconv.Atoi(string(bk.Get([]byte("counter"))))
					if err := bk.Put([]byte("counter"), []byte(strconv.Itoa(n+1))); err != nil {
						return err
					}
					seq, err := bk.NextSequence()
					if err != nil {
						return err
					}
					return bk.Put(binary.BigEndian.AppendUint64([]byte("log/"), seq), fmt.Appendf(nil, "%d/%d", w, i))
				})
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	mustView(t, db, func(tx kv.Tx) error {
		bk := tx.Bucket([]byte("c"))
		if got := string(bk.Get([]byte("counter"))); got != strconv.Itoa(workers*each) {
			t.Errorf("counter = %s, want %d", got, workers*each)
		}
		seen := map[string]bool{}
		c := bk.Cursor()
		for k, v := c.Seek([]byte("log/")); k != nil && bytes.HasPrefix(k, []byte("log/")); k, v = c.Next() {
			seen[string(v)] = true
		}
		if len(seen) != workers*each {
			t.Errorf("%d log entries, want %d", len(seen), workers*each)
		}
		if bk.Sequence() != workers*each {
			t.Errorf("sequence = %d, want %d", bk.Sequence(), workers*each)
		}
		return nil
	})
}

func testLargeValues(t *testing.T, b backend) {
	db, _ := b.open(t)
	// More than one cursor fetch's byte bound (PostgreSQL), in both
	// directions.
	sizes := []int{5 << 20, 3 << 20, 1, 64 << 10, 3 << 20, 3 << 20, 3 << 20, 0}
	vals := make([][]byte, len(sizes))
	for i, n := range sizes {
		vals[i] = make([]byte, n)
		rand.Read(vals[i])
	}
	mustUpdate(t, db, func(tx kv.Tx) error {
		bk, err := tx.CreateBucket([]byte("l"))
		if err != nil {
			return err
		}
		for i, v := range vals {
			if err := bk.Put([]byte{byte(i)}, v); err != nil {
				return err
			}
		}
		return nil
	})
	mustView(t, db, func(tx kv.Tx) error {
		bk := tx.Bucket([]byte("l"))
		for i, v := range vals {
			if got := bk.Get([]byte{byte(i)}); !bytes.Equal(got, v) {
				t.Errorf("value %d (%d bytes): got %d bytes, not equal", i, len(v), len(got))
			}
		}
		i := 0
		bk.ForEach(func(k, v []byte) error {
			if !bytes.Equal(v, vals[i]) {
				t.Errorf("cursor value %d differs", i)
			}
			i++
			return nil
		})
		if i != len(vals) {
			t.Errorf("walked %d values, want %d", i, len(vals))
		}
		i = len(vals) - 1
		c := bk.Cursor()
		for k, v := c.Last(); k != nil; k, v = c.Prev() {
			if k[0] != byte(i) || !bytes.Equal(v, vals[i]) {
				t.Errorf("backward: value %d differs", i)
			}
			i--
		}
		if i != -1 {
			t.Errorf("backward walk stopped at %d", i)
		}
		return nil
	})
}

// The crash test: a child process writes generations of 40 keys, each
// generation in one Update, and says so after each commit; the parent
// kills it (SIGKILL) at a random moment. Every key must then hold one
// and the same generation, at least the last one the child reported.

const crashKeys = 40

func TestCrashChild(t *testing.T) {
	spec := os.Getenv("PHR_KV_CRASH_CHILD")
	if spec == "" {
		t.Skip("child of the crash test")
	}
	db, closeDB, err := openSpec(spec)
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(2)
	}
	defer closeDB()
	val := make([]byte, 32<<10)
	for gen := 1; ; gen++ {
		err := db.Update(func(tx kv.Tx) error {
			bk, err := tx.CreateBucketIfNotExists([]byte("g"))
			if err != nil {
				return err
			}
			for i := range crashKeys {
				binary.BigEndian.PutUint64(val, uint64(gen))
				if err := bk.Put([]byte{byte(i)}, val); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			fmt.Println("update:", err)
			os.Exit(2)
		}
		fmt.Printf("committed %d\n", gen)
	}
}

func testCrash(t *testing.T, b backend) {
	spec := b.spec(t)
	for round := range 3 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), "PHR_KV_CRASH_CHILD="+spec)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		acked := 0
		sc := bufio.NewScanner(out)
		want := 3 + mrand.IntN(10)
		for sc.Scan() {
			if n, ok := bytes.CutPrefix(sc.Bytes(), []byte("committed ")); ok {
				acked, _ = strconv.Atoi(string(n))
				if acked >= want {
					break
				}
			} else {
				t.Logf("child: %s", sc.Text())
			}
		}
		// Kill it somewhere inside a later generation's write.
		time.Sleep(time.Duration(mrand.IntN(3000)) * time.Microsecond)
		cmd.Process.Kill()
		cmd.Wait()
		if acked < want {
			t.Fatalf("round %d: child stopped after %d generations", round, acked)
		}

		db, closeDB, err := openSpec(spec)
		if err != nil {
			t.Fatal(err)
		}
		err = db.View(func(tx kv.Tx) error {
			bk := tx.Bucket([]byte("g"))
			if bk == nil {
				return errors.New("bucket missing")
			}
			var gens []uint64
			for i := range crashKeys {
				v := bk.Get([]byte{byte(i)})
				if len(v) != 32<<10 {
					return fmt.Errorf("key %d: %d bytes", i, len(v))
				}
				gens = append(gens, binary.BigEndian.Uint64(v))
			}
			for _, g := range gens {
				if g != gens[0] {
					return fmt.Errorf("a half-written generation: %v", gens)
				}
			}
			if gens[0] < uint64(acked) {
				return fmt.Errorf("generation %d, but the child reported %d committed", gens[0], acked)
			}
			return nil
		})
		closeDB()
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
	}
}

func testClosed(t *testing.T, b backend) {
	db, _ := b.open(t)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	for name, err := range map[string]error{
		"View":   db.View(func(kv.Tx) error { return nil }),
		"Update": db.Update(func(kv.Tx) error { return nil }),
	} {
		if !errors.Is(err, kv.ErrClosed) {
			t.Errorf("%s after Close: %v, want ErrClosed", name, err)
		}
	}
}

// testBatchWithFailures: concurrent Batch calls of which some fail: each
// failing call gets its own error and leaves nothing; every other call's
// write is committed once.
func testBatchWithFailures(t *testing.T, b backend) {
	db, _ := b.open(t)
	mustUpdate(t, db, func(tx kv.Tx) error {
		_, err := tx.CreateBucket([]byte("bf"))
		return err
	})
	const n = 60
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = db.Batch(func(tx kv.Tx) error {
				bk := tx.Bucket([]byte("bf"))
				if err := bk.Put([]byte(strconv.Itoa(i)), []byte("x")); err != nil {
					return err
				}
				c, _ := strconv.Atoi(string(bk.Get([]byte("count"))))
				if err := bk.Put([]byte("count"), []byte(strconv.Itoa(c+1))); err != nil {
					return err
				}
				if i%3 == 0 {
					return fmt.Errorf("call %d fails", i)
				}
				return nil
			})
		}()
	}
	wg.Wait()
	mustView(t, db, func(tx kv.Tx) error {
		bk := tx.Bucket([]byte("bf"))
		ok := 0
		for i := range n {
			v := bk.Get([]byte(strconv.Itoa(i)))
			switch {
			case i%3 == 0 && (errs[i] == nil || errs[i].Error() != fmt.Sprintf("call %d fails", i)):
				t.Errorf("call %d: %v, want its own error", i, errs[i])
			case i%3 == 0 && v != nil:
				t.Errorf("failed call %d left its write", i)
			case i%3 != 0 && (errs[i] != nil || v == nil):
				t.Errorf("call %d: %v, written %v", i, errs[i], v != nil)
			case i%3 != 0:
				ok++
			}
		}
		if got := string(bk.Get([]byte("count"))); got != strconv.Itoa(ok) {
			t.Errorf("count = %s, want %d: a call's write counted twice or lost", got, ok)
		}
		return nil
	})
}

// testBucketTx: a bucket knows its transaction (a nested one too), which
// sees the transaction's own writes; the bbolt-only hooks (BoltTx,
// SetFillPercent) reach bbolt on bbolt and do nothing elsewhere.
func testBucketTx(t *testing.T, b backend) {
	db, _ := b.open(t)
	mustUpdate(t, db, func(tx kv.Tx) error {
		top, err := tx.CreateBucket([]byte("t"))
		if err != nil {
			return err
		}
		nested, err := top.CreateBucket([]byte("n"))
		if err != nil {
			return err
		}
		if err := nested.Put([]byte("k"), []byte("v")); err != nil {
			return err
		}
		for _, bk := range []kv.Bucket{top, nested} {
			btx := bk.Tx()
			if btx == nil || !btx.Writable() {
				t.Fatalf("Tx() = %v", btx)
			}
			if got := btx.Bucket([]byte("t")).Bucket([]byte("n")).Get([]byte("k")); string(got) != "v" {
				t.Fatalf("through Tx(): %q", got)
			}
		}
		kv.SetFillPercent(top, 0.9)
		if bt := kv.BoltTx(tx); bt != nil {
			if b.name != "bolt" {
				t.Fatalf("BoltTx on %s", b.name)
			}
			if fp := bt.Bucket([]byte("t")).FillPercent; fp != 0.9 {
				t.Fatalf("FillPercent = %v, want 0.9", fp)
			}
		} else if b.name == "bolt" {
			t.Fatal("BoltTx is nil on bbolt")
		}
		return nil
	})
	mustView(t, db, func(tx kv.Tx) error {
		if tx.Bucket([]byte("t")).Tx().Writable() {
			t.Fatal("a View's bucket has a writable Tx")
		}
		return nil
	})
}

// testGetMany: GetMany answers as Get does for each key, in the keys'
// order (repeats, absent and empty keys, a nested bucket's name, an empty
// value), in a View and inside an Update after its own writes.
func testGetMany(t *testing.T, b backend) {
	db, _ := b.open(t)
	keys := [][]byte{[]byte("a"), []byte("absent"), []byte("n"), []byte("e"), []byte("a"), nil, []byte("z")}
	check := func(bk kv.Bucket, want []string) {
		t.Helper()
		got := kv.GetMany(bk, keys)
		if len(got) != len(keys) {
			t.Fatalf("GetMany gave %d values for %d keys", len(got), len(keys))
		}
		for i, k := range keys {
			single := bk.Get(k)
			switch {
			case want[i] == "<nil>" && got[i] != nil:
				t.Errorf("GetMany[%d] (%q) = %q, want nil", i, k, got[i])
			case want[i] != "<nil>" && (got[i] == nil || string(got[i]) != want[i]):
				t.Errorf("GetMany[%d] (%q) = %q (nil %v), want %q", i, k, got[i], got[i] == nil, want[i])
			case (single == nil) != (got[i] == nil) || !bytes.Equal(single, got[i]):
				t.Errorf("GetMany[%d] (%q) = %q, Get = %q", i, k, got[i], single)
			}
		}
	}
	mustUpdate(t, db, func(tx kv.Tx) error {
		bk, err := tx.CreateBucket([]byte("m"))
		if err != nil {
			return err
		}
		if _, err := bk.CreateBucket([]byte("n")); err != nil {
			return err
		}
		for _, kv := range [][2]string{{"a", "1"}, {"e", ""}, {"z", "26"}} {
			if err := bk.Put([]byte(kv[0]), []byte(kv[1])); err != nil {
				return err
			}
		}
		return nil
	})
	mustView(t, db, func(tx kv.Tx) error {
		check(tx.Bucket([]byte("m")), []string{"1", "<nil>", "<nil>", "", "1", "<nil>", "26"})
		if got := kv.GetMany(tx.Bucket([]byte("m")), nil); len(got) != 0 {
			t.Errorf("GetMany of no keys = %q", got)
		}
		return nil
	})
	mustUpdate(t, db, func(tx kv.Tx) error {
		bk := tx.Bucket([]byte("m"))
		if err := bk.Put([]byte("absent"), []byte("now")); err != nil {
			return err
		}
		if err := bk.Delete([]byte("z")); err != nil {
			return err
		}
		if err := bk.Put([]byte("a"), []byte("2")); err != nil {
			return err
		}
		check(bk, []string{"2", "now", "<nil>", "", "2", "<nil>", "<nil>"})
		return nil
	})
	// Prefetch changes nothing that Get answers: before and after the
	// transaction's own writes, and in a View.
	mustUpdate(t, db, func(tx kv.Tx) error {
		bk := tx.Bucket([]byte("m"))
		kv.Prefetch(bk, keys)
		check(bk, []string{"2", "now", "<nil>", "", "2", "<nil>", "<nil>"})
		if err := bk.Put([]byte("z"), []byte("back")); err != nil {
			return err
		}
		if err := bk.Delete([]byte("absent")); err != nil {
			return err
		}
		kv.Prefetch(bk, keys)
		check(bk, []string{"2", "<nil>", "<nil>", "", "2", "<nil>", "back"})
		return nil
	})
	mustView(t, db, func(tx kv.Tx) error {
		bk := tx.Bucket([]byte("m"))
		kv.Prefetch(bk, keys)
		check(bk, []string{"2", "<nil>", "<nil>", "", "2", "<nil>", "back"})
		return nil
	})
	// GetOne reads one key of a top-level bucket outside a transaction.
	for _, tc := range []struct{ bucket, key, want string }{
		{"m", "a", "2"}, {"m", "z", "back"}, {"m", "absent", "<nil>"}, {"m", "n", "<nil>"},
		{"no such bucket", "a", "<nil>"}, {"m", "", "<nil>"},
	} {
		v, err := kv.GetOne(db, []byte(tc.bucket), []byte(tc.key))
		if err != nil || (tc.want == "<nil>") != (v == nil) || (v != nil && string(v) != tc.want) {
			t.Errorf("GetOne(%s, %s) = %q, %v; want %s", tc.bucket, tc.key, v, err, tc.want)
		}
	}
	if v, err := kv.GetOne(db, []byte("m"), []byte("e")); err != nil || v == nil || len(v) != 0 {
		t.Errorf("GetOne of an empty value = %v, %v; want an empty non-nil value", v, err)
	}
}
