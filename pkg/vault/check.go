package vault

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/phr-project/phr/pkg/kv"
	"github.com/phr-project/phr/pkg/record"
)

// Problem is one inconsistency found by Check.
type Problem struct {
	// ID is the record concerned, if any.
	ID string `json:"id,omitempty"`
	// What says what is wrong, without any content of the record.
	What string `json:"what"`
	// Repairable is true when Check(true) fixes it by rebuilding indexes.
	Repairable bool `json:"repairable"`
}

// CheckReport is what Check found.
type CheckReport struct {
	Records    int       `json:"records"`
	Tombstones int       `json:"tombstones"`
	Problems   []Problem `json:"problems"`
	Repaired   bool      `json:"repaired"`
	// RolledBack are the interrupted imports that opening the vault
	// rolled back (Vault.RolledBack): not problems, since nothing of them
	// is left, but worth telling.
	RolledBack []Rollback `json:"rolledBack,omitempty"`
}

// OK reports whether Check found nothing wrong.
func (r *CheckReport) OK() bool { return len(r.Problems) == 0 }

// Check verifies every record's seal and envelope, that every value
// matches the authenticated head (head.go), that the listing index (the
// kind index before format 4), the fingerprints and the changes feed
// agree with the records, and that no import a crash interrupted is left
// (in a vault opened read-only: Open rolls them back otherwise). It
// changes nothing unless repair is true; then it rolls back interrupted
// imports and rebuilds the indexes and the changes feed from the records
// that open. Records that fail to open are reported, never deleted, and
// values that do not match the head are not repaired: the owner restores
// a backup, or accepts the file as it is (AcceptHead). CheckDeep also has
// bbolt check the file's B+tree and recomputes each record's fingerprints
// and identities (a vault before format 4 always gets all of it).
func (v *Vault) Check(repair bool) (*CheckReport, error) {
	if v.format >= 4 {
		return v.check4(repair, false)
	}
	return v.checkLegacy(repair)
}

