package server

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/phr-project/phr/pkg/server/api"
	"github.com/phr-project/phr/pkg/vault"
)

func TestAccounts(t *testing.T) {
	ts := newTestServer(t, nil)
	c := ts.client()
	r := c.do("POST", "/api/v1/accounts", api.CreateAccountRequest{Username: "Alice@Example.org", Passphrase: testPass})
	want(t, r, http.StatusCreated)
	var acct api.CreateAccountResponse
	r.decode(t, &acct)
	if acct.Username != "alice@example.org" || acct.RecoveryCode == "" || acct.PatientID == "" {
		t.Fatalf("account = %+v", acct)
	}
	// The vault file is named by an HMAC, not the username.
	ents, err := os.ReadDir(ts.data.vaults)
	if err != nil || len(ents) != 1 || strings.Contains(ents[0].Name(), "alice") || len(ents[0].Name()) != 64+4 {
		t.Fatalf("vaults dir: %v %v", ents, err)
	}
	if st, _ := os.Stat(ts.data.vaultPath(ts.data.accountID("alice@example.org"))); st == nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("vault file mode: %v", st)
	}
	for _, d := range []string{ts.data.root, ts.data.vaults, ts.data.tmp} {
		if st, _ := os.Stat(d); st == nil || st.Mode().Perm() != 0o700 {
			t.Errorf("%s mode: %v", d, st)
		}
	}

	tests := []struct {
		name   string
		body   any
		status int
		code   string
		field  string
	}{
		{"taken", api.CreateAccountRequest{Username: "ALICE@example.org", Passphrase: testPass}, 409, api.CodeConflict, ""},
		{"short username", api.CreateAccountRequest{Username: "al", Passphrase: testPass}, 400, api.CodeBadRequest, "username"},
		{"bad characters", api.CreateAccountRequest{Username: "al ice", Passphrase: testPass}, 400, api.CodeBadRequest, "username"},
		{"short passphrase", api.CreateAccountRequest{Username: "bob", Passphrase: "short"}, 400, api.CodeBadRequest, "passphrase"},
		{"unknown field", `{"username":"bob","passphrase":"long enough pass","admin":true}`, 400, api.CodeBadRequest, "admin"},
		{"not json", `{"username":`, 400, api.CodeBadRequest, ""},
		{"trailing data", `{"username":"bob","passphrase":"long enough pass"} {}`, 400, api.CodeBadRequest, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := c.do("POST", "/api/v1/accounts", tt.body)
			want(t, r, tt.status)
			if r.errCode() != tt.code || !strings.Contains(r.errMsg(), tt.field) {
				t.Errorf("error %s %q", r.errCode(), r.errMsg())
			}
		})
	}
	// Wrong content type.
	want(t, c.do("POST", "/api/v1/accounts", strings.NewReader(`{}`), "Content-Type", "text/plain"), http.StatusUnsupportedMediaType)
}

func TestRegistrationClosed(t *testing.T) {
	ts := newTestServer(t, func(c *Config) { c.Registration = RegistrationClosed })
	r := ts.client().do("POST", "/api/v1/accounts", api.CreateAccountRequest{Username: "alice", Passphrase: testPass})
	want(t, r, http.StatusForbidden)
	// The host-side path works, and the account can log in.
	if _, err := CreateAccount(ts.cfg.DataDir, "alice", testPass); err != nil {
		t.Fatal(err)
	}
	if _, err := CreateAccount(ts.cfg.DataDir, "alice", testPass); err == nil {
		t.Fatal("second create succeeded")
	}
	ts.client().login("alice", testPass)
}

