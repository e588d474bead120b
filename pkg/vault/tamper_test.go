package vault

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/phr-project/phr/pkg/kv"
	"github.com/phr-project/phr/pkg/record"
)

// Tamper tests: someone with the file but not the key edits it (here with
// bbolt directly, as any tool could), and the vault must notice.

// rawGet returns a copy of a stored value, read behind the vault's back.
func rawGet(t testing.TB, v *Vault, bucket byte, key []byte) []byte {
	t.Helper()
	var out []byte
	if err := v.db.View(func(tx kv.Tx) error {
		out = bytes.Clone(tx.Bucket([]byte{bucket}).Get(key))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if out == nil {
		t.Fatalf("no value under %c/%x", bucket, key)
	}
	return out
}

// rawEdit runs fn in a write transaction behind the vault's back.
func rawEdit(t testing.TB, v *Vault, fn func(tx kv.Tx) error) {
	t.Helper()
	rawWrites.Store(v, true)
	if err := v.db.Update(fn); err != nil {
		t.Fatal(err)
	}
}

// replayVault makes a vault with an allergy and a medication, as the
// tamper tests below start from.
func replayVault(t *testing.T) (tv *testVault, allergy, med record.Record) {
	t.Helper()
	tv = newTestVault(t)
	allergy = must(t)(record.NewAllergy(record.Common{}, record.Allergy{Substance: "Penicillin", Reaction: "hives", Severity: "severe"}))
	med = must(t)(record.NewMedication(record.Common{}, record.Medication{Name: "Warfarin", Dose: "5 mg", Start: time.Date(2025, 1, 2, 0, 0, 0, 0, time.UTC)}))
	cond := must(t)(record.NewCondition(record.Common{}, "Atrial fibrillation", time.Time{}, ""))
	if _, err := tv.Add([]record.Record{allergy, med, cond}); err != nil {
		t.Fatal(err)
	}
	var err error
	if allergy, err = tv.Get(allergy.ID); err != nil {
		t.Fatal(err)
	}
	if med, err = tv.Get(med.ID); err != nil {
		t.Fatal(err)
	}
	return tv, allergy, med
}

// TestReplayOfOneValue puts an older sealed value of a record back in
// its place, with the changes feed and kind index made to agree, as a
// careful attacker would: a deleted allergy returns, an edited dose
// reverts. The value opens (it is a genuine one of this place), so only
// the authenticated head can tell. Check, every full listing, every
// selection by kind and a fresh open followed by a listing report it.
func TestReplayOfOneValue(t *testing.T) {
	tests := []struct {
		name   string
		change func(t *testing.T, tv *testVault, allergy, med record.Record) (id string)
	}{
		{"a deleted allergy returns", func(t *testing.T, tv *testVault, allergy, _ record.Record) string {
			if err := tv.Delete(allergy.ID, 0); err != nil {
				t.Fatal(err)
			}
			return allergy.ID
		}},
		{"an edited dose reverts", func(t *testing.T, tv *testVault, _, med record.Record) string {
			res := strings.Replace(string(med.Resource), "5 mg", "2.5 mg", 1)
			med.Resource = json.RawMessage(res)
			if _, err := tv.Update(med, 0); err != nil {
				t.Fatal(err)
			}
			return med.ID
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tv, allergy, med := replayVault(t)
			id := allergy.ID
			if strings.Contains(tt.name, "dose") {
				id = med.ID
			}
			old, err := tv.Get(id)
			if err != nil {
				t.Fatal(err)
			}
			oldSealed := rawGet(t, tv.Vault, bucketRecords, keyOf(id))
			tt.change(t, tv, allergy, med)
			now, err := tv.Get(id)
			if err != nil {
				t.Fatal(err)
			}
			// Put the old value back, and make the changes feed and the
			// kind index say what they said then.
			rawEdit(t, tv.Vault, func(tx kv.Tx) error {
				rb, xb, _, cb := tv.buckets(tx)
				if err := rb.Put(keyOf(id), oldSealed); err != nil {
					return err
				}
				cb.Delete(seqKey(now.Seq))
				if err := cb.Put(seqKey(old.Seq), keyOf(id)); err != nil {
					return err
				}
				if xb == nil {
					return nil // format 4: no kind index
				}
				return xb.Put(tv.indexKey(old.Kind, keyOf(id)), nil)
			})
			// The value itself opens: it is a real one of this place.
			// Get does not return it: the listing index holds another
			// version at the record's place.
			var r record.Record
			tv.view(func(tx kv.Tx) error {
				r, err = tv.load(tx.Bucket([]byte{bucketRecords}), keyOf(id))
				return nil
			})
			if err != nil || r.Version != old.Version {
				t.Fatalf("replayed value: %v, version %d", err, r.Version)
			}
			if _, err := tv.Get(id); !errors.Is(err, ErrTampered) {
				t.Fatalf("Get of the replayed value = %v, want ErrTampered", err)
			}
			rep, err := tv.Check(false)
			if err != nil {
				t.Fatal(err)
			}
			if !hasProblem(rep, "records do not match the head") {
				t.Fatalf("check does not report the replay: %+v", rep.Problems)
			}
			tv.Close()
			// No read that selects records returns the replayed value,
			// in a fresh open (Open itself does not scan the records):
			// each fails with ErrTampered, or lists the record as the
			// listing index (authenticated through the head) has it,
			// which for a tombstone is not at all. Verify reports it.
			replayed := func(recs []record.Record) bool {
				for _, r := range recs {
					if r.ID == id && r.Version == old.Version {
						return true
					}
				}
				return false
			}
			for _, read := range []struct {
				name string
				fn   func(v *Vault) ([]record.Record, error)
			}{
				{"List", func(v *Vault) ([]record.Record, error) { return v.List(Query{}) }},
				{"List with a limit", func(v *Vault) ([]record.Record, error) { return v.List(Query{Limit: 10}) }},
				{"List by kind", func(v *Vault) ([]record.Record, error) { return v.List(Query{Kinds: []string{old.Kind}}) }},
				{"Verify", func(v *Vault) ([]record.Record, error) { return nil, v.Verify() }},
				{"Get", func(v *Vault) ([]record.Record, error) { r, err := v.Get(id); return []record.Record{r}, err }},
				{"Changes", func(v *Vault) ([]record.Record, error) {
					cs, _, err := v.Changes(0, 0)
					var recs []record.Record
					for _, c := range cs {
						recs = append(recs, c.Record)
					}
					return recs, err
				}},
				{"History", func(v *Vault) ([]record.Record, error) {
					hist, err := v.History(id)
					if err == nil && len(hist) > 0 && strings.Contains(tt.name, "allergy") {
						return []record.Record{old}, nil // a deleted record's history came back
					}
					return hist, err
				}},
				{"Backup", func(v *Vault) ([]record.Record, error) {
					n, err := v.Backup(io.Discard, []age.Recipient{tv.identity.Recipient()}, false)
					if err != nil {
						return nil, err
					}
					if live, _, _ := v.Count(); n != live {
						return []record.Record{old}, nil // more records than the vault holds
					}
					return nil, nil
				}},
			} {
				v, err := Open(tv.path, Identities(tv.identity), nil)
				if err != nil {
					t.Fatal(err)
				}
				recs, err := read.fn(v)
				switch {
				case err != nil && (!errors.Is(err, ErrTampered) || !errors.Is(err, ErrCorrupt)):
					t.Errorf("%s = %v, want ErrTampered", read.name, err)
				case err == nil && (read.name == "Verify" || replayed(recs)):
					t.Errorf("%s returned the replayed value", read.name)
				}
				v.Close()
			}
		})
	}
}

func hasProblem(rep *CheckReport, what string) bool {
	return slices.ContainsFunc(rep.Problems, func(p Problem) bool { return strings.Contains(p.What, what) })
}

// TestSealBindsVersion: a value's version is in its seal's additional
// data, so a header relabelled to another version fails to open, and a
// value whose seal and envelope disagree on the version is refused.
func TestSealBindsVersion(t *testing.T) {
	tv, _, med := replayVault(t)
	sealed := rawGet(t, tv.Vault, bucketRecords, keyOf(med.ID))
	if sealed[0] != sealV2 || sealedVersion(sealed) != 1 {
		t.Fatalf("seal version %d, value version %d", sealed[0], sealedVersion(sealed))
	}
	relabelled := bytes.Clone(sealed)
	relabelled[12] = 2 // version 1 -> 2
	if _, _, err := tv.keys.openInto(nil, nil, bucketRecords, keyOf(med.ID), relabelled); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("relabelled version opened: %v", err)
	}
	// Sealed as version 2 with the envelope of version 1.
	r, _ := tv.Get(med.ID)
	other := tv.keys.seal(bucketRecords, keyOf(med.ID), 2, encodeRecord(&r))
	rawEdit(t, tv.Vault, func(tx kv.Tx) error {
		return tx.Bucket([]byte{bucketRecords}).Put(keyOf(med.ID), other)
	})
	if _, err := tv.Get(med.ID); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("version mismatch: %v", err)
	}
}