// checkLegacy is Check for a vault before format 4 (opened read-only:
// opened for writing it is upgraded), with maps of every index in
// memory.
func (v *Vault) checkLegacy(repair bool) (*CheckReport, error) {
	rep := &CheckReport{RolledBack: v.RolledBack()}
	var needRebuild, needRollback bool
	err := v.view(func(tx kv.Tx) error {
		for err := range fileCheck(tx) {
			rep.Problems = append(rep.Problems, Problem{What: "file structure: " + err.Error()})
		}
		for _, what := range v.headProblems(tx) {
			rep.Problems = append(rep.Problems, Problem{What: what})
		}
		rb, xb, fb, cb := v.buckets(tx)
		wantIndex := map[string]bool{}
		// wantFinger: the fingerprint of each record, with the records
		// that have it (equal resources of one file share one).
		wantFinger := map[string]map[string]bool{}
		wantIdent := map[string]bool{}
		legacy := map[string]string{} // legacy fingerprint key -> key
		seqOf := map[uint64]string{}
		err := rb.ForEach(func(k, _ []byte) error {
			r, err := v.load(rb, k)
			if err != nil {
				rep.Problems = append(rep.Problems, Problem{ID: idOf(k), What: "record does not open: " + err.Error()})
				return nil
			}
			if r.Deleted {
				rep.Tombstones++
			} else {
				rep.Records++
				wantIndex[string(v.indexKey(r.Kind, k))] = true
				for _, in := range record.Identities(&r) {
					wantIdent[string(append(v.keys.identityKey(in), k...))] = true
				}
			}
			if fp := v.fingerprintOf(v.keys, &r); fp != nil {
				if wantFinger[string(fp)] == nil {
					wantFinger[string(fp)] = map[string]bool{}
				}
				wantFinger[string(fp)][string(k)] = true
				if v.fpLegacy.Load() {
					in, _ := record.Fingerprint(&r)
					legacy[string(v.keys.fingerprint(in))] = string(fp)
				}
			}
			if other, dup := seqOf[r.Seq]; dup {
				rep.Problems = append(rep.Problems, Problem{ID: r.ID, What: fmt.Sprintf("shares change sequence %d with %s", r.Seq, idOf([]byte(other))), Repairable: true})
			}
			seqOf[r.Seq] = string(k)
			if got := cb.Get(seqKey(r.Seq)); !bytes.Equal(got, k) {
				rep.Problems = append(rep.Problems, Problem{ID: r.ID, What: "missing from the changes feed", Repairable: true})
			}
			return nil
		})
		if err != nil {
			return err
		}
		xb.ForEach(func(k, _ []byte) error {
			if !wantIndex[string(k)] {
				id := ""
				if len(k) > 8 {
					id = idOf(k[8:])
				}
				rep.Problems = append(rep.Problems, Problem{ID: id, What: "kind index entry without a live record of that kind", Repairable: true})
			}
			delete(wantIndex, string(k))
			return nil
		})
		for k := range wantIndex {
			rep.Problems = append(rep.Problems, Problem{ID: idOf([]byte(k[8:])), What: "record missing from the kind index", Repairable: true})
		}
		fb.ForEach(func(k, val []byte) error {
			if nk, ok := legacy[string(k)]; ok {
				k = []byte(nk)
			}
			want, ok := wantFinger[string(k)]
			switch {
			case ok && !want[string(val)] && !changedSince(v, rb, val):
				rep.Problems = append(rep.Problems, Problem{ID: idOf(val), What: "fingerprint points to the wrong record", Repairable: true})
			case !ok && rb.Get(val) == nil:
				rep.Problems = append(rep.Problems, Problem{ID: idOf(val), What: "fingerprint of a record that does not exist", Repairable: true})
			}
			delete(wantFinger, string(k))
			return nil
		})
		for _, keys := range wantFinger {
			for key := range keys {
				if v.fpScheme2.Load() && v.hasLegacyFingerprint(rb, fb, []byte(key)) {
					continue // found as formats 1 and 2 fingerprinted it
				}
				rep.Problems = append(rep.Problems, Problem{ID: idOf([]byte(key)), What: "record missing from the dedup fingerprints", Repairable: true})
				break
			}
		}
		if ib := tx.Bucket([]byte{bucketIdentity}); ib != nil {
			ib.ForEach(func(k, _ []byte) error {
				if len(k) != identityKeyLen+16 || rb.Get(k[identityKeyLen:]) == nil {
					rep.Problems = append(rep.Problems, Problem{What: "identity index entry of a record that does not exist", Repairable: true})
				}
				delete(wantIdent, string(k))
				return nil
			})
			for k := range wantIdent {
				if v.fpScheme2.Load() {
					break // records imported before format 3 have none
				}
				rep.Problems = append(rep.Problems, Problem{ID: idOf([]byte(k[identityKeyLen:])), What: "record missing from the identity index", Repairable: true})
			}
		}
		if hb := tx.Bucket([]byte{bucketHistory}); hb != nil {
			hb.ForEach(func(k, sealed []byte) error {
				if len(k) != 16+8 || rb.Get(k[:16]) == nil {
					rep.Problems = append(rep.Problems, Problem{What: "earlier version of a record that does not exist", Repairable: true})
					return nil
				}
				id := idOf(k[:16])
				pt, err := v.keys.open(bucketHistory, k, sealed)
				if err != nil {
					rep.Problems = append(rep.Problems, Problem{ID: id, What: "earlier version does not open: " + err.Error()})
					return nil
				}
				if r, err := decodeRecord(pt); err != nil || r.ID != id || r.Version != binary.BigEndian.Uint64(k[16:]) {
					rep.Problems = append(rep.Problems, Problem{ID: id, What: "earlier version: bad envelope"})
				}
				return nil
			})
		}
		last := cb.Sequence()
		cb.ForEach(func(k, val []byte) error {
			seq := binary.BigEndian.Uint64(k)
			if seqOf[seq] != string(val) {
				rep.Problems = append(rep.Problems, Problem{ID: idOf(val), What: fmt.Sprintf("stale changes feed entry %d", seq), Repairable: true})
			}
			if seq > last {
				rep.Problems = append(rep.Problems, Problem{What: "changes feed entry beyond the vault's sequence", Repairable: true})
			}
			return nil
		})
		for _, p := range rep.Problems {
			if p.Repairable {
				needRebuild = true
			}
		}
		needRollback, err = v.markProblems(tx, rep)
		return err
	})
	if err != nil {
		return nil, err
	}
	return v.finishCheck(rep, repair, needRebuild, needRollback)
}

// hasLegacyFingerprint reports whether the record under key is in the
// dedup index under the fingerprint formats 1 and 2 gave it.
func (v *Vault) hasLegacyFingerprint(rb, fb kv.Bucket, key []byte) bool {
	r, err := v.load(rb, key)
	if err != nil {
		return false
	}
	in, cl := record.LegacyFingerprint(&r)
	for _, k := range v.fingerprintKeys(&r, in, cl) {
		if bytes.Equal(fb.Get(k), key) {
			return true
		}
	}
	return false
}

// changedSince reports whether the record under key has versions after
// its first: a fingerprint of an earlier version may point to it.
func changedSince(v *Vault, rb kv.Bucket, key []byte) bool {
	r, err := v.load(rb, key)
	return err == nil && r.Version > 1
}

