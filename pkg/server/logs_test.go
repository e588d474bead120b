package server

import (
	"net/http"
	"strings"
	"testing"

	"github.com/phr-project/phr/pkg/importers"
	"github.com/phr-project/phr/pkg/server/api"
)

// TestNoSecretsInLogs runs a whole session and checks that the log holds
// no passphrase, token, credential, recovery code, username or PHI.
func TestNoSecretsInLogs(t *testing.T) {
	reg := &importers.Registry{}
	reg.Register(lines{})
	ts := newTestServer(t, func(c *Config) { c.Importers = reg })
	c := ts.client()
	r := c.do("POST", "/api/v1/accounts", api.CreateAccountRequest{Username: "jane.doe@example.org", Passphrase: "Tr0ub4dor&3 secret"})
	want(t, r, http.StatusCreated)
	var acct api.CreateAccountResponse
	r.decode(t, &acct)
	want(t, c.do("POST", "/api/v1/sessions", api.SessionRequest{Username: "jane.doe@example.org", Passphrase: "wrong pass for jane"}), http.StatusUnauthorized)
	c.login("jane.doe@example.org", "Tr0ub4dor&3 secret")
	var dev api.DeviceCreated
	c.do("POST", "/api/v1/devices", api.DeviceRequest{Label: "Jane's iPhone"}).decode(t, &dev)
	rec, _ := c.post(map[string]any{"log": "condition", "name": "Huntington disease", "note": "diagnosed at St. Elsewhere"})
	id := rec["id"].(string)
	c.do("GET", "/api/v1/records?q=Huntington&source=Elsewhere", nil)
	c.do("GET", "/api/v1/records/"+id, nil)
	c.do("POST", "/api/v1/records", map[string]any{"log": "vital", "kind": "bp", "value": "999/1", "note": "Huntington"})
	c.upload("jane-hiv-results.txt", "#lines\nObservation HIV-positive\n")
	c.upload("jane-bad.txt", "#lines\nbad\nObservation Syphilis\n")
	c.do("POST", "/api/v1/ingest", api.IngestRequest{Device: "Jane's Watch", Readings: []api.Reading{{ID: "x1", Type: "heart_rate", Value: f(61), At: "2026-05-01T08:00:00Z"}}})
	c.do("GET", "/api/v1/audit", nil)
	phone := ts.client()
	r = phone.do("POST", "/api/v1/sessions", api.SessionRequest{Username: "jane.doe@example.org", DeviceCredential: dev.Credential})
	want(t, r, http.StatusCreated)
	var s api.Session
	r.decode(t, &s)
	c.do("DELETE", "/api/v1/sessions/current", nil)

	logs := ts.logs.String()
	if !strings.Contains(logs, `"route":"/api/v1/records/:id"`) || !strings.Contains(logs, `"acct":`) {
		t.Fatalf("logs lack the request lines:\n%s", logs)
	}
	for _, secret := range []string{
		"Tr0ub4dor", "wrong pass", "jane", "Jane", "example.org", c.token, s.Token, dev.Credential, acct.RecoveryCode,
		"Huntington", "Elsewhere", "HIV", "Syphilis", "999/1", id, "iPhone", "Watch",
	} {
		if strings.Contains(logs, secret) {
			t.Errorf("log contains %q", secret)
		}
	}
}
