package main

import (
	"bytes"
	"context"
	"encoding/json"
	"image"
	"image/draw"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/phr-project/phr/pkg/server/api"
	"github.com/phr-project/phr/pkg/share"
)

// importReports runs phr import --json and returns its per-file reports.
func importReports(t *testing.T, c *cli, wantCode int, args ...string) []map[string]any {
	t.Helper()
	code, out, errOut := c.run(append([]string{"import", "--json"}, args...)...)
	if code != wantCode {
		t.Fatalf("phr import %v: exit %d, want %d: %s %s", args, code, wantCode, out, errOut)
	}
	var res struct {
		Files []map[string]any `json:"files"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("output %q: %v", out, err)
	}
	return res.Files
}

// TestImportReceivedLink: a link made by `phr share create` on a real
// phrd (127.0.0.1) imports into another vault with its passcode from a
// file or the environment, never from argv; a wrong passcode says how many
// attempts are left and adds nothing; the link as a QR code image imports
// too, and again adds nothing new.
func TestImportReceivedLink(t *testing.T) {
	sender, base := loggedIn(t)
	sender.ok("log", "med", "metformin", "--dose", "500 mg")
	sender.ok("log", "allergy", "penicillin", "--reaction", "hives")
	var created struct{ Link string }
	sender.env["PHR_SHARE_PASSCODE"] = "4711"
	qr := filepath.Join(sender.dir, "link.png")
	json.Unmarshal([]byte(sender.ok("share", "create", "medication", "allergy", "--expires", "1h", "--label", "For Dr. Rivera", "--qr-png", qr, "--json")), &created)
	if !strings.HasPrefix(created.Link, base+"/view#shlink:/") {
		t.Fatalf("link %q", created.Link)
	}

	r := newCLI(t)
	r.initVault() // "Alice Example", as the sender
	wrong := filepath.Join(r.dir, "wrong.txt")
	os.WriteFile(wrong, []byte("0000\n"), 0o600)
	reps := importReports(t, r, 1, created.Link, "--passcode-file", wrong)
	if len(reps) != 1 || !strings.Contains(reps[0]["error"].(string), "wrong passcode (9 attempts left)") {
		t.Fatalf("wrong passcode: %v", reps)
	}
	if n := len(r.list("list")); n != 1 {
		t.Fatalf("a refused link added records: %d", n)
	}
	// No passcode and no terminal: refused, nothing asked of argv.
	if reps := importReports(t, r, 1, created.Link); !strings.Contains(reps[0]["error"].(string), "passcode") {
		t.Fatalf("no passcode: %v", reps)
	}

	r.env["PHR_SHARE_PASSCODE"] = "4711"
	reps = importReports(t, r, 0, created.Link, "--recipient", "Alice (her own copy)")
	host := strings.TrimPrefix(base, "http://")
	if len(reps) != 1 || reps[0]["file"] != "For Dr. Rivera ("+host+")" || reps[0]["format"] != "fhir" || reps[0]["added"].(float64) < 2 {
		t.Fatalf("import: %v", reps)
	}
	meds := r.list("list", "medication")
	if len(meds) != 1 || meds[0]["display"] != "metformin — 500 mg" {
		t.Fatalf("medications: %v", meds)
	}
	var shown map[string]any
	json.Unmarshal([]byte(r.ok("show", meds[0]["id"].(string), "--json")), &shown)
	prov := shown["provenance"].(map[string]any)
	if prov["file"] != "For Dr. Rivera ("+host+")" || prov["system"] != host || prov["importer"] != "fhir" {
		t.Fatalf("provenance %v", prov)
	}
	if out := sender.ok("share", "log", "--", mustID(t, sender)); !strings.Contains(out, "Alice (her own copy)") {
		t.Fatalf("the share's log does not name the recipient: %s", out)
	}

	// The QR code of the link: fetched like the link; nothing new.
	reps = importReports(t, r, 0, qr)
	if len(reps) != 1 || reps[0]["added"].(float64) != 0 || reps[0]["duplicates"].(float64) < 2 {
		t.Fatalf("QR import: %v", reps)
	}
}

// mustID is the ID of the sender's only share.
func mustID(t *testing.T, c *cli) string {
	t.Helper()
	var list []map[string]any
	json.Unmarshal([]byte(c.ok("share", "list", "--json")), &list)
	if len(list) == 0 {
		t.Fatal("no share")
	}
	return list[0]["id"].(string)
}

// TestImportDirectLink: a U-flag link of phrd (one file, fetched with a
// GET) imports; an expired link is refused without a request.
func TestImportDirectLink(t *testing.T) {
	base, _ := startPHRD(t, nil)
	ctx := context.Background()
	c := &api.Client{BaseURL: base}
	if _, err := c.CreateAccount(ctx, "bob", "bob's long passphrase"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Login(ctx, api.SessionRequest{Username: "bob", Passphrase: "bob's long passphrase"}); err != nil {
		t.Fatal(err)
	}
	bundle, err := os.ReadFile("../../../shared/testdata/shc/input/images/example-00-a-fhirBundle.json")
	if err != nil {
		t.Fatal(err)
	}
	key := share.NewKey()
	jwe, _ := share.EncryptFile(key, share.ContentTypeFHIR, bundle, true)
	resp, err := c.CreateShare(ctx, api.CreateShareRequest{Files: []api.ShareFile{{ContentType: share.ContentTypeFHIR, JWE: jwe}}, ExpiresAt: time.Now().Add(time.Hour), Direct: true})
	if err != nil {
		t.Fatal(err)
	}
	p := resp.Payload(key)
	if !p.HasFlag(share.FlagDirect) {
		t.Fatalf("flag %q", p.Flag)
	}
	link, _ := share.Encode(p)
	r := newCLI(t)
	r.initVault()
	reps := importReports(t, r, 0, link, "--accept-patient-mismatch")
	if len(reps) != 1 || reps[0]["added"].(float64) != 4 {
		t.Fatalf("%v", reps)
	}
	p.Exp = time.Now().Add(-time.Minute).Unix()
	expired, _ := share.Encode(p)
	if reps := importReports(t, r, 1, expired); !strings.Contains(reps[0]["error"].(string), "expired") {
		t.Fatalf("%v", reps)
	}
}

// TestImportSplitCardImages: the three QR codes of the specification's
// split card, one per image, import as one card.
func TestImportSplitCardImages(t *testing.T) {
	r := newCLI(t)
	r.initVault()
	dir := t.TempDir()
	var paths []string
	for i := range 3 {
		text, err := os.ReadFile("../../../shared/testdata/shc/input/images/example-02-f-qr-code-numeric-value-" + string(rune('0'+i)) + ".txt")
		if err != nil {
			t.Fatal(err)
		}
		b, err := share.QRPNG(strings.TrimSpace(string(text)), 600)
		if err != nil {
			t.Fatal(err)
		}
		// Re-encode as RGBA, as a screenshot would be.
		img, _ := png.Decode(bytes.NewReader(b))
		rgba := image.NewRGBA(img.Bounds())
		draw.Draw(rgba, rgba.Bounds(), img, image.Point{}, draw.Src)
		var out bytes.Buffer
		png.Encode(&out, rgba)
		p := filepath.Join(dir, "card-"+string(rune('1'+i))+".png")
		os.WriteFile(p, out.Bytes(), 0o600)
		paths = append(paths, p)
	}
	reps := importReports(t, r, 0, append(paths, "--accept-patient-mismatch")...)
	if len(reps) != 1 || reps[0]["file"] != "card-1.png + card-2.png + card-3.png" || reps[0]["format"] != "shc" || reps[0]["added"].(float64) == 0 {
		t.Fatalf("%v", reps)
	}
	// One of them alone: refused, and the error says what to do.
	code, out, _ := r.run("import", paths[1])
	if code != 1 || !strings.Contains(out, "missing") || !strings.Contains(out, "together") {
		t.Fatalf("one image: exit %d: %s", code, out)
	}
}
