// Package kvtest gives tests a PostgreSQL database of their own.
//
// The tests that need PostgreSQL read its URL from PHR_TEST_DATABASE_URL
// (scripts/test.sh starts a throw-away cluster and sets it). When it is
// unset they skip, saying so, except under CI (CI set), where they fail:
// CI must never pass by skipping them.
package kvtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/phr-project/phr/pkg/kv"
)

// EnvURL is the environment variable that holds the tests' database.
const EnvURL = "PHR_TEST_DATABASE_URL"

// URL returns a connection URL of a fresh schema, dropped when the test
// ends, so that tests run in parallel without seeing each other's data.
func URL(t testing.TB) string {
	t.Helper()
	base := os.Getenv(EnvURL)
	if base == "" {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is unset under CI: scripts/test.sh should have started PostgreSQL", EnvURL)
		}
		t.Skipf("PostgreSQL tests skipped: %s is unset (scripts/test.sh starts a throw-away cluster)", EnvURL)
	}
	var rnd [8]byte
	rand.Read(rnd[:])
	schema := "phr_test_" + hex.EncodeToString(rnd[:])
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("connect to %s: %v", EnvURL, err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Errorf("drop schema: %v", err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema: %v", err)
		}
	})
	u, err := url.Parse(base)
	if err != nil || u.Scheme == "" {
		t.Fatalf("%s must be a postgres:// URL", EnvURL)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// Open opens a fresh schema (URL) with the given options, closed when the
// test ends.
func Open(t testing.TB, opts *kv.PostgresOptions) (*kv.Postgres, string) {
	t.Helper()
	u := URL(t)
	p, err := kv.OpenPostgres(context.Background(), u, opts)
	if err != nil {
		t.Fatalf("open PostgreSQL: %v", err)
	}
	t.Cleanup(p.Close)
	return p, u
}
