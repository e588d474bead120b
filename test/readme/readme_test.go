// Package readme runs the commands of the repository's README as written:
// every ```sh block, in order, as a newcomer on a fresh machine would paste
// them (a new HOME; phr and phrd built from this tree).
package readme

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/phr-project/phr/internal/syncbuf"
)

// block is one ```sh block of the README.
type block struct {
	line int // of the opening fence, for messages
	text string
}

func readmeBlocks(t *testing.T) []block {
	t.Helper()
	data, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var out []block
	var cur *block
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		l := sc.Text()
		switch {
		case cur == nil && strings.TrimSpace(l) == "```sh":
			cur = &block{line: n}
		case cur != nil && strings.TrimSpace(l) == "```":
			out = append(out, *cur)
			cur = nil
		case cur != nil:
			cur.text += l + "\n"
		}
	}
	if len(out) < 8 {
		t.Fatalf("only %d sh blocks in README.md", len(out))
	}
	return out
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return fmt.Sprint(ln.Addr().(*net.TCPAddr).Port)
}

func TestReadmeCommands(t *testing.T) {
	if testing.Short() {
		t.Skip("builds phr and phrd and runs the README")
	}
	tree, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	// The commands run in a copy of the tree: what they write (an export,
	// a PDF, a key file) lands in the copy, never in the repository.
	root := filepath.Join(tmp, "phr")
	copyTree(t, tree, root)
	home := filepath.Join(tmp, "home")
	bin := filepath.Join(tmp, "bin")
	for _, d := range []string{home, bin} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	// The README's own address would clash with anything on this machine:
	// the same commands run on a free port.
	port := freePort(t)
	env := []string{
		"HOME=" + home, "PATH=" + bin + string(os.PathListSeparator) + os.Getenv("PATH"),
		"GOBIN=" + bin, "GOCACHE=" + goEnv(t, "GOCACHE"), "GOMODCACHE=" + goEnv(t, "GOMODCACHE"),
		"GOFLAGS=" + os.Getenv("GOFLAGS"), "GOPROXY=" + goEnv(t, "GOPROXY"), "TMPDIR=" + tmp, "LANG=C.UTF-8",
	}
	var background []*exec.Cmd
	t.Cleanup(func() {
		for _, c := range background {
			syscall.Kill(-c.Process.Pid, syscall.SIGTERM)
			c.Wait()
		}
	})
	run := func(b block, script string, timeout time.Duration) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, "bash", "-e", "-o", "pipefail", "-c", script)
		cmd.Dir, cmd.Env = root, env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("README.md:%d: %v\n$ %s\n%s", b.line, err, strings.TrimSpace(script), out)
		}
		return string(out)
	}
	ran := 0
	for _, b := range readmeBlocks(t) {
		text := strings.ReplaceAll(b.text, "127.0.0.1:8080", "127.0.0.1:"+port)
		switch {
		case strings.Contains(text, "scripts/test.sh"):
			continue // the test suite itself
		case strings.Contains(text, "phr demo"):
			out := runDemo(t, root, env, text)
			if !strings.Contains(out, "#shlink:/") {
				t.Fatalf("README.md:%d: the demo printed no link:\n%s", b.line, out)
			}
			ran++
			continue
		}
		var script []string
		for _, l := range strings.Split(text, "\n") {
			cmd := strings.TrimSpace(stripComment(l))
			if cmd == "" {
				continue
			}
			if strings.HasSuffix(cmd, "&") {
				// A server: start it, and go on once it answers.
				c := exec.Command("bash", "-c", strings.TrimSuffix(cmd, "&"))
				c.Dir, c.Env = root, env
				c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
				if err := c.Start(); err != nil {
					t.Fatal(err)
				}
				background = append(background, c)
				waitPort(t, "127.0.0.1:"+port, 3*time.Minute)
				continue
			}
			script = append(script, cmd)
		}
		out := run(b, strings.Join(script, "\n"), 5*time.Minute)
		t.Logf("README.md:%d: %d commands ran", b.line, len(script))
		checkBlock(t, b, out)
		ran++
	}
	if ran < 7 {
		t.Fatalf("ran %d blocks", ran)
	}
}

// copyTree copies the source tree at src to dst, leaving out version
// control and the binaries a build leaves at the top.
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	skip := map[string]bool{".git": true, "phr": true, "phrd": true}
	err := filepath.WalkDir(src, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		if filepath.Dir(rel) == "." && skip[rel] {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		target := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(target, 0o700)
		case d.Type().IsRegular():
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			return os.WriteFile(target, data, 0o600)
		}
		return nil // sockets, symlinks: nothing the README needs
	})
	if err != nil {
		t.Fatal(err)
	}
}

// checkBlock checks what some blocks must have printed.
func checkBlock(t *testing.T, b block, out string) {
	t.Helper()
	musts := map[string][]string{
		"phr init":            {"Recovery code"},
		"phr import docs":     {"added"},
		"phr share show --qr": {"#shlink:/"},
		"phr share revoke":    {"Revoked share"},
	}
	for key, wants := range musts {
		if !strings.Contains(b.text, key) {
			continue
		}
		for _, w := range wants {
			if !strings.Contains(out, w) {
				t.Errorf("README.md:%d: output lacks %q:\n%s", b.line, w, out)
			}
		}
	}
}

// stripComment drops a shell comment that starts outside quotes.
func stripComment(l string) string {
	var quote rune
	for i, r := range l {
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote == 0 && (r == '\'' || r == '"'):
			quote = r
		case quote == 0 && r == '#' && (i == 0 || l[i-1] == ' ' || l[i-1] == '\t'):
			return l[:i]
		}
	}
	return l
}

var linkRE = regexp.MustCompile(`#shlink:/`)

// runDemo runs the demo, which serves until interrupted: it waits for the
// link, then sends Ctrl-C and expects a clean end.
func runDemo(t *testing.T, root string, env []string, text string) string {
	t.Helper()
	cmd := exec.Command("bash", "-c", "exec "+strings.TrimSpace(stripComment(strings.TrimSpace(text))))
	cmd.Dir, cmd.Env = root, env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// The demo writes from the command's copying goroutine while this one
	// reads: the buffer is locked.
	var out syncbuf.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(4 * time.Minute)
	for !linkRE.MatchString(out.String()) && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
	}
	syscall.Kill(-cmd.Process.Pid, syscall.SIGINT)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(time.Minute):
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		t.Fatalf("the demo did not end on Ctrl-C:\n%s", out.String())
	}
	return out.String()
}

func waitPort(t *testing.T, addr string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("nothing listens on %s after %v", addr, within)
}

func goEnv(t *testing.T, name string) string {
	t.Helper()
	out, err := exec.Command("go", "env", name).Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(out))
}
