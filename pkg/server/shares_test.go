package server

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/phr-project/phr/pkg/fhirdoc"
	"github.com/phr-project/phr/pkg/server/api"
	"github.com/phr-project/phr/pkg/share"
	"github.com/phr-project/phr/pkg/shlhost"
	"github.com/phr-project/phr/pkg/vault"
	"github.com/phr-project/phr/pkg/viewer"
)

// TestSharesFromHostedVault: the app asks the server to share records of
// the hosted vault; the link opens and decrypts; another account can
// neither see, read the log of, nor revoke the share; revocation works.
func TestSharesFromHostedVault(t *testing.T) {
	ts := newTestServer(t, nil)
	// The test server learns its URL only after New: point the share host at it.
	ts.shl = shlhost.New(ts.shares, ts.url, shlhost.Options{Now: ts.cfg.Now})
	alice := ts.signup("alice")
	bob := ts.signup("bob")
	want(t, alice.do("POST", "/api/v1/records", map[string]any{"log": "med", "name": "Metformin", "dose": "500 mg"}), http.StatusCreated)
	want(t, alice.do("POST", "/api/v1/records", map[string]any{"log": "allergy", "substance": "Penicillin"}), http.StatusCreated)

	exp := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	r := alice.do("POST", "/api/v1/shares", `{"select":{"types":["medication"]},"expires_at":"`+exp+`","passcode":"1234","label":"meds"}`)
	want(t, r, http.StatusCreated)
	var created api.ShareCreated
	r.decode(t, &created)
	if !strings.HasPrefix(created.Link, ts.url+viewer.Path+"#shlink:/") {
		t.Fatalf("link %q", created.Link)
	}
	p, err := share.Decode(created.Link)
	if err != nil {
		t.Fatal(err)
	}
	anon := ts.client()
	mr := anon.do("POST", strings.TrimPrefix(p.URL, ts.url), `{"recipient":"Dr. X","passcode":"1234"}`)
	want(t, mr, http.StatusOK)
	if mr.header.Get("Access-Control-Allow-Origin") != "*" {
		t.Error("no CORS on /shl")
	}
	var m share.Manifest
	mr.decode(t, &m)
	key, _ := p.KeyBytes()
	_, plain, err := share.DecryptFile(key, m.Files[0].Embedded)
	if err != nil || !strings.Contains(string(plain), "Metformin") || strings.Contains(string(plain), "Penicillin") {
		t.Fatalf("shared content: %v", err)
	}
	// CORS only on /shl.
	if h := alice.do("GET", "/api/v1/shares", nil).header.Get("Access-Control-Allow-Origin"); h != "" {
		t.Errorf("CORS on the API: %q", h)
	}
	// Isolation: bob sees none of alice's shares.
	var bobList struct{ Shares []api.ShareInfo }
	bob.do("GET", "/api/v1/shares", nil).decode(t, &bobList)
	if len(bobList.Shares) != 0 {
		t.Fatalf("bob lists %d shares", len(bobList.Shares))
	}
	want(t, bob.do("GET", "/api/v1/shares/"+created.ID+"/log", nil), http.StatusNotFound)
	want(t, bob.do("DELETE", "/api/v1/shares/"+created.ID, nil), http.StatusNotFound)
	want(t, bob.do("PUT", "/api/v1/shares/"+created.ID+"/files", `{"files":[{"content_type":"application/fhir+json","jwe":"x.y.z"}]}`), http.StatusBadRequest)
	jwe, _ := share.EncryptFile(share.NewKey(), share.ContentTypeFHIR, []byte(`{"resourceType":"Bundle"}`), true)
	want(t, bob.do("PUT", "/api/v1/shares/"+created.ID+"/files", map[string]any{"files": []map[string]string{{"content_type": share.ContentTypeFHIR, "jwe": jwe}}}), http.StatusNotFound)
	// Not a long-term share: its files cannot change.
	want(t, alice.do("PUT", "/api/v1/shares/"+created.ID+"/files", map[string]any{"files": []map[string]string{{"content_type": share.ContentTypeFHIR, "jwe": jwe}}}), http.StatusBadRequest)
	// Alice's log names the recipient; then she revokes.
	var log struct{ Log []api.ShareLogEntry }
	alice.do("GET", "/api/v1/shares/"+created.ID+"/log", nil).decode(t, &log)
	if len(log.Log) != 1 || log.Log[0].Recipient != "Dr. X" {
		t.Fatalf("log %+v", log)
	}
	// The access shows in alice's share audit, not in bob's.
	var audit api.Audit
	alice.do("GET", "/api/v1/audit/shares", nil).decode(t, &audit)
	found := false
	for _, e := range audit.Entries {
		if e.Event == AuditShareAccess && e.Ref == created.ID && e.Label == "Dr. X" && e.Success {
			found = true
		}
	}
	if !found {
		t.Errorf("share access not in the audit log: %+v", audit.Entries)
	}
	var bobAudit api.Audit
	bob.do("GET", "/api/v1/audit/shares", nil).decode(t, &bobAudit)
	for _, e := range bobAudit.Entries {
		if e.Event == AuditShareAccess {
			t.Error("bob's audit log shows alice's share access")
		}
	}
	want(t, alice.do("DELETE", "/api/v1/shares/"+created.ID, nil), http.StatusOK)
	want(t, anon.do("POST", strings.TrimPrefix(p.URL, ts.url), `{"recipient":"Dr. X","passcode":"1234"}`), http.StatusNotFound)
	// Bad requests.
	want(t, alice.do("POST", "/api/v1/shares", `{"select":{"types":["medication"]}}`), http.StatusBadRequest)
	want(t, alice.do("POST", "/api/v1/shares", `{"select":{"types":["careplan"]},"expires_at":"`+exp+`"}`), http.StatusBadRequest)
	want(t, anon.do("GET", "/api/v1/shares", nil), http.StatusUnauthorized)
	// The viewer is served with its CSP.
	vr := anon.do("GET", viewer.Path, nil)
	want(t, vr, http.StatusOK)
	if vr.header.Get("Content-Security-Policy") != viewer.ContentSecurityPolicy {
		t.Errorf("viewer CSP %q", vr.header.Get("Content-Security-Policy"))
	}
	// The share store holds no plaintext of the share.
	raw, _ := json.Marshal(m)
	if strings.Contains(string(raw), "Metformin") {
		t.Error("manifest holds plaintext")
	}
}

