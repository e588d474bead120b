package server

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/phr-project/phr/pkg/server/api"
	"github.com/phr-project/phr/pkg/shlhost"
)

// TestOneKDFBound: phrd runs every key derivation under one bound
// (docs/security.md, threat model, "a hostile file or request"): account
// creation, passphrase logins, the key routes' passphrase checks, account
// recovery and share passcode checks all take a slot of the same gate
// (Config.ScryptConcurrency). With the gate's only slot held, each of
// them is refused with 503 and Retry-After after the queue timeout; with
// it free, the same request succeeds. A path that derived its key
// outside the gate would succeed while it is held. (TestScryptBound:
// the peak under concurrent logins; TestPasscodeFloodMemory: the memory
// the bound saves.)
func TestOneKDFBound(t *testing.T) {
	ts := newTestServer(t, func(c *Config) {
		c.ScryptConcurrency = 1
		c.ScryptQueueTimeout = 50 * time.Millisecond
	})
	ts.shl = shlhost.New(ts.shares, ts.url, shlhost.Options{Now: ts.cfg.Now})
	r := ts.client().do("POST", "/api/v1/accounts", api.CreateAccountRequest{Username: "alice", Passphrase: testPass})
	want(t, r, http.StatusCreated)
	var acct api.CreateAccountResponse
	r.decode(t, &acct)
	alice := ts.client()
	alice.login("alice", testPass)
	want(t, alice.do("POST", "/api/v1/records", map[string]any{"log": "med", "name": "Metformin", "dose": "500 mg"}), http.StatusCreated)
	exp := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	_, p := alice.createShare(`{"select":{"types":["medication"]},"expires_at":"` + exp + `","passcode":"8152"}`)
	manifest := strings.TrimPrefix(p.URL, ts.url)

	tests := []struct {
		name string
		// do sends the request once; n numbers the attempt, for requests
		// that must differ each time.
		do func(n int) *resp
		ok int
	}{
		{"account creation", func(n int) *resp {
			return ts.client().do("POST", "/api/v1/accounts", api.CreateAccountRequest{Username: "bob" + strings.Repeat("b", n), Passphrase: testPass})
		}, http.StatusCreated},
		{"passphrase login", func(int) *resp {
			return ts.client().do("POST", "/api/v1/sessions", api.SessionRequest{Username: "alice", Passphrase: testPass})
		}, http.StatusCreated},
		{"key route passphrase (a device)", func(int) *resp {
			return alice.do("POST", "/api/v1/devices", api.DeviceRequest{Label: "tablet", Passphrase: testPass})
		}, http.StatusCreated},
		{"account recovery", func(int) *resp {
			return ts.client().do("POST", "/api/v1/accounts/recover", map[string]string{"username": "nobody", "recovery_code": acct.RecoveryCode, "new_passphrase": "a new long passphrase"})
		}, http.StatusUnauthorized},
		{"share passcode", func(int) *resp {
			return ts.client().do("POST", manifest, map[string]any{"recipient": "Dr. X", "passcode": "8152"})
		}, http.StatusOK},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := ts.kdf.acquire(context.Background()); err != nil {
				t.Fatal(err)
			}
			r := tc.do(2 * i)
			ts.kdf.release()
			if r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") == "" {
				t.Errorf("with the gate full: status %d, Retry-After %q; want 503 with Retry-After: %s", r.status, r.header.Get("Retry-After"), r.body)
			}
			want(t, tc.do(2*i+1), tc.ok)
		})
	}
}
