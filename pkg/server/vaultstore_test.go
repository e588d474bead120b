package server

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/phr-project/phr/pkg/kv"
	"github.com/phr-project/phr/pkg/kv/kvtest"
	"github.com/phr-project/phr/pkg/server/api"
	"github.com/phr-project/phr/pkg/vault"
)

// TestPostgresVaultsAcrossNodes: with --database-url the accounts' vaults
// are namespaces of the database, so any node serves any account: an
// account made on one node logs in on another, a record written on one is
// read on the other (its ETag the same), a session made on one serves on
// the other, and no node's data directory holds a vault. The namespace is
// vault/<account id>: no username in the database.
func TestPostgresVaultsAcrossNodes(t *testing.T) {
	nodes := clusterNodes(t, 2, nil)
	db := nodes[0].cfg.DatabaseURL
	a, b := nodes[0], nodes[1]

	alice := a.signup("alice")
	rec, etag := alice.post(map[string]any{"log": "med", "name": "Metformin", "dose": "500 mg"})
	id := rec["id"].(string)

	onB := b.client()
	onB.login("alice", testPass)
	r := onB.do("GET", "/api/v1/records/"+id, nil)
	want(t, r, http.StatusOK)
	if got := r.header.Get("ETag"); got != etag {
		t.Errorf("ETag on node b %q, on node a %q", got, etag)
	}
	// A session made on node a serves on node b.
	alice.base = b.url
	want(t, alice.do("GET", "/api/v1/records/"+id, nil), http.StatusOK)
	// A write on node b is read on node a.
	rec2, _ := onB.post(map[string]any{"log": "med", "name": "Lisinopril", "dose": "10 mg"})
	onB.base = a.url
	want(t, onB.do("GET", fmt.Sprintf("/api/v1/records/%s", rec2["id"]), nil), http.StatusOK)

	for _, ts := range nodes {
		ents, err := os.ReadDir(ts.data.vaults)
		if err != nil || len(ents) != 0 {
			t.Errorf("a node's vault directory holds %d entries (%v)", len(ents), err)
		}
	}
	pg, err := kv.OpenPostgres(context.Background(), db, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close()
	names, err := pg.Namespaces(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	var vaults []string
	for _, n := range names {
		if strings.Contains(n, "alice") {
			t.Errorf("namespace %q names the user", n)
		}
		if strings.HasPrefix(n, vaultNamespacePrefix) {
			vaults = append(vaults, n)
		}
	}
	if want := []string{vaultNamespacePrefix + a.data.accountID("alice")}; fmt.Sprint(vaults) != fmt.Sprint(want) {
		t.Errorf("vault namespaces %v, want %v", vaults, want)
	}
	ids, err := a.data.store.ids()
	if err != nil || len(ids) != 1 || ids[0] != a.data.accountID("alice") {
		t.Errorf("ids: %v %v", ids, err)
	}
}

// TestPostgresCreateRace: two nodes making the same username at the same
// moment: exactly one succeeds and the other gets 409, every time; and
// the same through Host.CreateAccount (phrd account create) from several
// processes' worth of goroutines. CreateIn checks that the namespace is
// empty under its lock, in the transaction that writes the vault.
func TestPostgresCreateRace(t *testing.T) {
	nodes := clusterNodes(t, 2, nil)
	db := nodes[0].cfg.DatabaseURL
	for i := range 5 {
		user := fmt.Sprintf("racer%d", i)
		var wg sync.WaitGroup
		status := make([]int, len(nodes))
		start := make(chan struct{})
		for j, ts := range nodes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				status[j] = ts.client().do("POST", "/api/v1/accounts", api.CreateAccountRequest{Username: user, Passphrase: testPass}).status
			}()
		}
		close(start)
		wg.Wait()
		if created, taken := count(status, http.StatusCreated), count(status, http.StatusConflict); created != 1 || taken != 1 {
			t.Errorf("%s: statuses %v, want one 201 and one 409", user, status)
		}
		// The winner's account works on both nodes.
		for _, ts := range nodes {
			ts.client().login(user, testPass)
		}
	}

	// Below the API's check that the name is free: the data directory's
	// createAccount, as two nodes would race past that check.
	for i := range 3 {
		user := fmt.Sprintf("deep%d", i)
		errs := make([]error, 4)
		var wg sync.WaitGroup
		for j := range errs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[j] = nodes[j%2].data.createAccount(user, testPass, "test", nil)
			}()
		}
		wg.Wait()
		ok, exists := 0, 0
		for _, err := range errs {
			switch {
			case err == nil:
				ok++
			case err == errAccountExists:
				exists++
			default:
				t.Errorf("%s: %v", user, err)
			}
		}
		if ok != 1 || exists != len(errs)-1 {
			t.Errorf("%s: %d made, %d refused, want 1 and %d", user, ok, exists, len(errs)-1)
		}
	}

	h := Host{DataDir: nodes[0].cfg.DataDir, DatabaseURL: db}
	res, err := h.CreateAccount(context.Background(), "Carol", testPass)
	if err != nil || res.Username != "carol" || !vault.IsRecoveryCode(res.RecoveryCode) {
		t.Fatalf("host create: %+v %v", res, err)
	}
	if _, err := h.CreateAccount(context.Background(), "carol", testPass); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Errorf("second host create: %v", err)
	}
	nodes[1].client().login("carol", testPass)
}

