package vault

import (
	"fmt"
	"testing"

	"github.com/phr-project/phr/pkg/record"
)

// imm is an Immunization from a FHIR-Converter-like source: one
// identifier (which such converters give several different resources),
// a vaccine and a date; file names the file it came from.
func imm(t testing.TB, file, id, vaccine, date string) record.Record {
	t.Helper()
	res := fmt.Sprintf(`{"resourceType":"Immunization","id":%q,"identifier":[{"system":"urn:oid:2.16.840.1.113883.19","value":"imm-1"}],"status":"completed","vaccineCode":{"text":%q},"occurrenceDateTime":%q,"patient":{"reference":"Patient/%s"}}`, id, vaccine, date, file)
	return must(t)(record.New([]byte(res), record.Provenance{Method: record.MethodImported, Importer: "fhir", System: "Clinic", OriginalID: id, File: file, FileSHA256: fileSHA(file)}))
}

func outcomes(res []AddResult) string {
	out := ""
	for _, r := range res {
		switch {
		case r.Duplicate:
			out += "d"
		case r.Updated:
			out += "u"
		default:
			out += "a"
		}
	}
	return out
}

// Identifiers never make two records one: only equal content is a
// duplicate. Named alike by their source, with other content, from
// another file, a record is a new version; from one file, both stay.
func TestIdentifiersNeverMerge(t *testing.T) {
	tests := []struct {
		name    string
		batches [][]record.Record
		want    []string // outcomes per batch
		live    int
	}{
		{"three different immunizations under one identifier in one file",
			[][]record.Record{{imm(t, "a", "1", "Influenza", "2020-10-01"), imm(t, "a", "2", "Tetanus", "2019-05-01"), imm(t, "a", "3", "Hepatitis B", "2018-01-01")}},
			[]string{"aaa"}, 3},
		{"the same file again adds nothing",
			[][]record.Record{{imm(t, "a", "1", "Influenza", "2020-10-01"), imm(t, "a", "2", "Tetanus", "2019-05-01")}, {imm(t, "a", "1", "Influenza", "2020-10-01"), imm(t, "a", "2", "Tetanus", "2019-05-01")}},
			[]string{"aa", "dd"}, 2},
		{"equal content from another file of the source is a duplicate",
			[][]record.Record{{imm(t, "a", "1", "Influenza", "2020-10-01")}, {imm(t, "b", "9", "Influenza", "2020-10-01")}},
			[]string{"a", "d"}, 1},
		{"other content under the same id from another file is a new version",
			[][]record.Record{{imm(t, "a", "1", "Influenza", "2020-10-01")}, {imm(t, "b", "1", "Influenza", "2020-10-02")}},
			[]string{"a", "u"}, 1},
		{"the older file again after an update adds nothing",
			[][]record.Record{{imm(t, "a", "1", "Influenza", "2020-10-01")}, {imm(t, "b", "1", "Influenza", "2020-10-02")}, {imm(t, "a", "1", "Influenza", "2020-10-01")}},
			[]string{"a", "u", "d"}, 1},
		{"equal resources of one file told apart by id are both kept, once",
			[][]record.Record{{imm(t, "a", "1", "Influenza", "2020-10-01"), imm(t, "a", "2", "Influenza", "2020-10-01")}, {imm(t, "a", "1", "Influenza", "2020-10-01"), imm(t, "a", "2", "Influenza", "2020-10-01")}},
			[]string{"aa", "dd"}, 2},
		{"equal resources of one file, imported again in another order",
			[][]record.Record{{imm(t, "a", "1", "Influenza", "2020-10-01"), imm(t, "a", "2", "Influenza", "2020-10-01"), imm(t, "a", "3", "Influenza", "2020-10-01")}, {imm(t, "a", "3", "Influenza", "2020-10-01"), imm(t, "a", "2", "Influenza", "2020-10-01"), imm(t, "a", "1", "Influenza", "2020-10-01")}},
			[]string{"aaa", "ddd"}, 3},
		{"equal resources of one file after the same content from another file",
			[][]record.Record{{imm(t, "b", "9", "Influenza", "2020-10-01")}, {imm(t, "a", "1", "Influenza", "2020-10-01"), imm(t, "a", "2", "Influenza", "2020-10-01")}, {imm(t, "a", "1", "Influenza", "2020-10-01"), imm(t, "a", "2", "Influenza", "2020-10-01")}},
			[]string{"a", "da", "dd"}, 2},
		{"the same files in the other order keep as many",
			[][]record.Record{{imm(t, "a", "1", "Influenza", "2020-10-01"), imm(t, "a", "2", "Influenza", "2020-10-01")}, {imm(t, "b", "9", "Influenza", "2020-10-01")}},
			[]string{"aa", "d"}, 2},
		{"a newer export lists the equal resources in another order",
			[][]record.Record{{imm(t, "a", "1", "Influenza", "2020-10-01"), imm(t, "a", "2", "Influenza", "2020-10-01")}, {imm(t, "c", "2", "Influenza", "2020-10-01"), imm(t, "c", "1", "Influenza", "2020-10-01")}},
			[]string{"aa", "dd"}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tv := newTestVault(t)
			for i, batch := range tt.batches {
				dry, err := tv.DryAdd(cloneRecs(batch))
				if err != nil {
					t.Fatal(err)
				}
				res, err := tv.Add(batch)
				if err != nil {
					t.Fatal(err)
				}
				if got := outcomes(res); got != tt.want[i] {
					t.Errorf("batch %d: %s, want %s", i, got, tt.want[i])
				}
				if got := outcomes(dry); got != tt.want[i] {
					t.Errorf("batch %d, dry run: %s, want %s", i, got, tt.want[i])
				}
			}
			recs, err := tv.List(Query{})
			if err != nil {
				t.Fatal(err)
			}
			if len(recs) != tt.live {
				t.Errorf("%d records, want %d", len(recs), tt.live)
			}
			if rep, err := tv.Check(false); err != nil || !rep.OK() {
				t.Fatalf("check: %v %+v", err, rep)
			}
		})
	}
}

