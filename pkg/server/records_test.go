package server

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/phr-project/phr/pkg/importers"
	"github.com/phr-project/phr/pkg/server/api"
)

func TestRecordsCRUD(t *testing.T) {
	ts := newTestServer(t, nil)
	c := ts.signup("alice")

	rec, tag := c.post(map[string]any{"log": "vital", "kind": "bp", "value": "120/80", "at": "2026-05-01T08:00:00Z"})
	id := rec["id"].(string)
	if tag != `"v1"` || rec["type"] != "vital" || rec["display"] == "" || !strings.Contains(fmt.Sprint(rec["resource"]), "85354-9") {
		t.Fatalf("created %v (ETag %s)", rec, tag)
	}
	if prov := rec["provenance"].(map[string]any); prov["method"] != "self-entered" {
		t.Errorf("provenance %v", prov)
	}
	res := rec["resource"].(map[string]any)
	if sub, _ := res["subject"].(map[string]any); sub == nil || !strings.HasPrefix(sub["reference"].(string), "Patient/") {
		t.Errorf("no subject: %v", res)
	}

	r := c.do("GET", "/api/v1/records/"+id, nil)
	want(t, r, http.StatusOK)
	if r.header.Get("ETag") != `"v1"` {
		t.Fatalf("ETag %q", r.header.Get("ETag"))
	}
	want(t, c.do("GET", "/api/v1/records/"+id, nil, "If-None-Match", `"v1"`), http.StatusNotModified)

	// Edit: If-Match is required, and a stale one changes nothing.
	res["effectiveDateTime"] = "2026-05-01T09:00:00Z"
	want(t, c.do("PUT", "/api/v1/records/"+id, res), http.StatusPreconditionRequired)
	r = c.do("PUT", "/api/v1/records/"+id, res, "If-Match", `"v1"`)
	want(t, r, http.StatusOK)
	if r.header.Get("ETag") != `"v2"` {
		t.Fatalf("ETag after PUT %q", r.header.Get("ETag"))
	}
	res["effectiveDateTime"] = "2020-01-01T00:00:00Z"
	r = c.do("PUT", "/api/v1/records/"+id, res, "If-Match", `"v1"`)
	want(t, r, http.StatusPreconditionFailed)
	r = c.do("GET", "/api/v1/records/"+id, nil)
	var got map[string]any
	r.decode(t, &got)
	if got["version"].(float64) != 2 || !strings.HasPrefix(got["date"].(string), "2026-05-01T09:00:00") {
		t.Fatalf("after stale PUT: %s", r.body)
	}
	// The resource type stays.
	want(t, c.do("PUT", "/api/v1/records/"+id, map[string]any{"resourceType": "Condition"}, "If-Match", `"v2"`), http.StatusBadRequest)
	want(t, c.do("PUT", "/api/v1/records/"+id, `{"no":"type"}`, "If-Match", `"v2"`), http.StatusBadRequest)

	// Delete: a stale If-Match refuses, then the record is gone.
	want(t, c.do("DELETE", "/api/v1/records/"+id, nil, "If-Match", `"v1"`), http.StatusPreconditionFailed)
	want(t, c.do("DELETE", "/api/v1/records/"+id, nil, "If-Match", `"v2"`), http.StatusNoContent)
	want(t, c.do("GET", "/api/v1/records/"+id, nil), http.StatusGone)
	want(t, c.do("DELETE", "/api/v1/records/"+id, nil), http.StatusGone)
	want(t, c.do("PUT", "/api/v1/records/"+id, res, "If-Match", `"v3"`), http.StatusGone)
	for _, bad := range []string{"aaaaaaaaaaaaaaaa", "nope", "..%2F..%2Fserver.key"} {
		want(t, c.do("GET", "/api/v1/records/"+bad, nil), http.StatusNotFound)
	}

	// A FHIR resource as it is.
	fhir := `{"resourceType":"Condition","code":{"text":"Asthma"},"extension":[{"url":"http://example.org/x","valueString":"kept"}]}`
	rec, _ = c.post(fhir)
	if rec["type"] != "condition" || !strings.Contains(fmt.Sprint(rec["resource"]), "kept") {
		t.Fatalf("FHIR post: %v", rec)
	}
	if prov := rec["provenance"].(map[string]any); prov["author"] != "app" {
		t.Errorf("provenance %v", prov)
	}
}

