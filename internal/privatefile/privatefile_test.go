package privatefile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

func TestWrite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "key")
	if err := Write(path, []byte("secret\n")); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, %v", fi.Mode(), err)
	}
	if b, _ := os.ReadFile(path); string(b) != "secret\n" {
		t.Fatalf("content %q", b)
	}
	// An existing file is never overwritten.
	if err := Write(path, []byte("other")); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("second write: %v", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "secret\n" {
		t.Fatalf("overwritten: %q", b)
	}
	if err := Write(filepath.Join(t.TempDir(), "missing", "key"), nil); err == nil {
		t.Fatal("wrote into a missing directory")
	}
}
