package vault

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/phr-project/phr/pkg/record"
	bolt "go.etcd.io/bbolt"
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
// A history value is sealed like a record, bound to its bucket and key
// (record and version). Deleting a record removes its history (its content
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
func (v *Vault) keepHistory(hb *bolt.Bucket, old *record.Record) error {
	if hb == nil {
		return ErrReadOnly
	}
	k := historyKey(keyOf(old.ID), old.Version)
	return hb.Put(k, v.keys.seal(bucketHistory, k, encodeRecord(old)))
}

// dropHistory removes every earlier version of the record under recKey.
func dropHistory(hb *bolt.Bucket, recKey []byte) error {
	if hb == nil {
		return nil
	}
	c := hb.Cursor()
	for k, _ := c.Seek(recKey); k != nil && bytes.HasPrefix(k, recKey) && len(k) == len(recKey)+8; k, _ = c.Seek(recKey) {
		if err := c.Delete(); err != nil {
			return err
		}
	}
	return nil
}

// History returns the earlier versions of a record, oldest first. A
// record that was never replaced, or was deleted, has none.
func (v *Vault) History(id string) ([]record.Record, error) {
	var out []record.Record
	err := v.view(func(tx *bolt.Tx) error {
		rb := tx.Bucket([]byte{bucketRecords})
		key := keyOf(id)
		if rb.Get(key) == nil {
			return ErrNotFound
		}
		hb := tx.Bucket([]byte{bucketHistory})
		if hb == nil {
			return nil
		}
		c := hb.Cursor()
		for k, sealed := c.Seek(key); k != nil && bytes.HasPrefix(k, key) && len(k) == len(key)+8; k, sealed = c.Next() {
			pt, err := v.keys.open(bucketHistory, k, sealed)
			if err != nil {
				return fmt.Errorf("record %s: history: %w", id, err)
			}
			r, err := decodeRecord(pt)
			if err != nil || r.ID != id || r.Version != binary.BigEndian.Uint64(k[len(key):]) {
				return fmt.Errorf("record %s: %w: bad history entry", id, ErrCorrupt)
			}
			out = append(out, r)
		}
		return nil
	})
	return out, err
}

// putIdentities adds a record's identity keys to the index.
func (v *Vault) putIdentities(ib *bolt.Bucket, idents [][]byte, recKey []byte) error {
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
func (v *Vault) deleteIdentities(ib *bolt.Bucket, idents [][]byte, recKey []byte) error {
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
// same source and type named alike (identity index), or, in a vault
// upgraded from format 2, one whose fingerprint as format 2 computed it is
// p's. A candidate the patient deleted makes p a duplicate (what the
// patient deleted does not come back). A live candidate with p's content
// makes p a duplicate too; with other content, from another file, p is its
// new version; from the same file, both are kept. fixFP, if not nil, is
// called with the key of a live candidate whose content p repeats, so that
// the caller can store p's fingerprint for it.
func (v *Vault) findEarlier(tx *bolt.Tx, p *record.Record, fpIn []byte, fixFP func(key []byte)) (earlier, error) {
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
	if v.fpScheme2.Load() {
		if in, cl := record.LegacyFingerprint(p); in != nil {
			for _, k := range v.fingerprintKeys(in, cl) {
				add(fb.Get(k))
			}
		}
	}
	var best *record.Record
	for _, k := range cands {
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
		if in, _ := record.Fingerprint(&old); bytes.Equal(in, fpIn) {
			if fixFP != nil {
				fixFP(k)
			}
			return earlier{dup: old.ID}, nil
		}
		if (p.Provenance.FileSHA256 != "" && old.Provenance.FileSHA256 == p.Provenance.FileSHA256) || old.Provenance.Source() != p.Provenance.Source() {
			continue
		}
		if best == nil || old.Seq > best.Seq {
			o := old
			best = &o
		}
	}
	return earlier{update: best}, nil
}

// sameFileOtherID returns the record under key, whose fingerprint p has,
// if it is another resource of p's own file: both carry an original id,
// and the ids differ. The file then says they are two things (Synthea
// writes equal encounters that other resources tell apart by id), and
// both are kept. It returns nil otherwise.
func (v *Vault) sameFileOtherID(rb *bolt.Bucket, key []byte, p *record.Record) (*record.Record, error) {
	if p.Provenance.OriginalID == "" || p.Provenance.FileSHA256 == "" {
		return nil, nil
	}
	old, err := v.load(rb, key)
	if err != nil {
		if err == ErrNotFound {
			return nil, nil
		}
		return nil, err
	}
	if !old.Deleted && sameFileOtherIDs(&old, p) {
		return &old, nil
	}
	return nil, nil
}
