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
	"github.com/phr-project/phr/pkg/sharestore"
)

// MigrateResult says what MigrateToDatabase moved.
type MigrateResult struct {
	// Shares counts the share store's buckets, keys and bytes, the same
	// in the file and in the database (MigrateToDatabase checks).
	Shares kv.Counts
	// NoShares: the data directory had no share store to move.
	NoShares bool
}

// MigrateToDatabase moves what a node keeps on PostgreSQL with
// Config.DatabaseURL (today the share store) from the data directory
// dataDir into the database at databaseURL, for `phrd migrate`. phrd must
// not be running on dataDir. The values move as they are (sealed, under
// keyed names), so the share key file keeps opening them and every link
// keeps working; the file is left in place. It refuses a database that
// already holds a share store, and checks afterwards that the database
// holds as many buckets, keys and bytes as the file, and that the share
// key file opens the moved store.
func MigrateToDatabase(ctx context.Context, dataDir, databaseURL, shareKeyFile string) (MigrateResult, error) {
	var res MigrateResult
	if shareKeyFile == "" {
		shareKeyFile = DefaultShareKeyFile(dataDir)
	}
	// The copy is one transaction, as long as the store is large.
	pg, err := kv.OpenPostgres(ctx, databaseURL, &kv.PostgresOptions{Timeout: 12 * time.Hour})
	if err != nil {
		return res, fmt.Errorf("the database: %w", err)
	}
	defer pg.Close()

	path := filepath.Join(dataDir, sharesFile)
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		res.NoShares = true
		return res, nil
	}
	if _, err := os.Stat(shareKeyFile); err != nil {
		return res, fmt.Errorf("no share key file at %s: start phrd once on %s (it moves an older share store to a key file) or name the file with --share-key", shareKeyFile, dataDir)
	}
	secret, _, err := sharestore.LoadOrCreateSecret(shareKeyFile)
	if err != nil {
		return res, err
	}
	// Open it as phrd does first: this checks that the key file belongs
	// to it, and fails at once if phrd holds the file.
	st, err := sharestore.Open(path, &sharestore.Options{Secret: secret, LockTimeout: time.Second})
	switch {
	case errors.Is(err, sharestore.ErrLocked):
		return res, fmt.Errorf("%s is in use: stop phrd on %s first", sharesFile, dataDir)
	case errors.Is(err, sharestore.ErrWrongSecret):
		return res, fmt.Errorf("the share key file %s does not open %s: start phrd once on %s with it (phrd moves an older store to the key file)", shareKeyFile, sharesFile, dataDir)
	case err != nil:
		return res, fmt.Errorf("%s: %w", sharesFile, err)
	}
	if err := st.Close(); err != nil {
		return res, err
	}
	src, err := kv.OpenBolt(path, 0o600, &kv.BoltOptions{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return res, fmt.Errorf("%s: %w", sharesFile, err)
	}
	defer src.Close()
	res.Shares, err = kv.Copy(pg.Namespace(sharesNamespace), src)
	if errors.Is(err, kv.ErrNotEmpty) {
		return res, errors.New("the database already holds a share store: nothing was copied")
	}
	if err != nil {
		return res, fmt.Errorf("copying %s: %w", sharesFile, err)
	}
	dst, err := sharestore.OpenDB(pg.Namespace(sharesNamespace), &sharestore.Options{Secret: secret})
	if err != nil {
		return res, fmt.Errorf("the moved share store does not open: %w", err)
	}
	return res, dst.Close()
}

// String is the report `phrd migrate` prints.
func (r MigrateResult) String() string {
	var b strings.Builder
	if r.NoShares {
		b.WriteString("share store: none in the data directory, nothing to move\n")
	} else {
		fmt.Fprintf(&b, "share store: %d buckets, %d keys, %d bytes copied; the database holds the same counts, and the share key file opens it\n",
			r.Shares.Buckets, r.Shares.Keys, r.Shares.Bytes)
	}
	b.WriteString("vaults: stay in DATA/vaults (every node still needs the data directory)\n")
	return b.String()
}
