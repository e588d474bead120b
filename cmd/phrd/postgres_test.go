package main

import (
	"context"
	"net/url"
	"strings"
	"testing"

	"github.com/phr-project/phr/pkg/kv/kvtest"
)

// TestDatabaseURL: phrd with PHRD_DATABASE_URL keeps its share store in
// PostgreSQL, says so when it listens, and logs nothing of the URL, its
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
	if !strings.Contains(l, `"shares":"postgresql"`) {
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
