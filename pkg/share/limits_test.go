package share

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// TestLinkLimits: a link over MaxLinkLength, and a payload nesting JSON
// deeper than MaxJSONDepth, are refused naming the field; a link of exactly
// MaxLinkLength bytes is read.
func TestLinkLimits(t *testing.T) {
	link, err := Encode(validPayload())
	if err != nil {
		t.Fatal(err)
	}
	pad := strings.Repeat("a", MaxLinkLength-len("https://v.example/")-len("#")-len(link))
	atLimit := "https://v.example/" + pad + "#" + link
	if len(atLimit) != MaxLinkLength {
		t.Fatalf("test link is %d bytes", len(atLimit))
	}
	if _, err := Decode(atLimit); err != nil {
		t.Errorf("link of MaxLinkLength bytes: %v", err)
	}
	_, err = Decode("https://v.example/a" + pad + "#" + link)
	checkFieldErr(t, err, ErrInvalidLink, "link")

	deep := fmt.Sprintf(`{"url":"https://a.example/m","key":%q,"x":%s}`, specKey, strings.Repeat("[", MaxJSONDepth)+strings.Repeat("]", MaxJSONDepth))
	_, err = Decode(encodeJSON(deep))
	checkFieldErr(t, err, ErrInvalidLink, "payload")
	if !strings.Contains(err.Error(), "more than 32 levels") {
		t.Errorf("error %q does not name the limit", err)
	}
	// One level less is an unknown extension property, ignored.
	ok := fmt.Sprintf(`{"url":"https://a.example/m","key":%q,"x":%s}`, specKey, strings.Repeat("[", MaxJSONDepth-1)+strings.Repeat("]", MaxJSONDepth-1))
	if _, err := Decode(encodeJSON(ok)); err != nil {
		t.Errorf("payload at the depth limit: %v", err)
	}
}

// TestJWELimits: ciphertexts that cannot decrypt to a plaintext within the
// limit are refused before they are decoded or decrypted (ErrTooLarge, not
// ErrDecrypt, for a garbage tag); a DEFLATE bomb stops at the limit; a
// header nesting JSON too deeply is malformed.
func TestJWELimits(t *testing.T) {
	key := NewKey()
	garbage := func(header string, ctLen int) string {
		h := b64.EncodeToString([]byte(header))
		return h + ".." + b64.EncodeToString(make([]byte, 12)) + "." + b64.EncodeToString(make([]byte, ctLen)) + "." + b64.EncodeToString(make([]byte, 16))
	}
	plainHdr := `{"alg":"dir","enc":"A256GCM"}`
	zipHdr := `{"alg":"dir","enc":"A256GCM","zip":"DEF"}`
	const max = 1 << 16
	for _, c := range []struct {
		name string
		jwe  string
		is   error
	}{
		{"ciphertext over the limit", garbage(plainHdr, max+1), ErrTooLarge},
		{"ciphertext at the limit (garbage tag)", garbage(plainHdr, max), ErrDecrypt},
		{"compressed ciphertext over the limit and slack", garbage(zipHdr, max+max/1024+1025), ErrTooLarge},
		{"compressed ciphertext within the slack (garbage tag)", garbage(zipHdr, max+max/1024+1024), ErrDecrypt},
		{"DEFLATE bomb", sealRaw(t, key, deflateBomb(t, 4*max)), ErrTooLarge},
		{"header too deep", garbage(`{"alg":"dir","enc":"A256GCM","x":`+strings.Repeat("[", MaxJSONDepth)+strings.Repeat("]", MaxJSONDepth)+`}`, 10), ErrMalformedJWE},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := DecryptFile(key, c.jwe, WithMaxPlaintext(max))
			if !errors.Is(err, c.is) {
				t.Errorf("err = %v, want %v", err, c.is)
			}
		})
	}
	// An honest file of incompressible bytes at the limit, compressed,
	// stays within the slack.
	plain := make([]byte, max)
	rand.Read(plain)
	jwe, err := EncryptFile(key, ContentTypeFHIR, plain, true)
	if err != nil {
		t.Fatal(err)
	}
	if ct := strings.Split(jwe, ".")[3]; b64.DecodedLen(len(ct)) <= max {
		t.Fatalf("compressed random bytes are %d bytes: the slack is not exercised", b64.DecodedLen(len(ct)))
	}
	if _, pt, err := DecryptFile(key, jwe, WithMaxPlaintext(max)); err != nil || len(pt) != max {
		t.Errorf("incompressible file at the limit: %d bytes, %v", len(pt), err)
	}
}

