package vault

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/phr-project/phr/pkg/kv"
	"github.com/phr-project/phr/pkg/record"
	bolt "go.etcd.io/bbolt"
)

func init() { ScryptWorkFactor = 10 }

type testVault struct {
	*Vault
	path     string
	identity *age.X25519Identity
	code     string
}

// newTestVault creates a vault with a passphrase, a device and a recovery
// slot, and checks the file's consistency when the test ends.
func newTestVault(t testing.TB) *testVault {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "vault.phr")
	code := NewRecoveryCode()
	v, err := Create(path, []SlotSpec{
		{Kind: SlotPassphrase, Label: "passphrase", Passphrase: "correct horse"},
		{Kind: SlotDevice, Label: "laptop", Recipients: []age.Recipient{id.Recipient()}},
		{Kind: SlotRecovery, Label: "recovery", RecoveryCode: code},
	}, &Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	tv := &testVault{Vault: v, path: path, identity: id, code: code}
	t.Cleanup(func() {
		if err := v.db.View(func(tx kv.Tx) error {
			for err := range fileCheck(tx) {
				return err
			}
			// Every write path keeps the authenticated head up to
			// date, unless the test tampered with the file itself.
			if _, raw := rawWrites.Load(v); !raw && v.keys != nil && v.keys.aead != nil {
				if bad := v.headProblems(tx); len(bad) > 0 {
					return fmt.Errorf("head: %v", bad)
				}
			}
			return nil
		}); err != nil && !errors.Is(err, kv.ErrClosed) {
			t.Errorf("consistency check: %v", err)
		}
		v.Close()
	})
	return tv
}

// rawWrites holds the vaults a test wrote to behind the vault's back.
var rawWrites sync.Map

// must adapts a builder's (Record, error) result for tests.
func must(t testing.TB) func(record.Record, error) record.Record {
	return func(r record.Record, err error) record.Record {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
}

func TestOpenWithEachSlot(t *testing.T) {
	tv := newTestVault(t)
	tv.Close()
	other, _ := age.GenerateX25519Identity()
	tests := []struct {
		name   string
		secret Secret
		want   error
	}{
		{"passphrase", Passphrase("correct horse"), nil},
		{"device", Identities(tv.identity), nil},
		{"recovery", RecoveryCode(tv.code), nil},
		{"recovery lower case without dashes", RecoveryCode(lowerNoDash(tv.code)), nil},
		{"wrong passphrase", Passphrase("wrong horse"), ErrWrongKey},
		{"other device", Identities(other), ErrWrongKey},
		{"wrong recovery code", RecoveryCode(NewRecoveryCode()), ErrWrongKey},
		{"malformed recovery code", RecoveryCode("not-a-code"), ErrWrongKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := Open(tv.path, tt.secret, nil)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Open = %v, want %v", err, tt.want)
			}
			if err == nil {
				if v.ID() != tv.ID() {
					t.Errorf("ID = %s, want %s", v.ID(), tv.ID())
				}
				v.Close()
			}
		})
	}
}

func lowerNoDash(s string) string {
	return string(bytes.ToLower(bytes.ReplaceAll([]byte(s), []byte("-"), nil)))
}

func TestCreateRefusesExisting(t *testing.T) {
	tv := newTestVault(t)
	before := fileHash(t, tv.path)
	_, err := Create(tv.path, []SlotSpec{{Kind: SlotPassphrase, Passphrase: "x"}}, nil)
	if !errors.Is(err, ErrExists) {
		t.Fatalf("Create over existing = %v, want ErrExists", err)
	}
	if fileHash(t, tv.path) != before {
		t.Fatal("existing vault was modified")
	}
}

