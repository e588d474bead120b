//go:build !linux

package vault

func (v *Vault) trimMapped() {}
