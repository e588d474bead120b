package vault

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/phr-project/phr/pkg/kv"
	"github.com/phr-project/phr/pkg/record"
)

// sample is an imported record deduplicated by content, as Apple Health
// samples are.
func sample(t testing.TB, code, when string, value int) record.Record {
	t.Helper()
	return must(t)(record.New([]byte(fmt.Sprintf(`{"resourceType":"Observation","status":"final","code":{"text":%q},"effectiveDateTime":%q,"valueQuantity":{"value":%d,"unit":"/min"}}`, code, when, value)),
		record.Provenance{Method: record.MethodImported, Importer: "apple-health", System: "Apple Health", FileSHA256: fileSHA("export.xml")}))
}

// fingerprintKeyOf is the dedup index key the vault uses for r.
func fingerprintKeyOf(v *Vault, r *record.Record) []byte {
	in, cl := record.Fingerprint(r)
	if in == nil {
		return nil
	}
	return v.keys.fingerprintKey(in, cl)
}

func TestFingerprintClusters(t *testing.T) {
	tv := newTestVault(t)
	base := sample(t, "Heart rate", "2024-03-05T08:00:00Z", 60)
	byID := func(id, value string) record.Record {
		return must(t)(record.New([]byte(`{"resourceType":"Observation","id":"`+id+`","code":{"text":"Glucose"},"effectiveDateTime":"2024-03-05","valueString":"`+value+`"}`),
			record.Provenance{Method: record.MethodImported, Importer: "fhir", System: "Clinic", OriginalID: id}))
	}
	tests := []struct {
		name        string
		a, b        record.Record
		sameCluster bool
	}{
		{"same type and day, other value", base, sample(t, "Heart rate", "2024-03-05T21:30:00Z", 75), true},
		{"same type and day, other code", base, sample(t, "Steps", "2024-03-05T09:00:00Z", 75), true},
		{"next day", base, sample(t, "Heart rate", "2024-03-06T08:00:00Z", 60), false},
		{"same day, other source", base, must(t)(record.New(base.Resource, record.Provenance{Method: record.MethodImported, Importer: "fhir", FileSHA256: fileSHA("x")})), false},
		{"same day, other type", base, must(t)(record.New([]byte(`{"resourceType":"Procedure","code":{"text":"x"},"performedDateTime":"2024-03-05T08:00:00Z"}`), base.Provenance)), false},
		{"records with source ids cluster by content too", byID("a", "1"), byID("b", "2"), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ka, kb := fingerprintKeyOf(tv.Vault, &tt.a), fingerprintKeyOf(tv.Vault, &tt.b)
			if len(ka) != fpKeyLen || len(kb) != fpKeyLen {
				t.Fatalf("key lengths %d, %d; want %d", len(ka), len(kb), fpKeyLen)
			}
			if bytes.Equal(ka, kb) {
				t.Fatal("different records have the same fingerprint key")
			}
			if got := bytes.Equal(ka[:8], kb[:8]); got != tt.sameCluster {
				t.Errorf("same cluster prefix = %v, want %v", got, tt.sameCluster)
			}
		})
	}

	// Identifiers never make two records one, nor do other ids make one
	// record two: the fingerprint is of content only.
	same1, same2 := byID("a", "1"), byID("b", "1")
	if !bytes.Equal(fingerprintKeyOf(tv.Vault, &same1), fingerprintKeyOf(tv.Vault, &same2)) {
		t.Error("equal content under two source ids has two fingerprints")
	}
	diff1, diff2 := byID("a", "1"), byID("a", "2")
	if bytes.Equal(fingerprintKeyOf(tv.Vault, &diff1), fingerprintKeyOf(tv.Vault, &diff2)) {
		t.Error("other content under one source id has one fingerprint")
	}

	// The prefix is keyed: another vault clusters the same records under
	// other prefixes.
	other := newTestVault(t)
	if bytes.Equal(fingerprintKeyOf(tv.Vault, &base)[:8], fingerprintKeyOf(other.Vault, &base)[:8]) {
		t.Error("two vaults share a cluster prefix")
	}
}

