package vault

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"

	"filippo.io/age"
	"github.com/phr-project/phr/pkg/kv"
	"github.com/phr-project/phr/pkg/record"
)

// RotateOptions are the secrets Rotate needs to wrap the new vault key for
// slots whose secret the vault does not know.
type RotateOptions struct {
	// Passphrase is the passphrase of the passphrase slots. Required if
	// the vault has any; they all get it.
	Passphrase string
	// RecoveryCode is the new recovery code (see NewRecoveryCode). Required
	// if the vault has a recovery slot: the old code stops working.
	RecoveryCode string
	// Remove names slots to delete in the same transaction (phrd ends
	// the other devices' credentials when it rotates).
	Remove []string

	// failAfter, when positive, makes Rotate fail after resealing that many
	// records: a test hook for interrupted rotations.
	failAfter int
}

// errInjected is the failure the failAfter hook injects.
var errInjected = errors.New("injected failure")

// Rotate makes a new vault key: it reseals every record, setting and slot
// label, rebuilds the HMAC-keyed indexes, and wraps the new key in every
// slot (device slots for the same recipients; passphrase slots with
// opts.Passphrase; the recovery slot with opts.RecoveryCode). All of it
// happens in one bbolt transaction, so an interrupted rotation leaves the
// vault exactly as it was, under the old key, and a completed one leaves it
// under the new key only. The transaction holds the whole vault's new
// pages in memory: about the size of the vault file.
func (v *Vault) Rotate(opts RotateOptions) error {
	newKey := make([]byte, 32)
	if _, err := rand.Read(newKey); err != nil {
		return err
	}
	var committed bool
	defer func() {
		if !committed {
			clear(newKey)
		}
	}()
	v.mu.Lock()
	defer v.mu.Unlock()
	var newKeys *keyring
	err := v.updateLocked(func(tx kv.Tx) error {
		m := tx.Bucket([]byte{bucketMeta})
		term := binary.BigEndian.Uint32(m.Get([]byte("term"))) + 1
		var err error
		if newKeys, err = deriveKeyring(newKey, v.id, term); err != nil {
			return err
		}
		sb := tx.Bucket([]byte{bucketSlots})
		for _, id := range opts.Remove {
			if err := sb.Delete([]byte(id)); err != nil {
				return err
			}
		}
		if k, _ := sb.Cursor().First(); k == nil {
			return ErrLastSlot
		}
		if err := v.rewrapSlots(tx, newKey, newKeys, opts); err != nil {
			return err
		}
		if err := v.resealSettings(tx, newKeys); err != nil {
			return err
		}
		if err := v.resealRecords(tx, newKeys, opts.failAfter); err != nil {
			return err
		}
		for _, b := range []byte{bucketListing, bucketDicts} {
			if err := v.resealBucket(tx, newKeys, b); err != nil {
				return err
			}
		}
		var tb [4]byte
		binary.BigEndian.PutUint32(tb[:], term)
		if err := m.Put([]byte("term"), tb[:]); err != nil {
			return err
		}
		// Everything was written anew under the new keys: the head is
		// computed from it under them.
		if v.wh != nil {
			h := computeHead(tx, newKeys, v.wh.counter)
			h.keys = newKeys
			h.list = v.wh.list // the nodes keep their numbers and versions
			v.replaceHead(h)
		}
		return nil
	})
	if err != nil {
		return err
	}
	committed = true
	v.meta.reset()
	v.codec.reset()
	old := v.keys
	v.keys, v.vaultKey = newKeys, newKey
	old.wipe()
	// The old pages, sealed under the old key, are free but still in
	// the file: rewrite it without them.
	if err := v.compactLocked(); err != nil {
		return fmt.Errorf("%w: %w", ErrNotCompacted, err)
	}
	return nil
}

