package share

import (
	"encoding/json"
	"errors"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// specLink returns the example link and its decoded JSON from the shared
// SHL README.
func specLink(t *testing.T) (link string, want Payload) {
	t.Helper()
	readme := string(readShared(t, "shl/README.md"))
	link = regexp.MustCompile(`shlink:/[A-Za-z0-9_-]+`).FindString(readme)
	if link == "" {
		t.Fatal("no example link in shl/README.md")
	}
	m := regexp.MustCompile("decodes to `(\\{.*\\})`").FindStringSubmatch(readme)
	if m == nil {
		t.Fatal("no decoded JSON in shl/README.md")
	}
	if err := json.Unmarshal([]byte(m[1]), &want); err != nil {
		t.Fatalf("README JSON: %v", err)
	}
	return link, want
}

func TestDecodeSpecExample(t *testing.T) {
	link, want := specLink(t)
	if want.URL == "" || want.Key != specKey || want.Flag != "LP" || want.Label == "" {
		t.Fatalf("README JSON not as expected: %+v", want)
	}
	for _, tc := range []struct{ name, in string }{
		{"bare", link},
		{"viewer prefix", "https://viewer.example.org#" + link},
		{"viewer path", "https://phr.example.org/view#" + link},
		{"surrounding space", "  " + link + "\n"},
		{"upper-case scheme", "SHLINK:/" + strings.TrimPrefix(link, "shlink:/")},
		{"padded", link + "=="},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Decode(tc.in)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if got != want {
				t.Errorf("Decode = %+v, want %+v", got, want)
			}
			if !got.HasFlag(FlagLongTerm) || !got.HasFlag(FlagPasscode) || got.HasFlag(FlagDirect) {
				t.Errorf("HasFlag wrong for %q", got.Flag)
			}
		})
	}
}

func validPayload() Payload {
	return Payload{
		URL:   "https://phr.example.org/shl/Y9xwkUdtmN9wwoJoN3ffJIhX2UGvCL1JnlPVNL3kDWM",
		Key:   specKey,
		Exp:   1767225600,
		Flag:  "LP",
		Label: "Back-to-school immunizations",
		V:     1,
	}
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    Payload
	}{
		{"full", validPayload()},
		{"minimal", Payload{URL: "https://a.example/m", Key: EncodeKey(NewKey())}},
		{"direct", Payload{URL: "https://a.example/f", Key: specKey, Flag: "LU"}},
		{"U only", Payload{URL: "https://a.example/f", Key: specKey, Flag: "U"}},
		{"loopback http", Payload{URL: "http://127.0.0.1:8080/m", Key: specKey}},
		{"localhost http", Payload{URL: "http://localhost:8080/m", Key: specKey}},
		{"ipv6 loopback http", Payload{URL: "http://[::1]:8080/m", Key: specKey}},
		{"label 80 runes", Payload{URL: "https://a.example/m", Key: specKey, Label: strings.Repeat("é", 80)}},
		{"label html chars", Payload{URL: "https://a.example/m", Key: specKey, Label: "<Tom & Jerry>"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Encode(tc.p)
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			if !strings.HasPrefix(s, LinkPrefix) || strings.ContainsAny(s[len(LinkPrefix):], "=+/") {
				t.Errorf("Encode = %q: want shlink:/ and unpadded base64url", s)
			}
			got, err := Decode(s)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if got != tc.p {
				t.Errorf("round trip = %+v, want %+v", got, tc.p)
			}
		})
	}
}

