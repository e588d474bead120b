package share

import (
	"bytes"
	"compress/flate"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
)

// specExampleSHA256 is the SHA-256 of the plaintext of the specification's
// JWE example (846 bytes; authenticated by AES-GCM under specKey).
const specExampleSHA256 = "7e581b1bb86949d849815bc6f653fa56ab342af9e550da671414c7d9830c48c6"

func TestDecryptSpecVectors(t *testing.T) {
	key := mustKey(t, specKey)
	t.Run("spec example", func(t *testing.T) {
		cty, got, err := DecryptFile(key, string(readShared(t, "shl/spec-example-jwe.txt")))
		if err != nil {
			t.Fatalf("DecryptFile: %v", err)
		}
		if cty != ContentTypeSHC {
			t.Errorf("content type = %q, want %q", cty, ContentTypeSHC)
		}
		if sum := sha256.Sum256(got); hex.EncodeToString(sum[:]) != specExampleSHA256 || len(got) != 846 {
			t.Errorf("plaintext: %d bytes, sha256 %x; want 846 bytes, %s", len(got), sum, specExampleSHA256)
		}
		// The spec encrypted an earlier signing of example-00 than the
		// one in shared testdata: the JWS header and the credential are
		// the same, only the signing time (nbf) and signature differ.
		want := readShared(t, "shc/input/images/example-00-e-file.smart-health-card")
		gotHdr, gotClaims := shcClaims(t, got)
		wantHdr, wantClaims := shcClaims(t, want)
		if gotHdr != wantHdr {
			t.Errorf("JWS header %s, want %s", gotHdr, wantHdr)
		}
		delete(gotClaims, "nbf")
		delete(wantClaims, "nbf")
		if !reflect.DeepEqual(gotClaims, wantClaims) {
			t.Errorf("JWS claims differ from example-00-e-file.smart-health-card beyond nbf")
		}
	})
	t.Run("ips with kid, no cty", func(t *testing.T) {
		cty, got, err := DecryptFile(key, string(readShared(t, "shl/ips-enc.txt")))
		if err != nil {
			t.Fatalf("DecryptFile: %v", err)
		}
		if cty != "" {
			t.Errorf("content type = %q, want none", cty)
		}
		if want := readShared(t, "shl/ips.json"); !bytes.Equal(got, want) {
			t.Errorf("plaintext differs from ips.json (%d bytes, want %d)", len(got), len(want))
		}
	})
}

// shcClaims returns the JWS header and the inflated claims of the single
// credential in a .smart-health-card file.
func shcClaims(t *testing.T, file []byte) (string, map[string]any) {
	t.Helper()
	var f struct {
		VerifiableCredential []string `json:"verifiableCredential"`
	}
	if err := json.Unmarshal(file, &f); err != nil || len(f.VerifiableCredential) != 1 {
		t.Fatalf("not a one-credential .smart-health-card file: %v", err)
	}
	parts := strings.Split(f.VerifiableCredential[0], ".")
	if len(parts) != 3 {
		t.Fatalf("credential is not a compact JWS")
	}
	hdr, err1 := base64.RawURLEncoding.DecodeString(parts[0])
	payload, err2 := base64.RawURLEncoding.DecodeString(parts[1])
	if err1 != nil || err2 != nil {
		t.Fatalf("JWS base64: %v %v", err1, err2)
	}
	raw, err := io.ReadAll(flate.NewReader(bytes.NewReader(payload)))
	if err != nil {
		t.Fatalf("inflating JWS payload: %v", err)
	}
	var claims map[string]any
	if err := json.Unmarshal(raw, &claims); err != nil {
		t.Fatalf("JWS claims: %v", err)
	}
	return string(hdr), claims
}