// TestManifestLimits proves ParseManifest's limits and rules with crafted
// manifests.
func TestManifestLimits(t *testing.T) {
	file := `{"contentType":"application/fhir+json","location":"https://h.example/f/1"}`
	files := func(n int) string { return strings.TrimSuffix(strings.Repeat(file+",", n), ",") }
	for _, c := range []struct {
		name  string
		in    string
		field string
		msg   string
	}{
		{"over MaxManifestSize", `{"files":[` + file + `]}` + strings.Repeat(" ", MaxManifestSize), "manifest", "over 64 MiB"},
		{"more than MaxManifestFiles", `{"files":[` + files(MaxManifestFiles+1) + `]}`, "files", "more than 1000 entries"},
		{"too deep", `{"files":[` + file + `],"list":{"x":` + strings.Repeat("[", MaxJSONDepth) + strings.Repeat("]", MaxJSONDepth) + `}}`, "manifest", "more than 32 levels"},
		{"not an object", `[]`, "manifest", "not a JSON object"},
		{"no files", `{"status":"finalized"}`, "files", "required"},
		{"files not an array", `{"files":{}}`, "files", "array"},
		{"file not an object", `{"files":[` + file + `,"x"]}`, "files[1]", "object"},
		{"field of the wrong type", `{"files":[` + file + `,{"contentType":5}]}`, "files[1].contentType", "string"},
		{"names are case-sensitive", `{"files":[{"ContentType":"application/fhir+json","location":"https://h.example/f"}]}`, "files[0].contentType", "required"},
		{"list not an object", `{"files":[` + file + `],"list":[]}`, "list", "object"},
		{"bad file status", `{"files":[{"contentType":"application/fhir+json","location":"https://h.example/f/1","status":"final"}]}`, "files[0].status", "must be"},
		{"fhirVersion not a string", `{"files":[{"contentType":"application/fhir+json","location":"https://h.example/f/1","fhirVersion":4}]}`, "files[0].fhirVersion", "string"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseManifest([]byte(c.in))
			checkFieldErr(t, err, ErrInvalidManifest, c.field)
			if !strings.Contains(err.Error(), c.msg) {
				t.Errorf("error %q, want %q", err, c.msg)
			}
		})
	}
	// At the limits, and a manifest as phrd writes it. A top-level
	// "status" (not in STU1; phr's hosts sent one before) is ignored,
	// whatever its value.
	m, err := ParseManifest([]byte(`{"files":[` + files(MaxManifestFiles) + `],"unknown":{"a":1},"status":"x"}`))
	if err != nil || len(m.Files) != MaxManifestFiles {
		t.Fatalf("MaxManifestFiles files: %v", err)
	}
	want := Manifest{List: json.RawMessage(`{"resourceType":"List"}`), Files: []ManifestFile{
		{ContentType: ContentTypeSHC, Embedded: "a.b.c.d.e", LastUpdated: "2024-01-01T00:00:00Z", Status: StatusCanChange},
		{ContentType: ContentTypeFHIR, Location: "https://h.example/f/2", Status: StatusCanChange, FHIRVersion: "4.0.1"},
	}}
	b, _ := json.Marshal(want)
	got, err := ParseManifest(b)
	if err != nil || string(got.List) != string(want.List) || len(got.Files) != 2 || got.Files[0] != want.Files[0] || got.Files[1] != want.Files[1] {
		t.Errorf("round trip: %+v, %v", got, err)
	}
}

// TestPasscodeLimits: a passcode over MaxPasscodeLength is neither hashed
// nor checked; one of exactly that length works.
func TestPasscodeLimits(t *testing.T) {
	lowCost(t)
	long := strings.Repeat("p", MaxPasscodeLength)
	h, err := HashPasscode(long)
	if err != nil || !CheckPasscode(h, long) {
		t.Fatalf("passcode of MaxPasscodeLength bytes: %v", err)
	}
	_, err = HashPasscode(long + "p")
	checkFieldErr(t, err, ErrInvalidPasscode, "passcode")
	if strings.Contains(err.Error(), "ppp") {
		t.Errorf("error %q quotes the passcode", err)
	}
	_, err = HashPasscode("")
	checkFieldErr(t, err, ErrInvalidPasscode, "passcode")
	// A stored hash of a longer passcode (made before the limit) never
	// matches: the passcode is refused before scrypt runs.
	if CheckPasscode(h, long+"p") {
		t.Error("CheckPasscode accepted a passcode over the limit")
	}
}
