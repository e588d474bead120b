package e2e

import (
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"strings"
	"testing"
	"unicode/utf16"
)

// TestFormsFindEmbedded: a string inside longer text is found whatever
// the encoding of the whole and wherever it starts, and random bytes do
// not match.
func TestFormsFindEmbedded(t *testing.T) {
	secret := "Zyxwqv Plorkington"
	utf16le := func(s string) []byte {
		var b []byte
		for _, c := range utf16.Encode([]rune(s)) {
			b = append(b, byte(c), byte(c>>8))
		}
		return b
	}
	encodings := []struct {
		name string
		enc  func([]byte) []byte
	}{
		{"raw", func(b []byte) []byte { return b }},
		{"upper case", bytes.ToUpper},
		{"hex", func(b []byte) []byte { return []byte(hex.EncodeToString(b)) }},
		{"HEX", func(b []byte) []byte { return []byte(strings.ToUpper(hex.EncodeToString(b))) }},
		{"utf16le", func(b []byte) []byte { return utf16le(string(b)) }},
		{"base64", func(b []byte) []byte { return []byte(base64.StdEncoding.EncodeToString(b)) }},
		{"base64url", func(b []byte) []byte { return []byte(base64.RawURLEncoding.EncodeToString(b)) }},
	}
	forms := Forms(secret)
	for _, enc := range encodings {
		for pre := range 6 {
			for post := range 3 {
				text := []byte(strings.Repeat("a", pre) + secret + strings.Repeat("?", post))
				h := NewHaystack(enc.name, append([]byte("noise "), enc.enc(text)...))
				if _, _, ok := h.Find(forms); !ok {
					t.Errorf("%s with %d bytes before and %d after: not found", enc.name, pre, post)
				}
			}
		}
	}
	noise := make([]byte, 4<<20)
	rand.Read(noise)
	if f, off, ok := NewHaystack("random", noise).Find(forms); ok {
		t.Errorf("random bytes match %s at %d", f.Name, off)
	}
	if NewHaystack("other", []byte("Zyxwqv Plorkingtom")).Contains(secret) {
		t.Error("a different string matched")
	}
}

// TestExpandGzip: a gzipped plaintext is searched decompressed.
func TestExpandGzip(t *testing.T) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write([]byte(`{"name":"Quuxotrine"}`))
	zw.Close()
	hs, err := Expand("x.gz", buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, h := range hs {
		found = found || h.Contains("Quuxotrine")
	}
	if len(hs) != 2 || !found {
		t.Fatalf("%d haystacks, found %v", len(hs), found)
	}
}
