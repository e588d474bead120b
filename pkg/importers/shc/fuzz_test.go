package shc

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/phr-project/phr/pkg/importers"
	"github.com/phr-project/phr/pkg/importers/importertest"
	"github.com/phr-project/phr/pkg/record"
)

func FuzzImportSHC(f *testing.F) {
	f.Add(importertest.ReadFile(f, images+"/example-00-d-jws.txt"))
	f.Add(importertest.ReadFile(f, images+"/example-03-e-file.smart-health-card"))
	f.Add(importertest.ReadFile(f, images+"/example-01-f-qr-code-numeric-value-0.txt"))
	f.Add(importertest.ReadFile(f, images+"/example-00-c-jws-payload-minified.json"))
	f.Add([]byte("shc:/1/2/5676290952\nshc:/2/2/4320603460\n"))
	keyed := map[string]string{OptionIssuerJWKS: string(importertest.ReadFile(f, jwksPath))}
	f.Fuzz(func(t *testing.T, data []byte) {
		New().Detect(data)
		for _, opts := range []map[string]string{nil, keyed} {
			s, err := run("fuzz.txt", data, opts)
			if err != nil {
				pe, ok := err.(*importers.ParseError)
				if !ok || pe.File != "fuzz.txt" {
					t.Fatalf("error %T: %v", err, err)
				}
				if strings.Contains(err.Error(), "Anyperson") {
					t.Fatalf("error quotes the card: %v", err)
				}
				continue
			}
			for _, r := range s.Records {
				if _, err := record.Parse(r.Resource); err != nil {
					t.Fatal(err)
				}
				if r.Provenance.System == "" || r.Provenance.Importer != "shc" {
					t.Fatalf("provenance %+v", r.Provenance)
				}
			}
		}
	})
}

// shcSentinels are the errors a card may fail with.
var shcSentinels = []error{ErrNotCard, ErrMalformed, ErrUnsupported, ErrQRChunks, ErrUnknownKey, ErrBadSignature, ErrTooLarge}

func isSentinel(err error) bool {
	for _, s := range shcSentinels {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

// FuzzQRChunks checks the numeric QR reader alone: no panic, errors wrap a
// sentinel and name a line, and every JWS it returns encodes back to the
// digits it came from.
func FuzzQRChunks(f *testing.F) {
	for _, ex := range []string{"00", "01", "02", "03"} {
		f.Add(string(qrText(f, ex)))
	}
	f.Add("shc:/1/2/5676\nshc:/2/2/2909\nshc:/5676\n")
	f.Add("SHC:/3/3/56\r\n\r\nshc:/1/3/56\nshc:/2/3/56")
	f.Fuzz(func(t *testing.T, text string) {
		out, line, err := fromQR(text)
		if err != nil {
			if !isSentinel(err) || line < 1 {
				t.Fatalf("error %v at line %d", err, line)
			}
			return
		}
		if len(out) > MaxCards+1 {
			t.Fatalf("%d cards", len(out))
		}
		for _, at := range out {
			if at.line < 1 || len(at.jws) > MaxJWSSize {
				t.Fatalf("card at line %d of %d bytes", at.line, len(at.jws))
			}
			var b strings.Builder
			for i := 0; i < len(at.jws); i++ {
				c := at.jws[i]
				if c < 45 || c > 'z' {
					t.Fatalf("character %d out of the QR range", c)
				}
				fmt.Fprintf(&b, "%02d", c-45)
			}
			back, err := numericToJWS(b.String())
			if err != nil || back != at.jws {
				t.Fatalf("re-encoding: %v", err)
			}
		}
	})
}

// FuzzDecodeJWS checks one compact JWS with and without issuer keys: no
// panic, errors wrap a sentinel, only a card checked against keys is
// verified, and a card that verifies decodes the same without keys.
func FuzzDecodeJWS(f *testing.F) {
	for _, ex := range []string{"00", "01", "02", "03"} {
		f.Add(strings.TrimSpace(string(importertest.ReadFile(f, images+"/example-"+ex+"-d-jws.txt"))))
	}
	f.Add(b64.EncodeToString([]byte(`{"alg":"ES256"}`)) + "." + b64.EncodeToString([]byte(`{"iss":"x","vc":{"credentialSubject":{"fhirBundle":{}}}}`)) + "." + b64.EncodeToString(make([]byte, 64)))
	f.Add("a.b.c")
	keys, err := ParseJWKS(importertest.ReadFile(f, jwksPath))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, jws string) {
		plain, errPlain := decodeJWS(jwsAt{jws: jws, line: 1}, nil)
		if errPlain != nil && !isSentinel(errPlain) {
			t.Fatalf("error %v wraps no sentinel", errPlain)
		}
		if errPlain == nil && (plain.verified || plain.iss == "" || len(plain.bundle) == 0 || plain.size > MaxPayloadSize) {
			t.Fatalf("card %+v", plain)
		}
		keyed, errKeyed := decodeJWS(jwsAt{jws: jws, line: 1}, keys)
		if errKeyed != nil {
			if !isSentinel(errKeyed) {
				t.Fatalf("error %v wraps no sentinel", errKeyed)
			}
			return
		}
		if !keyed.verified || errPlain != nil || keyed.iss != plain.iss || !bytes.Equal(keyed.bundle, plain.bundle) {
			t.Fatalf("verified %v, without keys %v", keyed.verified, errPlain)
		}
	})
}

// FuzzParseJWKS checks the key set reader: no panic, within its limits,
// every key filed under a kid.
func FuzzParseJWKS(f *testing.F) {
	f.Add(importertest.ReadFile(f, jwksPath))
	f.Add([]byte(`{"keys":[{"kty":"EC","crv":"P-256","x":"AAAA","y":"AAAA"},{"kty":"RSA"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		keys, err := ParseJWKS(data)
		if err != nil {
			if len(keys) != 0 {
				t.Fatal("keys with an error")
			}
			return
		}
		if len(keys) == 0 || len(keys) > MaxJWKSKeys {
			t.Fatalf("%d keys", len(keys))
		}
		for kid, k := range keys {
			if _, err := k.Bytes(); kid == "" || err != nil {
				t.Fatalf("key %q", kid)
			}
		}
	})
}