func TestSessions(t *testing.T) {
	ts := newTestServer(t, nil)
	c := ts.signup("alice")
	r := c.do("GET", "/api/v1/sessions/current", nil)
	want(t, r, http.StatusOK)
	var info api.SessionInfo
	r.decode(t, &info)
	if info.Method != "passphrase" || info.ExpiresAt.Sub(info.CreatedAt) != 12*time.Hour {
		t.Fatalf("session = %+v", info)
	}

	anon := ts.client()
	wrong := anon.do("POST", "/api/v1/sessions", api.SessionRequest{Username: "alice", Passphrase: "wrong passphrase"})
	unknown := anon.do("POST", "/api/v1/sessions", api.SessionRequest{Username: "nobody", Passphrase: "wrong passphrase"})
	want(t, wrong, http.StatusUnauthorized)
	want(t, unknown, http.StatusUnauthorized)
	if string(wrong.body) != string(unknown.body) {
		t.Errorf("unknown user and wrong passphrase differ: %s / %s", wrong.body, unknown.body)
	}
	for _, body := range []any{
		api.SessionRequest{Username: "alice"},
		api.SessionRequest{Username: "alice", Passphrase: "x", DeviceCredential: "y"},
		`{"username":"alice","password":"x"}`,
	} {
		want(t, anon.do("POST", "/api/v1/sessions", body), http.StatusBadRequest)
	}

	// Two sessions share one open vault; logout ends one.
	c2 := ts.client()
	c2.login("alice", testPass)
	if n, v := ts.sess.counts(); n != 2 || v != 1 {
		t.Fatalf("sessions %d, vaults %d", n, v)
	}
	want(t, c.do("DELETE", "/api/v1/sessions/current", nil), http.StatusNoContent)
	want(t, c.do("GET", "/api/v1/records", nil), http.StatusUnauthorized)
	want(t, c2.do("GET", "/api/v1/records", nil), http.StatusOK)
	want(t, c2.do("DELETE", "/api/v1/sessions/current", nil), http.StatusNoContent)
	if n, v := ts.sess.counts(); n != 0 || v != 0 {
		t.Fatalf("after logout: sessions %d, vaults %d", n, v)
	}
	// Tokens that never were, or in the wrong form.
	for _, h := range []string{"", "Bearer", "Bearer nope", "Basic YWxpY2U6eA==", "Bearer " + c.token} {
		r := ts.client().do("GET", "/api/v1/records", nil, "Authorization", h)
		want(t, r, http.StatusUnauthorized)
		if r.errCode() != api.CodeUnauthorized || r.header.Get("WWW-Authenticate") == "" {
			t.Errorf("%q: %s %v", h, r.body, r.header)
		}
	}
}

// A session names its account by a handle: the same for every session
// of one account (at login and from GET /sessions/current), another for
// another account, and not the username.
func TestSessionAccountHandle(t *testing.T) {
	ts := newTestServer(t, nil)
	handle := func(c *client) string {
		var info api.SessionInfo
		r := c.do("GET", "/api/v1/sessions/current", nil)
		want(t, r, http.StatusOK)
		r.decode(t, &info)
		return info.Account
	}
	alice := ts.signup("alice")
	bob := ts.signup("bob")
	again := ts.client()
	r := again.do("POST", "/api/v1/sessions", api.SessionRequest{Username: "alice", Passphrase: testPass})
	want(t, r, http.StatusCreated)
	var s api.Session
	r.decode(t, &s)
	again.token = s.Token
	a1, a2, b := handle(alice), handle(again), handle(bob)
	if a1 == "" || a1 != a2 || a1 != s.Account || a1 == b || strings.Contains(strings.ToLower(a1), "alice") {
		t.Fatalf("handles: alice %q and %q (login %q), bob %q", a1, a2, s.Account, b)
	}
}

func TestSessionTimeouts(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 5, 1, 8, 0, 0, 0, time.UTC)}
	ts := newTestServer(t, func(c *Config) {
		c.Now = clock.Now
		c.IdleTimeout = 10 * time.Minute
		c.SessionLifetime = time.Hour
	})
	c := ts.signup("alice")
	// Used every 9 minutes, the session lives until its absolute end.
	for i := 0; i < 6; i++ {
		clock.Add(9 * time.Minute)
		want(t, c.do("GET", "/api/v1/records", nil), http.StatusOK)
	}
	clock.Add(7 * time.Minute) // 61 minutes after login
	want(t, c.do("GET", "/api/v1/records", nil), http.StatusUnauthorized)

	// Idle: 11 minutes unused ends it; the janitor closes the vault.
	c.login("alice", testPass)
	if _, v := ts.sess.counts(); v != 1 {
		t.Fatalf("open vaults %d", v)
	}
	clock.Add(11 * time.Minute)
	ts.sweep()
	if n, v := ts.sess.counts(); n != 0 || v != 0 {
		t.Fatalf("after sweep: sessions %d, vaults %d", n, v)
	}
	want(t, c.do("GET", "/api/v1/records", nil), http.StatusUnauthorized)
}

