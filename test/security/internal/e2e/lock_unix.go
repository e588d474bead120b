//go:build unix

package e2e

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// LockHeld reports whether another process holds an exclusive lock on the
// file at path, the way bbolt (and so a vault) locks its file: it tries a
// shared flock without waiting and lets go of it at once.
func LockHeld(path string) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	err = unix.Flock(int(f.Fd()), unix.LOCK_SH|unix.LOCK_NB)
	if errors.Is(err, unix.EWOULDBLOCK) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	return false, unix.Flock(int(f.Fd()), unix.LOCK_UN)
}

// Mkfifo makes a named pipe (mode 0600) at path.
func Mkfifo(path string) error { return unix.Mkfifo(path, 0o600) }
