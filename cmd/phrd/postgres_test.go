package main

import (
	"bytes"
	"context"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/phr-project/phr/pkg/kv/kvtest"
	"github.com/phr-project/phr/pkg/server/api"
)

// TestDatabaseURL: phrd with PHRD_DATABASE_URL keeps its vaults and
// share store in PostgreSQL, says so when it listens, and logs nothing of the URL, its
// password least of all (the test cluster trusts local users, so the
// password is given and never asked for).
func TestDatabaseURL(t *testing.T) {
	u, err := url.Parse(kvtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(u.User.Username(), "PW-NEVER-LOGGED")
	logs := &syncBuffer{}
	m := NewMain()
	m.Stderr = logs
	m.Getenv = env(map[string]string{"PHRD_DATA": t.TempDir(), "PHRD_ADDR": "127.0.0.1:0", "PHRD_DATABASE_URL": u.String()})
	if err := m.ParseFlags(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	if err := m.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	l := logs.String()
	if !strings.Contains(l, `"vaults":"postgresql"`) || !strings.Contains(l, `"shares":"postgresql"`) {
		t.Errorf("the listening line does not say where the shares are:\n%s", l)
	}
	for _, secret := range []string{"PW-NEVER-LOGGED", u.Host, "search_path"} {
		if strings.Contains(l, secret) {
			t.Errorf("the log holds %q:\n%s", secret, l)
		}
	}
}

// TestDatabaseUnreachable: phrd refuses to start without its database,
// saying so without the URL's password.
func TestDatabaseUnreachable(t *testing.T) {
	m := NewMain()
	m.Stderr = &syncBuffer{}
	m.Getenv = env(map[string]string{"PHRD_DATA": t.TempDir(), "PHRD_ADDR": "127.0.0.1:0",
		"PHRD_DATABASE_URL": "postgres://phrd:PW-NEVER-SHOWN@127.0.0.1:1/phr?connect_timeout=2"})
	if err := m.ParseFlags(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	err := m.Run(context.Background())
	if err == nil {
		m.Close()
		t.Fatal("phrd started without its database")
	}
	if !strings.Contains(err.Error(), "the database") || strings.Contains(err.Error(), "PW-NEVER-SHOWN") {
		t.Errorf("error: %v", err)
	}
}

// TestAccountCreateInDatabase: `phrd account create` with
// PHRD_DATABASE_URL makes the vault in the database (a node on it logs
// the account in; the data directory holds no vault); --database-url
// with a password is refused; a second create of the name fails.
func TestAccountCreateInDatabase(t *testing.T) {
	db := kvtest.URL(t)
	dir := t.TempDir()
	pass := "a long passphrase for bob"
	for _, tt := range []struct {
		name string
		argv []string
		env  map[string]string
		code int
		out  string
	}{
		{"env", []string{"account", "create", "--data", dir, "bob"}, map[string]string{"PHRD_PASSPHRASE": pass, "PHRD_DATABASE_URL": db}, exitOK, "Created account bob"},
		{"flag", []string{"account", "create", "--data", dir, "--database-url", db, "carol"}, map[string]string{"PHRD_PASSPHRASE": pass}, exitOK, "Created account carol"},
		{"taken", []string{"account", "create", "--data", dir, "bob"}, map[string]string{"PHRD_PASSPHRASE": pass, "PHRD_DATABASE_URL": db}, exitError, ""},
		{"password in argv", []string{"account", "create", "--data", dir, "--database-url", "postgres://u:secret@127.0.0.1:1/x", "dave"}, map[string]string{"PHRD_PASSPHRASE": pass}, exitUsage, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			if code := run(context.Background(), tt.argv, strings.NewReader(""), &out, &errb, env(tt.env)); code != tt.code || !strings.Contains(out.String(), tt.out) {
				t.Fatalf("exit %d (want %d)\n%s\n%s", code, tt.code, out.String(), errb.String())
			}
		})
	}
	if ents, err := os.ReadDir(filepath.Join(dir, "vaults")); err != nil || len(ents) != 0 {
		t.Errorf("the data directory's vaults: %d entries, %v", len(ents), err)
	}
	m := NewMain()
	m.Stderr = &syncBuffer{}
	m.Getenv = env(map[string]string{"PHRD_DATA": dir, "PHRD_ADDR": "127.0.0.1:0", "PHRD_DATABASE_URL": db})
	if err := m.ParseFlags(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	if err := m.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	for _, u := range []string{"bob", "carol"} {
		if _, err := (&api.Client{BaseURL: m.URL()}).Login(context.Background(), api.SessionRequest{Username: u, Passphrase: pass}); err != nil {
			t.Errorf("%s: %v", u, err)
		}
	}
}