// TestRestartKeepsSessions: sessions are in the session store, not in
// phrd's memory: a token made before a restart works after it (the vault
// opens from the key the session wraps), and one logged out before stays
// out. (Until sessions moved to the store, a restart ended them all.)
func TestRestartKeepsSessions(t *testing.T) {
	ts := newTestServer(t, nil)
	c := ts.signup("alice")
	c.post(map[string]any{"log": "symptom", "name": "headache", "severity": 4})
	out := ts.client()
	out.login("alice", testPass)
	want(t, out.do("DELETE", "/api/v1/sessions/current", nil), http.StatusNoContent)
	// A second server over the same data directory: the data is there,
	// and so is the session.
	ts.Close()
	ts2 := newTestServer(t, func(cfg *Config) { cfg.DataDir = ts.cfg.DataDir })
	c.base, out.base = ts2.url, ts2.url
	if n, v := ts2.sess.counts(); n != 1 || v != 0 {
		t.Fatalf("after the restart: %d sessions, %d open vaults; want 1, 0", n, v)
	}
	var list api.RecordList
	r := c.do("GET", "/api/v1/records?type=symptom", nil)
	want(t, r, http.StatusOK)
	r.decode(t, &list)
	if len(list.Records) != 1 || list.Records[0].Display == "" {
		t.Fatalf("records after restart: %s", r.body)
	}
	want(t, out.do("GET", "/api/v1/records", nil), http.StatusUnauthorized)
	want(t, c.do("DELETE", "/api/v1/sessions/current", nil), http.StatusNoContent)
	want(t, c.do("GET", "/api/v1/records", nil), http.StatusUnauthorized)
	if n, v := ts2.sess.counts(); n != 0 || v != 0 {
		t.Fatalf("after the logout: %d sessions, %d open vaults", n, v)
	}
}

func TestDevices(t *testing.T) {
	ts := newTestServer(t, nil)
	c := ts.signup("alice")
	r := c.do("POST", "/api/v1/devices", api.DeviceRequest{Label: "Alice's phone", Passphrase: testPass})
	want(t, r, http.StatusCreated)
	var dev api.DeviceCreated
	r.decode(t, &dev)
	if !strings.HasPrefix(dev.Credential, "AGE-SECRET-KEY-1") || dev.ID == "" || dev.Label != "Alice's phone" || dev.Created.IsZero() {
		t.Fatalf("device = %+v", dev)
	}
	r = c.do("GET", "/api/v1/devices", nil)
	want(t, r, http.StatusOK)
	var list api.DeviceList
	r.decode(t, &list)
	if len(list.Devices) != 1 || list.Devices[0].ID != dev.ID || strings.Contains(string(r.body), "AGE-SECRET") {
		t.Fatalf("devices = %s", r.body)
	}

	// A device login needs no scrypt: with every unlock slot taken it
	// still works, and quickly.
	for i := 0; i < cap(ts.kdf.slots); i++ {
		ts.kdf.slots <- struct{}{}
	}
	phone := ts.client()
	start := time.Now()
	r = phone.do("POST", "/api/v1/sessions", api.SessionRequest{Username: "alice", DeviceCredential: dev.Credential})
	for i := 0; i < cap(ts.kdf.slots); i++ {
		<-ts.kdf.slots
	}
	want(t, r, http.StatusCreated)
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("device login took %v", d)
	}
	var s api.Session
	r.decode(t, &s)
	phone.token = s.Token
	want(t, phone.do("GET", "/api/v1/records", nil), http.StatusOK)
	// Wrong and malformed credentials get the plain 401.
	other := ts.client()
	for _, cred := range []string{"AGE-SECRET-KEY-1QQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQ", "garbage"} {
		want(t, other.do("POST", "/api/v1/sessions", api.SessionRequest{Username: "alice", DeviceCredential: cred}), http.StatusUnauthorized)
	}
	want(t, other.do("POST", "/api/v1/sessions", api.SessionRequest{Username: "nobody", DeviceCredential: dev.Credential}), http.StatusUnauthorized)

	// Only device slots can be removed here.
	slots, _ := ts.openVault(t, "alice").Slots()
	for _, sl := range slots {
		if sl.Kind == vault.SlotPassphrase {
			want(t, c.do("DELETE", "/api/v1/devices/"+sl.ID, nil), http.StatusNotFound)
		}
	}
	want(t, c.do("DELETE", "/api/v1/devices/nope", nil), http.StatusNotFound)
	// Revoking ends the device's sessions and refuses its credential.
	want(t, c.do("DELETE", "/api/v1/devices/"+dev.ID, nil), http.StatusNoContent)
	want(t, phone.do("GET", "/api/v1/records", nil), http.StatusUnauthorized)
	want(t, ts.client().do("POST", "/api/v1/sessions", api.SessionRequest{Username: "alice", DeviceCredential: dev.Credential}), http.StatusUnauthorized)
	want(t, c.do("GET", "/api/v1/records", nil), http.StatusOK)
	r = c.do("GET", "/api/v1/devices", nil)
	r.decode(t, &list)
	if len(list.Devices) != 0 {
		t.Fatalf("devices after revoke: %s", r.body)
	}
	want(t, c.do("POST", "/api/v1/devices", api.DeviceRequest{Label: strings.Repeat("x", 101), Passphrase: testPass}), http.StatusBadRequest)
}