func count(xs []int, x int) int {
	n := 0
	for _, v := range xs {
		if v == x {
			n++
		}
	}
	return n
}

// TestPostgresImportAccount: `phrd account import --database-url`: a CLI
// vault's backup becomes an account in the database, served by every
// node with its records; a backup that does not restore leaves no
// namespace; a second import of the name is refused.
func TestPostgresImportAccount(t *testing.T) {
	nodes := clusterNodes(t, 2, nil)
	db := nodes[0].cfg.DatabaseURL
	owner, recs, backup, backupID := cliBackup(t)
	h := Host{DataDir: nodes[0].cfg.DataDir, DatabaseURL: db}
	if _, err := h.ImportAccount(context.Background(), "liz", testPass, bytes.NewReader(backup.Bytes()[:backup.Len()/2]), []age.Identity{backupID}); err == nil {
		t.Fatal("a backup cut short was imported")
	}
	if ok, err := nodes[1].data.exists(nodes[1].data.accountID("liz")); ok || err != nil {
		t.Fatalf("after a failed import: exists %v, %v", ok, err)
	}
	res, err := h.ImportAccount(context.Background(), "Liz", testPass, bytes.NewReader(backup.Bytes()), []age.Identity{backupID})
	if err != nil {
		t.Fatal(err)
	}
	if res.PatientID != owner.ID || res.Records < len(recs) {
		t.Fatalf("imported %+v, want patient %s and %d records", res, owner.ID, len(recs))
	}
	if _, err := h.ImportAccount(context.Background(), "liz", testPass, bytes.NewReader(backup.Bytes()), []age.Identity{backupID}); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Fatalf("second import: %v", err)
	}
	for _, ts := range nodes {
		c := ts.client()
		c.login("liz", testPass)
		for _, want := range []string{recs[0].ID, recs[len(recs)-1].ID} {
			if r := c.do("GET", "/api/v1/records/"+want, nil); r.status != http.StatusOK {
				t.Errorf("record %s on a node: %d", want, r.status)
			}
		}
	}
	if ents, _ := os.ReadDir(filepath.Join(nodes[0].cfg.DataDir, "tmp")); len(ents) != 0 {
		t.Errorf("tmp holds %d entries", len(ents))
	}
}

