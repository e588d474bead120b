package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/phr-project/phr/pkg/server"
	"github.com/phr-project/phr/pkg/server/api"
)

// startPHRD runs a real phrd on 127.0.0.1 with a random port and returns
// its URL and the server.
func startPHRD(t *testing.T, publicURL func(string) string) (string, *server.Server) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	cfg := server.Config{
		DataDir:        t.TempDir(),
		VaultNoSync:    true,
		Logger:         slog.New(slog.NewTextHandler(io.Discard, nil)),
		LoginPerClient: server.Rate{Events: 10000, Per: time.Minute, Burst: 10000},
		PublicURL:      base,
	}
	s, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		if err := s.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("serve: %v", err)
		}
	}()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s.Shutdown(ctx)
	})
	return base, s
}

func TestRemoteLogin(t *testing.T) {
	base, _ := startPHRD(t, nil)
	ctx := context.Background()
	if _, err := (&api.Client{BaseURL: base}).CreateAccount(ctx, "alice", "alice's long passphrase"); err != nil {
		t.Fatal(err)
	}
	c := newCLI(t)
	if code, _, errOut := c.run("remote", "status"); code != 1 || !strings.Contains(errOut, "not logged in") {
		t.Fatalf("status before login: %d %s", code, errOut)
	}
	c.env["PHR_PASSPHRASE"] = "wrong passphrase here"
	if code, _, errOut := c.run("remote", "login", base, "--user", "alice"); code != 1 || !strings.Contains(errOut, "refused") {
		t.Fatalf("login with a wrong passphrase: %d %s", code, errOut)
	}
	c.env["PHR_PASSPHRASE"] = "alice's long passphrase"
	c.ok("remote", "login", base, "--user", "alice")
	delete(c.env, "PHR_PASSPHRASE")
	st, err := os.Stat(remoteConfigPath(func(k string) string { return c.env[k] }))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("remote config: %v", err)
	}
	raw, _ := os.ReadFile(remoteConfigPath(func(k string) string { return c.env[k] }))
	if strings.Contains(string(raw), "alice's long passphrase") {
		t.Fatal("the passphrase was stored")
	}
	if out := c.ok("remote", "status"); !strings.Contains(out, "login OK") {
		t.Fatalf("status: %s", out)
	}
	rc, _ := (&globals{env: func(k string) string { return c.env[k] }}).loadRemote()
	c.ok("remote", "logout")
	// The device credential was revoked on the server.
	if _, err := (&api.Client{BaseURL: base}).Login(ctx, api.SessionRequest{Username: "alice", DeviceCredential: rc.Credential}); err == nil {
		t.Fatal("the revoked device credential still logs in")
	}
	if code, _, _ := c.run("remote", "status"); code != 1 {
		t.Fatal("status after logout succeeded")
	}
	if code, _, _ := c.run("remote", "login", "http://example.com", "--user", "alice"); code != 2 {
		t.Fatal("plain http to a remote host accepted")
	}
}
