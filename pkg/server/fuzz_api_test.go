package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/phr-project/phr/pkg/server/api"
	"github.com/phr-project/phr/pkg/share"
)

// apiBodyRoute is a route whose body the server decodes, as the fuzzer
// sends it.
type apiBodyRoute struct {
	method, path string
	hdr          []string
}

// FuzzAPIBodies sends arbitrary bytes as the body of every route that
// decodes JSON (routes the body table marks as JSON, and the SHL manifest
// request) to the in-process echo app, with a logged-in session prepared
// once. Whatever the body, the answer is never a 5xx but the documented
// 503 (busy), nothing panics (a panic would be a 500), and every answer
// that is not a success is a JSON error {"error":{"code","message"}} (or,
// for a manifest request with a wrong passcode, the specification's
// {"remainingAttempts": n}); successes with a body are JSON too.
func FuzzAPIBodies(f *testing.F) {
	s, err := New(Config{
		DataDir: f.TempDir(), PublicURL: "https://phr.example.org", VaultNoSync: true, Registration: RegistrationOpen,
		// httptest's requests come from 192.0.2.1: registration must be
		// open for them. The default limits stay: the fuzzer meets 429s as a client
		// would, and cannot grow the vault without bound.
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { s.Close() })
	h := s.Handler()
	do := func(method, path, token string, body []byte, hdr ...string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, path, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	mustJSON := func(v any) []byte {
		b, err := json.Marshal(v)
		if err != nil {
			f.Fatal(err)
		}
		return b
	}
	expect := func(rec *httptest.ResponseRecorder, status int, v any) {
		if rec.Code != status {
			f.Fatalf("setup: %d %s", rec.Code, rec.Body)
		}
		if v != nil {
			if err := json.Unmarshal(rec.Body.Bytes(), v); err != nil {
				f.Fatal(err)
			}
		}
	}
	expect(do("POST", "/api/v1/accounts", "", mustJSON(api.CreateAccountRequest{Username: "fuzz", Passphrase: testPass})), http.StatusCreated, nil)
	var sess api.Session
	expect(do("POST", "/api/v1/sessions", "", mustJSON(api.SessionRequest{Username: "fuzz", Passphrase: testPass})), http.StatusCreated, &sess)
	tok := sess.Token
	var rec map[string]any
	expect(do("POST", "/api/v1/records", tok, []byte(`{"log":"med","name":"Metformin","dose":"500 mg"}`)), http.StatusCreated, &rec)
	recID := rec["id"].(string)
	exp := time.Now().Add(24 * time.Hour).UTC().Format(time.RFC3339)
	var long, locked api.ShareCreated
	expect(do("POST", "/api/v1/shares", tok, []byte(`{"select":{"summary":true},"long_term":true,"expires_at":"`+exp+`"}`)), http.StatusCreated, &long)
	expect(do("POST", "/api/v1/shares", tok, []byte(`{"select":{"summary":true},"passcode":"1234","expires_at":"`+exp+`"}`)), http.StatusCreated, &locked)
	jwe, err := share.EncryptFile(share.NewKey(), share.ContentTypeFHIR, []byte(`{"resourceType":"Bundle","type":"collection"}`), true)
	if err != nil {
		f.Fatal(err)
	}

	routes := []apiBodyRoute{
		{"POST", "/api/v1/accounts", nil},
		{"POST", "/api/v1/accounts/recover", nil},
		{"POST", "/api/v1/backup", nil},
		{"POST", "/api/v1/sessions", nil},
		{"POST", "/api/v1/devices", nil},
		{"POST", "/api/v1/records", nil},
		{"PUT", "/api/v1/records/" + recID, []string{"If-Match", "*"}},
		{"POST", "/api/v1/ingest", nil},
		{"POST", "/api/v1/shares", nil},
		{"PUT", "/api/v1/shares/" + long.ID + "/files", nil},
		{"POST", "/api/v1/keys/passphrase", nil},
		{"POST", "/api/v1/keys/recovery", nil},
		{"POST", "/api/v1/keys/rotate", nil},
		{"POST", "/shl/" + locked.ID, nil},
		{"POST", "/api/v1/passkeys/register/begin", nil},
		{"POST", "/api/v1/passkeys/register/finish", nil},
		{"POST", "/api/v1/passkeys/login/begin", nil},
		{"POST", "/api/v1/passkeys/login/finish", nil},
	}
	// Every route that decodes JSON is here.
	rules := s.bodyRules()
	for key, rule := range rules {
		if rule.depth == 0 && !strings.HasPrefix(key, "POST /shl/") {
			continue
		}
		found := false
		for _, r := range routes {
			tmpl := strings.NewReplacer(recID, ":id", long.ID, ":id", locked.ID, ":id").Replace(r.path)
			found = found || r.method+" "+tmpl == key
		}
		if !found {
			f.Fatalf("%s decodes JSON but is not fuzzed", key)
		}
	}
	seeds := [][]string{
		{`{"username":"someone","passphrase":"correct horse battery"}`, `{"username":"x","passphrase":""}`},
		{`{"username":"fuzz","passphrase":"wrong guess!"}`, `{"username":"fuzz","device_credential":"AGE-SECRET-KEY-1XXX"}`},
		{`{"label":"phone"}`, `{}`},
		{`{"log":"symptom","name":"migraine","severity":7}`, `{"resourceType":"Observation","status":"final","code":{"text":"x"},"valueQuantity":{"value":1e400}}`,
			`{"log":"vital","kind":"bp","value":"120/80","at":"yesterday"}`, `{"log":"allergy","substance":"nuts","severity":"severe"}`,
			`{"resourceType":"Patient","name":[{"text":"x"}],"contained":[{"resourceType":"Basic"}]}`},
		{`{"resourceType":"MedicationStatement","status":"active","medicationCodeableConcept":{"text":"Metformin"}}`, `{"resourceType":"Condition"}`},
		{`{"device":"watch","readings":[{"id":"r1","type":"heart_rate","value":61,"at":"2026-05-01T08:00:00Z"},{"id":"r2","type":"bp","value":120,"value2":80,"at":"2026-05-01T08:00:00Z"}]}`},
		{`{"select":{"types":["medication"],"since":"2020-01-01T00:00:00Z"},"expires_at":"` + exp + `","passcode":"1","max_uses":2}`,
			`{"select":{"ids":["` + recID + `"]},"direct":true,"expires_at":"` + exp + `"}`,
			`{"files":[{"content_type":"application/fhir+json","jwe":"` + jwe + `"}],"expires_at":"` + exp + `","label":"l"}`},
		{`{"files":[{"content_type":"application/fhir+json","jwe":"` + jwe + `"}]}`, `{"files":[]}`},
		{`{"passphrase":"correct horse battery","new_passphrase":"correct horse battery"}`},
		{`{"passphrase":"wrong"}`},
		{`{"passphrase":"wrong"}`},
		{`{"recipient":"Dr. X","passcode":"1234","embeddedLengthMax":0}`, `{"recipient":"Dr. X","passcode":"0000"}`, `{"recipient":1}`},
		{`{"passphrase":"correct horse battery","username":"fuzz","label":"phone"}`, `{"passphrase":"wrong","username":"fuzz"}`, `{"passphrase":"x","username":"someone else"}`},
		{`{"ceremony":"x","credential":{"id":"AA","rawId":"AA","type":"public-key","response":{"clientDataJSON":"e30","attestationObject":"oA"}}}`, `{"ceremony":"","credential":null}`},
		{`{}`, `{"x":1}`},
		{`{"ceremony":"x","credential":{"id":"AA","rawId":"AA","type":"public-key","response":{"clientDataJSON":"e30","authenticatorData":"AA","signature":"AA","userHandle":"AA"}}}`, `{"ceremony":"x","credential":[]}`},
	}
	for i, ss := range seeds {
		for _, seed := range ss {
			f.Add(uint8(i), []byte(seed))
		}
	}
	for _, junk := range []string{"", "null", "[]", `{"a":` + strings.Repeat("[", 200), "\x00\xff", `{"log":"note","text":"\ud800"}`} {
		f.Add(uint8(3), []byte(junk))
	}

	f.Fuzz(func(t *testing.T, which uint8, body []byte) {
		r := routes[int(which)%len(routes)]
		res := do(r.method, r.path, tok, body, r.hdr...)
		what := r.method + " " + r.path
		out := res.Body.Bytes()
		switch {
		case res.Code >= 500 && res.Code != http.StatusServiceUnavailable:
			t.Fatalf("%s: %d %s", what, res.Code, out)
		case res.Code == http.StatusNoContent:
			return
		case res.Code < 300:
			if !json.Valid(out) {
				t.Fatalf("%s: %d with a body that is not JSON: %q", what, res.Code, out)
			}
			return
		case res.Code == http.StatusUnauthorized && strings.HasPrefix(r.path, "/shl/"):
			var p share.InvalidPasscodeResponse
			if err := json.Unmarshal(out, &p); err != nil {
				t.Fatalf("%s: 401 %q", what, out)
			}
			return
		}
		var e api.ErrorBody
		if err := json.Unmarshal(out, &e); err != nil || e.Error.Code == "" || e.Error.Message == "" {
			t.Fatalf("%s: %d without a JSON error: %q", what, res.Code, out)
		}
	})
}

// FuzzJSONShape holds checkJSONShape to a reference count made with
// encoding/json's tokenizer: for valid JSON, the depth and number of
// items it measures are exactly the limits the text passes, and one less
// of either is refused. Anything else must not panic.
func FuzzJSONShape(f *testing.F) {
	for _, s := range []string{`0`, `[]`, `{"a":[1,{"b":"]"}],"c":{}}`, `[[[[]]],[],{"x":"\\\""}]`, `"\u005b"`, `{"a":1,,}`, `[`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		depth, items, ok := referenceShape(data)
		if !ok {
			checkJSONShape(data, 3, 3)
			return
		}
		if err := checkJSONShape(data, max(depth, 1), items); err != nil {
			t.Fatalf("%q: depth %d, %d items refused: %v", data, depth, items, err)
		}
		if depth > 1 {
			if err := checkJSONShape(data, depth-1, 1<<30); err == nil {
				t.Fatalf("%q: depth %d passes a limit of %d", data, depth, depth-1)
			}
		}
		if items > 0 {
			if err := checkJSONShape(data, 1<<30, items-1); err == nil {
				t.Fatalf("%q: %d items pass a limit of %d", data, items, items-1)
			}
		}
	})
}

// referenceShape measures valid JSON with encoding/json: its nesting
// depth and its array elements plus object members.
func referenceShape(data []byte) (depth, items int, ok bool) {
	if !json.Valid(data) {
		return 0, 0, false
	}
	type frame struct{ obj, wantKey bool }
	var st []frame
	valueDone := func() {
		if n := len(st); n > 0 && st[n-1].obj {
			st[n-1].wantKey = true
		}
	}
	d := json.NewDecoder(bytes.NewReader(data))
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			return depth, items, true
		}
		if err != nil {
			return 0, 0, false
		}
		n := len(st)
		if n > 0 && st[n-1].obj && st[n-1].wantKey && tok != json.Delim('}') {
			items++ // a member's key
			st[n-1].wantKey = false
			continue
		}
		switch tok {
		case json.Delim('['), json.Delim('{'):
			if n > 0 && !st[n-1].obj {
				items++
			}
			st = append(st, frame{obj: tok == json.Delim('{'), wantKey: tok == json.Delim('{')})
			depth = max(depth, len(st))
		case json.Delim(']'), json.Delim('}'):
			st = st[:n-1]
			valueDone()
		default:
			if n > 0 && !st[n-1].obj {
				items++
			}
			valueDone()
		}
	}
}
