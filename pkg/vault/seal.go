package vault

import (
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash"
	"sync"

	"golang.org/x/crypto/chacha20poly1305"
)

// sealVersion is the first byte of every sealed value.
const sealVersion = 1

// sealOverhead is the bytes a sealed value adds to its plaintext:
// version (1) | key term (4) | nonce (24) | ... | tag (16).
const sealOverhead = 1 + 4 + chacha20poly1305.NonceSizeX + chacha20poly1305.Overhead

// keyring holds the subkeys derived from one vault key.
type keyring struct {
	vaultID [16]byte
	term    uint32
	aead    cipher.AEAD
	index   []byte // HMAC key for the kind index
	finger  []byte // HMAC key for dedup fingerprints

	kinds  sync.Map  // kind -> index prefix, cached
	fpMACs sync.Pool // of hash.Hash: HMAC-SHA256 under finger
}

func deriveKeyring(vaultKey []byte, vaultID [16]byte, term uint32) (*keyring, error) {
	sub := func(info string) ([]byte, error) {
		return hkdf.Key(sha256.New, vaultKey, vaultID[:], info, 32)
	}
	sk, err := sub("phr vault v1 seal")
	if err != nil {
		return nil, err
	}
	aead, err := chacha20poly1305.NewX(sk)
	clear(sk)
	if err != nil {
		return nil, err
	}
	idx, err := sub("phr vault v1 index")
	if err != nil {
		return nil, err
	}
	fp, err := sub("phr vault v1 fingerprint")
	if err != nil {
		return nil, err
	}
	k := &keyring{vaultID: vaultID, term: term, aead: aead, index: idx, finger: fp}
	k.fpMACs.New = func() any { return hmac.New(sha256.New, k.finger) }
	return k, nil
}

func (k *keyring) wipe() {
	clear(k.index)
	clear(k.finger)
	k.aead = nil
}

// ad returns the additional data binding a sealed value to its place.
func (k *keyring) ad(bucket byte, key []byte) []byte {
	return k.appendAD(make([]byte, 0, 4+16+1+len(key)), bucket, key)
}

// appendAD appends the additional data of bucket/key to ad.
func (k *keyring) appendAD(ad []byte, bucket byte, key []byte) []byte {
	ad = append(ad, "phr1"...)
	ad = append(ad, k.vaultID[:]...)
	ad = append(ad, bucket)
	return append(ad, key...)
}

// seal encrypts plaintext for storage under bucket/key.
func (k *keyring) seal(bucket byte, key, plaintext []byte) []byte {
	out := make([]byte, 5+chacha20poly1305.NonceSizeX, sealOverhead+len(plaintext))
	out[0] = sealVersion
	binary.BigEndian.PutUint32(out[1:5], k.term)
	nonce := out[5:]
	if _, err := rand.Read(nonce); err != nil {
		panic("vault: no randomness: " + err.Error())
	}
	return k.aead.Seal(out, nonce, plaintext, k.ad(bucket, key))
}

// open decrypts a value sealed under bucket/key.
func (k *keyring) open(bucket byte, key, sealed []byte) ([]byte, error) {
	return k.openInto(nil, nil, bucket, key, sealed)
}

// openInto is open with the plaintext appended to dst and the additional
// data built in adBuf, so that a scan of many values can reuse both.
func (k *keyring) openInto(dst, adBuf []byte, bucket byte, key, sealed []byte) ([]byte, error) {
	if len(sealed) < sealOverhead {
		return nil, fmt.Errorf("%w: sealed value too short", ErrCorrupt)
	}
	if sealed[0] != sealVersion {
		if sealed[0] > sealVersion {
			return nil, ErrNewerVersion
		}
		return nil, fmt.Errorf("%w: unknown seal version", ErrCorrupt)
	}
	if t := binary.BigEndian.Uint32(sealed[1:5]); t != k.term {
		return nil, fmt.Errorf("%w: sealed under another vault key", ErrCorrupt)
	}
	nonce := sealed[5 : 5+chacha20poly1305.NonceSizeX]
	pt, err := k.aead.Open(dst, nonce, sealed[5+chacha20poly1305.NonceSizeX:], k.appendAD(adBuf[:0], bucket, key))
	if err != nil {
		return nil, fmt.Errorf("%w: authentication failed", ErrCorrupt)
	}
	return pt, nil
}

// mac returns HMAC-SHA256(key, parts joined by NUL).
func mac(key []byte, parts ...[]byte) []byte {
	h := hmac.New(sha256.New, key)
	for i, p := range parts {
		if i > 0 {
			h.Write([]byte{0})
		}
		h.Write(p)
	}
	return h.Sum(nil)
}

// kindPrefix is the 8-byte index prefix for a record kind.
func (k *keyring) kindPrefix(kind string) []byte {
	if p, ok := k.kinds.Load(kind); ok {
		return p.([]byte)
	}
	p := mac(k.index, []byte("kind"), []byte(kind))[:8]
	k.kinds.Store(kind, p)
	return p
}

// fingerprint keys a record's dedup input: 128 bits of HMAC-SHA256. It
// is the whole key of a fingerprint in vaults of format 1 (legacy keys);
// see fingerprintKey for the keys written now.
func (k *keyring) fingerprint(input []byte) []byte {
	return k.fpMAC(nil, input, 16)
}

// fingerprintKey is the dedup index key of a record's fingerprint: 64
// bits keyed from its cluster (record.Fingerprint; nil for none) and then
// the 128 bits of fingerprint. Fingerprints of one cluster are neighbours
// in the index, so a batch of an import rewrites a few of its pages
// instead of one per record. The cluster input is 40 bytes and a
// fingerprint input 32, so the two never collide.
func (k *keyring) fingerprintKey(input, cluster []byte) []byte {
	key := make([]byte, 0, fpKeyLen)
	key = k.fpMAC(key, append([]byte("cluster\x00"), cluster...), 8)
	return k.fpMAC(key, input, 16)
}

// fpKeyLen is the length of a fingerprintKey; legacy keys are 16 bytes.
const fpKeyLen = 24

// fpMAC appends the first n bytes of HMAC-SHA256(finger, input) to dst.
func (k *keyring) fpMAC(dst, input []byte, n int) []byte {
	h := k.fpMACs.Get().(hash.Hash)
	h.Reset()
	h.Write(input)
	var sum [sha256.Size]byte
	dst = append(dst, h.Sum(sum[:0])[:n]...)
	k.fpMACs.Put(h)
	return dst
}
