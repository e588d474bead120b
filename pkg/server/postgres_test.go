package server

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/phr-project/phr/pkg/kv"
	"github.com/phr-project/phr/pkg/kv/kvtest"
	"github.com/phr-project/phr/pkg/server/api"
	"github.com/phr-project/phr/pkg/share"
	"github.com/phr-project/phr/pkg/sharestore"
	"github.com/phr-project/phr/pkg/shlhost"
)

// The server on PostgreSQL (Config.DatabaseURL). newTestServer gives a
// test running under TestOnPostgres a fresh database schema.

// TestOnPostgres runs the share, rate-limit, session, record and import
// tests again with the share store, the limits, the sessions and the
// accounts' vaults in PostgreSQL.
func TestOnPostgres(t *testing.T) {
	for _, tc := range []struct {
		name string
		fn   func(*testing.T)
	}{
		{"SharesFromHostedVault", TestSharesFromHostedVault},
		{"ShareErrors", TestShareErrors},
		{"DirectAndKTCShares", TestDirectAndKTCShares},
		{"ShareNeedsPublicURL", TestShareNeedsPublicURL},
		{"ShareEnumeration", TestShareEnumeration},
		{"LoginRateLimit", TestLoginRateLimit},
		{"ClientRateLimit", TestClientRateLimit},
		{"BearerTokenRateLimit", TestBearerTokenRateLimit},
		{"KeyRoutesPassphraseLimit", TestKeyRoutesPassphraseLimit},
		{"Sessions", TestSessions},
		{"SessionTimeouts", TestSessionTimeouts},
		{"LastUsedStep", TestLastUsedStep},
		{"SessionList", TestSessionList},
		{"Devices", TestDevices},
		{"Passkeys", TestPasskeys},
		{"StolenSessionCannotPersist", TestStolenSessionCannotPersist},
		// And the vaults in the database.
		{"RecordsCRUD", TestRecordsCRUD},
		{"ListRecords", TestListRecords},
		{"Isolation", TestIsolation},
		{"ChangesSync", TestChangesSync},
		{"ConcurrentWriters", TestConcurrentWriters},
		{"Import", TestImport},
		{"Ingest", TestIngest},
		{"ImportPatientMismatch", TestImportPatientMismatch},
	} {
		t.Run(tc.name, tc.fn)
	}
}

// usePostgres points cfg at a fresh schema when the test runs under
// TestOnPostgres.
func usePostgres(t *testing.T, cfg *Config) {
	if strings.HasPrefix(t.Name(), "TestOnPostgres/") && cfg.DatabaseURL == "" {
		cfg.DatabaseURL = kvtest.URL(t)
	}
}

// TestPostgresSharesAcrossNodes: two servers with their own data
// directories on one database and one share key file: a share made on
// one is served by the other, and the data directories hold no share
// store.
func TestPostgresSharesAcrossNodes(t *testing.T) {
	db := kvtest.URL(t)
	keyFile := filepath.Join(t.TempDir(), "share.key")
	node := func() *testServer {
		ts := newTestServer(t, func(c *Config) { c.DatabaseURL, c.ShareKeyFile = db, keyFile })
		ts.shl = shlhost.New(ts.shares, ts.url, shlhost.Options{Now: ts.cfg.Now})
		return ts
	}
	a, b := node(), node()
	alice := a.signup("alice")
	want(t, alice.do("POST", "/api/v1/records", map[string]any{"log": "med", "name": "Metformin", "dose": "500 mg"}), http.StatusCreated)
	exp := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	_, p := alice.createShare(`{"select":{"types":["medication"]},"expires_at":"` + exp + `","passcode":"1234","label":"meds"}`)
	path := strings.TrimPrefix(p.URL, a.url)
	want(t, b.client().do("POST", path, `{"recipient":"Dr. B","passcode":"0000"}`), http.StatusUnauthorized)
	mr := b.client().do("POST", path, `{"recipient":"Dr. B","passcode":"1234"}`)
	want(t, mr, http.StatusOK)
	var m share.Manifest
	mr.decode(t, &m)
	key, _ := p.KeyBytes()
	if _, plain, err := share.DecryptFile(key, m.Files[0].Embedded); err != nil || !strings.Contains(string(plain), "Metformin") {
		t.Fatalf("node b served: %v", err)
	}
	// The attempt spent on node b shows in node a's answer.
	var list struct{ Shares []api.ShareInfo }
	alice.do("GET", "/api/v1/shares", nil).decode(t, &list)
	if len(list.Shares) != 1 || list.Shares[0].RemainingAttempts != sharestore.DefaultMaxAttempts-1 {
		t.Errorf("node a's list after a wrong passcode on node b: %+v", list.Shares)
	}
	for _, ts := range []*testServer{a, b} {
		if _, err := os.Stat(filepath.Join(ts.cfg.DataDir, sharesFile)); err == nil {
			t.Errorf("%s in the data directory of a node on PostgreSQL", sharesFile)
		}
	}
}

