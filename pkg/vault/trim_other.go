//go:build !linux

package vault

import bolt "go.etcd.io/bbolt"

func (v *Vault) trimMapped() {}

func (v *Vault) trimTx(*bolt.Tx) {}

const trimInTx = 128