// openVault returns the open vault of a logged-in user.
func (ts *testServer) openVault(t *testing.T, user string) *vault.Vault {
	t.Helper()
	ts.sess.mu.Lock()
	defer ts.sess.mu.Unlock()
	a := ts.sess.accounts[ts.data.accountID(user)]
	if a == nil || a.v == nil {
		t.Fatalf("%s has no open vault", user)
	}
	return a.v
}

func TestLoginRateLimit(t *testing.T) {
	ts := newTestServer(t, nil)
	ts.signup("alice")
	c := ts.client()
	for i := 1; i <= 5; i++ {
		want(t, c.do("POST", "/api/v1/sessions", api.SessionRequest{Username: "alice", Passphrase: fmt.Sprint("wrong guess ", i)}), http.StatusUnauthorized)
	}
	r := c.do("POST", "/api/v1/sessions", api.SessionRequest{Username: "alice", Passphrase: "wrong guess 6"})
	want(t, r, http.StatusTooManyRequests)
	if r.header.Get("Retry-After") == "" || r.errCode() != api.CodeRateLimited {
		t.Fatalf("429 without Retry-After: %v %s", r.header, r.body)
	}
	// Even the right passphrase waits; another account does not.
	want(t, c.do("POST", "/api/v1/sessions", api.SessionRequest{Username: "alice", Passphrase: testPass}), http.StatusTooManyRequests)
	ts.signup("bob")
	// Unknown usernames are limited the same way (no enumeration by 429).
	for i := 1; i <= 5; i++ {
		want(t, c.do("POST", "/api/v1/sessions", api.SessionRequest{Username: "nobody", Passphrase: "wrong guess"}), http.StatusUnauthorized)
	}
	want(t, c.do("POST", "/api/v1/sessions", api.SessionRequest{Username: "nobody", Passphrase: "wrong guess"}), http.StatusTooManyRequests)

	// The failures are in alice's audit log after her next login.
	ts.acctLimit.refund(ts.data.accountID("alice"))
	a := ts.client()
	a.login("alice", testPass)
	r = a.do("GET", "/api/v1/audit", nil)
	want(t, r, http.StatusOK)
	var audit api.Audit
	r.decode(t, &audit)
	fails := 0
	for _, e := range audit.Entries {
		if e.Event == AuditLogin && !e.Success {
			fails++
			if e.Client != "127.0.0.0/24" || e.Method != "passphrase" {
				t.Errorf("failure entry %+v", e)
			}
		}
	}
	if fails != 5 || audit.Entries[0].Event != AuditLogin || !audit.Entries[0].Success {
		t.Fatalf("audit: %s", r.body)
	}
}

