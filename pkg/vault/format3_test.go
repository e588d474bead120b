package vault

import (
	"bytes"
	"testing"
	"time"

	"github.com/phr-project/phr/pkg/kv"
	"github.com/phr-project/phr/pkg/record"
)

// checkFixture3 checks what the frozen format-3 vault holds, whatever
// format it has been upgraded to.
func checkFixture3(t *testing.T, v *Vault) {
	t.Helper()
	all, err := v.List(Query{IncludeDeleted: true})
	if err != nil || len(all) != 8 {
		t.Fatalf("fixture: %d records, %v", len(all), err)
	}
	if rep, err := v.Check(false); err != nil || !rep.OK() || rep.Records != 7 || rep.Tombstones != 1 {
		t.Fatalf("check: %v %+v", err, rep)
	}
	newest, err := v.List(Query{Limit: 3})
	if err != nil || len(newest) != 3 {
		t.Fatalf("newest: %d %v", len(newest), err)
	}
	var got []string
	for _, r := range newest {
		got = append(got, r.Display+"|"+r.When().Raw)
	}
	want := []string{"Heart rate: 72 bpm|2026-11-20T08:30:00Z", "Ibuprofen — 200 mg — stopped|2026-11-01", "Influenza|2020-10-02"}
	for i := range want {
		if i >= len(got) || got[i] != want[i] {
			t.Fatalf("newest: %q, want %q", got, want)
		}
	}
	imms, err := v.List(Query{Kinds: []string{record.KindImmunization}})
	if err != nil || len(imms) != 1 || imms[0].Version != 2 {
		t.Fatalf("immunizations: %+v %v", imms, err)
	}
	hist, err := v.History(imms[0].ID)
	if err != nil || len(hist) != 1 || hist[0].Version != 1 || hist[0].When().Raw != "2020-10-01" {
		t.Fatalf("history: %+v %v", hist, err)
	}
	if p, err := v.Patient(); err != nil || p.Display != "Fixture Person" {
		t.Fatalf("patient: %+v %v", p, err)
	}
}

// The frozen format-3 vault opens read-only without a change to the
// file.
func TestFormat3Vault(t *testing.T) {
	path := copyFixture(t, "v3/vault-v3.phr")
	before := fileHash(t, path)
	ro, err := Open(path, Identities(fixtureIdentities(t, "v3")...), &Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if ver, _ := formatVersion(t, ro); ver != 3 {
		t.Fatalf("fixture: version %d", ver)
	}
	checkFixture3(t, ro)
	ro.Close()
	if fileHash(t, path) != before {
		t.Fatal("a read-only open changed the file")
	}
}

// Opened for writing, the frozen format-3 vault is upgraded to format 4:
// the listing index is built from its records, the kind index dropped,
// and nothing else rewritten; what it held reads the same, and a record
// written then is compressed.
func TestFormat3Upgrade(t *testing.T) {
	path := copyFixture(t, "v3/vault-v3.phr")
	v, err := Open(path, Identities(fixtureIdentities(t, "v3")...), &Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	if ver, _ := formatVersion(t, v); ver != 4 {
		t.Fatalf("after upgrade: version %d", ver)
	}
	if rawGetOK(v, bucketIndex) || !rawGetOK(v, bucketListing) {
		t.Fatal("after upgrade: the kind index is still there, or the listing index is not")
	}
	checkFixture3(t, v)
	var entries []Entry
	if err := v.Entries(Query{IncludeDeleted: true}, func(e Entry) error { entries = append(entries, e); return nil }); err != nil || len(entries) != 8 {
		t.Fatalf("entries: %d %v", len(entries), err)
	}
	all, err := v.List(Query{IncludeDeleted: true})
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range all {
		e := entries[i]
		if e.Summary() != r.Summarize() || e.Deleted != r.Deleted || !e.Date.Equal(r.Date) {
			t.Fatalf("entry %d: %+v, record %+v", i, e.Summary(), r.Summarize())
		}
	}
	if live, deleted, err := v.Count(); err != nil || live != 7 || deleted != 1 {
		t.Fatalf("count: %d %d %v", live, deleted, err)
	}
	if rep, err := v.CheckDeep(false); err != nil || !rep.OK() {
		t.Fatalf("deep check after the upgrade: %v %+v", err, rep)
	}
	// The fingerprints stored by format 3 (keyed by day) still find what
	// they fingerprint: each imported record imported again is a
	// duplicate, with the identity index (which finds it another way)
	// emptied first.
	if err := v.db.Update(func(tx kv.Tx) error {
		if err := tx.DeleteBucket([]byte{bucketIdentity}); err != nil {
			return err
		}
		_, err := tx.CreateBucket([]byte{bucketIdentity})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, r := range all {
		if r.Deleted || r.Provenance.Method != record.MethodImported {
			continue
		}
		again := must(t)(record.New(r.Resource, r.Provenance))
		if in, _ := record.Fingerprint(&again); in == nil {
			continue
		}
		if got, err := v.DryAdd([]record.Record{again}); err != nil || !got[0].Duplicate || got[0].ID != r.ID {
			t.Fatalf("%s again: %+v %v", r.ResourceType, got, err)
		}
		checked++
	}
	if checked < 3 {
		t.Fatalf("only %d imported records", checked)
	}
	// The records were not rewritten: their plaintext is the format-3
	// envelope.
	if pt := rawPlain(t, v, keyOf(all[0].ID)); pt[0] != envelopeVersion {
		t.Fatalf("the upgrade rewrote a record (plaintext form %d)", pt[0])
	}
	r := must(t)(record.NewNote(record.Common{}, "written after the upgrade, long enough to be worth compressing: "+string(bytes.Repeat([]byte("abc "), 40)), time.Time{}))
	res, err := v.Put(r)
	if err != nil {
		t.Fatal(err)
	}
	if pt := rawPlain(t, v, keyOf(res.ID)); pt[0] != plainS2 {
		t.Fatalf("a record written after the upgrade is not compressed (form %d)", pt[0])
	}
	if rep, err := v.Check(false); err != nil || !rep.OK() || rep.Records != 8 {
		t.Fatalf("check after a write: %v %+v", err, rep)
	}
	v.Close()
	// And again, read-only, with the device identity.
	ro, err := Open(path, Identities(fixtureIdentities(t, "v3")...), &Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if got, err := ro.List(Query{Limit: 1}); err != nil || len(got) != 1 || got[0].ID != res.ID {
		t.Fatalf("newest after reopening: %+v %v", got, err)
	}
}

// rawPlain returns a record's unsealed plaintext as stored.
func rawPlain(t *testing.T, v *Vault, key []byte) []byte {
	t.Helper()
	pt, err := v.keys.open(bucketRecords, key, rawGet(t, v, bucketRecords, key))
	if err != nil {
		t.Fatal(err)
	}
	return pt
}
