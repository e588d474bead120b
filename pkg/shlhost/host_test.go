package shlhost

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/phr-project/phr/pkg/fhirdoc"
	"github.com/phr-project/phr/pkg/record"
	"github.com/phr-project/phr/pkg/server/api"
	"github.com/phr-project/phr/pkg/share"
	"github.com/phr-project/phr/pkg/sharestore"
)

func TestMain(m *testing.M) {
	restore := share.SetPasscodeCostForTesting(4)
	code := m.Run()
	restore()
	os.Exit(code)
}

// clock is a fake clock the host and the test share.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type env struct {
	t      *testing.T
	host   *Host
	store  *sharestore.Store
	path   string // the store file
	base   string // http://127.0.0.1:port
	clock  *clock
	client *http.Client
}

// newEnv runs a real echo server on 127.0.0.1 with the host's routes and a
// dummy /api route.
func newEnv(t *testing.T, opts Options) *env {
	t.Helper()
	return newEnvStore(t, opts, sharestore.Options{})
}

// newEnvStore is newEnv with options for the store.
func newEnvStore(t *testing.T, opts Options, so sharestore.Options) *env {
	t.Helper()
	path := filepath.Join(t.TempDir(), "shares.db")
	so.Secret, so.NoSync = bytes.Repeat([]byte{3}, 32), true
	st, err := sharestore.Open(path, &so)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	clk := &clock{t: time.Date(2030, 5, 1, 12, 0, 0, 0, time.UTC)}
	opts.Now = clk.Now
	h := New(st, base, opts)
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	installErrors(e)
	h.Register(e)
	e.GET("/api/v1/ping", func(c echo.Context) error { return c.String(http.StatusOK, "pong") })
	srv := &http.Server{Handler: e, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	t.Cleanup(func() {
		client.CloseIdleConnections()
		srv.Close() // not Shutdown: it waits 5 s for connections dialed but never used
		if err := st.Check(); err != nil && !errors.Is(err, sharestore.ErrClosed) {
			t.Errorf("store consistency: %v", err)
		}
		st.Close()
	})
	return &env{t: t, host: h, store: st, path: path, base: base, clock: clk, client: client}
}

type reply struct {
	status int
	header http.Header
	body   []byte
}

func (e *env) do(method, url, contentType string, body []byte) reply {
	e.t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := e.client.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return reply{resp.StatusCode, resp.Header, b}
}

// manifest POSTs a manifest request to url.
func (e *env) manifest(url string, req map[string]any) reply {
	e.t.Helper()
	b, _ := json.Marshal(req)
	return e.do(http.MethodPost, url, "application/json", b)
}

func (e *env) create(owner string, req createReq) api.ShareCreated {
	e.t.Helper()
	if req.ExpiresAt.IsZero() {
		req.ExpiresAt = e.clock.Now().Add(24 * time.Hour)
	}
	resp, err := createShare(e.host, owner, req)
	if err != nil {
		e.t.Fatalf("CreateShare: %v", err)
	}
	return resp
}

const marker = "PLAINTEXT-MARKER-42"

// sampleBundle is a real share bundle built from patient-entered records.
func sampleBundle(t *testing.T) []byte {
	t.Helper()
	now := time.Date(2030, 4, 1, 8, 0, 0, 0, time.UTC)
	pat, err := record.NewPatient(record.Common{Now: now}, "Grace Hopper", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	c := record.Common{Subject: "Patient/" + pat.ID, Now: now}
	med, err := record.NewMedication(c, record.Medication{Name: "Lisinopril " + marker, Dose: "10 mg", Start: now})
	if err != nil {
		t.Fatal(err)
	}
	al, err := record.NewAllergy(c, record.Allergy{Substance: "Peanuts"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := fhirdoc.BuildBundle(pat, []record.Record{med, al})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func decodeManifest(t *testing.T, r reply) share.Manifest {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("manifest: HTTP %d %s", r.status, r.body)
	}
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("manifest Content-Type %q", ct)
	}
	var m share.Manifest
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatal(err)
	}
	if err := m.Validate(); err != nil {
		t.Fatalf("manifest does not validate: %v", err)
	}
	return m
}

func remaining(t *testing.T, r reply) int {
	t.Helper()
	if r.status != http.StatusUnauthorized {
		t.Fatalf("want 401, got HTTP %d %s", r.status, r.body)
	}
	var body share.InvalidPasscodeResponse
	if err := json.Unmarshal(r.body, &body); err != nil {
		t.Fatalf("401 body %s: %v", r.body, err)
	}
	return body.RemainingAttempts
}

func want404(t *testing.T, r reply) {
	t.Helper()
	if r.status != http.StatusNotFound || !bytes.Equal(r.body, notFoundBody) {
		t.Fatalf("want the constant 404, got HTTP %d %s", r.status, r.body)
	}
}

// TestFullFlow: the host encrypts a bundle; a receiver decodes the link,
// asks for the manifest, and decrypts the file, embedded and by location,
// back to the very same bytes.
func TestFullFlow(t *testing.T) {
	e := newEnv(t, Options{})
	bundle := sampleBundle(t)
	resp := e.create("acct-1", createReq{Content: bundle, Label: "For the cardiologist", ExpiresAt: e.clock.Now().Add(2*time.Hour + 500*time.Millisecond)})
	if !strings.HasPrefix(resp.Link, e.base+"/view#shlink:/") || !strings.HasPrefix(resp.SHLink, "shlink:/") {
		t.Fatalf("links %q %q", resp.Link, resp.SHLink)
	}
	p, err := share.Decode(resp.Link)
	if err != nil {
		t.Fatal(err)
	}
	if p.URL != e.base+"/shl/"+resp.ID || p.Exp != e.clock.Now().Add(2*time.Hour).Unix() || p.Flag != "" || p.Label != "For the cardiologist" {
		t.Errorf("payload %+v", p)
	}
	if !resp.ExpiresAt.Equal(time.Unix(p.Exp, 0)) {
		t.Errorf("expires_at %v, exp %d", resp.ExpiresAt, p.Exp)
	}
	key, err := p.KeyBytes()
	if err != nil {
		t.Fatal(err)
	}

	m := decodeManifest(t, e.manifest(p.URL, map[string]any{"recipient": "Dr. Alice, St. Elsewhere"}))
	if len(m.Files) != 1 || m.Files[0].Embedded == "" || m.Files[0].ContentType != share.ContentTypeFHIR {
		t.Fatalf("manifest %+v", m)
	}
	cty, got, err := share.DecryptFile(key, m.Files[0].Embedded)
	if err != nil || cty != share.ContentTypeFHIR || !bytes.Equal(got, bundle) {
		t.Fatalf("embedded file: cty %q, equal %v, %v", cty, bytes.Equal(got, bundle), err)
	}

	// A receiver that wants nothing embedded gets a location.
	m = decodeManifest(t, e.manifest(p.URL, map[string]any{"recipient": "Dr. Bob", "embeddedLengthMax": 10}))
	loc := m.Files[0].Location
	if m.Files[0].Embedded != "" || !strings.HasPrefix(loc, e.base+"/shl/"+resp.ID+"/f/") || strings.Contains(loc, "?") {
		t.Fatalf("location %q", loc)
	}
	r := e.do(http.MethodGet, loc, "", nil)
	if r.status != http.StatusOK || r.header.Get("Content-Type") != share.ContentTypeJOSE {
		t.Fatalf("location GET: HTTP %d %q", r.status, r.header.Get("Content-Type"))
	}
	if _, got, err := share.DecryptFile(key, string(r.body)); err != nil || !bytes.Equal(got, bundle) {
		t.Fatalf("location file: %v", err)
	}
	if r.header.Get("Access-Control-Allow-Origin") != "*" || r.header.Get("Cache-Control") != "no-store" {
		t.Errorf("location headers %v", r.header)
	}

	log, err := e.host.ShareLog("acct-1", resp.ID)
	if err != nil || len(log) != 2 || log[0].Recipient != "Dr. Alice, St. Elsewhere" || log[1].Recipient != "Dr. Bob" || log[0].Outcome != "ok" {
		t.Fatalf("log %+v, %v", log, err)
	}
	list, err := e.host.ListShares("acct-1")
	if err != nil || len(list) != 1 || list[0].Uses != 2 || list[0].Status != "active" || list[0].Label != "For the cardiologist" || list[0].URL != p.URL {
		t.Fatalf("list %+v, %v", list, err)
	}
}

// TestPreEncrypted: the CLI encrypts; the host never sees the key, and the
// client builds the link from the response.
func TestPreEncrypted(t *testing.T) {
	e := newEnv(t, Options{})
	key := share.NewKey()
	bundle := sampleBundle(t)
	j1, _ := share.EncryptFile(key, share.ContentTypeFHIR, bundle, true)
	j2, _ := share.EncryptFile(key, share.ContentTypeFHIR, []byte(`{"resourceType":"Bundle","type":"collection"}`), false)
	resp := e.create("acct-1", createReq{Files: []api.ShareFile{{ContentType: share.ContentTypeFHIR, JWE: j1}, {ContentType: share.ContentTypeFHIR, JWE: j2}}, Passcode: "4321"})
	if resp.Link != "" || resp.SHLink != "" || resp.Flag != "P" {
		t.Fatalf("response %+v", resp)
	}
	link, err := share.ViewerLink(resp.ViewerURL, resp.Payload(key))
	if err != nil {
		t.Fatal(err)
	}
	p, _ := share.Decode(link)
	m := decodeManifest(t, e.manifest(p.URL, map[string]any{"recipient": "Clinic", "passcode": "4321"}))
	if len(m.Files) != 2 {
		t.Fatalf("%d files", len(m.Files))
	}
	if _, got, err := share.DecryptFile(key, m.Files[0].Embedded); err != nil || !bytes.Equal(got, bundle) {
		t.Fatalf("file 0: %v", err)
	}
	// Plaintext or a JWE whose cty disagrees is refused.
	_, err = createShare(e.host, "acct-1", createReq{Files: []api.ShareFile{{ContentType: share.ContentTypeFHIR, JWE: string(bundle)}}, ExpiresAt: e.clock.Now().Add(time.Hour)})
	if !errors.Is(err, ErrInvalidRequest) {
		t.Errorf("plaintext upload: %v", err)
	}
	_, err = createShare(e.host, "acct-1", createReq{Files: []api.ShareFile{{ContentType: share.ContentTypeSHC, JWE: j1}}, ExpiresAt: e.clock.Now().Add(time.Hour)})
	if !errors.Is(err, ErrInvalidRequest) {
		t.Errorf("cty mismatch: %v", err)
	}
}

func TestPasscode(t *testing.T) {
	e := newEnv(t, Options{})
	resp := e.create("acct-1", createReq{Content: sampleBundle(t), Passcode: "open sesame"})
	if resp.Flag != "P" {
		t.Fatalf("flag %q", resp.Flag)
	}
	p, _ := share.Decode(resp.Link)
	for want := 9; want >= 7; want-- {
		if got := remaining(t, e.manifest(p.URL, map[string]any{"recipient": "Eve", "passcode": fmt.Sprint("guess", want)})); got != want {
			t.Fatalf("remainingAttempts %d, want %d", got, want)
		}
	}
	// No passcode at all: 401, nothing spent.
	if got := remaining(t, e.manifest(p.URL, map[string]any{"recipient": "Eve"})); got != 7 {
		t.Fatalf("missing passcode: remainingAttempts %d", got)
	}
	m := decodeManifest(t, e.manifest(p.URL, map[string]any{"recipient": "Dr. Right", "passcode": "open sesame"}))
	if len(m.Files) != 1 {
		t.Fatalf("manifest %+v", m)
	}
	log, _ := e.host.ShareLog("acct-1", resp.ID)
	var outcomes []string
	for _, l := range log {
		outcomes = append(outcomes, l.Recipient+":"+l.Outcome)
	}
	if fmt.Sprint(outcomes) != "[Eve:wrong-passcode Eve:wrong-passcode Eve:wrong-passcode Dr. Right:ok]" {
		t.Errorf("log %v", outcomes)
	}
}

// TestLifetimeCounter: 200 concurrent wrong guesses against a share with
// 10 attempts. With no bound on checks in flight per share, exactly 10 are
// processed (401) and the rest find it locked (404); with the default
// bound (2 in flight), no more than 10 are processed and the rest are
// refused 429 with Retry-After, or 404 once it locked. Either way the
// right passcode then finds it locked.
func TestLifetimeCounter(t *testing.T) {
	const n = 200
	guess := func(t *testing.T, e *env, url string) map[int]int {
		var wg sync.WaitGroup
		var mu sync.Mutex
		counts := map[int]int{}
		start := make(chan struct{})
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				b, _ := json.Marshal(map[string]any{"recipient": "attacker", "passcode": fmt.Sprint("wrong-", i)})
				r, err := e.client.Post(url, "application/json", bytes.NewReader(b))
				if err != nil {
					t.Error(err)
					return
				}
				io.Copy(io.Discard, r.Body)
				r.Body.Close()
				if r.StatusCode == http.StatusTooManyRequests && r.Header.Get("Retry-After") == "" {
					t.Error("429 without Retry-After")
				}
				mu.Lock()
				counts[r.StatusCode]++
				mu.Unlock()
			}()
		}
		close(start)
		wg.Wait()
		return counts
	}
	for _, tt := range []struct {
		name      string
		maxChecks int
	}{{"unbounded", n}, {"default", 0}} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnvStore(t, Options{}, sharestore.Options{MaxChecksPerShare: tt.maxChecks})
			resp := e.create("acct-1", createReq{Content: sampleBundle(t), Passcode: "right"})
			url := e.base + "/shl/" + resp.ID
			counts := guess(t, e, url)
			if tt.maxChecks == n {
				if counts[http.StatusUnauthorized] != 10 || counts[http.StatusNotFound] != n-10 {
					t.Fatalf("answers %v, want 10×401 and %d×404", counts, n-10)
				}
			} else if counts[http.StatusUnauthorized] > 10 || counts[http.StatusUnauthorized]+counts[http.StatusNotFound]+counts[http.StatusTooManyRequests] != n {
				t.Fatalf("answers %v, want at most 10×401, the rest 404 or 429", counts)
			}
			for range 10 { // spend what the 429s left
				e.manifest(url, map[string]any{"recipient": "attacker", "passcode": "wrong"})
			}
			want404(t, e.manifest(url, map[string]any{"recipient": "patient", "passcode": "right"}))
			list, _ := e.host.ListShares("acct-1")
			if list[0].Status != "locked" || list[0].RemainingAttempts != 0 {
				t.Errorf("share %+v", list[0])
			}
		})
	}
}

