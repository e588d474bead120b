package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/phr-project/phr/pkg/server/api"
	"github.com/phr-project/phr/pkg/share"
)

// loggedIn returns a CLI with a vault and a `phr remote login` to a real
// phrd, and the phrd's URL.
func loggedIn(t *testing.T) (*cli, string) {
	base, _ := startPHRD(t, nil)
	if _, err := (&api.Client{BaseURL: base}).CreateAccount(context.Background(), "alice", "alice's long passphrase"); err != nil {
		t.Fatal(err)
	}
	c := newCLI(t)
	c.initVault()
	c.env["PHR_PASSPHRASE"] = "alice's long passphrase"
	c.ok("remote", "login", base, "--user", "alice")
	delete(c.env, "PHR_PASSPHRASE")
	return c, base
}

// manifest POSTs a manifest request for a link and returns the status
// and body.
func manifest(t *testing.T, p share.Payload, body string) (int, []byte) {
	t.Helper()
	resp, err := http.Post(p.URL, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func TestShareCreateOpenRevoke(t *testing.T) {
	c, base := loggedIn(t)
	c.ok("log", "med", "<script>alert(1)</script> metformin", "--dose", "500 mg")
	c.ok("log", "allergy", "penicillin", "--reaction", "hives")
	c.ok("log", "symptom", "headache", "--severity", "3")
	qrFile := filepath.Join(c.dir, "qr.png")
	out := c.ok("share", "create", "medication", "allergy", "--expires", "30m", "--passcode", "4711", "--label", "For Dr. Rivera", "--qr-png", qrFile, "--json")
	var created struct {
		ID, Link, SHLink string
	}
	if err := json.Unmarshal([]byte(out), &created); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(created.Link, base+"/view#shlink:/") || !strings.HasPrefix(created.SHLink, "shlink:/") {
		t.Fatalf("links: %+v", created)
	}
	if png, _ := os.ReadFile(qrFile); !bytes.HasPrefix(png, []byte("\x89PNG")) {
		t.Fatal("no QR PNG")
	}
	p, err := share.Decode(created.Link)
	if err != nil {
		t.Fatal(err)
	}
	if p.Flag != "P" || p.Label != "For Dr. Rivera" || p.Exp == 0 {
		t.Fatalf("payload %+v", p)
	}
	// Wrong passcode: 401 with attempts left.
	status, body := manifest(t, p, `{"recipient":"Dr. Rivera","passcode":"0000"}`)
	if status != 401 || !strings.Contains(string(body), "remainingAttempts") {
		t.Fatalf("wrong passcode: %d %s", status, body)
	}
	// Right passcode: the files decrypt with the key from the link.
	status, body = manifest(t, p, `{"recipient":"Dr. Rivera","passcode":"4711"}`)
	if status != 200 {
		t.Fatalf("manifest: %d %s", status, body)
	}
	var m share.Manifest
	json.Unmarshal(body, &m)
	key, _ := p.KeyBytes()
	ct, plain, err := share.DecryptFile(key, m.Files[0].Embedded)
	if err != nil || ct != share.ContentTypeFHIR {
		t.Fatalf("decrypt: %v %s", err, ct)
	}
	for _, want := range []string{"metformin", "penicillin", `"Patient"`} {
		if !bytes.Contains(plain, []byte(want)) {
			t.Errorf("shared bundle lacks %s", want)
		}
	}
	if bytes.Contains(plain, []byte("headache")) {
		t.Error("an unselected symptom was shared")
	}
	// The server stores ciphertext only.
	var list []map[string]any
	json.Unmarshal([]byte(c.ok("share", "list", "--json")), &list)
	if len(list) != 1 || list[0]["status"] != "active" {
		t.Fatalf("share list: %v", list)
	}
	if out := c.ok("share", "log", "--", created.ID); !strings.Contains(out, "Dr. Rivera") || !strings.Contains(out, "wrong-passcode") {
		t.Fatalf("share log: %s", out)
	}
	c.ok("share", "revoke", "--", created.ID)
	if status, _ := manifest(t, p, `{"recipient":"Dr. Rivera","passcode":"4711"}`); status != 404 {
		t.Fatalf("after revoke: %d", status)
	}
	// Bad input.
	for _, args := range [][]string{
		{"share", "create", "medication"},
		{"share", "create", "medication", "--expires", "forever"},
		{"share", "create", "medication", "--expires", "2y"},
	} {
		if code, _, _ := c.run(args...); code != 2 {
			t.Errorf("%v: exit %d", args, code)
		}
	}
}

func TestShareSummaryAndQR(t *testing.T) {
	c, _ := loggedIn(t)
	c.ok("log", "condition", "asthma")
	c.ok("log", "med", "albuterol")
	out := c.ok("share", "create", "--summary", "--expires", "1h", "--max-uses", "1", "--qr")
	if !strings.Contains(out, "/view#shlink:/") || !strings.Contains(out, "█") && !strings.Contains(out, "▀") {
		t.Fatalf("share output: %s", out)
	}
	link := ""
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "#shlink:/") {
			link = strings.TrimSpace(l)
		}
	}
	p, err := share.Decode(link)
	if err != nil {
		t.Fatal(err)
	}
	status, body := manifest(t, p, `{"recipient":"ER"}`)
	if status != 200 {
		t.Fatalf("manifest: %d", status)
	}
	var m share.Manifest
	json.Unmarshal(body, &m)
	key, _ := p.KeyBytes()
	_, plain, err := share.DecryptFile(key, m.Files[0].Embedded)
	if err != nil || !bytes.Contains(plain, []byte(`"Composition"`)) || !bytes.Contains(plain, []byte("60591-5")) {
		t.Fatalf("IPS: %v", err)
	}
	// --max-uses 1: the second open is refused.
	if status, _ := manifest(t, p, `{"recipient":"ER"}`); status != 404 {
		t.Fatalf("second use: %d", status)
	}
}

