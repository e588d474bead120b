// Package vaulttest makes vaults for the tests of the packages above the
// vault (importers, sharing, documents): a new vault in the test's
// temporary directory, opened by a fresh device identity (no passphrase,
// so no scrypt) and closed when the test ends, its owner, and real files
// imported into it through the import pipeline.
//
// It is imported by tests only.
package vaulttest

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/phr-project/phr/pkg/importers/all"
	"github.com/phr-project/phr/pkg/importers/pipeline"
	"github.com/phr-project/phr/pkg/record"
	"github.com/phr-project/phr/pkg/vault"
)

// New creates a vault in the test's temporary directory, without fsync.
// The test's cleanup closes it.
func New(t testing.TB) *vault.Vault {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	v, err := vault.Create(filepath.Join(t.TempDir(), "v.phr"), []vault.SlotSpec{{Kind: vault.SlotDevice, Recipients: []age.Recipient{id.Recipient()}}}, &vault.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	return v
}

// SetOwner makes a Patient of name and birth date (either may be empty),
// stores it in v and makes it the vault's owner, whom imports compare
// with each file's subject.
func SetOwner(t testing.TB, v *vault.Vault, name string, birth time.Time) record.Record {
	t.Helper()
	p, err := record.NewPatient(record.Common{}, name, birth)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Put(p); err != nil {
		t.Fatal(err)
	}
	if err := v.SetPatient(p.ID); err != nil {
		t.Fatal(err)
	}
	return p
}

// Import imports the files at paths into v with every importer, as phr
// import --accept-patient-mismatch does (the shared files are about many
// people), and fails the test if one does not import.
func Import(t testing.TB, v *vault.Vault, paths ...string) {
	t.Helper()
	for _, p := range paths {
		in, f, err := pipeline.OpenFile(p)
		if err != nil {
			t.Fatal(err)
		}
		_, err = pipeline.Import(context.Background(), all.Default(), v, in, pipeline.Options{AcceptPatientMismatch: true})
		f.Close()
		if err != nil {
			t.Fatalf("import %s: %v", filepath.Base(p), err)
		}
	}
}

// Contents returns v's owner (the zero Record when it has none) and all
// its records, the owner's among them.
func Contents(t testing.TB, v *vault.Vault) (record.Record, []record.Record) {
	t.Helper()
	recs, err := v.List(vault.Query{})
	if err != nil {
		t.Fatal(err)
	}
	owner, err := v.Patient()
	if err != nil && !errors.Is(err, vault.ErrNoPatient) {
		t.Fatal(err)
	}
	return owner, recs
}
