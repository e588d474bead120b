package viewer

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestJavaScriptUnits runs the node tests of the page's pure functions
// (jstest/*.test.mjs: link parsing, decryption of the shared vectors, FHIR
// to text, dates, units, doses, chart windows, the strings table) once per
// time zone: dates must read the same in each. Without node the test
// skips, unless CI is set: then it fails, so CI cannot pass without them.
func TestJavaScriptUnits(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("node is not installed, and CI is set: the viewer's JavaScript tests must run in CI (node 20 or later)")
		}
		t.Skip("node is not installed; skipping the viewer's JavaScript tests")
	}
	files, err := filepath.Glob(filepath.Join("jstest", "*.test.mjs"))
	if err != nil || len(files) < 8 {
		t.Fatalf("JavaScript tests missing: %d found (%v)", len(files), err)
	}
	for _, tz := range []string{"UTC", "America/Los_Angeles", "Pacific/Kiritimati"} {
		t.Run(tz, func(t *testing.T) {
			// One process runs them all (jstest/all.mjs imports each file).
			cmd := exec.Command(node, "--test", "--test-reporter=spec", filepath.Join("jstest", "all.mjs"))
			cmd.Env = append(os.Environ(), "TZ="+tz, "NO_COLOR=1", "FORCE_COLOR=0")
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("node --test with TZ=%s: %v\n%s", tz, err, out)
			}
			// Every file ran: its first test's name is in the report.
			if !strings.Contains(string(out), "pass") || strings.Count(string(out), "✔") < 30 {
				t.Fatalf("node ran fewer tests than expected:\n%s", out)
			}
		})
	}
}
