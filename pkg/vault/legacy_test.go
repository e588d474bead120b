package vault

import (
	"crypto/rand"
	"encoding/binary"
	"testing"

	"github.com/phr-project/phr/pkg/kv"
)

// sealLegacy seals as formats 1 and 2 did (seal version 1: no version
// in the header or the additional data).
func (k *keyring) sealLegacy(bucket byte, key, plaintext []byte) []byte {
	out := make([]byte, sealHeaderV1, sealHeaderV1+len(plaintext)+16)
	out[0] = sealV1
	binary.BigEndian.PutUint32(out[1:5], k.term)
	nonce := out[5:sealHeaderV1]
	if _, err := rand.Read(nonce); err != nil {
		panic(err)
	}
	return k.aead.Seal(out, nonce, plaintext, k.appendAD(nil, sealV1, bucket, 0, key))
}

// downgrade makes tv's file look like one written by an older phr of the
// given format: every record and setting sealed as then (uncompressed),
// a kind index, no listing index, no head.
func downgrade(t *testing.T, tv *testVault, format uint32) {
	t.Helper()
	rawWrites.Store(tv.Vault, true)
	err := tv.db.Update(func(tx kv.Tx) error {
		for _, bucket := range []byte{bucketRecords, bucketSettings} {
			b := tx.Bucket([]byte{bucket})
			type kv struct{ k, pt []byte }
			var all []kv
			if err := b.ForEach(func(k, val []byte) error {
				pt, _, err := tv.openEnvelope(tx, bucket, k, val)
				all = append(all, kv{append([]byte(nil), k...), pt})
				return err
			}); err != nil {
				return err
			}
			for _, e := range all {
				if err := b.Put(e.k, tv.keys.sealLegacy(bucket, e.k, e.pt)); err != nil {
					return err
				}
			}
		}
		xb, err := tx.CreateBucketIfNotExists([]byte{bucketIndex})
		if err != nil {
			return err
		}
		rb := tx.Bucket([]byte{bucketRecords})
		if err := rb.ForEach(func(k, _ []byte) error {
			r, err := tv.load(rb, k)
			if err != nil || r.Deleted {
				return err
			}
			return xb.Put(tv.indexKey(r.Kind, k), nil)
		}); err != nil {
			return err
		}
		for _, b := range []byte{bucketListing, bucketDicts} {
			if err := tx.DeleteBucket([]byte{b}); err != nil {
				return err
			}
		}
		m := tx.Bucket([]byte{bucketMeta})
		if err := m.Delete([]byte(headKey)); err != nil {
			return err
		}
		var ver [4]byte
		binary.BigEndian.PutUint32(ver[:], format)
		return m.Put([]byte("version"), ver[:])
	})
	if err != nil {
		t.Fatal(err)
	}
}
