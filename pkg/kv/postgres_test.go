package kv_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/phr-project/phr/pkg/kv"
	"github.com/phr-project/phr/pkg/kv/kvtest"
)

// Tests of what only the PostgreSQL implementation has: namespaces,
// migrations, and the database going away.

func TestPostgresNamespaces(t *testing.T) {
	p, _ := kvtest.Open(t, nil)
	a, b := p.Namespace("vault/a"), p.Namespace("vault/b")
	for i, db := range []kv.DB{a, b} {
		mustUpdate(t, db, func(tx kv.Tx) error {
			bk, err := tx.CreateBucket([]byte("r"))
			if err != nil {
				return err
			}
			return bk.Put([]byte("k"), []byte{byte('0' + i)})
		})
	}
	mustView(t, a, func(tx kv.Tx) error {
		if v := tx.Bucket([]byte("r")).Get([]byte("k")); string(v) != "0" {
			t.Errorf("namespace a sees %q", v)
		}
		return nil
	})
	mustUpdate(t, p.Namespace("share"), func(tx kv.Tx) error {
		_, err := tx.CreateBucket([]byte("s"))
		return err
	})
	names, err := p.Namespaces(context.Background(), "vault/")
	if err != nil || strings.Join(names, ",") != "vault/a,vault/b" {
		t.Errorf("Namespaces(vault/) = %v, %v", names, err)
	}
	if err := p.DropNamespace("vault/a"); err != nil {
		t.Fatal(err)
	}
	mustView(t, a, func(tx kv.Tx) error {
		if tx.Bucket([]byte("r")) != nil {
			t.Error("a dropped namespace still holds its bucket")
		}
		return nil
	})
	mustView(t, b, func(tx kv.Tx) error {
		if tx.Bucket([]byte("r")) == nil {
			t.Error("dropping one namespace dropped another's bucket")
		}
		return nil
	})
}

// TestPostgresMigrations: nodes starting together migrate once; a
// database of a newer schema is refused.
func TestPostgresMigrations(t *testing.T) {
	u := kvtest.URL(t)
	var wg sync.WaitGroup
	errs := make([]error, 6)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p, err := kv.OpenPostgres(context.Background(), u, nil)
			if err == nil {
				p.Close()
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatalf("concurrent start: %v", err)
		}
	}
	conn, err := pgx.Connect(context.Background(), u)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n, max int
	if err := conn.QueryRow(context.Background(), `SELECT count(*), max(version) FROM phr_schema_migrations`).Scan(&n, &max); err != nil {
		t.Fatal(err)
	}
	if n != kv.SchemaVersion() || max != kv.SchemaVersion() {
		t.Errorf("%d migrations recorded up to %d, want %d", n, max, kv.SchemaVersion())
	}
	if _, err := conn.Exec(context.Background(), `INSERT INTO phr_schema_migrations (version, name) VALUES ($1, 'future')`, kv.SchemaVersion()+1); err != nil {
		t.Fatal(err)
	}
	_, err = kv.OpenPostgres(context.Background(), u, nil)
	if err == nil || !strings.Contains(err.Error(), "newer than this phrd knows") {
		t.Errorf("opening a newer schema: %v", err)
	}
}

func TestPostgresUnavailable(t *testing.T) {
	// Nothing listens on port 1.
	_, err := kv.OpenPostgres(context.Background(), "postgres://phr@127.0.0.1:1/x?sslmode=disable&connect_timeout=2", &kv.PostgresOptions{Timeout: 3 * time.Second})
	if !errors.Is(err, kv.ErrUnavailable) {
		t.Errorf("no server: %v, want ErrUnavailable", err)
	}
	// A URL that does not parse is refused without quoting it (it may
	// hold a password).
	_, err = kv.OpenPostgres(context.Background(), "postgres://phr:s3cret@[::1", nil)
	if err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("bad URL: %v", err)
	}

	// The connection dies in the middle of an Update: the Update fails
	// with ErrUnavailable, even though fn carried on and returned nil,
	// and nothing of it is committed.
	// A name of its own, so that only this test's connection is killed.
	u := kvtest.URL(t) + "&application_name=phrd_terminate_test"
	p, err := kv.OpenPostgres(context.Background(), u, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	db := p.Namespace("down")
	mustUpdate(t, db, func(tx kv.Tx) error {
		bk, err := tx.CreateBucket([]byte("d"))
		if err != nil {
			return err
		}
		return bk.Put([]byte("k"), []byte("before"))
	})
	killer, err := pgx.Connect(context.Background(), u)
	if err != nil {
		t.Fatal(err)
	}
	defer killer.Close(context.Background())
	err = db.Update(func(tx kv.Tx) error {
		bk := tx.Bucket([]byte("d"))
		if err := bk.Put([]byte("k"), []byte("after")); err != nil {
			return err
		}
		if _, err := killer.Exec(context.Background(), `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'phrd_terminate_test' AND state LIKE 'idle in transaction%'`); err != nil {
			t.Fatal(err)
		}
		// Get cannot say it failed: it answers nil, and the transaction
		// remembers the failure. (A key the Update wrote is answered
		// from memory: one it has not read goes to the database.)
		if v := bk.Get([]byte("unread")); v != nil {
			t.Errorf("Get on a dead connection = %q", v)
		}
		bk.Put([]byte("k2"), []byte("x"))
		return nil
	})
	if !errors.Is(err, kv.ErrUnavailable) {
		t.Fatalf("Update on a dead connection: %v, want ErrUnavailable", err)
	}
	mustView(t, db, func(tx kv.Tx) error {
		bk := tx.Bucket([]byte("d"))
		if v := bk.Get([]byte("k")); string(v) != "before" || bk.Get([]byte("k2")) != nil {
			t.Errorf("after a failed update: k = %q, k2 = %q", v, bk.Get([]byte("k2")))
		}
		return nil
	})
}

