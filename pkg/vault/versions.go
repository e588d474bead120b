package vault

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/phr-project/phr/pkg/kv"
	"github.com/phr-project/phr/pkg/record"
)

// Versions of imported records (format 3).
//
// Identifiers never make two records one: a record is a duplicate only
// when its fingerprint (source and clinical content) is in the vault. The
// identity index relates records that their source names alike
// (record.Identities: a business identifier, or the id in a known source
// system): a record from another file of the same source that names an
// earlier record alike but says something different is a new version of
// it. The earlier version goes to the history bucket, sealed; the record
// keeps its ID. Two records of one file that share an identity are both
// kept (a document may carry an admission and a discharge diagnosis under
// one entry id).
//
// Bucket layout:
//
//	identity: HMAC(identity input)[:16] ‖ record key (16) -> empty
//	history:  record key (16) ‖ version (uint64 BE)    -> sealed envelope of that version
//
// A history value is sealed like a record, bound to its bucket, key
// (record and version) and version, and covered by the authenticated head
// (head.go). Deleting a record removes its history (its content
// is gone); its identity keys stay, so that the source sending the record
// again does not bring it back.

// identityKeyLen is the length of the keyed identity prefix.
const identityKeyLen = 16

// identityKey returns the identity index prefix of one identity input.
func (k *keyring) identityKey(input []byte) []byte { return k.fingerprint(input) }

// historyKey is the history bucket key of a record's version.
func historyKey(recKey []byte, version uint64) []byte {
	out := make([]byte, 0, len(recKey)+8)
	out = append(out, recKey...)
	return binary.BigEndian.AppendUint64(out, version)
}

// keepHistory stores old, the version a write is about to replace, in the
// history bucket. hb is nil in a vault not upgraded yet (read-only).
func (v *Vault) keepHistory(hb kv.Bucket, old *record.Record) error {
	if hb == nil {
		return ErrReadOnly
	}
	k := historyKey(keyOf(old.ID), old.Version)
	pt, err := v.sealEnvelope(hb.Tx(), old)
	if err != nil {
		return err
	}
	return v.putSealed(hb, bucketHistory, k, old.Version, pt)
}

// dropHistory removes every earlier version of the record under recKey.
func (v *Vault) dropHistory(hb kv.Bucket, recKey []byte) error {
	if hb == nil {
		return nil
	}
	var keys [][]byte
	c := hb.Cursor()
	for k, _ := c.Seek(recKey); k != nil && bytes.HasPrefix(k, recKey) && len(k) == len(recKey)+8; k, _ = c.Next() {
		keys = append(keys, append([]byte(nil), k...))
	}
	for _, k := range keys {
		if err := v.deleteSealed(hb, bucketHistory, k); err != nil {
			return err
		}
	}
	return nil
}

// History returns the earlier versions of a record, oldest first. A
// record that was never replaced, or was deleted, has none.
func (v *Vault) History(id string) ([]record.Record, error) {
	var out []record.Record
	err := v.view(func(tx kv.Tx) error {
		rb := tx.Bucket([]byte{bucketRecords})
		key := keyOf(id)
		cur, err := v.load(rb, key)
		if err != nil {
			return err
		}
		// The record as the listing index holds it (format 4): a deleted
		// record has no history, whatever older entries a copy of the
		// file puts back.
		if err := v.checkListed(tx, &cur); err != nil {
			return err
		}
		hb := tx.Bucket([]byte{bucketHistory})
		if hb == nil || cur.Deleted {
			return nil
		}
		c := hb.Cursor()
		for k, sealed := c.Seek(key); k != nil && bytes.HasPrefix(k, key) && len(k) == len(key)+8; k, sealed = c.Next() {
			pt, _, err := v.openEnvelope(tx, bucketHistory, k, sealed)
			if err != nil {
				return fmt.Errorf("record %s: history: %w", id, err)
			}
			r, err := decodeRecord(pt)
			if err != nil || r.ID != id || r.Version != binary.BigEndian.Uint64(k[len(key):]) {
				return fmt.Errorf("record %s: %w: bad history entry", id, ErrCorrupt)
			}
			if r.Version >= cur.Version {
				return tampered(fmt.Sprintf("record %s: a history entry of version %d, not older than the record's %d", id, r.Version, cur.Version))
			}
			out = append(out, r)
		}
		return nil
	})
	return out, err
}

// putIdentities adds a record's identity keys to the index.
func (v *Vault) putIdentities(ib kv.Bucket, idents [][]byte, recKey []byte) error {
	if ib == nil || len(idents) == 0 {
		return nil
	}
	for _, in := range idents {
		k := append(v.keys.identityKey(in), recKey...)
		if err := ib.Put(k, nil); err != nil {
			return err
		}
	}
	return nil
}

// deleteIdentities removes a record's identity keys from the index.
func (v *Vault) deleteIdentities(ib kv.Bucket, idents [][]byte, recKey []byte) error {
	if ib == nil {
		return nil
	}
	for _, in := range idents {
		if err := ib.Delete(append(v.keys.identityKey(in), recKey...)); err != nil {
			return err
		}
	}
	return nil
}