func TestLogShorthand(t *testing.T) {
	ts := newTestServer(t, nil)
	c := ts.signup("alice")
	ok := []struct {
		body map[string]any
		kind string
	}{
		{map[string]any{"log": "med", "name": "metformin", "dose": "500 mg", "frequency": "twice daily", "start": "2026-01-10"}, "medication"},
		{map[string]any{"log": "dose", "name": "ibuprofen", "amount": "400 mg", "at": "2h ago"}, "dose"},
		{map[string]any{"log": "symptom", "name": "headache", "severity": 6}, "symptom"},
		{map[string]any{"log": "vital", "kind": "weight", "value": "70kg"}, "vital"},
		{map[string]any{"log": "condition", "name": "asthma", "onset": "2020-03-01"}, "condition"},
		{map[string]any{"log": "allergy", "substance": "penicillin", "reaction": "hives", "severity": "moderate"}, "allergy"},
		{map[string]any{"log": "immunization", "vaccine": "influenza", "date": "2025-10-01"}, "immunization"},
		{map[string]any{"log": "note", "text": "slept badly"}, "note"},
	}
	for _, tt := range ok {
		t.Run(tt.body["log"].(string), func(t *testing.T) {
			rec, _ := c.post(tt.body)
			if rec["type"] != tt.kind {
				t.Errorf("type %v, want %s", rec["type"], tt.kind)
			}
		})
	}
	bad := []struct {
		name  string
		body  any
		field string
	}{
		{"implausible bp", map[string]any{"log": "vital", "kind": "bp", "value": "80/120"}, "value"},
		{"unknown vital", map[string]any{"log": "vital", "kind": "iq", "value": "120"}, "kind"},
		{"field of another log", map[string]any{"log": "med", "name": "x", "kind": "bp"}, "kind"},
		{"unknown field", `{"log":"note","text":"x","colour":"red"}`, "colour"},
		{"missing name", map[string]any{"log": "med"}, "name"},
		{"bad date", map[string]any{"log": "note", "text": "x", "at": "last tuesday-ish"}, "at"},
		{"severity range", map[string]any{"log": "symptom", "name": "x", "severity": 11}, "severity"},
		{"unknown log", map[string]any{"log": "mood", "name": "x"}, "log"},
		{"both", map[string]any{"log": "note", "resourceType": "Condition"}, "not both"},
		{"neither", map[string]any{"name": "x"}, "resourceType"},
		{"array", `[1,2]`, "object"},
		{"FHIR date that is not one", `{"resourceType":"Condition","code":{"text":"Asthma"},"onsetDateTime":"Plorkington"}`, "onsetDateTime"},
		{"FHIR date in another format", `{"resourceType":"Observation","status":"final","code":{"text":"x"},"effectiveDateTime":"05/01/2024"}`, "effectiveDateTime"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			r := c.do("POST", "/api/v1/records", tt.body)
			want(t, r, http.StatusBadRequest)
			if !strings.Contains(r.errMsg(), tt.field) {
				t.Errorf("message %q does not name %q", r.errMsg(), tt.field)
			}
		})
	}
	// Nothing of the bad ones was written: 8 records + the Patient.
	var list api.RecordList
	r := c.do("GET", "/api/v1/records", nil)
	r.decode(t, &list)
	if len(list.Records) != len(ok)+1 {
		t.Fatalf("%d records", len(list.Records))
	}
}