func fileHash(t testing.TB, path string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

func TestVault_Confidential(t *testing.T) {
	tv := newTestVault(t)
	c := record.Common{Subject: "Patient/x", Now: time.Date(2026, 3, 14, 9, 26, 0, 0, time.UTC)}
	recs := []record.Record{
		must(t)(record.NewMedication(c, record.Medication{Name: "Zyloprimexa", Dose: "300 mg", Frequency: "once daily", Reason: "Gouty arthritis"})),
		must(t)(record.NewSymptom(c, record.Symptom{Name: "Migrainous aura", Severity: 7, Note: "after espresso"})),
		must(t)(record.NewAllergy(c, record.Allergy{Substance: "Penicillinase", Reaction: "Hives"})),
	}
	imp := must(t)(record.New([]byte(`{"resourceType":"Condition","id":"c1","code":{"text":"Sarcoidosis"}}`),
		record.Provenance{Method: record.MethodImported, Importer: "fhir", System: "St. Elsewhere Clinic", OriginalID: "c1", File: "export-alice.json"}))
	recs = append(recs, imp)
	if _, err := tv.Add(recs); err != nil {
		t.Fatal(err)
	}
	if err := tv.SetSetting("patient", []byte("Alice Wonderland")); err != nil {
		t.Fatal(err)
	}
	tv.Close()
	raw, err := os.ReadFile(tv.path)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"Zyloprimexa", "300 mg", "Gouty", "Migrainous", "espresso", "Penicillinase", "Hives", "Sarcoidosis",
		"St. Elsewhere", "export-alice", "Alice", "2026-03-14", "MedicationStatement", "Observation", "Condition", "AllergyIntolerance",
		"medication", "symptom", "laptop", "resourceType", "http://loinc.org", "snomed", "self-entered", "imported"} {
		if bytes.Contains(bytes.ToLower(raw), bytes.ToLower([]byte(s))) {
			t.Errorf("raw vault file contains %q", s)
		}
	}
}

func TestVault_Integrity(t *testing.T) {
	tv := newTestVault(t)
	r := must(t)(record.NewNote(record.Common{}, "hello", time.Time{}))
	res, err := tv.Put(r)
	if err != nil {
		t.Fatal(err)
	}
	// Flip each byte position class of the sealed value: header, nonce,
	// ciphertext, tag.
	var sealed []byte
	tv.db.View(func(tx kv.Tx) error {
		sealed = append([]byte(nil), tx.Bucket([]byte{bucketRecords}).Get(keyOf(res.ID))...)
		return nil
	})
	for _, pos := range []int{0, 2, 10, 40, len(sealed) - 1} {
		t.Run(fmt.Sprint(pos), func(t *testing.T) {
			bad := append([]byte(nil), sealed...)
			bad[pos] ^= 0x01
			putRaw(t, tv.Vault, bucketRecords, keyOf(res.ID), bad)
			if _, err := tv.Get(res.ID); !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrNewerVersion) {
				t.Fatalf("Get of tampered record = %v, want ErrCorrupt", err)
			}
		})
	}
}

func putRaw(t testing.TB, v *Vault, bucket byte, key, val []byte) {
	t.Helper()
	rawWrites.Store(v, true)
	if err := v.db.Update(func(tx kv.Tx) error { return tx.Bucket([]byte{bucket}).Put(key, val) }); err != nil {
		t.Fatal(err)
	}
}

func TestVault_MoveIntegrity(t *testing.T) {
	tv := newTestVault(t)
	a, _ := tv.Put(must(t)(record.NewNote(record.Common{}, "note a", time.Time{})))
	b, _ := tv.Put(must(t)(record.NewNote(record.Common{}, "note b", time.Time{})))
	var sealedA []byte
	tv.db.View(func(tx kv.Tx) error {
		sealedA = append([]byte(nil), tx.Bucket([]byte{bucketRecords}).Get(keyOf(a.ID))...)
		return nil
	})
	putRaw(t, tv.Vault, bucketRecords, keyOf(b.ID), sealedA)
	if _, err := tv.Get(b.ID); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("record moved to another ID opened: %v", err)
	}
	// The same value in another vault does not open either.
	tv2 := newTestVault(t)
	putRaw(t, tv2.Vault, bucketRecords, keyOf(a.ID), sealedA)
	if _, err := tv2.Get(a.ID); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("record moved to another vault opened: %v", err)
	}
}

