package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"filippo.io/age"
)

var recoveryRE = regexp.MustCompile(`[A-Z2-7]{5}-[A-Z2-7]{5}-[A-Z2-7]{5}-[A-Z2-7]{5}-[A-Z2-7]{6}`)

func TestKeyCommands(t *testing.T) {
	c := newCLI(t)
	c.env["PHR_PASSPHRASE"] = testPassphrase
	initOut := c.ok("init")
	oldCode := recoveryRE.FindString(initOut)
	delete(c.env, "PHR_PASSPHRASE")
	c.ok("log", "condition", "asthma")

	var slots []map[string]any
	json.Unmarshal([]byte(c.ok("key", "list", "--json")), &slots)
	if len(slots) != 3 {
		t.Fatalf("key list: %v", slots)
	}
	for _, s := range slots {
		if strings.Contains(strings.ToLower(c.ok("key", "list")), "age-secret") {
			t.Fatal("key list shows a secret")
		}
		_ = s
	}
	devFile := filepath.Join(c.dir, "phone.txt")
	c.ok("key", "add-device", "--label", "phone", "--out", devFile)
	if st, err := os.Stat(devFile); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("device identity file: %v", err)
	}
	other, _ := age.GenerateX25519Identity()
	c.ok("key", "add-device", "--recipient", other.Recipient().String())
	if code, _, _ := c.run("key", "add-device", "--recipient", "age1bogus"); code != 2 {
		t.Fatalf("bad recipient: exit %d", code)
	}

	// The new device's identity opens the vault.
	c.env["PHR_IDENTITY"] = devFile
	c.ok("list")
	delete(c.env, "PHR_IDENTITY")

	// New recovery code: the old one stops working.
	newCode := recoveryRE.FindString(c.ok("key", "recovery"))
	if newCode == "" || newCode == oldCode {
		t.Fatalf("recovery codes %q -> %q", oldCode, newCode)
	}

	// Change the passphrase.
	c.env["PHR_NEW_PASSPHRASE"] = "an entirely new passphrase"
	c.ok("passwd")
	delete(c.env, "PHR_NEW_PASSPHRASE")
	idPath := filepath.Join(c.env["PHR_CONFIG_DIR"], "device-identity.txt")
	os.Rename(idPath, idPath+".away")
	c.env["PHR_PASSPHRASE"] = testPassphrase
	if code, _, _ := c.run("list"); code != exitWrongKey {
		t.Fatal("old passphrase still opens the vault")
	}
	c.env["PHR_PASSPHRASE"] = "an entirely new passphrase"
	c.ok("list")

	// Rotate: everything still there, every kind of slot still opens.
	rot := c.ok("key", "rotate")
	rotCode := recoveryRE.FindString(rot)
	if rotCode == "" || !strings.Contains(rot, "resealed") {
		t.Fatalf("rotate: %s", rot)
	}
	delete(c.env, "PHR_PASSPHRASE")
	os.Rename(idPath+".away", idPath)
	if n := len(c.list("list", "condition")); n != 1 {
		t.Fatalf("after rotate: %d conditions", n)
	}
	c.env["PHR_IDENTITY"] = devFile
	c.ok("list")
	delete(c.env, "PHR_IDENTITY")
	c.ok("check")

	// Removing slots: never the last one. The passphrase opens the vault
	// throughout, and its slot goes last.
	c.env["PHR_PASSPHRASE"] = "an entirely new passphrase"
	json.Unmarshal([]byte(c.ok("key", "list", "--json")), &slots)
	sort.SliceStable(slots, func(i, j int) bool { return slots[j]["kind"] == "passphrase" && slots[i]["kind"] != "passphrase" })
	mine := 0
	for i, s := range slots {
		if s["thisDevice"] == true {
			// This device's slot goes only with --force.
			mine++
			if code, _, errOut := c.run("key", "remove", s["id"].(string)); code != 2 || !strings.Contains(errOut, "this device's") {
				t.Fatalf("removing this device's slot without --force: %d %s", code, errOut)
			}
			c.ok("key", "remove", "--force", s["id"].(string))
			continue
		}
		code, _, errOut := c.run("key", "remove", s["id"].(string))
		if i < len(slots)-1 && code != 0 {
			t.Fatalf("remove %v: %s", s, errOut)
		}
		if i == len(slots)-1 && (code != 1 || !strings.Contains(errOut, "last key slot")) {
			t.Fatalf("removing the last slot: %d %s", code, errOut)
		}
	}
	if mine != 1 {
		t.Fatalf("%d slots marked as this device's", mine)
	}
}

