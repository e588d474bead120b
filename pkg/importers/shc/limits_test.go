package shc

import (
	"bytes"
	"compress/flate"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"

	"github.com/phr-project/phr/internal/racedetect"
	"github.com/phr-project/phr/pkg/importers"
	"github.com/phr-project/phr/pkg/importers/importertest"
)

// deflated compresses b with raw DEFLATE, as card payloads are.
func deflated(t testing.TB, b []byte) []byte {
	t.Helper()
	var z bytes.Buffer
	w, _ := flate.NewWriter(&z, flate.BestCompression)
	w.Write(b)
	w.Close()
	return z.Bytes()
}

// unsignedJWS makes a card with a zero signature (enough when no issuer
// keys are given) around an already deflated payload.
func unsignedJWS(zpayload []byte) string {
	hdr := b64.EncodeToString([]byte(`{"zip":"DEF","alg":"ES256","kid":"k"}`))
	return hdr + "." + b64.EncodeToString(zpayload) + "." + b64.EncodeToString(make([]byte, 64))
}

// paddedPayload is a valid card payload of about size bytes: a one-entry
// bundle and a long member phr does not read.
func paddedPayload(size int) []byte {
	head := `{"iss":"https://issuer.example","vc":{"credentialSubject":{"fhirBundle":{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Patient"}}]}}},"pad":"`
	return []byte(head + strings.Repeat(" ", max(0, size-len(head)-2)) + `"}`)
}

// toQR encodes a JWS as numeric QR text.
func toQR(jws string) string {
	var b strings.Builder
	for i := 0; i < len(jws); i++ {
		fmt.Fprintf(&b, "%02d", jws[i]-45)
	}
	return b.String()
}

// TestLimits proves each limit of the importer with a crafted input: the
// file fails with a *ParseError wrapping the sentinel, at the card's line
// or path, without any record.
func TestLimits(t *testing.T) {
	jws := strings.TrimSpace(string(importertest.ReadFile(t, images+"/example-00-d-jws.txt")))
	qr := "shc:/" + toQR(jws)
	hdr := strings.SplitN(jws, ".", 2)[0]
	sig := jws[strings.LastIndexByte(jws, '.')+1:]

	// Inputs that take seconds to build and read are left empty, and their
	// cases skipped, in -short mode.
	var bomb, forgedBomb, big string
	var many strings.Builder
	if !testing.Short() && !racedetect.Enabled {
		// A DEFLATE bomb: 64 MiB of spaces in a valid payload, about 64
		// KiB compressed.
		bomb = unsignedJWS(deflated(t, paddedPayload(64<<20)))
		// Signed by another key under the example issuer's kid.
		priv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		forgedBomb = sign(t, priv, "3Kfdg-XwP-7gXyywtUfUADwBumDOPKMQx-iELL11W9s", paddedPayload(64<<20))
		// Cards of 15 MiB each (inflated): four fit MaxTotalPayloadSize,
		// five do not.
		big = unsignedJWS(deflated(t, paddedPayload(15<<20)))
		for range 5 {
			many.WriteString(big + "\n")
		}
	}
	deepPayload := []byte(`{"iss":"https://i.example","vc":{"credentialSubject":{"fhirBundle":{"resourceType":"Bundle"}}},"x":` + strings.Repeat("[", MaxJSONDepth) + strings.Repeat("]", MaxJSONDepth) + `}`)
	cards := func(n int, s string) string { return strings.Repeat(s+"\n", n) }
	vcFile := func(n int) string {
		return `{"verifiableCredential":[` + strings.TrimSuffix(strings.Repeat(`"`+jws+`",`, n), ",") + `]}`
	}

	cases := []struct {
		name string
		in   string
		opts map[string]string
		is   error
		line int
		path string
		msg  string
		// maxAlloc bounds the bytes allocated; 0 means 8 times the input
		// plus 512 MiB (room for payloads at their limits).
		maxAlloc uint64
	}{
		{"file over MaxFileSize", strings.Repeat(" ", MaxFileSize) + jws, nil, ErrTooLarge, 0, "", "file over 16 MiB", 0},
		{"JWS over MaxJWSSize", hdr + "." + strings.Repeat("A", MaxJWSSize) + "." + sig, nil, ErrTooLarge, 1, "", "a JWS over 4 MiB", 0},
		{"JWS over MaxJWSSize in a file", `{"verifiableCredential":["` + hdr + "." + strings.Repeat("A", MaxJWSSize) + "." + sig + `"]}`, nil, ErrTooLarge, 0, "verifiableCredential[0]", "a JWS over 4 MiB", 0},
		{"JWS of four million parts", jws + "\n" + strings.Repeat(".", MaxJWSSize-1), nil, ErrMalformed, 2, "", "this has 4194304", 32 << 20},
		{"DEFLATE bomb", bomb, nil, ErrTooLarge, 1, "", "payload over 16 MiB", 0},
		{"DEFLATE bomb with a bad signature", forgedBomb, withKeys, ErrBadSignature, 1, "", "signature", 0},
		{"cards over MaxTotalPayloadSize", many.String(), nil, ErrTooLarge, 5, "", "more than 64 MiB", 0},
		{"more than MaxCards JWS lines", cards(MaxCards+1, jws), nil, ErrTooLarge, MaxCards + 1, "", "more than 1000 cards", 0},
		{"more than MaxCards QR lines", cards(MaxCards+1, qr), nil, ErrTooLarge, MaxCards + 1, "", "more than 1000 cards", 0},
		{"more than MaxCards in a file", vcFile(MaxCards + 1), nil, ErrTooLarge, 0, "verifiableCredential", "more than 1000 cards", 0},
		{"QR line over MaxQRDigits", "shc:/" + strings.Repeat("56", MaxQRDigits/2+1), nil, ErrTooLarge, 1, "", "over 7089 digits", 0},
		{"QR chunk over MaxQRDigits", "shc:/1/2/" + strings.Repeat("56", MaxQRDigits/2+1) + "\nshc:/2/2/56", nil, ErrTooLarge, 1, "", "over 7089 digits", 0},
		{"QR chunks over MaxQRChunks", "shc:/1/100/5676", nil, ErrQRChunks, 1, "", "N <= 99", 0},
		{"payload JSON too deep", unsignedJWS(deflated(t, deepPayload)), nil, ErrTooLarge, 1, "", "nested more than 136 levels", 0},
		{"unsigned payload file too deep", string(deepPayload), nil, ErrTooLarge, 0, "", "nested more than 136 levels", 0},
		{"card file JSON too deep", `{"verifiableCredential":["` + jws + `"],"x":` + strings.Repeat("[", MaxJSONDepth+1) + strings.Repeat("]", MaxJSONDepth+1) + `}`, nil, ErrTooLarge, 0, "", "nested more than 136 levels", 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.in == "" {
				t.Skip("slow: not in -short mode")
			}
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			s, err := run("card.txt", []byte(c.in), c.opts)
			runtime.ReadMemStats(&after)
			var pe *importers.ParseError
			if !errors.As(err, &pe) || !errors.Is(err, c.is) {
				t.Fatalf("err = %v, want a *ParseError wrapping %v", err, c.is)
			}
			if pe.File != "card.txt" || pe.Line != c.line || pe.Path != c.path || !strings.Contains(err.Error(), c.msg) {
				t.Errorf("error %q at line %d path %q, want line %d path %q and %q", err, pe.Line, pe.Path, c.line, c.path, c.msg)
			}
			if len(s.Records) != 0 {
				t.Errorf("%d records", len(s.Records))
			}
			// Nothing is inflated beyond its limit, nor split into a
			// million pieces: memory stays a small multiple of the input.
			limit := c.maxAlloc
			if limit == 0 {
				limit = uint64(8*len(c.in)) + 512<<20
			}
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > limit {
				t.Errorf("allocated %d MiB for a %d KiB input", alloc>>20, len(c.in)>>10)
			}
		})
	}
	// Just under the limits is fine: four 15 MiB cards, MaxCards cards,
	// a 99-chunk QR card.
	if big != "" {
		s, err := run("card.txt", []byte(strings.Repeat(big+"\n", 4)), nil)
		if err != nil || len(s.Records) != 4 {
			t.Errorf("four 15 MiB cards: %v, %d records", err, len(s.Records))
		}
	}
	s, err := run("card.txt", []byte(vcFile(MaxCards)), nil)
	if err != nil || len(s.Records) == 0 {
		t.Errorf("MaxCards cards: %v", err)
	}
	digits := toQR(jws)
	var split strings.Builder
	per := len(digits) / 2 / MaxQRChunks * 2 // even, the last chunk takes the rest
	for i := range MaxQRChunks {
		end := (i + 1) * per
		if i == MaxQRChunks-1 {
			end = len(digits)
		}
		fmt.Fprintf(&split, "shc:/%d/%d/%s\n", i+1, MaxQRChunks, digits[i*per:end])
	}
	if s, err := run("card.txt", []byte(split.String()), withKeys); err != nil || len(s.Records) == 0 || !s.Records[0].Provenance.Verified {
		t.Errorf("99 chunks: %v", err)
	}
}