func TestAddDedupAndAtomicity(t *testing.T) {
	tv := newTestVault(t)
	prov := record.Provenance{Method: record.MethodImported, Importer: "fhir", System: "Clinic A", FileSHA256: "ab"}
	mk := func(id string) record.Record {
		p := prov
		p.OriginalID = id
		return must(t)(record.New([]byte(`{"resourceType":"Condition","id":"`+id+`","code":{"text":"Asthma"}}`), p))
	}
	res, err := tv.Add([]record.Record{mk("1"), mk("2"), mk("1")})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Duplicate || res[1].Duplicate || !res[2].Duplicate || res[2].ID != res[0].ID {
		t.Fatalf("first import results = %+v", res)
	}
	res, err = tv.Add([]record.Record{mk("1"), mk("2"), mk("3")})
	if err != nil {
		t.Fatal(err)
	}
	if !res[0].Duplicate || !res[1].Duplicate || res[2].Duplicate {
		t.Fatalf("second import results = %+v", res)
	}
	// Same content from another source is kept.
	other := mk("1")
	other.Provenance.System = "Clinic B"
	if r, _ := tv.Put(other); r.Duplicate {
		t.Fatal("same record from another source was merged")
	}
	// Self-entered records are never merged.
	n := must(t)(record.NewDose(record.Common{Now: time.Unix(0, 0)}, record.Dose{Name: "Ibuprofen"}))
	n2 := n
	n2.ID = ""
	res, _ = tv.Add([]record.Record{n, n2})
	if res[0].Duplicate || res[1].Duplicate {
		t.Fatal("self-entered doses were merged")
	}
	// A batch that fails inside the transaction writes nothing.
	before, _, _ := tv.Count()
	seqBefore, _ := tv.LastSeq()
	clash := n           // a self-entered record keeps the ID it is given
	clash.ID = res[0].ID // already used
	if _, err := tv.Add([]record.Record{mk("7"), mk("8"), clash}); err == nil {
		t.Fatal("Add with an ID clash succeeded")
	}
	after, _, _ := tv.Count()
	seqAfter, _ := tv.LastSeq()
	if after != before || seqAfter != seqBefore {
		t.Fatalf("failed batch wrote: count %d -> %d, seq %d -> %d", before, after, seqBefore, seqAfter)
	}
}

func TestUpdateDeleteChanges(t *testing.T) {
	tv := newTestVault(t)
	c := record.Common{}
	a, _ := tv.Put(must(t)(record.NewCondition(c, "Asthma", time.Time{}, "")))
	b, _ := tv.Put(must(t)(record.NewCondition(c, "Eczema", time.Time{}, "")))
	changes, next, err := tv.Changes(0, 0)
	if err != nil || len(changes) != 2 || next != 2 {
		t.Fatalf("Changes(0) = %d changes, next %d, %v", len(changes), next, err)
	}
	ra, _ := tv.Get(a.ID)
	edited := must(t)(record.NewCondition(c, "Allergic asthma", time.Time{}, ""))
	edited.ID = a.ID
	up, err := tv.Update(edited, ra.Version)
	if err != nil {
		t.Fatal(err)
	}
	if up.Version != 2 || up.Display != "Allergic asthma" {
		t.Fatalf("updated = v%d %q", up.Version, up.Display)
	}
	if _, err := tv.Update(edited, 1); !errors.Is(err, ErrConflict) {
		t.Fatalf("stale update = %v, want ErrConflict", err)
	}
	if err := tv.Delete(b.ID, 0); err != nil {
		t.Fatal(err)
	}
	if err := tv.Delete(b.ID, 0); !errors.Is(err, ErrDeleted) {
		t.Fatalf("second delete = %v", err)
	}
	changes, next, _ = tv.Changes(2, 0)
	if len(changes) != 2 || changes[0].Record.ID != a.ID || !changes[1].Record.Deleted || next != 4 {
		t.Fatalf("Changes(2) = %+v next %d", changes, next)
	}
	if len(changes[1].Record.Resource) != 0 || changes[1].Record.Display != "" {
		t.Fatal("tombstone keeps content")
	}
	// Each record appears once, at its latest change.
	all, _, _ := tv.Changes(0, 0)
	if len(all) != 2 {
		t.Fatalf("Changes(0) after edits = %d entries, want 2", len(all))
	}
	page, next, _ := tv.Changes(0, 1)
	if len(page) != 1 || next != page[0].Seq {
		t.Fatalf("limited page = %d, next %d", len(page), next)
	}
	live, _ := tv.List(Query{Kinds: []string{record.KindCondition}})
	if len(live) != 1 || live[0].ID != a.ID {
		t.Fatalf("list after delete = %d records", len(live))
	}
}

