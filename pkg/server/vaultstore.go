package server

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/phr-project/phr/pkg/kv"
	"github.com/phr-project/phr/pkg/vault"
)

// vaultStore says where the accounts' vaults are, chosen at start: files
// in DATA/vaults (the embedded default), or namespaces vault/<account id>
// of the PostgreSQL database that every node shares (Config.DatabaseURL).
// An account exists when its vault does. Everything that makes, finds,
// lists or opens an account's vault goes through it.
type vaultStore interface {
	// exists reports whether the account has a vault.
	exists(id string) (bool, error)
	// ids lists the accounts.
	ids() ([]string, error)
	// open opens and unlocks the account's vault.
	open(id string, secret vault.Secret, opts *vault.Options) (*vault.Vault, error)
	// create makes the account's vault; errAccountExists if it has one,
	// also when another process (or node) makes it at the same time.
	create(id string, slots []vault.SlotSpec, opts *vault.Options) (*vault.Vault, error)
	// remove deletes a half-made account's vault (create succeeded, a
	// later step did not).
	remove(id string) error
	// install makes the finished vault file at path the account's vault
	// (errAccountExists if it has one), leaving path in place, and says
	// what it holds.
	install(id, path string) (kv.Counts, error)
}

// fileVaults: DATA/vaults/<id>.phr.
type fileVaults struct{ dir string }

func (f fileVaults) path(id string) string { return filepath.Join(f.dir, id+".phr") }

func (f fileVaults) exists(id string) (bool, error) {
	_, err := os.Lstat(f.path(id))
	return err == nil, nil
}

// ids lists the accounts by the names of their vault files.
func (f fileVaults) ids() ([]string, error) {
	ents, err := os.ReadDir(f.dir)
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, e := range ents {
		if id, ok := strings.CutSuffix(e.Name(), ".phr"); ok && e.Type().IsRegular() {
			ids = append(ids, id)
		}
	}
	return ids, nil
}

func (f fileVaults) open(id string, secret vault.Secret, opts *vault.Options) (*vault.Vault, error) {
	if ok, _ := f.exists(id); !ok {
		// A session (in a database the nodes share) of an account whose
		// vault is on another node's disk.
		return nil, errVaultElsewhere
	}
	return vault.Open(f.path(id), secret, opts)
}

func (f fileVaults) create(id string, slots []vault.SlotSpec, opts *vault.Options) (*vault.Vault, error) {
	v, err := vault.Create(f.path(id), slots, opts)
	if errors.Is(err, vault.ErrExists) {
		return nil, errAccountExists
	}
	return v, err
}

func (f fileVaults) remove(id string) error { return os.Remove(f.path(id)) }

// install links path into place (path must be on the same file system,
// DATA/tmp): a link fails where a rename would replace an account made
// meanwhile.
func (f fileVaults) install(id, path string) (kv.Counts, error) {
	counts, err := countFile(path)
	if err != nil {
		return counts, err
	}
	if err := os.Link(path, f.path(id)); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return kv.Counts{}, errAccountExists
		}
		return kv.Counts{}, err
	}
	dir, err := os.Open(f.dir)
	if err != nil {
		return counts, err
	}
	err = dir.Sync()
	dir.Close()
	return counts, err
}

// countFile counts what the vault file at path holds.
func countFile(path string) (kv.Counts, error) {
	src, err := kv.OpenBolt(path, 0o600, &kv.BoltOptions{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return kv.Counts{}, err
	}
	defer src.Close()
	return kv.Count(src)
}

// dbVaults: the namespaces vault/<id> of the database. The id is an HMAC
// of the username under server.key, so the database learns no username.
type dbVaults struct{ pg *kv.Postgres }

// vaultNamespacePrefix starts the name of every account's namespace.
const vaultNamespacePrefix = "vault/"

func (d dbVaults) ns(id string) kv.DB { return d.pg.Namespace(vaultNamespacePrefix + id) }

// errStop ends a ForEach early.
var errStop = errors.New("stop")

// exists looks for the namespace's first bucket: one index probe.
func (d dbVaults) exists(id string) (bool, error) {
	found := false
	err := d.ns(id).View(func(tx kv.Tx) error {
		return tx.ForEach(func([]byte, kv.Bucket) error { found = true; return errStop })
	})
	if err != nil && !errors.Is(err, errStop) {
		return false, err
	}
	return found, nil
}

func (d dbVaults) ids() ([]string, error) {
	names, err := d.pg.Namespaces(context.Background(), vaultNamespacePrefix)
	if err != nil {
		return nil, err
	}
	ids := make([]string, 0, len(names))
	for _, n := range names {
		ids = append(ids, strings.TrimPrefix(n, vaultNamespacePrefix))
	}
	return ids, nil
}

func (d dbVaults) open(id string, secret vault.Secret, opts *vault.Options) (*vault.Vault, error) {
	return vault.OpenIn(d.ns(id), secret, opts)
}

// create: CreateIn checks that the namespace is empty and writes the new
// vault in one transaction under the namespace's lock, so of two nodes
// making the same account at once exactly one succeeds.
func (d dbVaults) create(id string, slots []vault.SlotSpec, opts *vault.Options) (*vault.Vault, error) {
	v, err := vault.CreateIn(d.ns(id), slots, opts)
	if errors.Is(err, vault.ErrExists) {
		return nil, errAccountExists
	}
	return v, err
}

func (d dbVaults) remove(id string) error { return d.pg.DropNamespace(vaultNamespacePrefix + id) }

// install copies the file into the namespace in one transaction (kv.Copy:
// refused unless the namespace is empty, counted again in the database)
// and checks the copy against the file's own counts.
func (d dbVaults) install(id, path string) (kv.Counts, error) {
	src, err := kv.OpenBolt(path, 0o600, &kv.BoltOptions{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return kv.Counts{}, err
	}
	defer src.Close()
	want, err := kv.Count(src)
	if err != nil {
		return kv.Counts{}, err
	}
	got, err := kv.Copy(d.ns(id), src)
	if errors.Is(err, kv.ErrNotEmpty) {
		return kv.Counts{}, errAccountExists
	}
	if err != nil {
		return got, err
	}
	if got != want {
		return got, fmt.Errorf("the file holds %+v but %+v were copied", want, got)
	}
	return got, nil
}