// makeLegacy turns tv into a format-1 vault: version 1, every fingerprint
// under its format-1 key.
func makeLegacy(t *testing.T, tv *testVault) {
	t.Helper()
	downgrade(t, tv, 1)
	rawWrites.Store(tv.Vault, true)
	err := tv.db.Update(func(tx kv.Tx) error {
		rb, _, fb, _ := tv.buckets(tx)
		type kv struct{ k, v []byte }
		var all []kv
		fb.ForEach(func(k, val []byte) error {
			all = append(all, kv{append([]byte(nil), k...), append([]byte(nil), val...)})
			return nil
		})
		for _, e := range all {
			r, err := tv.load(rb, e.v)
			if err != nil {
				return err
			}
			in, _ := record.Fingerprint(&r)
			if err := fb.Delete(e.k); err != nil {
				return err
			}
			if err := fb.Put(tv.keys.fingerprint(in), e.v); err != nil {
				return err
			}
		}
		var ver [4]byte
		binary.BigEndian.PutUint32(ver[:], 1)
		return tx.Bucket([]byte{bucketMeta}).Put([]byte("version"), ver[:])
	})
	if err != nil {
		t.Fatal(err)
	}
}

// fingerprintKeyLens counts the dedup index's keys by length.
func fingerprintKeyLens(t *testing.T, v *Vault) map[int]int {
	t.Helper()
	n := map[int]int{}
	v.view(func(tx kv.Tx) error {
		return tx.Bucket([]byte{bucketFinger}).ForEach(func(k, _ []byte) error {
			n[len(k)]++
			return nil
		})
	})
	return n
}

func formatVersion(t *testing.T, v *Vault) (version uint32, legacyMark bool) {
	t.Helper()
	v.view(func(tx kv.Tx) error {
		m := tx.Bucket([]byte{bucketMeta})
		version = binary.BigEndian.Uint32(m.Get([]byte("version")))
		legacyMark = m.Get([]byte(metaLegacyFingerprints)) != nil
		return nil
	})
	return version, legacyMark
}