func TestClientRateLimit(t *testing.T) {
	ts := newTestServer(t, func(c *Config) { c.LoginPerClient = Rate{Events: 3, Per: time.Minute, Burst: 3} })
	c := ts.client()
	for i := 0; i < 3; i++ {
		want(t, c.do("POST", "/api/v1/sessions", api.SessionRequest{Username: fmt.Sprint("user", i), Passphrase: "wrong guess"}), http.StatusUnauthorized)
	}
	want(t, c.do("POST", "/api/v1/sessions", api.SessionRequest{Username: "user9", Passphrase: "wrong guess"}), http.StatusTooManyRequests)
	want(t, c.do("POST", "/api/v1/accounts", api.CreateAccountRequest{Username: "user9", Passphrase: testPass}), http.StatusTooManyRequests)
}

func TestScryptBound(t *testing.T) {
	ts := newTestServer(t, func(c *Config) {
		c.ScryptConcurrency = 1
		c.ScryptQueueTimeout = 20 * time.Millisecond
		c.LoginPerAccount = Rate{Events: 1000, Per: time.Minute, Burst: 1000}
	})
	old := vault.ScryptWorkFactor
	ts.signup("alice")
	vault.ScryptWorkFactor = 15 // slow enough (tens of ms) to queue
	t.Cleanup(func() { vault.ScryptWorkFactor = old })
	const n = 12
	var wg sync.WaitGroup
	statuses := make([]int, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			user, pass := "alice", "wrong guess"
			if i%3 == 0 {
				user = "nobody"
			}
			statuses[i] = ts.client().do("POST", "/api/v1/sessions", api.SessionRequest{Username: user, Passphrase: pass}).status
		}(i)
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("logins deadlocked")
	}
	busy := 0
	for _, s := range statuses {
		switch s {
		case http.StatusUnauthorized:
		case http.StatusServiceUnavailable:
			busy++
		default:
			t.Errorf("status %d", s)
		}
	}
	if p := ts.kdf.peak.Load(); p != 1 {
		t.Errorf("peak concurrent unlocks %d, want 1", p)
	}
	t.Logf("%d of %d logins refused as busy", busy, n)
	// Other requests are not held up meanwhile.
	want(t, ts.client().do("GET", "/healthz", nil), http.StatusOK)
}

func TestLimits(t *testing.T) {
	ts := newTestServer(t, nil)
	c := ts.signup("alice")
	big := `{"log":"note","text":"` + strings.Repeat("a", 1<<20) + `"}`
	r := c.do("POST", "/api/v1/records", big)
	want(t, r, http.StatusRequestEntityTooLarge)
	if r.errCode() != api.CodeTooLarge {
		t.Errorf("413 body %s", r.body)
	}
	want(t, c.do("POST", "/api/v1/sessions", `{"username":"alice","passphrase":"`+strings.Repeat("a", 2<<20)+`"}`), http.StatusRequestEntityTooLarge)
	r = c.do("POST", "/api/v1/devices", `{"label":"x","extra":1}`)
	want(t, r, http.StatusBadRequest)
	if !strings.Contains(r.errMsg(), "extra") {
		t.Errorf("unknown field message %q", r.errMsg())
	}
}

