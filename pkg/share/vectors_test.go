package share

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// Vector files in testdata/vectors pin the JWE format. Each has header
// lines, a blank line, and a compact JWE:
//
//	expect: success | auth failure | unsupported | malformed | too large
//	key: <base64url key>
//	cty: <expected content type>        (success only; may be empty)
//	plaintext-sha256: <hex>             (success only)
//	max: <bytes>                        (optional WithMaxPlaintext)
//	comment: <text>
//
// They are generated deterministically (fixed IVs) by
//
//	go test ./pkg/share -run TestVectors -update
//
// and must then stay unchanged: a change means the format changed.

var update = flag.Bool("update", false, "rewrite testdata/vectors from the generators in vectors_test.go")

var expectErr = map[string]error{
	"success":      nil,
	"auth failure": ErrDecrypt,
	"unsupported":  ErrUnsupportedJWE,
	"malformed":    ErrMalformedJWE,
	"too large":    ErrTooLarge,
}

type vector struct {
	name      string
	expect    string
	comment   string
	cty       string // for success
	plaintext []byte // for success
	max       int64
	jwe       func(t *testing.T, key []byte) string
	// pinned vectors must also be reproduced byte for byte by the
	// generator (EncryptFile's output format with a fixed IV). Vectors
	// with compressed data are not pinned: DEFLATE output may change
	// between Go releases without changing its meaning.
	pinned bool
}

// vecKey is the specification's example key: a known key is the point.
func vecKey(t *testing.T) []byte { return mustKey(t, specKey) }

var vecIV = []byte("phr-vectors!") // 12 bytes

func vecEncrypt(cty string, pt []byte, compress bool) func(*testing.T, []byte) string {
	return func(t *testing.T, key []byte) string {
		s, err := encryptWithIV(key, cty, pt, compress, vecIV)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
}

// vecSeal seals plaintext (already compressed if the header says so) under
// an arbitrary header string, so vectors can carry headers EncryptFile
// never writes.
func vecSeal(header string, pt []byte) func(*testing.T, []byte) string {
	return func(t *testing.T, key []byte) string {
		aead, err := newGCM(key)
		if err != nil {
			t.Fatal(err)
		}
		h := b64.EncodeToString([]byte(header))
		sealed := aead.Seal(nil, vecIV, pt, []byte(h))
		n := len(sealed) - gcmTagSize
		return h + ".." + b64.EncodeToString(vecIV) + "." + b64.EncodeToString(sealed[:n]) + "." + b64.EncodeToString(sealed[n:])
	}
}

// vecEdit applies edit to the segments of another generator's JWE.
func vecEdit(base func(*testing.T, []byte) string, edit func(p []string) []string) func(*testing.T, []byte) string {
	return func(t *testing.T, key []byte) string {
		return strings.Join(edit(strings.Split(base(t, key), ".")), ".")
	}
}

func flipSegment(i int) func([]string) []string {
	return func(p []string) []string {
		raw, _ := b64.DecodeString(p[i])
		raw[len(raw)/2] ^= 0x01
		p[i] = b64.EncodeToString(raw)
		return p
	}
}

var bundle = []byte(`{"resourceType":"Bundle","type":"collection","entry":[{"resource":{"resourceType":"Patient","id":"p1"}}]}`)

func vectors() []vector {
	plain := vecEncrypt(ContentTypeFHIR, bundle, false)
	zipped := vecEncrypt(ContentTypeFHIR, bundle, true)
	return []vector{
		{name: "dir-a256gcm", expect: "success", cty: ContentTypeFHIR, plaintext: bundle, jwe: plain, pinned: true,
			comment: "alg dir, enc A256GCM, cty, no compression"},
		{name: "dir-a256gcm-zip", expect: "success", cty: ContentTypeFHIR, plaintext: bundle, jwe: zipped,
			comment: "zip DEF: raw DEFLATE before encryption"},
		{name: "extra-kid-no-cty", expect: "success", cty: "", plaintext: bundle,
			jwe:     vecSeal(`{"enc":"A256GCM","alg":"dir","kid":"abc"}`, bundle),
			comment: "other parameter order, unknown kid ignored, cty absent"},
		{name: "empty-plaintext", expect: "success", cty: ContentTypeSHC, plaintext: []byte{}, jwe: vecEncrypt(ContentTypeSHC, nil, false), pinned: true,
			comment: "empty file"},
		{name: "flipped-ciphertext", expect: "auth failure", jwe: vecEdit(plain, flipSegment(3)), comment: "one ciphertext bit flipped"},
		{name: "flipped-tag", expect: "auth failure", jwe: vecEdit(plain, flipSegment(4)), comment: "one tag bit flipped"},
		{name: "flipped-iv", expect: "auth failure", jwe: vecEdit(plain, flipSegment(2)), comment: "one IV bit flipped"},
		{name: "swapped-header", expect: "auth failure", comment: "header changed to another acceptable header: AAD mismatch",
			jwe: vecEdit(plain, func(p []string) []string {
				p[0] = b64.EncodeToString([]byte(`{"alg":"dir","enc":"A256GCM","cty":"application/smart-health-card"}`))
				return p
			})},
		{name: "zip-removed", expect: "auth failure", comment: "zip parameter stripped from a compressed file's header",
			jwe: vecEdit(zipped, func(p []string) []string {
				p[0] = b64.EncodeToString([]byte(`{"alg":"dir","enc":"A256GCM","cty":"application/fhir+json"}`))
				return p
			})},
		{name: "alg-a256kw", expect: "unsupported", jwe: vecSeal(`{"alg":"A256KW","enc":"A256GCM"}`, bundle), comment: "key wrapping is not used by links"},
		{name: "enc-a128gcm", expect: "unsupported", jwe: vecSeal(`{"alg":"dir","enc":"A128GCM"}`, bundle), comment: "only A256GCM"},
		{name: "zip-gzip", expect: "unsupported", jwe: vecSeal(`{"alg":"dir","enc":"A256GCM","zip":"GZIP"}`, bundle), comment: "only DEF"},
		{name: "crit", expect: "unsupported", jwe: vecSeal(`{"alg":"dir","enc":"A256GCM","crit":["b64"],"b64":false}`, bundle), comment: "no critical extensions are understood"},
		{name: "encrypted-key", expect: "malformed", comment: "dir requires an empty encrypted key",
			jwe: vecEdit(plain, func(p []string) []string { p[1] = "AAAA"; return p })},
		{name: "short-iv", expect: "malformed", comment: "IV must be 96 bits",
			jwe: vecEdit(plain, func(p []string) []string { p[2] = p[2][:8]; return p })},
		{name: "four-segments", expect: "malformed", comment: "compact JWE has five segments",
			jwe: vecEdit(plain, func(p []string) []string { return p[:4] })},
		{name: "zip-over-limit", expect: "too large", max: 64, comment: "decompressed size over the limit is refused",
			jwe: vecEncrypt(ContentTypeFHIR, bundle, true)},
	}
}

func TestVectors(t *testing.T) {
	dir := filepath.Join("testdata", "vectors")
	if *update {
		writeVectors(t, dir)
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.txt"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no vector files in %s (run with -update): %v", dir, err)
	}
	if len(files) != len(vectors()) {
		t.Errorf("%d vector files, %d generators: run with -update", len(files), len(vectors()))
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txt"), func(t *testing.T) {
			runVector(t, file)
		})
	}
	for _, v := range vectors() {
		if !v.pinned {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, v.name+".txt"))
		if err != nil {
			t.Fatal(err)
		}
		_, body, _ := strings.Cut(string(b), "\n\n")
		if got := v.jwe(t, vecKey(t)); got != strings.TrimSpace(body) {
			t.Errorf("%s: EncryptFile output changed:\n got %s\nwant %s", v.name, got, strings.TrimSpace(body))
		}
	}
}

