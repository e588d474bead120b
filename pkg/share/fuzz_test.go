package share

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
)

var linkSentinels = []error{ErrInvalidLink}

var jweSentinels = []error{ErrMalformedJWE, ErrUnsupportedJWE, ErrDecrypt, ErrTooLarge}

func isOneOf(err error, sentinels []error) bool {
	for _, s := range sentinels {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

// FuzzDecodeLink checks that Decode never panics, that every error is an
// ErrInvalidLink, that whatever Decode accepts follows the receiver's
// rules (never U with P), and that what is valid by phr's own rules
// survives Encode/Decode unchanged, with Encode's output a fixed point.
func FuzzDecodeLink(f *testing.F) {
	p := validPayload()
	bare, _ := Encode(p)
	viewer, _ := ViewerLink("https://phr.example.org/view", p)
	for _, s := range []string{
		"shlink:/eyJ1cmwiOiJodHRwczovL2Voci5leGFtcGxlLm9yZy9xci9ZOXh3a1VkdG1OOXd3b0pvTjNmZkpJaFgyVUd2Q0wxSm5sUFZOTDNrRFdNL20iLCJmbGFnIjoiTFAiLCJrZXkiOiJyeFRnWWxPYUtKUEZ0Y0VkMHFjY2VOOHdFVTRwOTRTcUF3SVdRZTZ1WDdRIiwibGFiZWwiOiJCYWNrLXRvLXNjaG9vbCBpbW11bml6YXRpb25zIGZvciBPbGl2ZXIgQnJvd24ifQ",
		bare, viewer, "", "shlink:/", "shlink:/e30", "SHLINK:/x#shlink:/",
		encodeJSON(`{"url":"https://a.example/m","key":"` + specKey + `","v":1,"exp":0,"flag":"U"}`),
		encodeJSON(`{"url":"http://[::1]/m","key":"` + specKey + `","label":"\u00e9\u0000"}`),
		encodeJSON(`{"url":"https://a.example/m","key":"` + specKey + `","exp":1.7672256e9,"flag":"LX","v":2}`),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := Decode(s)
		if err != nil {
			if !isOneOf(err, linkSentinels) {
				t.Fatalf("Decode error %v is not ErrInvalidLink", err)
			}
			return
		}
		if err := p.validateReceived(); err != nil {
			t.Fatalf("Decode accepted an invalid payload: %v", err)
		}
		if p.HasFlag(FlagDirect) && p.HasFlag(FlagPasscode) {
			t.Fatal("Decode accepted U with P")
		}
		if p.Validate() != nil {
			// Another implementation's link (an unknown flag, a later
			// v): readable, but not one phr makes.
			if _, err := Encode(p); err == nil {
				t.Fatal("Encode made a link Validate refuses")
			}
			return
		}
		enc, err := Encode(p)
		if err != nil {
			t.Fatalf("Encode of decoded payload: %v", err)
		}
		p2, err := Decode(enc)
		if err != nil || p2 != p {
			t.Fatalf("round trip: %+v, %v; want %+v", p2, err, p)
		}
		if enc2, _ := Encode(p2); enc2 != enc {
			t.Fatalf("Encode is not stable: %q then %q", enc, enc2)
		}
	})
}

// FuzzEncodeLink checks the other direction: any payload Encode accepts
// decodes to itself.
func FuzzEncodeLink(f *testing.F) {
	p := validPayload()
	f.Add(p.URL, p.Key, p.Exp, p.Flag, p.Label, p.V)
	f.Add("http://localhost/x", specKey, int64(0), "U", "", 0)
	f.Fuzz(func(t *testing.T, url, key string, exp int64, flag, label string, v int) {
		p := Payload{URL: url, Key: key, Exp: exp, Flag: flag, Label: label, V: v}
		enc, err := Encode(p)
		if err != nil {
			if !errors.Is(err, ErrInvalidLink) {
				t.Fatalf("Encode error %v is not ErrInvalidLink", err)
			}
			return
		}
		got, err := Decode(enc)
		if err != nil || got != p {
			t.Fatalf("Decode(Encode(p)) = %+v, %v; want %+v", got, err, p)
		}
	})
}

// FuzzDecryptFile checks that DecryptFile never panics and fails only with
// the documented errors, and that EncryptFile/DecryptFile round-trip any
// plaintext with and without compression.
func FuzzDecryptFile(f *testing.F) {
	key := mustKey(f, specKey)
	spec := strings.TrimSpace(string(readShared(f, "shl/spec-example-jwe.txt")))
	zipped, _ := EncryptFile(key, ContentTypeFHIR, []byte(`{"resourceType":"Bundle","entry":[]}`), true)
	f.Add(spec, []byte("hello"), false)
	f.Add(zipped, []byte{}, true)
	f.Add(jweWithHeader(`{"alg":"dir","enc":"A256GCM","zip":"DEF"}`), []byte{0}, true)
	f.Add("....", []byte(nil), false)
	f.Add("eyJhbGciOiJkaXIiLCJlbmMiOiJBMjU2R0NNIn0....", bytes.Repeat([]byte("a"), 1000), true)
	f.Fuzz(func(t *testing.T, jwe string, plaintext []byte, compress bool) {
		_, pt, err := DecryptFile(key, jwe, WithMaxPlaintext(1<<20))
		if err != nil && !isOneOf(err, jweSentinels) {
			t.Fatalf("DecryptFile error %v is not a documented sentinel", err)
		}
		if err == nil && len(pt) > 1<<20 {
			t.Fatalf("DecryptFile returned %d bytes over the limit", len(pt))
		}

		enc, err := EncryptFile(key, ContentTypeFHIR, plaintext, compress)
		if err != nil {
			t.Fatalf("EncryptFile: %v", err)
		}
		cty, got, err := DecryptFile(key, enc)
		if err != nil || cty != ContentTypeFHIR || !bytes.Equal(got, plaintext) {
			t.Fatalf("round trip: cty %q, %d bytes (want %d), %v", cty, len(got), len(plaintext), err)
		}
	})
}

// FuzzParseManifest checks the manifest reader: it never panics, every
// error is an ErrInvalidManifest *FieldError, and whatever it accepts is
// valid, within the limits, and survives json.Marshal/ParseManifest
// unchanged.
func FuzzParseManifest(f *testing.F) {
	spec := strings.TrimSpace(string(readShared(f, "shl/spec-example-jwe.txt")))
	ips := strings.TrimSpace(string(readShared(f, "shl/ips-enc.txt")))
	for _, m := range []Manifest{
		{Files: []ManifestFile{{ContentType: ContentTypeSHC, Embedded: spec}}},
		{Files: []ManifestFile{{ContentType: ContentTypeFHIR + ";fhirVersion=4.0.1", Embedded: ips, LastUpdated: "2024-01-01T00:00:00Z", Status: StatusCanChange, FHIRVersion: "4.0.1"}, {ContentType: ContentTypeSMARTAPIAccess, Location: "https://h.example/shl/x/f/y", Status: StatusNoLongerValid}}},
	} {
		b, err := json.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"files":[{"contentType":"application/fhir+json","location":"http://localhost/f"}],"list":{"resourceType":"List","entry":[{"item":{"reference":"DocumentReference/1"}}]},"x":null}`))
	f.Add([]byte(`{"files":[{"contentType":"text/plain","embedded":"a"}],"FILES":[]}`))
	f.Add([]byte(`{"status":"x","files":[{"contentType":"application/smart-health-card","embedded":"a","status":"finalized","fhirVersion":"4.0.1"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseManifest(data)
		if err != nil {
			var fe *FieldError
			if !errors.Is(err, ErrInvalidManifest) || !errors.As(err, &fe) {
				t.Fatalf("error %v is not an ErrInvalidManifest *FieldError", err)
			}
			return
		}
		if err := m.Validate(); err != nil || len(m.Files) > MaxManifestFiles {
			t.Fatalf("accepted an invalid manifest: %v", err)
		}
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		again, err := ParseManifest(b)
		if err != nil || !slices.Equal(again.Files, m.Files) {
			t.Fatalf("round trip: %+v, %v; want %+v", again, err, m)
		}
		var l1, l2 any
		if (m.List == nil) != (again.List == nil) || m.List != nil && (json.Unmarshal(m.List, &l1) != nil || json.Unmarshal(again.List, &l2) != nil || !reflect.DeepEqual(l1, l2)) {
			t.Fatalf("list changed: %s, then %s", m.List, again.List)
		}
	})
}

// FuzzParsePasscodeHash checks the reader of stored passcode hashes: it
// never panics, and what it accepts is within the cost bounds that keep
// CheckPasscode from allocating gigabytes.
func FuzzParsePasscodeHash(f *testing.F) {
	f.Add("$scrypt$ln=15,r=8,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g")
	f.Add("$scrypt$ln=99,r=8,p=1$$")
	f.Add("$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA")
	f.Fuzz(func(t *testing.T, s string) {
		ph, ok := parsePasscodeHash(s)
		if !ok {
			return
		}
		if ph.logN < 1 || ph.logN > maxLogN || ph.r < 1 || ph.r > maxR || ph.p < 1 || ph.p > maxP ||
			len(ph.salt) < 8 || len(ph.salt) > 64 || len(ph.hash) < 16 || len(ph.hash) > 64 {
			t.Fatalf("accepted out-of-bounds hash %+v", ph)
		}
	})
}
