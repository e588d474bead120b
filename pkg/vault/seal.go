package vault

import (
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash"
	"sync"

	"github.com/phr-project/phr/internal/seal"
)

// Seal versions: the first byte of every sealed value.
//
// Version 1 (vault formats 1 and 2) binds a value to its vault, bucket and
// key. Version 2 (format 3) also binds it to its version, which it carries
// in the clear so that a reader knows it before opening the value:
//
//	v1: 0x01 ‖ term (4) ‖ nonce (24) ‖ ciphertext ‖ tag (16)
//	    additional data "phr1" ‖ vault ID (16) ‖ bucket (1) ‖ key
//	v2: 0x02 ‖ term (4) ‖ version (8) ‖ nonce (24) ‖ ciphertext ‖ tag (16)
//	    additional data "phr2" ‖ vault ID (16) ‖ bucket (1) ‖ version (8) ‖ key
//
// Values of version 1 stay readable; everything written now is version 2.
// The nonce, ciphertext and tag are internal/seal's, which the share store
// uses too; the header and the additional data are the vault's.
const (
	sealV1      = 1
	sealV2      = 2
	sealVersion = sealV2
)

// sealOverhead is the bytes a sealed value adds to its plaintext:
// version (1) | key term (4) | value version (8) | nonce (24) | ... | tag (16).
const sealOverhead = sealHeaderV2 - seal.NonceSize + seal.Overhead

// Header lengths (everything before the ciphertext) of each seal version.
const (
	sealHeaderV1 = 1 + 4 + seal.NonceSize
	sealHeaderV2 = 1 + 4 + 8 + seal.NonceSize
)

// keyring holds the subkeys derived from one vault key.
type keyring struct {
	vaultID [16]byte
	term    uint32
	aead    cipher.AEAD
	index   []byte // HMAC key for the kind index
	finger  []byte // HMAC key for dedup fingerprints
	head    []byte // HMAC key for the authenticated head (head.go)

	kinds   sync.Map  // kind -> index prefix, cached
	fpMACs  sync.Pool // of hash.Hash: HMAC-SHA256 under finger
	elemMAC sync.Pool // of *elemHash: HMAC-SHA256 under head
}

func deriveKeyring(vaultKey []byte, vaultID [16]byte, term uint32) (*keyring, error) {
	sub := func(info string) ([]byte, error) {
		return hkdf.Key(sha256.New, vaultKey, vaultID[:], info, 32)
	}
	sk, err := sub("phr vault v1 seal")
	if err != nil {
		return nil, err
	}
	aead, err := seal.New(sk)
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
	hd, err := sub("phr vault v1 head")
	if err != nil {
		return nil, err
	}
	k := &keyring{vaultID: vaultID, term: term, aead: aead, index: idx, finger: fp, head: hd}
	k.fpMACs.New = func() any { return hmac.New(sha256.New, k.finger) }
	k.elemMAC.New = func() any { return &elemHash{h: hmac.New(sha256.New, k.head), buf: make([]byte, 0, 128)} }
	return k, nil
}

func (k *keyring) wipe() {
	clear(k.index)
	clear(k.finger)
	clear(k.head)
	k.aead = nil
}

// appendAD appends the additional data of a value of seal version sv
// stored under bucket/key at version to ad.
func (k *keyring) appendAD(ad []byte, sv byte, bucket byte, version uint64, key []byte) []byte {
	if sv == sealV1 {
		ad = append(ad, "phr1"...)
		ad = append(ad, k.vaultID[:]...)
		ad = append(ad, bucket)
		return append(ad, key...)
	}
	ad = append(ad, "phr2"...)
	ad = append(ad, k.vaultID[:]...)
	ad = append(ad, bucket)
	ad = binary.BigEndian.AppendUint64(ad, version)
	return append(ad, key...)
}

// seal encrypts plaintext for storage under bucket/key as the given
// version of that value (a record's version; 1 for values written once).
// Every bucket of sealed values uses it: records, settings, slot labels,
// the head, and any bucket added later (a record's earlier versions under
// its key and version, say), so that each value opens only in its place
// and at its version.
func (k *keyring) seal(bucket byte, key []byte, version uint64, plaintext []byte) []byte {
	const header = sealHeaderV2 - seal.NonceSize // version, term, value version
	out := make([]byte, header, sealOverhead+len(plaintext))
	out[0] = sealV2
	binary.BigEndian.PutUint32(out[1:5], k.term)
	binary.BigEndian.PutUint64(out[5:header], version)
	var adBuf [64]byte
	return seal.Append(out, k.aead, plaintext, k.appendAD(adBuf[:0], sealV2, bucket, version, key))
}

// open decrypts a value sealed under bucket/key.
func (k *keyring) open(bucket byte, key, sealed []byte) ([]byte, error) {
	pt, _, err := k.openInto(nil, nil, bucket, key, sealed)
	return pt, err
}

// sealedVersion returns the version a sealed value carries in its header
// (authenticated when the value is opened); 0 for seal version 1, which
// carries none.
func sealedVersion(sealed []byte) uint64 {
	if len(sealed) >= sealHeaderV2 && sealed[0] == sealV2 {
		return binary.BigEndian.Uint64(sealed[5:13])
	}
	return 0
}

// openInto is open with the plaintext appended to dst and the additional
// data built in adBuf, so that a scan of many values can reuse both. It
// returns the value's version too (0 for seal version 1).
func (k *keyring) openInto(dst, adBuf []byte, bucket byte, key, sealed []byte) ([]byte, uint64, error) {
	if len(sealed) == 0 {
		return nil, 0, fmt.Errorf("%w: sealed value too short", ErrCorrupt)
	}
	var hdr int
	var version uint64
	switch sv := sealed[0]; {
	case sv == sealV1:
		hdr = sealHeaderV1
	case sv == sealV2:
		hdr = sealHeaderV2
		if len(sealed) >= hdr {
			version = binary.BigEndian.Uint64(sealed[5:13])
		}
	case sv > sealVersion:
		return nil, 0, ErrNewerVersion
	default:
		return nil, 0, fmt.Errorf("%w: unknown seal version", ErrCorrupt)
	}
	if len(sealed) < hdr-seal.NonceSize+seal.Overhead {
		return nil, 0, fmt.Errorf("%w: sealed value too short", ErrCorrupt)
	}
	if t := binary.BigEndian.Uint32(sealed[1:5]); t != k.term {
		return nil, 0, fmt.Errorf("%w: sealed under another vault key", ErrCorrupt)
	}
	pt, err := seal.Open(dst, k.aead, sealed[hdr-seal.NonceSize:], k.appendAD(adBuf[:0], sealed[0], bucket, version, key))
	if err != nil {
		return nil, 0, fmt.Errorf("%w: authentication failed", ErrCorrupt)
	}
	return pt, version, nil
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
