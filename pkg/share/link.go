package share

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/phr-project/phr/internal/jsondepth"
)

// Link flags (the payload's "flag" field is made of these letters, in
// alphabetical order).
const (
	// FlagLongTerm ("L"): the link is meant for long-term use and its
	// manifest may change over time.
	FlagLongTerm = "L"
	// FlagPasscode ("P"): the manifest request needs a passcode.
	FlagPasscode = "P"
	// FlagDirect ("U"): the url resolves with GET straight to a single
	// encrypted file, bypassing the manifest. Never combined with P.
	FlagDirect = "U"
)

// Limits from the specification.
const (
	// MaxURLLength is the maximum length of a payload's manifest url.
	MaxURLLength = 128
	// MaxLabelLength is the maximum length of a label, in characters.
	MaxLabelLength = 80
	// Version is the protocol version this package implements ("v").
	Version = 1
)

// LinkPrefix is the scheme and separator that start a bare link.
const LinkPrefix = "shlink:/"

// Limits on what Decode reads (docs/formats/limits.md lists them with the
// importers' limits).
const (
	// MaxLinkLength bounds the input Decode will look at, and so the
	// base64url payload and its JSON (at most three quarters of it): 16
	// KiB. A conforming payload is a few hundred bytes; the bound leaves
	// room for viewer prefixes and unknown extension properties while
	// refusing megabytes of garbage.
	MaxLinkLength = 16 << 10
	// MaxJSONDepth is the deepest nesting of JSON objects and arrays in a
	// link payload, a JWE header or a manifest: 32. Payloads and headers
	// are flat, a manifest's list a few levels deep.
	MaxJSONDepth = 32
)

// Payload is the JSON object carried in a SMART Health Link.
//
// Payload.Key is the whole secret of a share: whoever holds it can decrypt
// the files. Never log a Payload or an encoded link.
type Payload struct {
	// URL is the manifest URL (or, with flag U, the file URL). Required;
	// https, at most 128 characters.
	URL string `json:"url"`
	// Key is the 32-byte file key as 43 base64url characters. Required.
	Key string `json:"key"`
	// Exp is an optional expiry hint in seconds since the Unix epoch.
	Exp int64 `json:"exp,omitempty"`
	// Flag is an optional string of flags in alphabetical order, drawn
	// from FlagLongTerm, FlagPasscode and FlagDirect.
	Flag string `json:"flag,omitempty"`
	// Label is an optional description of at most 80 characters.
	Label string `json:"label,omitempty"`
	// V is the protocol version; 0 means absent, which stands for 1.
	V int `json:"v,omitempty"`
}

// HasFlag reports whether p's flag field contains the flag f (one of
// FlagLongTerm, FlagPasscode, FlagDirect).
func (p Payload) HasFlag(f string) bool {
	return len(f) == 1 && strings.Contains(p.Flag, f)
}

// KeyBytes returns the decoded 32-byte key.
func (p Payload) KeyBytes() ([]byte, error) { return DecodeKey(p.Key) }

// Validate checks p against the specification: url present, https (plain
// http only for loopback hosts, for tests), printable ASCII and at most 128
// characters; key
// 43 base64url characters encoding 32 bytes; exp not negative; flag made
// of L, P and U in alphabetical order without repeats and never U with P;
// label at most 80 characters of valid UTF-8 without control characters
// (so it is safe to print on a terminal); v absent or 1. These are the
// rules for links this package makes (Encode); Decode reads others' links
// as the specification asks receivers to (unknown flags ignored, a later
// v accepted for Retrieve to refuse).
//
// Errors are *FieldError values wrapping ErrInvalidLink.
func (p Payload) Validate() error { return p.validate(false) }

// validateReceived is Validate for a payload someone else made, as the
// specification asks receivers to read it: flag letters other than L, P
// and U are ignored ("SHL Receiver Application SHALL ignore flag values
// they don't recognize"), and a v above Version is accepted here, so that
// the label can be shown, and refused by Retrieve before any request
// (ErrUnsupportedVersion).
func (p Payload) validateReceived() error { return p.validate(true) }

func (p Payload) validate(received bool) error {
	if err := validateURL("url", p.URL); err != nil {
		return err
	}
	if len(p.URL) > MaxURLLength {
		return fieldErr(ErrInvalidLink, "url", "must be at most %d characters (got %d)", MaxURLLength, len(p.URL))
	}
	if _, err := DecodeKey(p.Key); err != nil {
		return err
	}
	if p.Exp < 0 {
		return fieldErr(ErrInvalidLink, "exp", "must not be negative")
	}
	if err := validateFlag(p.Flag, received); err != nil {
		return err
	}
	if !utf8.ValidString(p.Label) {
		return fieldErr(ErrInvalidLink, "label", "is not valid UTF-8")
	}
	if strings.IndexFunc(p.Label, unicode.IsControl) >= 0 {
		return fieldErr(ErrInvalidLink, "label", "must not contain control characters")
	}
	if n := utf8.RuneCountInString(p.Label); n > MaxLabelLength {
		return fieldErr(ErrInvalidLink, "label", "must be at most %d characters (got %d)", MaxLabelLength, n)
	}
	switch {
	case p.V < 0:
		return fieldErr(ErrInvalidLink, "v", "must not be negative")
	case p.V > Version && received:
		// A later version: Retrieve refuses it, Decode lets the label show.
	case p.V != 0 && p.V != Version:
		return fieldErr(ErrInvalidLink, "v", "must be %d (got %d)", Version, p.V)
	}
	return nil
}

