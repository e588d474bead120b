package vault

import (
	"errors"
	"io"
	"os"
	"path/filepath"

	"filippo.io/age"
	"github.com/phr-project/phr/pkg/kv"
	bolt "go.etcd.io/bbolt"
)

// A vault stores through pkg/kv: the same buckets, keys and sealed values
// in its own bbolt file (Create, Open: what the CLI keeps) or in any
// kv.DB, such as one PostgreSQL namespace (CreateIn, OpenIn). What only a
// bbolt file has is used behind a check of the backend (kv.BoltTx):
// bbolt's check of the file's pages, the trimming of its mapping, its
// page fill. Compact and the reopening of long imports need the file
// itself (a path), which a vault in a store has not.

// CreateIn makes a new vault in db, which must hold nothing (else
// ErrExists), with a fresh vault key wrapped in the given slots (at least
// one), in one transaction. The vault does not own db: Close forgets the
// key and leaves db open, for its owner to close. Of opts, Now and Heads
// apply; ReadOnly is refused (ErrReadOnly); the rest are the file's.
func CreateIn(db kv.DB, slots []SlotSpec, opts *Options) (*Vault, error) {
	if len(slots) == 0 {
		return nil, errors.New("vault: create needs at least one key slot")
	}
	if opts != nil && opts.ReadOnly {
		return nil, ErrReadOnly
	}
	v, err := initVault(db, slots, opts)
	if err != nil {
		return nil, err
	}
	v.verified.Store(true)
	if opts != nil && opts.Heads != nil {
		v.heads = opts.Heads
		v.rememberHead()
	}
	return v, nil
}

// OpenIn opens and unlocks the vault in db with secret, as Open does a
// file: it checks the authenticated head, upgrades an older format and
// rolls back interrupted imports when opened for writing, and honours
// opts.ReadOnly (the vault refuses writes; db is not locked against
// other writers), Heads, AcceptRollback and Unverified. A store that
// holds no vault gives ErrNotVault. The vault does not own db: Close
// forgets the key and leaves db open.
//
// Any number of Vaults may be open on one store at once, in one process
// or in several (phrd nodes), each reading and writing: see the package
// doc's Stores. Opening for writing rolls back only the imports that
// died (their lease expired, or a version-1 marker), never one another
// Vault is running; two Vaults opening a vault of an older format at
// once upgrade it once (the upgrade holds a lease, and the other waits
// for it, up to five minutes if the upgrading node died). A Vault whose
// store another one rotated the key of, or upgraded, fails with
// ErrStale: open it again.
func OpenIn(db kv.DB, secret Secret, opts *Options) (*Vault, error) {
	v := &Vault{db: db}
	return v.open(secret, opts)
}

// RestoreIn builds a new vault in db, which must hold nothing (else
// ErrExists), from a backup, as Restore does in a file: records keep
// their IDs, versions, times and provenance; the vault has its own ID and
// vault key, wrapped in slots. It is built by Restore in a file of a new
// directory under tmpDir (os.TempDir() when ""), which holds only sealed
// values and is removed, and then copied into db in one transaction
// (kv.Copy, counted again in db): a bad backup, a failure or a crash
// leaves db as empty as it was. It returns how many records it restored.
func RestoreIn(r io.Reader, identities []age.Identity, db kv.DB, slots []SlotSpec, tmpDir string) (int, error) {
	dir, err := os.MkdirTemp(tmpDir, ".phr-restore-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "vault.phr")
	_, n, err := Restore(r, identities, path, slots, false)
	if err != nil {
		return 0, err
	}
	src, err := kv.OpenBolt(path, 0o600, (&Options{ReadOnly: true}).boltOptions())
	if err != nil {
		return 0, err
	}
	defer src.Close()
	if _, err := kv.Copy(db, src); err != nil {
		if errors.Is(err, kv.ErrNotEmpty) {
			return 0, ErrExists
		}
		return 0, err
	}
	return n, nil
}

// onCommit has fn run once the running write transaction has committed
// (bbolt's Tx.OnCommit, which a kv.Tx has not). Only inside updateLocked.
func (v *Vault) onCommit(fn func()) { v.committed = append(v.committed, fn) }

// setFill sets how full the bucket's pages are filled before they split,
// when the store has pages (bbolt); a no-op elsewhere.
func setFill(b kv.Bucket, f float64) { kv.SetFillPercent(b, f) }

// countKeys counts a bucket's keys (a small one: the key slots).
func countKeys(b kv.Bucket) int {
	n := 0
	c := b.Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		n++
	}
	return n
}

// fileCheck is bbolt's check of the file's pages (every page reachable
// once, keys in order) when tx is a bbolt file's; a store without pages
// has nothing to check there (a closed channel).
func fileCheck(tx kv.Tx) <-chan error {
	if bt := kv.BoltTx(tx); bt != nil {
		return bt.Check()
	}
	c := make(chan error)
	close(c)
	return c
}

// boltFile returns the bbolt handle of a vault stored in a bbolt file
// (Create, Open, or OpenIn of a kv.BoltDB), or nil.
func (v *Vault) boltFile() *bolt.DB {
	if b, ok := v.db.(*kv.BoltDB); ok {
		return b.Bolt()
	}
	return nil
}
