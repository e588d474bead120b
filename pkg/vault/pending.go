package vault

import (
	"bytes"
	"slices"

	"github.com/phr-project/phr/pkg/kv"
)

// Fingerprints an import has not written yet.
//
// The dedup index is keyed by a keyed hash of each record's content
// after its cluster (source, type, week): a batch of an import adds a few
// keys to each of many clusters spread over the whole index, and each
// commit rewrites every page it adds a key to. An import therefore keeps
// the fingerprints of the records it adds in memory and writes them
// sorted, fpFlushAt at a time and with its last batch, so that each page
// of the index is rewritten once for many keys: on the Apple Health
// export of docs/performance.md this took the bytes the index cost an
// import from 1.3 to about 0.3 times the export's size.
//
// Until they are written, lookups of this process find them here
// (findFingerprint), so a record repeated within the import or by
// another writer of this process is still a duplicate. A crash loses
// them with the import itself: its marker makes the next open roll the
// whole import back. Another process cannot write to the vault while
// this one holds it.
//
// Only a vault file of its own (Open) defers them. A vault in a store
// (OpenIn) may have other Vaults writing to it (phrd nodes), which would
// not find fingerprints held in this one's memory and would add the same
// records again: there each batch writes its records' fingerprints in
// its own transaction (a PostgreSQL namespace has no pages to rewrite).
var fpFlushAt = 8192

// fpFill is how full the dedup index's pages are when they split.
const fpFill = 0.85

type pendingFP struct {
	rec []byte
	im  *Import
}

// deferFingerprint keeps a fingerprint of im's to write later.
func (v *Vault) deferFingerprint(im *Import, key, rec []byte) {
	v.pendMu.Lock()
	defer v.pendMu.Unlock()
	if v.pending == nil {
		v.pending = map[string]pendingFP{}
	}
	if _, ok := v.pending[string(key)]; !ok {
		v.pending[string(key)] = pendingFP{rec: rec, im: im}
		im.pendingN++
	}
}

// pendingFingerprint returns the record a fingerprint not written yet
// points to, or nil.
func (v *Vault) pendingFingerprint(key []byte) []byte {
	v.pendMu.Lock()
	defer v.pendMu.Unlock()
	return v.pending[string(key)].rec
}

// pendingFingerprints returns how many fingerprints im has not written.
func (v *Vault) pendingFingerprints(im *Import) int {
	v.pendMu.Lock()
	defer v.pendMu.Unlock()
	return im.pendingN
}

// flushFingerprints writes im's fingerprints, in key order, into fb in
// the running transaction. They stay pending until it commits: if it
// does not, the import fails and is rolled back.
func (v *Vault) flushFingerprints(fb kv.Bucket, im *Import) error {
	v.pendMu.Lock()
	type kv struct{ k, v []byte }
	var all []kv
	for k, p := range v.pending {
		if p.im == im {
			all = append(all, kv{[]byte(k), p.rec})
		}
	}
	v.pendMu.Unlock()
	if len(all) == 0 {
		return nil
	}
	slices.SortFunc(all, func(a, b kv) int { return bytes.Compare(a.k, b.k) })
	// Sorted keys go in a few at a time between others: pages split
	// fuller than bbolt's half leave less room unused.
	setFill(fb, fpFill)
	for _, e := range all {
		if fb.Get(e.k) != nil {
			continue
		}
		if err := fb.Put(e.k, e.v); err != nil {
			return err
		}
	}
	v.onCommit(func() { v.dropFingerprints(im) })
	return nil
}

// dropFingerprints forgets im's pending fingerprints (written, or the
// import aborted).
func (v *Vault) dropFingerprints(im *Import) {
	v.pendMu.Lock()
	defer v.pendMu.Unlock()
	for k, p := range v.pending {
		if p.im == im {
			delete(v.pending, k)
		}
	}
	im.pendingN = 0
}
