// Package layering holds a test that enforces the direction of imports
// described in docs/design.md.
package layering

import (
	"bufio"
	"bytes"
	"os/exec"
	"strings"
	"testing"
)

const mod = "github.com/phr-project/phr/"

// rules: a package (by prefix) may import a dependency (by prefix) only if
// allowed says so. Test files are not checked.
var rules = []struct {
	dep     string
	allowed []string // importer prefixes
	why     string
}{
	{"go.etcd.io/bbolt", []string{mod + "pkg/vault", mod + "pkg/sharestore", mod + "pkg/kv"}, "only the stores touch the storage engine: the vault, the share store and the storage interface under phrd's (pkg/kv)"},
	{"filippo.io/age", []string{mod + "pkg/vault", mod + "pkg/server", mod + "cmd/"}, "keys are the vault's; the CLI and phrd only parse or make identities"},
	{"golang.org/x/crypto/chacha20poly1305", []string{mod + "internal/seal"}, "the stores seal through internal/seal, the one sealing step"},
	{mod + "internal/seal", []string{mod + "pkg/vault", mod + "pkg/sharestore", mod + "pkg/server"}, "internal/seal is the sealing step of the stores (vault, share store, phrd's session store)"},
	{"github.com/spf13/cobra", []string{mod + "cmd/phr"}, "cobra is the CLI's"},
	{"github.com/labstack/echo", []string{mod + "pkg/server", mod + "pkg/shlhost", mod + "cmd/phrd", mod + "cmd/phr-load"}, "echo is the daemon's (and the load generator's yardstick)"},
	{mod + "cmd/", nil, "nothing imports a command"},
	{mod + "pkg/importers", []string{mod + "pkg/importers", mod + "pkg/server", mod + "cmd/"}, "importers sit above the vault"},
	{mod + "pkg/share", []string{mod + "pkg/share", mod + "pkg/fhirdoc", mod + "pkg/sharestore", mod + "pkg/shlhost", mod + "pkg/server", mod + "pkg/importers/shlink", mod + "pkg/importers/qrimage", mod + "cmd/"}, "sharing sits beside the vault (the link importers receive links; the FHIR documents check a link's profile)"},
	{mod + "pkg/fhirdoc", []string{mod + "pkg/fhirdoc", mod + "pkg/server", mod + "cmd/"}, "the FHIR documents are made by the CLI and phrd; the protocol (pkg/share) carries them and does not know them"},
	{mod + "pkg/server", []string{mod + "pkg/server", mod + "pkg/shlhost", mod + "cmd/"}, "the server is a leaf (the share host may use only its api package: the server imports the host)"},
	{mod + "test/", nil, "the end-to-end suites and their kits are tests"},
	{mod + "internal/vaulttest", nil, "a test kit is imported by tests only"},
	{mod + "internal/browsertest", nil, "a test kit is imported by tests only"},
	{mod + "pkg/vault", []string{mod + "pkg/vault", mod + "pkg/importers/pipeline", mod + "pkg/importers/shlink", mod + "pkg/shlhost", mod + "pkg/server", mod + "cmd/"}, "record does not know the vault; of the importers, only the pipeline that stores (and the link importer, which runs it) does"},
}

func TestLayering(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`, mod+"...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	checked := 0
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		pkg, imports := f[0], f[1:]
		checked++
		if testKit(pkg) {
			continue
		}
		for _, imp := range imports {
			for _, r := range rules {
				if !strings.HasPrefix(imp, r.dep) {
					continue
				}
				ok := false
				for _, a := range r.allowed {
					if strings.HasPrefix(pkg, a) {
						ok = true
					}
				}
				if !ok {
					t.Errorf("%s imports %s: %s", pkg, imp, r.why)
				}
			}
		}
	}
	if checked < 10 {
		t.Fatalf("checked only %d packages", checked)
	}
}

// testKit reports whether pkg is test support: imported by tests only
// (the rules above say so), so, like a test file, it may import what its
// tests need (a kit that makes vaults imports the vault and age).
func testKit(pkg string) bool {
	for _, p := range []string{mod + "test/", mod + "internal/vaulttest", mod + "internal/browsertest"} {
		if strings.HasPrefix(pkg, p) {
			return true
		}
	}
	return false
}

// light are the packages that parse a format or talk to phrd: they must
// not link the storage engine or the key library (go list -deps), so that
// a parser, a fuzz target or a client of the API stays small and storage
// is plugged in by the caller.
var light = []string{
	"pkg/record", "pkg/terminology", "pkg/share", "pkg/fhirdoc", "pkg/server/api",
	"pkg/importers", "pkg/importers/ccda", "pkg/importers/fhir", "pkg/importers/applehealth",
	"pkg/importers/csvimport", "pkg/importers/shc", "pkg/importers/qrimage", "pkg/importers/importertest",
}

func TestLightPackages(t *testing.T) {
	for _, p := range light {
		out, err := exec.Command("go", "list", "-deps", mod+p).Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", p, err)
		}
		for _, dep := range strings.Fields(string(out)) {
			if dep == "go.etcd.io/bbolt" || strings.HasPrefix(dep, "go.etcd.io/bbolt/") || dep == "filippo.io/age" {
				t.Errorf("%s links %s", p, dep)
			}
		}
	}
}