func TestExpiry(t *testing.T) {
	e := newEnv(t, Options{})
	resp := e.create("acct-1", createReq{Content: sampleBundle(t), ExpiresAt: e.clock.Now().Add(30 * time.Minute)})
	decodeManifest(t, e.manifest(resp.URL, map[string]any{"recipient": "r"}))
	e.clock.Advance(30 * time.Minute)
	want404(t, e.manifest(resp.URL, map[string]any{"recipient": "late"}))
	// The same answer as for an id that never existed.
	want404(t, e.manifest(e.base+"/shl/"+share.NewManifestID(), map[string]any{"recipient": "r"}))
	log, _ := e.host.ShareLog("acct-1", resp.ID)
	if len(log) != 2 || log[1].Outcome != "expired" || log[1].Recipient != "late" {
		t.Errorf("log %+v", log)
	}
}

func TestRevocation(t *testing.T) {
	e := newEnv(t, Options{})
	resp := e.create("acct-1", createReq{Content: sampleBundle(t)})
	m := decodeManifest(t, e.manifest(resp.URL, map[string]any{"recipient": "r", "embeddedLengthMax": 0}))
	if _, err := e.host.RevokeShare("acct-2", resp.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("revoke by another account: %v", err)
	}
	if _, err := e.host.ShareLog("acct-2", resp.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("log by another account: %v", err)
	}
	info, err := e.host.RevokeShare("acct-1", resp.ID)
	if err != nil || info.Status != "revoked" || info.RevokedAt.IsZero() {
		t.Fatalf("RevokeShare: %+v, %v", info, err)
	}
	want404(t, e.manifest(resp.URL, map[string]any{"recipient": "r"}))
	// A location handed out before the revocation dies with it.
	want404(t, e.do(http.MethodGet, m.Files[0].Location, "", nil))
}

