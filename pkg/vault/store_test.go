package vault

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/phr-project/phr/pkg/kv"
	"github.com/phr-project/phr/pkg/kv/kvtest"
	"github.com/phr-project/phr/pkg/record"
)

// storeBackend is a kind of store a vault lives in (CreateIn, OpenIn).
type storeBackend struct {
	name string
	// store returns a fresh, empty store, closed when the test ends.
	store func(t *testing.T) kv.DB
	// swapSQL, if set, swaps two values of a bucket with the backend's
	// own tools, behind the kv interface's back.
	swapSQL func(t *testing.T, db kv.DB, bucket byte, k1, k2 []byte)
}

// pgStores maps a namespace handle to its database, for swapSQL.
var pgStores = map[kv.DB]struct {
	p  *kv.Postgres
	ns string
}{}

var storeBackends = []storeBackend{
	{name: "bolt", store: func(t *testing.T) kv.DB {
		db, err := kv.OpenBolt(filepath.Join(t.TempDir(), "store.db"), 0o600, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}},
	{name: "postgres", store: func(t *testing.T) kv.DB {
		p, _ := kvtest.Open(t, nil)
		const ns = "vault/test"
		db := p.Namespace(ns)
		pgStores[db] = struct {
			p  *kv.Postgres
			ns string
		}{p, ns}
		t.Cleanup(func() { delete(pgStores, db); db.Close() })
		return db
	}, swapSQL: func(t *testing.T, db kv.DB, _ byte, k1, k2 []byte) {
		s := pgStores[db]
		// One statement: each row takes the value the other had in the
		// statement's snapshot.
		tag, err := s.p.Pool().Exec(context.Background(), `UPDATE phr_kv AS t SET v = o.v FROM phr_kv AS o
			WHERE t.ns = $1 AND o.ns = $1 AND t.b = o.b AND ((t.k = $2 AND o.k = $3) OR (t.k = $3 AND o.k = $2))`, s.ns, k1, k2)
		if err != nil || tag.RowsAffected() != 2 {
			t.Fatalf("swap with SQL: %v, %d rows", err, tag.RowsAffected())
		}
	}},
}

// storeVault is a vault made in a fresh store of a backend.
type storeVault struct {
	*Vault
	db kv.DB
	be storeBackend
	id *age.X25519Identity
}

// reopen closes the vault and opens it again in its store.
func (sv *storeVault) reopen(t *testing.T, opts *Options) {
	t.Helper()
	if err := sv.Close(); err != nil {
		t.Fatal(err)
	}
	v, err := OpenIn(sv.db, Identities(sv.id), opts)
	if err != nil {
		t.Fatalf("OpenIn: %v", err)
	}
	sv.Vault = v
}

// swapKV swaps two values of a bucket through the kv interface, as
// someone with the store but not the key could.
func swapKV(t *testing.T, db kv.DB, bucket byte, k1, k2 []byte) {
	t.Helper()
	err := db.Update(func(tx kv.Tx) error {
		rb := tx.Bucket([]byte{bucket})
		a, b := bytes.Clone(rb.Get(k1)), bytes.Clone(rb.Get(k2))
		if a == nil || b == nil {
			return errors.New("no such values")
		}
		return errors.Join(rb.Put(k1, b), rb.Put(k2, a))
	})
	if err != nil {
		t.Fatal(err)
	}
}

// sameRecords fails unless got and want hold the same records (but for
// their change sequence).
func sameRecords(t *testing.T, got, want []record.Record) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d records, want %d", len(got), len(want))
	}
	for i := range want {
		w, g := want[i], got[i]
		w.Seq, g.Seq = 0, 0
		if !reflect.DeepEqual(w, g) {
			t.Fatalf("record %d differs:\n%+v\n%+v", i, g, w)
		}
	}
}

