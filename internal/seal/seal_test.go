package seal

import (
	"bytes"
	"crypto/cipher"
	"errors"
	"testing"

	"golang.org/x/crypto/chacha20poly1305"
)

func testKey() []byte { return bytes.Repeat([]byte{7}, KeySize) }

// TestFormat: a sealed value is the caller's header, then the nonce, then
// XChaCha20-Poly1305's ciphertext and tag of the plaintext under that
// nonce and the additional data: the layout both stores' files have, so
// opening it with the AEAD directly gives the plaintext back.
func TestFormat(t *testing.T) {
	key := testKey()
	a, err := New(key)
	if err != nil {
		t.Fatal(err)
	}
	direct, _ := chacha20poly1305.NewX(key)
	tests := []struct {
		name           string
		header, pt, ad []byte
	}{
		{"no header", nil, []byte("hello"), []byte("ad")},
		{"vault-like header", []byte{2, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 9}, []byte(`{"resourceType":"Patient"}`), []byte("phr2...")},
		{"empty plaintext and ad", []byte{1}, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := Append(bytes.Clone(tt.header), a, tt.pt, tt.ad)
			if len(out) != len(tt.header)+Overhead+len(tt.pt) {
				t.Fatalf("len %d, want %d", len(out), len(tt.header)+Overhead+len(tt.pt))
			}
			if !bytes.Equal(out[:len(tt.header)], tt.header) {
				t.Fatalf("header changed: %x", out[:len(tt.header)])
			}
			body := out[len(tt.header):]
			pt, err := direct.Open(nil, body[:NonceSize], body[NonceSize:], tt.ad)
			if err != nil || !bytes.Equal(pt, tt.pt) {
				t.Fatalf("direct open = %q, %v", pt, err)
			}
			got, err := Open([]byte("dst:"), a, body, tt.ad)
			if err != nil || string(got) != "dst:"+string(tt.pt) {
				t.Fatalf("Open = %q, %v", got, err)
			}
		})
	}
}

// TestOpenRefuses: a value opens only whole, unchanged, with its own
// additional data and key; what is shorter than a nonce and a tag is
// ErrShort before any decryption.
func TestOpenRefuses(t *testing.T) {
	a, _ := New(testKey())
	other, _ := New(bytes.Repeat([]byte{8}, KeySize))
	sealed := Append(nil, a, []byte("secret"), []byte("purpose\x00key"))
	flip := func(i int) []byte { b := bytes.Clone(sealed); b[i] ^= 1; return b }
	tests := []struct {
		name   string
		aead   cipher.AEAD
		sealed []byte
		ad     string
		want   error
	}{
		{"wrong additional data", a, sealed, "purpose\x00other", ErrOpen},
		{"wrong key", other, sealed, "purpose\x00key", ErrOpen},
		{"flipped nonce", a, flip(0), "purpose\x00key", ErrOpen},
		{"flipped ciphertext", a, flip(NonceSize), "purpose\x00key", ErrOpen},
		{"flipped tag", a, flip(len(sealed) - 1), "purpose\x00key", ErrOpen},
		{"cut", a, sealed[:len(sealed)-1], "purpose\x00key", ErrOpen},
		{"shorter than nonce and tag", a, sealed[:Overhead-1], "purpose\x00key", ErrShort},
		{"empty", a, nil, "purpose\x00key", ErrShort},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pt, err := Open(nil, tt.aead, tt.sealed, []byte(tt.ad))
			if !errors.Is(err, tt.want) || pt != nil {
				t.Fatalf("Open = %q, %v; want %v", pt, err, tt.want)
			}
			if bytes.Contains([]byte(err.Error()), []byte("secret")) {
				t.Fatalf("error %q quotes the value", err)
			}
		})
	}
}

// TestFreshNonces: sealing the same plaintext twice gives two values
// with different nonces, and sealing into a buffer with room does not
// copy it.
func TestFreshNonces(t *testing.T) {
	a, _ := New(testKey())
	x := Append(nil, a, []byte("same"), nil)
	y := Append(nil, a, []byte("same"), nil)
	if bytes.Equal(x[:NonceSize], y[:NonceSize]) {
		t.Fatal("two seals share a nonce")
	}
	buf := make([]byte, 3, 3+Overhead+4)
	out := Append(buf, a, []byte("same"), nil)
	if &out[0] != &buf[0] {
		t.Error("Append copied a buffer that had room")
	}
}
