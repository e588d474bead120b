//go:build !linux

package vault

import "github.com/phr-project/phr/pkg/kv"

func (v *Vault) trimMapped() {}

func (v *Vault) trimTx(kv.Tx) {}

const trimInTx = 128

type scanTrim struct{}

func (v *Vault) scanTrimmer() *scanTrim { return &scanTrim{} }

func (s *scanTrim) tick(kv.Tx) {}

func (s *scanTrim) read(kv.Tx, int) {}

func (v *Vault) guardMapped(_ kv.Tx, fn func()) { fn() }
