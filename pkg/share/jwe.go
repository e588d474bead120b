package share

import (
	"bytes"
	"compress/flate"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/phr-project/phr/internal/jsondepth"
)

// JWE parameters used by SMART Health Links.
const (
	jweAlg      = "dir"     // the link key is the content encryption key
	jweEnc      = "A256GCM" // AES-256-GCM
	jweZip      = "DEF"     // raw DEFLATE (RFC 1951), no zlib header
	gcmIVSize   = 12        // 96-bit IV
	gcmTagSize  = 16        // 128-bit tag
	maxHeaderSz = 4096      // bytes of base64url protected header we accept
)

// DefaultMaxPlaintext is the default limit on the size of a decrypted (and,
// with "zip":"DEF", decompressed) file: 64 MiB. DecryptFile refuses a
// ciphertext that could only decrypt to more before decoding it, and stops
// inflating at the limit.
const DefaultMaxPlaintext = 64 << 20

// protectedHeader is the header EncryptFile writes, in this field order.
type protectedHeader struct {
	Alg string `json:"alg"`
	Enc string `json:"enc"`
	Cty string `json:"cty"`
	Zip string `json:"zip,omitempty"`
}

// EncryptFile encrypts plaintext as a compact JWE as the specification
// requires for every shared file: protected header
// {"alg":"dir","enc":"A256GCM","cty":contentType}, plus "zip":"DEF" when
// compress is true, in which case plaintext is first compressed with raw
// DEFLATE (RFC 1951). The IV is 96 random bits, fresh for every call, so
// one link key can safely encrypt many files and file updates. The
// additional authenticated data is the ASCII of the encoded protected
// header, and the encrypted key segment is empty.
//
// key must be 32 bytes (ErrKeySize) and contentType must not be empty.
func EncryptFile(key []byte, contentType string, plaintext []byte, compress bool) (string, error) {
	iv := make([]byte, gcmIVSize)
	rand.Read(iv)
	return encryptWithIV(key, contentType, plaintext, compress, iv)
}

// encryptWithIV is EncryptFile with a chosen IV, for test vectors only.
func encryptWithIV(key []byte, contentType string, plaintext []byte, compress bool, iv []byte) (string, error) {
	if len(key) != KeySize {
		return "", ErrKeySize
	}
	if contentType == "" {
		return "", fieldErr(ErrUnsupportedJWE, "cty", "is required")
	}
	h := protectedHeader{Alg: jweAlg, Enc: jweEnc, Cty: contentType}
	if compress {
		h.Zip = jweZip
		var buf bytes.Buffer
		w, err := flate.NewWriter(&buf, flate.BestCompression)
		if err != nil {
			return "", err
		}
		if _, err := w.Write(plaintext); err != nil {
			return "", err
		}
		if err := w.Close(); err != nil {
			return "", err
		}
		plaintext = buf.Bytes()
	}
	var hb bytes.Buffer
	je := json.NewEncoder(&hb)
	je.SetEscapeHTML(false)
	if err := je.Encode(h); err != nil {
		return "", err
	}
	header := b64.EncodeToString(bytes.TrimSuffix(hb.Bytes(), []byte("\n")))

	aead, err := newGCM(key)
	if err != nil {
		return "", err
	}
	sealed := aead.Seal(nil, iv, plaintext, []byte(header))
	ct, tag := sealed[:len(sealed)-gcmTagSize], sealed[len(sealed)-gcmTagSize:]
	return strings.Join([]string{header, "", b64.EncodeToString(iv), b64.EncodeToString(ct), b64.EncodeToString(tag)}, "."), nil
}

func newGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, ErrKeySize
	}
	return cipher.NewGCM(block)
}

// DecryptOption adjusts DecryptFile.
type DecryptOption func(*decryptConfig)

type decryptConfig struct {
	maxPlaintext int64
}

// WithMaxPlaintext sets the largest plaintext, after decompression,
// DecryptFile will return; larger files fail with ErrTooLarge. Values
// below 1 mean DefaultMaxPlaintext.
func WithMaxPlaintext(n int64) DecryptOption {
	return func(c *decryptConfig) {
		if n > 0 {
			c.maxPlaintext = n
		}
	}
}