func TestEncodeJSONShape(t *testing.T) {
	s, err := Encode(Payload{URL: "https://a.example/m", Key: specKey, Label: "a&b"})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := b64.DecodeString(strings.TrimPrefix(s, LinkPrefix))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"url":"https://a.example/m","key":"` + specKey + `","label":"a&b"}`
	if string(raw) != want {
		t.Errorf("payload JSON = %s, want %s", raw, want)
	}
}

func TestViewerLink(t *testing.T) {
	p := validPayload()
	bare, err := Encode(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ base, want string }{
		{"https://phr.example.org/view", "https://phr.example.org/view#" + bare},
		{"https://phr.example.org/view#", "https://phr.example.org/view#" + bare},
		{"http://127.0.0.1:8080/view", "http://127.0.0.1:8080/view#" + bare},
	} {
		got, err := ViewerLink(tc.base, p)
		if err != nil {
			t.Fatalf("ViewerLink(%q): %v", tc.base, err)
		}
		if got != tc.want {
			t.Errorf("ViewerLink(%q) = %q, want %q", tc.base, got, tc.want)
		}
		back, err := Decode(got)
		if err != nil || back != p {
			t.Errorf("Decode(ViewerLink) = %+v, %v", back, err)
		}
	}
	for _, base := range []string{"", "ftp://x.example/view", "http://phr.example.org/view", "https://x.example/a#b", "/view"} {
		if _, err := ViewerLink(base, p); !errors.Is(err, ErrInvalidLink) {
			t.Errorf("ViewerLink(%q) error = %v, want ErrInvalidLink", base, err)
		}
	}
}

func TestValidateRejects(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(*Payload)
		field  string
	}{
		{"no url", func(p *Payload) { p.URL = "" }, "url"},
		{"http url", func(p *Payload) { p.URL = "http://phr.example.org/m" }, "url"},
		{"http private ip", func(p *Payload) { p.URL = "http://10.0.0.1/m" }, "url"},
		{"port without host", func(p *Payload) { p.URL = "https://:8443/shl/m" }, "url"},
		{"ftp url", func(p *Payload) { p.URL = "ftp://phr.example.org/m" }, "url"},
		{"relative url", func(p *Payload) { p.URL = "/shl/abc" }, "url"},
		{"opaque url", func(p *Payload) { p.URL = "https:abc" }, "url"},
		{"bad url", func(p *Payload) { p.URL = "https://a.example/%zz" }, "url"},
		{"space in url", func(p *Payload) { p.URL = "https://a.example/a b" }, "url"},
		{"non-ASCII url", func(p *Payload) { p.URL = "https://a.example/é" }, "url"},
		{"invalid UTF-8 url", func(p *Payload) { p.URL = "https://\xff" }, "url"},
		{"url too long", func(p *Payload) { p.URL = "https://a.example/" + strings.Repeat("x", 111) }, "url"},
		{"no key", func(p *Payload) { p.Key = "" }, "key"},
		{"short key", func(p *Payload) { p.Key = specKey[:42] }, "key"},
		{"long key", func(p *Payload) { p.Key = specKey + "A" }, "key"},
		{"padded key", func(p *Payload) { p.Key = specKey[:42] + "=" }, "key"},
		{"std base64 key", func(p *Payload) { p.Key = "+" + specKey[1:] }, "key"},
		{"non-canonical key", func(p *Payload) { p.Key = specKey[:42] + "R" }, "key"},
		{"negative exp", func(p *Payload) { p.Exp = -1 }, "exp"},
		{"unknown flag", func(p *Payload) { p.Flag = "X" }, "flag"},
		{"lower-case flag", func(p *Payload) { p.Flag = "l" }, "flag"},
		{"repeated flag", func(p *Payload) { p.Flag = "LL" }, "flag"},
		{"flag order", func(p *Payload) { p.Flag = "PL" }, "flag"},
		{"U with P", func(p *Payload) { p.Flag = "PU" }, "flag"},
		{"L P U", func(p *Payload) { p.Flag = "LPU" }, "flag"},
		{"label too long", func(p *Payload) { p.Label = strings.Repeat("a", 81) }, "label"},
		{"label control", func(p *Payload) { p.Label = "a\x1b[2Jb" }, "label"},
		{"label bad utf8", func(p *Payload) { p.Label = "a\xffb" }, "label"},
		{"version 2", func(p *Payload) { p.V = 2 }, "v"},
		{"version -1", func(p *Payload) { p.V = -1 }, "v"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := validPayload()
			tc.mutate(&p)
			err := p.Validate()
			checkFieldErr(t, err, ErrInvalidLink, tc.field)
			assertNoSecret(t, err.Error(), p.Key, p.URL, p.Label)
			if _, err := Encode(p); !errors.Is(err, ErrInvalidLink) {
				t.Errorf("Encode error = %v, want ErrInvalidLink", err)
			}
		})
	}
}

func checkFieldErr(t *testing.T, err, sentinel error, field string) {
	t.Helper()
	if !errors.Is(err, sentinel) {
		t.Fatalf("error = %v, want %v", err, sentinel)
	}
	var fe *FieldError
	if !errors.As(err, &fe) {
		t.Fatalf("error %v is not a *FieldError", err)
	}
	if fe.Field != field {
		t.Errorf("FieldError.Field = %q, want %q (error: %v)", fe.Field, field, err)
	}
	if !strings.Contains(err.Error(), field) {
		t.Errorf("error %q does not name field %q", err, field)
	}
}

func encodeJSON(s string) string { return LinkPrefix + b64.EncodeToString([]byte(s)) }

func TestDecodeRejects(t *testing.T) {
	u := `"url":"https://a.example/m"`
	k := `"key":"` + specKey + `"`
	for _, tc := range []struct {
		name, in, field string
	}{
		{"empty", "", "link"},
		{"no prefix", "https://example.org/view", "link"},
		{"shc", "shc:/5676290952432060346029243740446031222959532654603460292540772804336028702864716745222809286133314564376531415906402203064504590856435503414245413640370636654171372412363803043756220467374075323239254334433260573601064529045436", "link"},
		{"empty payload", "shlink:/", "payload"},
		{"bad char", "shlink:/eyJ1cmwi!", "payload"},
		{"query after payload", "https://v.example#shlink:/eyJ1cmwi?x=1", "payload"},
		{"bad base64 length", "shlink:/e", "payload"},
		{"not json", encodeJSON("hello"), "payload"},
		{"json array", encodeJSON(`[1,2]`), "payload"},
		{"json null", encodeJSON(`null`), "payload"},
		{"trailing data", encodeJSON(`{` + u + `,` + k + `} x`), "payload"},
		{"url number", encodeJSON(`{"url":5,` + k + `}`), "url"},
		{"missing url", encodeJSON(`{` + k + `}`), "url"},
		{"upper-case property", encodeJSON(`{"URL":"https://a.example/m",` + k + `}`), "url"},
		{"missing key", encodeJSON(`{` + u + `}`), "key"},
		{"exp string", encodeJSON(`{` + u + `,` + k + `,"exp":"1"}`), "exp"},
		{"exp negative fraction", encodeJSON(`{` + u + `,` + k + `,"exp":-1.5}`), "exp"},
		{"exp true", encodeJSON(`{` + u + `,` + k + `,"exp":true}`), "exp"},
		{"exp huge", encodeJSON(`{` + u + `,` + k + `,"exp":1e400}`), "exp"},
		{"v zero", encodeJSON(`{` + u + `,` + k + `,"v":0}`), "v"},
		{"v fraction", encodeJSON(`{` + u + `,` + k + `,"v":1.5}`), "v"},
		{"flag U P with an unknown flag", encodeJSON(`{` + u + `,` + k + `,"flag":"PUX"}`), "flag"},
		{"v string", encodeJSON(`{` + u + `,` + k + `,"v":"1"}`), "v"},
		{"flag U P", encodeJSON(`{` + u + `,` + k + `,"flag":"PU"}`), "flag"},
		{"flag number", encodeJSON(`{` + u + `,` + k + `,"flag":1}`), "flag"},
		{"too long", "shlink:/" + strings.Repeat("A", MaxLinkLength), "link"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode(tc.in)
			checkFieldErr(t, err, ErrInvalidLink, tc.field)
			assertNoSecret(t, err.Error(), specKey, "https://a.example/m")
		})
	}
}

// TestDecodeAcceptsReceiverRules: links other implementations may make
// that the specification (HL7 SMART Health Cards and Links IG STU1,
// "Construct a SMART Health Link Payload" and its versioning note) asks
// receivers to accept: exp is a "number" (the logical model's type is
// decimal), so fractions and exponents are allowed; "SHL Receiver
// Application SHALL ignore flag values they don't recognize"; a v newer
// than supported still decodes so that the label can be shown (Retrieve
// refuses it before any request). No shared file shows these; each
// payload is the smallest that does.
func TestDecodeAcceptsReceiverRules(t *testing.T) {
	u := `"url":"https://a.example/m"`
	k := `"key":"` + specKey + `"`
	for _, tc := range []struct {
		name, json string
		exp        int64
		flag       string
		v          int
		has        []string // flags HasFlag must report
	}{
		{name: "exp fraction", json: `{` + u + `,` + k + `,"exp":1767225600.75}`, exp: 1767225600},
		{name: "exp exponent", json: `{` + u + `,` + k + `,"exp":1.7672256e9}`, exp: 1767225600},
		{name: "exp in milliseconds (the logical model's example)", json: `{` + u + `,` + k + `,"exp":1767225600000}`, exp: 1767225600000},
		{name: "unknown flag", json: `{` + u + `,` + k + `,"flag":"LX"}`, flag: "LX", has: []string{"L"}},
		{name: "unknown flags around known ones", json: `{` + u + `,` + k + `,"flag":"ALPZ"}`, flag: "ALPZ", has: []string{"L", "P"}},
		{name: "only unknown flags", json: `{` + u + `,` + k + `,"flag":"Q"}`, flag: "Q"},
		{name: "later version", json: `{` + u + `,` + k + `,"v":2,"label":"Later"}`, v: 2},
		{name: "version 1", json: `{` + u + `,` + k + `,"v":1}`, v: 1},
		{name: "no exp, no flag", json: `{` + u + `,` + k + `}`},
		{name: "exp 0 (the epoch: expired, not absent)", json: `{` + u + `,` + k + `,"exp":0}`, exp: 1},
		{name: "exp within the epoch's first second", json: `{` + u + `,` + k + `,"exp":0.5}`, exp: 1},
		{name: "exp null (absent)", json: `{` + u + `,` + k + `,"exp":null}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Decode(encodeJSON(tc.json))
			if err != nil {
				t.Fatal(err)
			}
			if p.Exp != tc.exp || p.Flag != tc.flag || p.V != tc.v {
				t.Errorf("exp %d flag %q v %d, want %d %q %d", p.Exp, p.Flag, p.V, tc.exp, tc.flag, tc.v)
			}
			for _, f := range []string{FlagLongTerm, FlagPasscode, FlagDirect} {
				if p.HasFlag(f) != slices.Contains(tc.has, f) {
					t.Errorf("HasFlag(%s) = %v", f, p.HasFlag(f))
				}
			}
			// phr itself never makes such links.
			if strings.ContainsAny(tc.flag, "AQXZ") || tc.v > 1 {
				if _, err := Encode(p); !errors.Is(err, ErrInvalidLink) {
					t.Errorf("Encode accepted what phr must not make: %v", err)
				}
			}
		})
	}
}

