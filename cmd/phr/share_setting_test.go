package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"
	"github.com/phr-project/phr/pkg/share"
	"github.com/phr-project/phr/pkg/vault"
)

// TestShareSettingName: a kept share's setting is named by a hash of its
// manifest ID, never the ID (setting names are not sealed), and a setting
// an older phr stored under the ID moves to the hashed name.
func TestShareSettingName(t *testing.T) {
	const id = "Xq3-manifest-id-of-43-characters-abcdefghij"
	if name := share.KeptSettingName(id); strings.Contains(name, id) || !strings.HasPrefix(name, share.KeptPrefix) || name == share.KeptSettingName(id+"x") {
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
	if err := v.SetSetting(share.KeptSettingName(id), []byte(`{"key":"k"}`)); err != nil {
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
	if err := v.SetSetting(share.KeptPrefix+id, []byte(`{"key":"k"}`)); err != nil {
		t.Fatal(err)
	}
	got, err := share.LoadKept(v, id, isNotFound)
	if err != nil || got.Key != "k" || !got.LongTerm {
		t.Fatalf("legacy setting: %+v, %v", got, err)
	}
	if _, err := v.Setting(share.KeptPrefix + id); !errors.Is(err, vault.ErrNotFound) {
		t.Fatalf("legacy name still there: %v", err)
	}
	if got, err := share.LoadKept(v, id, isNotFound); err != nil || got.Key != "k" {
		t.Fatalf("after the move: %+v, %v", got, err)
	}
	if _, err := share.LoadKept(v, "other", isNotFound); !errors.Is(err, share.ErrNotKept) {
		t.Fatalf("unknown share: %v", err)
	}
}
