package shc

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/phr-project/phr/internal/jsondepth"
)

// issuerKeys reads the issuer keys the options give, or returns nil when
// they give none.
func issuerKeys(opts map[string]string) (map[string]*ecdsa.PublicKey, error) {
	var keys map[string]*ecdsa.PublicKey
	add := func(b []byte, what string) error {
		k, err := ParseJWKS(b)
		if err != nil {
			return fmt.Errorf("%w: %s: %w", ErrIssuerKeys, what, err)
		}
		if keys == nil {
			keys = make(map[string]*ecdsa.PublicKey)
		}
		for kid, pub := range k {
			keys[kid] = pub
		}
		return nil
	}
	if path := opts[OptionIssuerKeys]; path != "" {
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrIssuerKeys, err)
		}
		defer f.Close()
		b, err := io.ReadAll(io.LimitReader(f, MaxJWKSSize+1))
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrIssuerKeys, err)
		}
		if err := add(b, OptionIssuerKeys); err != nil {
			return nil, err
		}
	}
	if j := opts[OptionIssuerJWKS]; j != "" {
		if err := add([]byte(j), OptionIssuerJWKS); err != nil {
			return nil, err
		}
	}
	return keys, nil
}

// ParseJWKS reads the P-256 signing keys of a JSON Web Key Set, by kid.
// Keys without a kid are filed under their RFC 7638 thumbprint, which is
// what SMART Health Cards use as kid. Keys of other types and curves are
// ignored; a set without a P-256 key is an error, and so is one over
// MaxJWKSSize bytes or MaxJWKSKeys keys.
func ParseJWKS(b []byte) (map[string]*ecdsa.PublicKey, error) {
	if len(b) > MaxJWKSSize {
		return nil, fmt.Errorf("%w: the key set is over %d MiB", ErrTooLarge, MaxJWKSSize>>20)
	}
	if jsondepth.Exceeds(b, 16) {
		return nil, fmt.Errorf("%w: the key set nests JSON more than 16 levels", ErrTooLarge)
	}
	var set struct {
		Keys []struct {
			Kty string `json:"kty"`
			Kid string `json:"kid"`
			Crv string `json:"crv"`
			Use string `json:"use"`
			X   string `json:"x"`
			Y   string `json:"y"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(b, &set); err != nil {
		return nil, fmt.Errorf("not a JWKS (want {\"keys\": [...]})")
	}
	if len(set.Keys) > MaxJWKSKeys {
		return nil, fmt.Errorf("%w: more than %d keys", ErrTooLarge, MaxJWKSKeys)
	}
	out := make(map[string]*ecdsa.PublicKey)
	for i, k := range set.Keys {
		if k.Kty != "EC" || k.Crv != "P-256" || (k.Use != "" && k.Use != "sig") {
			continue
		}
		x, errX := b64.DecodeString(k.X)
		y, errY := b64.DecodeString(k.Y)
		if errX != nil || errY != nil || len(x) != 32 || len(y) != 32 {
			return nil, fmt.Errorf("keys[%d]: x and y must be 32 bytes of base64url", i)
		}
		pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
		if err != nil {
			return nil, fmt.Errorf("keys[%d]: not a point on P-256", i)
		}
		kid := k.Kid
		if kid == "" {
			kid = Thumbprint(pub)
		}
		out[kid] = pub
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no P-256 signing key")
	}
	return out, nil
}

// Thumbprint returns the RFC 7638 JWK thumbprint of a P-256 key, base64url:
// the kid a SMART Health Card issuer gives the key.
func Thumbprint(pub *ecdsa.PublicKey) string {
	raw, _ := pub.Bytes() // a P-256 key always encodes: 0x04 || X || Y
	x, y := raw[1:33], raw[33:65]
	j := `{"crv":"P-256","kty":"EC","x":"` + b64.EncodeToString(x) + `","y":"` + b64.EncodeToString(y) + `"}`
	sum := sha256.Sum256([]byte(j))
	return b64.EncodeToString(sum[:])
}
