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
// The more are written at once, the longer the runs of keys each
// cluster gets in one flush, and the fuller the pages they fill: bbolt
// splits a page it added keys to at the bucket's fill percent, and
// leaves the rest on a page of its own. Flushes of 8,192 left the
// index's pages 70% full (25 MB for 308,000 records) however the fill
// percent was set; 32,768, with pages split full, 88% (20 MB), and
// 65,536 91%, but the map that holds them (about 60 bytes a
// fingerprint, and a map's table never shrinks) then cost an import of
// 1.5 million records 18 MB more at its peak, against 5 MB for 32,768.
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
var fpFlushAt = 32768

// fpFill is how full the dedup index's pages are when they split: full,
// since a flush inserts long sorted runs (above).
const fpFill = 1.0

// fpKey is a fingerprint's key in the dedup index (format 4: cluster
// prefix ‖ content HMAC).
type fpKey [fpKeyLen]byte

// recordKeyLen is the length of the key of a record whose ID the vault
// made (keyOf).
const recordKeyLen = 16

type pendingFP struct {
	rec [recordKeyLen]byte
	im  *Import
}

// deferFingerprint keeps a fingerprint of im's to write later. It
// reports false, keeping nothing, for a key or record key of another
// length than format 4's: the caller writes that one at once.
func (v *Vault) deferFingerprint(im *Import, key, rec []byte) bool {
	var k fpKey
	var p pendingFP
	if len(key) != len(k) || len(rec) != len(p.rec) {
		return false
	}
	copy(k[:], key)
	copy(p.rec[:], rec)
	p.im = im
	v.pendMu.Lock()
	defer v.pendMu.Unlock()
	if v.pending == nil {
		v.pending = map[fpKey]pendingFP{}
	}
	if _, ok := v.pending[k]; !ok {
		v.pending[k] = p
		im.pendingN++
	}
	return true
}

// pendingFingerprint returns the record a fingerprint not written yet
// points to, or nil.
func (v *Vault) pendingFingerprint(key []byte) []byte {
	var k fpKey
	if len(key) != len(k) {
		return nil
	}
	copy(k[:], key)
	v.pendMu.Lock()
	defer v.pendMu.Unlock()
	p, ok := v.pending[k]
	if !ok {
		return nil
	}
	return p.rec[:]
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
	type kv struct {
		k fpKey
		v [recordKeyLen]byte
	}
	all := make([]kv, 0, im.pendingN)
	for k, p := range v.pending {
		if p.im == im {
			all = append(all, kv{k, p.rec})
		}
	}
	v.pendMu.Unlock()
	if len(all) == 0 {
		return nil
	}
	slices.SortFunc(all, func(a, b kv) int { return bytes.Compare(a.k[:], b.k[:]) })
	setFill(fb, fpFill)
	for i := range all {
		e := &all[i]
		if fb.Get(e.k[:]) != nil {
			continue
		}
		if err := fb.Put(e.k[:], e.v[:]); err != nil {
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