// TestPostgresDown: while the database is unreachable, share requests,
// logins and every request with a session (the sessions are in the
// database) get 503 with Retry-After and write nothing; when it is back,
// the server serves again without a restart, and the sessions made
// before are still there.
func TestPostgresDown(t *testing.T) {
	proxy, db := kvtest.NewProxy(t, kvtest.URL(t))
	ts := newTestServer(t, func(c *Config) { c.DatabaseURL = db })
	ts.shl = shlhost.New(ts.shares, ts.url, shlhost.Options{Now: ts.cfg.Now})
	alice := ts.signup("alice")
	want(t, alice.do("POST", "/api/v1/records", map[string]any{"log": "med", "name": "Metformin", "dose": "500 mg"}), http.StatusCreated)
	exp := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	body := `{"select":{"types":["medication"]},"expires_at":"` + exp + `","label":"meds"}`
	r := alice.do("POST", "/api/v1/shares", body)
	want(t, r, http.StatusCreated)
	var created api.ShareCreated
	r.decode(t, &created)
	p, _ := share.Decode(created.Link)
	path := strings.TrimPrefix(p.URL, ts.url)

	proxy.Down()
	for _, tc := range []struct {
		name string
		r    *resp
	}{
		{"create", alice.do("POST", "/api/v1/shares", body)},
		{"list", alice.do("GET", "/api/v1/shares", nil)},
		{"revoke", alice.do("DELETE", "/api/v1/shares/"+created.ID, nil)},
		{"manifest", ts.client().do("POST", path, `{"recipient":"Dr. X"}`)},
	} {
		if tc.r.status != http.StatusServiceUnavailable || tc.r.errCode() != api.CodeUnavailable || tc.r.header.Get("Retry-After") == "" {
			t.Errorf("%s with the database down: %d %s (Retry-After %q)", tc.name, tc.r.status, tc.r.errCode(), tc.r.header.Get("Retry-After"))
		}
	}
	// Sessions are in the database: a request with a token and a login
	// get 503 too (a token is not taken for a wrong one), and so write
	// nothing (the login limits fall back to this node's memory
	// meanwhile).
	for _, tc := range []struct {
		name string
		r    *resp
	}{
		{"record", alice.do("POST", "/api/v1/records", map[string]any{"log": "med", "name": "Aspirin", "dose": "81 mg"})},
		{"login", ts.client().do("POST", "/api/v1/sessions", api.SessionRequest{Username: "alice", Passphrase: testPass})},
	} {
		if tc.r.status != http.StatusServiceUnavailable || tc.r.header.Get("Retry-After") == "" {
			t.Errorf("%s with the database down: %d %s", tc.name, tc.r.status, tc.r.body)
		}
	}
	if !strings.Contains(ts.logs.String(), "limiting on this node only") {
		t.Error("no warning that the login limits fell back to the node")
	}
	proxy.Up()
	var recs api.RecordList
	r = alice.do("GET", "/api/v1/records?type=medication", nil)
	want(t, r, http.StatusOK)
	r.decode(t, &recs)
	if len(recs.Records) != 1 {
		t.Errorf("after the outage: %d medications, want 1 (the refused write must have left nothing)", len(recs.Records))
	}
	var list struct{ Shares []api.ShareInfo }
	r = alice.do("GET", "/api/v1/shares", nil)
	want(t, r, http.StatusOK)
	r.decode(t, &list)
	if len(list.Shares) != 1 || list.Shares[0].ID != created.ID || list.Shares[0].Status != "active" {
		t.Errorf("after the outage: %+v (the refused create and revoke must have left nothing)", list.Shares)
	}
	want(t, ts.client().do("POST", path, `{"recipient":"Dr. X"}`), http.StatusOK)
}

