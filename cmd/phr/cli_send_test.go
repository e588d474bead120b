package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/phr-project/phr/pkg/fhirdoc"
	"github.com/phr-project/phr/pkg/record"
	"github.com/phr-project/phr/pkg/share"
)

// pdfToText extracts a PDF's text with poppler's pdftotext (skipped when
// it is missing, unless CI is set).
func pdfToText(t *testing.T, pdf []byte) string {
	t.Helper()
	if _, err := exec.LookPath("pdftotext"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("pdftotext is missing (apt-get install poppler-utils)")
		}
		t.Skip("pdftotext is missing")
	}
	cmd := exec.Command("pdftotext", "-layout", "-", "-")
	cmd.Stdin = bytes.NewReader(pdf)
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(strings.Fields(string(out)), " ")
}

func TestExportPDF(t *testing.T) {
	c := newCLI(t)
	c.initVault()
	c.ok("import", "--accept-patient-mismatch", shared+"ccda/hl7-c-cda-examples/Documents/CCD/CCD 2/CCD.xml")
	c.ok("log", "med", "metformin", "--dose", "500 mg", "--start", "2026-01-10")
	c.ok("log", "vital", "bp", "120/80", "--at", "2026-02-01T08:00")
	c.ok("log", "vital", "bp", "131/84", "--at", "2026-02-08T08:00")
	out := filepath.Join(t.TempDir(), "summary.pdf")
	c.ok("export", "--format", "pdf", "-o", out)
	pdf, err := os.ReadFile(out)
	if err != nil || !bytes.HasPrefix(pdf, []byte("%PDF-")) {
		t.Fatalf("no PDF: %v", err)
	}
	text := pdfToText(t, pdf)
	for _, w := range []string{"Health summary", "Alice Example", "No known allergy", "metformin", "131/84 mmHg", "2026-02-08 08:00", "Good Health HIE", "entered by the patient"} {
		if !strings.Contains(text, w) {
			t.Errorf("%q missing in:\n%s", w, text)
		}
	}
	// Standard output works when it is not a terminal.
	if code, stdout, errOut := c.run("export", "--format", "pdf", "vital"); code != 0 || !strings.HasPrefix(stdout, "%PDF-") {
		t.Fatalf("pdf to stdout: %d %s", code, errOut)
	}
}

func TestShareDirect(t *testing.T) {
	c, _ := loggedIn(t)
	c.ok("log", "allergy", "penicillin", "--reaction", "hives")
	out := c.ok("share", "create", "allergy", "--direct", "--expires", "30m", "--json")
	var created struct{ ID, Link, Flag string }
	if err := json.Unmarshal([]byte(out), &created); err != nil {
		t.Fatal(err)
	}
	p, err := share.Decode(created.Link)
	if err != nil || p.Flag != "U" || created.Flag != "U" || p.Exp == 0 {
		t.Fatalf("payload %+v %v", p, err)
	}
	// The url answers a GET with the one file; a GET without a recipient
	// is refused.
	if resp, err := http.Get(p.URL); err != nil || resp.StatusCode != 400 {
		t.Fatalf("GET without recipient: %v %v", resp, err)
	}
	got, err := share.Retrieve(context.Background(), p, share.RetrieveOptions{Recipient: "Dr. Rivera"})
	if err != nil || len(got.Files) != 1 || !strings.Contains(string(got.Files[0].Data), "penicillin") {
		t.Fatalf("retrieve: %+v %v", got, err)
	}
	log := c.ok("share", "log", created.ID)
	if !strings.Contains(log, "Dr. Rivera") || !strings.Contains(log, "ok") {
		t.Fatalf("log: %s", log)
	}
	for _, tt := range []struct {
		args []string
		env  string
		want string
	}{
		{[]string{"--direct", "--passcode", "4711"}, "", "no passcode"},
		{[]string{"--direct", "--ask-passcode"}, "", "no passcode"},
		{[]string{"--direct"}, "4711", "PHR_SHARE_PASSCODE"},
		{[]string{"--profile", "ktc", "--passcode", "4711"}, "", "no passcode"},
		{[]string{"--profile", "ktc", "--summary"}, "", "no --summary"},
		{[]string{"--profile", "ktc", "--long-term"}, "", "no --long-term"},
		{[]string{"--profile", "fhir"}, "", "only profile is ktc"},
		{[]string{"--story-file", "x.txt"}, "", "goes with --profile ktc"},
		{[]string{"--direct"}, "", "--expires is required"},
	} {
		args := append([]string{"share", "create", "allergy"}, tt.args...)
		if !slices.Contains(tt.args, "--direct") || tt.want != "--expires is required" {
			args = append(args, "--expires", "30m")
		}
		c.env["PHR_SHARE_PASSCODE"] = tt.env
		code, _, errOut := c.run(args...)
		if code == 0 || !strings.Contains(errOut, tt.want) {
			t.Errorf("%v: exit %d, %q; want an error with %q", tt.args, code, errOut, tt.want)
		}
	}
}