func TestMaxUses(t *testing.T) {
	e := newEnv(t, Options{})
	resp := e.create("acct-1", createReq{Content: sampleBundle(t), MaxUses: 2})
	for range 2 {
		decodeManifest(t, e.manifest(resp.URL, map[string]any{"recipient": "r"}))
	}
	want404(t, e.manifest(resp.URL, map[string]any{"recipient": "r"}))
	log, _ := e.host.ShareLog("acct-1", resp.ID)
	if len(log) != 3 || log[2].Outcome != "used-up" {
		t.Errorf("log %+v", log)
	}
}

func TestDirect(t *testing.T) {
	e := newEnv(t, Options{})
	bundle := sampleBundle(t)
	resp := e.create("acct-1", createReq{Content: bundle, Direct: true})
	p, _ := share.Decode(resp.Link)
	if p.Flag != "U" {
		t.Fatalf("flag %q", p.Flag)
	}
	key, _ := p.KeyBytes()
	r := e.do(http.MethodGet, p.URL+"?recipient=Dr.%20Direct", "", nil)
	if r.status != http.StatusOK || r.header.Get("Content-Type") != share.ContentTypeJOSE || r.header.Get("Access-Control-Allow-Origin") != "*" {
		t.Fatalf("direct GET: HTTP %d %v", r.status, r.header)
	}
	if _, got, err := share.DecryptFile(key, string(r.body)); err != nil || !bytes.Equal(got, bundle) {
		t.Fatalf("direct file: %v", err)
	}
	if r := e.do(http.MethodGet, p.URL, "", nil); r.status != http.StatusBadRequest {
		t.Errorf("direct GET without recipient: HTTP %d", r.status)
	}
	// No direct GET for links without U.
	other := e.create("acct-1", createReq{Content: bundle})
	want404(t, e.do(http.MethodGet, other.URL+"?recipient=x", "", nil))
	if _, err := createShare(e.host, "acct-1", createReq{Content: bundle, Direct: true, Passcode: "1", ExpiresAt: e.clock.Now().Add(time.Hour)}); !errors.Is(err, ErrInvalidRequest) {
		t.Errorf("U with a passcode: %v", err)
	}
	log, _ := e.host.ShareLog("acct-1", resp.ID)
	if len(log) != 1 || log[0].Recipient != "Dr. Direct" {
		t.Errorf("log %+v", log)
	}
}