// DecryptFile decrypts a compact JWE made for a SMART Health Link with key
// (32 bytes) and returns the header's content type ("" when the header has
// no "cty") and the plaintext, decompressed when the header says
// "zip":"DEF".
//
// It accepts only "alg":"dir" and "enc":"A256GCM", no "zip" or "zip":"DEF",
// and no "crit" parameter (ErrUnsupportedJWE with a *FieldError naming the
// parameter); other header parameters such as "kid" are ignored. Surrounding
// white space is ignored. Authentication failure gives ErrDecrypt; any other
// malformation gives ErrMalformedJWE; a plaintext larger than the limit
// (DefaultMaxPlaintext unless WithMaxPlaintext says otherwise) gives
// ErrTooLarge, checked while decompressing so a zip bomb is never fully
// inflated. It does not panic on any input.
func DecryptFile(key []byte, jwe string, opts ...DecryptOption) (contentType string, plaintext []byte, err error) {
	cfg := decryptConfig{maxPlaintext: DefaultMaxPlaintext}
	for _, o := range opts {
		o(&cfg)
	}
	if len(key) != KeySize {
		return "", nil, ErrKeySize
	}
	jwe = strings.TrimSpace(jwe)
	if strings.Count(jwe, ".") != 4 {
		return "", nil, fmt.Errorf("%w: want 5 dot-separated segments", ErrMalformedJWE)
	}
	parts := strings.Split(jwe, ".")
	header, encKey, ivPart, ctPart, tagPart := parts[0], parts[1], parts[2], parts[3], parts[4]

	h, err := parseHeader(header)
	if err != nil {
		return "", nil, err
	}
	if encKey != "" {
		return "", nil, fieldErr(ErrMalformedJWE, "encrypted_key", "must be empty with \"alg\":\"dir\"")
	}
	iv, err := b64.DecodeString(ivPart)
	if err != nil || len(iv) != gcmIVSize {
		return "", nil, fieldErr(ErrMalformedJWE, "iv", "must be %d bytes of base64url", gcmIVSize)
	}
	tag, err := b64.DecodeString(tagPart)
	if err != nil || len(tag) != gcmTagSize {
		return "", nil, fieldErr(ErrMalformedJWE, "tag", "must be %d bytes of base64url", gcmTagSize)
	}
	// Bound the ciphertext before decoding it: without compression it is
	// as long as the plaintext; DEFLATE (RFC 1951) makes incompressible
	// data longer by 5 bytes per 64 KiB block, so a longer compressed
	// ciphertext cannot be an honest file within the limit.
	maxCT := cfg.maxPlaintext
	if h.zip {
		maxCT += cfg.maxPlaintext/1024 + 1024
	}
	if int64(b64.DecodedLen(len(ctPart))) > maxCT {
		return "", nil, ErrTooLarge
	}
	ct, err := b64.DecodeString(ctPart)
	if err != nil {
		return "", nil, fieldErr(ErrMalformedJWE, "ciphertext", "is not valid base64url")
	}

	aead, err := newGCM(key)
	if err != nil {
		return "", nil, err
	}
	sealed := append(ct, tag...)
	pt, err := aead.Open(sealed[:0], iv, sealed, []byte(header))
	if err != nil {
		return "", nil, ErrDecrypt
	}
	if h.zip {
		pt, err = inflate(pt, cfg.maxPlaintext)
		if err != nil {
			return "", nil, err
		}
	}
	return h.cty, pt, nil
}

type parsedHeader struct {
	cty string
	zip bool
}

// parseHeader decodes and checks the protected header. Parameter names are
// matched exactly (JOSE names are case-sensitive).
func parseHeader(seg string) (parsedHeader, error) {
	if seg == "" || len(seg) > maxHeaderSz {
		return parsedHeader{}, fieldErr(ErrMalformedJWE, "header", "must be 1 to %d base64url characters", maxHeaderSz)
	}
	raw, err := b64.DecodeString(seg)
	if err != nil {
		return parsedHeader{}, fieldErr(ErrMalformedJWE, "header", "is not valid base64url")
	}
	if jsondepth.Exceeds(raw, MaxJSONDepth) {
		return parsedHeader{}, fieldErr(ErrMalformedJWE, "header", "nests JSON more than %d levels", MaxJSONDepth)
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil || obj == nil {
		return parsedHeader{}, fieldErr(ErrMalformedJWE, "header", "is not a JSON object")
	}
	str := func(name string) (string, bool, error) {
		v, ok := obj[name]
		if !ok {
			return "", false, nil
		}
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return "", true, fieldErr(ErrMalformedJWE, name, "must be a string")
		}
		return s, true, nil
	}
	var h parsedHeader
	alg, _, err := str("alg")
	if err != nil {
		return h, err
	}
	if alg != jweAlg {
		return h, fieldErr(ErrUnsupportedJWE, "alg", "must be %q (got %s)", jweAlg, quoteShort(alg))
	}
	enc, _, err := str("enc")
	if err != nil {
		return h, err
	}
	if enc != jweEnc {
		return h, fieldErr(ErrUnsupportedJWE, "enc", "must be %q (got %s)", jweEnc, quoteShort(enc))
	}
	zip, hasZip, err := str("zip")
	if err != nil {
		return h, err
	}
	if hasZip && zip != jweZip {
		return h, fieldErr(ErrUnsupportedJWE, "zip", "must be %q or absent (got %s)", jweZip, quoteShort(zip))
	}
	h.zip = hasZip
	if _, ok := obj["crit"]; ok {
		return h, fieldErr(ErrUnsupportedJWE, "crit", "names extensions this implementation does not understand")
	}
	if h.cty, _, err = str("cty"); err != nil {
		return h, err
	}
	return h, nil
}

// inflate decompresses raw DEFLATE data, refusing to produce more than max
// bytes.
func inflate(data []byte, max int64) ([]byte, error) {
	r := flate.NewReader(bytes.NewReader(data))
	defer r.Close()
	out, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return nil, fmt.Errorf("%w: cannot decompress payload: %v", ErrMalformedJWE, err)
	}
	if int64(len(out)) > max {
		return nil, ErrTooLarge
	}
	return out, nil
}