// TestJWKSLimits: a key set over MaxJWKSSize or with more than MaxJWKSKeys
// keys is refused (ErrIssuerKeys and ErrTooLarge), from the option and from
// the file.
func TestJWKSLimits(t *testing.T) {
	jws := importertest.ReadFile(t, images+"/example-00-d-jws.txt")
	var set struct{ Keys []json.RawMessage }
	if err := json.Unmarshal(importertest.ReadFile(t, jwksPath), &set); err != nil {
		t.Fatal(err)
	}
	key := string(set.Keys[0])
	tooMany := `{"keys":[` + strings.TrimSuffix(strings.Repeat(key+",", MaxJWKSKeys+1), ",") + `]}`
	huge := `{"keys":[` + key + `],"pad":"` + strings.Repeat(" ", MaxJWKSSize) + `"}`
	path := t.TempDir() + "/jwks.json"
	if err := os.WriteFile(path, []byte(huge), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		opts map[string]string
		msg  string
	}{
		{"option over MaxJWKSSize", map[string]string{OptionIssuerJWKS: huge}, "over 1 MiB"},
		{"file over MaxJWKSSize", map[string]string{OptionIssuerKeys: path}, "over 1 MiB"},
		{"more than MaxJWKSKeys", map[string]string{OptionIssuerJWKS: tooMany}, "more than 1000 keys"},
		{"nested too deep", map[string]string{OptionIssuerJWKS: `{"keys":[` + key + `],"x":` + strings.Repeat("[", 20) + strings.Repeat("]", 20) + `}`}, "16 levels"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := run("d.txt", jws, c.opts)
			var pe *importers.ParseError
			if !errors.Is(err, ErrIssuerKeys) || !errors.Is(err, ErrTooLarge) || errors.As(err, &pe) || !strings.Contains(err.Error(), c.msg) {
				t.Errorf("err = %v", err)
			}
		})
	}
	// MaxJWKSKeys keys are read.
	if _, err := ParseJWKS([]byte(`{"keys":[` + strings.TrimSuffix(strings.Repeat(key+",", MaxJWKSKeys), ",") + `]}`)); err != nil {
		t.Errorf("MaxJWKSKeys keys: %v", err)
	}
}