// earlier is what findEarlier found for a new record.
type earlier struct {
	// dup: the vault holds the record already (ID of the one it holds).
	dup string
	// update: the record is a new version of this record.
	update *record.Record
}

// findEarlier looks for a record that the new record p, whose
// fingerprint is not in the vault, repeats or replaces: a record of the
// same source and type named alike and about the same thing (the identity
// index, record.Identities), or, in a vault upgraded from format 2, one
// whose fingerprint as format 2 computed it is p's (and which is about the
// same thing, record.SameThing). A candidate the patient deleted makes p a
// duplicate (what the patient deleted does not come back). A live candidate with p's content
// makes p a duplicate too; with other content, from another file, p is its
// new version; from the same file, both are kept. fixFP, if not nil, is
// called with the key of a live candidate whose content p repeats, so that
// the caller can store p's fingerprint for it.
func (v *Vault) findEarlier(tx kv.Tx, p *record.Record, fpIn []byte, claimed map[string]bool, fixFP func(key []byte)) (earlier, error) {
	rb, _, fb, _ := v.buckets(tx)
	ib := tx.Bucket([]byte{bucketIdentity})
	var cands [][]byte
	seen := map[string]bool{}
	add := func(k []byte) {
		if k != nil && !seen[string(k)] {
			seen[string(k)] = true
			cands = append(cands, append([]byte(nil), k...))
		}
	}
	if ib != nil {
		c := ib.Cursor()
		for _, in := range record.Identities(p) {
			prefix := v.keys.identityKey(in)
			for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
				if len(k) == identityKeyLen+16 {
					add(k[identityKeyLen:])
				}
			}
		}
	}
	legacyCand := map[string]bool{}
	if v.fpScheme2.Load() {
		if in, cl := record.LegacyFingerprint(p); in != nil {
			for _, k := range v.fingerprintKeys(p, in, cl) {
				if h := fb.Get(k); h != nil && !seen[string(h)] {
					legacyCand[string(h)] = true
					add(h)
				}
			}
		}
	}
	// Of several candidates, the one with p's own id in the source system
	// comes first, then the newest: a document may list two entries under
	// one identifier (an entry and its "#2"), and each pairs with its own.
	type cand struct {
		r    record.Record
		rank int
	}
	var viable []cand
	rank := func(r *record.Record) int {
		if r.Provenance.OriginalID != "" && r.Provenance.OriginalID == p.Provenance.OriginalID {
			return 0
		}
		return 1
	}
	legacy := v.fpScheme2.Load()
	for _, k := range cands {
		if claimed[string(k)] {
			continue // another resource of the batch restates it as it is
		}
		old, err := v.load(rb, k)
		if err != nil {
			if err == ErrNotFound {
				continue
			}
			return earlier{}, err
		}
		if old.Deleted {
			return earlier{dup: old.ID}, nil
		}
		if old.ResourceType != p.ResourceType {
			continue
		}
		// A record with p's content would have had p's fingerprint in the
		// index, unless it was fingerprinted before format 3.
		if legacy {
			if in, _ := record.Fingerprint(&old); bytes.Equal(in, fpIn) {
				if fixFP != nil {
					fixFP(k)
				}
				return earlier{dup: old.ID}, nil
			}
		}
		if (p.Provenance.FileSHA256 != "" && old.Provenance.FileSHA256 == p.Provenance.FileSHA256) || old.Provenance.Source() != p.Provenance.Source() {
			continue
		}
		if old.Provenance.PatientMismatch || p.Provenance.PatientMismatch {
			continue // about someone other than the owner: never a version of another record
		}
		if legacyCand[string(k)] && !record.SameThing(&old, p) {
			continue // named alike, about something else: another record
		}
		viable = append(viable, cand{old, rank(&old)})
	}
	if len(viable) == 0 {
		return earlier{}, nil
	}
	// The identity index names only records about the same thing (see
	// record.Identities); of several, the one with p's own id in the
	// source system comes first, then the newest.
	best := slices.MinFunc(viable, func(a, b cand) int {
		if a.rank != b.rank {
			return a.rank - b.rank
		}
		return cmp.Compare(b.r.Seq, a.r.Seq)
	})
	return earlier{update: &best.r}, nil
}

// prepared is a record on its way into the vault (Vault.add).
type prepared struct {
	// fpCl is the cluster the vault keys the fingerprint by, fpDay
	// record.Fingerprint's (see Vault.cluster).
	id, fpIn, fpCl, fpDay, fp []byte
	rec                       *record.Record
	// What decideDuplicates found: a duplicate of the stored record
	// dupKey, or of the batch's record dupIdx (-1: none); or twin, a
	// new resource equal to others of its file, to be stored with the
	// occurrence keys in extra.
	dupKey []byte
	dupIdx int
	twin   bool
	extra  [][]byte
}