// validateFlag checks a flag: L, P and U in alphabetical order, no
// repeats, never U with P. With received, other characters are skipped,
// as the specification asks of receivers (a later version may add flags
// that are safe to ignore); the rules apply to the flags this package
// knows.
func validateFlag(flag string, received bool) error {
	prev := byte(0)
	for i := 0; i < len(flag); i++ {
		c := flag[i]
		switch c {
		case 'L', 'P', 'U':
		default:
			if received {
				continue
			}
			if c >= 0x20 && c < 0x7f {
				return fieldErr(ErrInvalidLink, "flag", "has unknown flag %q (allowed: L, P, U)", string(c))
			}
			return fieldErr(ErrInvalidLink, "flag", "has a character that is not a flag (allowed: L, P, U)")
		}
		if c == prev {
			return fieldErr(ErrInvalidLink, "flag", "repeats flag %q", string(c))
		}
		if c < prev {
			return fieldErr(ErrInvalidLink, "flag", "must list flags in alphabetical order")
		}
		prev = c
	}
	if strings.Contains(flag, FlagDirect) && strings.Contains(flag, FlagPasscode) {
		return fieldErr(ErrInvalidLink, "flag", "must not combine U with P")
	}
	return nil
}

// validateURL checks that s is an absolute https URL with a host, or an
// http URL whose host is loopback (localhost, 127.0.0.0/8, ::1), written in
// printable ASCII.
func validateURL(field, s string) error {
	if s == "" {
		return fieldErr(ErrInvalidLink, field, "is required")
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return fieldErr(ErrInvalidLink, field, "must be printable ASCII without spaces (percent-encode other characters)")
		}
	}
	u, err := url.Parse(s)
	if err != nil {
		return fieldErr(ErrInvalidLink, field, "is not a valid URL")
	}
	if u.Hostname() == "" || u.Opaque != "" {
		return fieldErr(ErrInvalidLink, field, "must be an absolute URL with a host")
	}
	switch strings.ToLower(u.Scheme) {
	case "https":
		return nil
	case "http":
		if isLoopback(u.Hostname()) {
			return nil
		}
		return fieldErr(ErrInvalidLink, field, "must use https (http is allowed only for loopback hosts)")
	default:
		return fieldErr(ErrInvalidLink, field, "must use https")
	}
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Zone() == "" && a.IsLoopback()
}