func TestShareKTC(t *testing.T) {
	c, _ := loggedIn(t)
	c.ok("log", "allergy", "penicillin", "--reaction", "hives")
	c.ok("log", "med", "lisinopril", "--dose", "10 mg")
	c.ok("log", "condition", "hypertension")
	c.ok("log", "symptom", "headache") // not selected
	story := filepath.Join(c.dir, "story.txt")
	os.WriteFile(story, []byte("I get dizzy when I stand up too fast.\n\nPlease call my daughter first."), 0o600)
	out := c.ok("share", "create", "allergy", "medication", "condition", "--profile", "ktc", "--story-file", story, "--expires", "15m", "--label", "For check-in", "--json")
	var created struct{ ID, Link string }
	if err := json.Unmarshal([]byte(out), &created); err != nil {
		t.Fatal(err)
	}
	p, err := share.Decode(created.Link)
	if err != nil {
		t.Fatal(err)
	}
	if err := fhirdoc.CheckKTCPayload(p); err != nil {
		t.Fatalf("the link breaks the profile: %v", err)
	}
	got, err := share.Retrieve(context.Background(), p, share.RetrieveOptions{Recipient: "Verona Health System"})
	if err != nil || len(got.Files) != 1 || got.Files[0].ContentType != share.ContentTypeFHIR {
		t.Fatalf("retrieve: %+v %v", got, err)
	}
	data := got.Files[0].Data
	if err := fhirdoc.CheckKTCBundle(data); err != nil {
		t.Fatalf("the bundle breaks the profile: %v", err)
	}
	var b struct {
		Entry []struct{ Resource map[string]any }
	}
	json.Unmarshal(data, &b)
	pdfs := map[string]string{}
	var types []string
	for _, e := range b.Entry {
		r := record.Resource(e.Resource)
		types = append(types, r.Type())
		if r.Type() == "DocumentReference" {
			pdf, _ := base64.StdEncoding.DecodeString(r.Str("content.0.attachment.data"))
			pdfs[r.Codings("type")[0].Code] = pdfToText(t, pdf)
		}
	}
	if strings.Contains(string(data), "headache") {
		t.Error("an unselected record was shared")
	}
	if !strings.Contains(pdfs["60591-5"], "penicillin") || !strings.Contains(pdfs["60591-5"], "lisinopril") || !strings.Contains(pdfs["60591-5"], "hypertension") {
		t.Errorf("the rendered PDF lacks the shared records: %s", pdfs["60591-5"])
	}
	if !strings.Contains(pdfs["51855-5"], "Please call my daughter first.") {
		t.Errorf("the story PDF: %s", pdfs["51855-5"])
	}
	if types[0] != "Patient" || len(types) != 6 {
		t.Errorf("entries %v", types)
	}
	if log := c.ok("share", "log", created.ID); !strings.Contains(log, "Verona Health System") {
		t.Fatalf("log: %s", log)
	}
}