// dump lists every bucket path, key, value and sequence of a store.
func dump(t *testing.T, db kv.DB) []string {
	t.Helper()
	var out []string
	var walkB func(path string, b kv.Bucket)
	walkB = func(path string, b kv.Bucket) {
		out = append(out, fmt.Sprintf("%s seq=%d", path, b.Sequence()))
		b.ForEach(func(k, v []byte) error {
			if v == nil {
				walkB(path+"/"+fmt.Sprintf("%x", k), b.Bucket(k))
				return nil
			}
			out = append(out, fmt.Sprintf("%s %x=%x", path, k, v))
			return nil
		})
	}
	mustView(t, db, func(tx kv.Tx) error {
		return tx.ForEach(func(name []byte, b kv.Bucket) error {
			walkB(fmt.Sprintf("%x", name), b)
			return nil
		})
	})
	return out
}

// TestCopyBetweenBackends: a store copied from bbolt to PostgreSQL and
// back is the same, key for key, sequence for sequence; a copy into a
// store that holds anything is refused.
func TestCopyBetweenBackends(t *testing.T) {
	src := openBoltSpec(t, filepath.Join(t.TempDir(), "src.db"))
	mustUpdate(t, src, func(tx kv.Tx) error {
		for i := range 3 {
			b, err := tx.CreateBucket([]byte{'b', byte(i)})
			if err != nil {
				return err
			}
			b.SetSequence(uint64(100 + i))
			for j := range 300 {
				if err := b.Put(binary.BigEndian.AppendUint16(nil, uint16(j)), bytes.Repeat([]byte{byte(j)}, j)); err != nil {
					return err
				}
			}
			n, err := b.CreateBucket([]byte{0xff, 0x00})
			if err != nil {
				return err
			}
			n.NextSequence()
			if err := n.Put([]byte("deep"), []byte{}); err != nil {
				return err
			}
		}
		return nil
	})
	p, _ := kvtest.Open(t, nil)
	mid := p.Namespace("copy")
	c, err := kv.Copy(mid, src)
	if err != nil {
		t.Fatal(err)
	}
	if c.Buckets != 6 || c.Keys != 903 {
		t.Errorf("copied %+v", c)
	}
	back := openBoltSpec(t, filepath.Join(t.TempDir(), "back.db"))
	if _, err := kv.Copy(back, mid); err != nil {
		t.Fatal(err)
	}
	want := dump(t, src)
	for name, db := range map[string]kv.DB{"postgres": mid, "bolt again": back} {
		if got := dump(t, db); !slices.Equal(got, want) {
			t.Errorf("%s: %d lines differ from the original's %d", name, len(got), len(want))
		}
	}
	if _, err := kv.Copy(mid, src); !errors.Is(err, kv.ErrNotEmpty) {
		t.Errorf("copy into a full store: %v", err)
	}
}

