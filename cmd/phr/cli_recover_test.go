package main

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/phr-project/phr/pkg/vault"
)

// newRecoverableCLI is a vault made with a passphrase (not kept in the
// environment) holding one condition, its recovery code, and the path of
// this device's identity.
func newRecoverableCLI(t *testing.T) (c *cli, code, idPath string) {
	t.Helper()
	c = newCLI(t)
	c.env["PHR_PASSPHRASE"] = testPassphrase
	code = recoveryRE.FindString(c.ok("init"))
	delete(c.env, "PHR_PASSPHRASE")
	c.ok("log", "condition", "asthma")
	return c, code, filepath.Join(c.env["PHR_CONFIG_DIR"], "device-identity.txt")
}

// The recovery code printed by init opens the vault wherever the
// passphrase does: from PHR_RECOVERY_CODE, and at the prompt.
func TestRecoveryCodeOpens(t *testing.T) {
	c, code, idPath := newRecoverableCLI(t)
	// Lost: this device's key and the passphrase.
	if err := os.Remove(idPath); err != nil {
		t.Fatal(err)
	}
	if rc, _, errOut := c.run("list"); rc != 1 || !strings.Contains(errOut, "PHR_RECOVERY_CODE") {
		t.Fatalf("without a key: %d %s", rc, errOut)
	}
	for _, form := range []string{code, strings.ToLower(strings.ReplaceAll(code, "-", "")), " " + strings.ReplaceAll(code, "-", " ") + " "} {
		c.env["PHR_RECOVERY_CODE"] = form
		if n := len(c.list("list", "condition")); n != 1 {
			t.Fatalf("recovery code %q: %d conditions", form, n)
		}
	}
	c.env["PHR_RECOVERY_CODE"] = vault.NewRecoveryCode()
	if rc, _, errOut := c.run("list"); rc != exitWrongKey || !strings.Contains(errOut, "wrong recovery code (from PHR_RECOVERY_CODE)") {
		t.Fatalf("wrong code: %d %s", rc, errOut)
	}

	// What is typed at the prompt: a passphrase, or a recovery code in
	// any of its forms.
	path := c.env["PHR_VAULT"]
	open := func(s vault.Secret) (*vault.Vault, error) { return vault.Open(path, s, &vault.Options{ReadOnly: true}) }
	for _, tt := range []struct {
		typed string
		want  error
	}{
		{testPassphrase, nil},
		{code, nil},
		{strings.ToLower(strings.ReplaceAll(code, "-", "")), nil},
		{vault.NewRecoveryCode(), vault.ErrWrongKey},
		{"not the passphrase", vault.ErrWrongKey},
	} {
		v, err := openWithTyped(open, tt.typed)
		if !errors.Is(err, tt.want) {
			t.Fatalf("typed %q: %v, want %v", tt.typed, err, tt.want)
		}
		if err == nil {
			v.Close()
		}
	}
}

// phr key recover: with the recovery code alone, a new passphrase, a new
// key for this device and a new recovery code; every old way in is gone.
func TestKeyRecover(t *testing.T) {
	c, code, idPath := newRecoverableCLI(t)
	lost := filepath.Join(c.dir, "lost-device.txt")
	if err := os.Rename(idPath, lost); err != nil {
		t.Fatal(err)
	}

	if rc, _, errOut := c.run("key", "recover"); rc != 2 || !strings.Contains(errOut, "PHR_RECOVERY_CODE") {
		t.Fatalf("without a code: %d %s", rc, errOut)
	}
	c.env["PHR_RECOVERY_CODE"] = vault.NewRecoveryCode()
	c.env["PHR_NEW_PASSPHRASE"] = "a passphrase after recovery"
	if rc, _, errOut := c.run("key", "recover"); rc != exitWrongKey || !strings.Contains(errOut, "wrong recovery code") {
		t.Fatalf("wrong code: %d %s", rc, errOut)
	}
	c.env["PHR_RECOVERY_CODE"] = code
	out := c.ok("key", "recover")
	newCode := recoveryRE.FindString(out)
	if newCode == "" || newCode == code || !strings.Contains(out, "Removed 1 device key") || !strings.Contains(out, "Created this device's key") {
		t.Fatalf("recover: %s", out)
	}
	delete(c.env, "PHR_RECOVERY_CODE")
	delete(c.env, "PHR_NEW_PASSPHRASE")

	// The new device key opens it, and key list marks it.
	var slots []map[string]any
	if err := json.Unmarshal([]byte(c.ok("key", "list", "--json")), &slots); err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	for _, s := range slots {
		kinds[s["kind"].(string)]++
		if (s["kind"] == "device") != (s["thisDevice"] == true) {
			t.Fatalf("slot %v", s)
		}
	}
	if kinds["device"] != 1 || kinds["passphrase"] != 1 || kinds["recovery"] != 1 {
		t.Fatalf("slots after recovery: %v", slots)
	}
	if !strings.Contains(c.ok("key", "list"), "this device") {
		t.Fatal("key list does not mark this device")
	}
	// The old secrets open nothing; the new ones do.
	os.Rename(idPath, idPath+".away")
	for _, tt := range []struct {
		env  map[string]string
		want int
	}{
		{map[string]string{"PHR_RECOVERY_CODE": code}, exitWrongKey},
		{map[string]string{"PHR_PASSPHRASE": testPassphrase}, exitWrongKey},
		{map[string]string{"PHR_IDENTITY": lost}, exitWrongKey},
		{map[string]string{"PHR_RECOVERY_CODE": newCode}, 0},
		{map[string]string{"PHR_PASSPHRASE": "a passphrase after recovery"}, 0},
		{map[string]string{"PHR_IDENTITY": idPath + ".away"}, 0},
	} {
		for k, v := range tt.env {
			c.env[k] = v
		}
		if rc, _, errOut := c.run("list", "condition"); rc != tt.want {
			t.Fatalf("%v: exit %d, want %d: %s", tt.env, rc, tt.want, errOut)
		}
		for k := range tt.env {
			delete(c.env, k)
		}
	}
	os.Rename(idPath+".away", idPath)
	c.ok("check")
}

// A vault file put back to an older copy is reported on the next open,
// read-only or not, until the owner accepts it.
func TestRollbackReported(t *testing.T) {
	c := newCLI(t)
	c.initVault()
	c.ok("log", "condition", "asthma")
	old, err := os.ReadFile(c.env["PHR_VAULT"])
	if err != nil {
		t.Fatal(err)
	}
	c.ok("log", "allergy", "penicillin")
	if err := os.WriteFile(c.env["PHR_VAULT"], old, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"list"}, {"log", "condition", "gout"}, {"check"}} {
		rc, _, errOut := c.run(args...)
		if rc != exitTampered || !strings.Contains(errOut, "older than the one this device last saw") || !strings.Contains(errOut, "phr check --accept-rollback") {
			t.Fatalf("phr %v on the old copy: %d %s", args, rc, errOut)
		}
	}
	c.ok("check", "--accept-rollback")
	if n := len(c.list("list", "allergy")); n != 0 {
		t.Fatalf("%d allergies in the old copy", n)
	}
	c.ok("log", "condition", "gout")
	// Where the device remembers it: next to its identity, 0600.
	ents, _ := os.ReadDir(filepath.Join(c.env["PHR_CONFIG_DIR"], "heads"))
	if len(ents) != 1 {
		t.Fatalf("heads: %v", ents)
	}
	if st, _ := ents[0].Info(); st.Mode().Perm() != 0o600 {
		t.Fatalf("head file mode %v", st.Mode())
	}
}
