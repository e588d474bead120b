package share

import (
	"crypto/rand"
	"encoding/base64"
)

// KeySize is the size in bytes of a SMART Health Link key (AES-256).
const KeySize = 32

// encodedKeyLen is the length of a 32-byte value in unpadded base64url.
const encodedKeyLen = 43

// b64 is unpadded base64url that rejects non-zero trailing bits, so every
// byte string has exactly one accepted encoding.
var b64 = base64.RawURLEncoding.Strict()

// NewKey returns a new random 32-byte key for encrypting a link's files.
func NewKey() []byte {
	k := make([]byte, KeySize)
	rand.Read(k) // never returns an error; crashes the program if the OS RNG fails
	return k
}

// EncodeKey returns key as unpadded base64url, the form used in a link's
// "key" field. It does not check the key's length.
func EncodeKey(key []byte) string {
	return b64.EncodeToString(key)
}

// DecodeKey parses the "key" field of a link: exactly 43 base64url
// characters encoding 32 bytes. Errors are *FieldError values wrapping
// ErrInvalidLink and never contain the key.
func DecodeKey(s string) ([]byte, error) {
	if s == "" {
		return nil, fieldErr(ErrInvalidLink, "key", "is required")
	}
	if len(s) != encodedKeyLen {
		return nil, fieldErr(ErrInvalidLink, "key", "must be %d base64url characters (got %d)", encodedKeyLen, len(s))
	}
	k, err := b64.DecodeString(s)
	if err != nil || len(k) != KeySize {
		return nil, fieldErr(ErrInvalidLink, "key", "is not valid base64url encoding 32 bytes")
	}
	return k, nil
}

// NewManifestID returns a new random manifest id: 32 random bytes as
// unpadded base64url (43 characters, 256 bits of entropy, as the
// specification asks of manifest URLs).
func NewManifestID() string {
	id := make([]byte, 32)
	rand.Read(id)
	return b64.EncodeToString(id)
}

// ValidManifestID reports whether s has the form NewManifestID produces:
// 43 base64url characters that decode to 32 bytes.
func ValidManifestID(s string) bool {
	if len(s) != encodedKeyLen {
		return false
	}
	b, err := b64.DecodeString(s)
	return err == nil && len(b) == 32
}
