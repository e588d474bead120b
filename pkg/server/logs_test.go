package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/phr-project/phr/pkg/importers/all"
	"github.com/phr-project/phr/pkg/server/api"
	"github.com/phr-project/phr/pkg/share"
)

// Distinctive strings: none of them may reach the log.
const (
	phiPatient   = "Zyxwqv Plorkington"
	phiMed       = "Quuxotrine 50 mg"
	phiNote      = "Snorfblat rash after the Glimmerwick dinner"
	phiCondition = "Vexillary Dyscrasia"
	phiDoctor    = "Dr. Blorptastic"
	phiPasscode  = "passcode-4711-Wubbalub"
	phiFile      = "Plorkington-labs.json"
	phiUser      = "zyxwqv.plorkington@example.org"
	phiPass      = "Tr0ub4dor&3 secret Hobnagle"
	phiNewPass   = "Another Passphrase Quimby"
	phiDevice    = "Zyxwqv's Jellyphone"
)

// TestNoSecretsInLogs runs a whole session against a real server logging
// JSON at debug level: account, wrong and right logins, a device, records
// and edits, an import through the real importers (and a broken one), a
// device ingest, shares with a passcode opened by a recipient (wrong
// passcode, location download, direct link), key changes, a backup, bad
// requests that carry PHI in bodies, paths, queries and headers, and
// logout. Then it greps the log for every known secret and piece of PHI:
// none may be there, while the request lines are.
func TestNoSecretsInLogs(t *testing.T) {
	ts := newTestServer(t, func(c *Config) { c.Importers = all.Default() })
	c := ts.client()
	r := c.do("POST", "/api/v1/accounts", api.CreateAccountRequest{Username: phiUser, Passphrase: phiPass})
	want(t, r, http.StatusCreated)
	var acct api.CreateAccountResponse
	r.decode(t, &acct)
	want(t, c.do("POST", "/api/v1/sessions", api.SessionRequest{Username: phiUser, Passphrase: "wrong pass Plorkington"}), http.StatusUnauthorized)
	want(t, c.do("POST", "/api/v1/sessions", api.SessionRequest{Username: "nobody-" + phiUser, Passphrase: phiPass}), http.StatusUnauthorized)
	c.login(phiUser, phiPass)
	var dev api.DeviceCreated
	c.do("POST", "/api/v1/devices", api.DeviceRequest{Label: phiDevice, Passphrase: phiPass}).decode(t, &dev)

	// Records, by shorthand and as FHIR; an edit; a listing with filters.
	med, etag := c.post(map[string]any{"log": "med", "name": phiMed, "reason": phiCondition, "note": phiNote})
	medID := med["id"].(string)
	note, _ := c.post(map[string]any{"log": "note", "text": phiNote})
	cond, _ := c.post(map[string]any{"resourceType": "Condition", "code": map[string]any{"text": phiCondition}, "note": []any{map[string]any{"text": phiNote}}})
	med["resource"].(map[string]any)["note"] = []any{map[string]any{"text": phiNote + " (edited)"}}
	want(t, c.do("PUT", "/api/v1/records/"+medID, med["resource"], "If-Match", etag), http.StatusOK)
	c.do("GET", "/api/v1/records?q="+url.QueryEscape(phiMed)+"&source="+url.QueryEscape(phiPatient), nil)
	c.do("GET", "/api/v1/records/"+medID, nil)
	c.do("GET", "/api/v1/changes?since=0", nil)

	// Imports through the real importers: a FHIR bundle with the
	// patient, and a broken file quoting PHI.
	bundle := fmt.Sprintf(`{"resourceType":"Bundle","type":"collection","entry":[
		{"resource":{"resourceType":"Patient","id":"p1","name":[{"text":%q}]}},
		{"resource":{"resourceType":"MedicationStatement","id":"m1","status":"active","medicationCodeableConcept":{"text":%q},"subject":{"reference":"Patient/p1"}}}]}`, phiPatient, phiMed)
	want(t, c.upload(phiFile, bundle), http.StatusCreated)
	r = c.upload("broken-"+phiFile, `{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Patient","name":[{"text":"`+phiPatient+`"}]}`)
	if r.status < 400 || r.status >= 500 {
		t.Fatalf("broken import: %d %s", r.status, r.body)
	}
	c.upload(phiFile, bundle, "format", "Plorkington-format")
	c.upload(phiFile, bundle, "Plorkington-field", "x")
	c.do("POST", "/api/v1/ingest", api.IngestRequest{Device: phiDevice, Readings: []api.Reading{{ID: "Zyxwqv-1", Type: "heart_rate", Value: f(61), At: "2026-05-01T08:00:00Z"}}})

	// Bad input that carries PHI, in bodies, paths, queries and headers.
	for _, bad := range []struct {
		method, path string
		body         any
	}{
		{"POST", "/api/v1/records", map[string]any{"log": "vital", "kind": "bp", "value": "999/1 " + phiPatient}},
		{"POST", "/api/v1/records", map[string]any{"log": "note", "text": phiNote, "Plorkington": 1}},
		{"POST", "/api/v1/records", map[string]any{"log": "symptom", "name": phiCondition, "severity": "Plorkington"}},
		{"POST", "/api/v1/records", `{"resourceType":"Condition","code":{"text":"` + phiCondition + `"}`},
		{"POST", "/api/v1/records", map[string]any{"resourceType": 7, "text": phiNote}},
		{"PUT", "/api/v1/records/" + medID, map[string]any{"resourceType": "Condition", "code": map[string]any{"text": phiCondition}}},
		{"POST", "/api/v1/ingest", api.IngestRequest{Device: phiDevice, Readings: []api.Reading{{ID: phiPatient, Type: "Plorkington", At: phiNote}}}},
		{"GET", "/api/v1/records/Plorkington", nil},
		{"GET", "/api/v1/records?since=" + url.QueryEscape(phiNote), nil},
		{"GET", "/Plorkington/Zyxwqv", nil},
		{"PATCH", "/api/v1/records/" + medID, map[string]any{"text": phiNote}},
		{"POST", "/api/v1/shares", map[string]any{"select": map[string]any{"ids": []string{"Plorkington"}}, "expires_at": time.Now().Add(time.Hour)}},
		{"POST", "/api/v1/shares", map[string]any{"select": map[string]any{"summary": true}, "label": phiPatient + strings.Repeat("!", 80), "expires_at": time.Now().Add(time.Hour)}},
		{"POST", "/api/v1/backup", BackupRequest{Passphrase: phiPass, Recipients: []string{phiPatient}}},
	} {
		r := c.do(bad.method, bad.path, bad.body, "User-Agent", phiPatient, "X-Forwarded-For", "Plorkington", "Referer", "https://x.example/"+phiPatient)
		if r.status < 400 || r.status >= 500 {
			t.Errorf("%s %s: %d %s", bad.method, bad.path, r.status, r.body)
		}
	}
	c.do("GET", "/api/v1/records?q=Plorkington;Zyxwqv", nil) // net/http drops the pair: an unfiltered listing
	rawExchange(t, ts.addr(), "GET /Plorkington HTTP/1.1\r\nHost: x\r\nBad Header Zyxwqv\r\n", nil)

	// Shares: a passcode share opened by a recipient (a wrong passcode
	// first, then a location download), and a direct link.
	exp := time.Now().Add(time.Hour).UTC()
	created, p := c.createShare(map[string]any{"select": map[string]any{"summary": true}, "expires_at": exp, "passcode": phiPasscode, "label": "for " + phiDoctor})
	anon := ts.client()
	manifestPath := strings.TrimPrefix(p.URL, ts.url)
	want(t, anon.do("POST", manifestPath, map[string]any{"recipient": phiDoctor, "passcode": "wrong " + phiPasscode}), http.StatusUnauthorized)
	r = anon.do("POST", manifestPath, map[string]any{"recipient": phiDoctor, "passcode": phiPasscode, "embeddedLengthMax": 0})
	want(t, r, http.StatusOK)
	var m share.Manifest
	r.decode(t, &m)
	location := m.Files[0].Location
	want(t, anon.do("GET", strings.TrimPrefix(location, ts.url), nil), http.StatusOK)
	r = c.do("POST", "/api/v1/shares", map[string]any{"select": map[string]any{"ids": []string{medID}}, "expires_at": exp, "direct": true})
	want(t, r, http.StatusCreated)
	var direct api.ShareCreated
	r.decode(t, &direct)
	want(t, anon.do("GET", strings.TrimPrefix(direct.URL, ts.url)+"?recipient="+url.QueryEscape(phiDoctor), nil), http.StatusOK)
	c.do("GET", "/api/v1/shares/"+created.ID+"/log", nil)
	c.do("GET", "/api/v1/audit", nil)
	want(t, c.do("DELETE", "/api/v1/shares/"+created.ID, nil), http.StatusOK)
	want(t, anon.do("POST", manifestPath, map[string]any{"recipient": phiDoctor, "passcode": phiPasscode}), http.StatusNotFound)

	// Keys and a backup.
	r = c.do("POST", "/api/v1/keys/recovery", map[string]string{"passphrase": phiPass})
	want(t, r, http.StatusOK)
	var rec1 map[string]string
	r.decode(t, &rec1)
	want(t, c.do("POST", "/api/v1/keys/passphrase", map[string]string{"passphrase": "wrong " + phiPass, "new_passphrase": phiNewPass}), http.StatusUnauthorized)
	want(t, c.do("POST", "/api/v1/keys/passphrase", map[string]string{"passphrase": phiPass, "new_passphrase": phiNewPass}), http.StatusNoContent)
	r = c.do("POST", "/api/v1/keys/rotate", map[string]string{"passphrase": phiNewPass})
	want(t, r, http.StatusOK)
	var rec2 map[string]string
	r.decode(t, &rec2)
	backupID, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	want(t, c.do("POST", "/api/v1/backup", BackupRequest{Passphrase: phiNewPass, Recipients: []string{backupID.Recipient().String()}}), http.StatusOK)

	// The key changes removed the phone's credential: it gets a new one.
	want(t, ts.client().do("POST", "/api/v1/sessions", api.SessionRequest{Username: phiUser, DeviceCredential: dev.Credential}), http.StatusUnauthorized)
	c.do("POST", "/api/v1/devices", api.DeviceRequest{Label: phiDevice, Passphrase: phiNewPass}).decode(t, &dev)

	// The phone logs in with its credential; both sessions end.
	phone := ts.client()
	r = phone.do("POST", "/api/v1/sessions", api.SessionRequest{Username: phiUser, DeviceCredential: dev.Credential})
	want(t, r, http.StatusCreated)
	var s api.Session
	r.decode(t, &s)
	phone.token = s.Token
	want(t, phone.do("POST", "/api/v1/sessions", api.SessionRequest{Username: phiUser, DeviceCredential: "AGE-SECRET-KEY-1PLORKINGTON"}), http.StatusUnauthorized)
	oldToken := c.token
	want(t, c.do("DELETE", "/api/v1/sessions/current", nil), http.StatusNoContent)
	want(t, c.do("GET", "/api/v1/records", nil), http.StatusUnauthorized)
	want(t, phone.do("DELETE", "/api/v1/devices/"+dev.Device.ID, nil), http.StatusNoContent)

	logs := ts.logs.String()
	logLines := strings.Split(strings.TrimSpace(logs), "\n")
	for _, l := range logLines {
		if !json.Valid([]byte(l)) {
			t.Errorf("not a JSON log line: %s", l)
		}
	}
	for _, s := range []string{`"route":"/api/v1/records/:id"`, `"route":"/shl/:id"`, `"route":"/shl/:id/f/:token"`, `"route":"unmatched"`, `"acct":`} {
		if !strings.Contains(logs, s) {
			t.Errorf("logs lack %s:\n%s", s, logs)
		}
	}
	keyB64 := p.Key
	locToken := location[strings.LastIndex(location, "/")+1:]
	secrets := map[string]string{
		"patient": phiPatient, "patient (first name)": "Zyxwqv", "patient (last name)": "Plorkington", "medication": "Quuxotrine",
		"note": "Snorfblat", "note place": "Glimmerwick", "condition": "Vexillary", "recipient": "Blorptastic",
		"passcode": phiPasscode, "passcode part": "Wubbalub", "username": phiUser, "username domain": "example.org",
		"passphrase": phiPass, "passphrase part": "Hobnagle", "new passphrase": phiNewPass, "new passphrase part": "Quimby",
		"device label": "Jellyphone", "upload name": phiFile, "session token": oldToken, "phone token": s.Token,
		"device credential": dev.Credential, "recovery code": acct.RecoveryCode, "new recovery code": rec1["recovery_code"],
		"rotated recovery code": rec2["recovery_code"], "share link": created.Link, "shlink": created.SHLink,
		"share key": keyB64, "share id": created.ID, "direct share id": direct.ID, "location token": locToken,
		"record id": medID, "note id": note["id"].(string), "condition id": cond["id"].(string), "patient id": acct.PatientID,
		"backup recipient": backupID.Recipient().String(), "reading id": "Zyxwqv-1",
	}
	for what, secret := range secrets {
		if secret == "" {
			t.Errorf("%s: empty (the test lost it)", what)
			continue
		}
		if strings.Contains(logs, secret) {
			t.Errorf("the log holds the %s %q", what, secret)
		}
	}
	t.Logf("%d log lines, %d bytes; %d strings grepped", len(logLines), len(logs), len(secrets))
}