func TestEncryptDecryptRoundTrip(t *testing.T) {
	key := NewKey()
	ips := readShared(t, "shl/ips.json")
	for _, tc := range []struct {
		name string
		pt   []byte
		cty  string
	}{
		{"empty", nil, ContentTypeFHIR},
		{"small", []byte(`{"resourceType":"Bundle"}`), ContentTypeFHIR},
		{"ips", ips, ContentTypeFHIR + ";fhirVersion=4.0.1"},
		{"binary", []byte{0, 1, 2, 255, 254}, ContentTypeSMARTAPIAccess},
	} {
		for _, compress := range []bool{false, true} {
			name := tc.name
			if compress {
				name += "/zip"
			}
			t.Run(name, func(t *testing.T) {
				jwe, err := EncryptFile(key, tc.cty, tc.pt, compress)
				if err != nil {
					t.Fatalf("EncryptFile: %v", err)
				}
				cty, got, err := DecryptFile(key, jwe)
				if err != nil {
					t.Fatalf("DecryptFile: %v", err)
				}
				if cty != tc.cty || !bytes.Equal(got, tc.pt) {
					t.Errorf("round trip: cty %q (want %q), %d bytes (want %d)", cty, tc.cty, len(got), len(tc.pt))
				}
			})
		}
	}
	// Compression actually compresses.
	plain, _ := EncryptFile(key, ContentTypeFHIR, ips, false)
	zipped, _ := EncryptFile(key, ContentTypeFHIR, ips, true)
	if len(zipped)*3 > len(plain) {
		t.Errorf("compressed JWE %d bytes, uncompressed %d: expected at least 3x smaller", len(zipped), len(plain))
	}
}

func TestEncryptFormat(t *testing.T) {
	key := NewKey()
	for _, tc := range []struct {
		compress bool
		header   string
	}{
		{false, `{"alg":"dir","enc":"A256GCM","cty":"application/fhir+json"}`},
		{true, `{"alg":"dir","enc":"A256GCM","cty":"application/fhir+json","zip":"DEF"}`},
	} {
		jwe, err := EncryptFile(key, ContentTypeFHIR, []byte("hello"), tc.compress)
		if err != nil {
			t.Fatal(err)
		}
		parts := strings.Split(jwe, ".")
		if len(parts) != 5 {
			t.Fatalf("%d segments, want 5", len(parts))
		}
		h, _ := b64.DecodeString(parts[0])
		if string(h) != tc.header {
			t.Errorf("header = %s, want %s", h, tc.header)
		}
		if parts[1] != "" {
			t.Errorf("encrypted key segment = %q, want empty", parts[1])
		}
		iv, _ := b64.DecodeString(parts[2])
		tag, _ := b64.DecodeString(parts[4])
		if len(iv) != 12 || len(tag) != 16 {
			t.Errorf("iv %d bytes, tag %d bytes; want 12 and 16", len(iv), len(tag))
		}
		if !tc.compress {
			ct, _ := b64.DecodeString(parts[3])
			if len(ct) != len("hello") {
				t.Errorf("ciphertext %d bytes, want %d", len(ct), len("hello"))
			}
		}
	}
}

// TestEncrypt_Confidential checks that the ciphertext does not contain the
// plaintext and that the IV is fresh for every call.
func TestEncrypt_Confidential(t *testing.T) {
	key := NewKey()
	pt := bytes.Repeat([]byte("Oliver Brown, MMR dose 2. "), 40)
	seen := map[string]bool{}
	for range 50 {
		jwe, err := EncryptFile(key, ContentTypeFHIR, pt, false)
		if err != nil {
			t.Fatal(err)
		}
		parts := strings.Split(jwe, ".")
		if seen[parts[2]] {
			t.Fatal("IV repeated")
		}
		seen[parts[2]] = true
		ct, _ := b64.DecodeString(parts[3])
		if bytes.Contains(ct, []byte("Oliver")) || strings.Contains(jwe, "Oliver") {
			t.Fatal("ciphertext contains plaintext")
		}
	}
}

