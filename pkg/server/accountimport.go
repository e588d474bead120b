package server

import (
	"context"
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

// ImportAccount makes the account username in the data directory dir
// (its vault in DATA/vaults) from a backup: Host{DataDir: dir}.ImportAccount.
func ImportAccount(dir, username, passphrase string, backup io.Reader, identities []age.Identity) (ImportedAccount, error) {
	return Host{DataDir: dir}.ImportAccount(context.Background(), username, passphrase, backup, identities)
}

// ImportAccount makes the account username from a backup (docs/backup.md:
// `phr backup`, or POST /api/v1/backup of another phrd), as `phrd account
// import` does. The account gets the backup's records with their IDs,
// versions, history and provenance, and its settings (the patient among
// them), under a new vault key wrapped for passphrase and a new recovery
// code. The vault is built whole in DATA/tmp (the audit entry of the
// import included) and verified before the account exists, then put in
// place at once (a link of the file, or one transaction of the database):
// a backup that is damaged, cut short or not opened by identities leaves
// no account. A username that is taken is refused, also when another
// process or node takes it meanwhile. It is safe while servers run.
func (h Host) ImportAccount(ctx context.Context, username, passphrase string, backup io.Reader, identities []age.Identity) (ImportedAccount, error) {
	d, done, err := h.open(ctx)
	if err != nil {
		return ImportedAccount{}, err
	}
	defer done()
	u, err := NormalizeUsername(username)
	if err != nil {
		return ImportedAccount{}, err
	}
	if err := checkPassphrase(passphrase); err != nil {
		return ImportedAccount{}, err
	}
	taken := errors.New("an account with that username exists")
	id := d.accountID(u)
	if ok, err := d.exists(id); err != nil {
		return ImportedAccount{}, err
	} else if ok {
		return ImportedAccount{}, taken
	}
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
	if _, err := d.store.install(id, tmp); err != nil {
		if errors.Is(err, errAccountExists) {
			return ImportedAccount{}, taken
		}
		return ImportedAccount{}, err
	}
	return ImportedAccount{CreateAccountResponse: api.CreateAccountResponse{Username: u, RecoveryCode: code, PatientID: patientID}, Records: n}, nil
}