// memHeads is a HeadStore in memory.
type memHeads struct {
	mu sync.Mutex
	m  map[string]Head
}

func (h *memHeads) SeenHead(id string) (Head, bool, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	x, ok := h.m[id]
	return x, ok, nil
}

func (h *memHeads) RememberHead(id string, x Head) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.m == nil {
		h.m = map[string]Head{}
	}
	h.m[id] = x
	return nil
}

// TestWholeFileRollback copies an old file back over the vault: it is
// consistent in itself (head and all), so only a device that remembers a
// newer head can tell, and it does, until the owner accepts the copy.
func TestWholeFileRollback(t *testing.T) {
	tv, allergy, _ := replayVault(t)
	tv.Close()
	heads := &memHeads{}
	open := func(opts Options) (*Vault, error) {
		opts.Heads = heads
		return Open(tv.path, Identities(tv.identity), &opts)
	}
	v, err := open(Options{})
	if err != nil {
		t.Fatal(err)
	}
	v.Close()
	old, err := os.ReadFile(tv.path)
	if err != nil {
		t.Fatal(err)
	}
	v, err = open(Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Delete(allergy.ID, 0); err != nil {
		t.Fatal(err)
	}
	v.Close()
	if err := os.WriteFile(tv.path, old, 0o600); err != nil {
		t.Fatal(err)
	}
	// The old file is a valid vault in itself...
	if v, err := Open(tv.path, Identities(tv.identity), nil); err != nil {
		t.Fatalf("old copy on its own: %v", err)
	} else {
		v.Close()
	}
	// ... but not for this device, read-only or not.
	for _, ro := range []bool{true, false} {
		_, err = open(Options{ReadOnly: ro})
		var rbe *RollbackError
		if !errors.Is(err, ErrRolledBack) || !errors.As(err, &rbe) || rbe.Found.Counter >= rbe.Seen.Counter {
			t.Fatalf("read-only %v: open of the old copy = %v", ro, err)
		}
		if !strings.Contains(err.Error(), "older than the one this device last saw") {
			t.Fatalf("message %q", err)
		}
	}
	// Accepted on purpose (a backup restored, say), it becomes the newest.
	v, err = open(Options{AcceptRollback: true})
	if err != nil {
		t.Fatal(err)
	}
	if r, err := v.Get(allergy.ID); err != nil || r.Deleted {
		t.Fatalf("accepted copy: %v", err)
	}
	v.Close()
	if v, err = open(Options{}); err != nil {
		t.Fatalf("after accepting: %v", err)
	}
	v.Close()
}

// TestRollbackToAnotherFileOfTheSameAge: a file with the same write count
// but other contents (another copy changed elsewhere) is not the one the
// device saw either.
func TestRollbackToAnotherFileOfTheSameAge(t *testing.T) {
	tv, allergy, med := replayVault(t)
	tv.Close()
	base, _ := os.ReadFile(tv.path)
	change := func(heads HeadStore, id string) {
		t.Helper()
		v, err := Open(tv.path, Identities(tv.identity), &Options{Heads: heads})
		if err != nil {
			t.Fatal(err)
		}
		if err := v.Delete(id, 0); err != nil {
			t.Fatal(err)
		}
		v.Close()
	}
	heads := &memHeads{}
	change(heads, allergy.ID) // what this device saw
	if err := os.WriteFile(tv.path, base, 0o600); err != nil {
		t.Fatal(err)
	}
	change(nil, med.ID) // another change to the same base, elsewhere
	if _, err := Open(tv.path, Identities(tv.identity), &Options{Heads: heads}); !errors.Is(err, ErrRolledBack) || !strings.Contains(err.Error(), "different contents") {
		t.Fatalf("other copy of the same age: %v", err)
	}
}

// TestSlotPutBack: a key slot that was removed (a lost device's) and is
// put back into the file would let that device open everything written
// since. Open refuses the file.
func TestSlotPutBack(t *testing.T) {
	tv := newTestVault(t)
	slots, _ := tv.Slots()
	var dev Slot
	for _, s := range slots {
		if s.Kind == SlotDevice {
			dev = s
		}
	}
	old := rawGet(t, tv.Vault, bucketSlots, []byte(dev.ID))
	if err := tv.RemoveSlot(dev.ID); err != nil {
		t.Fatal(err)
	}
	rawEdit(t, tv.Vault, func(tx kv.Tx) error {
		return tx.Bucket([]byte{bucketSlots}).Put([]byte(dev.ID), old)
	})
	tv.Close()
	for _, s := range []Secret{Identities(tv.identity), Passphrase("correct horse")} {
		if _, err := Open(tv.path, s, nil); !errors.Is(err, ErrTampered) || !strings.Contains(err.Error(), "key slots") {
			t.Fatalf("open with a slot put back = %v", err)
		}
	}
	v, err := Open(tv.path, Passphrase("correct horse"), &Options{Unverified: true, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	if rep, _ := v.Check(false); !hasProblem(rep, "key slots do not match the head") {
		t.Fatalf("check: %+v", rep.Problems)
	}
}

// TestHeadRemovedOrFormatLowered: deleting the head, or lowering the
// format version so that the head would be recomputed over tampered
// contents, is refused.
func TestHeadRemovedOrFormatLowered(t *testing.T) {
	for _, lower := range []bool{false, true} {
		tv, _, _ := replayVault(t)
		rawEdit(t, tv.Vault, func(tx kv.Tx) error {
			m := tx.Bucket([]byte{bucketMeta})
			if err := m.Delete([]byte(headKey)); err != nil {
				return err
			}
			if lower {
				return m.Put([]byte("version"), []byte{0, 0, 0, 2})
			}
			return nil
		})
		tv.Close()
		_, err := Open(tv.path, Identities(tv.identity), nil)
		if !errors.Is(err, ErrTampered) {
			t.Fatalf("lowered %v: open = %v", lower, err)
		}
		if lower && !strings.Contains(err.Error(), "format version was lowered") {
			t.Fatalf("message: %v", err)
		}
	}
}

// TestChangeSequenceLowered: the change sequence is in the head.
func TestChangeSequenceLowered(t *testing.T) {
	tv, _, _ := replayVault(t)
	rawEdit(t, tv.Vault, func(tx kv.Tx) error {
		return tx.Bucket([]byte{bucketChanges}).SetSequence(1)
	})
	tv.Close()
	if _, err := Open(tv.path, Identities(tv.identity), nil); !errors.Is(err, ErrTampered) || !strings.Contains(err.Error(), "change sequence") {
		t.Fatalf("open = %v", err)
	}
}

// TestListingNodePutBack: format 4 selects by kind through the listing
// index, whose nodes are sealed and named, with their versions, from the
// authenticated head down; there is no kind index left to steer. A node
// put back from an older copy of the file does not pass for the current
// one: every read through it fails with ErrTampered (no record is
// listed from it), and Check reports it.
func TestListingNodePutBack(t *testing.T) {
	tv := newTestVault(t)
	if rawGetOK(tv.Vault, bucketIndex) {
		t.Fatal("a format-4 vault has a kind index")
	}
	// Enough records that the changes are merged into the tree, twice.
	add := func(n int) {
		for start := 0; start < n; start += 500 {
			var recs []record.Record
			for i := range 500 {
				vt, err := record.ParseVital("hr", fmt.Sprint(50+(start+i)%100))
				if err != nil {
					t.Fatal(err)
				}
				recs = append(recs, must(t)(record.NewVital(record.Common{}, vt, time.Date(2020, 1, 1, 0, 0, start+i, 0, time.UTC))))
			}
			if _, err := tv.Add(recs); err != nil {
				t.Fatal(err)
			}
		}
	}
	add(listMergeAt)
	root := func() nodeRef {
		var ref nodeRef
		tv.view(func(tx kv.Tx) error {
			h, err := loadHead(tx, tv.keys)
			if err != nil {
				t.Fatal(err)
			}
			ref = h.list.root
			return nil
		})
		return ref
	}
	old := root()
	oldSealed := rawGet(t, tv.Vault, bucketListing, nodeKey(old.num))
	add(listMergeAt)
	if v := sealedVersion(rawGet(t, tv.Vault, bucketListing, nodeKey(old.num))); v <= old.version {
		t.Fatalf("node %d was not rewritten: version %d then %d", old.num, old.version, v)
	}
	if got, err := tv.List(Query{Kinds: []string{record.KindVital}, Limit: 5}); err != nil || len(got) != 5 {
		t.Fatalf("before: %d %v", len(got), err)
	}
	rawEdit(t, tv.Vault, func(tx kv.Tx) error {
		return tx.Bucket([]byte{bucketListing}).Put(nodeKey(old.num), oldSealed)
	})
	for _, q := range []Query{{}, {Kinds: []string{record.KindVital}}, {Oldest: true, Limit: 1}} {
		if got, err := tv.List(q); !errors.Is(err, ErrTampered) || len(got) != 0 {
			t.Fatalf("List(%+v) = %d records, %v", q, len(got), err)
		}
	}
	rep, err := tv.Check(false)
	if err != nil {
		t.Fatal(err)
	}
	if !hasProblem(rep, "the listing index do not match the head") || !hasProblem(rep, "parent names version") {
		t.Fatalf("check: %+v", rep.Problems)
	}
}

// rawGetOK reports whether the vault's file has a bucket.
func rawGetOK(v *Vault, bucket byte) bool {
	found := false
	v.db.View(func(tx kv.Tx) error {
		found = tx.Bucket([]byte{bucket}) != nil
		return nil
	})
	return found
}

// TestHeadUnderConcurrentWrites: writers of one open vault (phrd's
// requests) each keep the head right, whatever order bbolt runs them in.
func TestHeadUnderConcurrentWrites(t *testing.T) {
	tv := newTestVault(t)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 30 {
				r, err := record.NewNote(record.Common{}, fmt.Sprint("note ", w, " ", i), time.Time{})
				if err == nil {
					_, err = tv.Put(r)
				}
				if err == nil && i%3 == 0 {
					err = tv.SetSetting(fmt.Sprint("test.", w), []byte{byte(i)})
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if rep, err := tv.Check(false); err != nil || !rep.OK() || rep.Records != 240 {
		t.Fatalf("check: %v %+v", err, rep)
	}
}