func TestBackupAPI(t *testing.T) {
	ts := newTestServer(t, nil)
	alice := ts.signup("alice")
	want(t, alice.do("POST", "/api/v1/records", map[string]any{"log": "med", "name": "Metformin"}), http.StatusCreated)
	id, _ := age.GenerateX25519Identity()
	backup := func(pass string, recipients ...string) *resp {
		return alice.do("POST", "/api/v1/backup", BackupRequest{Passphrase: pass, Recipients: recipients})
	}
	r := backup(testPass, id.Recipient().String())
	want(t, r, http.StatusOK)
	if strings.Contains(string(r.body), "Metformin") {
		t.Fatal("backup holds plaintext")
	}
	b, err := vault.VerifyBackup(bytes.NewReader(r.body), id)
	if err != nil {
		t.Fatal(err)
	}
	if b.Trailer.Records != 2 { // the Patient and the medication
		t.Fatalf("backup of %d records", b.Trailer.Records)
	}
	want(t, backup(testPass), http.StatusBadRequest)
	want(t, backup(testPass, "age1nope"), http.StatusBadRequest)
	want(t, ts.client().do("POST", "/api/v1/backup", BackupRequest{Passphrase: testPass, Recipients: []string{id.Recipient().String()}}), http.StatusUnauthorized)
	// The session's token alone does not name a backup's recipient.
	want(t, backup("", id.Recipient().String()), http.StatusUnauthorized)
	want(t, backup("not the passphrase", id.Recipient().String()), http.StatusUnauthorized)
	// The old way, a GET with the recipient in the query, is gone.
	want(t, alice.do("GET", "/api/v1/backup?recipient="+id.Recipient().String(), nil), http.StatusMethodNotAllowed)
}