// TestDecrypt_Integrity flips one byte of each part of a JWE; every change
// must make decryption fail.
func TestDecrypt_Integrity(t *testing.T) {
	key := NewKey()
	for _, compress := range []bool{false, true} {
		jwe, err := EncryptFile(key, ContentTypeFHIR, []byte(`{"resourceType":"Patient","id":"p1"}`), compress)
		if err != nil {
			t.Fatal(err)
		}
		parts := strings.Split(jwe, ".")
		for _, tc := range []struct {
			name string
			seg  int
			want error
		}{
			{"header", 0, nil}, // any error: the header may stop being JSON
			{"iv", 2, ErrDecrypt},
			{"ciphertext", 3, ErrDecrypt},
			{"tag", 4, ErrDecrypt},
		} {
			raw, _ := b64.DecodeString(parts[tc.seg])
			for i := range raw {
				for _, mask := range []byte{0x01, 0x80} {
					mod := bytes.Clone(raw)
					mod[i] ^= mask
					p := append([]string(nil), parts...)
					p[tc.seg] = b64.EncodeToString(mod)
					_, _, err := DecryptFile(key, strings.Join(p, "."))
					if err == nil {
						t.Fatalf("%s byte %d ^ %#x: decryption succeeded", tc.name, i, mask)
					}
					if tc.want != nil && !errors.Is(err, tc.want) {
						t.Fatalf("%s byte %d: error %v, want %v", tc.name, i, err, tc.want)
					}
				}
			}
		}
		// A header that is still valid and acceptable JSON, but not the
		// one that was authenticated, fails authentication.
		for _, h := range []string{
			`{"alg":"dir","enc":"A256GCM","cty":"application/fhir+json","kid":"x"}`,
			`{"alg":"dir", "enc":"A256GCM","cty":"application/fhir+json"}`,
			`{"alg":"dir","enc":"A256GCM","cty":"application/smart-health-card"}`,
		} {
			if compress {
				h = strings.TrimSuffix(h, "}") + `,"zip":"DEF"}`
			}
			p := append([]string(nil), parts...)
			p[0] = b64.EncodeToString([]byte(h))
			if _, _, err := DecryptFile(key, strings.Join(p, ".")); !errors.Is(err, ErrDecrypt) {
				t.Errorf("swapped header %s: error %v, want ErrDecrypt", h, err)
			}
		}
	}
}

func TestDecryptWrongKey(t *testing.T) {
	jwe := string(readShared(t, "shl/spec-example-jwe.txt"))
	wrong := mustKey(t, specKey)
	wrong[0] ^= 1
	_, _, err := DecryptFile(wrong, jwe)
	if !errors.Is(err, ErrDecrypt) {
		t.Fatalf("error = %v, want ErrDecrypt", err)
	}
	assertNoSecret(t, err.Error(), specKey, string(wrong))
	_, _, err = DecryptFile(NewKey(), jwe)
	if !errors.Is(err, ErrDecrypt) {
		t.Fatalf("random key: error = %v, want ErrDecrypt", err)
	}
}

func TestKeySize(t *testing.T) {
	for _, n := range []int{0, 16, 24, 31, 33} {
		if _, err := EncryptFile(make([]byte, n), ContentTypeFHIR, nil, false); !errors.Is(err, ErrKeySize) {
			t.Errorf("EncryptFile with %d-byte key: %v", n, err)
		}
		if _, _, err := DecryptFile(make([]byte, n), "a.b.c.d.e"); !errors.Is(err, ErrKeySize) {
			t.Errorf("DecryptFile with %d-byte key: %v", n, err)
		}
	}
	if _, err := EncryptFile(NewKey(), "", nil, false); err == nil {
		t.Error("EncryptFile with empty content type succeeded")
	}
}

// jweWithHeader returns a JWE whose header is h and whose other segments
// are well-formed (it will not authenticate under any key).
func jweWithHeader(h string) string {
	return b64.EncodeToString([]byte(h)) + ".." + b64.EncodeToString(make([]byte, 12)) + "." +
		b64.EncodeToString([]byte("x")) + "." + b64.EncodeToString(make([]byte, 16))
}