func cloneRecs(in []record.Record) []record.Record {
	out := make([]record.Record, len(in))
	for i, r := range in {
		c, err := record.New(r.Resource, r.Provenance)
		if err != nil {
			panic(err)
		}
		out[i] = c
	}
	return out
}

// A new version keeps the record's ID and puts the earlier version into
// its history; deleting the record removes both, and the source sending
// it again does not bring it back.
func TestVersionHistory(t *testing.T) {
	tv := newTestVault(t)
	first, err := tv.Put(imm(t, "a", "1", "Influenza", "2020-10-01"))
	if err != nil {
		t.Fatal(err)
	}
	res, err := tv.Put(imm(t, "b", "1", "Influenza", "2020-10-02"))
	if err != nil || !res.Updated || res.ID != first.ID {
		t.Fatalf("update = %+v, %v", res, err)
	}
	cur, err := tv.Get(first.ID)
	if err != nil {
		t.Fatal(err)
	}
	if cur.Version != 2 || cur.Provenance.File != "b" || cur.Date.Day() != 2 {
		t.Fatalf("current version %d from %q", cur.Version, cur.Provenance.File)
	}
	hist, err := tv.History(first.ID)
	if err != nil || len(hist) != 1 || hist[0].Version != 1 || hist[0].Provenance.File != "a" {
		t.Fatalf("history = %+v, %v", hist, err)
	}
	// The changes feed tells sync clients.
	ch, _, err := tv.Changes(0, 0)
	if err != nil || len(ch) != 1 || ch[0].Record.Version != 2 {
		t.Fatalf("changes = %+v, %v", ch, err)
	}
	// A patient's edit keeps history too.
	cur.Resource = []byte(`{"resourceType":"Immunization","status":"completed","vaccineCode":{"text":"Influenza"},"occurrenceDateTime":"2020-10-03"}`)
	if _, err := tv.Update(cur, 0); err != nil {
		t.Fatal(err)
	}
	if hist, _ = tv.History(first.ID); len(hist) != 2 {
		t.Fatalf("history after an edit: %d versions", len(hist))
	}
	if err := tv.Delete(first.ID, 0); err != nil {
		t.Fatal(err)
	}
	if hist, _ = tv.History(first.ID); len(hist) != 0 {
		t.Fatalf("history after delete: %d versions", len(hist))
	}
	res, err = tv.Put(imm(t, "c", "1", "Influenza", "2020-10-04"))
	if err != nil || !res.Duplicate {
		t.Fatalf("a newer version of a deleted record: %+v, %v", res, err)
	}
	if rep, err := tv.Check(false); err != nil || !rep.OK() {
		t.Fatalf("check: %v %+v", err, rep)
	}
}