func TestDecodeIgnoresUnknownProperties(t *testing.T) {
	in := encodeJSON(`{"url":"https://a.example/m","key":"` + specKey + `","_x":{"y":[1]},"extension":1,"v":1,"exp":null}`)
	p, err := Decode(in)
	if err != nil {
		t.Fatal(err)
	}
	want := Payload{URL: "https://a.example/m", Key: specKey, V: 1}
	if p != want {
		t.Errorf("Decode = %+v, want %+v", p, want)
	}
}

func TestKeysAndIDs(t *testing.T) {
	k1, k2 := NewKey(), NewKey()
	if len(k1) != KeySize || string(k1) == string(k2) {
		t.Fatalf("NewKey: len %d, distinct %v", len(k1), string(k1) != string(k2))
	}
	if back, err := DecodeKey(EncodeKey(k1)); err != nil || string(back) != string(k1) {
		t.Errorf("DecodeKey(EncodeKey(k)) = %x, %v", back, err)
	}
	id := NewManifestID()
	if len(id) != 43 || !ValidManifestID(id) || id == NewManifestID() {
		t.Errorf("NewManifestID = %q", id)
	}
	for _, bad := range []string{"", "abc", id + "A", id[:42] + "=", id[:42] + "/", "+" + id[1:], id[:42] + "\n", specKey[:42] + "R"} {
		if ValidManifestID(bad) {
			t.Errorf("ValidManifestID(%q) = true", bad)
		}
	}
	if !ValidManifestID(specKey) {
		t.Errorf("ValidManifestID(%q) = false", specKey)
	}
}