func TestDecryptRejectsHeader(t *testing.T) {
	key := NewKey()
	for _, tc := range []struct {
		name, header, field string
		want                error
	}{
		{"alg A128KW", `{"alg":"A128KW","enc":"A256GCM"}`, "alg", ErrUnsupportedJWE},
		{"alg RSA-OAEP", `{"alg":"RSA-OAEP","enc":"A256GCM"}`, "alg", ErrUnsupportedJWE},
		{"alg none", `{"alg":"none","enc":"A256GCM"}`, "alg", ErrUnsupportedJWE},
		{"alg case", `{"alg":"DIR","enc":"A256GCM"}`, "alg", ErrUnsupportedJWE},
		{"alg missing", `{"enc":"A256GCM"}`, "alg", ErrUnsupportedJWE},
		{"alg upper-case name", `{"ALG":"dir","enc":"A256GCM"}`, "alg", ErrUnsupportedJWE},
		{"alg number", `{"alg":1,"enc":"A256GCM"}`, "alg", ErrMalformedJWE},
		{"enc A128GCM", `{"alg":"dir","enc":"A128GCM"}`, "enc", ErrUnsupportedJWE},
		{"enc A256CBC-HS512", `{"alg":"dir","enc":"A256CBC-HS512"}`, "enc", ErrUnsupportedJWE},
		{"enc missing", `{"alg":"dir"}`, "enc", ErrUnsupportedJWE},
		{"zip GZIP", `{"alg":"dir","enc":"A256GCM","zip":"GZIP"}`, "zip", ErrUnsupportedJWE},
		{"zip empty", `{"alg":"dir","enc":"A256GCM","zip":""}`, "zip", ErrUnsupportedJWE},
		{"zip lower-case", `{"alg":"dir","enc":"A256GCM","zip":"def"}`, "zip", ErrUnsupportedJWE},
		{"zip null", `{"alg":"dir","enc":"A256GCM","zip":null}`, "zip", ErrUnsupportedJWE},
		{"crit", `{"alg":"dir","enc":"A256GCM","crit":["exp"],"exp":1}`, "crit", ErrUnsupportedJWE},
		{"cty number", `{"alg":"dir","enc":"A256GCM","cty":5}`, "cty", ErrMalformedJWE},
		{"not json", `alg=dir`, "header", ErrMalformedJWE},
		{"array", `["dir"]`, "header", ErrMalformedJWE},
		{"null", `null`, "header", ErrMalformedJWE},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := DecryptFile(key, jweWithHeader(tc.header))
			checkFieldErr(t, err, tc.want, tc.field)
		})
	}
}

func TestDecryptRejectsMalformed(t *testing.T) {
	key := mustKey(t, specKey)
	good := string(readShared(t, "shl/spec-example-jwe.txt"))
	parts := strings.Split(strings.TrimSpace(good), ".")
	with := func(i int, v string) string {
		p := append([]string(nil), parts...)
		p[i] = v
		return strings.Join(p, ".")
	}
	for _, tc := range []struct{ name, jwe string }{
		{"empty", ""},
		{"three segments (JWS)", "a.b.c"},
		{"six segments", good + ".x"},
		{"empty header", with(0, "")},
		{"header not base64url", with(0, "eyJ+")},
		{"header padded", with(0, parts[0]+"=")},
		{"huge header", with(0, strings.Repeat("A", maxHeaderSz+4))},
		{"encrypted key present", with(1, "AAAA")},
		{"iv short", with(2, b64.EncodeToString(make([]byte, 8)))},
		{"iv long", with(2, b64.EncodeToString(make([]byte, 16)))},
		{"iv bad base64", with(2, "!!!!!!!!!!!!!!!!")},
		{"tag short", with(4, b64.EncodeToString(make([]byte, 12)))},
		{"tag missing", with(4, "")},
		{"ciphertext bad base64", with(3, "a")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := DecryptFile(key, tc.jwe)
			if !errors.Is(err, ErrMalformedJWE) {
				t.Fatalf("error = %v, want ErrMalformedJWE", err)
			}
		})
	}
}

