package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/phr-project/phr/pkg/importers"
	"github.com/phr-project/phr/pkg/importers/all"
	"github.com/phr-project/phr/pkg/record"
	"github.com/phr-project/phr/pkg/server/api"
	"github.com/phr-project/phr/pkg/vault"
)

// lines is a fake importer: a file starting "#lines" holds one
// "Type name" per line; "bad" is an item that fails.
type lines struct{}

func (lines) Name() string            { return "lines" }
func (lines) Detect(head []byte) bool { return bytes.HasPrefix(head, []byte("#lines")) }
func (lines) Import(ctx context.Context, in *importers.Input, sink importers.Sink) error {
	data, err := io.ReadAll(in.R)
	if err != nil {
		return err
	}
	for i, l := range strings.Split(string(data), "\n") {
		f := strings.Fields(l)
		if len(f) < 2 || strings.HasPrefix(l, "#") {
			if len(f) == 1 && f[0] == "bad" {
				sink.Fail(&importers.ItemError{File: in.Name, Line: i + 1, Err: errors.New("bad line")})
			}
			continue
		}
		r, err := record.New([]byte(fmt.Sprintf(`{"resourceType":%q,"id":%q,"code":{"text":%q}}`, f[0], f[1], f[1])),
			record.Provenance{Method: record.MethodImported, Importer: "lines", File: in.Name, FileSHA256: in.SHA256, System: "Test Clinic", OriginalID: f[1]})
		if err != nil {
			return err
		}
		if err := sink.Record(r); err != nil {
			return err
		}
	}
	return nil
}

func (c *client) upload(name, content string, fields ...string) *resp {
	c.t.Helper()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	for i := 0; i+1 < len(fields); i += 2 {
		w.WriteField(fields[i], fields[i+1])
	}
	fw, err := w.CreateFormFile("file", name)
	if err != nil {
		c.t.Fatal(err)
	}
	io.WriteString(fw, content)
	w.Close()
	return c.do("POST", "/api/v1/imports", &buf, "Content-Type", w.FormDataContentType())
}

func TestImport(t *testing.T) {
	reg := &importers.Registry{}
	reg.Register(lines{})
	ts := newTestServer(t, func(c *Config) { c.Importers = reg; c.MaxImportBytes = 64 << 10 })
	c := ts.signup("alice")
	file := "#lines\nCondition asthma\nObservation glucose\nCondition eczema\n"

	r := c.upload("../../etc/my records.txt", file)
	want(t, r, http.StatusCreated)
	var res api.ImportResult
	r.decode(t, &res)
	if len(res.Files) != 1 || res.Files[0].Added != 3 || res.Files[0].Format != "lines" || res.Files[0].File != "my records.txt" || res.Files[0].SHA256 == "" {
		t.Fatalf("report %s", r.body)
	}
	// Again: nothing new. A dry run writes nothing.
	r = c.upload("again.txt", file)
	want(t, r, http.StatusCreated)
	r.decode(t, &res)
	if res.Files[0].Added != 0 || res.Files[0].Duplicates != 3 {
		t.Fatalf("re-import %s", r.body)
	}
	r = c.upload("dry.txt", "#lines\nCondition gout\n", "dry_run", "true", "format", "lines")
	want(t, r, http.StatusOK)
	r.decode(t, &res)
	if !res.Files[0].DryRun || res.Files[0].Added != 1 {
		t.Fatalf("dry run %s", r.body)
	}
	// A failed item fails the file, unless partial.
	r = c.upload("bad.txt", "#lines\nCondition gout\nbad\n")
	want(t, r, http.StatusUnprocessableEntity)
	r.decode(t, &res)
	if res.Error == nil || res.Error.Code != api.CodeImportFailed || res.Files[0].Failed != 1 {
		t.Fatalf("failed import %s", r.body)
	}
	r = c.upload("bad.txt", "#lines\nCondition gout\nbad\n", "partial", "true")
	want(t, r, http.StatusCreated)
	// Unknown format, bad fields, no file, too large, wrong type.
	want(t, c.upload("x.bin", "\x00\x01binary"), http.StatusUnprocessableEntity)
	want(t, c.upload("x.txt", file, "format", "docx"), http.StatusBadRequest)
	want(t, c.upload("x.txt", file, "partial", "maybe"), http.StatusBadRequest)
	want(t, c.upload("x.txt", file, "colour", "red"), http.StatusBadRequest)
	want(t, c.upload("big.txt", "#lines\n"+strings.Repeat("Condition x\n", 10000)), http.StatusRequestEntityTooLarge)
	want(t, c.do("POST", "/api/v1/imports", "{}"), http.StatusUnsupportedMediaType)
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	w.WriteField("format", "lines")
	w.Close()
	want(t, c.do("POST", "/api/v1/imports", &buf, "Content-Type", w.FormDataContentType()), http.StatusBadRequest)

	// Records: 3 + gout (partial) + the Patient. The spool is empty.
	var l api.RecordList
	c.do("GET", "/api/v1/records", nil).decode(t, &l)
	if len(l.Records) != 5 {
		t.Fatalf("%d records", len(l.Records))
	}
	if ents, _ := os.ReadDir(ts.data.tmp); len(ents) != 0 {
		t.Fatalf("tmp holds %d files", len(ents))
	}
	// The audit log has the imports, by format and counts, without names.
	r = c.do("GET", "/api/v1/audit", nil)
	var audit api.Audit
	r.decode(t, &audit)
	imports := 0
	for _, e := range audit.Entries {
		if e.Event == AuditImport {
			imports++
		}
	}
	if imports < 5 || strings.Contains(string(r.body), "records.txt") {
		t.Fatalf("audit %s", r.body)
	}
}