func TestListRecords(t *testing.T) {
	ts := newTestServer(t, func(c *Config) {
		c.Importers = &importers.Registry{}
		c.Importers.Register(lines{})
	})
	c := ts.signup("alice")
	for i := 0; i < 7; i++ {
		c.post(map[string]any{"log": "symptom", "name": fmt.Sprint("cough ", i), "severity": i, "at": fmt.Sprintf("2026-03-%02dT10:00:00Z", i+1)})
	}
	c.post(map[string]any{"log": "vital", "kind": "hr", "value": "72", "at": "2026-03-04T10:00:00Z"})
	list := func(q string) api.RecordList {
		t.Helper()
		r := c.do("GET", "/api/v1/records?"+q, nil)
		want(t, r, http.StatusOK)
		var l api.RecordList
		r.decode(t, &l)
		return l
	}
	if l := list("type=symptom"); len(l.Records) != 7 || l.Records[0].Display == "" || len(l.Records[0].Resource) == 0 {
		t.Fatalf("symptoms: %+v", l)
	}
	if l := list("type=vitals,symptoms&since=2026-03-04&until=2026-03-05"); len(l.Records) != 2 {
		t.Fatalf("dated: %+v", l)
	}
	if l := list("q=" + url.QueryEscape("cough 3")); len(l.Records) != 1 {
		t.Fatalf("q: %+v", l)
	}
	if l := list("source=self&type=vital"); len(l.Records) != 1 || l.Records[0].Source != "self" {
		t.Fatalf("source: %+v", l)
	}
	// Paging: 3 at a time, newest first, every record once.
	var ids []string
	q := "type=symptom&limit=3"
	for page := 0; ; page++ {
		l := list(q)
		for _, r := range l.Records {
			ids = append(ids, r.ID)
		}
		if l.NextCursor == "" {
			break
		}
		if page > 5 {
			t.Fatal("paging does not end")
		}
		q = "type=symptom&limit=3&cursor=" + l.NextCursor
	}
	all := list("type=symptom")
	if len(ids) != 7 {
		t.Fatalf("paged %d records", len(ids))
	}
	for i, r := range all.Records {
		if ids[i] != r.ID {
			t.Fatalf("page order differs at %d", i)
		}
	}
	// A cursor is sealed: it names the page's last record without
	// showing its ID or date, and only the account that gave it out
	// takes it. The offset cursors earlier servers gave out still work.
	first := list("type=symptom&limit=3")
	raw, _ := base64.RawURLEncoding.DecodeString(first.NextCursor)
	for _, r := range first.Records {
		if strings.Contains(string(raw), r.ID) || strings.Contains(string(raw), "2026") {
			t.Fatalf("the cursor shows what it points to: %q", raw)
		}
	}
	// Undated records (conditions without an onset) come after the
	// dated ones newest first; paging crosses from one to the other
	// without giving a record twice or leaving one out.
	want(t, c.upload("conditions.txt", "#lines\nCondition asthma\nCondition gout\nCondition eczema\n"), http.StatusCreated)
	everything := list("")
	if n := len(everything.Records); n < 11 || everything.Records[n-1].Date != "" {
		t.Fatalf("%d records, the last dated %q: want 11 or more, the undated conditions last", n, everything.Records[n-1].Date)
	}
	for _, limit := range []int{1, 2, 3, 7, 8, 9} {
		var paged []string
		q := fmt.Sprint("limit=", limit)
		for page := 0; ; page++ {
			l := list(q)
			for _, r := range l.Records {
				paged = append(paged, r.ID)
			}
			if l.NextCursor == "" || page > 12 {
				break
			}
			q = fmt.Sprint("limit=", limit, "&cursor=", l.NextCursor)
		}
		if len(paged) != len(everything.Records) {
			t.Fatalf("limit %d: paged %d records, want %d", limit, len(paged), len(everything.Records))
		}
		for i, r := range everything.Records {
			if paged[i] != r.ID {
				t.Fatalf("limit %d: page order differs at %d", limit, i)
			}
		}
	}
	bob := ts.signup("bob")
	want(t, bob.do("GET", "/api/v1/records?cursor="+first.NextCursor, nil), http.StatusBadRequest)
	if l := list("type=symptom&limit=3&cursor=" + base64.RawURLEncoding.EncodeToString([]byte("o:3"))); len(l.Records) != 3 || l.Records[0].ID != ids[3] {
		t.Fatalf("offset cursor: %+v", l)
	}
	for _, q := range []string{"limit=0", "limit=1001", "limit=x", "cursor=!!!", "cursor=bm9wZQ", "since=whenever", "cursor=" + base64.RawURLEncoding.EncodeToString([]byte("c:x"))} {
		want(t, c.do("GET", "/api/v1/records?"+q, nil), http.StatusBadRequest)
	}
}

// TestIsolation: one account's record IDs do not exist for another.
func TestIsolation(t *testing.T) {
	ts := newTestServer(t, nil)
	alice := ts.signup("alice")
	bob := ts.signup("bob")
	rec, _ := alice.post(map[string]any{"log": "note", "text": "alice's secret"})
	id := rec["id"].(string)
	bob.post(map[string]any{"log": "note", "text": "bob's note"})

	for _, tt := range []struct {
		method string
		body   any
		hdr    []string
	}{
		{"GET", nil, nil},
		{"PUT", map[string]any{"resourceType": "DocumentReference"}, []string{"If-Match", `"v1"`}},
		{"DELETE", nil, nil},
	} {
		r := bob.do(tt.method, "/api/v1/records/"+id, tt.body, tt.hdr...)
		want(t, r, http.StatusNotFound)
	}
	for _, path := range []string{"/api/v1/records", "/api/v1/changes", "/api/v1/audit", "/api/v1/records?q=secret"} {
		r := bob.do("GET", path, nil)
		want(t, r, http.StatusOK)
		if strings.Contains(string(r.body), id) || strings.Contains(string(r.body), "alice") {
			t.Errorf("%s shows alice's data: %s", path, r.body)
		}
	}
	// Alice's record is untouched.
	r := alice.do("GET", "/api/v1/records/"+id, nil)
	want(t, r, http.StatusOK)
	if r.header.Get("ETag") != `"v1"` {
		t.Errorf("alice's record changed: %s", r.header.Get("ETag"))
	}
}