// TestPostgresKeyedLocks: writers under different keys run at once,
// writers under one key take turns and lose nothing, and a plain Update
// waits for a keyed writer in progress.
func TestPostgresKeyedLocks(t *testing.T) {
	p, u := kvtest.Open(t, nil)
	db := p.Namespace("keyed").(kv.KeyedDB)
	mustUpdate(t, db, func(tx kv.Tx) error {
		_, err := tx.CreateBucket([]byte("k"))
		return err
	})
	inA, releaseA := make(chan struct{}), make(chan struct{})
	doneA := make(chan error, 1)
	go func() {
		doneA <- db.UpdateKeys([][]byte{[]byte("a")}, func(tx kv.Tx) error {
			if err := tx.Bucket([]byte("k")).Put([]byte("a"), []byte("1")); err != nil {
				return err
			}
			close(inA)
			<-releaseA
			return nil
		})
	}()
	<-inA
	// Another key: not held up by a.
	done := make(chan error, 1)
	go func() {
		done <- db.BatchKeys([][]byte{[]byte("b")}, func(tx kv.Tx) error {
			return tx.Bucket([]byte("k")).Put([]byte("b"), []byte("1"))
		})
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a writer of key b waited for the writer of key a")
	}
	// The same key, and a plain Update: both wait for a.
	sameKey, plain := make(chan error, 1), make(chan error, 1)
	go func() {
		sameKey <- db.UpdateKeys([][]byte{[]byte("a"), []byte("c")}, func(tx kv.Tx) error {
			if v := tx.Bucket([]byte("k")).Get([]byte("a")); string(v) != "1" {
				return fmt.Errorf("the second writer of key a read %q before the first committed", v)
			}
			return nil
		})
	}()
	go func() {
		plain <- db.Update(func(tx kv.Tx) error {
			if v := tx.Bucket([]byte("k")).Get([]byte("a")); string(v) != "1" {
				return fmt.Errorf("a plain Update read %q before the keyed writer committed", v)
			}
			return nil
		})
	}()
	time.Sleep(300 * time.Millisecond)
	select {
	case err := <-sameKey:
		t.Fatalf("a second writer of key a ran while the first held it: %v", err)
	case err := <-plain:
		t.Fatalf("a plain Update ran while a keyed writer held the namespace: %v", err)
	default:
	}
	close(releaseA)
	for _, ch := range []chan error{doneA, sameKey, plain} {
		if err := <-ch; err != nil {
			t.Fatal(err)
		}
	}
	// Read-modify-write under one key from many goroutines and two
	// handles: nothing lost.
	p2, err := kv.OpenPostgres(context.Background(), u, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p2.Close()
	nodes := []kv.KeyedDB{db, p2.Namespace("keyed").(kv.KeyedDB)}
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			run := nodes[i%2].UpdateKeys
			if i%4 >= 2 {
				run = nodes[i%2].BatchKeys
			}
			err := run([][]byte{[]byte("counter")}, func(tx kv.Tx) error {
				bk := tx.Bucket([]byte("k"))
				n, _ := strconv.Atoi(string(bk.Get([]byte("counter"))))
				return bk.Put([]byte("counter"), []byte(strconv.Itoa(n+1)))
			})
			if err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	mustView(t, db, func(tx kv.Tx) error {
		if v := tx.Bucket([]byte("k")).Get([]byte("counter")); string(v) != "40" {
			t.Errorf("counter = %s after 40 keyed increments", v)
		}
		return nil
	})
}

// TestPostgresReadOnly: a server that refuses writes (a primary demoted
// by a failover) makes an Update fail with ErrUnavailable, and its
// connection is dropped so that the next transaction connects afresh.
func TestPostgresReadOnly(t *testing.T) {
	u := kvtest.URL(t)
	p, err := kv.OpenPostgres(context.Background(), u, &kv.PostgresOptions{MaxConns: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	db := p.Namespace("ro")
	// The one connection of the pool turns read-only, as a demoted
	// primary's sessions are.
	if _, err := p.Pool().Exec(context.Background(), `SET default_transaction_read_only = on`); err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx kv.Tx) error {
		_, err := tx.CreateBucket([]byte("x"))
		return err
	})
	if !errors.Is(err, kv.ErrUnavailable) {
		t.Fatalf("a write on a read-only server: %v, want ErrUnavailable", err)
	}
	mustUpdate(t, db, func(tx kv.Tx) error {
		_, err := tx.CreateBucket([]byte("x"))
		return err
	})
}

// TestPostgresRoundTrips: a transaction's BEGIN (and its locks) go with
// its first read, its writes wait for its next read or its commit, and a
// bucket's nested buckets are read once: what each costs in round trips.
func TestPostgresRoundTrips(t *testing.T) {
	p, _ := kvtest.Open(t, nil)
	db := p.Namespace("trips")
	mustUpdate(t, db, func(tx kv.Tx) error {
		for _, name := range []string{"a", "b", "c"} {
			if _, err := tx.CreateBucket([]byte(name)); err != nil {
				return err
			}
		}
		return nil
	})
	keys := make([][]byte, 50)
	for i := range keys {
		keys[i] = []byte(fmt.Sprint("k", i))
	}
	tests := []struct {
		name string
		max  uint64
		run  func() error
	}{
		// BEGIN with the nested buckets of the root; COMMIT.
		{"an empty Update", 1, func() error { return db.Update(func(kv.Tx) error { return nil }) }},
		{"a View that reads nothing", 0, func() error { return db.View(func(kv.Tx) error { return nil }) }},
		{"a View of three buckets and one Get", 3, func() error {
			return db.View(func(tx kv.Tx) error {
				tx.Bucket([]byte("a"))
				tx.Bucket([]byte("b"))
				tx.Bucket([]byte("c")).Get([]byte("x"))
				return nil
			})
		}},
		{"an Update of 50 Puts in two buckets", 2, func() error {
			return db.Update(func(tx kv.Tx) error {
				for _, k := range keys {
					if err := tx.Bucket([]byte("a")).Put(k, k); err != nil {
						return err
					}
					if err := tx.Bucket([]byte("b")).Put(k, k); err != nil {
						return err
					}
				}
				return nil
			})
		}},
		{"GetOne", 1, func() error { _, err := kv.GetOne(db, []byte("a"), keys[0]); return err }},
		{"a View of 50 keys with GetMany", 3, func() error {
			return db.View(func(tx kv.Tx) error {
				vals := kv.GetMany(tx.Bucket([]byte("a")), keys)
				if !bytes.Equal(vals[49], keys[49]) {
					t.Errorf("GetMany: %q", vals[49])
				}
				return nil
			})
		}},
		{"an Update that prefetches 50 keys, reads and rewrites them", 3, func() error {
			return db.Update(func(tx kv.Tx) error {
				bk := tx.Bucket([]byte("a"))
				kv.Prefetch(bk, keys)
				for _, k := range keys {
					if v := bk.Get(k); !bytes.Equal(v, k) {
						t.Errorf("Get after Prefetch = %q, want %q", v, k)
					}
					if err := bk.Put(k, append(k, '!')); err != nil {
						return err
					}
					if v := bk.Get(k); !bytes.Equal(v, append(k, '!')) {
						t.Errorf("Get after Put = %q", v)
					}
				}
				return nil
			})
		}},
		{"an Update that reads its own 50 Deletes", 4, func() error {
			return db.Update(func(tx kv.Tx) error {
				bk := tx.Bucket([]byte("b"))
				for _, k := range keys {
					if err := bk.Delete(k); err != nil {
						return err
					}
				}
				if bk.Get(keys[0]) != nil {
					t.Error("Get after Delete in the same Update")
				}
				return nil
			})
		}},
	}
	for _, tc := range tests {
		before := p.RoundTrips()
		if err := tc.run(); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got := p.RoundTrips() - before; got > tc.max {
			t.Errorf("%s: %d round trips, want at most %d", tc.name, got, tc.max)
		}
	}
}

// TestPostgresIdleConnectionDropped: a pooled connection the server
// dropped while it sat idle fails the next transaction's first round
// trip, before anything was done: it is sent again on a fresh connection,
// and the caller sees nothing.
func TestPostgresIdleConnectionDropped(t *testing.T) {
	u := kvtest.URL(t) + "&application_name=phrd_idle_test"
	p, err := kv.OpenPostgres(context.Background(), u, &kv.PostgresOptions{MaxConns: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	db := p.Namespace("idle")
	mustUpdate(t, db, func(tx kv.Tx) error {
		bk, err := tx.CreateBucket([]byte("d"))
		if err != nil {
			return err
		}
		return bk.Put([]byte("k"), []byte("v"))
	})
	killer, err := pgx.Connect(context.Background(), kvtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer killer.Close(context.Background())
	for i, fn := range []func() error{
		func() error {
			return db.View(func(tx kv.Tx) error {
				if v := tx.Bucket([]byte("d")).Get([]byte("k")); string(v) != "v" {
					t.Errorf("Get = %q", v)
				}
				return nil
			})
		},
		func() error {
			return db.Update(func(tx kv.Tx) error { return tx.Bucket([]byte("d")).Put([]byte("k2"), []byte("v2")) })
		},
	} {
		var n int
		if err := killer.QueryRow(context.Background(), `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = 'phrd_idle_test' AND state = 'idle'`).Scan(&n); err != nil || n != 1 {
			t.Fatalf("terminate the idle connection: %d, %v", n, err)
		}
		time.Sleep(50 * time.Millisecond) // the client side sees it closed when it next writes
		if err := fn(); err != nil {
			t.Errorf("transaction %d after the idle connection was dropped: %v", i, err)
		}
	}
}