func f(v float64) *float64 { return &v }

func TestIngest(t *testing.T) {
	ts := newTestServer(t, nil)
	c := ts.signup("alice")
	batch := api.IngestRequest{Device: "Acme Watch", Readings: []api.Reading{
		{ID: "r1", Type: "heart_rate", Value: f(64), Unit: "/min", At: "2026-05-01T08:00:00Z"},
		{ID: "r2", Type: "steps", Value: f(4200), At: "2026-05-01T00:00:00Z", End: "2026-05-01T12:00:00Z"},
		{ID: "r3", Type: "glucose", Value: f(5.4), Unit: "mmol/L", At: "2026-05-01T08:05:00Z"},
		{ID: "r4", Type: "glucose", Value: f(97), Unit: "mg/dL", At: "2026-05-01T09:05:00Z"},
		{ID: "r5", Type: "bp", Value: f(121), Value2: f(79), Unit: "mm[Hg]", At: "2026-05-01T08:10:00Z"},
		{ID: "r6", Type: "weight", Value: f(70.2), Unit: "kg", At: "2026-05-01T07:00:00Z"},
		{ID: "r7", Type: "spo2", Value: f(97), Unit: "%", At: "2026-05-01T08:00:00Z"},
	}}
	r := c.do("POST", "/api/v1/ingest", batch)
	want(t, r, http.StatusOK)
	var res api.IngestResult
	r.decode(t, &res)
	if res.Added != 7 || res.Duplicates != 0 || len(res.Results) != 7 || res.Results[1].ID != "r2" || res.Results[1].RecordID == "" {
		t.Fatalf("ingest %s", r.body)
	}
	codes := map[string]string{"r1": "8867-4", "r2": "41950-7", "r3": "15074-8", "r4": "2339-0", "r5": "85354-9", "r6": "29463-7", "r7": "59408-5"}
	for _, rr := range res.Results {
		g := c.do("GET", "/api/v1/records/"+rr.RecordID, nil)
		want(t, g, http.StatusOK)
		var rec record.Record
		g.decode(t, &rec)
		if !strings.Contains(string(rec.Resource), codes[rr.ID]) || !strings.Contains(string(rec.Resource), "unitsofmeasure.org") {
			t.Errorf("%s: %s", rr.ID, rec.Resource)
		}
		if p := rec.Provenance; p.Method != record.MethodDevice || p.Author != "Acme Watch" || p.System != "Acme Watch" || p.OriginalID != rr.ID {
			t.Errorf("%s provenance %+v", rr.ID, p)
		}
	}
	// The same batch again adds nothing.
	r = c.do("POST", "/api/v1/ingest", batch)
	want(t, r, http.StatusOK)
	r.decode(t, &res)
	if res.Added != 0 || res.Duplicates != 7 {
		t.Fatalf("re-ingest %s", r.body)
	}
	var before api.Changes
	c.do("GET", "/api/v1/changes?limit=1000", nil).decode(t, &before)

	// One bad reading: 400 naming it, nothing written.
	bad := []struct {
		name   string
		mutate func(*api.Reading)
		field  string
	}{
		{"unit", func(r *api.Reading) { r.Unit = "stone" }, "readings[2].unit"},
		{"range", func(r *api.Reading) { r.Value = f(5000) }, "readings[2].value"},
		{"no value", func(r *api.Reading) { r.Value = nil }, "readings[2].value"},
		{"time", func(r *api.Reading) { r.At = "yesterday" }, "readings[2].at"},
		{"type", func(r *api.Reading) { r.Type = "mood" }, "readings[2].type"},
		{"id", func(r *api.Reading) { r.ID = "" }, "readings[2].id"},
		{"end", func(r *api.Reading) { r.End = "2026-05-02T00:00:00Z" }, "readings[2].end"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			b := api.IngestRequest{Device: "Acme Watch", Readings: []api.Reading{
				{ID: "n1", Type: "heart_rate", Value: f(70), At: "2026-05-02T08:00:00Z"},
				{ID: "n2", Type: "heart_rate", Value: f(71), At: "2026-05-02T08:01:00Z"},
				{ID: "n3", Type: "glucose", Value: f(100), Unit: "mg/dL", At: "2026-05-02T08:02:00Z"},
			}}
			tt.mutate(&b.Readings[2])
			r := c.do("POST", "/api/v1/ingest", b)
			want(t, r, http.StatusBadRequest)
			if !strings.Contains(r.errMsg(), tt.field) {
				t.Errorf("message %q lacks %q", r.errMsg(), tt.field)
			}
		})
	}
	want(t, c.do("POST", "/api/v1/ingest", api.IngestRequest{Readings: batch.Readings}), http.StatusBadRequest)
	want(t, c.do("POST", "/api/v1/ingest", api.IngestRequest{Device: "x"}), http.StatusBadRequest)
	var after api.Changes
	c.do("GET", "/api/v1/changes?limit=1000", nil).decode(t, &after)
	if len(after.Changes) != len(before.Changes) || after.Next != before.Next {
		t.Fatalf("a failed ingest wrote something: %d -> %d changes", len(before.Changes), len(after.Changes))
	}
}