func TestList(t *testing.T) {
	tv := newTestVault(t)
	day := func(d int) time.Time { return time.Date(2026, 1, d, 12, 0, 0, 0, time.UTC) }
	c := record.Common{}
	var recs []record.Record
	for d := 1; d <= 10; d++ {
		v, _ := record.ParseVital("hr", fmt.Sprint(60+d))
		recs = append(recs, must(t)(record.NewVital(c, v, day(d))))
		recs = append(recs, must(t)(record.NewSymptom(c, record.Symptom{Name: fmt.Sprintf("Headache %d", d), Severity: d % 11, At: day(d)})))
	}
	recs = append(recs, must(t)(record.NewMedication(c, record.Medication{Name: "Metformin", Start: day(3)})))
	recs = append(recs, must(t)(record.New([]byte(`{"resourceType":"Observation","status":"final","category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"laboratory"}]}],"code":{"text":"HbA1c"},"effectiveDateTime":"2026-01-05"}`),
		record.Provenance{Method: record.MethodImported, Importer: "ccda", System: "Mercy Lab", File: "labs.xml"})))
	if _, err := tv.Add(recs); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		q    Query
		want int
	}{
		{"all", Query{}, 22},
		{"vitals", Query{Kinds: []string{"vital"}}, 10},
		{"vitals and symptoms", Query{Kinds: []string{"vital", "symptom"}}, 20},
		{"medication", Query{Kinds: []string{"medication"}}, 1},
		{"lab", Query{Kinds: []string{"lab"}}, 1},
		{"unknown kind", Query{Kinds: []string{"careplan"}}, 0},
		{"since", Query{Kinds: []string{"vital"}, Since: day(8)}, 3},
		{"until", Query{Kinds: []string{"vital"}, Until: day(3)}, 2},
		{"range", Query{Since: day(2), Until: day(4)}, 5},
		{"source", Query{Source: "mercy"}, 1},
		{"source self", Query{Source: "self"}, 21},
		{"text display", Query{Text: "headache 1"}, 2},
		{"text resource", Query{Text: "hba1c"}, 1},
		{"limit", Query{Limit: 5}, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tv.List(tt.q)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != tt.want {
				t.Fatalf("got %d records, want %d", len(got), tt.want)
			}
			for i := 1; i < len(got); i++ {
				if !got[i].Date.IsZero() && got[i].Date.After(got[i-1].Date) {
					t.Fatal("not sorted newest first")
				}
			}
		})
	}
}

func TestNoteTextSearch(t *testing.T) {
	tv := newTestVault(t)
	long := "Started new routine. " + string(bytes.Repeat([]byte("x "), 200)) + " Felt dizzy after the third day."
	tv.Put(must(t)(record.NewNote(record.Common{}, long, time.Time{})))
	got, _ := tv.List(Query{Text: "DIZZY"})
	if len(got) != 1 {
		t.Fatalf("search in note body found %d", len(got))
	}
}

func TestLocked(t *testing.T) {
	tv := newTestVault(t)
	start := time.Now()
	_, err := Open(tv.path, Identities(tv.identity), &Options{LockTimeout: 200 * time.Millisecond})
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open = %v, want ErrLocked", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("waited %v", d)
	}
}

