package server

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/phr-project/phr/pkg/kv"
)

// ceremonyRows counts the passkey ceremonies in the session store.
func ceremonyRows(t *testing.T, ts *testServer) int {
	t.Helper()
	n := 0
	err := ts.sess.store.db.View(func(tx kv.Tx) error {
		return tx.Bucket(bucketCeremonies).ForEach(func(k, v []byte) error {
			n++
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestPasskeyCeremoniesExpire: a begun ceremony (a sign-in, or a
// registration, which holds the new passkey's secret) lives in the
// session store until it is finished or for ceremonyTTL (5 minutes),
// then is gone (docs/security.md, "passkey ceremonies between begin and
// finish"): finishing it deletes its row; the janitor's sweep keeps it
// while it is live and deletes it once expired; an expired one cannot be
// finished, and the attempt deletes it too.
func TestPasskeyCeremoniesExpire(t *testing.T) {
	if ceremonyTTL != 5*time.Minute {
		t.Fatalf("ceremonyTTL %v, docs/security.md says 5 minutes", ceremonyTTL)
	}
	const public = "http://localhost:8443"
	type begun struct {
		c   *client
		cer string
		// finish is the credential that completes the ceremony.
		finish func() json.RawMessage
	}
	kinds := []struct {
		name  string
		begin func(t *testing.T, ts *testServer, a *softAuthenticator) begun
		route string
	}{
		{"registration", func(t *testing.T, ts *testServer, a *softAuthenticator) begun {
			c := ts.signup("alice")
			r := c.do("POST", "/api/v1/passkeys/register/begin", PasskeyRegisterRequest{Passphrase: testPass, Username: "alice", Label: "Phone"})
			want(t, r, http.StatusOK)
			cer, pk := beginOptions(t, r)
			return begun{c, cer, func() json.RawMessage { return a.create(pk) }}
		}, "/api/v1/passkeys/register/finish"},
		{"sign-in", func(t *testing.T, ts *testServer, a *softAuthenticator) begun {
			registerPasskey(t, ts.signup("alice"), a, "alice", "Phone")
			c := ts.client()
			r := c.do("POST", "/api/v1/passkeys/login/begin", map[string]any{})
			want(t, r, http.StatusOK)
			cer, pk := beginOptions(t, r)
			return begun{c, cer, func() json.RawMessage { return a.get(pk, a.handle) }}
		}, "/api/v1/passkeys/login/finish"},
	}
	cases := []struct {
		name string
		// wait is how long after the begin the finish or sweep comes.
		wait  time.Duration
		sweep bool
		// status of the finish (0: no finish).
		status int
		left   int
	}{
		{"finished at once", 0, false, http.StatusCreated, 0},
		{"finished just in time", ceremonyTTL - time.Second, false, http.StatusCreated, 0},
		{"finished too late", ceremonyTTL, false, http.StatusBadRequest, 0},
		{"swept while live", ceremonyTTL - time.Second, true, 0, 1},
		{"swept when expired", ceremonyTTL, true, 0, 0},
	}
	for _, k := range kinds {
		for _, tc := range cases {
			t.Run(k.name+"/"+tc.name, func(t *testing.T) {
				// The clock starts at the real time: the WebAuthn
				// library checks its own copy of the deadline against it.
				clock := &fakeClock{t: time.Now()}
				ts := newTestServer(t, func(c *Config) { c.PublicURL, c.Now = public, clock.Now })
				a := newSoftAuthenticator(t, public)
				b := k.begin(t, ts, a)
				if n := ceremonyRows(t, ts); n != 1 {
					t.Fatalf("%d ceremonies stored after a begin, want 1", n)
				}
				clock.Add(tc.wait)
				if tc.sweep {
					ts.sweep()
				}
				if tc.status != 0 {
					want(t, b.c.do("POST", k.route, PasskeyFinishRequest{Ceremony: b.cer, Credential: b.finish()}), tc.status)
				}
				if n := ceremonyRows(t, ts); n != tc.left {
					t.Errorf("%d ceremonies stored, want %d", n, tc.left)
				}
			})
		}
	}
}
