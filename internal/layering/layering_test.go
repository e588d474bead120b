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
	{"go.etcd.io/bbolt", []string{mod + "pkg/vault"}, "only the vault touches the storage engine"},
	{"filippo.io/age", []string{mod + "pkg/vault", mod + "pkg/server", mod + "cmd/"}, "keys are the vault's; the CLI and phrd only parse or make identities"},
	{"github.com/spf13/cobra", []string{mod + "cmd/phr"}, "cobra is the CLI's"},
	{"github.com/labstack/echo", []string{mod + "pkg/server", mod + "pkg/shlhost", mod + "cmd/phrd", mod + "cmd/phr-load"}, "echo is the daemon's (and the load generator's yardstick)"},
	{mod + "cmd/", nil, "nothing imports a command"},
	{mod + "pkg/importers", []string{mod + "pkg/importers", mod + "pkg/server", mod + "cmd/"}, "importers sit above the vault"},
	{mod + "pkg/share", []string{mod + "pkg/share", mod + "pkg/vault/sharestore", mod + "pkg/shlhost", mod + "pkg/server", mod + "pkg/importers/shlink", mod + "cmd/"}, "sharing sits beside the vault (the link importer receives links)"},
	{mod + "pkg/server", []string{mod + "pkg/server", mod + "pkg/shlhost", mod + "cmd/"}, "the server is a leaf (the share host may use only its api package: the server imports the host)"},
	{mod + "pkg/vault", []string{mod + "pkg/vault", mod + "pkg/importers", mod + "pkg/shlhost", mod + "pkg/server", mod + "cmd/"}, "record does not know the vault"},
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