// TestMigrateVaults: `phrd migrate` moves every account's vault into its
// namespace with the file's counts; a node on the database then logs both
// accounts in and lists the same records, with the same ETags; the files
// stay; a second migration is refused before it copies anything.
func TestMigrateVaults(t *testing.T) {
	db := kvtest.URL(t)
	dataDir := filepath.Join(t.TempDir(), "data")
	keyFile := filepath.Join(t.TempDir(), "share.key")
	before := newTestServer(t, func(c *Config) { c.DataDir, c.ShareKeyFile = dataDir, keyFile })
	users := []string{"alice", "bob"}
	listings := map[string]string{}
	for i, u := range users {
		c := before.signup(u)
		for j := range 3 + i {
			c.post(map[string]any{"log": "med", "name": fmt.Sprintf("Drug %d", j), "dose": "10 mg"})
		}
		listings[u] = string(c.do("GET", "/api/v1/records", nil).body)
	}
	if err := before.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	res, err := MigrateToDatabase(context.Background(), dataDir, db, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Vaults) != len(users) {
		t.Fatalf("moved %d vaults, want %d", len(res.Vaults), len(users))
	}
	for _, mv := range res.Vaults {
		c, err := countFile(filepath.Join(dataDir, "vaults", mv.ID+".phr"))
		if err != nil || c != mv.Counts || c.Keys == 0 {
			t.Errorf("vault %s: moved %+v, the file holds %+v (%v)", mv.ID, mv.Counts, c, err)
		}
		if !strings.Contains(res.String(), fmt.Sprintf("vault %s: %d buckets, %d keys, %d bytes", mv.ID, c.Buckets, c.Keys, c.Bytes)) {
			t.Errorf("report:\n%s", res)
		}
	}
	if !strings.Contains(res.String(), "vaults: 2 copied") || !strings.Contains(res.String(), "left in DATA/vaults") {
		t.Errorf("report:\n%s", res)
	}
	if _, err := MigrateToDatabase(context.Background(), dataDir, db, keyFile); err == nil || !strings.Contains(err.Error(), "already holds the vault") {
		t.Errorf("a second migration: %v", err)
	}

	after := newTestServer(t, func(c *Config) { c.DataDir, c.ShareKeyFile, c.DatabaseURL = dataDir, keyFile, db })
	// The files stay, but the node serves from the database: a record
	// written now is not in the file.
	for _, u := range users {
		c := after.client()
		c.login(u, testPass)
		if got := string(c.do("GET", "/api/v1/records", nil).body); got != listings[u] {
			t.Errorf("%s's records after the move:\n%s\nbefore:\n%s", u, got, listings[u])
		}
	}
	c := after.client()
	c.login("alice", testPass)
	c.post(map[string]any{"log": "med", "name": "After", "dose": "1 mg"})
	id := after.data.accountID("alice")
	fc, _ := countFile(filepath.Join(dataDir, "vaults", id+".phr"))
	var moved kv.Counts
	for _, mv := range res.Vaults {
		if mv.ID == id {
			moved = mv.Counts
		}
	}
	if fc != moved {
		t.Errorf("the file changed after the move: %+v, was %+v", fc, moved)
	}
}

