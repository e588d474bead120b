package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/phr-project/phr/pkg/kv"
	"github.com/phr-project/phr/pkg/kv/kvtest"
)

// TestSharedLimiterKeyed: the rows of phr_limits are keyed by an HMAC
// under server.key (docs/security.md, "login rate limits in
// PostgreSQL"), not by a plain hash, which anyone could compute for
// every IPv4 address or check against a known account id. Two limiters
// of one name under two secrets, limiting one key each, make two rows,
// and neither row's key is the key in clear, its SHA-256, or holds it.
// (TestSharedLimiter: the limit itself across nodes.)
func TestSharedLimiterKeyed(t *testing.T) {
	db := kvtest.URL(t)
	clock := &fakeClock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	rate := Rate{Events: 5, Per: time.Hour, Burst: 5}
	limiter := func(name string, secret []byte) *sharedLimiter {
		p, err := kv.OpenPostgres(context.Background(), db, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(p.Close)
		return newSharedLimiter(name, rate, clock.Now, p.Pool(), secret, slog.New(slog.DiscardHandler))
	}
	rows := func() [][]byte {
		conn, err := pgx.Connect(context.Background(), db)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(context.Background())
		rs, err := conn.Query(context.Background(), `SELECT key FROM phr_limits`)
		if err != nil {
			t.Fatal(err)
		}
		var out [][]byte
		for rs.Next() {
			var k []byte
			if err := rs.Scan(&k); err != nil {
				t.Fatal(err)
			}
			out = append(out, k)
		}
		if err := rs.Err(); err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Exec(context.Background(), `DELETE FROM phr_limits`); err != nil {
			t.Fatal(err)
		}
		return out
	}
	tests := []struct{ limit, key string }{
		{"login-client", "203.0.113.7"},
		{"login-account", strings.Repeat("ab", 32)}, // an account id
	}
	for _, tc := range tests {
		t.Run(tc.limit, func(t *testing.T) {
			for _, secret := range []string{"server key one", "server key two"} {
				if ok, _ := limiter(tc.limit, []byte(secret)).allow(tc.key); !ok {
					t.Fatal("the first request was refused")
				}
			}
			keys := rows()
			if len(keys) != 2 || string(keys[0]) == string(keys[1]) {
				t.Fatalf("%d rows for one key under two secrets (%x): the row key does not depend on server.key", len(keys), keys)
			}
			sum := sha256.Sum256([]byte(tc.key))
			for _, k := range keys {
				for _, plain := range []string{tc.key, string(sum[:]), hex.EncodeToString(sum[:])} {
					if strings.Contains(string(k), plain) {
						t.Errorf("row key %x holds %q in clear or as its SHA-256", k, tc.key)
					}
				}
			}
		})
	}
}