func (v *Vault) rewrapSlots(tx kv.Tx, newKey []byte, newKeys *keyring, opts RotateOptions) error {
	sb := tx.Bucket([]byte{bucketSlots})
	type entry struct {
		id   string
		kind SlotKind
		info slotInfo
	}
	var slots []entry
	err := forEachSlot(sb, func(k []byte, st storedSlot) error {
		info, err := v.keys.openSlotInfo(k, st)
		if err != nil {
			return err
		}
		slots = append(slots, entry{string(k), st.Kind, info})
		return nil
	})
	if err != nil {
		return err
	}
	for _, s := range slots {
		spec := SlotSpec{Kind: s.kind, Label: s.info.Label}
		switch s.kind {
		case SlotPassphrase:
			if opts.Passphrase == "" {
				return errors.New("rotate: the vault has a passphrase slot: give the passphrase")
			}
			spec.Passphrase = opts.Passphrase
		case SlotRecovery:
			if opts.RecoveryCode == "" {
				return errors.New("rotate: the vault has a recovery slot: give a new recovery code")
			}
			spec.RecoveryCode = opts.RecoveryCode
		case SlotDevice:
			if len(s.info.Recipients) == 0 {
				return fmt.Errorf("rotate: device slot %s has no recorded recipient; remove it and add the device again", s.id)
			}
			rs, err := age.ParseRecipients(strings.NewReader(strings.Join(s.info.Recipients, "\n")))
			if err != nil {
				return fmt.Errorf("rotate: device slot %s: %w", s.id, err)
			}
			spec.Recipients = rs
		}
		enc, err := encodeSlotInfo(s.id, spec, s.info, newKey, newKeys)
		if err != nil {
			return err
		}
		if err := sb.Put([]byte(s.id), enc); err != nil {
			return err
		}
	}
	return nil
}

func (v *Vault) resealSettings(tx kv.Tx, newKeys *keyring) error {
	b := tx.Bucket([]byte{bucketSettings})
	type kv struct {
		k, v    []byte
		version uint64
	}
	var all []kv
	err := b.ForEach(func(k, val []byte) error {
		pt, version, err := v.keys.openInto(nil, nil, bucketSettings, k, val)
		if err != nil {
			return fmt.Errorf("setting: %w", err)
		}
		all = append(all, kv{append([]byte(nil), k...), pt, max(version, 1)})
		return nil
	})
	if err != nil {
		return err
	}
	for _, e := range all {
		if err := b.Put(e.k, newKeys.seal(bucketSettings, e.k, e.version, e.v)); err != nil {
			return err
		}
	}
	return nil
}

// resealRecords reseals every record under newKeys and rebuilds the kind
// index and fingerprints under the new HMAC keys.
func (v *Vault) resealRecords(tx kv.Tx, newKeys *keyring, failAfter int) error {
	rb, _, _, _ := v.buckets(tx)
	for _, name := range []byte{bucketIndex, bucketFinger, bucketIdentity} {
		if name == bucketIndex && v.format >= 4 {
			continue // format 4 has no kind index
		}
		if err := tx.DeleteBucket([]byte{name}); err != nil && name != bucketIdentity {
			return err
		}
		if _, err := tx.CreateBucket([]byte{name}); err != nil {
			return err
		}
	}
	xb, fb, ib := tx.Bucket([]byte{bucketIndex}), tx.Bucket([]byte{bucketFinger}), tx.Bucket([]byte{bucketIdentity})
	if err := v.resealHistory(tx, newKeys); err != nil {
		return err
	}
	var keys [][]byte
	if err := rb.ForEach(func(k, _ []byte) error {
		keys = append(keys, append([]byte(nil), k...))
		return nil
	}); err != nil {
		return err
	}
	var ix indexWriter
	for i, k := range keys {
		if failAfter > 0 && i == failAfter {
			return errInjected
		}
		// The plaintext is sealed again as it is (compressed or not).
		pt, version, err := v.keys.openInto(nil, nil, bucketRecords, k, rb.Get(k))
		if err != nil {
			return fmt.Errorf("record %s: %w", idOf(k), err)
		}
		env, err := v.decompress(tx, nil, pt)
		if err != nil {
			return fmt.Errorf("record %s: %w", idOf(k), err)
		}
		r, err := decodeRecord(env)
		if err != nil || r.ID != idOf(k) || (version != 0 && version != r.Version) {
			return fmt.Errorf("record %s: %w: bad envelope", idOf(k), ErrCorrupt)
		}
		if err := rb.Put(k, newKeys.seal(bucketRecords, k, r.Version, pt)); err != nil {
			return err
		}
		ix.add(v, newKeys, &r, k)
	}
	if err := ix.write(xb, fb, ib); err != nil {
		return err
	}
	// Every fingerprint is now of the current scheme.
	for _, flag := range []string{metaScheme2Fingerprints, metaDayFingerprints} {
		if err := tx.Bucket([]byte{bucketMeta}).Delete([]byte(flag)); err != nil {
			return err
		}
	}
	v.onCommit(func() { v.fpScheme2.Store(false); v.fpDay.Store(false) })
	return v.fingerprintsRebuilt(tx)
}