func TestLocationExpiry(t *testing.T) {
	e := newEnv(t, Options{})
	resp := e.create("acct-1", createReq{Content: sampleBundle(t), ExpiresAt: e.clock.Now().Add(48 * time.Hour)})
	m := decodeManifest(t, e.manifest(resp.URL, map[string]any{"recipient": "r", "embeddedLengthMax": 0}))
	loc := m.Files[0].Location
	e.clock.Advance(59 * time.Minute)
	if r := e.do(http.MethodGet, loc, "", nil); r.status != http.StatusOK {
		t.Fatalf("location after 59 minutes: HTTP %d", r.status)
	}
	e.clock.Advance(time.Minute)
	want404(t, e.do(http.MethodGet, loc, "", nil))
	// A forged token and another share's id are refused the same way.
	want404(t, e.do(http.MethodGet, e.base+"/shl/"+resp.ID+"/f/"+strings.Repeat("A", sharestore.TokenLength), "", nil))
	tok := loc[strings.LastIndex(loc, "/")+1:]
	want404(t, e.do(http.MethodGet, e.base+"/shl/"+share.NewManifestID()+"/f/"+tok, "", nil))
}

func TestCORS(t *testing.T) {
	e := newEnv(t, Options{})
	resp := e.create("acct-1", createReq{Content: sampleBundle(t)})
	for _, path := range []string{"/shl/" + resp.ID, "/shl/" + resp.ID + "/f/x"} {
		req, _ := http.NewRequest(http.MethodOptions, e.base+path, nil)
		req.Header.Set("Origin", "https://viewer.example.org")
		req.Header.Set("Access-Control-Request-Method", "POST")
		req.Header.Set("Access-Control-Request-Headers", "content-type")
		r, err := e.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		h := r.Header
		if r.StatusCode != http.StatusNoContent || h.Get("Access-Control-Allow-Origin") != "*" ||
			!strings.Contains(h.Get("Access-Control-Allow-Methods"), "POST") || !strings.EqualFold(h.Get("Access-Control-Allow-Headers"), "Content-Type") {
			t.Errorf("preflight %s: HTTP %d %v", path, r.StatusCode, h)
		}
	}
	if r := e.manifest(resp.URL, map[string]any{"recipient": "r"}); r.header.Get("Access-Control-Allow-Origin") != "*" {
		t.Errorf("manifest without CORS header")
	}
	if r := e.manifest(e.base+"/shl/"+share.NewManifestID(), map[string]any{"recipient": "r"}); r.header.Get("Access-Control-Allow-Origin") != "*" {
		t.Errorf("404 without CORS header (a viewer could not read it)")
	}
	// Other routes are left alone.
	r := e.do(http.MethodGet, e.base+"/api/v1/ping", "", nil)
	if r.status != http.StatusOK || r.header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("/api route: HTTP %d, CORS %q", r.status, r.header.Get("Access-Control-Allow-Origin"))
	}
	r = e.do(http.MethodOptions, e.base+"/api/v1/ping", "", nil)
	if r.header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("/api preflight got CORS headers")
	}
}

