package crash

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/phr-project/phr/pkg/vault"
)

var seedFlag = flag.Uint64("crash.seed", 0, "seed of the kill delays (0: from the clock)")

// bins are the binaries TestMain builds.
var bins struct {
	phr, phrd string
}

func TestMain(m *testing.M) {
	flag.Parse()
	// Passphrase slots made in this process (the phrd account) cost
	// 2^10 rather than 2^18 scrypt; the binaries keep their own cost.
	vault.ScryptWorkFactor = 10
	os.Exit(func() int {
		dir, err := os.MkdirTemp("", "phr-crash-bin-")
		if err != nil {
			fmt.Fprintln(os.Stderr, "crash:", err)
			return 1
		}
		defer os.RemoveAll(dir)
		var err2 error
		for try := 0; try < 2; try++ { // once more: a build cache shared with other builds can fail once
			cmd := exec.Command("go", "build", "-o", dir, "github.com/phr-project/phr/cmd/phr", "github.com/phr-project/phr/cmd/phrd")
			cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
			if err2 = cmd.Run(); err2 == nil {
				break
			}
		}
		if err2 != nil {
			fmt.Fprintln(os.Stderr, "crash: building phr and phrd:", err2)
			return 1
		}
		bins.phr, bins.phrd = filepath.Join(dir, "phr"), filepath.Join(dir, "phrd")
		return m.Run()
	}())
}

// stats are the figures of the summary line.
type stats struct {
	runs       atomic.Int64 // processes started with a kill timer
	kills      atomic.Int64 // of those, killed before they finished
	acked      atomic.Int64 // distinct acknowledged writes (records)
	ackChecks  atomic.Int64 // checks of one acknowledged write after a kill
	losses     atomic.Int64 // acknowledged writes missing
	duplicates atomic.Int64 // records stored more than once
	partial    atomic.Int64 // files found partly written before the rollback
	rolledBack atomic.Int64 // interrupted imports rolled back
}

func (s *stats) String() string {
	return fmt.Sprintf("runs %d, kills %d, acknowledged writes %d (checked %d times after kills), losses %d, duplicates %d; partly written files found %d, interrupted imports rolled back %d",
		s.runs.Load(), s.kills.Load(), s.acked.Load(), s.ackChecks.Load(), s.losses.Load(), s.duplicates.Load(), s.partial.Load(), s.rolledBack.Load())
}

// result is how a process ended.
type result struct {
	killed         bool
	code           int
	stdout, stderr string
	took           time.Duration
}

// killPlan says when to send a process SIGKILL: delay after it starts;
// or, if watch is set, after that file first changes (the first write of
// the process reached it), plus delay and ofStart times the time from the
// start to that change. A time from the process's own start calibrates
// itself to the machine's load.
type killPlan struct {
	delay   time.Duration
	watch   string
	ofStart float64
}

// run runs a binary with env (the whole environment) and kills it as
// kill says, unless it has finished by then; kill nil lets it finish.
func run(name string, env []string, kill *killPlan, args ...string) (*result, error) {
	cmd := exec.Command(name, args...)
	cmd.Env = env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr, cmd.Stdin = &out, &errb, nil
	var before os.FileInfo
	if kill != nil && kill.watch != "" {
		var err error
		if before, err = os.Stat(kill.watch); err != nil {
			return nil, err
		}
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	exited := make(chan struct{})
	if kill != nil {
		go func() {
			delay := kill.delay
			if before != nil {
				for changed := false; !changed; {
					select {
					case <-exited:
						return
					case <-time.After(5 * time.Millisecond):
					}
					now, err := os.Stat(kill.watch)
					changed = err != nil || now.Size() != before.Size() || !now.ModTime().Equal(before.ModTime())
				}
				delay += time.Duration(kill.ofStart * float64(time.Since(start)))
			}
			select {
			case <-exited:
			case <-time.After(delay):
				cmd.Process.Signal(syscall.SIGKILL)
			}
		}()
	}
	err := cmd.Wait()
	close(exited)
	r := &result{stdout: out.String(), stderr: errb.String(), took: time.Since(start), code: cmd.ProcessState.ExitCode()}
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
		r.killed = true
		return r, nil
	}
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		return nil, err
	}
	return r, nil
}

// copyFile copies a file, mode 0600.
func copyFile(dst, src string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// copyTree copies a directory of directories and regular files: dirs
// 0700, files 0600.
func copyTree(dst, src string) error {
	return filepath.WalkDir(src, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o700)
		}
		if !d.Type().IsRegular() {
			return fmt.Errorf("%s: not a regular file", rel)
		}
		return copyFile(target, path)
	})
}