func TestKeysAPI(t *testing.T) {
	ts := newTestServer(t, nil)
	alice := ts.signup("alice")
	want(t, alice.do("POST", "/api/v1/records", map[string]any{"log": "med", "name": "Metformin"}), http.StatusCreated)
	var keys struct{ Keys []KeySlot }
	alice.do("GET", "/api/v1/keys", nil).decode(t, &keys)
	if len(keys.Keys) != 2 {
		t.Fatalf("keys %+v", keys)
	}
	pass := testPass
	want(t, alice.do("POST", "/api/v1/keys/passphrase", map[string]string{"passphrase": "wrong one here", "new_passphrase": "a brand new passphrase"}), http.StatusUnauthorized)
	want(t, alice.do("POST", "/api/v1/keys/passphrase", map[string]string{"passphrase": pass, "new_passphrase": "short"}), http.StatusBadRequest)
	want(t, alice.do("POST", "/api/v1/keys/passphrase", map[string]string{"passphrase": pass, "new_passphrase": "a brand new passphrase"}), http.StatusNoContent)
	var rec struct {
		RecoveryCode string `json:"recovery_code"`
	}
	r := alice.do("POST", "/api/v1/keys/rotate", map[string]string{"passphrase": "a brand new passphrase"})
	want(t, r, http.StatusOK)
	r.decode(t, &rec)
	if rec.RecoveryCode == "" {
		t.Fatal("no recovery code after rotate")
	}
	// The session goes on after rotation; records are all there.
	var list api.RecordList
	alice.do("GET", "/api/v1/records?type=medication", nil).decode(t, &list)
	if len(list.Records) != 1 {
		t.Fatalf("after rotate: %d medications", len(list.Records))
	}
	r = alice.do("POST", "/api/v1/keys/recovery", map[string]string{"passphrase": "a brand new passphrase"})
	want(t, r, http.StatusOK)
	// The old passphrase no longer logs in; the new one does.
	c := ts.client()
	want(t, c.do("POST", "/api/v1/sessions", map[string]string{"username": "alice", "passphrase": pass}), http.StatusUnauthorized)
	want(t, c.do("POST", "/api/v1/sessions", map[string]string{"username": "alice", "passphrase": "a brand new passphrase"}), http.StatusCreated)
}

// TestShareNeedsPublicURL: without a public URL a link may carry (https,
// or http on a loopback host), creating a share is a clear 503, not an
// internal error, and the server says so at start.
func TestShareNeedsPublicURL(t *testing.T) {
	for _, u := range []string{"http://0.0.0.0:8080", "http://phr.example.org", "https://:8443"} {
		ts := newTestServer(t, func(c *Config) { c.PublicURL = u })
		alice := ts.signup("alice")
		r := alice.do("POST", "/api/v1/shares", map[string]any{"select": map[string]any{"summary": true}, "expires_at": time.Now().Add(time.Hour)})
		want(t, r, http.StatusServiceUnavailable)
		if r.errCode() != api.CodeUnavailable || !strings.Contains(r.errMsg(), "public URL") {
			t.Errorf("%s: %s", u, r.body)
		}
		if !strings.Contains(ts.logs.String(), "sharing is off") {
			t.Errorf("%s: no warning at start", u)
		}
	}
}

