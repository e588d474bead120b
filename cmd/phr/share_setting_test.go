package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"
	"github.com/phr-project/phr/pkg/vault"
)

// TestShareSettingName: a long-term share's setting is named by a hash of
// its manifest ID, never the ID (setting names are not sealed), and a
// setting an older phr stored under the ID moves to the hashed name.
func TestShareSettingName(t *testing.T) {
	const id = "Xq3-manifest-id-of-43-characters-abcdefghij"
	if name := shareSetting(id); strings.Contains(name, id) || !strings.HasPrefix(name, shareSettingPrefix) || name == shareSetting(id+"x") {
		t.Fatalf("setting name %q", name)
	}
	ident, _ := age.GenerateX25519Identity()
	create := func() (*vault.Vault, string) {
		path := filepath.Join(t.TempDir(), "v.phr")
		v, err := vault.Create(path, []vault.SlotSpec{{Kind: vault.SlotDevice, Recipients: []age.Recipient{ident.Recipient()}}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return v, path
	}

	v, path := create()
	if err := v.SetSetting(shareSetting(id), []byte(`{"key":"k"}`)); err != nil {
		t.Fatal(err)
	}
	v.Close()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, []byte(id)) {
		t.Fatal("manifest ID readable in the vault file")
	}

	// The move. (bbolt does not scrub freed pages: the old name stays in
	// the file until its page is reused.)
	v, _ = create()
	defer v.Close()
	if err := v.SetSetting(shareSettingPrefix+id, []byte(`{"key":"k"}`)); err != nil {
		t.Fatal(err)
	}
	got, err := longTermSetting(v, id)
	if err != nil || string(got) != `{"key":"k"}` {
		t.Fatalf("legacy setting: %q, %v", got, err)
	}
	if _, err := v.Setting(shareSettingPrefix + id); !errors.Is(err, vault.ErrNotFound) {
		t.Fatalf("legacy name still there: %v", err)
	}
	if got, err := longTermSetting(v, id); err != nil || string(got) != `{"key":"k"}` {
		t.Fatalf("after the move: %q, %v", got, err)
	}
	if _, err := longTermSetting(v, "other"); !errors.Is(err, vault.ErrNotFound) {
		t.Fatalf("unknown share: %v", err)
	}
}
