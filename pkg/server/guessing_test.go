package server

import (
	"bytes"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/phr-project/phr/pkg/server/api"
	"github.com/phr-project/phr/pkg/share"
)

// Guessing secrets: session tokens (256 random bits, looked up by their
// SHA-256 and compared with subtle.ConstantTimeCompare: sessions.go),
// passphrases (scrypt inside age; rate-limited per account and per
// client: TestLoginRateLimit, TestClientRateLimit, and below for the key
// routes), share passcodes (scrypt, compared with
// subtle.ConstantTimeCompare in pkg/share, with a lifetime attempt
// counter: pkg/shlhost's TestLifetimeCounter), share ids (looked up by
// their HMAC, so no comparison of the id's bytes can leak) and location
// tokens (hmac.Equal).

// TestBearerTokenRateLimit: wrong bearer tokens from one client get 401
// up to the burst, then 429 with Retry-After for every token, the right
// one included, until the bucket refills; other clients are not held up.
func TestBearerTokenRateLimit(t *testing.T) {
	clock := &fakeClock{t: time.Now()}
	ts := newTestServer(t, func(c *Config) {
		c.Now = clock.Now
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")} // X-Forwarded-For tells the test's clients apart
	})
	alice := ts.signup("alice")
	burst := ts.cfg.BadTokenPerClient.Burst
	guesser := func(token string) *resp {
		c := ts.client()
		c.token = token
		return c.do("GET", "/api/v1/records", nil, "X-Forwarded-For", "203.0.113.7")
	}
	want(t, guesser(alice.token), http.StatusOK)
	for i := 0; i < burst; i++ {
		tok, _ := newToken()
		r := guesser(tok)
		want(t, r, http.StatusUnauthorized)
		if r.errCode() != api.CodeUnauthorized {
			t.Fatalf("401 body %s", r.body)
		}
	}
	tok, _ := newToken()
	r := guesser(tok)
	want(t, r, http.StatusTooManyRequests)
	if r.header.Get("Retry-After") == "" || r.errCode() != api.CodeRateLimited {
		t.Fatalf("429 without Retry-After or code: %v %s", r.header, r.body)
	}
	// A hit would show as a 200 if right tokens went through.
	want(t, guesser(alice.token), http.StatusTooManyRequests)
	// Another client, and alice from her own address, go on.
	want(t, alice.do("GET", "/api/v1/records", nil, "X-Forwarded-For", "198.51.100.9"), http.StatusOK)
	nobody := ts.client()
	nobody.token = tok
	want(t, nobody.do("GET", "/api/v1/records", nil, "X-Forwarded-For", "198.51.100.10"), http.StatusUnauthorized)
	// No token at all is no guess: 401, not counted.
	want(t, ts.client().do("GET", "/api/v1/records", nil, "X-Forwarded-For", "203.0.113.7"), http.StatusUnauthorized)
	// The bucket refills with time: one more guess, then 429 again.
	clock.Add(ts.cfg.BadTokenPerClient.Per / time.Duration(ts.cfg.BadTokenPerClient.Events))
	want(t, guesser(tok), http.StatusUnauthorized)
	want(t, guesser(tok), http.StatusTooManyRequests)
	t.Logf("wrong tokens per client: %d/%v, burst %d", ts.cfg.BadTokenPerClient.Events, ts.cfg.BadTokenPerClient.Per, burst)
}

// TestKeyRoutesPassphraseLimit: the key routes check the passphrase
// again (a stolen token alone cannot change keys); wrong guesses there
// count against the account's passphrase limit like logins, so a stolen
// token is no faster way to guess the passphrase.
func TestKeyRoutesPassphraseLimit(t *testing.T) {
	ts := newTestServer(t, nil)
	alice := ts.signup("alice")
	want(t, alice.do("POST", "/api/v1/keys/recovery", map[string]string{"passphrase": testPass}), http.StatusOK)
	n := ts.cfg.LoginPerAccount.Burst
	for i := 0; i < n; i++ {
		route := []string{"/api/v1/keys/recovery", "/api/v1/keys/rotate", "/api/v1/keys/passphrase"}[i%3]
		body := map[string]string{"passphrase": "wrong guess " + strings.Repeat("x", i)}
		if route == "/api/v1/keys/passphrase" {
			body["new_passphrase"] = "another passphrase"
		}
		want(t, alice.do("POST", route, body), http.StatusUnauthorized)
	}
	r := alice.do("POST", "/api/v1/keys/recovery", map[string]string{"passphrase": "wrong guess again"})
	want(t, r, http.StatusTooManyRequests)
	if r.header.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
	want(t, alice.do("POST", "/api/v1/keys/recovery", map[string]string{"passphrase": testPass}), http.StatusTooManyRequests)
	// The same bucket as the login's.
	want(t, ts.client().do("POST", "/api/v1/sessions", api.SessionRequest{Username: "alice", Passphrase: testPass}), http.StatusTooManyRequests)
	// The session itself is untouched.
	want(t, alice.do("GET", "/api/v1/records", nil), http.StatusOK)
}

