package sharestore

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"testing"

	"golang.org/x/crypto/chacha20poly1305"
)

// TestSealFormat pins the store's sealed values as the file has always
// held them (docs/share-protocol.md): XChaCha20-Poly1305 under the
// "seal" subkey, nonce ‖ ciphertext ‖ tag, additional data "phr sharestore
// v1 " ‖ purpose ‖ NUL ‖ lookup key. A value sealed that way by hand opens,
// and a value the store seals opens by hand; moved to another purpose or
// share, or cut, it is ErrCorrupt.
func TestSealFormat(t *testing.T) {
	secret := bytes.Repeat([]byte{3}, 32)
	k, err := deriveKeys(secret)
	if err != nil {
		t.Fatal(err)
	}
	s := &Store{k: k}
	lk := bytes.Repeat([]byte{9}, 32)
	ad := append([]byte("phr sharestore v1 share\x00"), lk...)
	m := hmac.New(sha256.New, secret) // the "seal" subkey, derived as deriveKeys does
	m.Write([]byte("phr sharestore v1 seal"))
	direct, err := chacha20poly1305.NewX(m.Sum(nil))
	if err != nil {
		t.Fatal(err)
	}
	nonce := bytes.Repeat([]byte{5}, chacha20poly1305.NonceSizeX)
	byHand := direct.Seal(bytes.Clone(nonce), nonce, []byte("plaintext"), ad)
	if pt, err := s.unseal("share", lk, byHand); err != nil || string(pt) != "plaintext" {
		t.Fatalf("unseal of a value sealed by hand = %q, %v", pt, err)
	}
	sealed := s.seal("share", lk, []byte("plaintext"))
	if pt, err := direct.Open(nil, sealed[:24], sealed[24:], ad); err != nil || string(pt) != "plaintext" {
		t.Fatalf("a sealed value opened by hand = %q, %v", pt, err)
	}
	for name, try := range map[string]func() ([]byte, error){
		"other purpose": func() ([]byte, error) { return s.unseal("log", lk, sealed) },
		"other share":   func() ([]byte, error) { return s.unseal("share", secret, sealed) },
		"cut":           func() ([]byte, error) { return s.unseal("share", lk, sealed[:39]) },
	} {
		if _, err := try(); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: %v, want ErrCorrupt", name, err)
		}
	}
}