// An import that updated records and then fails gives them their earlier
// version back.
func TestAbortRestoresUpdated(t *testing.T) {
	tv := newTestVault(t)
	before, err := tv.Put(imm(t, "a", "1", "Influenza", "2020-10-01"))
	if err != nil {
		t.Fatal(err)
	}
	im, err := tv.BeginImport(fileSHA("b"))
	if err != nil {
		t.Fatal(err)
	}
	res, err := im.Add([]record.Record{imm(t, "b", "1", "Influenza", "2020-10-02"), imm(t, "b", "2", "Tetanus", "2019-01-01")})
	if err != nil || outcomes(res) != "ua" {
		t.Fatalf("import: %s, %v", outcomes(res), err)
	}
	n, err := im.Abort()
	if err != nil || n != 1 {
		t.Fatalf("Abort = %d, %v", n, err)
	}
	recs, err := tv.List(Query{})
	if err != nil || len(recs) != 1 || recs[0].ID != before.ID || recs[0].Provenance.File != "a" {
		t.Fatalf("after abort: %+v, %v", recs, err)
	}
	if hist, _ := tv.History(before.ID); len(hist) != 0 {
		t.Fatalf("history after abort: %d versions", len(hist))
	}
	if rep, err := tv.Check(false); err != nil || !rep.OK() {
		t.Fatalf("check: %v %+v", err, rep)
	}
	// The file imports again, and updates again.
	res2, err := tv.Add([]record.Record{imm(t, "b", "1", "Influenza", "2020-10-02")})
	if err != nil || outcomes(res2) != "u" {
		t.Fatalf("import again: %s, %v", outcomes(res2), err)
	}
}

// A file written in several transactions counts its equal resources over
// all of them; aborting it leaves no occurrence key behind.
func TestOccurrencesOverBatches(t *testing.T) {
	tv := newTestVault(t)
	if _, err := tv.Add([]record.Record{imm(t, "b", "9", "Influenza", "2020-10-01")}); err != nil {
		t.Fatal(err)
	}
	batches := func() [][]record.Record {
		return [][]record.Record{
			{imm(t, "a", "1", "Influenza", "2020-10-01")},
			{imm(t, "a", "2", "Influenza", "2020-10-01"), imm(t, "a", "3", "Influenza", "2020-10-01")},
		}
	}
	run := func(abort bool) string {
		im, err := tv.BeginImport(fileSHA("a"))
		if err != nil {
			t.Fatal(err)
		}
		got := ""
		for _, b := range batches() {
			res, err := im.Add(b)
			if err != nil {
				t.Fatal(err)
			}
			got += outcomes(res)
		}
		if abort {
			if _, err := im.Abort(); err != nil {
				t.Fatal(err)
			}
		} else if _, err := im.Commit(nil); err != nil {
			t.Fatal(err)
		}
		return got
	}
	if got := run(true); got != "daa" {
		t.Fatalf("first import: %s", got)
	}
	if rep, err := tv.Check(false); err != nil || !rep.OK() {
		t.Fatalf("check after abort: %v %+v", err, rep)
	}
	if got := run(false); got != "daa" {
		t.Fatalf("after the abort: %s", got)
	}
	if got := run(false); got != "ddd" {
		t.Fatalf("again: %s", got)
	}
	if rep, err := tv.Check(false); err != nil || !rep.OK() || rep.Records != 3 {
		t.Fatalf("check: %v %+v", err, rep)
	}
}