// TestMigrateToDatabase: a node's share store moves into PostgreSQL with
// its counts; a node on the database then serves the same links and
// lists the same shares; a second migration is refused, and so is one
// while phrd holds the file.
func TestMigrateToDatabase(t *testing.T) {
	db := kvtest.URL(t)
	dataDir := filepath.Join(t.TempDir(), "data")
	keyFile := filepath.Join(t.TempDir(), "share.key")
	exp := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)

	before := newTestServer(t, func(c *Config) { c.DataDir, c.ShareKeyFile = dataDir, keyFile })
	before.shl = shlhost.New(before.shares, before.url, shlhost.Options{Now: before.cfg.Now})
	alice := before.signup("alice")
	want(t, alice.do("POST", "/api/v1/records", map[string]any{"log": "med", "name": "Metformin", "dose": "500 mg"}), http.StatusCreated)
	var links []string
	for _, body := range []string{
		`{"select":{"types":["medication"]},"expires_at":"` + exp + `","passcode":"1234","label":"one"}`,
		`{"select":{"types":["medication"]},"expires_at":"` + exp + `","label":"two"}`,
	} {
		r := alice.do("POST", "/api/v1/shares", body)
		want(t, r, http.StatusCreated)
		var created api.ShareCreated
		r.decode(t, &created)
		links = append(links, created.Link)
	}
	p0, _ := share.Decode(links[0])
	want(t, before.client().do("POST", strings.TrimPrefix(p0.URL, before.url), `{"recipient":"Dr. X","passcode":"0000"}`), http.StatusUnauthorized)
	var listBefore struct{ Shares []api.ShareInfo }
	alice.do("GET", "/api/v1/shares", nil).decode(t, &listBefore)

	if _, err := MigrateToDatabase(context.Background(), dataDir, db, keyFile); err == nil || !strings.Contains(err.Error(), "stop phrd") {
		t.Errorf("migrating while phrd runs: %v", err)
	}
	if err := before.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	res, err := MigrateToDatabase(context.Background(), dataDir, db, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if res.NoShares || res.Shares.Keys < 6 || !strings.Contains(res.String(), "the database holds the same counts") {
		t.Errorf("migration: %+v\n%s", res, res)
	}
	if _, err := MigrateToDatabase(context.Background(), dataDir, db, keyFile); err == nil || !strings.Contains(err.Error(), "already holds") {
		t.Errorf("a second migration: %v", err)
	}

	after := newTestServer(t, func(c *Config) { c.DataDir, c.ShareKeyFile, c.DatabaseURL = dataDir, keyFile, db })
	after.shl = shlhost.New(after.shares, before.url, shlhost.Options{Now: after.cfg.Now})
	alice = after.client()
	alice.login("alice", testPass)
	var listAfter struct{ Shares []api.ShareInfo }
	alice.do("GET", "/api/v1/shares", nil).decode(t, &listAfter)
	if len(listAfter.Shares) != 2 || fmt.Sprint(listAfter) != fmt.Sprint(listBefore) {
		t.Errorf("shares after the move:\n%+v\nbefore:\n%+v", listAfter, listBefore)
	}
	for i, body := range []string{`{"recipient":"Dr. Y","passcode":"1234"}`, `{"recipient":"Dr. Y"}`} {
		p, _ := share.Decode(links[i])
		want(t, after.client().do("POST", strings.TrimPrefix(p.URL, before.url), body), http.StatusOK)
	}
}

// TestSharedLimiter: two limiters on one database, as two nodes, grant
// exactly the burst between them under concurrency; a refund on one is a
// token for the other; the table holds no key in clear; with the
// database away the limit falls back to the node's memory, still
// limiting.
func TestSharedLimiter(t *testing.T) {
	proxy, db := kvtest.NewProxy(t, kvtest.URL(t))
	clock := &fakeClock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	rate := Rate{Events: 5, Per: time.Hour, Burst: 5}
	var nodes []*sharedLimiter
	for range 2 {
		p, err := kv.OpenPostgres(context.Background(), db, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(p.Close)
		nodes = append(nodes, newSharedLimiter("login-account", rate, clock.Now, p.Pool(), []byte("server key"), slog.New(slog.DiscardHandler)))
	}
	var mu sync.Mutex
	granted := 0
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if ok, _ := nodes[i%2].allow("10.1.2.3"); ok {
				mu.Lock()
				granted++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if granted != rate.Burst {
		t.Fatalf("%d of 40 granted over two nodes, want %d", granted, rate.Burst)
	}
	if blocked, wait := nodes[1].blocked("10.1.2.3"); !blocked || wait <= 0 || wait > 12*time.Minute {
		t.Errorf("blocked = %v, %v", blocked, wait)
	}
	nodes[0].refund("10.1.2.3")
	if ok, _ := nodes[1].allow("10.1.2.3"); !ok {
		t.Error("a token refunded on node 0 is not there for node 1")
	}
	if ok, _ := nodes[0].allow("10.9.9.9"); !ok {
		t.Error("another key shares the bucket")
	}
	clock.Add(12 * time.Minute) // one token back
	if ok, _ := nodes[0].allow("10.1.2.3"); !ok {
		t.Error("no token after the refill time")
	}
	clock.Add(2 * time.Hour)
	nodes[1].sweep()
	conn, err := pgx.Connect(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	var n int
	var raw []byte
	conn.QueryRow(context.Background(), `SELECT count(*), coalesce(string_agg(key, ''::bytea), ''::bytea) FROM phr_limits`).Scan(&n, &raw)
	conn.Close(context.Background())
	if n != 0 {
		t.Errorf("%d buckets left after a sweep of full ones", n)
	}

	// Keys are HMACs: no address in the table.
	nodes[0].allow("10.1.2.3")
	conn, _ = pgx.Connect(context.Background(), db)
	conn.QueryRow(context.Background(), `SELECT count(*), string_agg(key, ''::bytea) FROM phr_limits`).Scan(&n, &raw)
	conn.Close(context.Background())
	if n != 1 || strings.Contains(string(raw), "10.1.2.3") || len(raw) != 32 {
		t.Errorf("table: %d rows, keys %q", n, raw)
	}

	proxy.Down()
	granted = 0
	for range 10 {
		if ok, _ := nodes[0].allow("10.7.7.7"); ok {
			granted++
		}
	}
	if granted != rate.Burst {
		t.Errorf("with the database away: %d of 10 granted, want %d (the node's own limit)", granted, rate.Burst)
	}
	proxy.Up()
}
