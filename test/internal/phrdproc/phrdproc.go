// Package phrdproc runs the real phrd binary as a process, for the tests
// under test/ that kill it, restart it or measure it (test/crash,
// test/cluster, test/security/flood): start it on a free port, wait until
// it listens, keep its log, stop it as an operator would or kill it.
package phrdproc

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"

	"github.com/phr-project/phr/internal/syncbuf"
)

// Wait bounds how long Start waits for phrd to listen and Stop waits for
// it to exit.
const Wait = time.Minute

// Daemon is a running phrd process.
type Daemon struct {
	// URL is where it listens: http://127.0.0.1:PORT.
	URL string

	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited

	logs syncbuf.Buffer // phrd logs no PHI; tests show it when they fail
}

// Start runs the phrd binary bin over dataDir, listening on a free port
// of 127.0.0.1 and logging JSON, with args after its own flags, and waits
// until it logs that it listens. Its environment is HOME (dataDir), TMPDIR
// and PATH and env (PHRD_* settings): nothing of the caller's PHRD_*
// settings leaks in.
func Start(bin, dataDir string, env []string, args ...string) (*Daemon, error) {
	cmd := exec.Command(bin, append([]string{"--addr", "127.0.0.1:0", "--data", dataDir, "--log-format", "json"}, args...)...)
	cmd.Env = append([]string{"HOME=" + dataDir, "TMPDIR=" + os.TempDir(), "PATH=" + os.Getenv("PATH")}, env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	d := &Daemon{cmd: cmd, done: make(chan struct{})}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			d.logs.Write(sc.Bytes())
			d.logs.Write([]byte{'\n'})
			var m struct {
				Msg  string `json:"msg"`
				Addr string `json:"addr"`
			}
			if json.Unmarshal(sc.Bytes(), &m) == nil && m.Msg == "listening" && m.Addr != "" {
				select {
				case addr <- m.Addr:
				default:
				}
			}
		}
		cmd.Wait() // after the last read of the pipe, as os/exec asks
		close(d.done)
	}()
	select {
	case a := <-addr:
		d.URL = "http://" + a
		return d, nil
	case <-d.done:
		return nil, fmt.Errorf("phrd exited before listening:\n%s", d.Log())
	case <-time.After(Wait):
		d.Kill()
		return nil, errors.New("phrd did not listen within a minute")
	}
}

// Log returns what phrd has logged so far.
func (d *Daemon) Log() string { return d.logs.String() }

// Pid is the process's ID.
func (d *Daemon) Pid() int { return d.cmd.Process.Pid }

// Done is closed when the process has exited.
func (d *Daemon) Done() <-chan struct{} { return d.done }

// Exited reports whether the process has exited.
func (d *Daemon) Exited() bool {
	select {
	case <-d.done:
		return true
	default:
		return false
	}
}

// Kill sends SIGKILL and waits for the process to end.
func (d *Daemon) Kill() {
	d.cmd.Process.Signal(syscall.SIGKILL)
	<-d.done
}

// Stop shuts phrd down with SIGTERM, as an operator would, and fails
// unless it exits with status 0 within Wait (then it is killed).
func (d *Daemon) Stop() error {
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(Wait):
		d.Kill()
		return errors.New("phrd did not stop within a minute of SIGTERM")
	}
	if code := d.cmd.ProcessState.ExitCode(); code != 0 {
		return fmt.Errorf("phrd exited with %d after SIGTERM:\n%s", code, d.Log())
	}
	return nil
}
