package vault

import "github.com/phr-project/phr/pkg/record"

// NewID returns a record ID of this vault's run (record.IDRun): IDs made
// one after another share their last 40 bits, so that a batch's records
// are neighbours in the file, and no other vault (or phrd account) ever
// gets an ID of the same run.
func (v *Vault) NewID() string { return v.ids.Next() }

// IDs is the vault's run of record IDs, for builders of a batch of
// records for this vault (record.Common.IDs).
func (v *Vault) IDs() *record.IDRun { return &v.ids }
