package vault

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/phr-project/phr/pkg/kv"
	bolt "go.etcd.io/bbolt"
)

// Compaction: after a secret is revoked, nothing in the file may open with
// it.
//
// bbolt never overwrites a page in place: a transaction writes the pages
// it changes elsewhere and frees the old ones, which keep their bytes until
// they happen to be reused. So after a passphrase change the old
// passphrase slot (the vault key wrapped for the old passphrase) is still
// in the file, in a free page, and after a rotation so are records sealed
// under the old key. Compact copies what is live into a new file and
// renames it over the old one:
//
//  1. the new file is made next to the vault, as "." + name + ".compact-"
//     + 16 hex digits, and locked (bbolt's lock);
//  2. every bucket is copied, key by key, in transactions of at most
//     compactTxBytes, and the new file is synced;
//  3. the new file is renamed over the vault and the directory synced;
//  4. the old file is closed (its lock released): it has no name any more,
//     and its bytes go with it.
//
// The vault's lock is held from the first step to the last, and the new
// file's lock from the rename on, so no other process opens the vault in
// between. A process that opened the old file before the rename and waited
// for its lock finds, once it has it, that the file is no longer the one
// at the vault's path, and opens again (openBolt). A crash before the
// rename leaves the old file as it was, and a partial new file that the
// next open for writing removes; a crash after it leaves the new file.
// Never neither.
//
// What the new file does not hold, copies do: backups, copies of the old
// file, and the disk blocks the filesystem freed (docs/keys.md).

// compactTxBytes bounds what one transaction of the copy holds in memory.
const compactTxBytes = 64 << 20

// compactSuffix marks the new file of a compaction.
const compactSuffix = ".compact-"

// compactHook, if set, is called at each step of a compaction by name
// ("copied", "renamed"); an error stops it there. Tests only.
var compactHook func(step string) error

// Compact rewrites the vault file with only what is live in it (see the
// comment above). Every operation that revokes a secret calls it: key
// slots removed or replaced, and a rotation.
func (v *Vault) Compact() error {
	if v.readOnly {
		return ErrReadOnly
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.compactLocked()
}

// A vault in a store other than its own file (OpenIn) has no file to
// rewrite: Compact does nothing there and returns nil. What a deleted
// value leaves behind in such a store is the store's to clear
// (docs/security.md, "Revoked secrets").
func (v *Vault) compactLocked() error {
	src := v.boltFile()
	if v.path == "" || src == nil {
		return nil
	}
	var rnd [8]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return err
	}
	dir := filepath.Dir(v.path)
	tmp := filepath.Join(dir, "."+filepath.Base(v.path)+compactSuffix+hex.EncodeToString(rnd[:]))
	opts := *v.boltOpts
	ndb, err := bolt.Open(tmp, 0o600, &opts)
	if err != nil {
		return fmt.Errorf("vault: compacting: %w", err)
	}
	ndb.AllocSize = allocSize
	fail := func(err error) error {
		ndb.Close()
		os.Remove(tmp)
		return fmt.Errorf("vault: compacting: %w", err)
	}
	if err := copyDB(ndb, src); err != nil {
		return fail(err)
	}
	if !opts.NoSync {
		if err := ndb.Sync(); err != nil {
			return fail(err)
		}
	}
	if compactHook != nil {
		if err := compactHook("copied"); err != nil {
			return fail(err)
		}
	}
	if err := os.Rename(tmp, v.path); err != nil {
		return fail(err)
	}
	// From here the new file is the vault, whatever happens next.
	derr := syncDir(dir)
	old := v.db
	v.db = kv.WrapBolt(ndb)
	if err := old.Close(); err != nil && derr == nil {
		derr = err
	}
	if compactHook != nil {
		if err := compactHook("renamed"); err != nil && derr == nil {
			derr = err
		}
	}
	if derr != nil {
		return fmt.Errorf("vault: compacting: %w", derr)
	}
	return nil
}

// copyDB copies every bucket of src into the empty dst, with its
// sequence, in transactions of at most compactTxBytes. Buckets are
// copied in key order, so their pages fill up; the fill percentage each
// bucket's writes use is kept (packFull's buckets are written full).
func copyDB(dst, src *bolt.DB) error {
	return src.View(func(stx *bolt.Tx) error {
		dtx, err := dst.Begin(true)
		if err != nil {
			return err
		}
		defer func() { dtx.Rollback() }()
		var size int
		return errors.Join(stx.ForEach(func(name []byte, sb *bolt.Bucket) error {
			db, err := dtx.CreateBucket(name)
			if err != nil {
				return err
			}
			if err := db.SetSequence(sb.Sequence()); err != nil {
				return err
			}
			name = bytes.Clone(name)
			c := sb.Cursor()
			for k, val := c.First(); k != nil; k, val = c.Next() {
				if val == nil && sb.Bucket(k) != nil {
					return fmt.Errorf("%w: nested bucket", ErrCorrupt)
				}
				if size > compactTxBytes {
					if err := dtx.Commit(); err != nil {
						return err
					}
					if dtx, err = dst.Begin(true); err != nil {
						return err
					}
					size = 0
				}
				db = dtx.Bucket(name)
				db.FillPercent = 1.0
				if err := db.Put(k, val); err != nil {
					return err
				}
				size += len(k) + len(val)
			}
			return nil
		}), dtx.Commit())
	})
}

// removeCompactLeftovers removes the new file of a compaction that a
// crash stopped before its rename. The caller holds the vault's lock, so
// no compaction of this vault is running.
func removeCompactLeftovers(path string) {
	dir, base := filepath.Dir(path), filepath.Base(path)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), "."+base+compactSuffix) {
			os.Remove(filepath.Join(dir, e.Name()))
		}
	}
}

// ErrNotCompacted: a change that revokes a secret was made, but the file
// could not be rewritten afterwards, so the revoked secret may still open
// what the file's free pages hold. Compact again (any later revoking
// change does too).
var ErrNotCompacted = errors.New("the change was made, but the file could not be rewritten without the old secret")

// revoking runs a write transaction that revokes a secret, then compacts
// the file.
func (v *Vault) revoking(fn func(tx kv.Tx) error) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if err := v.updateLocked(fn); err != nil {
		return err
	}
	if err := v.compactLocked(); err != nil {
		return fmt.Errorf("%w: %w", ErrNotCompacted, err)
	}
	return nil
}