// checkRestored checks that restored holds what source held (deleted
// records included) and its "patient" setting, and passes both checks.
func checkRestored(t *testing.T, restored, source *Vault) {
	t.Helper()
	want, _ := source.List(Query{IncludeDeleted: true})
	got, _ := restored.List(Query{IncludeDeleted: true})
	sameRecords(t, got, want)
	if s, _ := restored.Setting("patient"); string(s) != "p1" {
		t.Fatal("setting lost")
	}
	checkOK(t, restored)
}

func checkOK(t *testing.T, v *Vault) {
	t.Helper()
	for _, deep := range []bool{false, true} {
		check := v.Check
		if deep {
			check = v.CheckDeep
		}
		rep, err := check(false)
		if err != nil || !rep.OK() {
			t.Fatalf("check (deep %v): %v %+v", deep, err, rep)
		}
	}
}

// TestStores runs the vault's operations in a store of each backend: the
// same code, the same buckets, keys and sealed values, whether the store
// is a bbolt file or a PostgreSQL namespace.
func TestStores(t *testing.T) {
	ops := []struct {
		name string
		fn   func(t *testing.T, sv *storeVault)
	}{
		{"records and listing", func(t *testing.T, sv *storeVault) {
			recs := fill(t, sv.Vault, 90)
			kinds := map[string]int{}
			for _, r := range recs {
				kinds[r.Kind]++
				got, err := sv.Get(r.ID)
				if err != nil || got.ID != r.ID || !bytes.Equal(got.Resource, r.Resource) {
					t.Fatalf("Get %s: %v", r.ID, err)
				}
			}
			for kind, n := range kinds {
				got, err := sv.List(Query{Kinds: []string{kind}})
				if err != nil || len(got) != n {
					t.Fatalf("List %s: %d records, want %d, %v", kind, len(got), n, err)
				}
			}
			if err := sv.Delete(recs[0].ID, 0); err != nil {
				t.Fatal(err)
			}
			if err := sv.SetSetting("patient", []byte("p1")); err != nil {
				t.Fatal(err)
			}
			before, err := sv.List(Query{IncludeDeleted: true})
			if err != nil {
				t.Fatal(err)
			}
			if live, _ := sv.List(Query{}); len(live) != 89 {
				t.Fatalf("%d live records after a delete, want 89", len(live))
			}
			sv.reopen(t, nil)
			after, err := sv.List(Query{IncludeDeleted: true})
			if err != nil {
				t.Fatal(err)
			}
			sameRecords(t, after, before)
			if s, err := sv.Setting("patient"); err != nil || string(s) != "p1" {
				t.Fatalf("setting after reopening: %q, %v", s, err)
			}
			checkOK(t, sv.Vault)
		}},
		{"listing read ahead", func(t *testing.T, sv *storeVault) {
			// Each reads the next records' values together (kv.GetMany);
			// what it gives, page by page, must be what a walk reading
			// one record at a time gives, for every limit around the
			// read-ahead's size and every filter that passes some over.
			recs := fill(t, sv.Vault, 3*eachAhead+10)
			for i := 0; i < len(recs); i += 7 {
				if err := sv.Delete(recs[i].ID, 0); err != nil {
					t.Fatal(err)
				}
			}
			queries := map[string]Query{
				"all":              {},
				"oldest":           {Oldest: true},
				"deleted too":      {IncludeDeleted: true},
				"one kind":         {Kinds: []string{recs[0].Kind}},
				"text":             {Text: "cough 1"},
				"since, oldest":    {Since: time.Unix(40*3600, 0), Oldest: true},
				"no record passes": {Text: "nothing has this"},
			}
			for name, q := range queries {
				var want []string
				if _, err := sv.walkQuery(&q, "", 0, func(tx kv.Tx, rb kv.Bucket, _ *listView, e *rawEntry, in *entryInfo) (bool, error) {
					r, err := sv.loadVersion(tx, rb, e.key.id, in.version)
					if err != nil {
						return false, err
					}
					if q.Text != "" && !containsFold(r.Display, q.Text) && !resourceContains(r.Resource, q.Text) {
						return false, nil
					}
					want = append(want, r.ID)
					return true, nil
				}); err != nil {
					t.Fatal(err)
				}
				for _, limit := range []int{0, 1, eachAhead - 1, eachAhead, eachAhead + 1, 2*eachAhead + 3} {
					q := q
					q.Limit = limit
					var got []string
					cursor := ""
					for page := 0; ; page++ {
						n := 0
						next, err := sv.EachAfter(q, cursor, func(r record.Record) error {
							got = append(got, r.ID)
							n++
							return nil
						})
						if err != nil {
							t.Fatalf("%s, limit %d, page %d: %v", name, limit, page, err)
						}
						if limit > 0 && n > limit {
							t.Fatalf("%s, limit %d: a page of %d", name, limit, n)
						}
						if next == "" || limit == 0 {
							break
						}
						cursor = next
					}
					if !slices.Equal(got, want) {
						t.Errorf("%s, limit %d: %d records %v..., want %d", name, limit, len(got), got[:min(len(got), 3)], len(want))
					}
				}
			}
		}},
		{"import", func(t *testing.T, sv *storeVault) {
			sha, other := fileSHA("a"), fileSHA("b")
			im, err := sv.BeginImport(sha)
			if err != nil {
				t.Fatal(err)
			}
			if res, err := im.Add(importRecs(t, sha, 0, 40)); err != nil || res[39].Duplicate {
				t.Fatalf("import batch 1: %v", err)
			}
			if res, err := im.Commit(importRecs(t, sha, 40, 20)); err != nil || res[19].Duplicate {
				t.Fatalf("import commit: %v", err)
			}
			if c := countOf(t, sv.Vault, sha); c != 60 {
				t.Fatalf("%d records imported, want 60", c)
			}
			// The same file again: duplicates.
			if res, err := sv.Add(importRecs(t, sha, 10, 5)); err != nil || outcomes(res) != "ddddd" {
				t.Fatalf("again: %s, %v", outcomes(res), err)
			}
			// An import a crash interrupted is rolled back at the next
			// open for writing.
			if im, err = sv.BeginImport(other); err != nil {
				t.Fatal(err)
			}
			if _, err := im.Add(importRecs(t, other, 0, 7)); err != nil {
				t.Fatal(err)
			}
			sv.reopen(t, nil) // the process ends here: no Commit, no Abort
			// In a store another Vault may be the one importing: its
			// marker is left alone while its lease runs...
			if rb := sv.RolledBack(); len(rb) != 0 || countOf(t, sv.Vault, other) != 7 {
				t.Fatalf("rolled back %+v before the lease expired", rb)
			}
			// ... and rolled back once it expired.
			later := func() time.Time { return time.Now().Add(importLease + time.Second) }
			sv.reopen(t, &Options{Now: later})
			if rb := sv.RolledBack(); len(rb) != 1 || rb[0].FileSHA256 != other || rb[0].Records != 7 {
				t.Fatalf("rolled back %+v, want the interrupted import's 7 records", rb)
			}
			if a, b := countOf(t, sv.Vault, sha), countOf(t, sv.Vault, other); a != 60 || b != 0 {
				t.Fatalf("%d and %d records after the rollback, want 60 and 0", a, b)
			}
			checkOK(t, sv.Vault)
		}},
		{"compression dictionaries", func(t *testing.T, sv *storeVault) {
			defer func(n int) { retrainAfter = n }(retrainAfter)
			retrainAfter = dictMinSamples
			sha := fileSHA("many")
			im, err := sv.BeginImport(sha)
			if err != nil {
				t.Fatal(err)
			}
			n := dictMinSamples + 200
			if _, err := im.Add(importRecs(t, sha, 0, n/2)); err != nil {
				t.Fatal(err)
			}
			if _, err := im.Commit(importRecs(t, sha, n/2, n-n/2)); err != nil {
				t.Fatal(err)
			}
			dicts := 0
			sv.db.View(func(tx kv.Tx) error {
				dicts = countKeys(tx.Bucket([]byte{bucketDicts}))
				return nil
			})
			if dicts == 0 {
				t.Fatal("the import trained no dictionary")
			}
			// Check first, before anything else loads the dictionaries:
			// its workers must not load them through the transaction its
			// walk is using.
			sv.reopen(t, nil)
			checkOK(t, sv.Vault)
			if c := countOf(t, sv.Vault, sha); c != n {
				t.Fatalf("%d records, want %d", c, n)
			}
		}},
		{"history and changes", func(t *testing.T, sv *storeVault) {
			first, err := sv.Put(imm(t, "a", "1", "Influenza", "2020-10-01"))
			if err != nil {
				t.Fatal(err)
			}
			if res, err := sv.Put(imm(t, "b", "1", "Influenza", "2020-10-02")); err != nil || !res.Updated {
				t.Fatalf("update = %+v, %v", res, err)
			}
			hist, err := sv.History(first.ID)
			if err != nil || len(hist) != 1 || hist[0].Version != 1 || hist[0].Provenance.File != "a" {
				t.Fatalf("history = %+v, %v", hist, err)
			}
			ch, last, err := sv.Changes(0, 0)
			if err != nil || len(ch) != 1 || ch[0].Record.Version != 2 {
				t.Fatalf("changes = %+v, %v", ch, err)
			}
			if ch, _, err := sv.Changes(last, 0); err != nil || len(ch) != 0 {
				t.Fatalf("changes since the last = %+v, %v", ch, err)
			}
		}},
		{"slots", func(t *testing.T, sv *storeVault) {
			fill(t, sv.Vault, 6)
			id2, _ := age.GenerateX25519Identity()
			s2, err := sv.AddSlot(SlotSpec{Kind: SlotDevice, Label: "phone", Recipients: []age.Recipient{id2.Recipient()}})
			if err != nil {
				t.Fatal(err)
			}
			slots, err := sv.Slots()
			if err != nil || len(slots) != 2 {
				t.Fatalf("Slots = %+v, %v", slots, err)
			}
			first := slots[0].ID
			if first == s2.ID {
				first = slots[1].ID
			}
			// Nothing to rewrite in a store: removing a slot is complete
			// (no ErrNotCompacted).
			if err := sv.RemoveSlot(first); err != nil {
				t.Fatalf("RemoveSlot: %v", err)
			}
			if err := sv.RemoveSlot(s2.ID); !errors.Is(err, ErrLastSlot) {
				t.Fatalf("removing the last slot: %v", err)
			}
			if err := sv.Close(); err != nil {
				t.Fatal(err)
			}
			if _, err := OpenIn(sv.db, Identities(sv.id), nil); !errors.Is(err, ErrWrongKey) {
				t.Fatalf("the removed slot's identity: %v", err)
			}
			v, err := OpenIn(sv.db, Identities(id2), nil)
			if err != nil {
				t.Fatal(err)
			}
			sv.Vault, sv.id = v, id2
			if v.UnlockedBy() != s2.ID {
				t.Fatalf("opened by %s, want %s", v.UnlockedBy(), s2.ID)
			}
			if err := sv.Compact(); err != nil {
				t.Fatalf("Compact in a store: %v", err)
			}
		}},
		{"rotate", func(t *testing.T, sv *storeVault) {
			recs := fill(t, sv.Vault, 30)
			sv.Delete(recs[0].ID, 0)
			before, _ := sv.List(Query{IncludeDeleted: true})
			oldKey := bytes.Clone(sv.vaultKey)
			if err := sv.Rotate(RotateOptions{}); err != nil {
				t.Fatal(err)
			}
			sv.reopen(t, nil)
			if bytes.Equal(sv.vaultKey, oldKey) {
				t.Fatal("the vault key did not change")
			}
			after, _ := sv.List(Query{IncludeDeleted: true})
			sameRecords(t, after, before)
			checkOK(t, sv.Vault)
		}},
		{"backup and restore into a file", func(t *testing.T, sv *storeVault) {
			recs := fill(t, sv.Vault, 45)
			sv.Delete(recs[1].ID, 0)
			sv.SetSetting("patient", []byte("p1"))
			bid, _ := age.GenerateX25519Identity()
			var buf bytes.Buffer
			if n, err := sv.Backup(&buf, []age.Recipient{bid.Recipient()}, true); err != nil || n != 45 {
				t.Fatalf("Backup = %d, %v", n, err)
			}
			dest := filepath.Join(t.TempDir(), "restored.phr")
			fid, _ := age.GenerateX25519Identity()
			if _, n, err := Restore(&buf, []age.Identity{bid}, dest, []SlotSpec{{Kind: SlotDevice, Recipients: []age.Recipient{fid.Recipient()}}}, false); err != nil || n != 45 {
				t.Fatalf("Restore = %d, %v", n, err)
			}
			fv, err := Open(dest, Identities(fid), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer fv.Close()
			checkRestored(t, fv, sv.Vault)
		}},
		{"a file's backup restored into the store", func(t *testing.T, sv *storeVault) {
			// sv's store holds a vault: RestoreIn needs an empty one.
			fv := newTestVault(t)
			recs := fill(t, fv.Vault, 40)
			fv.Delete(recs[2].ID, 0)
			fv.SetSetting("patient", []byte("p1"))
			bid, _ := age.GenerateX25519Identity()
			var buf bytes.Buffer
			if _, err := fv.Backup(&buf, []age.Recipient{bid.Recipient()}, true); err != nil {
				t.Fatal(err)
			}
			good := buf.Bytes()
			slots := []SlotSpec{{Kind: SlotDevice, Recipients: []age.Recipient{sv.id.Recipient()}}}
			if _, err := RestoreIn(bytes.NewReader(good), []age.Identity{bid}, sv.db, slots, t.TempDir()); !errors.Is(err, ErrExists) {
				t.Fatalf("RestoreIn over a vault: %v", err)
			}
			empty := sv.be.store(t)
			bad := bytes.Clone(good)
			bad[len(bad)-40] ^= 1
			if _, err := RestoreIn(bytes.NewReader(bad), []age.Identity{bid}, empty, slots, t.TempDir()); err == nil {
				t.Fatal("a damaged backup restored")
			}
			if c, err := kv.Count(empty); err != nil || c.Buckets != 0 {
				t.Fatalf("a failed restore left %+v, %v", c, err)
			}
			tmp := t.TempDir()
			if n, err := RestoreIn(bytes.NewReader(good), []age.Identity{bid}, empty, slots, tmp); err != nil || n != 40 {
				t.Fatalf("RestoreIn = %d, %v", n, err)
			}
			if left, _ := os.ReadDir(tmp); len(left) != 0 {
				t.Fatalf("RestoreIn left %d files behind", len(left))
			}
			v, err := OpenIn(empty, Identities(sv.id), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer v.Close()
			checkRestored(t, v, fv.Vault)
		}},
		{"copied into a file, opens as the CLI's vault", func(t *testing.T, sv *storeVault) {
			fill(t, sv.Vault, 20)
			want, _ := sv.List(Query{})
			path := filepath.Join(t.TempDir(), "copy.phr")
			dst, err := kv.OpenBolt(path, 0o600, nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := kv.Copy(dst, sv.db); err != nil {
				t.Fatal(err)
			}
			dst.Close()
			fv, err := Open(path, Identities(sv.id), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer fv.Close()
			if fv.ID() != sv.ID() {
				t.Fatalf("the copy is vault %s, want %s", fv.ID(), sv.ID())
			}
			got, _ := fv.List(Query{})
			sameRecords(t, got, want)
			checkOK(t, fv)
		}},
		{"tamper through the store", func(t *testing.T, sv *storeVault) {
			// Two records swapped: each value is a real one, sealed for
			// the other's place, so it does not open (ErrCorrupt, as in
			// a file: TestVault_MoveIntegrity). Two settings swapped, or
			// an older value of one put back: Open checks the small
			// buckets against the authenticated head (ErrTampered).
			recs := fill(t, sv.Vault, 9)
			sv.SetSetting("a", []byte("1"))
			var older []byte
			sv.db.View(func(tx kv.Tx) error {
				older = bytes.Clone(tx.Bucket([]byte{bucketSettings}).Get([]byte("a")))
				return nil
			})
			sv.SetSetting("a", []byte("3"))
			sv.SetSetting("b", []byte("2"))
			if err := sv.Close(); err != nil {
				t.Fatal(err)
			}
			swaps := []func(*testing.T, kv.DB, byte, []byte, []byte){swapKV}
			if sv.be.swapSQL != nil {
				swaps = append(swaps, sv.be.swapSQL)
			}
			for i, swap := range swaps {
				swap(t, sv.db, bucketRecords, keyOf(recs[3].ID), keyOf(recs[4].ID))
				v, err := OpenIn(sv.db, Identities(sv.id), &Options{ReadOnly: true})
				if err != nil {
					t.Fatal(err)
				}
				if _, err := v.Get(recs[3].ID); !errors.Is(err, ErrCorrupt) {
					t.Errorf("swap %d: Get = %v, want ErrCorrupt", i, err)
				}
				if _, err := v.List(Query{}); !errors.Is(err, ErrCorrupt) {
					t.Errorf("swap %d: List = %v, want ErrCorrupt", i, err)
				}
				if rep, err := v.Check(false); err != nil || rep.OK() {
					t.Errorf("swap %d: check found nothing: %v", i, err)
				}
				v.Close()
				swap(t, sv.db, bucketRecords, keyOf(recs[3].ID), keyOf(recs[4].ID)) // back as it was

				swap(t, sv.db, bucketSettings, []byte("a"), []byte("b"))
				if _, err := OpenIn(sv.db, Identities(sv.id), nil); !errors.Is(err, ErrTampered) {
					t.Fatalf("swap %d: OpenIn with two settings swapped = %v, want ErrTampered", i, err)
				}
				swap(t, sv.db, bucketSettings, []byte("a"), []byte("b"))
			}
			var current []byte
			if err := sv.db.Update(func(tx kv.Tx) error {
				b := tx.Bucket([]byte{bucketSettings})
				current = bytes.Clone(b.Get([]byte("a")))
				return b.Put([]byte("a"), older)
			}); err != nil {
				t.Fatal(err)
			}
			if _, err := OpenIn(sv.db, Identities(sv.id), nil); !errors.Is(err, ErrTampered) {
				t.Fatalf("OpenIn with an older setting put back = %v, want ErrTampered", err)
			}
			if err := sv.db.Update(func(tx kv.Tx) error { return tx.Bucket([]byte{bucketSettings}).Put([]byte("a"), current) }); err != nil {
				t.Fatal(err)
			}
			sv.reopen(t, nil)
			checkOK(t, sv.Vault)
		}},
		{"read only and refusals", func(t *testing.T, sv *storeVault) {
			fill(t, sv.Vault, 3)
			if _, err := CreateIn(sv.db, []SlotSpec{{Kind: SlotDevice, Recipients: []age.Recipient{sv.id.Recipient()}}}, nil); !errors.Is(err, ErrExists) {
				t.Fatalf("CreateIn over a vault: %v", err)
			}
			sv.reopen(t, &Options{ReadOnly: true})
			if _, err := sv.Add(fill3(t)); !errors.Is(err, ErrReadOnly) {
				t.Fatalf("Add read-only: %v", err)
			}
			if got, _ := sv.List(Query{}); len(got) != 3 {
				t.Fatalf("%d records read-only, want 3", len(got))
			}
			empty := sv.be.store(t)
			if _, err := OpenIn(empty, Identities(sv.id), nil); !errors.Is(err, ErrNotVault) {
				t.Fatalf("OpenIn an empty store: %v", err)
			}
		}},
	}
	for _, be := range storeBackends {
		t.Run(be.name, func(t *testing.T) {
			for _, op := range ops {
				t.Run(op.name, func(t *testing.T) {
					db := be.store(t)
					id, _ := age.GenerateX25519Identity()
					v, err := CreateIn(db, []SlotSpec{{Kind: SlotDevice, Label: "laptop", Recipients: []age.Recipient{id.Recipient()}}}, nil)
					if err != nil {
						t.Fatal(err)
					}
					sv := &storeVault{Vault: v, db: db, be: be, id: id}
					t.Cleanup(func() {
						sv.Close()
						// The store stays open: the vault does not own it.
						if err := db.View(func(kv.Tx) error { return nil }); err != nil {
							t.Errorf("the store after Close: %v", err)
						}
					})
					op.fn(t, sv)
				})
			}
		})
	}
}

// fill3 makes three notes that are not in the vault.
func fill3(t *testing.T) []record.Record {
	var out []record.Record
	for _, s := range []string{"x", "y", "z"} {
		out = append(out, must(t)(record.NewNote(record.Common{}, "note "+s, time.Time{})))
	}
	return out
}

// TestOnCommit: what a write transaction asks to run after its commit
// runs once it committed, and not at all when it failed (bbolt's
// Tx.OnCommit, which the vault keeps itself on any store).
func TestOnCommit(t *testing.T) {
	for _, tc := range []struct {
		name string
		fail error
		want int
	}{
		{"committed", nil, 1},
		{"rolled back", errors.New("no"), 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tv := newTestVault(t)
			ran := 0
			err := tv.update(func(tx kv.Tx) error {
				tv.onCommit(func() { ran++ })
				if ran != 0 {
					t.Fatal("ran before the commit")
				}
				return tc.fail
			})
			if !errors.Is(err, tc.fail) || ran != tc.want {
				t.Fatalf("update = %v, ran %d times, want %d", err, ran, tc.want)
			}
			// The next transaction does not run it again.
			if err := tv.update(func(kv.Tx) error { return nil }); err != nil || ran != tc.want {
				t.Fatalf("next update = %v, ran %d times", err, ran)
			}
		})
	}
}

// TestStorePostgresUnavailable: with the database gone, the vault's
// reads and writes fail with kv.ErrUnavailable and write nothing; once it
// is back, the same Vault works on, whole.
func TestStorePostgresUnavailable(t *testing.T) {
	proxy, u := kvtest.NewProxy(t, kvtest.URL(t))
	p, err := kv.OpenPostgres(context.Background(), u, &kv.PostgresOptions{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	db := p.Namespace("vault/unavailable")
	id, _ := age.GenerateX25519Identity()
	v, err := CreateIn(db, []SlotSpec{{Kind: SlotDevice, Recipients: []age.Recipient{id.Recipient()}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	recs := fill(t, v, 12)
	proxy.Down()
	for _, op := range []struct {
		name string
		fn   func() error
	}{
		{"Add", func() error { _, err := v.Add(fill3(t)); return err }},
		{"Get", func() error { _, err := v.Get(recs[0].ID); return err }},
		{"List", func() error { _, err := v.List(Query{}); return err }},
		{"Delete", func() error { return v.Delete(recs[1].ID, 0) }},
	} {
		if err := op.fn(); !errors.Is(err, kv.ErrUnavailable) {
			t.Errorf("%s with the database down: %v, want kv.ErrUnavailable", op.name, err)
		}
	}
	proxy.Up()
	if got, err := v.List(Query{}); err != nil || len(got) != 12 {
		t.Fatalf("after the database came back: %d records, %v", len(got), err)
	}
	if _, err := v.Add(fill3(t)); err != nil {
		t.Fatal(err)
	}
	checkOK(t, v)
	if got, _ := v.List(Query{}); len(got) != 15 {
		t.Fatalf("%d records, want 15", len(got))
	}
}