// TestPostgresVaultConfidential: what a node writes to the database for
// an account (its vault, sessions) holds none of the account's plaintext:
// every column of every row of phr_kv is searched for the username, the
// passphrase, a record's text and the session token. The namespace names
// the account by its id.
func TestPostgresVaultConfidential(t *testing.T) {
	ts := clusterNodes(t, 1, nil)[0]
	const user, secretText = "zanzibar-owner", "Quinquagenarian-Zanzibar-Tonic"
	c := ts.signup(user)
	c.post(map[string]any{"log": "med", "name": secretText, "dose": "17 mg", "note": secretText + " note"})
	want(t, c.do("GET", "/api/v1/records", nil), http.StatusOK)
	pg, err := kv.OpenPostgres(context.Background(), ts.cfg.DatabaseURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close()
	rows, err := pg.Pool().Query(context.Background(), `SELECT ns, b, k, coalesce(v, ''::bytea) FROM phr_kv`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n, inVault := 0, 0
	for rows.Next() {
		var ns string
		var b, k, v []byte
		if err := rows.Scan(&ns, &b, &k, &v); err != nil {
			t.Fatal(err)
		}
		n++
		if ns == vaultNamespacePrefix+ts.data.accountID(user) {
			inVault++
		}
		for _, col := range [][]byte{[]byte(ns), b, k, v} {
			for _, s := range []string{user, testPass, secretText, "Zanzibar", c.token} {
				if bytes.Contains(bytes.ToLower(col), bytes.ToLower([]byte(s))) {
					t.Errorf("a row of namespace %q holds %q", ns, s)
				}
			}
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if inVault < 5 {
		t.Errorf("%d rows in all, %d in the account's namespace: is the vault there?", n, inVault)
	}
}

// TestPostgresStaleVault: nodes keep an account's vault open between
// requests; after a key rotation on node A, node B's open Vault is stale
// (vault.ErrStale). B's next request of the rotating session answers 503
// (try again, the session is fine: not 401), and the one after opens the
// vault again with the session's rewrapped key and serves it; a login on
// node C, which held the vault open for a session the rotation ended,
// opens it again at once; the ended sessions get 401 everywhere; a write
// on B afterwards is read on A.
func TestPostgresStaleVault(t *testing.T) {
	nodes := clusterNodes(t, 3, nil)
	a, b, c := nodes[0], nodes[1], nodes[2]
	alice := a.signup("alice")
	rec, _ := alice.post(map[string]any{"log": "med", "name": "Metformin", "dose": "500 mg"})
	onC := c.client()
	onC.login("alice", testPass)
	want(t, onC.do("GET", "/api/v1/records", nil), http.StatusOK) // C holds the vault open
	rot := a.client()
	rot.login("alice", testPass)
	want(t, rot.at(b).do("GET", "/api/v1/records", nil), http.StatusOK) // B holds it, and rot's session
	want(t, rot.do("POST", "/api/v1/keys/rotate", map[string]string{"passphrase": testPass}), http.StatusOK)

	r := rot.at(b).do("GET", "/api/v1/records/"+rec["id"].(string), nil)
	if r.status != http.StatusOK && (r.status != http.StatusServiceUnavailable || r.errCode() != api.CodeUnavailable || r.header.Get("Retry-After") == "") {
		t.Fatalf("the rotating session on a node with the old Vault: %d %s", r.status, r.body)
	}
	want(t, rot.at(b).do("GET", "/api/v1/records/"+rec["id"].(string), nil), http.StatusOK)

	again := c.client()
	again.login("alice", testPass) // C's open Vault is stale: opened again
	want(t, again.do("GET", "/api/v1/records/"+rec["id"].(string), nil), http.StatusOK)
	for _, cl := range []*client{alice, onC, alice.at(b), onC.at(a)} {
		want(t, cl.do("GET", "/api/v1/records", nil), http.StatusUnauthorized)
	}
	rec2, _ := rot.at(b).post(map[string]any{"log": "med", "name": "Lisinopril", "dose": "10 mg"})
	want(t, again.at(a).do("GET", "/api/v1/records/"+rec2["id"].(string), nil), http.StatusOK)
}

// TestDatabasePoolSize: a node's pool holds up to defaultDBConns
// connections, or what the URL's pool_max_conns says.
func TestDatabasePoolSize(t *testing.T) {
	for _, tt := range []struct {
		param string
		want  int32
	}{
		{"", defaultDBConns},
		{"&pool_max_conns=3", 3},
	} {
		ts := newTestServer(t, func(c *Config) { c.DatabaseURL = kvtest.URL(t) + tt.param })
		if got := ts.pg.Pool().Config().MaxConns; got != tt.want {
			t.Errorf("%q: pool of %d, want %d", tt.param, got, tt.want)
		}
	}
}

// TestPostgresRoundTrips: what a page of records and an ingest cost in
// round trips to the database (kv.Postgres.RoundTrips), once the node
// holds the vault open: a bound, so that a change that goes back to one
// statement per record fails here rather than only in phr-load.
func TestPostgresRoundTrips(t *testing.T) {
	node := clusterNodes(t, 1, nil)[0]
	c := node.signup("alice")
	batch := func(from int) api.IngestRequest {
		req := api.IngestRequest{Device: "watch"}
		for i := from; i < from+10; i++ {
			v := float64(60 + i%40)
			req.Readings = append(req.Readings, api.Reading{ID: fmt.Sprint("r", i), Type: "heart_rate", Value: &v, Unit: "/min",
				At: time.Date(2026, 1, 1, 0, i, 0, 0, time.UTC).Format(time.RFC3339)})
		}
		return req
	}
	for i := 0; i < 6; i++ {
		want(t, c.do("POST", "/api/v1/ingest", batch(10*i)), http.StatusOK)
	}
	want(t, c.do("GET", "/api/v1/records?limit=50", nil), http.StatusOK)
	tests := []struct {
		name string
		max  uint64
		do   func() *resp
	}{
		// The session's row (one statement, kv.GetOne), a View of the
		// vault (BEGIN with the buckets' names, the head, the listing's
		// segments and nodes, the page's 50 records at once, COMMIT),
		// the rate limit: 7.
		{"GET a page of 50 records", 7, func() *resp { return c.do("GET", "/api/v1/records?limit=50", nil) }},
		// 32: the readings' identities are looked up one by one (a
		// cursor each), with the queued writes.
		{"POST 10 readings", 40, func() *resp { return c.do("POST", "/api/v1/ingest", batch(100)) }},
	}
	for _, tc := range tests {
		before := node.pg.RoundTrips()
		r := tc.do()
		if r.status != http.StatusOK {
			t.Fatalf("%s: %d %s", tc.name, r.status, r.body)
		}
		got := node.pg.RoundTrips() - before
		t.Logf("%s: %d round trips", tc.name, got)
		if got > tc.max {
			t.Errorf("%s: %d round trips, want at most %d", tc.name, got, tc.max)
		}
	}
}