func TestChangesSync(t *testing.T) {
	ts := newTestServer(t, nil)
	writer := ts.signup("alice")
	reader := ts.client()
	reader.login("alice", testPass)

	// The reader's replica: id -> version, following the feed with small pages.
	replica := map[string]float64{}
	var since uint64
	follow := func() {
		t.Helper()
		for page := 0; ; page++ {
			r := reader.do("GET", fmt.Sprintf("/api/v1/changes?since=%d&limit=2", since), nil)
			want(t, r, http.StatusOK)
			var ch api.Changes
			r.decode(t, &ch)
			if len(ch.Changes) > 2 {
				t.Fatalf("page of %d", len(ch.Changes))
			}
			for _, c := range ch.Changes {
				if c.Seq <= since {
					t.Fatalf("seq %d after %d", c.Seq, since)
				}
				if c.Deleted {
					if c.Record != nil {
						t.Fatal("tombstone with a record")
					}
					delete(replica, c.ID)
				} else {
					replica[c.ID] = float64(c.Record.Version)
				}
			}
			since = ch.Next
			if !ch.More {
				return
			}
			if page > 50 {
				t.Fatal("feed does not end")
			}
		}
	}
	truth := func() map[string]float64 {
		r := writer.do("GET", "/api/v1/records?limit=1000", nil)
		var l api.RecordList
		r.decode(t, &l)
		m := map[string]float64{}
		for _, rec := range l.Records {
			m[rec.ID] = float64(rec.Version)
		}
		return m
	}
	check := func(step string) {
		t.Helper()
		follow()
		if w := truth(); fmt.Sprint(w) != fmt.Sprint(replica) {
			t.Fatalf("%s: replica %v, server %v", step, replica, w)
		}
	}
	check("initial")
	var ids []string
	for i := 0; i < 5; i++ {
		rec, _ := writer.post(map[string]any{"log": "symptom", "name": fmt.Sprint("s", i)})
		ids = append(ids, rec["id"].(string))
	}
	check("added")
	for _, id := range ids[:2] {
		r := writer.do("GET", "/api/v1/records/"+id, nil)
		var rec map[string]any
		r.decode(t, &rec)
		want(t, writer.do("PUT", "/api/v1/records/"+id, rec["resource"], "If-Match", r.header.Get("ETag")), http.StatusOK)
	}
	want(t, writer.do("DELETE", "/api/v1/records/"+ids[4], nil), http.StatusNoContent)
	check("edited and deleted")
	want(t, writer.do("DELETE", "/api/v1/records/"+ids[0], nil), http.StatusNoContent)
	writer.post(map[string]any{"log": "note", "text": "late"})
	check("more")
	// Caught up: an empty page with the same cursor.
	r := reader.do("GET", fmt.Sprintf("/api/v1/changes?since=%d", since), nil)
	var ch api.Changes
	r.decode(t, &ch)
	if len(ch.Changes) != 0 || ch.Next != since || ch.More {
		t.Fatalf("caught up: %s", r.body)
	}
	want(t, reader.do("GET", "/api/v1/changes?since=-1", nil), http.StatusBadRequest)
}

func TestConcurrentWriters(t *testing.T) {
	ts := newTestServer(t, nil)
	clients := []*client{ts.signup("alice")}
	for i := 0; i < 3; i++ {
		c := ts.client()
		c.login("alice", testPass)
		clients = append(clients, c)
	}
	done := make(chan struct{})
	for i, c := range clients {
		go func(i int, c *client) {
			defer func() { done <- struct{}{} }()
			for j := 0; j < 10; j++ {
				r := c.do("POST", "/api/v1/records", map[string]any{"log": "note", "text": fmt.Sprint(i, "-", j)})
				if r.status != http.StatusCreated {
					t.Errorf("status %d: %s", r.status, r.body)
				}
			}
		}(i, c)
	}
	for range clients {
		<-done
	}
	var l api.RecordList
	r := clients[0].do("GET", "/api/v1/records?type=note", nil)
	r.decode(t, &l)
	if len(l.Records) != 40 {
		t.Fatalf("%d notes", len(l.Records))
	}
	var ch api.Changes
	clients[1].do("GET", "/api/v1/changes?limit=1000", nil).decode(t, &ch)
	if len(ch.Changes) != 41 {
		t.Fatalf("%d changes", len(ch.Changes))
	}
	_ = json.Valid
}
