package server

import (
	"bytes"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/phr-project/phr/pkg/kv"
	"github.com/phr-project/phr/pkg/kv/kvtest"
	"github.com/phr-project/phr/pkg/server/api"
	"github.com/phr-project/phr/pkg/vault"
)

// at is c talking to another node.
func (c *client) at(ts *testServer) *client {
	o := *c
	o.base = ts.url
	return &o
}

// otherSessionID is the ID of a session of c's account that is not c's.
func otherSessionID(t *testing.T, c *client) string {
	t.Helper()
	var list struct{ Sessions []SessionListItem }
	r := c.do("GET", "/api/v1/sessions", nil)
	want(t, r, http.StatusOK)
	r.decode(t, &list)
	for _, s := range list.Sessions {
		if !s.Current {
			return s.ID
		}
	}
	t.Fatalf("no other session: %+v", list.Sessions)
	return ""
}

// rawRows returns every key and value of every bucket of the bbolt file
// at path, as a thief of the file reads them.
func rawRows(t *testing.T, path string) (keys, values [][]byte, buckets map[string]int) {
	t.Helper()
	db, err := kv.OpenBolt(path, 0o600, &kv.BoltOptions{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	buckets = map[string]int{}
	err = db.View(func(tx kv.Tx) error {
		return tx.ForEach(func(name []byte, b kv.Bucket) error {
			return b.ForEach(func(k, v []byte) error {
				buckets[string(name)]++
				keys = append(keys, bytes.Clone(k))
				values = append(values, bytes.Clone(v))
				return nil
			})
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return keys, values, buckets
}

// TestSessionStoreOpensNothing: every row of the session store plus
// server.key (a copy of the data directory: sessions.db sits beside
// server.key) holds no token and no account ID in clear, and opens no
// vault: the wrapped vault keys need the key derived from the token,
// which is not in them. The rows do open under server.key (they are
// sealed against a copy of the database alone); with the token, the
// vault opens (the control).
func TestSessionStoreOpensNothing(t *testing.T) {
	ts := newTestServer(t, nil)
	alice := ts.signup("alice")
	r := alice.do("POST", "/api/v1/devices", api.DeviceRequest{Label: "phone", Passphrase: testPass})
	want(t, r, http.StatusCreated)
	var dev api.DeviceCreated
	r.decode(t, &dev)
	phone := ts.client()
	want(t, phone.do("POST", "/api/v1/sessions", api.SessionRequest{Username: "alice", DeviceCredential: dev.Credential}), http.StatusCreated)
	r = phone.do("POST", "/api/v1/sessions", api.SessionRequest{Username: "alice", DeviceCredential: dev.Credential})
	var s api.Session
	r.decode(t, &s)
	phone.token = s.Token
	// A failed login waits in the store for the audit log.
	want(t, ts.client().do("POST", "/api/v1/sessions", api.SessionRequest{Username: "alice", Passphrase: "wrong guess 1"}), http.StatusUnauthorized)
	// A passkey registration and a sign-in, begun: their ceremonies wait
	// in the store. The registration's holds K, the passkey's secret
	// (the user handle is the account ID and K).
	r = alice.do("POST", "/api/v1/passkeys/register/begin", PasskeyRegisterRequest{Passphrase: testPass, Username: "alice"})
	want(t, r, http.StatusOK)
	_, opts := beginOptions(t, r)
	handle, err := base64.RawURLEncoding.DecodeString(opts["user"].(map[string]any)["id"].(string))
	if err != nil || len(handle) != userHandleLen {
		t.Fatalf("user handle: %v", err)
	}
	passkeySecret := handle[32:]
	want(t, ts.client().do("POST", "/api/v1/passkeys/login/begin", map[string]any{}), http.StatusOK)
	acct := ts.data.accountID("alice")
	if err := ts.Close(); err != nil {
		t.Fatal(err)
	}

	keys, values, buckets := rawRows(t, filepath.Join(ts.cfg.DataDir, sessionsFile))
	var serverKey []byte
	if buckets["s"] != 3 || buckets["a"] != 3 || buckets["f"] != 1 || buckets["c"] != 2 {
		t.Fatalf("rows per bucket: %v", buckets)
	}
	rawAcct, _ := hex.DecodeString(acct)
	secrets := map[string][]byte{"account id": []byte(acct), "account id (bytes)": rawAcct, "passkey secret": passkeySecret}
	for i, tok := range []string{alice.token, phone.token} {
		raw, _ := base64.RawURLEncoding.DecodeString(tok)
		secrets["token "+string(rune('A'+i))] = []byte(tok)
		secrets["token bytes "+string(rune('A'+i))] = raw
		secrets["session key "+string(rune('A'+i))] = sessionKey(tok)
	}
	for name, secret := range secrets {
		for i := range keys {
			if bytes.Contains(keys[i], secret) || bytes.Contains(values[i], secret) {
				t.Errorf("the store holds the %s in clear", name)
			}
		}
	}

	// With server.key, the rows open; their wrapped keys do not.
	serverKey, err = os.ReadFile(filepath.Join(ts.cfg.DataDir, serverKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	secret, _ := hex.DecodeString(strings.TrimSpace(string(serverKey)))
	// The store's sealing keys, as a thief derives them from server.key.
	empty, err := kv.OpenBolt(filepath.Join(t.TempDir(), "empty.db"), 0o600, &kv.BoltOptions{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer empty.Close()
	st, err := newSessionStore(empty, secret)
	if err != nil {
		t.Fatal(err)
	}
	// The sign-in ceremony opens under server.key; the registration, with
	// K in it, does not.
	ceremonies := 0
	for i, k := range keys {
		if len(values[i]) < 8 {
			continue
		}
		if pt, err := storeOpen(st.rows, bucketCeremonies, k, 8, values[i]); err == nil {
			ceremonies++
			if bytes.Contains(pt, passkeySecret) || bytes.Contains(pt, []byte(hex.EncodeToString(passkeySecret))) || bytes.Contains(pt, []byte(base64.StdEncoding.EncodeToString(passkeySecret))) {
				t.Error("a ceremony that opens under server.key holds the passkey's secret")
			}
		}
	}
	if ceremonies != 1 {
		t.Errorf("%d ceremonies open under server.key, want 1 (the sign-in's)", ceremonies)
	}
	opened := 0
	for i, k := range keys {
		if len(k) != 32 || len(values[i]) == 0 {
			continue
		}
		row, err := st.openRow(k, values[i])
		if err != nil {
			continue // not a session row
		}
		if row.Account != acct || len(row.Wrapped) == 0 {
			t.Fatalf("row: %+v", row)
		}
		candidates := [][]byte{k, secret}
		for _, info := range []string{"phrd session vault key v1", "phrd session rows v1"} {
			for _, ikm := range [][]byte{k, secret, []byte(hex.EncodeToString(k))} {
				d, _ := hkdf.Key(sha256.New, ikm, nil, info, 32)
				candidates = append(candidates, d)
			}
		}
		for _, cand := range candidates {
			v, err := vault.Open(ts.data.vaultPath(acct), vault.SessionSecret(row.Wrapped, cand), &vault.Options{NoSync: true})
			if !errors.Is(err, vault.ErrWrongKey) {
				if v != nil {
					v.Close()
				}
				t.Fatalf("a key derived from the store and server.key: %v, want ErrWrongKey", err)
			}
		}
		// The control: with the token, the vault opens.
		for _, tok := range []string{alice.token, phone.token} {
			if h := sha256.Sum256([]byte(tok)); bytes.Equal(h[:], k) {
				v, err := vault.Open(ts.data.vaultPath(acct), vault.SessionSecret(row.Wrapped, sessionKey(tok)), &vault.Options{NoSync: true})
				if err != nil {
					t.Fatalf("the token's own key: %v", err)
				}
				v.Close()
				opened++
			}
		}
	}
	if opened != 2 {
		t.Errorf("%d rows opened with their token, want 2", opened)
	}
}

// TestRotationEndsOtherSessions: a rotation of the vault key ends the
// account's other sessions (401), on the node and after a restart, even
// if a row of one of them came back (from a backup of the store): the
// key it wraps is the old one. The session that rotated goes on, also
// after a restart, which opens the vault from its rewrapped key.
func TestRotationEndsOtherSessions(t *testing.T) {
	ts := newTestServer(t, nil)
	alice := ts.signup("alice")
	other := ts.client()
	other.login("alice", testPass)
	h := sha256.Sum256([]byte(other.token))
	oldRow, err := ts.sess.store.get(h)
	if err != nil || oldRow == nil {
		t.Fatal(err)
	}
	r := alice.do("POST", "/api/v1/keys/rotate", map[string]string{"passphrase": testPass})
	want(t, r, http.StatusOK)
	want(t, other.do("GET", "/api/v1/records", nil), http.StatusUnauthorized)
	want(t, alice.do("GET", "/api/v1/records", nil), http.StatusOK)
	ts.Close()

	// The other session's row, put back as it was before the rotation.
	ts2 := newTestServer(t, func(c *Config) { c.DataDir = ts.cfg.DataDir })
	if err := ts2.sess.store.db.Update(func(tx kv.Tx) error { return ts2.sess.store.put(tx, h, oldRow) }); err != nil {
		t.Fatal(err)
	}
	alice.base, other.base = ts2.url, ts2.url
	want(t, alice.do("GET", "/api/v1/records", nil), http.StatusOK)
	want(t, other.do("GET", "/api/v1/records", nil), http.StatusUnauthorized)
	if row, err := ts2.sess.store.get(h); err != nil || row != nil {
		t.Errorf("the row whose key opens nothing is still there: %v", err)
	}
	// A passphrase change moves the caller's session to the new slot.
	want(t, alice.do("POST", "/api/v1/keys/passphrase", map[string]string{"passphrase": testPass, "new_passphrase": testPass + " 2"}), http.StatusNoContent)
	ts2.Close()
	ts3 := newTestServer(t, func(c *Config) { c.DataDir = ts.cfg.DataDir })
	alice.base = ts3.url
	want(t, alice.do("GET", "/api/v1/records", nil), http.StatusOK)
}

// TestPasskeyCeremonyAcrossRestart: a passkey sign-in begun before a
// restart is finished after it (ceremonies are in the store, not in
// memory), and only once.
func TestPasskeyCeremonyAcrossRestart(t *testing.T) {
	public := "http://localhost:8443" // the address clients use, whatever the node
	ts := newTestServer(t, func(c *Config) { c.PublicURL = public })
	alice := ts.signup("alice")
	auth := newSoftAuthenticator(t, public)
	registerPasskey(t, alice, auth, "alice", "Phone")
	pk := ts.client()
	r := pk.do("POST", "/api/v1/passkeys/login/begin", map[string]any{})
	want(t, r, http.StatusOK)
	cer, opts := beginOptions(t, r)
	cred := auth.get(opts, auth.handle)
	ts.Close()
	ts2 := newTestServer(t, func(c *Config) { c.DataDir, c.PublicURL = ts.cfg.DataDir, public })
	pk.base = ts2.url
	want(t, pk.do("POST", "/api/v1/passkeys/login/finish", PasskeyFinishRequest{Ceremony: cer, Credential: cred}), http.StatusCreated)
	want(t, pk.do("POST", "/api/v1/passkeys/login/finish", PasskeyFinishRequest{Ceremony: cer, Credential: cred}), http.StatusBadRequest)
}

// clusterNodes starts n servers on one PostgreSQL database (the vaults,
// sessions and shares in it), each with a data directory of its own
// holding the same server.key (as an operator copies it to every node),
// one share key file, behind one public URL.
func clusterNodes(t *testing.T, n int, mod func(*Config)) []*testServer {
	t.Helper()
	db := kvtest.URL(t)
	key := []byte(strings.Repeat("5a", 32) + "\n")
	keyFile := filepath.Join(t.TempDir(), "share.key")
	var out []*testServer
	for range n {
		data := filepath.Join(t.TempDir(), "data")
		if err := os.MkdirAll(data, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(data, serverKeyFile), key, 0o600); err != nil {
			t.Fatal(err)
		}
		out = append(out, newTestServer(t, func(c *Config) {
			c.DatabaseURL, c.DataDir, c.ShareKeyFile = db, data, keyFile
			c.PublicURL = "http://localhost:8443"
			if mod != nil {
				mod(c)
			}
		}))
	}
	return out
}

// TestSessionsAcrossNodes: two nodes on one database serve each other's
// sessions: a token made on A reads on B; a logout on B is refused on A
// at once, and so is a session ended from A's session list on B; a
// failed login on B is in the audit log of the next login, on A; passkey
// registration and sign-in begun on A finish on B; idle expiry, the
// per-account cap and a rotation's end of the other sessions hold across
// them.
func TestSessionsAcrossNodes(t *testing.T) {
	clock := &fakeClock{t: time.Now().UTC()}
	nodes := clusterNodes(t, 2, func(c *Config) {
		c.Now = clock.Now
		c.IdleTimeout = 10 * time.Minute
		c.MaxSessionsPerAccount = 3
	})
	a, b := nodes[0], nodes[1]
	if _, err := os.Stat(filepath.Join(a.cfg.DataDir, sessionsFile)); err == nil {
		t.Errorf("%s in the data directory of nodes on PostgreSQL", sessionsFile)
	}

	alice := a.signup("alice")
	alice.post(map[string]any{"log": "symptom", "name": "headache", "severity": 4})
	var list api.RecordList
	r := alice.at(b).do("GET", "/api/v1/records?type=symptom", nil)
	want(t, r, http.StatusOK)
	r.decode(t, &list)
	if len(list.Records) != 1 {
		t.Fatalf("records on B: %s", r.body)
	}

	t.Run("FailedLoginInAuditAcrossNodes", func(t *testing.T) {
		want(t, b.client().do("POST", "/api/v1/sessions", api.SessionRequest{Username: "alice", Passphrase: "wrong guess 1"}), http.StatusUnauthorized)
		c := a.client()
		c.login("alice", testPass)
		var audit api.Audit
		c.do("GET", "/api/v1/audit", nil).decode(t, &audit)
		failures := 0
		for _, e := range audit.Entries {
			if e.Event == AuditLogin && !e.Success {
				failures++
			}
		}
		if failures != 1 {
			t.Errorf("%d failed logins in the audit log, want 1: %+v", failures, audit.Entries)
		}
		want(t, c.do("DELETE", "/api/v1/sessions/current", nil), http.StatusNoContent)
	})

	t.Run("LogoutOnBRefusedOnA", func(t *testing.T) {
		c := a.client()
		c.login("alice", testPass)
		want(t, c.at(b).do("GET", "/api/v1/records", nil), http.StatusOK)
		want(t, c.at(b).do("DELETE", "/api/v1/sessions/current", nil), http.StatusNoContent)
		want(t, c.do("GET", "/api/v1/records", nil), http.StatusUnauthorized)
	})

	t.Run("RevokedFromListOnARefusedOnB", func(t *testing.T) {
		c := b.client()
		c.login("alice", testPass)
		want(t, c.do("GET", "/api/v1/records", nil), http.StatusOK)
		want(t, alice.do("DELETE", "/api/v1/sessions/"+otherSessionID(t, alice), nil), http.StatusNoContent)
		want(t, c.do("GET", "/api/v1/records", nil), http.StatusUnauthorized)
	})

	t.Run("PasskeyBegunOnAFinishedOnB", func(t *testing.T) {
		auth := newSoftAuthenticator(t, "http://localhost:8443")
		r := alice.do("POST", "/api/v1/passkeys/register/begin", PasskeyRegisterRequest{Passphrase: testPass, Username: "alice", Label: "Phone"})
		want(t, r, http.StatusOK)
		cer, opts := beginOptions(t, r)
		want(t, alice.at(b).do("POST", "/api/v1/passkeys/register/finish", PasskeyFinishRequest{Ceremony: cer, Credential: auth.create(opts)}), http.StatusCreated)

		pk := a.client()
		r = pk.do("POST", "/api/v1/passkeys/login/begin", map[string]any{})
		want(t, r, http.StatusOK)
		cer, opts = beginOptions(t, r)
		cred := auth.get(opts, auth.handle)
		r = pk.at(b).do("POST", "/api/v1/passkeys/login/finish", PasskeyFinishRequest{Ceremony: cer, Credential: cred})
		want(t, r, http.StatusCreated)
		var s api.Session
		r.decode(t, &s)
		pk.token = s.Token
		want(t, pk.do("GET", "/api/v1/records", nil), http.StatusOK)
		// Used once, on whichever node.
		if r := pk.do("POST", "/api/v1/passkeys/login/finish", PasskeyFinishRequest{Ceremony: cer, Credential: cred}); r.status != http.StatusBadRequest {
			t.Errorf("a ceremony finished twice: %d", r.status)
		}
		want(t, pk.do("DELETE", "/api/v1/sessions/current", nil), http.StatusNoContent)
	})

	t.Run("IdleExpiry", func(t *testing.T) {
		c := a.client()
		c.login("alice", testPass)
		clock.Add(9 * time.Minute)
		want(t, c.at(b).do("GET", "/api/v1/records", nil), http.StatusOK) // B writes the use
		clock.Add(9 * time.Minute)
		want(t, c.do("GET", "/api/v1/records", nil), http.StatusOK) // 18 minutes after login: A sees B's use
		clock.Add(12 * time.Minute)
		want(t, c.at(b).do("GET", "/api/v1/records", nil), http.StatusUnauthorized)
	})

	t.Run("CapAcrossNodes", func(t *testing.T) {
		var cs []*client
		for i, node := range []*testServer{a, b, a, b} {
			c := node.client()
			c.login("alice", testPass)
			cs = append(cs, c)
			clock.Add(time.Second * time.Duration(i+1))
		}
		// Three at most: the oldest (made on A) ended when the fourth
		// logged in on B.
		want(t, cs[0].at(b).do("GET", "/api/v1/records", nil), http.StatusUnauthorized)
		for _, c := range cs[1:] {
			want(t, c.at(a).do("GET", "/api/v1/records", nil), http.StatusOK)
		}
	})

	t.Run("OwnDataDirectory", func(t *testing.T) {
		// A node on the database with a data directory of its own (the
		// same server.key): the vaults are in the database too, so it
		// serves the session as the others do.
		dir := t.TempDir()
		key, err := os.ReadFile(filepath.Join(a.cfg.DataDir, serverKeyFile))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, serverKeyFile), key, 0o600); err != nil {
			t.Fatal(err)
		}
		lone := newTestServer(t, func(c *Config) {
			c.DatabaseURL, c.DataDir, c.ShareKeyFile, c.PublicURL, c.Now = a.cfg.DatabaseURL, dir, a.cfg.ShareKeyFile, a.cfg.PublicURL, clock.Now
		})
		c := a.client()
		c.login("alice", testPass)
		r := c.at(lone).do("GET", "/api/v1/records", nil)
		want(t, r, http.StatusOK)
		if home := c.do("GET", "/api/v1/records", nil); string(home.body) != string(r.body) {
			t.Errorf("the records on a node with its own data directory:\n%s\non the first:\n%s", r.body, home.body)
		}
	})

	t.Run("RotationEndsOtherSessions", func(t *testing.T) {
		rot, other := a.client(), b.client()
		rot.login("alice", testPass)
		other.login("alice", testPass)
		want(t, rot.do("POST", "/api/v1/keys/rotate", map[string]string{"passphrase": testPass}), http.StatusOK)
		want(t, other.do("GET", "/api/v1/records", nil), http.StatusUnauthorized)
		want(t, other.at(a).do("GET", "/api/v1/records", nil), http.StatusUnauthorized)
		want(t, rot.at(b).do("GET", "/api/v1/records", nil), http.StatusOK) // B opens the vault from the rewrapped key
	})
}

// TestLastUsedStep: a session's last use is written at most once a
// minute (a write per request would serialise an account's reads), and
// the idle timeout allows that minute: used 30 s after login (not
// written), the session still lives 10.5 minutes after login with a
// 10-minute idle timeout, and it ends 11 minutes after its last written
// use. MaxSessions bounds the store.
func TestLastUsedStep(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 5, 1, 8, 0, 0, 0, time.UTC)}
	ts := newTestServer(t, func(c *Config) {
		c.Now = clock.Now
		c.IdleTimeout = 10 * time.Minute
		c.MaxSessions = 2
	})
	c := ts.signup("alice")
	h := sha256.Sum256([]byte(c.token))
	login := clock.Now()
	lastUsed := func() time.Time {
		t.Helper()
		row, err := ts.sess.store.get(h)
		if err != nil || row == nil {
			t.Fatalf("row: %v", err)
		}
		return row.LastUsed
	}
	clock.Add(30 * time.Second)
	want(t, c.do("GET", "/api/v1/records", nil), http.StatusOK)
	if got := lastUsed(); !got.Equal(login) {
		t.Errorf("last use written 30 s after the last write: %v", got)
	}
	var info api.SessionInfo
	c.do("GET", "/api/v1/sessions/current", nil).decode(t, &info)
	if want := login.Add(11 * time.Minute); !info.IdleExpiresAt.Equal(want) {
		t.Errorf("idle_expires_at %v, want %v", info.IdleExpiresAt, want)
	}
	clock.Add(10 * time.Minute) // 10.5 minutes after login, 10 after the last use
	want(t, c.do("GET", "/api/v1/records", nil), http.StatusOK)
	if got := lastUsed(); !got.Equal(clock.Now()) {
		t.Errorf("last use %v, want %v", got, clock.Now())
	}

	other := ts.client()
	other.login("alice", testPass)
	if r := ts.client().do("POST", "/api/v1/sessions", api.SessionRequest{Username: "alice", Passphrase: testPass}); r.status != http.StatusServiceUnavailable {
		t.Errorf("a third session with MaxSessions 2: %d", r.status)
	}
	clock.Add(11 * time.Minute)
	want(t, c.do("GET", "/api/v1/records", nil), http.StatusUnauthorized)
}