// answer is what an attacker sees of a response.
type answer struct {
	status int
	header http.Header
	body   []byte
}

func fetch(t *testing.T, hc *http.Client, method, url, body string) answer {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	res.Header.Del("Date")
	return answer{res.StatusCode, res.Header, data}
}

// sameAnswers fails unless every answer equals the first: status, every
// header but Date, and body.
func sameAnswers(t *testing.T, what string, names []string, as []answer) {
	t.Helper()
	for i := 1; i < len(as); i++ {
		if as[i].status != as[0].status || !bytes.Equal(as[i].body, as[0].body) ||
			!maps.EqualFunc(as[i].header, as[0].header, slices.Equal) {
			t.Errorf("%s: %s and %s differ:\n%d %v %s\n%d %v %s", what, names[0], names[i],
				as[0].status, as[0].header, as[0].body, as[i].status, as[i].header, as[i].body)
		}
	}
}

// TestShareEnumeration: a share id that never existed, a revoked, an
// expired, a used-up one, and a well-formed id of nothing, get the same
// 404 (status, headers but Date, body) on every public route, and telling
// a revoked id from an unknown one by timing is not possible beyond the
// noise: the medians of 300 alternating requests each are within 2 ms or
// 50% of each other, whichever is larger.
func TestShareEnumeration(t *testing.T) {
	clock := &fakeClock{t: time.Now()}
	ts := newTestServer(t, func(c *Config) { c.Now = clock.Now })
	alice := ts.signup("alice")
	create := func(opts map[string]any, expiresIn time.Duration) api.ShareCreated {
		t.Helper()
		body := map[string]any{"select": map[string]any{"summary": true}, "expires_at": clock.Now().Add(expiresIn).Format(time.RFC3339)}
		maps.Copy(body, opts)
		r := alice.do("POST", "/api/v1/shares", body)
		want(t, r, http.StatusCreated)
		var cr api.ShareCreated
		r.decode(t, &cr)
		return cr
	}
	live := create(nil, time.Hour)
	revoked := create(nil, time.Hour)
	expired := create(nil, 2*time.Minute)
	usedUp := create(map[string]any{"max_uses": 1}, time.Hour)
	directRevoked := create(map[string]any{"direct": true}, time.Hour)
	directExpired := create(map[string]any{"direct": true}, 2*time.Minute)
	directLive := create(map[string]any{"direct": true}, time.Hour)

	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	defer hc.CloseIdleConnections()
	manifest := func(id, body string) answer { return fetch(t, hc, "POST", ts.url+"/shl/"+id, body) }
	const req = `{"recipient":"Dr. Who"}`
	// A location token of the share that will be revoked, and one of a live share.
	var m share.Manifest
	for _, cr := range []api.ShareCreated{revoked, live} {
		a := manifest(cr.ID, `{"recipient":"Dr. Who","embeddedLengthMax":0}`)
		if a.status != http.StatusOK {
			t.Fatalf("manifest: %d %s", a.status, a.body)
		}
		if err := json.Unmarshal(a.body, &m); err != nil || len(m.Files) != 1 || m.Files[0].Location == "" {
			t.Fatalf("manifest %s: %v", a.body, err)
		}
	}
	liveLocation := strings.TrimPrefix(m.Files[0].Location, ts.url)
	a := manifest(revoked.ID, `{"recipient":"Dr. Who","embeddedLengthMax":0}`)
	json.Unmarshal(a.body, &m)
	revokedLocation := strings.TrimPrefix(m.Files[0].Location, ts.url)
	if a := manifest(usedUp.ID, req); a.status != http.StatusOK {
		t.Fatalf("first use: %d", a.status)
	}
	want(t, alice.do("DELETE", "/api/v1/shares/"+revoked.ID, nil), http.StatusOK)
	want(t, alice.do("DELETE", "/api/v1/shares/"+directRevoked.ID, nil), http.StatusOK)
	clock.Add(5 * time.Minute)
	unknown := randomShareID()

	names := []string{"unknown", "revoked", "expired", "used-up", "malformed"}
	var as []answer
	for _, id := range []string{unknown, revoked.ID, expired.ID, usedUp.ID, "short"} {
		as = append(as, manifest(id, req))
	}
	if as[0].status != http.StatusNotFound {
		t.Fatalf("unknown id: %d %s", as[0].status, as[0].body)
	}
	sameAnswers(t, "POST /shl/:id", names, as)
	if a := fetch(t, hc, "GET", ts.url+"/shl/"+directLive.ID+"?recipient=Dr.+Who", ""); a.status != http.StatusOK {
		t.Fatalf("a live direct share: %d", a.status)
	}

	names = []string{"unknown", "revoked", "expired", "without U", "malformed"}
	as = nil
	for _, id := range []string{unknown, directRevoked.ID, directExpired.ID, live.ID, "short"} {
		as = append(as, fetch(t, hc, "GET", ts.url+"/shl/"+id+"?recipient=Dr.+Who", ""))
	}
	sameAnswers(t, "GET /shl/:id", names, as)

	token := revokedLocation[strings.LastIndex(revokedLocation, "/")+1:]
	liveToken := liveLocation[strings.LastIndex(liveLocation, "/")+1:]
	names = []string{"revoked", "unknown id", "another share's token", "bad token", "malformed id"}
	as = nil
	for _, p := range []string{
		revokedLocation, "/shl/" + unknown + "/f/" + token, "/shl/" + revoked.ID + "/f/" + liveToken,
		"/shl/" + live.ID + "/f/" + strings.Repeat("A", len(token)), "/shl/short/f/" + token,
	} {
		as = append(as, fetch(t, hc, "GET", ts.url+p, ""))
	}
	sameAnswers(t, "GET /shl/:id/f/:token", names, as)
	if a := fetch(t, hc, "GET", ts.url+liveLocation, ""); a.status != http.StatusOK {
		t.Fatalf("the live location: %d", a.status)
	}

	// Timing: revoked and unknown alternate, over one kept-alive
	// connection, after a warm-up.
	const n = 300
	for i := 0; i < 20; i++ {
		manifest(revoked.ID, req)
		manifest(randomShareID(), req)
	}
	var tRevoked, tUnknown []time.Duration
	timed := func(id string) time.Duration {
		start := time.Now()
		if a := manifest(id, req); a.status != http.StatusNotFound {
			t.Fatalf("status %d", a.status)
		}
		return time.Since(start)
	}
	for i := 0; i < n; i++ {
		unknown := randomShareID()
		if i%2 == 0 {
			tRevoked = append(tRevoked, timed(revoked.ID))
			tUnknown = append(tUnknown, timed(unknown))
		} else {
			tUnknown = append(tUnknown, timed(unknown))
			tRevoked = append(tRevoked, timed(revoked.ID))
		}
	}
	qr, qu := quartiles(tRevoked), quartiles(tUnknown)
	diff := qr[1] - qu[1]
	if diff < 0 {
		diff = -diff
	}
	bound := max(2*time.Millisecond, min(qr[1], qu[1])/2)
	t.Logf("revoked: median %v (quartiles %v..%v); unknown: median %v (%v..%v); difference %v, bound %v",
		qr[1], qr[0], qr[2], qu[1], qu[0], qu[2], diff, bound)
	switch {
	case raceEnabled:
		t.Log("the race detector is on: timing not checked")
	case diff > bound:
		t.Errorf("revoked and unknown ids differ by %v in median (bound %v)", diff, bound)
	}
}

// quartiles returns the first quartile, the median and the third quartile.
func quartiles(ds []time.Duration) [3]time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return [3]time.Duration{s[len(s)/4], s[len(s)/2], s[3*len(s)/4]}
}
