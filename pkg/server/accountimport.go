package server

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"filippo.io/age"
	"github.com/phr-project/phr/pkg/server/api"
	"github.com/phr-project/phr/pkg/vault"
)

// ImportedAccount is what ImportAccount made.
type ImportedAccount struct {
	api.CreateAccountResponse
	// Records is the number of records (and earlier versions) restored.
	Records int
}

// ImportAccount makes the account username in the data directory dir from
// a backup (docs/backup.md: `phr backup`, or POST /api/v1/backup of
// another phrd), as `phrd account import` does. The account gets the
// backup's records with their IDs, versions, history and provenance, and
// its settings (the patient among them), under a new vault key wrapped for
// passphrase and a new recovery code. The backup is read whole and
// verified before the account exists, so a backup that is damaged, cut
// short or not opened by identities leaves no account. A username that
// is taken is refused, also when another process takes it meanwhile. It
// is safe while a server runs on dir.
func ImportAccount(dir, username, passphrase string, backup io.Reader, identities []age.Identity) (ImportedAccount, error) {
	d, err := openDataDir(dir)
	if err != nil {
		return ImportedAccount{}, err
	}
	u, err := NormalizeUsername(username)
	if err != nil {
		return ImportedAccount{}, err
	}
	if err := checkPassphrase(passphrase); err != nil {
		return ImportedAccount{}, err
	}
	path := d.vaultPath(d.accountID(u))
	if d.exists(d.accountID(u)) {
		return ImportedAccount{}, errors.New("an account with that username exists")
	}
	// Built in DATA/tmp (the same file system) and linked into place: a
	// link fails where a rename would replace an account made meanwhile.
	work, err := os.MkdirTemp(d.tmp, "import-")
	if err != nil {
		return ImportedAccount{}, err
	}
	defer os.RemoveAll(work)
	tmp := filepath.Join(work, "vault.phr")
	code := vault.NewRecoveryCode()
	_, n, err := vault.Restore(backup, identities, tmp, []vault.SlotSpec{
		{Kind: vault.SlotPassphrase, Label: "passphrase", Passphrase: passphrase},
		{Kind: vault.SlotRecovery, Label: "recovery code", RecoveryCode: code},
	}, false)
	if err != nil {
		return ImportedAccount{}, fmt.Errorf("backup: %w (no account was made)", err)
	}
	v, err := vault.Open(tmp, vault.Passphrase(passphrase), nil)
	if err != nil {
		return ImportedAccount{}, err
	}
	var patientID string
	if pat, err := v.Patient(); err == nil {
		patientID = pat.ID
	}
	err = v.AppendAudit(vault.AuditEntry{Event: AuditAccountImport, Success: true, Client: "host", Counts: map[string]int{"records": n}})
	if cerr := v.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return ImportedAccount{}, err
	}
	if err := os.Link(tmp, path); err != nil {
		if errors.Is(err, os.ErrExist) {
			return ImportedAccount{}, errors.New("an account with that username exists")
		}
		return ImportedAccount{}, err
	}
	if dir, err := os.Open(d.vaults); err == nil {
		err = dir.Sync()
		dir.Close()
		if err != nil {
			return ImportedAccount{}, err
		}
	}
	return ImportedAccount{CreateAccountResponse: api.CreateAccountResponse{Username: u, RecoveryCode: code, PatientID: patientID}, Records: n}, nil
}
