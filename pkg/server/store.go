package server

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/phr-project/phr/internal/privatefile"
	"github.com/phr-project/phr/pkg/kv"
	"github.com/phr-project/phr/pkg/record"
	"github.com/phr-project/phr/pkg/server/api"
	"github.com/phr-project/phr/pkg/vault"
)

// The data directory:
//
//	DATA/server.key        32 random bytes: the key that maps usernames to vault files
//	DATA/vaults/<id>.phr   one vault per account; <id> = hex HMAC-SHA256(server.key, username)
//	DATA/tmp/              uploads being imported (emptied at start)
//
// Directories are 0700 and files 0600. A vault file name says nothing
// about its owner without server.key; an account exists when its file
// does. With a database (Config.DatabaseURL) the vaults are in it instead
// (dbVaults), and DATA/vaults stays empty: store says which.
type dataDir struct {
	root, vaults, tmp string
	secret            []byte
	store             vaultStore
}

const serverKeyFile = "server.key"

// openDataDir makes the layout if needed and reads (or, the first time,
// creates) the server key.
func openDataDir(root string) (*dataDir, error) {
	d := &dataDir{root: root, vaults: filepath.Join(root, "vaults"), tmp: filepath.Join(root, "tmp")}
	d.store = fileVaults{dir: d.vaults}
	for _, dir := range []string{root, d.vaults, d.tmp} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, err
		}
		if err := os.Chmod(dir, 0o700); err != nil {
			return nil, err
		}
	}
	keyPath := filepath.Join(root, serverKeyFile)
	key, err := os.ReadFile(keyPath)
	if errors.Is(err, fs.ErrNotExist) {
		key = make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return nil, err
		}
		err = privatefile.Write(keyPath, []byte(hex.EncodeToString(key)+"\n"))
		if errors.Is(err, fs.ErrExist) { // another process made it first
			return openDataDir(root)
		}
		if err != nil {
			return nil, err
		}
		d.secret = key
		return d, nil
	}
	if err != nil {
		return nil, err
	}
	d.secret, err = hex.DecodeString(strings.TrimSpace(string(key)))
	if err != nil || len(d.secret) != 32 {
		return nil, fmt.Errorf("%s: not a server key (64 hex digits)", keyPath)
	}
	return d, nil
}

