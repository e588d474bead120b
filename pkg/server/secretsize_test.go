package server

import (
	"encoding/base64"
	"net/http"
	"testing"
	"time"
)

// TestGuessedSecretsAre256Bits: the secrets a guesser would have to find
// (docs/security.md, threat model, "someone guessing") are 256 random
// bits each: session tokens, share ids and the keys in share links. Each
// decodes from base64url to exactly 32 bytes, and no two of a kind are
// equal, nor share their first 8 bytes (a counter or a clock in them
// would).
func TestGuessedSecretsAre256Bits(t *testing.T) {
	const n = 8
	ts := newTestServer(t, nil)
	alice := ts.signup("alice")
	want(t, alice.do("POST", "/api/v1/records", map[string]any{"log": "med", "name": "Lisinopril", "dose": "10 mg"}), http.StatusCreated)
	exp := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	var tokens, ids, keys []string
	for range n {
		c := ts.client()
		c.login("alice", testPass)
		tokens = append(tokens, c.token)
		created, p := alice.createShare(`{"select":{"types":["medication"]},"expires_at":"` + exp + `"}`)
		ids = append(ids, created.ID)
		keys = append(keys, p.Key)
	}
	for _, kind := range []struct {
		name string
		vals []string
	}{
		{"session token", tokens},
		{"share id", ids},
		{"share link key", keys},
	} {
		t.Run(kind.name, func(t *testing.T) {
			seen := map[string]bool{}
			for _, v := range kind.vals {
				raw, err := base64.RawURLEncoding.DecodeString(v)
				if err != nil || len(raw) != 32 {
					t.Fatalf("%s %q: %d bytes, %v; want 32 bytes of base64url", kind.name, v, len(raw), err)
				}
				if seen[string(raw)] || seen[string(raw[:8])] {
					t.Errorf("%s %q repeats another, or its first 8 bytes", kind.name, v)
				}
				seen[string(raw)], seen[string(raw[:8])] = true, true
			}
		})
	}
}