func TestRefusals(t *testing.T) {
	tv := newTestVault(t)
	tv.Put(must(t)(record.NewNote(record.Common{}, "hello", time.Time{})))
	tv.Close()
	good, err := os.ReadFile(tv.path)
	if err != nil {
		t.Fatal(err)
	}
	newer := filepath.Join(t.TempDir(), "newer.phr")
	os.WriteFile(newer, good, 0o600)
	db, _ := bolt.Open(newer, 0o600, nil)
	db.Update(func(tx *bolt.Tx) error {
		var ver [4]byte
		binary.BigEndian.PutUint32(ver[:], FormatVersion+1)
		return tx.Bucket([]byte{bucketMeta}).Put([]byte("version"), ver[:])
	})
	db.Close()

	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name string
		path string
		want error
	}{
		{"truncated", write("trunc.phr", good[:len(good)/2]), ErrCorrupt},
		{"truncated header", write("short.phr", good[:40]), ErrNotVault},
		{"empty", write("empty.phr", nil), ErrNotVault},
		{"garbage", write("garbage.phr", bytes.Repeat([]byte("phr!"), 4096)), ErrNotVault},
		{"newer version", newer, ErrNewerVersion},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := fileHash(t, tt.path)
			v, err := Open(tt.path, Passphrase("correct horse"), &Options{LockTimeout: time.Second})
			if err == nil {
				v.Close()
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("Open = %v, want %v", err, tt.want)
			}
			if fileHash(t, tt.path) != before {
				t.Fatal("refused file was modified")
			}
		})
	}
}

func TestCorruptPages(t *testing.T) {
	// Damage every page after the meta pages in turn: Open or reading must
	// fail with an error, never panic or fault.
	tv := newTestVault(t)
	var recs []record.Record
	for i := 0; i < 50; i++ {
		recs = append(recs, must(t)(record.NewNote(record.Common{}, fmt.Sprint("note ", i), time.Time{})))
	}
	tv.Add(recs)
	tv.Close()
	good, _ := os.ReadFile(tv.path)
	ps := int(binary.LittleEndian.Uint32(good[24:]))
	for off := 2 * ps; off < len(good); off += ps {
		bad := append([]byte(nil), good...)
		for i := off; i < off+64 && i < len(bad); i++ {
			bad[i] ^= 0xA5
		}
		p := filepath.Join(t.TempDir(), "bad.phr")
		os.WriteFile(p, bad, 0o600)
		v, err := Open(p, Identities(tv.identity), &Options{ReadOnly: true})
		if err != nil {
			continue
		}
		v.List(Query{})
		v.Changes(0, 0)
		v.Close()
	}
}

func TestSlots(t *testing.T) {
	tv := newTestVault(t)
	slots, err := tv.Slots()
	if err != nil || len(slots) != 3 {
		t.Fatalf("Slots = %v, %v", slots, err)
	}
	s, err := tv.AddSlot(SlotSpec{Kind: SlotPassphrase, Label: "second", Passphrase: "other words"})
	if err != nil {
		t.Fatal(err)
	}
	for _, sl := range slots {
		if err := tv.RemoveSlot(sl.ID); err != nil {
			t.Fatal(err)
		}
	}
	if err := tv.RemoveSlot(s.ID); !errors.Is(err, ErrLastSlot) {
		t.Fatalf("removing last slot = %v", err)
	}
	tv.Close()
	if _, err := Open(tv.path, Passphrase("correct horse"), nil); !errors.Is(err, ErrWrongKey) {
		t.Fatalf("removed passphrase still opens: %v", err)
	}
	v, err := Open(tv.path, Passphrase("other words"), nil)
	if err != nil {
		t.Fatal(err)
	}
	v.Close()
}

func TestResolve(t *testing.T) {
	tv := newTestVault(t)
	var recs []record.Record
	for i := 0; i < 300; i++ {
		recs = append(recs, must(t)(record.NewNote(record.Common{}, fmt.Sprint("n", i), time.Time{})))
	}
	tv.Add(recs)
	for _, r := range recs[:20] {
		got, err := tv.Resolve(r.ID[:8])
		if err != nil || got != r.ID {
			t.Fatalf("Resolve(%s) = %s, %v", r.ID[:8], got, err)
		}
		if got, err := tv.Resolve(strings.ToUpper(r.ID)); err != nil || got != r.ID {
			t.Fatalf("Resolve(full upper) = %s, %v", got, err)
		}
	}
	if _, err := tv.Resolve("abc"); !errors.Is(err, ErrNotFound) {
		t.Errorf("3-char prefix = %v, want ErrNotFound", err)
	}
	if _, err := tv.Resolve("zzzzzzzzzzzzzzzz"); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown = %v", err)
	}
	// Two IDs with a common 4-char prefix are ambiguous at 4 chars.
	seen := map[string]string{}
	for _, r := range recs {
		if other, ok := seen[r.ID[:4]]; ok && other != r.ID {
			if _, err := tv.Resolve(r.ID[:4]); !errors.Is(err, ErrAmbiguous) {
				t.Errorf("shared prefix %s = %v, want ErrAmbiguous", r.ID[:4], err)
			}
			break
		}
		seen[r.ID[:4]] = r.ID
	}
}

