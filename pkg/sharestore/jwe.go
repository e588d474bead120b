package sharestore

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"

	"github.com/phr-project/phr/pkg/share"
)

// checkJWE checks, without a key, that jwe has the shape of a SMART Health
// Link file (share.EncryptFile): five base64url segments, an empty
// encrypted key, a 96-bit IV, a 128-bit tag, and a protected header with
// "alg":"dir", "enc":"A256GCM", optionally "zip":"DEF", and "cty" equal to
// contentType. The store accepts nothing else, so a client cannot store
// plaintext by mistake.
func checkJWE(contentType, jwe string) error {
	if err := (share.ManifestFile{ContentType: contentType, Embedded: "x"}).Validate(); err != nil {
		var fe *share.FieldError
		if errors.As(err, &fe) {
			return errors.New("contentType " + fe.Reason)
		}
		return errors.New("contentType is not valid")
	}
	if len(jwe) > MaxFileLength {
		return errors.New("file is larger than the limit")
	}
	parts := strings.Split(jwe, ".")
	if len(parts) != 5 {
		return errors.New("file is not a compact JWE (want 5 segments)")
	}
	enc := base64.RawURLEncoding.Strict()
	for i, p := range parts {
		if _, err := enc.DecodeString(p); err != nil {
			return errors.New("file is not a compact JWE (a segment is not base64url)")
		}
		if i != 1 && i != 3 && p == "" {
			return errors.New("file is not a compact JWE (empty segment)")
		}
	}
	if parts[1] != "" {
		return errors.New(`file's encrypted key must be empty ("alg":"dir")`)
	}
	if iv, _ := enc.DecodeString(parts[2]); len(iv) != 12 {
		return errors.New("file's IV must be 96 bits")
	}
	if tag, _ := enc.DecodeString(parts[4]); len(tag) != 16 {
		return errors.New("file's tag must be 128 bits")
	}
	hb, _ := enc.DecodeString(parts[0])
	var h map[string]any
	if err := json.Unmarshal(hb, &h); err != nil || h == nil {
		return errors.New("file's JWE header is not a JSON object")
	}
	if h["alg"] != "dir" || h["enc"] != "A256GCM" {
		return errors.New(`file's JWE header must have "alg":"dir" and "enc":"A256GCM"`)
	}
	if z, ok := h["zip"]; ok && z != "DEF" {
		return errors.New(`file's JWE header "zip" must be "DEF" or absent`)
	}
	if _, ok := h["crit"]; ok {
		return errors.New(`file's JWE header must not have "crit"`)
	}
	if h["cty"] != contentType {
		return errors.New(`file's JWE header "cty" must equal its contentType`)
	}
	return nil
}
