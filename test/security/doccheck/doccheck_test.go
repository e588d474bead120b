// Package doccheck keeps docs/security.md pointing at tests that exist:
// every claim there names the test that backs it, and a test renamed or
// removed would leave the claim backed by nothing while the document
// still says otherwise.
package doccheck

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// root is the repository, from this package's directory.
const root = "../../.."

// docNames are the test and fuzz names docs/security.md cites: a
// backquoted TestX or FuzzX, with a /subtest path allowed after it.
var docNames = regexp.MustCompile("`((?:Test|Fuzz)[A-Za-z0-9_]+)(/[^`]*)?`")

// defined are the top-level Test and Fuzz functions of the repository's
// test files.
var defined = regexp.MustCompile(`(?m)^func ((?:Test|Fuzz)[A-Za-z0-9_]+)\(`)

func repoTests(t *testing.T) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "node_modules" || strings.HasPrefix(d.Name(), ".") && path != root) {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range defined.FindAllSubmatch(src, -1) {
			out[string(m[1])] = append(out[string(m[1])], path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestSecurityDocNamesRealTests: every test docs/security.md names is a
// test function of the repository, and every fuzz target of the
// repository is named there (the document says every parser of outside
// input is fuzzed, and lists them).
func TestSecurityDocNamesRealTests(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join(root, "docs", "security.md"))
	if err != nil {
		t.Fatal(err)
	}
	tests := repoTests(t)
	named := map[string]bool{}
	for _, m := range docNames.FindAllSubmatch(doc, -1) {
		named[string(m[1])] = true
	}
	if len(named) < 50 {
		t.Fatalf("only %d test names found in docs/security.md: the pattern no longer matches how it cites tests", len(named))
	}
	var missing, unlisted []string
	for n := range named {
		if len(tests[n]) == 0 {
			missing = append(missing, n)
		}
	}
	for n := range tests {
		if strings.HasPrefix(n, "Fuzz") && !named[n] {
			unlisted = append(unlisted, n+" ("+strings.Join(tests[n], ", ")+")")
		}
	}
	sort.Strings(missing)
	sort.Strings(unlisted)
	for _, n := range missing {
		t.Errorf("docs/security.md names %s, which no test file defines", n)
	}
	for _, n := range unlisted {
		t.Errorf("fuzz target %s is not listed in docs/security.md", n)
	}
	t.Logf("%d test names of docs/security.md checked", len(named))
}