func runVector(t *testing.T, file string) {
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	head, body, ok := strings.Cut(string(b), "\n\n")
	if !ok {
		t.Fatal("no blank line after the header")
	}
	hdr := map[string]string{}
	for _, line := range strings.Split(head, "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			t.Fatalf("bad header line %q", line)
		}
		hdr[k] = strings.TrimSpace(v)
	}
	want, ok := expectErr[hdr["expect"]]
	if !ok {
		t.Fatalf("unknown expect %q", hdr["expect"])
	}
	key := mustKey(t, hdr["key"])
	var opts []DecryptOption
	if m := hdr["max"]; m != "" {
		n, err := strconv.ParseInt(m, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		opts = append(opts, WithMaxPlaintext(n))
	}
	cty, pt, err := DecryptFile(key, body, opts...)
	if want != nil {
		if !errors.Is(err, want) {
			t.Fatalf("error = %v, want %v", err, want)
		}
		return
	}
	if err != nil {
		t.Fatalf("DecryptFile: %v", err)
	}
	sum := sha256.Sum256(pt)
	if cty != hdr["cty"] || hex.EncodeToString(sum[:]) != hdr["plaintext-sha256"] {
		t.Errorf("cty %q sha256 %x; want %q %s", cty, sum, hdr["cty"], hdr["plaintext-sha256"])
	}
}

func writeVectors(t *testing.T, dir string) {
	old, _ := filepath.Glob(filepath.Join(dir, "*.txt"))
	for _, f := range old {
		os.Remove(f)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, v := range vectors() {
		var b bytes.Buffer
		fmt.Fprintf(&b, "expect: %s\nkey: %s\n", v.expect, specKey)
		if v.expect == "success" {
			sum := sha256.Sum256(v.plaintext)
			fmt.Fprintf(&b, "%s\nplaintext-sha256: %x\n", strings.TrimSpace("cty: "+v.cty), sum)
		}
		if v.max > 0 {
			fmt.Fprintf(&b, "max: %d\n", v.max)
		}
		fmt.Fprintf(&b, "comment: %s\n\n%s\n", v.comment, v.jwe(t, vecKey(t)))
		if err := os.WriteFile(filepath.Join(dir, v.name+".txt"), b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