func TestSecurityHeaders(t *testing.T) {
	ts := newTestServer(t, nil)
	c := ts.client()
	for _, tt := range []struct{ method, path string }{
		{"GET", "/healthz"}, {"GET", "/api/v1/records"}, {"GET", "/api/v1/nope"}, {"GET", "/nope"},
		{"PATCH", "/api/v1/records"}, {"POST", "/api/v1/sessions"},
	} {
		r := c.do(tt.method, tt.path, nil)
		for h, v := range map[string]string{
			"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY",
		} {
			if r.header.Get(h) != v {
				t.Errorf("%s %s: %s = %q", tt.method, tt.path, h, r.header.Get(h))
			}
		}
		if !strings.Contains(r.header.Get("Content-Security-Policy"), "default-src 'none'") {
			t.Errorf("%s %s: CSP %q", tt.method, tt.path, r.header.Get("Content-Security-Policy"))
		}
		if strings.HasPrefix(tt.path, "/api/") && r.header.Get("Cache-Control") != "no-store" {
			t.Errorf("%s %s: Cache-Control %q", tt.method, tt.path, r.header.Get("Cache-Control"))
		}
		if r.header.Get("Strict-Transport-Security") != "" {
			t.Errorf("HSTS without TLS")
		}
		if r.status >= 400 {
			var e api.ErrorBody
			if err := json.Unmarshal(r.body, &e); err != nil || e.Error.Code == "" || e.Error.Message == "" {
				t.Errorf("%s %s: error body %s", tt.method, tt.path, r.body)
			}
		}
	}
	want(t, c.do("GET", "/api/v1/nope", nil), http.StatusNotFound)
	want(t, c.do("PATCH", "/api/v1/records", nil), http.StatusMethodNotAllowed)
}

// TestMetrics: /metrics is not served at the API's address, and the
// metrics handler (phrd serves it on --metrics-addr only) counts by route
// template, never by record.
func TestMetrics(t *testing.T) {
	ts := newTestServer(t, nil)
	c := ts.signup("alice")
	c.do("GET", "/api/v1/records/aaaaaaaaaaaaaaaa", nil)
	ts.client().do("POST", "/api/v1/sessions", api.SessionRequest{Username: "alice", Passphrase: "wrong guess"})
	for _, client := range []*client{ts.client(), c} {
		if r := client.do("GET", "/metrics", nil); r.status != http.StatusNotFound || strings.Contains(string(r.body), "phrd_") {
			t.Fatalf("/metrics at the public address: %d %s", r.status, r.body)
		}
	}
	rec := httptest.NewRecorder()
	ts.MetricsHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("metrics: %d", rec.Code)
	}
	body := rec.Body.String()
	for _, s := range []string{
		`phrd_http_requests_total{route="/api/v1/records/:id",method="GET",status="404"} 1`,
		`phrd_http_requests_total{route="/api/v1/sessions",method="POST",status="201"} 1`,
		`phrd_http_request_duration_seconds_bucket{route="/api/v1/records/:id",le="+Inf"} 1`,
		"phrd_open_vaults 1", "phrd_sessions 1", "phrd_login_failures_total 1", "# TYPE phrd_http_request_duration_seconds histogram",
	} {
		if !strings.Contains(body, s) {
			t.Errorf("metrics lack %q:\n%s", s, body)
		}
	}
	if strings.Contains(body, "aaaaaaaaaaaaaaaa") {
		t.Error("metrics name a record ID")
	}
}

// TestUnknownUserTiming: a login for a username without an account costs
// about what a wrong passphrase costs (a dummy scrypt of the same work).
func TestUnknownUserTiming(t *testing.T) {
	ts := newTestServer(t, func(c *Config) {
		c.LoginPerAccount = Rate{Events: 1000, Per: time.Minute, Burst: 1000}
	})
	old := vault.ScryptWorkFactor
	t.Cleanup(func() { vault.ScryptWorkFactor = old })
	// bob's passphrase slot and the dummy both use work factor 15.
	vault.ScryptWorkFactor = 15
	ts.signup("bob")
	// Interleaved, and the fastest of each: other work on the machine
	// only ever adds time, and it falls on both alike.
	try := func(user string) time.Duration {
		start := time.Now()
		want(t, ts.client().do("POST", "/api/v1/sessions", api.SessionRequest{Username: user, Passphrase: "wrong guess"}), http.StatusUnauthorized)
		return time.Since(start)
	}
	wrong, unknown := time.Duration(math.MaxInt64), time.Duration(math.MaxInt64)
	for range 6 {
		wrong = min(wrong, try("bob"))
		unknown = min(unknown, try("nobody"))
	}
	t.Logf("fastest: wrong passphrase %v, unknown user %v", wrong, unknown)
	if unknown < wrong/3 || unknown > wrong*3 {
		t.Errorf("unknown user %v vs wrong passphrase %v", unknown, wrong)
	}
}
