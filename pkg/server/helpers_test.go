package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/phr-project/phr/pkg/server/api"
	"github.com/phr-project/phr/pkg/share"
	"github.com/phr-project/phr/pkg/vault"
)

// Tests lower the cost of passphrases and share passcodes (scrypt).
func init() {
	vault.ScryptWorkFactor = 10
	share.SetPasscodeCostForTesting(10)
}

// syncBuffer collects log output from concurrent handlers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type testServer struct {
	*Server
	t    *testing.T
	url  string
	logs *syncBuffer
}

// newTestServer runs a real server on 127.0.0.1 with a random port. The
// per-client login limit is high unless mod lowers it (every test client
// is 127.0.0.1).
func newTestServer(t *testing.T, mod func(*Config)) *testServer {
	t.Helper()
	logs := &syncBuffer{}
	cfg := Config{
		DataDir:        t.TempDir(),
		VaultNoSync:    true,
		Logger:         slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		LoginPerClient: Rate{Events: 10000, Per: time.Minute, Burst: 10000},
	}
	if mod != nil {
		mod(&cfg)
	}
	usePostgres(t, &cfg)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.PublicURL == "" {
		cfg.PublicURL = "http://" + ln.Addr().String()
		if cfg.TLS() {
			cfg.PublicURL = "https://" + ln.Addr().String()
		}
	}
	s, err := New(cfg)
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := s.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("serve: %v", err)
		}
	}()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		<-done
	})
	return &testServer{Server: s, t: t, url: "http://" + ln.Addr().String(), logs: logs}
}

// client talks to a test server, with a session token once logged in.
type client struct {
	t     *testing.T
	base  string
	token string
	hc    *http.Client // nil: http.DefaultClient
}

func (ts *testServer) client() *client { return &client{t: ts.t, base: ts.url} }

type resp struct {
	status int
	header http.Header
	body   []byte
}

func (r *resp) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decoding %s: %v", r.body, err)
	}
}

// errCode is the error code of an error response.
func (r *resp) errCode() string {
	var e api.ErrorBody
	json.Unmarshal(r.body, &e)
	return e.Error.Code
}

func (r *resp) errMsg() string {
	var e api.ErrorBody
	json.Unmarshal(r.body, &e)
	return e.Error.Message
}

// do sends a request. body is JSON-encoded unless it is a []byte or an
// io.Reader; hdr are header name/value pairs.
func (c *client) do(method, path string, body any, hdr ...string) *resp {
	c.t.Helper()
	var rd io.Reader
	ct := ""
	switch b := body.(type) {
	case nil:
	case []byte:
		rd, ct = bytes.NewReader(b), "application/json"
	case string:
		rd, ct = strings.NewReader(b), "application/json"
	case io.Reader:
		rd = b
	default:
		data, err := json.Marshal(b)
		if err != nil {
			c.t.Fatal(err)
		}
		rd, ct = bytes.NewReader(data), "application/json"
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	hc := c.hc
	if hc == nil {
		hc = http.DefaultClient
	}
	res, err := hc.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	return &resp{status: res.StatusCode, header: res.Header, body: data}
}

// want fails the test unless r has the status.
func want(t *testing.T, r *resp, status int) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d: %s", r.status, status, r.body)
	}
}

const testPass = "correct horse battery"

// signup creates an account and returns a logged-in client.
func (ts *testServer) signup(user string) *client {
	ts.t.Helper()
	c := ts.client()
	want(ts.t, c.do("POST", "/api/v1/accounts", api.CreateAccountRequest{Username: user, Passphrase: testPass}), http.StatusCreated)
	c.login(user, testPass)
	return c
}

func (c *client) login(user, pass string) {
	c.t.Helper()
	r := c.do("POST", "/api/v1/sessions", api.SessionRequest{Username: user, Passphrase: pass})
	want(c.t, r, http.StatusCreated)
	var s api.Session
	r.decode(c.t, &s)
	c.token = s.Token
}

// post creates a record and returns it with its ETag.
func (c *client) post(body any) (map[string]any, string) {
	c.t.Helper()
	r := c.do("POST", "/api/v1/records", body)
	want(c.t, r, http.StatusCreated)
	var m map[string]any
	r.decode(c.t, &m)
	return m, r.header.Get("ETag")
}

// createShare creates a share (body: JSON text or a value to encode) and
// returns phrd's answer and its link's payload.
func (c *client) createShare(body any) (api.ShareCreated, share.Payload) {
	c.t.Helper()
	r := c.do("POST", "/api/v1/shares", body)
	want(c.t, r, http.StatusCreated)
	var created api.ShareCreated
	r.decode(c.t, &created)
	p, err := share.Decode(created.Link)
	if err != nil {
		c.t.Fatal(err)
	}
	return created, p
}
