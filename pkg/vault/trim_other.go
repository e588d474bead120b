//go:build !linux

package vault

import bolt "go.etcd.io/bbolt"

func (v *Vault) trimMapped() {}

func (v *Vault) trimTx(*bolt.Tx) {}

const trimInTx = 128

type scanTrim struct{}

func (v *Vault) scanTrimmer() *scanTrim { return &scanTrim{} }

func (s *scanTrim) tick(*bolt.Tx) {}

func (s *scanTrim) read(*bolt.Tx, int) {}

func (v *Vault) guardMapped(_ *bolt.Tx, fn func()) { fn() }