// TestListingIndexAgrees checks that listings with a limit (answered from
// the in-memory listing index) match listings without one (which unseal
// everything), across adds, updates, deletes, purges and rotation.
func TestListingIndexAgrees(t *testing.T) {
	tv := newTestVault(t)
	recs := fill(t, tv.Vault, 90)
	compare := func(stage string) {
		t.Helper()
		day := func(d int) time.Time { return time.Unix(int64(d)*24*3600, 0) }
		for _, q := range []Query{
			{}, {Oldest: true}, {Kinds: []string{record.KindSymptom}}, {Kinds: []string{record.KindCondition, record.KindNote}, Oldest: true},
			{Since: day(1), Until: day(3)}, {IncludeDeleted: true}, {Kinds: []string{"medication"}},
		} {
			for _, limit := range []int{1, 7, 1000} {
				all, err := tv.List(q)
				if err != nil {
					t.Fatal(err)
				}
				if len(all) > limit {
					all = all[:limit]
				}
				q.Limit = limit
				fast, err := tv.List(q)
				if err != nil {
					t.Fatal(err)
				}
				if len(fast) != len(all) {
					t.Fatalf("%s %+v: %d records with the index, %d without", stage, q, len(fast), len(all))
				}
				for i := range all {
					if fast[i].ID != all[i].ID || fast[i].Version != all[i].Version {
						t.Fatalf("%s %+v: record %d differs", stage, q, i)
					}
				}
				q.Limit = 0
			}
		}
	}
	compare("fresh")
	fill(t, tv.Vault, 10)
	compare("after add")
	edited := recs[0]
	edited.Resource = []byte(`{"resourceType":"Condition","code":{"text":"changed"},"onsetDateTime":"2001-01-01"}`)
	if _, err := tv.Update(edited, 0); err != nil {
		t.Fatal(err)
	}
	tv.Delete(recs[1].ID, 0)
	compare("after update and delete")
	tv.Purge([]string{recs[2].ID})
	compare("after purge")
	if err := tv.Rotate(RotateOptions{Passphrase: "correct horse", RecoveryCode: NewRecoveryCode()}); err != nil {
		t.Fatal(err)
	}
	compare("after rotate")
}

// TestIDRunsPerVault: IDs share their run part only within one vault.
// Two vaults written alternately by one process (as phrd writes its
// accounts') never share a run, and within a vault a batch's records
// share one (the B+tree locality of docs/format.md).
func TestIDRunsPerVault(t *testing.T) {
	a, b := newTestVault(t), newTestVault(t)
	runs := map[*Vault]map[string]int{a.Vault: {}, b.Vault: {}}
	for i := range 10 {
		for _, v := range []*Vault{a.Vault, b.Vault} {
			recs := importRecs(t, fileSHA(fmt.Sprint(i)), 0, 20)
			for j := range recs { // as an importer made them
				recs[j].ID = record.NewID()
			}
			res, err := v.Add(recs)
			if err != nil {
				t.Fatal(err)
			}
			for j, r := range res {
				if r.ID != recs[j].ID {
					t.Fatalf("result %s, record %s", r.ID, recs[j].ID)
				}
				runs[v][r.ID[8:]]++
			}
		}
	}
	for run := range runs[a.Vault] {
		if runs[b.Vault][run] > 0 {
			t.Fatalf("run %s in both vaults", run)
		}
	}
	if len(runs[a.Vault]) > 5 { // 200 records, runs of 64
		t.Fatalf("%d runs for 200 imported records", len(runs[a.Vault]))
	}
	// IDs made outside a vault share nothing.
	seen := map[string]bool{}
	for range 1000 {
		id := record.NewID()
		if seen[id[8:]] || seen[id[:8]] {
			t.Fatalf("NewID repeats a part: %s", id)
		}
		seen[id[8:]], seen[id[:8]] = true, true
	}
}