func TestBackupRestoreCLI(t *testing.T) {
	c := newCLI(t)
	c.initVault()
	c.ok("log", "med", "Zyloprimexa", "--dose", "300 mg")
	c.ok("log", "vital", "bp", "120/80")
	c.ok("log", "symptom", "headache", "--severity", "4")
	want := c.list("list")

	backupID, _ := age.GenerateX25519Identity()
	out := filepath.Join(c.dir, "backup.age")
	if code, _, _ := c.run("backup", "-o", out); code != 2 {
		t.Fatal("backup without a recipient or passphrase was accepted")
	}
	c.ok("backup", "-o", out, "--recipient", backupID.Recipient().String())
	if st, _ := os.Stat(out); st.Mode().Perm() != 0o600 {
		t.Errorf("backup mode %v", st.Mode().Perm())
	}
	if code, _, errOut := c.run("backup", "-o", out, "--recipient", backupID.Recipient().String()); code != 1 || !strings.Contains(errOut, "exists") {
		t.Fatalf("backup over an existing file: %d %s", code, errOut)
	}
	raw, _ := os.ReadFile(out)
	if bytes.Contains(raw, []byte("Zyloprimexa")) {
		t.Fatal("backup holds plaintext")
	}
	idFile := filepath.Join(c.dir, "backup-identity.txt")
	os.WriteFile(idFile, []byte(backupID.String()+"\n"), 0o600)

	// The age library alone decrypts it, as age -d does.
	plain := ageDecrypt(t, idFile, out)
	zr, err := gzip.NewReader(bytes.NewReader(plain))
	if err != nil {
		t.Fatal(err)
	}
	first, _ := bufio.NewReader(zr).ReadString('\n')
	if !strings.Contains(first, `"format":"phr-backup"`) {
		t.Fatalf("first line %q", first)
	}

	c.env["PHR_IDENTITY"] = idFile
	c.ok("backup", "verify", out)
	// Restore on a "new machine": another config dir, another vault path.
	c2 := newCLI(t)
	c2.env["PHR_IDENTITY"] = idFile
	c2.env["PHR_PASSPHRASE"] = "new machine passphrase"
	res := c2.ok("restore", out)
	if recoveryRE.FindString(res) == "" {
		t.Fatalf("restore printed no recovery code: %s", res)
	}
	delete(c2.env, "PHR_IDENTITY")
	delete(c2.env, "PHR_PASSPHRASE")
	got := c2.list("list")
	if len(got) != len(want) {
		t.Fatalf("restored %d records, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i]["id"] != want[i]["id"] || got[i]["display"] != want[i]["display"] || got[i]["date"] != want[i]["date"] {
			t.Fatalf("record %d: %v != %v", i, got[i], want[i])
		}
	}
	// Restoring over an existing vault needs --force, and keeps the old one.
	c2.env["PHR_IDENTITY"] = idFile
	c2.env["PHR_PASSPHRASE"] = "new machine passphrase"
	if code, _, _ := c2.run("restore", out); code != 1 {
		t.Fatal("restore over an existing vault without --force")
	}
	c2.ok("restore", out, "--force")
	matches, _ := filepath.Glob(c2.env["PHR_VAULT"] + ".before-restore-*")
	if len(matches) != 1 {
		t.Fatalf("old vault kept aside: %v", matches)
	}
	// A truncated backup: clear error, nothing written.
	bad := filepath.Join(c.dir, "bad.age")
	os.WriteFile(bad, raw[:len(raw)/2], 0o600)
	c3 := newCLI(t)
	c3.env["PHR_IDENTITY"] = idFile
	c3.env["PHR_PASSPHRASE"] = "new machine passphrase"
	if code, _, errOut := c3.run("restore", bad); code != 1 || !strings.Contains(errOut, "nothing was written") {
		t.Fatalf("truncated restore: %d %s", code, errOut)
	}
	if _, err := os.Stat(c3.env["PHR_VAULT"]); err == nil {
		t.Fatal("truncated restore created a vault")
	}
}

// ageDecrypt opens an age file with the age library itself, as the
// stock age CLI does (age -d -i identity file): nothing of phr's in
// between, and no network or module download in the test.
func ageDecrypt(t *testing.T, identity, file string) []byte {
	t.Helper()
	idf, err := os.Open(identity)
	if err != nil {
		t.Fatal(err)
	}
	defer idf.Close()
	ids, err := age.ParseIdentities(idf)
	if err != nil {
		t.Fatalf("%s: %v", identity, err)
	}
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := age.Decrypt(f, ids...)
	if err != nil {
		t.Fatalf("age -d: %v", err)
	}
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("age -d: %v", err)
	}
	return out
}

func TestExportCheck(t *testing.T) {
	c := newCLI(t)
	c.initVault()
	c.ok("log", "med", "metformin", "--dose", "500 mg")
	c.ok("log", "vital", "hr", "72")
	var bundle struct {
		ResourceType string
		Type         string
		Entry        []struct {
			FullURL  string
			Resource map[string]any
		}
	}
	if err := json.Unmarshal([]byte(c.ok("export", "--format", "fhir")), &bundle); err != nil {
		t.Fatal(err)
	}
	if bundle.ResourceType != "Bundle" || bundle.Type != "collection" || len(bundle.Entry) != 3 {
		t.Fatalf("bundle %+v", bundle)
	}
	nd := c.ok("export", "--format", "ndjson", "vital")
	if lines := strings.Split(strings.TrimSpace(nd), "\n"); len(lines) != 1 || !strings.Contains(lines[0], `"8867-4"`) {
		t.Fatalf("ndjson: %q", nd)
	}
	out := filepath.Join(c.dir, "export.json")
	c.ok("export", "-o", out)
	if st, err := os.Stat(out); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("export file: %v", err)
	}
	if code, _, _ := c.run("export", "--format", "docx"); code != 2 {
		t.Fatal("unknown export format accepted")
	}
	if out := c.ok("check"); !strings.Contains(out, "0 problems") {
		t.Fatalf("check: %s", out)
	}
}
