// Package phrdtest is the in-process phrd of phr's end-to-end security
// tests, and a provider's side of a share link: it serves a real
// server.Server on a random 127.0.0.1 port (through e2e.Listen and
// e2e.Serve) with its log in memory, and opens a link as a provider's
// viewer would (manifest, then every file decrypted with the link's key).
//
// Unlike e2e, it imports phr's server and share packages: the tests that
// use it link them anyway.
package phrdtest

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/phr-project/phr/pkg/importers/all"
	"github.com/phr-project/phr/pkg/server"
	"github.com/phr-project/phr/pkg/server/api"
	"github.com/phr-project/phr/pkg/share"
	"github.com/phr-project/phr/test/security/internal/e2e"
)

// PHRD is a phrd served in-process.
type PHRD struct {
	// Base is its URL (http://127.0.0.1:PORT), Data its data directory.
	Base, Data string
	// Logs holds every line it logged, as JSON.
	Logs *e2e.SyncBuffer
	// Shutdown stops it, waiting for requests in flight (the vaults and
	// the share store are closed afterwards); safe to call more than
	// once, and the test's cleanup calls it.
	Shutdown func()
}

// Serve starts phrd with cfg. What cfg leaves unset is filled in: the
// data directory (a new temporary one), the public URL, every importer, a
// JSON logger into Logs at level Debug (a test may grep all phrd logged),
// and login limits of 10,000 a minute per client and per account (the
// tests log in often; a test of the limits sets its own).
func Serve(t testing.TB, cfg server.Config) *PHRD {
	t.Helper()
	ln, base := e2e.Listen(t)
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	p := &PHRD{Base: base, Data: cfg.DataDir, Logs: &e2e.SyncBuffer{}}
	cfg.PublicURL = base
	if cfg.Importers == nil {
		cfg.Importers = all.Default()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewJSONHandler(p.Logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	if cfg.LoginPerClient.Events == 0 {
		cfg.LoginPerClient = server.Rate{Events: 10000, Per: time.Minute}
	}
	if cfg.LoginPerAccount.Events == 0 {
		cfg.LoginPerAccount = server.Rate{Events: 10000, Per: time.Minute}
	}
	s, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	p.Shutdown = e2e.Serve(t, ln, s)
	return p
}

// Client is an API client of this phrd (requests time out after a
// minute).
func (p *PHRD) Client() *api.Client {
	return &api.Client{BaseURL: p.Base, HTTP: &http.Client{Timeout: time.Minute}}
}

// VaultPath is the vault file of the one account phrd holds.
func (p *PHRD) VaultPath(t testing.TB) string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(p.Data, "vaults", "*.phr"))
	if err != nil || len(m) != 1 {
		t.Fatalf("vaults in %s: %v %v", p.Data, m, err)
	}
	return m[0]
}

// PostManifest asks for a link's manifest as recipient with passcode
// ("" for none) and returns the answer's status and body.
func PostManifest(t testing.TB, link, recipient, passcode string) (int, []byte) {
	t.Helper()
	p, err := share.Decode(link)
	if err != nil {
		t.Fatalf("link %q: %v", link, err)
	}
	body, _ := json.Marshal(share.ManifestRequest{Recipient: recipient, Passcode: passcode})
	resp, err := http.Post(p.URL, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// OpenShare fetches a link's manifest as recipient with passcode, fails
// the test unless it is given, and returns every file of it decrypted
// with the link's key, one after the other.
func OpenShare(t testing.TB, link, recipient, passcode string) []byte {
	t.Helper()
	p, err := share.Decode(link)
	if err != nil {
		t.Fatalf("link %q: %v", link, err)
	}
	key, err := p.KeyBytes()
	if err != nil {
		t.Fatal(err)
	}
	status, body := PostManifest(t, link, recipient, passcode)
	if status != http.StatusOK {
		t.Fatalf("manifest: %d %s", status, body)
	}
	var m share.Manifest
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatal(err)
	}
	var all []byte
	for _, f := range m.Files {
		jwe := f.Embedded
		if jwe == "" {
			resp, err := http.Get(f.Location)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			jwe = string(b)
		}
		_, plain, err := share.DecryptFile(key, jwe)
		if err != nil {
			t.Fatalf("decrypt a shared file: %v", err)
		}
		all = append(all, plain...)
	}
	return all
}
