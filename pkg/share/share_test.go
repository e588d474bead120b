package share

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// sharedTestdata is the project's shared test data, relative to this
// package's directory (tests run with the package directory as cwd).
const sharedTestdata = "../../../shared/testdata"

// specKey is the key of the specification's examples.
const specKey = "rxTgYlOaKJPFtcEd0qcceN8wEU4p94SqAwIWQe6uX7Q"

func readShared(t testing.TB, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(sharedTestdata, filepath.FromSlash(rel)))
	if err != nil {
		t.Fatalf("reading shared test data: %v", err)
	}
	return b
}

func mustKey(t testing.TB, s string) []byte {
	t.Helper()
	k, err := DecodeKey(s)
	if err != nil {
		t.Fatalf("DecodeKey: %v", err)
	}
	return k
}

// assertNoSecret fails if msg contains any of the secrets.
func assertNoSecret(t *testing.T, msg string, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if s != "" && strings.Contains(msg, s) {
			t.Errorf("error message %q leaks a secret value", msg)
		}
	}
}