// TestDirectAndKTCShares: phrd builds a Kill-the-Clipboard share (a
// direct link to a patient-shared bundle) and a plain direct one from the
// hosted vault; both answer a GET with the recipient, logged; the
// requests the profile rules out are refused.
func TestDirectAndKTCShares(t *testing.T) {
	ts := newTestServer(t, nil)
	ts.shl = shlhost.New(ts.shares, ts.url, shlhost.Options{Now: ts.cfg.Now})
	alice := ts.signup("alice")
	want(t, alice.do("POST", "/api/v1/records", map[string]any{"log": "med", "name": "Lisinopril", "dose": "10 mg"}), http.StatusCreated)
	want(t, alice.do("POST", "/api/v1/records", map[string]any{"log": "allergy", "substance": "Penicillin"}), http.StatusCreated)
	exp := time.Now().Add(15 * time.Minute).UTC().Format(time.RFC3339)
	anon := ts.client()
	tests := []struct {
		name, body string
		check      func(t *testing.T, data []byte)
	}{
		{"ktc", `{"select":{"types":["medication","allergy"],"profile":"ktc","story":"I walk every day."},"expires_at":"` + exp + `","label":"check-in"}`, func(t *testing.T, data []byte) {
			if err := fhirdoc.CheckKTCBundle(data); err != nil {
				t.Fatal(err)
			}
			if n := strings.Count(string(data), `"DocumentReference"`); n != 2 {
				t.Errorf("%d documents, want the rendered PDF and the story", n)
			}
		}},
		{"direct", `{"select":{"types":["allergy"]},"expires_at":"` + exp + `","direct":true}`, func(t *testing.T, data []byte) {
			if !strings.Contains(string(data), "Penicillin") || strings.Contains(string(data), "Lisinopril") {
				t.Errorf("content %s", data)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := alice.do("POST", "/api/v1/shares", tt.body)
			want(t, r, http.StatusCreated)
			var created api.ShareCreated
			r.decode(t, &created)
			p, err := share.Decode(created.Link)
			if err != nil || p.Flag != share.FlagDirect || created.Flag != share.FlagDirect {
				t.Fatalf("payload %+v %v", p, err)
			}
			if tt.name == "ktc" {
				if err := fhirdoc.CheckKTCPayload(p); err != nil {
					t.Fatal(err)
				}
			}
			path := strings.TrimPrefix(p.URL, ts.url)
			want(t, anon.do("GET", path, nil), http.StatusBadRequest) // no recipient
			fr := anon.do("GET", path+"?recipient=Verona+Health+System", nil)
			want(t, fr, http.StatusOK)
			if ct := fr.header.Get("Content-Type"); ct != share.ContentTypeJOSE {
				t.Errorf("content type %q", ct)
			}
			key, _ := p.KeyBytes()
			_, plain, err := share.DecryptFile(key, string(fr.body))
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, plain)
			var log struct{ Log []api.ShareLogEntry }
			alice.do("GET", "/api/v1/shares/"+created.ID+"/log", nil).decode(t, &log)
			if len(log.Log) != 1 || log.Log[0].Recipient != "Verona Health System" || log.Log[0].Outcome != "ok" {
				t.Fatalf("log %+v", log)
			}
			var audit api.Audit
			alice.do("GET", "/api/v1/audit/shares", nil).decode(t, &audit)
			found := false
			for _, e := range audit.Entries {
				found = found || e.Event == AuditShareAccess && e.Ref == created.ID && e.Label == "Verona Health System" && e.Success
			}
			if !found {
				t.Errorf("the direct GET is not in the share audit: %+v", audit.Entries)
			}
		})
	}
	for _, body := range []string{
		`{"select":{"types":["allergy"],"profile":"ktc"},"expires_at":"` + exp + `","passcode":"1234"}`,
		`{"select":{"types":["allergy"],"profile":"ktc"},"expires_at":"` + exp + `","long_term":true}`,
		`{"select":{"summary":true,"profile":"ktc"},"expires_at":"` + exp + `"}`,
		`{"select":{"types":["allergy"],"profile":"ips"},"expires_at":"` + exp + `"}`,
		`{"select":{"types":["allergy"],"story":"hello"},"expires_at":"` + exp + `"}`,
		`{"select":{"types":["allergy"]},"expires_at":"` + exp + `","direct":true,"passcode":"1234"}`,
		`{"select":{"types":["allergy"],"profile":"ktc","story":"` + strings.Repeat("a", 70000) + `"},"expires_at":"` + exp + `"}`,
	} {
		if r := alice.do("POST", "/api/v1/shares", body); r.status != http.StatusBadRequest {
			t.Errorf("%.120s: %d %s", body, r.status, r.body)
		}
	}
}
