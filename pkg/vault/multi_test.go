package vault

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/phr-project/phr/pkg/kv"
	"github.com/phr-project/phr/pkg/kv/kvtest"
	"github.com/phr-project/phr/pkg/record"
)

// Several open Vaults on one store, as phrd nodes have them: each test
// runs on a bbolt store shared by the Vaults (kv.OpenBolt, OpenIn twice)
// and on one PostgreSQL namespace that each Vault reaches through a pool
// of its own, as separate nodes do.

// sharedStore is a store several Vaults open.
type sharedStore struct {
	// handle returns a handle on the store for one more Vault (a node's
	// own pool, for PostgreSQL).
	handle func(t *testing.T) kv.DB
	id     *age.X25519Identity
}

var sharedBackends = []struct {
	name string
	make func(t *testing.T) func(t *testing.T) kv.DB
}{
	{"bolt", func(t *testing.T) func(t *testing.T) kv.DB {
		db, err := kv.OpenBolt(filepath.Join(t.TempDir(), "store.db"), 0o600, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return func(*testing.T) kv.DB { return db }
	}},
	{"postgres", func(t *testing.T) func(t *testing.T) kv.DB {
		_, u := kvtest.Open(t, nil)
		return func(t *testing.T) kv.DB {
			p, err := kv.OpenPostgres(context.Background(), u, nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(p.Close)
			db := p.Namespace("vault/shared")
			t.Cleanup(func() { db.Close() })
			return db
		}
	}},
}

// eachShared runs fn on a fresh vault in a store of each backend.
func eachShared(t *testing.T, fn func(t *testing.T, s *sharedStore)) {
	for _, be := range sharedBackends {
		t.Run(be.name, func(t *testing.T) {
			s := &sharedStore{handle: be.make(t)}
			var err error
			if s.id, err = age.GenerateX25519Identity(); err != nil {
				t.Fatal(err)
			}
			v, err := CreateIn(s.handle(t), []SlotSpec{{Kind: SlotDevice, Recipients: []age.Recipient{s.id.Recipient()}}}, nil)
			if err != nil {
				t.Fatal(err)
			}
			v.Close()
			fn(t, s)
		})
	}
}

// open opens one more Vault on the store.
func (s *sharedStore) open(t *testing.T, opts *Options) *Vault {
	t.Helper()
	v, err := OpenIn(s.handle(t), Identities(s.id), opts)
	if err != nil {
		t.Fatalf("OpenIn: %v", err)
	}
	t.Cleanup(func() { v.Close() })
	return v
}

// afterLease is a clock past the lease of every marker written now.
func afterLease() time.Time { return time.Now().Add(importLease + time.Second) }

// note is a self-entered record with a text of its own.
func note(t testing.TB, text string) record.Record {
	return must(t)(record.NewNote(record.Common{}, text, time.Time{}))
}

// importKind makes n distinct imported records of file sha, of a
// resource type that gives them another kind than importRecs's.
func importConditions(t testing.TB, sha string, from, n int) []record.Record {
	t.Helper()
	out := make([]record.Record, n)
	for i := range out {
		id := fmt.Sprintf("%s-c%d", sha[:8], from+i)
		out[i] = must(t)(record.New([]byte(`{"resourceType":"Condition","id":"`+id+`","code":{"text":"Condition `+id+`"},"clinicalStatus":{"text":"active"},"onsetDateTime":"2020-01-02"}`),
			record.Provenance{Method: record.MethodImported, Importer: "fhir", System: "Clinic", OriginalID: id, FileSHA256: sha}))
	}
	return out
}

// importFile imports recs of file sha through v in batches of size.
func importFile(v *Vault, sha string, recs []record.Record, size int) ([]AddResult, error) {
	im, err := v.BeginImport(sha)
	if err != nil {
		return nil, err
	}
	var out []AddResult
	for len(recs) > size {
		res, err := im.Add(recs[:size])
		if err != nil {
			im.Abort()
			return nil, err
		}
		out, recs = append(out, res...), recs[size:]
	}
	res, err := im.Commit(recs)
	if err != nil {
		im.Abort()
		return nil, err
	}
	return append(out, res...), nil
}

// TestMultiVaultsWrite has three Vaults on one store write at once
// (records put and deleted, imports of different files and of the same
// file, small writes such as a phone's readings and the audit log) while
// they read and list; afterwards every acknowledged write is there once,
// the imports of the same file left one copy, Check finds nothing, and a
// Vault opened fresh verifies the head.
func TestMultiVaultsWrite(t *testing.T) {
	eachShared(t, func(t *testing.T, s *sharedStore) {
		vs := []*Vault{s.open(t, nil), s.open(t, nil), s.open(t, nil)}
		shared := fileSHA("shared")
		const perVault, fileRecs = 12, 45
		var (
			mu       sync.Mutex
			kept     = map[string][]byte{} // ID -> resource, live
			deleted  = map[string]bool{}
			errs     = make(chan error, 64)
			writers  sync.WaitGroup
			readers  sync.WaitGroup
			stop     = make(chan struct{})
			readsRun atomic.Int64
		)
		fail := func(err error) {
			select {
			case errs <- err:
			default:
			}
		}
		for i, v := range vs {
			// Records put, and every third one deleted again.
			writers.Add(1)
			go func() {
				defer writers.Done()
				for j := range perVault {
					r := note(t, fmt.Sprintf("vault %d note %d", i, j))
					res, err := v.Put(r)
					if err != nil {
						fail(fmt.Errorf("put: %w", err))
						return
					}
					if j%3 == 2 {
						if err := v.Delete(res.ID, 0); err != nil {
							fail(fmt.Errorf("delete: %w", err))
							return
						}
						mu.Lock()
						deleted[res.ID] = true
						mu.Unlock()
						continue
					}
					mu.Lock()
					kept[res.ID] = r.Resource
					mu.Unlock()
				}
			}()
			// Small writes, one transaction each: the audit log.
			writers.Add(1)
			go func() {
				defer writers.Done()
				for j := range perVault {
					if err := v.AppendAudit(AuditEntry{Event: "read", Ref: fmt.Sprintf("%d/%d", i, j), Success: true}); err != nil {
						fail(fmt.Errorf("audit: %w", err))
						return
					}
				}
			}()
			// An import of a file of its own, and one of the file all
			// three import.
			writers.Add(1)
			go func() {
				defer writers.Done()
				own := fileSHA(fmt.Sprint("own", i))
				if _, err := importFile(v, own, importRecs(t, own, 0, fileRecs), 10); err != nil {
					fail(fmt.Errorf("import own: %w", err))
					return
				}
				if _, err := importFile(v, shared, importRecs(t, shared, 0, fileRecs), 10); err != nil {
					fail(fmt.Errorf("import shared: %w", err))
				}
			}()
			// Readers: listings, and reads of what they list.
			readers.Add(1)
			go func() {
				defer readers.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					recs, err := v.List(Query{})
					if err != nil {
						fail(fmt.Errorf("list: %w", err))
						return
					}
					for _, r := range recs[:min(len(recs), 5)] {
						if _, err := v.Get(r.ID); err != nil && !errors.Is(err, ErrNotFound) && !errors.Is(err, ErrDeleted) {
							fail(fmt.Errorf("get: %w", err))
							return
						}
					}
					readsRun.Add(1)
					time.Sleep(5 * time.Millisecond)
				}
			}()
		}
		writers.Wait()
		close(stop)
		readers.Wait()
		select {
		case err := <-errs:
			t.Fatal(err)
		default:
		}
		if readsRun.Load() == 0 {
			t.Fatal("no read ran while the writers wrote")
		}

		fresh := s.open(t, nil)
		if err := fresh.Verify(); err != nil {
			t.Fatalf("a fresh Vault does not verify the head: %v", err)
		}
		checkOK(t, fresh)
		if m := markers(t, fresh); len(m) != 0 {
			t.Fatalf("import markers left: %v", m)
		}
		all, err := fresh.List(Query{})
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]int{}
		for _, r := range all {
			if r.Kind == record.KindNote {
				seen[r.ID]++
			}
		}
		for id, res := range kept {
			r, err := fresh.Get(id)
			if err != nil || seen[id] != 1 || !bytes.Equal(r.Resource, res) {
				t.Fatalf("note %s: %v, listed %d times", id, err, seen[id])
			}
		}
		if len(seen) != len(kept) || len(kept)+len(deleted) != 3*perVault {
			t.Fatalf("%d notes listed, %d kept, %d deleted", len(seen), len(kept), len(deleted))
		}
		for id := range deleted {
			if r, err := fresh.Get(id); err != nil || !r.Deleted {
				t.Fatalf("deleted note %s: %v, deleted %v", id, err, r.Deleted)
			}
		}
		if n := countOf(t, fresh, shared); n != fileRecs {
			t.Fatalf("the file three Vaults imported has %d records, want %d: added more than once", n, fileRecs)
		}
		for i := range vs {
			if n := countOf(t, fresh, fileSHA(fmt.Sprint("own", i))); n != fileRecs {
				t.Fatalf("file %d: %d records, want %d", i, n, fileRecs)
			}
		}
		log, err := fresh.Audit(0)
		if err != nil || len(log) != 3*perVault {
			t.Fatalf("audit log: %d entries, want %d: %v", len(log), 3*perVault, err)
		}
		for i, e := range log {
			if e.Seq != uint64(len(log)-i) {
				t.Fatalf("audit entry %d has number %d: numbers repeat or skip", i, e.Seq)
			}
		}
		// The same file once more, through any Vault: duplicates.
		if res, err := vs[1].Add(importRecs(t, shared, 0, 5)); err != nil || outcomes(res) != "ddddd" {
			t.Fatalf("again: %s, %v", outcomes(res), err)
		}
	})
}