// rebuild recreates the kind index, the fingerprints and the changes feed
// from the records that open, keeping each record's change sequence where
// it is unique, and the fingerprints of records that exist.
func (v *Vault) rebuild() error {
	defer v.meta.reset()
	return v.update(func(tx kv.Tx) error {
		rb := tx.Bucket([]byte{bucketRecords})
		last := tx.Bucket([]byte{bucketChanges}).Sequence()
		// Fingerprints of records that exist stay even when the records'
		// content no longer gives them: a tombstone's (it has no content)
		// and an edited record's (the original's), so that re-importing
		// the file still finds them.
		var keep [][2][]byte
		tx.Bucket([]byte{bucketFinger}).ForEach(func(k, val []byte) error {
			if rb.Get(val) != nil {
				keep = append(keep, [2][]byte{append([]byte(nil), k...), append([]byte(nil), val...)})
			}
			return nil
		})
		for _, name := range []byte{bucketIndex, bucketFinger, bucketChanges} {
			if name == bucketIndex && v.format >= 4 {
				continue // format 4 has no kind index
			}
			if err := tx.DeleteBucket([]byte{name}); err != nil {
				return err
			}
			if _, err := tx.CreateBucket([]byte{name}); err != nil {
				return err
			}
		}
		xb, fb, cb := tx.Bucket([]byte{bucketIndex}), tx.Bucket([]byte{bucketFinger}), tx.Bucket([]byte{bucketChanges})
		var renumber [][]byte
		var ix indexWriter
		converted := map[string]bool{} // legacy keys that ix writes anew
		err := rb.ForEach(func(k, _ []byte) error {
			r, err := v.load(rb, k)
			if err != nil {
				return nil // reported by Check; left as it is
			}
			ix.add(v, v.keys, &r, k)
			if in, _ := record.Fingerprint(&r); in != nil && !r.Deleted && v.fpLegacy.Load() {
				converted[string(v.keys.fingerprint(in))] = true
			}
			if r.Seq == 0 || r.Seq > last || cb.Get(seqKey(r.Seq)) != nil {
				renumber = append(renumber, append([]byte(nil), k...))
				return nil
			}
			return cb.Put(seqKey(r.Seq), append([]byte(nil), k...))
		})
		if err != nil {
			return err
		}
		// Identity keys of records that exist stay (a tombstone's, which
		// its content no longer gives), the rest is recomputed.
		ib := tx.Bucket([]byte{bucketIdentity})
		if ib != nil {
			var stale [][]byte
			ib.ForEach(func(k, _ []byte) error {
				if len(k) != identityKeyLen+16 || rb.Get(k[identityKeyLen:]) == nil {
					stale = append(stale, append([]byte(nil), k...))
				}
				return nil
			})
			for _, k := range stale {
				if err := ib.Delete(k); err != nil {
					return err
				}
			}
		}
		if err := ix.write(xb, fb, ib); err != nil {
			return err
		}
		if hb := tx.Bucket([]byte{bucketHistory}); hb != nil {
			var orphans [][]byte
			hb.ForEach(func(k, _ []byte) error {
				if len(k) != 16+8 || rb.Get(k[:16]) == nil {
					orphans = append(orphans, append([]byte(nil), k...))
				}
				return nil
			})
			for _, k := range orphans {
				if err := v.deleteSealed(hb, bucketHistory, k); err != nil {
					return err
				}
			}
		}
		legacyKept := false
		for _, e := range keep {
			if fb.Get(e[0]) != nil || converted[string(e[0])] {
				continue // recomputed (for this record or, repaired, another)
			}
			if err := fb.Put(e[0], e[1]); err != nil {
				return err
			}
			legacyKept = legacyKept || len(e[0]) != fpKeyLen
		}
		if !legacyKept {
			if err := v.fingerprintsRebuilt(tx); err != nil {
				return err
			}
		}
		if err := cb.SetSequence(last); err != nil {
			return err
		}
		for _, k := range renumber {
			r, err := v.load(rb, k)
			if err != nil {
				return err
			}
			seq, err := cb.NextSequence()
			if err != nil {
				return err
			}
			r.Seq = seq
			if err := cb.Put(seqKey(seq), k); err != nil {
				return err
			}
			pt, err := v.sealEnvelope(tx, &r)
			if err != nil {
				return err
			}
			if err := v.putSealed(rb, bucketRecords, k, r.Version, pt); err != nil {
				return err
			}
		}
		if v.format < 4 || v.wh == nil {
			return nil
		}
		// The listing index anew, from the records that open.
		return v.buildListing(tx, v.wh.list, 0, func(tx kv.Tx, nm *listMeta, first uint64) error {
			v.wh.list = nm
			return v.dropNodesExcept(tx, first, nm.next)
		})
	})
}