// A vault of format 1 keeps deduplicating against the fingerprints it
// has, read-only and after the upgrade that opening it for writing does,
// until a rebuild of the indexes rewrites them.
func TestLegacyFingerprints(t *testing.T) {
	tv := newTestVault(t)
	old := []record.Record{
		sample(t, "Heart rate", "2024-03-05T08:00:00Z", 60),
		sample(t, "Heart rate", "2024-03-05T08:05:00Z", 62),
		importRecs(t, fileSHA("a.json"), 0, 1)[0],
	}
	if _, err := tv.Add(old); err != nil {
		t.Fatal(err)
	}
	makeLegacy(t, tv)
	tv.Close()
	again := func() []record.Record {
		return []record.Record{
			sample(t, "Heart rate", "2024-03-05T08:00:00Z", 60),
			sample(t, "Heart rate", "2024-03-05T08:05:00Z", 62),
			importRecs(t, fileSHA("a.json"), 0, 1)[0],
		}
	}
	allDup := func(t *testing.T, res []AddResult) {
		t.Helper()
		for i, r := range res {
			if !r.Duplicate {
				t.Errorf("record %d not found a duplicate", i)
			}
		}
	}

	ro, err := Open(tv.path, Identities(tv.identity), &Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if ver, _ := formatVersion(t, ro); ver != 1 {
		t.Fatalf("read-only open changed the format to %d", ver)
	}
	res, err := ro.DryAdd(again())
	if err != nil {
		t.Fatal(err)
	}
	allDup(t, res)
	ro.Close()

	v, err := Open(tv.path, Identities(tv.identity), &Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	if ver, mark := formatVersion(t, v); ver != FormatVersion || !mark {
		t.Fatalf("after upgrade: version %d, legacy mark %v; want %d, true", ver, mark, FormatVersion)
	}
	if res, err = v.Add(again()); err != nil {
		t.Fatal(err)
	}
	allDup(t, res)
	fresh := sample(t, "Heart rate", "2024-03-05T08:10:00Z", 64)
	if _, err := v.Put(fresh); err != nil {
		t.Fatal(err)
	}
	if got := fingerprintKeyLens(t, v); got[16] != 3 || got[fpKeyLen] != 1 {
		t.Fatalf("keys by length %v; want 3 legacy, 1 new", got)
	}
	rep, err := v.Check(false)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		t.Fatalf("check of a vault with legacy fingerprints: %+v", rep.Problems)
	}

	// Purging a record drops its legacy fingerprint: re-adding adds it.
	if err := v.Purge([]string{res[0].ID}); err != nil {
		t.Fatal(err)
	}
	if res, err = v.Add(again()[:1]); err != nil || res[0].Duplicate {
		t.Fatalf("after purge: %+v, %v", res, err)
	}

	// A rebuild of the indexes (what Check repairs with) rewrites them.
	if err := v.rebuild(); err != nil {
		t.Fatal(err)
	}
	if got := fingerprintKeyLens(t, v); got[16] != 0 || got[fpKeyLen] != 4 {
		t.Fatalf("after repair, keys by length %v; want 4 new", got)
	}
	if _, mark := formatVersion(t, v); mark || v.fpLegacy.Load() {
		t.Fatal("legacy mark left after the repair rewrote every fingerprint")
	}
	if res, err = v.Add(again()); err != nil {
		t.Fatal(err)
	}
	allDup(t, res)
}

// A new vault is of the current format and looks up no legacy keys.
func TestNewVaultFormat(t *testing.T) {
	tv := newTestVault(t)
	if ver, mark := formatVersion(t, tv.Vault); ver != FormatVersion || mark || tv.fpLegacy.Load() {
		t.Fatalf("version %d, legacy mark %v, legacy lookups %v", ver, mark, tv.fpLegacy.Load())
	}
	tv.Close()
	before := fileHash(t, tv.path)
	v, err := Open(tv.path, Identities(tv.identity), &Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	if v.fpLegacy.Load() {
		t.Fatal("reopened vault looks up legacy keys")
	}
	v.Close()
	if fileHash(t, tv.path) != before {
		t.Fatal("opening a vault of the current format for writing changed the file")
	}
}

// copyFixture copies a file of testdata into a temporary directory.
func copyFixture(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), filepath.Base(name))
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// fixtureIdentities is the device identity of the frozen vault of format
// version dir (testdata/v1, v2, v3).
func fixtureIdentities(t *testing.T, dir string) []age.Identity {
	t.Helper()
	idText, err := os.ReadFile(filepath.Join("testdata", dir, "device-identity.txt"))
	if err != nil {
		t.Fatal(err)
	}
	ids, err := age.ParseIdentities(bytes.NewReader(idText))
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

// copyFixtureInto copies the frozen vault testdata/name into db.
func copyFixtureInto(t *testing.T, db kv.DB, name string) {
	t.Helper()
	src, err := kv.OpenBolt(copyFixture(t, name), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if _, err := kv.Copy(db, src); err != nil {
		t.Fatal(err)
	}
}

// The frozen format-1 vault (testdata/v1) opens read-only as it is, and
// opened for writing moves to the current format; either way its records
// are found again as duplicates, and self-entered ones are not.
func TestFormat1Vault(t *testing.T) {
	path := copyFixture(t, "v1/vault-v1.phr")
	ids := fixtureIdentities(t, "v1")
	// again returns a copy of each live record, under a new ID.
	again := func(v *Vault) (recs []record.Record, imported int) {
		t.Helper()
		all, err := v.List(Query{})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range all {
			c, err := record.New(r.Resource, r.Provenance)
			if err != nil {
				t.Fatal(err)
			}
			recs = append(recs, c)
			if r.Provenance.Method == record.MethodImported {
				imported++
			}
		}
		return recs, imported
	}
	check := func(t *testing.T, res []AddResult, recs []record.Record) {
		t.Helper()
		for i, r := range res {
			if want := recs[i].Provenance.Method == record.MethodImported; r.Duplicate != want {
				t.Errorf("%s record %d: duplicate = %v, want %v", recs[i].Provenance.Method, i, r.Duplicate, want)
			}
		}
	}

	ro, err := Open(path, Identities(ids...), &Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if ver, _ := formatVersion(t, ro); ver != 1 || !ro.fpLegacy.Load() {
		t.Fatalf("fixture: version %d, legacy lookups %v", ver, ro.fpLegacy.Load())
	}
	recs, imported := again(ro)
	if len(recs) != 12 || imported != 10 {
		t.Fatalf("fixture has %d live records, %d imported; want 12, 10", len(recs), imported)
	}
	res, err := ro.DryAdd(recs)
	if err != nil {
		t.Fatal(err)
	}
	check(t, res, recs)
	ro.Close()

	v, err := Open(path, Identities(ids...), &Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	if ver, mark := formatVersion(t, v); ver != FormatVersion || !mark {
		t.Fatalf("after upgrade: version %d, legacy mark %v", ver, mark)
	}
	lens := fingerprintKeyLens(t, v)
	if lens[16] != 11 { // 10 imported records and the tombstone
		t.Fatalf("legacy fingerprints %v; want 11 of 16 bytes", lens)
	}
	recs, _ = again(v)
	if res, err = v.Add(recs); err != nil {
		t.Fatal(err)
	}
	check(t, res, recs)
	rep, err := v.Check(false)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() || rep.Records != 14 || rep.Tombstones != 1 {
		t.Fatalf("check: %d records, %d tombstones, problems %+v", rep.Records, rep.Tombstones, rep.Problems)
	}
}

// A rebuild of the indexes keeps the fingerprints that records' content no
// longer gives: a deleted record's file, re-imported, stays deleted.
func TestRebuildKeepsTombstoneFingerprints(t *testing.T) {
	tv := newTestVault(t)
	res, err := tv.Add([]record.Record{sample(t, "Heart rate", "2024-03-05T08:00:00Z", 60), sample(t, "Heart rate", "2024-03-05T08:01:00Z", 61)})
	if err != nil {
		t.Fatal(err)
	}
	if err := tv.Delete(res[0].ID, 0); err != nil {
		t.Fatal(err)
	}
	if err := tv.rebuild(); err != nil {
		t.Fatal(err)
	}
	again, err := tv.Add([]record.Record{sample(t, "Heart rate", "2024-03-05T08:00:00Z", 60), sample(t, "Heart rate", "2024-03-05T08:01:00Z", 61)})
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range again {
		if !r.Duplicate || r.ID != res[i].ID {
			t.Errorf("record %d after the rebuild: %+v, want a duplicate of %s", i, r, res[i].ID)
		}
	}
	if rep, err := tv.Check(false); err != nil || !rep.OK() {
		t.Fatalf("check: %v %+v", err, rep)
	}
}

// decodeFacts reads the same facts as decodeRecord, for every kind of
// record the vault holds.
func TestDecodeFacts(t *testing.T) {
	recs := benchRecords(t, 20, 1, nil)
	recs = append(recs, sample(t, "Heart rate", "2024-03-05T08:00:00Z", 60))
	tomb := recs[3]
	tomb.Deleted, tomb.Resource, tomb.Date, tomb.Display = true, nil, time.Time{}, ""
	tomb.Version = 7
	recs = append(recs, tomb)
	kinds := map[string]string{}
	for i := range recs {
		r := &recs[i]
		if r.CreatedAt.IsZero() {
			r.CreatedAt = time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
		}
		r.Seq = uint64(i + 1)
		env := encodeRecord(r)
		full, err := decodeRecord(env)
		if err != nil {
			t.Fatal(err)
		}
		got, err := decodeFacts(env, r.ID, kinds)
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		want := metaEntry{version: full.Version, id: full.ID, kind: full.Kind, date: full.Date, created: full.CreatedAt, deleted: full.Deleted}
		if got != want {
			t.Errorf("record %d: facts %+v, want %+v", i, got, want)
		}
		if _, err := decodeFacts(env, "aaaaaaaaaaaaaaaa", kinds); err == nil {
			t.Errorf("record %d: decoded under another ID", i)
		}
		for cut := 0; cut < len(env)-len(r.Resource)-2; cut += 3 {
			if _, err := decodeFacts(env[:cut], r.ID, kinds); err == nil {
				t.Fatalf("record %d: envelope cut at %d decoded", i, cut)
			}
		}
	}
}

// The frozen format-2 vault (testdata/v2) opens read-only as it is
// (it has no authenticated head to check), and opened for writing moves
// to format 3: a head over every value it holds, values sealed before
// still open, and values written from then on are sealed with their
// version.
func TestFormat2Vault(t *testing.T) {
	path := copyFixture(t, "v2/vault-v2.phr")
	ids := fixtureIdentities(t, "v2")
	before := fileHash(t, path)
	ro, err := Open(path, Identities(ids...), &Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if ver, _ := formatVersion(t, ro); ver != 2 {
		t.Fatalf("fixture: version %d", ver)
	}
	if _, ok := ro.Head(); ok {
		t.Fatal("a format-2 vault has a head")
	}
	all, err := ro.List(Query{IncludeDeleted: true})
	if err != nil || len(all) != 7 {
		t.Fatalf("fixture: %d records, %v", len(all), err)
	}
	if rep, err := ro.Check(false); err != nil || !rep.OK() || rep.Records != 6 || rep.Tombstones != 1 {
		t.Fatalf("check read-only: %v %+v", err, rep)
	}
	ro.Close()
	if fileHash(t, path) != before {
		t.Fatal("a read-only open changed the file")
	}

	v, err := Open(path, Passphrase("format two fixture"), &Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	if ver, _ := formatVersion(t, v); ver != FormatVersion {
		t.Fatalf("after upgrade: version %d", ver)
	}
	if h, ok := v.Head(); !ok || h.Counter != 2 {
		t.Fatalf("after upgrade: head %v %v", h, ok)
	}
	rep, err := v.Check(false)
	if err != nil || !rep.OK() || rep.Records != 6 || rep.Tombstones != 1 {
		t.Fatalf("check after upgrade: %v %+v", err, rep)
	}
	meds, err := v.List(Query{Kinds: []string{record.KindMedication}})
	if err != nil || len(meds) != 2 {
		t.Fatalf("medications: %d %v", len(meds), err)
	}
	var edited record.Record
	for _, m := range meds {
		if m.Version == 2 {
			edited = m
		}
	}
	if edited.ID == "" || rawGet(t, v, bucketRecords, keyOf(edited.ID))[0] != sealV1 {
		t.Fatal("the upgrade resealed records (it need not)")
	}
	edited.Resource = []byte(strings.Replace(string(edited.Resource), `"completed"`, `"active"`, 1))
	if _, err := v.Update(edited, 2); err != nil {
		t.Fatal(err)
	}
	if s := rawGet(t, v, bucketRecords, keyOf(edited.ID)); s[0] != sealV2 || sealedVersion(s) != 3 {
		t.Fatalf("rewritten: seal %d, version %d", s[0], sealedVersion(s))
	}
	if rep, err := v.Check(false); err != nil || !rep.OK() {
		t.Fatalf("check after a write: %v %+v", err, rep)
	}
}