// TestMultiOpenLeavesImport: a Vault opened for writing (a login on
// another node), and Check with repair, while another Vault imports leave
// that import alone; an import whose lease expired is rolled back by the
// next opener, and its own Vault then fails cleanly instead of writing on.
func TestMultiOpenLeavesImport(t *testing.T) {
	eachShared(t, func(t *testing.T, s *sharedStore) {
		a := s.open(t, nil)
		sha := fileSHA("long")
		im := begun(t, a, sha, 20)
		b := s.open(t, nil)
		if rb := b.RolledBack(); len(rb) != 0 {
			t.Fatalf("opening rolled back a live import: %+v", rb)
		}
		if n, err := b.InterruptedImports(); err != nil || n != 0 {
			t.Fatalf("InterruptedImports = %d, %v: a live import counted", n, err)
		}
		rep, err := b.Check(true)
		if err != nil || !rep.OK() || len(rep.RolledBack) != 0 {
			t.Fatalf("Check(repair) during a live import: %v %+v", err, rep)
		}
		if _, err := im.Add(importRecs(t, sha, 20, 20)); err != nil {
			t.Fatalf("the import's next batch: %v", err)
		}
		if _, err := im.Commit(importRecs(t, sha, 40, 5)); err != nil {
			t.Fatal(err)
		}
		if n := countOf(t, b, sha); n != 45 {
			t.Fatalf("%d records, want 45", n)
		}

		// An import whose Vault stops renewing it (its node died): left
		// alone until the lease expires, rolled back by the next
		// opener after that.
		dead := fileSHA("dead")
		begun(t, a, dead, 8)
		a.Close()
		if v := s.open(t, nil); len(v.RolledBack()) != 0 || countOf(t, v, dead) != 8 {
			t.Fatalf("rolled back %+v before the lease expired", v.RolledBack())
		}
		c := s.open(t, &Options{Now: afterLease})
		if rb := c.RolledBack(); len(rb) != 1 || rb[0].FileSHA256 != dead || rb[0].Records != 8 {
			t.Fatalf("rolled back %+v, want the dead import's 8 records", rb)
		}
		if n := countOf(t, c, dead); n != 0 || len(markers(t, c)) != 0 {
			t.Fatalf("%d records and markers %v left", n, markers(t, c))
		}

		// A Vault whose import outlived its lease (a node paused for
		// longer than it) finds it rolled back and fails its next batch.
		slow := fileSHA("slow")
		d := s.open(t, nil)
		im = begun(t, d, slow, 6)
		rep, err = c.Check(true)
		if err != nil || len(rep.RolledBack) != 2 {
			t.Fatalf("Check(repair) after the lease: %v %+v", err, rep)
		}
		if _, err := im.Add(importRecs(t, slow, 6, 6)); !errors.Is(err, errImportLost) {
			t.Fatalf("next batch of a rolled-back import: %v, want errImportLost", err)
		}
		if n := countOf(t, d, slow); n != 0 {
			t.Fatalf("%d records of a rolled-back import", n)
		}
		checkOK(t, s.open(t, nil))
	})
}

