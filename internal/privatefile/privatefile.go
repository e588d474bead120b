// Package privatefile writes a new file that only its owner may read
// (0600), whole and synced, never over an existing one: phr's device
// identities, phrd's server key, shares' QR codes.
package privatefile

import "os"

// Write creates path with data, mode 0600, and syncs it. It fails with an
// error matching fs.ErrExist when path exists, and removes what it made
// when the write fails.
func Write(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
