package server

import (
	"testing"
	"time"
)

// TestDefaultGuessLimits: the figures docs/security.md (and
// docs/operations.md) give for the guessing limits are phrd's defaults.
// TestBearerTokenRateLimit, TestKeyRoutesPassphraseLimit and
// TestLoginRateLimit prove that the limits hold at whatever the
// configuration says; this holds the configuration to the documents.
func TestDefaultGuessLimits(t *testing.T) {
	c := Config{DataDir: t.TempDir()}.Defaults()
	tests := []struct {
		name      string
		got, want Rate
	}{
		{"wrong bearer tokens per client", c.BadTokenPerClient, Rate{Events: 30, Per: time.Minute, Burst: 30}},
		{"login and key-route passphrases per account", c.LoginPerAccount, Rate{Events: 5, Per: time.Minute, Burst: 5}},
		{"logins per client", c.LoginPerClient, Rate{Events: 20, Per: time.Minute, Burst: 20}},
	}
	for _, tc := range tests {
		if tc.got != tc.want {
			t.Errorf("%s: %+v, the documents say %+v", tc.name, tc.got, tc.want)
		}
	}
}