// TestMultiLeaseRenewed: a running import whose batches are further
// apart than the lease keeps it, renewed by its Vault's renewer, and
// another Vault that looks after the lease would have run out leaves it.
func TestMultiLeaseRenewed(t *testing.T) {
	defer func(l, e time.Duration) { importLease, leaseRenewEvery = l, e }(importLease, leaseRenewEvery)
	importLease, leaseRenewEvery = time.Second, 100*time.Millisecond
	eachShared(t, func(t *testing.T, s *sharedStore) {
		a := s.open(t, nil)
		sha := fileSHA("renewed")
		im := begun(t, a, sha, 5)
		time.Sleep(3 * importLease) // a slow client between two batches
		b := s.open(t, nil)
		if rb := b.RolledBack(); len(rb) != 0 {
			t.Fatalf("a renewed import was rolled back: %+v", rb)
		}
		if _, err := im.Commit(importRecs(t, sha, 5, 5)); err != nil {
			t.Fatalf("commit after a pause longer than the lease: %v", err)
		}
		if n := countOf(t, b, sha); n != 10 {
			t.Fatalf("%d records, want 10", n)
		}
	})
}

// TestMultiSameFile: imports of one file on two Vaults take turns: the
// second waits while the first's marker is live and then finds its
// records as duplicates; a context bounds the wait; a dead import of the
// file is rolled back before the next one begins.
func TestMultiSameFile(t *testing.T) {
	eachShared(t, func(t *testing.T, s *sharedStore) {
		a, b := s.open(t, nil), s.open(t, nil)
		sha := fileSHA("twice")
		recs := func() []record.Record { return importRecs(t, sha, 0, 30) }
		imA, _ := a.BeginImport(sha)
		if _, err := imA.Add(recs()[:15]); err != nil {
			t.Fatal(err)
		}
		// A second import of the file, bounded by a context, gives up.
		ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
		imC, _ := b.BeginImportContext(ctx, sha)
		if _, err := imC.Add(recs()[:15]); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Add while another Vault imports the file = %v, want the context's deadline", err)
		}
		cancel()
		// One without a deadline waits for the first to finish.
		got := make(chan string, 1)
		go func() {
			imB, _ := b.BeginImport(sha)
			r := recs()
			res1, err := imB.Add(r[:15])
			if err != nil {
				got <- err.Error()
				return
			}
			res2, err := imB.Commit(r[15:])
			if err != nil {
				got <- err.Error()
				return
			}
			got <- outcomes(append(res1, res2...))
		}()
		select {
		case out := <-got:
			t.Fatalf("the second import did not wait: %s", out)
		case <-time.After(300 * time.Millisecond):
		}
		if _, err := imA.Commit(recs()[15:]); err != nil {
			t.Fatal(err)
		}
		select {
		case out := <-got:
			if out != "dddddddddddddddddddddddddddddd" {
				t.Fatalf("the second import of the file: %s, want 30 duplicates", out)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("the second import is still waiting")
		}
		if n := countOf(t, b, sha); n != 30 {
			t.Fatalf("%d records, want 30", n)
		}
		// A file imported in one transaction (no marker) waits too.
		one := fileSHA("one")
		begun(t, a, one, 4)
		ctx, cancel = context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		imC, _ = b.BeginImportContext(ctx, one)
		if _, err := imC.Commit(importRecs(t, one, 0, 4)); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Commit without Add while another imports the file = %v", err)
		}
		// The first one dies (its Vault closed, never committed): an
		// import of the file by a Vault whose clock is past the lease
		// rolls it back first, then adds the whole file.
		a.Close()
		late := s.open(t, &Options{Now: afterLease})
		res, err := importFile(late, one, importRecs(t, one, 0, 6), 3)
		if err != nil || outcomes(res) != "aaaaaa" {
			t.Fatalf("import after a dead one: %s, %v", outcomes(res), err)
		}
		if rb := late.RolledBack(); len(rb) != 1 || rb[0].FileSHA256 != one || rb[0].Records != 4 {
			t.Fatalf("rolled back %+v", rb)
		}
		if n := countOf(t, late, one); n != 6 {
			t.Fatalf("%d records, want 6", n)
		}
		checkOK(t, late)
	})
}

