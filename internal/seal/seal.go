// Package seal is the one sealing step of phr's stores, the vault
// (pkg/vault, and its session-wrapped keys), the share store
// (pkg/sharestore) and phrd's session store (pkg/server): XChaCha20-Poly1305
// with a fresh random 192-bit nonce written in front of the ciphertext,
// and additional data that the caller builds to bind a value to its place
// (purpose, store, bucket, key, version). A sealed value is
//
//	nonce (24) ‖ ciphertext ‖ tag (16)
//
// appended to whatever header the caller writes first (the vault's seal
// version, key term and value version; nothing in the share store). Random
// nonces of 192 bits never repeat in practice, so one key seals any number
// of values. Each store keeps its own header, additional data and file
// format (docs/format.md, docs/share-protocol.md); this package only does
// the part they had in common, so that it is written, and checked, once.
package seal

import (
	"crypto/cipher"
	"crypto/rand"
	"errors"

	"golang.org/x/crypto/chacha20poly1305"
)

const (
	// KeySize is the size of a sealing key.
	KeySize = chacha20poly1305.KeySize
	// NonceSize is the size of the nonce in front of each sealed value.
	NonceSize = chacha20poly1305.NonceSizeX
	// Overhead is what sealing adds to a plaintext: nonce and tag.
	Overhead = NonceSize + chacha20poly1305.Overhead
)

// ErrShort means a sealed value is shorter than a nonce and a tag.
var ErrShort = errors.New("seal: sealed value too short")

// ErrOpen means a sealed value does not authenticate: wrong key, wrong
// additional data, or a modified value.
var ErrOpen = errors.New("seal: sealed value does not authenticate")

// New returns the AEAD of key (KeySize bytes): XChaCha20-Poly1305.
func New(key []byte) (cipher.AEAD, error) {
	return chacha20poly1305.NewX(key)
}

// Append seals plaintext with additional data ad under aead (made by
// New) and appends nonce ‖ ciphertext ‖ tag to dst, which may hold the
// caller's header. Give dst the capacity len(dst)+Overhead+len(plaintext)
// to seal without a copy.
func Append(dst []byte, aead cipher.AEAD, plaintext, ad []byte) []byte {
	n := len(dst)
	dst = grow(dst, n+NonceSize, n+Overhead+len(plaintext))
	nonce := dst[n : n+NonceSize]
	rand.Read(nonce) // never fails (crypto/rand)
	return aead.Seal(dst, nonce, plaintext, ad)
}

// Open opens sealed (nonce ‖ ciphertext ‖ tag, without the caller's
// header) with additional data ad and appends the plaintext to dst. It
// fails with ErrShort or ErrOpen; neither says anything of the value.
func Open(dst []byte, aead cipher.AEAD, sealed, ad []byte) ([]byte, error) {
	if len(sealed) < Overhead {
		return nil, ErrShort
	}
	pt, err := aead.Open(dst, sealed[:NonceSize], sealed[NonceSize:], ad)
	if err != nil {
		return nil, ErrOpen
	}
	return pt, nil
}

// grow returns b extended to length n, in an array of at least capacity
// c (b's own when it is large enough).
func grow(b []byte, n, c int) []byte {
	if c <= cap(b) {
		return b[:n]
	}
	nb := make([]byte, n, c)
	copy(nb, b)
	return nb
}