// deflateBomb returns raw DEFLATE data that inflates to at least n zero
// bytes while staying small: one compressed 1 MiB block of zeros, repeated
// (each copy is byte-aligned thanks to the sync flush and only refers back
// to zeros), then an empty final stored block.
func deflateBomb(t testing.TB, n int) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := flate.NewWriter(&buf, flate.BestCompression)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(make([]byte, 1<<20))
	w.Flush()
	block := bytes.Clone(buf.Bytes())
	var out bytes.Buffer
	for i := 0; i < (n+(1<<20)-1)>>20; i++ {
		out.Write(block)
	}
	out.Write([]byte{0x01, 0x00, 0x00, 0xff, 0xff}) // BFINAL, stored, LEN=0
	return out.Bytes()
}

// sealRaw encrypts already-compressed data under a header that says
// "zip":"DEF", the way an attacker holding the link key would.
func sealRaw(t testing.TB, key, deflated []byte) string {
	t.Helper()
	aead, err := newGCM(key)
	if err != nil {
		t.Fatal(err)
	}
	header := b64.EncodeToString([]byte(`{"alg":"dir","enc":"A256GCM","cty":"application/fhir+json","zip":"DEF"}`))
	iv := make([]byte, 12)
	sealed := aead.Seal(nil, iv, deflated, []byte(header))
	return header + ".." + b64.EncodeToString(iv) + "." + b64.EncodeToString(sealed[:len(sealed)-16]) + "." + b64.EncodeToString(sealed[len(sealed)-16:])
}

func TestDecryptZipBomb(t *testing.T) {
	key := NewKey()

	// Sanity check of the bomb itself at a small size.
	small := deflateBomb(t, 3<<20)
	_, pt, err := DecryptFile(key, sealRaw(t, key, small))
	if err != nil || len(pt) != 3<<20 {
		t.Fatalf("3 MiB bomb under default limit: %d bytes, %v", len(pt), err)
	}

	// Default limit: 65 MiB of zeros from about 65 KiB of input.
	bomb := deflateBomb(t, DefaultMaxPlaintext+(1<<20))
	if len(bomb) > 1<<20 {
		t.Fatalf("bomb is %d bytes; expected a small input", len(bomb))
	}
	if _, _, err := DecryptFile(key, sealRaw(t, key, bomb)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("default limit: error = %v, want ErrTooLarge", err)
	}

	// Configured limits, exactly at and just over the limit.
	for _, compress := range []bool{false, true} {
		jwe, err := EncryptFile(key, ContentTypeFHIR, make([]byte, 1000), compress)
		if err != nil {
			t.Fatal(err)
		}
		if _, pt, err := DecryptFile(key, jwe, WithMaxPlaintext(1000)); err != nil || len(pt) != 1000 {
			t.Errorf("compress=%v at limit: %d bytes, %v", compress, len(pt), err)
		}
		if _, _, err := DecryptFile(key, jwe, WithMaxPlaintext(999)); !errors.Is(err, ErrTooLarge) {
			t.Errorf("compress=%v over limit: error = %v, want ErrTooLarge", compress, err)
		}
	}
}

func TestDecryptCorruptDeflate(t *testing.T) {
	key := NewKey()
	_, _, err := DecryptFile(key, sealRaw(t, key, []byte{0xff, 0xff, 0xff}))
	if !errors.Is(err, ErrMalformedJWE) {
		t.Fatalf("error = %v, want ErrMalformedJWE", err)
	}
}

// The header parameters of the ips vector include kid; check we parsed
// the test file as the README describes.
func TestIPSHeaderHasKid(t *testing.T) {
	h, _ := b64.DecodeString(strings.SplitN(string(readShared(t, "shl/ips-enc.txt")), ".", 2)[0])
	var m map[string]string
	if err := json.Unmarshal(h, &m); err != nil || m["kid"] == "" || m["cty"] != "" {
		t.Fatalf("ips-enc.txt header = %s (%v)", h, err)
	}
}
