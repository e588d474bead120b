package vault

import (
	"errors"
	"fmt"

	"github.com/phr-project/phr/pkg/record"
)

// settingPatient names the setting that holds the record ID of the
// vault owner's Patient resource: the one person the vault is about.
const settingPatient = "patient"

// ErrNoPatient is returned by Patient when the vault names no owner.
var ErrNoPatient = errors.New("vault: the vault has no Patient record for its owner")

// Patient returns the vault owner's Patient record.
func (v *Vault) Patient() (record.Record, error) {
	id, err := v.Setting(settingPatient)
	if errors.Is(err, ErrNotFound) || (err == nil && len(id) == 0) {
		return record.Record{}, ErrNoPatient
	}
	if err != nil {
		return record.Record{}, err
	}
	r, err := v.Get(string(id))
	if errors.Is(err, ErrNotFound) {
		return record.Record{}, ErrNoPatient
	}
	if err != nil {
		return record.Record{}, err
	}
	if r.Deleted || r.ResourceType != "Patient" {
		return record.Record{}, fmt.Errorf("%w: the owner's record is not a live Patient", ErrCorrupt)
	}
	return r, nil
}

// SetPatient makes the Patient record with the given ID the vault's
// owner.
func (v *Vault) SetPatient(id string) error {
	r, err := v.Get(id)
	if err != nil {
		return err
	}
	if r.Deleted || r.ResourceType != "Patient" {
		return fmt.Errorf("vault: record %s is not a live Patient", id)
	}
	return v.SetSetting(settingPatient, []byte(id))
}