func TestIngestLimit(t *testing.T) {
	ts := newTestServer(t, func(c *Config) { c.MaxIngestReadings = 3 })
	c := ts.signup("alice")
	b := api.IngestRequest{Device: "w"}
	for i := 0; i < 4; i++ {
		b.Readings = append(b.Readings, api.Reading{ID: fmt.Sprint(i), Type: "steps", Value: f(1), At: "2026-05-01T00:00:00Z"})
	}
	r := c.do("POST", "/api/v1/ingest", b)
	want(t, r, http.StatusBadRequest)
	if !strings.Contains(r.errMsg(), "readings") {
		t.Errorf("message %q", r.errMsg())
	}
}

// An import that phrd died in the middle of is rolled back when the
// vault is next opened, at a login, and the owner's audit log says so.
func TestLoginAuditsRollback(t *testing.T) {
	ts := newTestServer(t, nil)
	c := ts.signup("rollback@example.org")
	want(t, c.do("DELETE", "/api/v1/sessions/current", nil), http.StatusNoContent)

	// What phrd leaves behind when it dies between two batches of a large
	// upload: the first batches and their import marker.
	path := ts.data.vaultPath(ts.data.accountID("rollback@example.org"))
	v, err := vault.Open(path, vault.Passphrase(testPass), &vault.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	sha := strings.Repeat("ab", 32)
	im, _ := v.BeginImport(sha)
	var recs []record.Record
	for i := range 3 {
		r, err := record.New([]byte(fmt.Sprintf(`{"resourceType":"Observation","id":"o%d","code":{"text":"Glucose"}}`, i)),
			record.Provenance{Method: record.MethodImported, Importer: "fhir", System: "Clinic", OriginalID: fmt.Sprint("o", i), FileSHA256: sha})
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, r)
	}
	if _, err := im.Add(recs); err != nil {
		t.Fatal(err)
	}
	v.Close()

	c.login("rollback@example.org", testPass)
	var l api.RecordList
	c.do("GET", "/api/v1/records", nil).decode(t, &l)
	for _, r := range l.Records {
		if r.ResourceType == "Observation" {
			t.Fatalf("a record of the interrupted import is still there: %+v", r)
		}
	}
	var audit api.Audit
	c.do("GET", "/api/v1/audit", nil).decode(t, &audit)
	found := false
	for _, e := range audit.Entries {
		if e.Event == AuditImportRollback {
			found = true
			if e.Ref != sha || e.Counts["records"] != 3 {
				t.Errorf("rollback entry %+v; want ref %s, 3 records", e, sha)
			}
		}
	}
	if !found {
		t.Fatalf("no %s entry in the audit log: %+v", AuditImportRollback, audit.Entries)
	}
}

// A file about another person than the account's owner is refused with
// 409 patient_mismatch, and imported when the client says so.
func TestImportPatientMismatch(t *testing.T) {
	ts := newTestServer(t, func(c *Config) { c.Importers = all.Default() })
	c := ts.signup("alice")
	read := func(rel string) string {
		b, err := os.ReadFile("../../../shared/testdata/" + rel)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	// The account's owner has no name yet: the first file gives it.
	r := c.upload("ccd.xml", read("ccda/hl7-c-cda-examples/Documents/CCD/CCD 2/CCD.xml"))
	want(t, r, http.StatusCreated)
	var res api.ImportResult
	r.decode(t, &res)
	if len(res.Files[0].OwnerFilled) == 0 {
		t.Fatalf("owner not filled: %s", r.body)
	}
	other := read("fhir/synthea-r4/Jorge_Brekke_ac7921e0-c949-4b42-97f2-fad5d171cd01.json")
	r = c.upload("jorge.json", other)
	want(t, r, http.StatusConflict)
	r.decode(t, &res)
	if res.Error == nil || res.Error.Code != api.CodePatientMismatch || res.Files[0].Added != 0 {
		t.Fatalf("mismatch %s", r.body)
	}
	r = c.upload("jorge.json", other, "accept_patient_mismatch", "true")
	want(t, r, http.StatusCreated)
	r.decode(t, &res)
	if !res.Files[0].PatientMismatch || res.Files[0].Added == 0 {
		t.Fatalf("accepted %s", r.body)
	}
}