// Encode validates p and returns the bare link: "shlink:/" followed by the
// minified JSON payload in unpadded base64url.
func Encode(p Payload) (string, error) {
	if err := p.Validate(); err != nil {
		return "", err
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // shorter links; the JSON is never embedded in HTML
	if err := enc.Encode(p); err != nil {
		return "", err // cannot happen for this struct
	}
	raw := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	return LinkPrefix + b64.EncodeToString(raw), nil
}

// ViewerLink returns the link prefixed with a viewer URL, in the form
// viewerBase + "#shlink:/...". The payload sits in the URL fragment, which
// browsers never send to the server, so the viewer's host does not see the
// key. viewerBase must be an https URL (http only for loopback hosts)
// without a fragment; a single trailing "#" is accepted and not doubled.
func ViewerLink(viewerBase string, p Payload) (string, error) {
	base := strings.TrimSuffix(viewerBase, "#")
	if strings.Contains(base, "#") {
		return "", fieldErr(ErrInvalidLink, "viewer", "must not contain a fragment")
	}
	if err := validateURL("viewer", base); err != nil {
		return "", err
	}
	link, err := Encode(p)
	if err != nil {
		return "", err
	}
	return base + "#" + link, nil
}

// Decode parses a SMART Health Link and validates its payload (see
// Payload.Validate). It accepts a bare "shlink:/..." string or any URL
// whose fragment or tail holds one, such as the viewer-prefixed form
// "https://viewer.example.org/view#shlink:/...". Surrounding white space is
// ignored, the "shlink:/" prefix is matched without regard to case, and
// everything after it must be the base64url payload. Unknown payload
// properties are ignored, as the specification requires.
//
// Errors wrap ErrInvalidLink; problems with one field are *FieldError
// values. They never contain the key, url or label.
func Decode(s string) (Payload, error) {
	s = strings.TrimSpace(s)
	if len(s) > MaxLinkLength {
		return Payload{}, fieldErr(ErrInvalidLink, "link", "is longer than %d bytes", MaxLinkLength)
	}
	i := lastIndexFoldASCII(s, LinkPrefix)
	if i < 0 {
		return Payload{}, fieldErr(ErrInvalidLink, "link", "has no %q prefix", LinkPrefix)
	}
	enc := strings.TrimRight(s[i+len(LinkPrefix):], "=") // tolerate padding
	if enc == "" {
		return Payload{}, fieldErr(ErrInvalidLink, "payload", "is empty")
	}
	for j := 0; j < len(enc); j++ {
		if !isBase64URLChar(enc[j]) {
			return Payload{}, fieldErr(ErrInvalidLink, "payload", "has a character that is not base64url at offset %d", j)
		}
	}
	raw, err := b64.DecodeString(enc)
	if err != nil {
		return Payload{}, fieldErr(ErrInvalidLink, "payload", "is not valid base64url")
	}
	p, err := parsePayload(raw)
	if err != nil {
		return Payload{}, err
	}
	if err := p.validateReceived(); err != nil {
		return Payload{}, err
	}
	return p, nil
}

// parsePayload reads the payload JSON with exact (case-sensitive) property
// names and distinguishes absent properties from zero values.
func parsePayload(raw []byte) (Payload, error) {
	if jsondepth.Exceeds(raw, MaxJSONDepth) {
		return Payload{}, fieldErr(ErrInvalidLink, "payload", "nests JSON more than %d levels", MaxJSONDepth)
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil || obj == nil {
		return Payload{}, fieldErr(ErrInvalidLink, "payload", "is not a JSON object")
	}
	var p Payload
	var err error
	if p.URL, err = jsonString(obj, "url"); err != nil {
		return Payload{}, err
	}
	if p.Key, err = jsonString(obj, "key"); err != nil {
		return Payload{}, err
	}
	if p.Flag, err = jsonString(obj, "flag"); err != nil {
		return Payload{}, err
	}
	if p.Label, err = jsonString(obj, "label"); err != nil {
		return Payload{}, err
	}
	if v, ok := obj["exp"]; ok && !isNull(v) {
		n, err := jsonSeconds(v)
		if err != nil {
			return Payload{}, fieldErr(ErrInvalidLink, "exp", "must be a number of seconds since the epoch")
		}
		// Exp 0 means "no exp" here: a link that says 0 (or a
		// fraction of the first second) expired in 1970, and the
		// viewer says so too.
		p.Exp = max(n, 1)
	}
	if v, ok := obj["v"]; ok && !isNull(v) {
		n, err := jsonInt(v)
		if err != nil || n < 1 || n > math.MaxInt32 {
			return Payload{}, fieldErr(ErrInvalidLink, "v", "must be a positive integer")
		}
		p.V = int(n)
	}
	return p, nil
}

// jsonSeconds reads exp: the specification's type is "number" (the
// logical model's, decimal), so a fraction or an exponent is allowed
// ("1767225600.5", "1.7672256e9"); it is cut to whole seconds. Numbers
// outside what 64 bits hold, and negative ones, are refused.
func jsonSeconds(v json.RawMessage) (int64, error) {
	if n, err := jsonInt(v); err == nil {
		return n, nil
	}
	t := bytes.TrimSpace(v)
	if len(t) == 0 || !(t[0] == '-' || t[0] >= '0' && t[0] <= '9') {
		return 0, errors.New("not a number")
	}
	var f float64
	if err := json.Unmarshal(t, &f); err != nil {
		return 0, err
	}
	if math.IsNaN(f) || f < 0 || f >= math.MaxInt64 {
		return 0, errors.New("out of range")
	}
	return int64(math.Floor(f)), nil
}

func isNull(v json.RawMessage) bool { return string(bytes.TrimSpace(v)) == "null" }

// jsonString returns obj[name] as a string; absent or null gives "".
func jsonString(obj map[string]json.RawMessage, name string) (string, error) {
	v, ok := obj[name]
	if !ok || isNull(v) {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		return "", fieldErr(ErrInvalidLink, name, "must be a string")
	}
	return s, nil
}

// jsonInt parses a JSON number that is an integer ("1", "-3"; not "1.5",
// "1e3" or a quoted string).
func jsonInt(v json.RawMessage) (int64, error) {
	return strconv.ParseInt(string(bytes.TrimSpace(v)), 10, 64)
}

func isBase64URLChar(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_'
}

// lastIndexFoldASCII is strings.LastIndex ignoring ASCII case. (Unicode case
// folding could change byte offsets; links are ASCII.)
func lastIndexFoldASCII(s, substr string) int {
	for i := len(s) - len(substr); i >= 0; i-- {
		if asciiEqualFold(s[i:i+len(substr)], substr) {
			return i
		}
	}
	return -1
}

func asciiEqualFold(a, b string) bool {
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
