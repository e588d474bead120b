package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/phr-project/phr/pkg/server/api"
	"github.com/phr-project/phr/pkg/share"
)

// TestSharePasscodeSources: a share's passcode need not be in argv (where
// other local users see it): it comes from --passcode-file (a file, or -
// for standard input), PHR_SHARE_PASSCODE, or --ask-passcode (a prompt,
// so a terminal); --passcode still works. The link opens with that
// passcode only.
func TestSharePasscodeSources(t *testing.T) {
	c, _ := loggedIn(t)
	c.ok("log", "med", "metformin")
	file := filepath.Join(c.dir, "passcode.txt")
	os.WriteFile(file, []byte("from-a-file-4711\n"), 0o600)
	create := func(stdin string, env map[string]string, args ...string) (int, string, string) {
		t.Helper()
		var out, errb bytes.Buffer
		getenv := func(k string) string {
			if v, ok := env[k]; ok {
				return v
			}
			return c.env[k]
		}
		code := run(context.Background(), append([]string{"share", "create", "medication", "--expires", "1h", "--json"}, args...), strings.NewReader(stdin), &out, &errb, getenv)
		return code, out.String(), errb.String()
	}
	opens := func(t *testing.T, out, passcode string) {
		t.Helper()
		var created struct{ Link string }
		if err := json.Unmarshal([]byte(out), &created); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		p, err := share.Decode(created.Link)
		if err != nil {
			t.Fatal(err)
		}
		if passcode == "" {
			if strings.Contains(p.Flag, "P") {
				t.Fatalf("flag %q without a passcode", p.Flag)
			}
			return
		}
		if !strings.Contains(p.Flag, "P") {
			t.Fatalf("flag %q", p.Flag)
		}
		if st, _ := manifest(t, p, `{"recipient":"Dr. R","passcode":"wrong"}`); st != 401 {
			t.Fatalf("wrong passcode: %d", st)
		}
		if st, body := manifest(t, p, `{"recipient":"Dr. R","passcode":"`+passcode+`"}`); st != 200 {
			t.Fatalf("passcode %q: %d %s", passcode, st, body)
		}
	}
	for _, tt := range []struct {
		name     string
		stdin    string
		env      map[string]string
		args     []string
		passcode string
	}{
		{"file", "", nil, []string{"--passcode-file", file}, "from-a-file-4711"},
		{"standard input", "from-stdin-0815\r\nignored\n", nil, []string{"--passcode-file", "-"}, "from-stdin-0815"},
		{"environment", "", map[string]string{"PHR_SHARE_PASSCODE": "from-env-2468"}, nil, "from-env-2468"},
		{"flag wins over environment", "", map[string]string{"PHR_SHARE_PASSCODE": "from-env-2468"}, []string{"--passcode-file", file}, "from-a-file-4711"},
		{"argv still works", "", nil, []string{"--passcode", "from-argv-1357"}, "from-argv-1357"},
		{"none", "", nil, nil, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := create(tt.stdin, tt.env, tt.args...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			opens(t, out, tt.passcode)
		})
	}
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"two sources", []string{"--passcode", "x", "--passcode-file", file}, "one of"},
		{"prompt without a terminal", []string{"--ask-passcode"}, "terminal"},
		{"empty file", []string{"--passcode-file", os.DevNull}, "empty"},
		{"no such file", []string{"--passcode-file", filepath.Join(c.dir, "nope")}, "nope"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, _, errOut := create("", nil, tt.args...)
			if code == 0 || !strings.Contains(errOut, tt.want) {
				t.Fatalf("exit %d: %s", code, errOut)
			}
		})
	}
	var list []api.ShareInfo
	json.Unmarshal([]byte(c.ok("share", "list", "--json")), &list)
	if len(list) != 6 {
		t.Fatalf("%d shares", len(list))
	}
}

// TestRemoteLoginPassphrase: `phr remote login` reads the phrd account's
// passphrase from PHRD_PASSPHRASE, so that one script can hold both it
// and the vault's (PHR_PASSPHRASE); PHR_PASSPHRASE alone still works with
// a warning; a wrong passphrase is said to be one.
func TestRemoteLoginPassphrase(t *testing.T) {
	base, _ := startPHRD(t, nil)
	if _, err := (&api.Client{BaseURL: base}).CreateAccount(context.Background(), "alice", "alice's long passphrase"); err != nil {
		t.Fatal(err)
	}
	c := newCLI(t)
	c.env["PHR_PASSPHRASE"] = "the vault's passphrase"
	c.env["PHRD_PASSPHRASE"] = "wrong passphrase here"
	code, _, errOut := c.run("remote", "login", base, "--user", "alice")
	if code != 1 || !strings.Contains(errOut, "wrong passphrase") || strings.Contains(errOut, "run phr remote login again") {
		t.Fatalf("wrong passphrase: %d %s", code, errOut)
	}
	c.env["PHRD_PASSPHRASE"] = "alice's long passphrase"
	code, _, errOut = c.run("remote", "login", base, "--user", "alice")
	if code != 0 || strings.Contains(errOut, "warning") {
		t.Fatalf("login with PHRD_PASSPHRASE beside PHR_PASSPHRASE: %d %s", code, errOut)
	}
	delete(c.env, "PHRD_PASSPHRASE")
	c.env["PHR_PASSPHRASE"] = "alice's long passphrase"
	code, _, errOut = c.run("remote", "login", base, "--user", "alice")
	if code != 0 || !strings.Contains(errOut, "PHRD_PASSPHRASE") {
		t.Fatalf("login with PHR_PASSPHRASE only: %d %s", code, errOut)
	}
}