func TestBadRequests(t *testing.T) {
	e := newEnv(t, Options{})
	resp := e.create("acct-1", createReq{Content: sampleBundle(t)})
	cases := []struct {
		name, url, ct, body string
		status              int
	}{
		{"form body", resp.URL, "application/x-www-form-urlencoded", "recipient=x", http.StatusUnsupportedMediaType},
		{"no content type", resp.URL, "", `{"recipient":"x"}`, http.StatusUnsupportedMediaType},
		{"not JSON", resp.URL, "application/json", `recipient`, http.StatusBadRequest},
		{"array", resp.URL, "application/json", `[]`, http.StatusBadRequest},
		{"no recipient", resp.URL, "application/json", `{"passcode":"x"}`, http.StatusBadRequest},
		{"blank recipient", resp.URL, "application/json", `{"recipient":"  "}`, http.StatusBadRequest},
		{"recipient not a string", resp.URL, "application/json", `{"recipient":1}`, http.StatusBadRequest},
		{"two objects", resp.URL, "application/json", `{"recipient":"x"}{}`, http.StatusBadRequest},
		{"duplicate member", resp.URL, "application/json", `{"recipient":"x","recipient":"y"}`, http.StatusBadRequest},
		{"negative max", resp.URL, "application/json", `{"recipient":"x","embeddedLengthMax":-1}`, http.StatusBadRequest},
		{"fractional max", resp.URL, "application/json", `{"recipient":"x","embeddedLengthMax":1.5}`, http.StatusBadRequest},
		{"too large", resp.URL, "application/json", `{"recipient":"` + strings.Repeat("x", DefaultMaxBody) + `"}`, http.StatusRequestEntityTooLarge},
		{"malformed id", e.base + "/shl/abc", "application/json", `{"recipient":"x"}`, http.StatusNotFound},
		{"unknown member ignored", resp.URL, "application/json", `{"recipient":"x","future":{"a":[1]}}`, http.StatusOK},
		{"charset parameter", resp.URL, "application/json; charset=utf-8", `{"recipient":"x"}`, http.StatusOK},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := e.do(http.MethodPost, c.url, c.ct, []byte(c.body))
			if r.status != c.status {
				t.Fatalf("HTTP %d %s, want %d", r.status, r.body, c.status)
			}
		})
	}
}