// dictCount counts the stored dictionaries and the kinds they are for.
func dictCount(t *testing.T, v *Vault) (int, map[string]int) {
	t.Helper()
	n, kinds := 0, map[string]int{}
	if err := v.view(func(tx kv.Tx) error {
		return tx.Bucket([]byte{bucketDicts}).ForEach(func(k, sealed []byte) error {
			pt, err := v.keys.open(bucketDicts, k, sealed)
			if err != nil {
				return err
			}
			kind, _, err := decodeDict(pt)
			n++
			kinds[kind]++
			return err
		})
	}); err != nil {
		t.Fatal(err)
	}
	return n, kinds
}

// TestMultiDictionaries: a Vault reads records compressed with a
// dictionary another Vault trained after it loaded its own; it trains
// none for a kind another Vault has one for; two Vaults training at once
// store theirs under distinct numbers, and every record opens.
func TestMultiDictionaries(t *testing.T) {
	eachShared(t, func(t *testing.T, s *sharedStore) {
		a, b := s.open(t, nil), s.open(t, nil)
		// b loads its (empty) dictionaries.
		if _, err := b.Put(note(t, "first")); err != nil {
			t.Fatal(err)
		}
		f1 := fileSHA("dict1")
		if _, err := a.Add(importRecs(t, f1, 0, dictMinSamples)); err != nil {
			t.Fatal(err)
		}
		if n, _ := dictCount(t, a); n != 1 {
			t.Fatalf("%d dictionaries after %d records of a kind, want 1", n, dictMinSamples)
		}
		recs, err := b.List(Query{})
		if err != nil || len(recs) != dictMinSamples+1 {
			t.Fatalf("b lists %d records: %v", len(recs), err)
		}
		for _, r := range recs[:10] {
			if _, err := b.Get(r.ID); err != nil {
				t.Fatalf("b reads a record compressed with a's dictionary: %v", err)
			}
		}
		// b imports more of the kind: it uses a's dictionary.
		f2 := fileSHA("dict2")
		if _, err := b.Add(importRecs(t, f2, 0, dictMinSamples)); err != nil {
			t.Fatal(err)
		}
		if n, _ := dictCount(t, b); n != 1 {
			t.Fatalf("%d dictionaries: b trained one for a kind a had trained", n)
		}
		// Two Vaults train at once for a new kind.
		var wg sync.WaitGroup
		errs := make(chan error, 4)
		for i, v := range []*Vault{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				sha := fileSHA(fmt.Sprint("cond", i))
				if _, err := v.Add(importConditions(t, sha, 0, dictMinSamples)); err != nil {
					errs <- err
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		// The second to write found the first's dictionary for the kind.
		n, kinds := dictCount(t, a)
		if n != 2 || kinds[record.KindCondition] != 1 {
			t.Fatalf("%d dictionaries (%v), want one per kind", n, kinds)
		}
		fresh := s.open(t, nil)
		checkOK(t, fresh)
		all, err := fresh.List(Query{})
		if err != nil || len(all) != 4*dictMinSamples+1 {
			t.Fatalf("%d records, want %d: %v", len(all), 4*dictMinSamples+1, err)
		}
		// Check opened every record; a and b read some of each.
		for i, r := range all {
			if i%97 != 0 {
				continue
			}
			if _, err := a.Get(r.ID); err != nil {
				t.Fatalf("a reads %s: %v", r.ID, err)
			}
			if _, err := b.Get(r.ID); err != nil {
				t.Fatalf("b reads %s: %v", r.ID, err)
			}
		}
	})
}

// storeTerm reads the key term of the store.
func storeTerm(t *testing.T, db kv.DB) uint32 {
	t.Helper()
	var term uint32
	db.View(func(tx kv.Tx) error {
		term = binary.BigEndian.Uint32(tx.Bucket([]byte{bucketMeta}).Get([]byte("term")))
		return nil
	})
	return term
}

// begun begins the import of the file sha into v and adds its first n
// records.
func begun(t *testing.T, v *Vault, sha string, n int) *Import {
	t.Helper()
	im, err := v.BeginImport(sha)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := im.Add(importRecs(t, sha, 0, n)); err != nil {
		t.Fatal(err)
	}
	return im
}

// TestMultiRollBackDead: a Vault that stays open (a phrd node) rolls back
// an import whose Vault died once its lease has run out, without being
// opened again (RollBackDead, which phrd's janitor calls), and not
// before.
func TestMultiRollBackDead(t *testing.T) {
	eachShared(t, func(t *testing.T, s *sharedStore) {
		var late atomic.Bool
		clock := func() time.Time {
			if late.Load() {
				return afterLease()
			}
			return time.Now()
		}
		b := s.open(t, &Options{Now: clock})
		a := s.open(t, nil)
		dead := fileSHA("dead")
		begun(t, a, dead, 8)
		a.Close() // its node died: nobody renews the lease
		if n, err := b.RollBackDead(); err != nil || n != 0 || countOf(t, b, dead) != 8 {
			t.Fatalf("before the lease ran out: rolled back %d, %v", n, err)
		}
		late.Store(true)
		if n, err := b.RollBackDead(); err != nil || n != 1 || countOf(t, b, dead) != 0 {
			t.Fatalf("after the lease ran out: rolled back %d, %v; %d records left", n, err, countOf(t, b, dead))
		}
		if rb := b.RolledBack(); len(rb) != 1 || rb[0].FileSHA256 != dead || rb[0].Records != 8 {
			t.Fatalf("RolledBack %+v", rb)
		}
		if n, err := b.RollBackDead(); err != nil || n != 0 {
			t.Fatalf("again: %d, %v", n, err)
		}
		checkOK(t, b)
	})
}

// TestMultiPurgeImport: PurgeImport takes the file's turn as an import of
// the file does. While an import of file F runs on one Vault, a purge of
// F, on another Vault or on the same one, waits (a context bounds the
// wait, and a purge that gives up removed nothing); once the import has
// committed, the purge removes the whole file, the records of the
// import's last batch too, and leaves no marker. A purge never removes
// part of an import that is still running.
func TestMultiPurgeImport(t *testing.T) {
	eachShared(t, func(t *testing.T, s *sharedStore) {
		a, b := s.open(t, nil), s.open(t, nil)
		sha := fileSHA("purged")
		since, err := a.LastSeq()
		if err != nil {
			t.Fatal(err)
		}
		im := begun(t, a, sha, 10)
		// Bounded by a context: each gives up, having removed (or
		// written) nothing; within one Vault too, where the turn is
		// taken in memory (fileTurns).
		for _, tc := range []struct {
			name string
			run  func(ctx context.Context) error
		}{
			{"a purge on another Vault", func(ctx context.Context) error {
				_, err := b.PurgeImportContext(ctx, since, sha)
				return err
			}},
			{"a purge on the importing Vault", func(ctx context.Context) error {
				_, err := a.PurgeImportContext(ctx, since, sha)
				return err
			}},
			{"an import on the importing Vault", func(ctx context.Context) error {
				im2, err := a.BeginImportContext(ctx, sha)
				if err != nil {
					return err
				}
				_, err = im2.Add(importRecs(t, sha, 0, 10))
				return err
			}},
		} {
			ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
			err := tc.run(ctx)
			cancel()
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("%s while the file's import runs: %v, want the context's deadline", tc.name, err)
			}
			if n := countOf(t, a, sha); n != 10 {
				t.Fatalf("after %s gave up: %d records, want the import's 10", tc.name, n)
			}
		}
		// Without a deadline, it waits for the import's end.
		type result struct {
			n   int
			err error
		}
		got := make(chan result, 1)
		go func() {
			n, err := b.PurgeImport(since, sha)
			got <- result{n, err}
		}()
		select {
		case r := <-got:
			t.Fatalf("the purge did not wait for the running import: removed %d, %v", r.n, r.err)
		case <-time.After(300 * time.Millisecond):
		}
		if n := countOf(t, a, sha); n != 10 {
			t.Fatalf("while the purge waits: %d records, want the import's 10", n)
		}
		if _, err := im.Add(importRecs(t, sha, 10, 10)); err != nil {
			t.Fatalf("the import's next batch while a purge waits: %v", err)
		}
		if _, err := im.Commit(importRecs(t, sha, 20, 5)); err != nil {
			t.Fatalf("the import's commit while a purge waits: %v", err)
		}
		select {
		case r := <-got:
			if r.err != nil || r.n != 25 {
				t.Fatalf("the purge after the import's commit removed %d, %v; want the whole file's 25", r.n, r.err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("the purge is still waiting after the import committed")
		}
		for _, v := range []*Vault{a, b} {
			if n := countOf(t, v, sha); n != 0 {
				t.Fatalf("%d records of the purged file left", n)
			}
		}
		if m := markers(t, b); len(m) != 0 {
			t.Fatalf("markers left: %v", m)
		}
		// The file imports again, whole.
		if res, err := importFile(a, sha, importRecs(t, sha, 0, 25), 10); err != nil || strings.Count(outcomes(res), "a") != 25 {
			t.Fatalf("importing the purged file again: %s, %v", outcomes(res), err)
		}
		checkOK(t, b)
	})
}

// TestMultiRotate: a key rotation through one Vault makes every other
// fail cleanly (ErrStale, matching ErrWrongKey), reads and writes alike,
// and never write under the old key; a Vault opened again works. Slot
// changes through one Vault are what the others see.
func TestMultiRotate(t *testing.T) {
	eachShared(t, func(t *testing.T, s *sharedStore) {
		a, b := s.open(t, nil), s.open(t, nil)
		first, err := b.Put(note(t, "before"))
		if err != nil {
			t.Fatal(err)
		}
		// b has an import running when a rotates.
		sha := fileSHA("during")
		im := begun(t, b, sha, 5)
		// Slots: added and removed through a, seen by b.
		id2, _ := age.GenerateX25519Identity()
		s2, err := a.AddSlot(SlotSpec{Kind: SlotDevice, Label: "phone", Recipients: []age.Recipient{id2.Recipient()}})
		if err != nil {
			t.Fatal(err)
		}
		if slots, err := b.Slots(); err != nil || len(slots) != 2 {
			t.Fatalf("b sees %d slots, want 2: %v", len(slots), err)
		}
		if ok, err := b.Opens(Identities(id2)); err != nil || !ok {
			t.Fatalf("b: the new slot opens = %v, %v", ok, err)
		}
		if err := a.RemoveSlot(s2.ID); err != nil {
			t.Fatal(err)
		}
		if ok, err := b.Opens(Identities(id2)); err != nil || ok {
			t.Fatalf("b: the removed slot still opens = %v, %v", ok, err)
		}

		db := s.handle(t)
		term := storeTerm(t, db)
		if err := a.Rotate(RotateOptions{}); err != nil {
			t.Fatal(err)
		}
		if storeTerm(t, db) != term+1 {
			t.Fatal("the rotation did not change the term")
		}
		// A session's key wrapped by a after the rotation (phrd's
		// session of the node that rotated) is the new key: b says
		// stale, not wrong key, so that phrd reopens instead of ending
		// the session.
		slots, err := a.Slots()
		if err != nil || len(slots) == 0 {
			t.Fatalf("slots %v, %v", slots, err)
		}
		sk := make([]byte, SessionKeySize)
		wrapped, err := a.WrapForSession(sk, slots[0].ID)
		if err != nil {
			t.Fatal(err)
		}
		for name, op := range map[string]func() error{
			"Put":         func() error { _, err := b.Put(note(t, "after")); return err },
			"Delete":      func() error { return b.Delete(first.ID, 0) },
			"Get":         func() error { _, err := b.Get(first.ID); return err },
			"List":        func() error { _, err := b.List(Query{}); return err },
			"SetSetting":  func() error { return b.SetSetting("x", []byte("y")) },
			"Setting":     func() error { _, err := b.Setting("patient"); return err },
			"AppendAudit": func() error { return b.AppendAudit(AuditEntry{Event: "read"}) },
			"import":      func() error { _, err := im.Add(importRecs(t, sha, 5, 5)); return err },
			"Slots":       func() error { _, err := b.Slots(); return err },
			"Opens":       func() error { _, err := b.Opens(Identities(s.id)); return err },
			"Opens (session)": func() error {
				ok, err := b.Opens(SessionSecret(wrapped, sk))
				if err == nil && !ok {
					return ErrWrongKey // the bug: refused as a wrong key
				}
				return err
			},
		} {
			if err := op(); !errors.Is(err, ErrStale) || !errors.Is(err, ErrWrongKey) {
				t.Fatalf("%s after another Vault rotated the key: %v, want ErrStale", name, err)
			}
		}
		if _, err := im.Abort(); !errors.Is(err, ErrStale) {
			t.Fatalf("Abort: %v", err)
		}
		// Nothing in the store is sealed under the old term.
		db.View(func(tx kv.Tx) error {
			for _, bk := range headBuckets {
				if bk == bucketSlots {
					continue
				}
				tx.Bucket([]byte{bk}).ForEach(func(k, val []byte) error {
					if len(val) > 5 && (val[0] == sealV1 || val[0] == sealV2) && binary.BigEndian.Uint32(val[1:5]) != term+1 {
						t.Errorf("bucket %c key %x sealed under term %d", bk, k, binary.BigEndian.Uint32(val[1:5]))
					}
					return nil
				})
			}
			return nil
		})
		// Opened again, b works; b's import, whose Vault can no longer
		// renew it, is rolled back once its lease expired.
		c := s.open(t, &Options{Now: afterLease})
		if rb := c.RolledBack(); len(rb) != 1 || rb[0].Records != 5 {
			t.Fatalf("rolled back %+v", rb)
		}
		if _, err := c.Put(note(t, "after")); err != nil {
			t.Fatal(err)
		}
		if r, err := c.Get(first.ID); err != nil || r.ID != first.ID {
			t.Fatalf("Get after reopening: %v", err)
		}
		checkOK(t, c)
	})
}

// TestMultiImportFingerprints: the records of an import still running on
// one Vault are duplicates for another Vault's writes (a vault in a store
// writes each batch's fingerprints with it, rather than holding them in
// memory until the import's last batch).
func TestMultiImportFingerprints(t *testing.T) {
	eachShared(t, func(t *testing.T, s *sharedStore) {
		a, b := s.open(t, nil), s.open(t, nil)
		sha := fileSHA("running")
		im := begun(t, a, sha, 10)
		if res, err := b.Add(importRecs(t, sha, 0, 10)); err != nil || outcomes(res) != "dddddddddd" {
			t.Fatalf("b adds what a's running import holds: %s, %v", outcomes(res), err)
		}
		if _, err := im.Commit(importRecs(t, sha, 10, 5)); err != nil {
			t.Fatal(err)
		}
		if n := countOf(t, b, sha); n != 15 {
			t.Fatalf("%d records, want 15", n)
		}
		checkOK(t, b)
	})
}

// TestMultiUpgrade: two Vaults open a store of an older format for
// writing at once (two nodes after an update): one upgrades it, the other
// takes the format it finds, and both work; a Vault that had it open
// read-only at the older format fails cleanly (ErrStale) instead of
// reading where that format kept things.
func TestMultiUpgrade(t *testing.T) {
	ids := fixtureIdentities(t, "v2")
	defer func(n int) { upgradeTxEntries = n }(upgradeTxEntries)
	for _, be := range sharedBackends {
		for _, perTx := range []int{upgradeTxEntries, 2} {
			t.Run(fmt.Sprint(be.name, "/", perTx, " per transaction"), func(t *testing.T) {
				upgradeTxEntries = perTx
				testMultiUpgrade(t, be.make(t), ids)
			})
		}
	}
}

func testMultiUpgrade(t *testing.T, handle func(t *testing.T) kv.DB, ids []age.Identity) {
	copyFixtureInto(t, handle(t), "v2/vault-v2.phr")
	ro, err := OpenIn(handle(t), Identities(ids...), &Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if all, err := ro.List(Query{IncludeDeleted: true}); err != nil || len(all) != 7 {
		t.Fatalf("read-only at format 2: %d records, %v", len(all), err)
	}
	vs := make([]*Vault, 2)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i := range vs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			vs[i], errs[i] = OpenIn(handle(t), Identities(ids...), nil)
		}()
	}
	wg.Wait()
	for i, v := range vs {
		if errs[i] != nil {
			t.Fatalf("Vault %d opening for writing with another: %v", i, errs[i])
		}
		defer v.Close()
		if v.format != FormatVersion {
			t.Fatalf("Vault %d at format %d", i, v.format)
		}
		if _, err := v.Put(note(t, fmt.Sprint("after the upgrade ", i))); err != nil {
			t.Fatalf("Vault %d: %v", i, err)
		}
	}
	if _, err := ro.List(Query{}); !errors.Is(err, ErrStale) {
		t.Fatalf("a read-only Vault of format 2 after the upgrade: %v, want ErrStale", err)
	}
	fresh, err := OpenIn(handle(t), Identities(ids...), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	if all, err := fresh.List(Query{IncludeDeleted: true}); err != nil || len(all) != 9 {
		t.Fatalf("after the upgrade: %d records, %v", len(all), err)
	}
	checkOK(t, fresh)
}

// TestMultiUpgradeLease: an opener waits while another Vault's upgrade
// lease is live, and goes on once it is gone or expired (a node that died
// in the middle of an upgrade).
func TestMultiUpgradeLease(t *testing.T) {
	ids := fixtureIdentities(t, "v2")
	handle := sharedBackends[0].make(t)
	db := handle(t)
	copyFixtureInto(t, db, "v2/vault-v2.phr")
	lease := func(expires time.Time) {
		val := make([]byte, 24)
		copy(val, "another node....")
		binary.BigEndian.PutUint64(val[16:], uint64(expires.UnixMilli()))
		if err := db.Update(func(tx kv.Tx) error { return tx.Bucket([]byte{bucketMeta}).Put([]byte(metaUpgrade), val) }); err != nil {
			t.Fatal(err)
		}
	}
	// The move to format 3 is one transaction; the lease is that of the
	// move to format 4, which may take several.
	lease(time.Now().Add(time.Hour))
	opened := make(chan error, 1)
	go func() {
		v, err := OpenIn(db, Identities(ids...), nil)
		if err == nil {
			v.Close()
		}
		opened <- err
	}()
	select {
	case err := <-opened:
		t.Fatalf("opened during another's upgrade: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	lease(time.Now().Add(-time.Second)) // it expired
	select {
	case err := <-opened:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("still waiting after the lease expired")
	}
	v, err := OpenIn(db, Identities(ids...), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	if v.format != FormatVersion {
		t.Fatalf("format %d", v.format)
	}
	db.View(func(tx kv.Tx) error {
		if tx.Bucket([]byte{bucketMeta}).Get([]byte(metaUpgrade)) != nil {
			t.Error("the upgrade's lease stayed")
		}
		return nil
	})
	checkOK(t, v)
}

// TestImportMarkV1: a marker of version 1 (no owner, no lease) is read as
// expired, in a store too, and rolled back by the next opener; Check
// reports it as one to roll back.
func TestImportMarkV1(t *testing.T) {
	eachShared(t, func(t *testing.T, s *sharedStore) {
		a := s.open(t, nil)
		sha := fileSHA("v1")
		begun(t, a, sha, 3)
		// What an earlier phr wrote: 0x01 ‖ sequence ‖ SHA-256.
		key := []byte(markers(t, a)[0])
		if err := a.update(func(tx kv.Tx) error {
			b := tx.Bucket([]byte{bucketSettings})
			m, err := a.openImportMark(key, b.Get(key))
			if err != nil {
				return err
			}
			pt := encodeImportMark(m.since, m.sha, m.owner, m.expires)[:importMarkV1Len]
			pt[0] = importMarkV1
			return a.putSetting(b, key, pt)
		}); err != nil {
			t.Fatal(err)
		}
		a.Close()
		ro := s.open(t, &Options{ReadOnly: true})
		if n, err := ro.InterruptedImports(); err != nil || n != 1 {
			t.Fatalf("InterruptedImports = %d, %v", n, err)
		}
		v := s.open(t, nil)
		if rb := v.RolledBack(); len(rb) != 1 || rb[0].FileSHA256 != sha || rb[0].Records != 3 {
			t.Fatalf("rolled back %+v", rb)
		}
		checkOK(t, v)
	})
}

// TestMultiConflict: edits of one record through several Vaults at once,
// each naming the version it read (an ETag), leave exactly one winner;
// the others get ErrConflict, and the history keeps the version replaced.
func TestMultiConflict(t *testing.T) {
	eachShared(t, func(t *testing.T, s *sharedStore) {
		vs := []*Vault{s.open(t, nil), s.open(t, nil), s.open(t, nil)}
		res, err := vs[0].Put(note(t, "draft"))
		if err != nil {
			t.Fatal(err)
		}
		var wins, conflicts atomic.Int64
		var wg sync.WaitGroup
		for i, v := range vs {
			for j := range 2 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					r, err := vs[(i+1)%len(vs)].Get(res.ID)
					if err != nil {
						t.Error(err)
						return
					}
					edit := note(t, fmt.Sprintf("edit %d/%d", i, j))
					r.Resource = edit.Resource
					switch _, err := v.Update(r, 1); {
					case err == nil:
						wins.Add(1)
					case errors.Is(err, ErrConflict):
						conflicts.Add(1)
					default:
						t.Error(err)
					}
				}()
			}
		}
		wg.Wait()
		if wins.Load() != 1 || conflicts.Load() != 5 {
			t.Fatalf("%d edits won and %d conflicted, want 1 and 5", wins.Load(), conflicts.Load())
		}
		r, err := vs[2].Get(res.ID)
		if err != nil || r.Version != 2 {
			t.Fatalf("version %d, %v", r.Version, err)
		}
		if h, err := vs[1].History(res.ID); err != nil || len(h) != 1 {
			t.Fatalf("history: %d, %v", len(h), err)
		}
		checkOK(t, vs[0])
	})
}

// TestMultiAbortLost: the Abort of an import that another Vault rolled
// back (its lease expired) removes nothing: not the records of an import
// of the same file begun since.
func TestMultiAbortLost(t *testing.T) {
	eachShared(t, func(t *testing.T, s *sharedStore) {
		a := s.open(t, nil)
		sha := fileSHA("lost")
		im := begun(t, a, sha, 6)
		// a pauses for longer than the lease: b rolls the import back
		// and imports the file itself.
		b := s.open(t, &Options{Now: afterLease})
		if rb := b.RolledBack(); len(rb) != 1 {
			t.Fatalf("rolled back %+v", rb)
		}
		imB := begun(t, b, sha, 6)
		if _, err := im.Add(importRecs(t, sha, 6, 6)); !errors.Is(err, errImportLost) {
			t.Fatalf("a's next batch: %v, want errImportLost", err)
		}
		if n, err := im.Abort(); err != nil || n != 0 {
			t.Fatalf("a's Abort = %d, %v: want nothing removed", n, err)
		}
		if _, err := imB.Commit(importRecs(t, sha, 6, 6)); err != nil {
			t.Fatal(err)
		}
		if n := countOf(t, b, sha); n != 12 {
			t.Fatalf("%d records, want b's 12", n)
		}
		checkOK(t, b)
	})
}

// TestFormatLoweredDuringUpgrade: a format-4 file whose version was
// lowered to 3, with an upgrade's lease put in to pass for a move to
// format 4 in progress, is still refused: its head already names a
// listing index.
func TestFormatLoweredDuringUpgrade(t *testing.T) {
	tv, _, _ := replayVault(t)
	rawEdit(t, tv.Vault, func(tx kv.Tx) error {
		m := tx.Bucket([]byte{bucketMeta})
		if err := m.Put([]byte(metaUpgrade), make([]byte, 24)); err != nil {
			return err
		}
		if _, err := tx.CreateBucket([]byte{bucketIndex}); err != nil { // format 3's kind index
			return err
		}
		return m.Put([]byte("version"), []byte{0, 0, 0, 3})
	})
	tv.Close()
	_, err := Open(tv.path, Identities(tv.identity), nil)
	if !errors.Is(err, ErrTampered) || !strings.Contains(err.Error(), "format version was lowered") {
		t.Fatalf("open = %v", err)
	}
}