// resealHistory reseals the earlier versions of records under newKeys.
func (v *Vault) resealHistory(tx kv.Tx, newKeys *keyring) error {
	hb, err := tx.CreateBucketIfNotExists([]byte{bucketHistory})
	if err != nil {
		return err
	}
	type kv struct {
		k, pt   []byte
		version uint64
	}
	var all []kv
	if err := hb.ForEach(func(k, sealed []byte) error {
		pt, version, err := v.keys.openInto(nil, nil, bucketHistory, k, sealed)
		if err != nil {
			return fmt.Errorf("a record's history: %w", err)
		}
		all = append(all, kv{append([]byte(nil), k...), pt, max(version, 1)})
		return nil
	}); err != nil {
		return err
	}
	for _, e := range all {
		if err := hb.Put(e.k, newKeys.seal(bucketHistory, e.k, e.version, e.pt)); err != nil {
			return err
		}
	}
	return nil
}

// resealBucket seals every value of a bucket of sealed values again under
// newKeys, as it is and at its version (the listing index, the
// dictionaries).
func (v *Vault) resealBucket(tx kv.Tx, newKeys *keyring, bucket byte) error {
	b := tx.Bucket([]byte{bucket})
	if b == nil {
		return nil
	}
	type kv struct {
		k, pt   []byte
		version uint64
	}
	var all []kv
	if err := b.ForEach(func(k, sealed []byte) error {
		pt, version, err := v.keys.openInto(nil, nil, bucket, k, sealed)
		if err != nil {
			return fmt.Errorf("%s: %w", bucketName(bucket), err)
		}
		all = append(all, kv{append([]byte(nil), k...), pt, max(version, 1)})
		return nil
	}); err != nil {
		return err
	}
	for _, e := range all {
		if err := b.Put(e.k, newKeys.seal(bucket, e.k, e.version, e.pt)); err != nil {
			return err
		}
	}
	return nil
}

// indexWriter collects index entries and writes them in key order: bbolt
// inserts into a transaction's in-memory nodes by copying, so random-order
// inserts of many keys in one transaction cost quadratic time, sorted ones
// linear.
type indexWriter struct {
	kind, finger, ident [][2][]byte
}

func (w *indexWriter) add(v *Vault, keys *keyring, r *record.Record, key []byte) {
	key = append([]byte(nil), key...)
	if !r.Deleted {
		w.kind = append(w.kind, [2][]byte{append(append([]byte(nil), keys.kindPrefix(r.Kind)...), key...), nil})
	}
	if fp := v.fingerprintOf(keys, r); fp != nil {
		w.finger = append(w.finger, [2][]byte{fp, key})
	}
	if !r.Deleted {
		for _, in := range record.Identities(r) {
			w.ident = append(w.ident, [2][]byte{append(keys.identityKey(in), key...), nil})
		}
	}
}

// write puts the collected entries into the kind index, the fingerprints
// and the identity index (ib may be nil: a vault not upgraded yet).
func (w *indexWriter) write(xb, fb, ib kv.Bucket) error {
	parts := []struct {
		b  kv.Bucket
		kv [][2][]byte
	}{{fb, w.finger}}
	if xb != nil { // no kind index from format 4 on
		parts = append(parts, struct {
			b  kv.Bucket
			kv [][2][]byte
		}{xb, w.kind})
	}
	if ib != nil {
		parts = append(parts, struct {
			b  kv.Bucket
			kv [][2][]byte
		}{ib, w.ident})
	}
	for _, part := range parts {
		slices.SortFunc(part.kv, func(a, b [2][]byte) int { return bytes.Compare(a[0], b[0]) })
		for _, e := range part.kv {
			if err := part.b.Put(e[0], e[1]); err != nil {
				return err
			}
		}
	}
	return nil
}

// fingerprintOf returns a record's keyed fingerprint, or nil. Tombstones
// have no resource; their fingerprint cannot be recomputed and is lost by
// a rebuild (re-importing the file brings the record back).
func (v *Vault) fingerprintOf(keys *keyring, r *record.Record) []byte {
	if r.Deleted {
		return nil
	}
	if in, cl := record.Fingerprint(r); in != nil {
		return keys.fingerprintKey(in, v.cluster(r, cl))
	}
	return nil
}