func TestCreateShareValidation(t *testing.T) {
	e := newEnv(t, Options{MaxExpiry: 48 * time.Hour})
	now := e.clock.Now()
	bundle := sampleBundle(t)
	cases := map[string]createReq{
		"nothing":             {ExpiresAt: now.Add(time.Hour)},
		"files and content":   {Content: bundle, Files: []api.ShareFile{{ContentType: share.ContentTypeFHIR, JWE: "x"}}, ExpiresAt: now.Add(time.Hour)},
		"no expiry":           {Content: bundle},
		"past expiry":         {Content: bundle, ExpiresAt: now.Add(-time.Second)},
		"expiry too far":      {Content: bundle, ExpiresAt: now.Add(49 * time.Hour)},
		"label too long":      {Content: bundle, ExpiresAt: now.Add(time.Hour), Label: strings.Repeat("a", 81)},
		"negative max uses":   {Content: bundle, ExpiresAt: now.Add(time.Hour), MaxUses: -1},
		"sub-second lifetime": {Content: bundle, ExpiresAt: now.Add(500 * time.Millisecond)},
	}
	for name, req := range cases {
		if _, err := createShare(e.host, "acct-1", req); !errors.Is(err, ErrInvalidRequest) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := createShare(e.host, "", createReq{Content: bundle, ExpiresAt: now.Add(time.Hour)}); err == nil || errors.Is(err, ErrInvalidRequest) {
		t.Errorf("no owner: %v", err)
	}
	long := New(e.store, "https://"+strings.Repeat("a", 80)+".example", Options{})
	if _, err := createShare(long, "acct-1", createReq{Content: bundle, ExpiresAt: time.Now().Add(time.Hour)}); err == nil {
		t.Errorf("a base URL too long for the spec's 128 characters was accepted")
	}
	// Base URLs no link may carry are a configuration error, said as such.
	for _, base := range []string{"", "http://0.0.0.0:8080", "https://:8443", "http://phr.example.org", "/relative", "ftp://phr.example.org"} {
		h := New(e.store, base, Options{})
		if err := h.CheckBaseURL(); !errors.Is(err, ErrBaseURL) {
			t.Errorf("base %q: %v", base, err)
		}
		if _, err := createShare(h, "acct-1", createReq{Content: bundle, ExpiresAt: time.Now().Add(time.Hour)}); !errors.Is(err, ErrBaseURL) {
			t.Errorf("base %q: CreateShare: %v", base, err)
		}
	}
	for _, base := range []string{"https://phr.example.org", "http://127.0.0.1:8080", "http://localhost:1/phr/"} {
		if err := New(e.store, base, Options{}).CheckBaseURL(); err != nil {
			t.Errorf("base %q: %v", base, err)
		}
	}
}

// TestNoPlaintextInStore greps the raw store file for the bundle's text,
// the passcode, the label, the recipient and the manifest id.
func TestNoPlaintextInStore(t *testing.T) {
	e := newEnv(t, Options{})
	resp := e.create("acct-1", createReq{Content: sampleBundle(t), Passcode: "PASSCODE-9876", Label: "LABEL-FOR-GREP"})
	decodeManifest(t, e.manifest(resp.URL, map[string]any{"recipient": "RECIPIENT-FOR-GREP", "passcode": "PASSCODE-9876"}))
	remaining(t, e.manifest(resp.URL, map[string]any{"recipient": "RECIPIENT-FOR-GREP", "passcode": "WRONG-PASSCODE"}))
	if err := e.store.Close(); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(e.path)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{marker, "Lisinopril", "Grace Hopper", "PASSCODE-9876", "WRONG-PASSCODE", "LABEL-FOR-GREP", "RECIPIENT-FOR-GREP", "acct-1", resp.ID} {
		if bytes.Contains(raw, []byte(s)) {
			t.Errorf("store file contains %q", s)
		}
	}
}

func TestListShares(t *testing.T) {
	e := newEnv(t, Options{})
	a := e.create("acct-1", createReq{Content: sampleBundle(t), Label: "first"})
	e.clock.Advance(time.Second)
	b := e.create("acct-1", createReq{Content: sampleBundle(t), Passcode: "x", MaxUses: 3, LongTerm: true})
	e.create("acct-2", createReq{Content: sampleBundle(t)})
	if _, err := e.host.RevokeShare("acct-1", a.ID); err != nil {
		t.Fatal(err)
	}
	list, err := e.host.ListShares("acct-1")
	if err != nil || len(list) != 2 {
		t.Fatalf("list %+v, %v", list, err)
	}
	if list[0].ID != b.ID || list[0].Flag != "LP" || !list[0].Passcode || list[0].RemainingAttempts != 10 || list[0].MaxUses != 3 || list[0].Status != "active" {
		t.Errorf("newest %+v", list[0])
	}
	if list[1].ID != a.ID || list[1].Status != "revoked" || list[1].Label != "first" || list[1].Files != 1 {
		t.Errorf("oldest %+v", list[1])
	}
	js, _ := json.Marshal(list[0])
	for _, field := range []string{`"created_at"`, `"expires_at"`, `"status"`, `"remaining_attempts"`} {
		if !bytes.Contains(js, []byte(field)) {
			t.Errorf("JSON %s lacks %s", js, field)
		}
	}
}

func TestRedactPath(t *testing.T) {
	id := share.NewManifestID()
	for in, want := range map[string]string{
		"/shl/" + id:              "/shl/:id",
		"/shl/" + id + "/f/token": "/shl/:id/f/:token",
		"/shl/" + id + "/x":       "/shl/:id/...",
		"/api/v1/shares":          "/api/v1/shares",
		"/shlx":                   "/shlx",
	} {
		if got := RedactPath(in); got != want {
			t.Errorf("RedactPath(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestManifestSTU1Shape: the manifest is the STU1 ShlManifest ("SMART
// Health Link Manifest File"): an object with files only, each file with
// its own status ("Indicates whether a file may be changed in the future
// [...] finalized|can-change|no-longer-valid", can-change for L links,
// whose owner may replace the files) and, for FHIR content, fhirVersion
// ("SHOULD be present when the referenced file contains FHIR content");
// embedded or by location as embeddedLengthMax asks. phr's receiver
// (share.Retrieve) reads every form back.
func TestManifestSTU1Shape(t *testing.T) {
	key := share.NewKey()
	bundle := sampleBundle(t)
	fhirJWE, _ := share.EncryptFile(key, share.ContentTypeFHIR, bundle, true)
	card, err := os.ReadFile("../../../shared/testdata/shc/input/images/example-00-e-file.smart-health-card")
	if err != nil {
		t.Fatal(err)
	}
	shcJWE, _ := share.EncryptFile(key, share.ContentTypeSHC, card, false)
	files := []api.ShareFile{{ContentType: share.ContentTypeFHIR, JWE: fhirJWE}, {ContentType: share.ContentTypeSHC, JWE: shcJWE}}
	for _, tc := range []struct {
		name        string
		req         createReq
		embeddedMax any // nil: absent
		status      string
		location    bool
	}{
		{name: "embedded", req: createReq{Files: files}, status: share.StatusFinalized},
		{name: "by location", req: createReq{Files: files}, embeddedMax: 0, status: share.StatusFinalized, location: true},
		{name: "long-term", req: createReq{Files: files, LongTerm: true}, status: share.StatusCanChange},
		{name: "long-term with passcode, by location", req: createReq{Files: files, LongTerm: true, Passcode: "2468"}, embeddedMax: 100, status: share.StatusCanChange, location: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, Options{})
			resp := e.create("acct-1", tc.req)
			body := map[string]any{"recipient": "Dr. Shape"}
			if tc.embeddedMax != nil {
				body["embeddedLengthMax"] = tc.embeddedMax
			}
			if tc.req.Passcode != "" {
				body["passcode"] = tc.req.Passcode
			}
			r := e.manifest(resp.URL, body)
			decodeManifest(t, r)
			var raw map[string]json.RawMessage
			if err := json.Unmarshal(r.body, &raw); err != nil {
				t.Fatal(err)
			}
			if len(raw) != 1 || raw["files"] == nil {
				t.Fatalf("manifest members %s, want files only", r.body)
			}
			var got []map[string]any
			json.Unmarshal(raw["files"], &got)
			if len(got) != 2 {
				t.Fatalf("%d files", len(got))
			}
			for i, f := range got {
				if f["status"] != tc.status {
					t.Errorf("files[%d].status = %v, want %s", i, f["status"], tc.status)
				}
				wantVersion := map[bool]any{true: FHIRVersion, false: nil}[f["contentType"] == share.ContentTypeFHIR]
				if f["fhirVersion"] != wantVersion {
					t.Errorf("files[%d].fhirVersion = %v, want %v", i, f["fhirVersion"], wantVersion)
				}
				if _, ok := f["location"]; ok != tc.location {
					t.Errorf("files[%d]: location %v, want %v", i, ok, tc.location)
				}
			}
			p := resp.Payload(key)
			got2, err := share.Retrieve(context.Background(), p, share.RetrieveOptions{Recipient: "Dr. Shape", Passcode: tc.req.Passcode, EmbeddedLengthMax: map[bool]int{true: 1, false: 0}[tc.location]})
			if err != nil {
				t.Fatal(err)
			}
			if len(got2.Files) != 2 || !bytes.Equal(got2.Files[0].Data, bundle) || !bytes.Equal(got2.Files[1].Data, card) ||
				got2.Files[0].Status != tc.status || got2.Files[0].FHIRVersion != FHIRVersion || got2.Files[1].ContentType != share.ContentTypeSHC {
				t.Errorf("retrieved %+v", got2.Files)
			}
		})
	}
}