// cleanTmp removes uploads left by a crash.
func (d *dataDir) cleanTmp() error {
	ents, err := os.ReadDir(d.tmp)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if err := os.RemoveAll(filepath.Join(d.tmp, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

// accountID is the account's opaque ID: its vault's file name and the key
// of its rate limits and sessions. It is no secret but says nothing about
// the username without server.key.
func (d *dataDir) accountID(username string) string {
	m := hmac.New(sha256.New, d.secret)
	m.Write([]byte("phrd account v1\x00"))
	m.Write([]byte(username))
	return hex.EncodeToString(m.Sum(nil))
}

// exists reports whether the account has a vault.
func (d *dataDir) exists(id string) (bool, error) { return d.store.exists(id) }

// vaultPath is where the account's vault file is on the embedded default.
func (d *dataDir) vaultPath(id string) string { return fileVaults{dir: d.vaults}.path(id) }

// Account rules.
const (
	minUsername   = 3
	maxUsername   = 64
	minPassphrase = 10
	maxPassphrase = 1024
)

// NormalizeUsername lower-cases a username and checks it: 3-64 characters
// of a-z, 0-9 and ". _ @ -".
func NormalizeUsername(s string) (string, error) {
	u := strings.ToLower(strings.TrimSpace(s))
	if len(u) < minUsername || len(u) > maxUsername {
		return "", &record.InputError{Field: "username", Msg: fmt.Sprintf("must have %d to %d characters", minUsername, maxUsername)}
	}
	for i := 0; i < len(u); i++ {
		c := u[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '@' || c == '-') {
			return "", &record.InputError{Field: "username", Msg: "may hold only letters a-z, digits and . _ @ -"}
		}
	}
	return u, nil
}

func checkPassphrase(p string) error {
	n := len([]rune(p))
	if n < minPassphrase {
		return &record.InputError{Field: "passphrase", Msg: fmt.Sprintf("must have at least %d characters", minPassphrase)}
	}
	if len(p) > maxPassphrase {
		return &record.InputError{Field: "passphrase", Msg: fmt.Sprintf("must have at most %d bytes", maxPassphrase)}
	}
	return nil
}

// errAccountExists: the username is taken.
var errAccountExists = errors.New("account exists")

// createAccount makes the account's vault: a passphrase slot and a
// recovery slot, the Patient record and the patient setting, as `phr init`
// does. It costs a passphrase wrap (scrypt).
func (d *dataDir) createAccount(username, passphrase, client string, opts *vault.Options) (api.CreateAccountResponse, error) {
	u, err := NormalizeUsername(username)
	if err != nil {
		return api.CreateAccountResponse{}, err
	}
	if err := checkPassphrase(passphrase); err != nil {
		return api.CreateAccountResponse{}, err
	}
	id := d.accountID(u)
	code := vault.NewRecoveryCode()
	v, err := d.store.create(id, []vault.SlotSpec{
		{Kind: vault.SlotPassphrase, Label: "passphrase", Passphrase: passphrase},
		{Kind: vault.SlotRecovery, Label: "recovery code", RecoveryCode: code},
	}, opts)
	if err != nil {
		return api.CreateAccountResponse{}, err
	}
	pat, err := record.NewPatient(record.Common{}, "", time.Time{})
	if err == nil {
		_, err = v.Put(pat)
	}
	if err == nil {
		err = v.SetPatient(pat.ID)
	}
	if err == nil {
		err = v.AppendAudit(vault.AuditEntry{Event: AuditAccountCreate, Success: true, Client: client})
	}
	if cerr := v.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		d.store.remove(id) // a half-made account would block the name
		return api.CreateAccountResponse{}, err
	}
	return api.CreateAccountResponse{Username: u, RecoveryCode: code, PatientID: pat.ID}, nil
}

// Host says where a host's accounts are, for the commands run on it
// (phrd account create, phrd account import): the data directory, whose
// server.key names the accounts, and the database if the nodes keep
// their vaults in one (Config.DatabaseURL), else DATA/vaults.
type Host struct {
	DataDir     string
	DatabaseURL string
}

// open opens the data directory and the database; done closes them.
func (h Host) open(ctx context.Context) (d *dataDir, done func(), err error) {
	d, err = openDataDir(h.DataDir)
	if err != nil {
		return nil, nil, err
	}
	if h.DatabaseURL == "" {
		return d, func() {}, nil
	}
	pg, err := kv.OpenPostgres(ctx, h.DatabaseURL, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("the database: %w", err)
	}
	d.store = dbVaults{pg: pg}
	return d, pg.Close, nil
}

// CreateAccount makes an account, as POST /api/v1/accounts does: for
// `phrd account create` when registration is closed. It is safe while
// servers run on the host (and on the database).
func (h Host) CreateAccount(ctx context.Context, username, passphrase string) (api.CreateAccountResponse, error) {
	d, done, err := h.open(ctx)
	if err != nil {
		return api.CreateAccountResponse{}, err
	}
	defer done()
	res, err := d.createAccount(username, passphrase, "host", nil)
	if errors.Is(err, errAccountExists) {
		return res, errors.New("an account with that username exists")
	}
	return res, err
}

// CreateAccount makes an account in the data directory dir (its vault in
// DATA/vaults): Host{DataDir: dir}.CreateAccount.
func CreateAccount(dir, username, passphrase string) (api.CreateAccountResponse, error) {
	return Host{DataDir: dir}.CreateAccount(context.Background(), username, passphrase)
}