// decideDuplicates decides, before anything of a batch is written, which
// of its records repeat content the vault (or an earlier record of the
// batch) holds. Deciding these first lets the identity matching that
// follows skip the records that a resource of the batch restates as they
// are (claimed): a document listing an entry as before and, under the
// same identifier, another entry, updates nothing; which order files
// come in does not change what the vault holds.
func (v *Vault) decideDuplicates(fb, rb kv.Bucket, prep []prepared, occ occurrences) (claimed map[string]bool, err error) {
	claimed = map[string]bool{}
	pending := map[string]int{} // fingerprint keys the batch will write, and whose record
	fps := make([][]byte, 0, len(prep))
	for i := range prep {
		if p := &prep[i]; p.fpIn != nil {
			p.fp = v.keys.fingerprintKey(p.fpIn, p.fpCl)
			fps = append(fps, p.fp)
		}
	}
	kv.Prefetch(fb, fps) // one statement on a database, not one per record
	for i := range prep {
		p := &prep[i]
		if p.fpIn == nil {
			continue
		}
		prov := &p.rec.Provenance
		var ok occurrenceKey
		if prov.OriginalID != "" && prov.FileSHA256 != "" {
			ok = occurrenceKey{prov.FileSHA256, string(p.fp)}
		}
		hit := v.findFingerprint(fb, p.fp, p.fpIn, p.fpDay)
		hitIdx := -1
		if hit == nil {
			if j, found := pending[string(p.fp)]; found {
				hitIdx = j
			}
		}
		dup := func(key []byte, idx int) {
			if key != nil {
				p.dupKey = append([]byte(nil), key...)
				claimed[string(key)] = true
			} else {
				p.dupIdx = idx
			}
		}
		if hit == nil && hitIdx < 0 {
			pending[string(p.fp)] = i
			if ok.file != "" {
				occ[ok] = append(occ[ok], prov.OriginalID)
			}
			continue
		}
		// The content is there. One resource of a file is that record; a
		// file with several equal resources that it tells apart by id
		// has the n-th of them under the n-th occurrence key.
		prior := occ[ok]
		if ok.file == "" || slices.Contains(prior, prov.OriginalID) {
			dup(hit, hitIdx)
			continue
		}
		occ[ok] = append(prior, prov.OriginalID)
		if len(prior) == 0 {
			dup(hit, hitIdx)
			continue
		}
		kn := v.keys.fingerprintKey(occurrenceInput(p.fpIn, len(prior)), p.fpCl)
		if h := fb.Get(kn); h != nil && rb.Get(h) != nil {
			dup(h, -1)
			continue
		}
		if v.fpDay.Load() && p.fpDay != nil {
			if h := fb.Get(v.keys.fingerprintKey(occurrenceInput(p.fpIn, len(prior)), p.fpDay)); h != nil && rb.Get(h) != nil {
				dup(h, -1)
				continue
			}
		}
		if j, found := pending[string(kn)]; found {
			dup(nil, j)
			continue
		}
		pending[string(kn)] = i
		p.twin = true
		p.extra = append(p.extra, kn)
	}
	return claimed, nil
}

// occurrences remembers, during one import, the original ids of a file's
// resources with one content that the vault already held. A file may hold
// several equal resources that it tells apart by id (Synthea writes equal
// encounters that observations reference by id): the first is the record
// with that content, whichever file gave it; the n-th (n >= 1) is the
// record under the n-th occurrence key. So a file adds as many records of
// a content as it holds resources of it, once, in whatever order files are
// imported. Resources without an original id are one when their content
// is.
type occurrences map[occurrenceKey][]string

type occurrenceKey struct {
	file string // the file's SHA-256
	fp   string // the keyed fingerprint
}

// occurrenceInput is the fingerprint input of the n-th (n >= 1) of a
// file's resources with content fpIn.
func occurrenceInput(fpIn []byte, n int) []byte {
	h := sha256.New()
	h.Write([]byte("occurrence\x00"))
	h.Write(fpIn)
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(n))
	h.Write(b[:])
	return h.Sum(nil)
}

// dropOccurrence removes the occurrence key of a content that points to
// recKey, keeping the keys numbered from 1 without a gap: the last one
// takes its place.
func (v *Vault) dropOccurrence(fb kv.Bucket, fpIn, fpCl, recKey []byte) error {
	keys := v.occurrenceKeys(fb, fpIn, fpCl)
	for i, k := range keys {
		if !bytes.Equal(fb.Get(k), recKey) {
			continue
		}
		last := keys[len(keys)-1]
		if i != len(keys)-1 {
			if err := fb.Put(k, append([]byte(nil), fb.Get(last)...)); err != nil {
				return err
			}
		}
		return fb.Delete(last)
	}
	return nil
}

// occurrenceKeys returns the keys of a content's occurrences that the
// dedup index holds, in order, up to the first missing one.
func (v *Vault) occurrenceKeys(fb kv.Bucket, fpIn, fpCl []byte) [][]byte {
	var out [][]byte
	for n := 1; ; n++ {
		k := v.keys.fingerprintKey(occurrenceInput(fpIn, n), fpCl)
		if fb.Get(k) == nil {
			return out
		}
		out = append(out, k)
	}
}
