// Package e2e holds what phr's end-to-end security tests share: it builds
// the real binaries, runs them as processes with a clean environment,
// serves an in-process server on a random 127.0.0.1 port, and searches
// bytes for plaintext in the encodings a leak could take (see Forms).
//
// It imports nothing of phr's but internal/syncbuf (a buffer); the
// in-process server the suites share is in phrdtest, beside it.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/phr-project/phr/internal/syncbuf"
)

// Build compiles the main package pkg (an import path) into dir and
// returns the binary's path. It runs the go command on PATH (or
// $GOROOT/bin/go), so the binary is built from the working tree the test
// runs in.
func Build(dir, pkg string) (string, error) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		if root := os.Getenv("GOROOT"); root != "" {
			goTool = filepath.Join(root, "bin", "go")
		} else {
			return "", fmt.Errorf("no go command to build %s: %w", pkg, err)
		}
	}
	out := filepath.Join(dir, filepath.Base(pkg))
	cmd := exec.Command(goTool, "build", "-o", out, pkg)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build %s: %v\n%s", pkg, err, stderr.String())
	}
	return out, nil
}

// Main builds the main package pkg (an import path) into a temporary
// directory, sets *bin to the binary's path, runs the tests and exits
// with their code; for a package's TestMain. A failed build exits 1
// before any test runs.
func Main(m *testing.M, pkg string, bin *string) {
	dir, err := os.MkdirTemp("", "phr-e2e-bin-")
	if err == nil {
		*bin, err = Build(dir, pkg)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// CommandTimeout bounds every process a CLI runs.
const CommandTimeout = 3 * time.Minute

// CLI runs the phr binary as a process. Env is the whole environment the
// process gets besides PATH: nothing of the test's own environment (a
// PHR_PASSPHRASE or XDG_CONFIG_HOME of the developer's shell) leaks in.
type CLI struct {
	Bin string
	Env map[string]string
}

// NewCLI is a phr of the binary bin with its own home: its vault is
// HOME/data/vault.phr and its configuration HOME/config.
func NewCLI(bin, home string) *CLI {
	return &CLI{Bin: bin, Env: map[string]string{
		"HOME":           home,
		"PHR_VAULT":      filepath.Join(home, "data", "vault.phr"),
		"PHR_CONFIG_DIR": filepath.Join(home, "config"),
	}}
}

// Result is what a finished command did.
type Result struct {
	Code           int
	Stdout, Stderr string
	Elapsed        time.Duration
}

func (c *CLI) command(ctx context.Context, env map[string]string, args []string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, c.Bin, args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	for k, v := range c.Env {
		if _, ok := env[k]; !ok {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
	}
	for k, v := range env {
		if v != "" {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
	}
	return cmd
}

// RunEnv runs phr with args; env adds to (or, with "", removes from) the
// CLI's environment for this one run.
func (c *CLI) RunEnv(t testing.TB, env map[string]string, args ...string) Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), CommandTimeout)
	defer cancel()
	cmd := c.command(ctx, env, args)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	res := Result{Stdout: stdout.String(), Stderr: stderr.String(), Elapsed: time.Since(start)}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee) && ee.ExitCode() >= 0:
		res.Code = ee.ExitCode()
	default:
		t.Fatalf("phr %s: %v", strings.Join(args, " "), err)
	}
	return res
}

// Run runs phr with args.
func (c *CLI) Run(t testing.TB, args ...string) Result {
	t.Helper()
	return c.RunEnv(t, nil, args...)
}

// OK runs phr with args, fails the test unless it exits 0, and returns
// its standard output.
func (c *CLI) OK(t testing.TB, args ...string) string {
	t.Helper()
	return c.OKEnv(t, nil, args...)
}

// ID runs phr with args and --json, fails the test unless it exits 0
// and prints a record ID, and returns the ID.
func (c *CLI) ID(t testing.TB, args ...string) string {
	t.Helper()
	out := c.OK(t, append(args, "--json")...)
	var s struct{ ID string }
	if err := json.Unmarshal([]byte(out), &s); err != nil || s.ID == "" {
		t.Fatalf("phr %s: no record ID in %q", strings.Join(args, " "), out)
	}
	return s.ID
}

// OKEnv is OK with extra environment (see RunEnv).
func (c *CLI) OKEnv(t testing.TB, env map[string]string, args ...string) string {
	t.Helper()
	r := c.RunEnv(t, env, args...)
	if r.Code != 0 {
		t.Fatalf("phr %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.Code, r.Stdout, r.Stderr)
	}
	return r.Stdout
}

// Process is a phr command running in the background.
type Process struct {
	cmd            *exec.Cmd
	cancel         context.CancelFunc
	stdout, stderr bytes.Buffer
	start          time.Time
	done           chan struct{}
	res            Result
}

// Start runs phr with args in the background. The test's cleanup kills
// it if it still runs.
func (c *CLI) Start(t testing.TB, env map[string]string, args ...string) *Process {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), CommandTimeout)
	p := &Process{cancel: cancel, done: make(chan struct{})}
	p.cmd = c.command(ctx, env, args)
	p.cmd.Stdout, p.cmd.Stderr = &p.stdout, &p.stderr
	p.start = time.Now()
	if err := p.cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start phr %s: %v", strings.Join(args, " "), err)
	}
	go func() {
		err := p.cmd.Wait()
		p.res = Result{Stdout: p.stdout.String(), Stderr: p.stderr.String(), Elapsed: time.Since(p.start)}
		var ee *exec.ExitError
		switch {
		case err == nil:
		case errors.As(err, &ee) && ee.ExitCode() >= 0:
			p.res.Code = ee.ExitCode()
		default:
			p.res.Code = -1
			p.res.Stderr += "\n(" + err.Error() + ")"
		}
		close(p.done)
	}()
	t.Cleanup(func() {
		cancel() // kills the process if it still runs
		<-p.done
	})
	return p
}

// Done is closed when the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has exited.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Wait waits for the process to exit and returns what it did.
func (p *Process) Wait() Result {
	<-p.done
	p.cancel()
	return p.res
}

// Server is what Serve needs of phrd's *server.Server.
type Server interface {
	Serve(net.Listener) error
	Shutdown(context.Context) error
}

// Listen opens a listener on a random port of 127.0.0.1 and returns it
// with its base URL (which the server's configuration needs before the
// server exists).
func Listen(t testing.TB) (net.Listener, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln, "http://" + ln.Addr().String()
}

// Serve serves s on ln in the background. The returned function shuts it
// down (waiting for requests in flight) and is safe to call more than
// once; the test's cleanup calls it too.
func Serve(t testing.TB, ln net.Listener, s Server) (shutdown func()) {
	t.Helper()
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	var once sync.Once
	shutdown = func() {
		once.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := s.Shutdown(ctx); err != nil {
				t.Errorf("phrd shutdown: %v", err)
			}
			if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
				t.Errorf("phrd serve: %v", err)
			}
		})
	}
	t.Cleanup(shutdown)
	return shutdown
}

// SyncBuffer is a bytes.Buffer safe for concurrent writers (a server's
// log).
type SyncBuffer = syncbuf.Buffer

// WaitFor polls cond every 10 ms until it is true or timeout passes, and
// reports whether it became true.
func WaitFor(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
}
