package server

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/phr-project/phr/pkg/kv"
	"github.com/phr-project/phr/pkg/sharestore"
)

// MigrateResult says what MigrateToDatabase moved.
type MigrateResult struct {
	// Shares counts the share store's buckets, keys and bytes, the same
	// in the file and in the database (MigrateToDatabase checks).
	Shares kv.Counts
	// NoShares: the data directory had no share store to move.
	NoShares bool
	// Vaults are the accounts' vaults moved, in the order of their IDs.
	Vaults []MovedVault
}

// MovedVault is one account's vault moved: its account ID and what it
// holds, the same in the file and in its namespace.
type MovedVault struct {
	ID     string
	Counts kv.Counts
}

// MigrateToDatabase moves what a node keeps on PostgreSQL with
// Config.DatabaseURL, the accounts' vaults and the share store, from the
// data directory dataDir into the database at databaseURL, for `phrd
// migrate`. phrd must not be running on dataDir. The values move as they
// are (sealed, under keyed names), so the same passphrases, sessions'
// keys and share key file open them and every link keeps working; the
// files are left in place. It refuses, before copying anything, a
// database that already holds a share store or a vault of any of the
// accounts; each vault is copied in one transaction and checked
// afterwards (the database holds as many buckets, keys and bytes as the
// file), and the share key file must open the moved share store.
func MigrateToDatabase(ctx context.Context, dataDir, databaseURL, shareKeyFile string) (MigrateResult, error) {
	var res MigrateResult
	if shareKeyFile == "" {
		shareKeyFile = DefaultShareKeyFile(dataDir)
	}
	// Each copy is one transaction, as long as the store is large.
	pg, err := kv.OpenPostgres(ctx, databaseURL, &kv.PostgresOptions{Timeout: 12 * time.Hour})
	if err != nil {
		return res, fmt.Errorf("the database: %w", err)
	}
	defer pg.Close()

	// phrd holds sessions.db while it runs (and each vault file while
	// the account has sessions): a read-only open waits for its lock.
	if sess := filepath.Join(dataDir, sessionsFile); fileExists(sess) {
		db, err := kv.OpenBolt(sess, 0o600, &kv.BoltOptions{ReadOnly: true, Timeout: time.Second})
		if err != nil {
			return res, fmt.Errorf("%s is in use: stop phrd on %s first", sessionsFile, dataDir)
		}
		db.Close()
	}

	// Everything is checked before anything is copied.
	files := fileVaults{dir: filepath.Join(dataDir, "vaults")}
	var ids []string
	if fileExists(files.dir) {
		if ids, err = files.ids(); err != nil {
			return res, err
		}
	}
	sort.Strings(ids)
	dbv := dbVaults{pg: pg}
	for _, id := range ids {
		ok, err := dbv.exists(id)
		if err != nil {
			return res, err
		}
		if ok {
			return res, fmt.Errorf("the database already holds the vault of account %s: nothing was copied", id)
		}
	}
	shares, err := checkSharesToMove(pg, dataDir, shareKeyFile)
	if err != nil {
		return res, err
	}
	res.NoShares = shares == nil

	for _, id := range ids {
		c, err := dbv.install(id, files.path(id))
		if err != nil {
			if errors.Is(err, errAccountExists) {
				err = errors.New("made meanwhile in the database")
			}
			return res, fmt.Errorf("the vault of account %s: %w (%d of %d vaults were copied before it)", id, err, len(res.Vaults), len(ids))
		}
		res.Vaults = append(res.Vaults, MovedVault{ID: id, Counts: c})
	}
	if shares == nil {
		return res, nil
	}
	path := filepath.Join(dataDir, sharesFile)
	src, err := kv.OpenBolt(path, 0o600, &kv.BoltOptions{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return res, fmt.Errorf("%s: %w", sharesFile, err)
	}
	defer src.Close()
	res.Shares, err = kv.Copy(pg.Namespace(sharesNamespace), src)
	if errors.Is(err, kv.ErrNotEmpty) {
		return res, errors.New("the database already holds a share store: it was not copied")
	}
	if err != nil {
		return res, fmt.Errorf("copying %s: %w", sharesFile, err)
	}
	dst, err := sharestore.OpenDB(pg.Namespace(sharesNamespace), &sharestore.Options{Secret: shares})
	if err != nil {
		return res, fmt.Errorf("the moved share store does not open: %w", err)
	}
	return res, dst.Close()
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// checkSharesToMove checks the data directory's share store before the
// move: the share key file opens it, phrd does not hold it, and the
// database holds no share store. It returns the store's secret, or nil
// when there is no share store to move.
func checkSharesToMove(pg *kv.Postgres, dataDir, shareKeyFile string) ([]byte, error) {
	path := filepath.Join(dataDir, sharesFile)
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if _, err := os.Stat(shareKeyFile); err != nil {
		return nil, fmt.Errorf("no share key file at %s: start phrd once on %s (it moves an older share store to a key file) or name the file with --share-key", shareKeyFile, dataDir)
	}
	secret, _, err := sharestore.LoadOrCreateSecret(shareKeyFile)
	if err != nil {
		return nil, err
	}
	// Open it as phrd does first: this checks that the key file belongs
	// to it, and fails at once if phrd holds the file.
	st, err := sharestore.Open(path, &sharestore.Options{Secret: secret, LockTimeout: time.Second})
	switch {
	case errors.Is(err, sharestore.ErrLocked):
		return nil, fmt.Errorf("%s is in use: stop phrd on %s first", sharesFile, dataDir)
	case errors.Is(err, sharestore.ErrWrongSecret):
		return nil, fmt.Errorf("the share key file %s does not open %s: start phrd once on %s with it (phrd moves an older store to the key file)", shareKeyFile, sharesFile, dataDir)
	case err != nil:
		return nil, fmt.Errorf("%s: %w", sharesFile, err)
	}
	if err := st.Close(); err != nil {
		return nil, err
	}
	var held bool
	err = pg.Namespace(sharesNamespace).View(func(tx kv.Tx) error {
		return tx.ForEach(func([]byte, kv.Bucket) error { held = true; return errStop })
	})
	if err != nil && !errors.Is(err, errStop) {
		return nil, err
	}
	if held {
		return nil, errors.New("the database already holds a share store: nothing was copied")
	}
	return secret, nil
}

// String is the report `phrd migrate` prints.
func (r MigrateResult) String() string {
	var b strings.Builder
	var total kv.Counts
	for _, v := range r.Vaults {
		fmt.Fprintf(&b, "vault %s: %d buckets, %d keys, %d bytes\n", v.ID, v.Counts.Buckets, v.Counts.Keys, v.Counts.Bytes)
		total.Buckets += v.Counts.Buckets
		total.Keys += v.Counts.Keys
		total.Bytes += v.Counts.Bytes
	}
	fmt.Fprintf(&b, "vaults: %d copied (%d buckets, %d keys, %d bytes); the database holds the same counts for each; the files are left in DATA/vaults (remove them once the nodes serve from the database)\n",
		len(r.Vaults), total.Buckets, total.Keys, total.Bytes)
	if r.NoShares {
		b.WriteString("share store: none in the data directory, nothing to move\n")
	} else {
		fmt.Fprintf(&b, "share store: %d buckets, %d keys, %d bytes copied; the database holds the same counts, and the share key file opens it\n",
			r.Shares.Buckets, r.Shares.Keys, r.Shares.Bytes)
	}
	return b.String()
}