// TestLongTermShareUpdate: an L-flag link keeps working while the patient
// refreshes its content; its manifest says the files can change; a share
// without L cannot be updated.
func TestLongTermShareUpdate(t *testing.T) {
	c, _ := loggedIn(t)
	c.ok("log", "med", "metformin")
	var created struct{ ID, Link string }
	json.Unmarshal([]byte(c.ok("share", "create", "medication", "--expires", "7d", "--long-term", "--json")), &created)
	p, err := share.Decode(created.Link)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(p.Flag, "L") {
		t.Fatalf("flag %q", p.Flag)
	}
	key, _ := p.KeyBytes()
	open := func() (share.Manifest, string) {
		t.Helper()
		status, body := manifest(t, p, `{"recipient":"GP"}`)
		if status != 200 {
			t.Fatalf("manifest: %d %s", status, body)
		}
		var m share.Manifest
		json.Unmarshal(body, &m)
		_, plain, err := share.DecryptFile(key, m.Files[0].Embedded)
		if err != nil {
			t.Fatal(err)
		}
		return m, string(plain)
	}
	m, plain := open()
	if m.Files[0].Status != share.StatusCanChange || !strings.Contains(plain, "metformin") || strings.Contains(plain, "lisinopril") {
		t.Fatalf("before update: status %q", m.Files[0].Status)
	}
	c.ok("log", "med", "lisinopril")
	c.ok("share", "update", "--", created.ID)
	if _, plain := open(); !strings.Contains(plain, "lisinopril") {
		t.Fatal("the update is not served")
	}
	// A share without L cannot be updated, and says so.
	var fixed struct{ ID string }
	json.Unmarshal([]byte(c.ok("share", "create", "medication", "--expires", "1h", "--json")), &fixed)
	if code, _, _ := c.run("share", "update", "--", fixed.ID); code != 1 {
		t.Fatal("updated a share without the L flag")
	}
	c.ok("share", "revoke", "--", created.ID)
	if code, _, _ := c.run("share", "update", "--", created.ID); code != 1 {
		t.Fatal("updated a revoked share")
	}
}
