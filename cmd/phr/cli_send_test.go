package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
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
