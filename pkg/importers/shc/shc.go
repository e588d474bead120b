package shc

import (
	"bytes"
	"compress/flate"
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"path/filepath"
	"strings"

	"github.com/phr-project/phr/internal/jsondepth"
	"github.com/phr-project/phr/pkg/importers"
	"github.com/phr-project/phr/pkg/importers/fhir"
	"github.com/phr-project/phr/pkg/record"
)

// Sentinel errors; the Err of every error this package reports wraps one.
var (
	// ErrNotCard means the input is not a SMART Health Card in any of the
	// forms this package reads.
	ErrNotCard = errors.New("not a SMART Health Card")
	// ErrMalformed means a JWS, its header or payload, or QR text is
	// malformed.
	ErrMalformed = errors.New("malformed SMART Health Card")
	// ErrUnsupported means a card uses an algorithm, compression or FHIR
	// version this package does not read (it reads ES256, DEF, FHIR 4.x).
	ErrUnsupported = errors.New("unsupported SMART Health Card")
	// ErrQRChunks means the chunks of a split QR card are incomplete or
	// inconsistent.
	ErrQRChunks = errors.New("QR chunks incomplete")
	// ErrUnknownKey means issuer keys were given but none has the card's
	// kid.
	ErrUnknownKey = errors.New("no issuer key with the card's kid")
	// ErrBadSignature means the card's signature does not verify with the
	// issuer key of its kid: the card was altered or not signed by it.
	ErrBadSignature = errors.New("signature does not verify")
	// ErrIssuerKeys means the issuer keys given in the options cannot be
	// read. It is returned as is, not as a *importers.ParseError: the
	// file is not at fault.
	ErrIssuerKeys = errors.New("shc: cannot read issuer keys")
	// ErrTooLarge means the file, a JWS, a payload, QR text, JSON nesting
	// or the number of cards is over its limit.
	ErrTooLarge = errors.New("too large")
)

// Limits on what is read. docs/formats/limits.md lists them with the
// limits of the other importers.
const (
	// MaxFileSize is the largest input: 16 MiB. The whole file is read
	// into memory.
	MaxFileSize = 16 << 20
	// MaxJWSSize is the longest compact JWS (one card): 4 MiB. A card
	// meant for a QR code is at most a few kilobytes; 4 MiB of DEFLATE
	// payload already inflates past MaxPayloadSize.
	MaxJWSSize = 4 << 20
	// MaxPayloadSize is the largest JWS payload, after inflating: 16 MiB.
	// Inflating stops there, so a DEFLATE bomb costs no more.
	MaxPayloadSize = 16 << 20
	// MaxTotalPayloadSize is the most payload bytes (after inflating) all
	// the cards of one file may hold together: 64 MiB. Every card is
	// decoded before any is imported, so this bounds memory.
	MaxTotalPayloadSize = 64 << 20
	// MaxCards is the most cards one file may hold.
	MaxCards = 1000
	// MaxQRChunks is the most chunks of a split QR card (shc:/C/N/...): N
	// is at most 99.
	MaxQRChunks = 99
	// MaxQRDigits is the most digits one shc:/ line may have: 7089, the
	// numeric capacity of the largest QR code (version 40). Text longer
	// than that cannot come from scanning one code.
	MaxQRDigits = 7089
	// MaxJSONDepth is the deepest JSON nesting in a card file or payload:
	// the FHIR importer's limit for one resource (fhir.MaxJSONDepth) plus
	// the levels of the payload, vc, credentialSubject, bundle and entry
	// around it.
	MaxJSONDepth = fhir.MaxJSONDepth + 8
	// MaxJWKSSize is the largest JWKS (issuer keys) read: 1 MiB.
	MaxJWKSSize = 1 << 20
	// MaxJWKSKeys is the most keys a JWKS may list: 1000. Issuers publish
	// a handful.
	MaxJWKSKeys = 1000
)

// Options keys.
const (
	// OptionIssuerKeys is the path of the issuer's JWKS file.
	OptionIssuerKeys = "issuer-keys"
	// OptionIssuerJWKS is the issuer's JWKS as JSON text.
	OptionIssuerJWKS = "issuer-jwks"
)

// Importer reads SMART Health Cards.
type Importer struct{}

var _ importers.Importer = Importer{}

// New returns the SMART Health Card importer (format "shc").
func New() importers.Importer { return Importer{} }

// Name returns "shc".
func (Importer) Name() string { return "shc" }

// Detect reports whether head starts "shc:/" text, a JSON object with a
// top-level verifiableCredential (or a JWS payload's vc), or a compact JWS
// whose header is a JSON object with an alg.
func (Importer) Detect(head []byte) bool { return detect(head) }

// jwsAt is a JWS and where it was found.
type jwsAt struct {
	jws  string
	line int
	path string
}

// card is a decoded card.
type card struct {
	at       jwsAt
	iss      string
	bundle   []byte
	size     int // bytes of the payload, inflated
	verified bool
}

// Import reads the cards in in, verifies them when issuer keys are given,
// and imports their bundles. Every card is decoded and verified before any
// record is sent to sink.
func (Importer) Import(ctx context.Context, in *importers.Input, sink importers.Sink) error {
	file := filepath.Base(in.Name)
	perr := func(line int, path string, err error) error {
		return &importers.ParseError{ItemError: importers.ItemError{File: file, Line: line, Path: path, Err: err}}
	}
	keys, err := issuerKeys(in.Options)
	if err != nil {
		return err
	}
	data, err := io.ReadAll(io.LimitReader(in.R, MaxFileSize+1))
	if err != nil {
		return perr(0, "", fmt.Errorf("read error: %w", err))
	}
	if len(data) > MaxFileSize {
		return perr(0, "", fmt.Errorf("%w: file over %d MiB", ErrTooLarge, MaxFileSize>>20))
	}
	text := strings.TrimSpace(strings.TrimPrefix(string(data), "\ufeff"))

	var cards []card
	total := 0 // payload bytes of the cards decoded so far
	add := func(c card, line int, path string) error {
		total += c.size
		if total > MaxTotalPayloadSize {
			return perr(line, path, fmt.Errorf("%w: the cards' payloads add up to more than %d MiB", ErrTooLarge, MaxTotalPayloadSize>>20))
		}
		cards = append(cards, c)
		return nil
	}
	switch {
	case text == "":
		return perr(0, "", fmt.Errorf("%w: empty file", ErrNotCard))
	case hasPrefixFold(text, "shc:/"):
		list, line, err := fromQR(text)
		if err != nil {
			return perr(line, "", err)
		}
		for _, at := range list {
			c, err := decodeJWS(at, keys)
			if err != nil {
				return perr(at.line, at.path, err)
			}
			if err := add(c, at.line, at.path); err != nil {
				return err
			}
		}
	case text[0] == '{':
		if jsondepth.Exceeds([]byte(text), MaxJSONDepth) {
			return perr(0, "", errTooDeep)
		}
		var f struct {
			VerifiableCredential []string        `json:"verifiableCredential"`
			VC                   json.RawMessage `json:"vc"`
		}
		if err := json.Unmarshal([]byte(text), &f); err != nil {
			return perr(0, "", jsonErr(err))
		}
		switch {
		case f.VerifiableCredential != nil:
			if len(f.VerifiableCredential) > MaxCards {
				return perr(0, "verifiableCredential", fmt.Errorf("%w: more than %d cards", ErrTooLarge, MaxCards))
			}
			for i, jws := range f.VerifiableCredential {
				at := jwsAt{jws: jws, path: fmt.Sprintf("verifiableCredential[%d]", i)}
				c, err := decodeJWS(at, keys)
				if err != nil {
					return perr(0, at.path, err)
				}
				if err := add(c, 0, at.path); err != nil {
					return err
				}
			}
		case f.VC != nil:
			// An unsigned payload: nothing to verify.
			c, err := decodePayload([]byte(text))
			if err != nil {
				return perr(0, "", err)
			}
			cards = append(cards, c)
		default:
			return perr(0, "", fmt.Errorf("%w: a JSON object without verifiableCredential", ErrNotCard))
		}
	default:
		line := 1
		for l := range strings.Lines(text) {
			if s := strings.TrimSpace(l); s != "" {
				if len(cards) >= MaxCards {
					return perr(line, "", fmt.Errorf("%w: more than %d cards", ErrTooLarge, MaxCards))
				}
				c, err := decodeJWS(jwsAt{jws: s, line: line}, keys)
				if err != nil {
					return perr(line, "", err)
				}
				if err := add(c, line, ""); err != nil {
					return err
				}
			}
			line++
		}
	}

	for _, c := range cards {
		prefix := "vc.credentialSubject.fhirBundle."
		if c.at.path != "" {
			prefix = c.at.path + "." + prefix
		}
		prov := record.Provenance{
			Method:     record.MethodImported,
			Importer:   "shc",
			File:       file,
			FileSHA256: in.SHA256,
			System:     c.iss,
			Verified:   c.verified,
		}
		err := fhir.ImportBundle(ctx, c.bundle, prov, prefixSink{sink, prefix, c.at.line})
		var pe *importers.ParseError
		if errors.As(err, &pe) {
			pe.Path = joinPath(prefix, pe.Path)
			pe.Line = c.at.line
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// prefixSink places item errors inside the card they come from.
type prefixSink struct {
	importers.Sink
	prefix string
	line   int
}

func (s prefixSink) Fail(e *importers.ItemError) {
	e.Path = joinPath(s.prefix, e.Path)
	if e.Line == 0 {
		e.Line = s.line
	}
	s.Sink.Fail(e)
}

// joinPath places path, relative to the bundle, under prefix (which ends
// with a dot).
func joinPath(prefix, path string) string {
	if path == "" {
		return strings.TrimSuffix(prefix, ".")
	}
	return prefix + path
}

var b64 = base64.RawURLEncoding

// decodeJWS decodes one compact JWS, verifies it when keys are given, and
// reads its payload.
func decodeJWS(at jwsAt, keys map[string]*ecdsa.PublicKey) (card, error) {
	if len(at.jws) > MaxJWSSize {
		return card{}, fmt.Errorf("%w: a JWS over %d MiB", ErrTooLarge, MaxJWSSize>>20)
	}
	// Count before splitting: a line of a million dots is not a million
	// parts to allocate.
	if n := strings.Count(at.jws, ".") + 1; n != 3 {
		return card{}, fmt.Errorf("%w: a compact JWS has 3 parts, this has %d", ErrMalformed, n)
	}
	parts := strings.SplitN(at.jws, ".", 3)
	hb, err := b64.DecodeString(parts[0])
	if err != nil {
		return card{}, fmt.Errorf("%w: JWS header is not base64url", ErrMalformed)
	}
	var hdr struct {
		Alg  string `json:"alg"`
		Zip  string `json:"zip"`
		Kid  string `json:"kid"`
		Crit []any  `json:"crit"`
	}
	if err := json.Unmarshal(hb, &hdr); err != nil {
		return card{}, fmt.Errorf("%w: JWS header is not a JSON object", ErrMalformed)
	}
	if hdr.Alg != "ES256" {
		return card{}, fmt.Errorf("%w: JWS alg is not ES256", ErrUnsupported)
	}
	if hdr.Zip != "DEF" && hdr.Zip != "" {
		return card{}, fmt.Errorf("%w: JWS zip is not DEF", ErrUnsupported)
	}
	if len(hdr.Crit) > 0 {
		return card{}, fmt.Errorf("%w: JWS has critical header parameters", ErrUnsupported)
	}
	sig, err := b64.DecodeString(parts[2])
	if err != nil || len(sig) != 64 {
		return card{}, fmt.Errorf("%w: JWS signature is not 64 bytes of base64url", ErrMalformed)
	}
	verified := false
	if keys != nil {
		pub := keys[hdr.Kid]
		if pub == nil {
			return card{}, ErrUnknownKey
		}
		h := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
		r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
		if !ecdsa.Verify(pub, h[:], r, s) {
			return card{}, ErrBadSignature
		}
		verified = true
	}
	pb, err := b64.DecodeString(parts[1])
	if err != nil {
		return card{}, fmt.Errorf("%w: JWS payload is not base64url", ErrMalformed)
	}
	if hdr.Zip == "DEF" {
		pb, err = inflate(pb)
		if err != nil {
			return card{}, err
		}
	}
	c, err := decodePayload(pb)
	if err != nil {
		return card{}, err
	}
	c.at, c.verified = at, verified
	return c, nil
}

// inflate decompresses raw DEFLATE (RFC 1951), at most MaxPayloadSize
// bytes.
func inflate(b []byte) ([]byte, error) {
	zr := flate.NewReader(bytes.NewReader(b))
	defer zr.Close()
	out, err := io.ReadAll(io.LimitReader(zr, MaxPayloadSize+1))
	if err != nil {
		return nil, fmt.Errorf("%w: JWS payload does not inflate", ErrMalformed)
	}
	if len(out) > MaxPayloadSize {
		return nil, fmt.Errorf("%w: payload over %d MiB", ErrTooLarge, MaxPayloadSize>>20)
	}
	return out, nil
}

// decodePayload reads a JWS payload {iss, nbf, vc}.
func decodePayload(b []byte) (card, error) {
	if len(b) > MaxPayloadSize {
		return card{}, fmt.Errorf("%w: payload over %d MiB", ErrTooLarge, MaxPayloadSize>>20)
	}
	if jsondepth.Exceeds(b, MaxJSONDepth) {
		return card{}, errTooDeep
	}
	var p struct {
		Iss string `json:"iss"`
		VC  struct {
			CredentialSubject struct {
				FHIRVersion string          `json:"fhirVersion"`
				FHIRBundle  json.RawMessage `json:"fhirBundle"`
			} `json:"credentialSubject"`
		} `json:"vc"`
	}
	if err := json.Unmarshal(b, &p); err != nil {
		return card{}, jsonErr(err)
	}
	if p.Iss == "" {
		return card{}, fmt.Errorf("%w: payload has no iss", ErrMalformed)
	}
	cs := p.VC.CredentialSubject
	if v := cs.FHIRVersion; v != "" && !strings.HasPrefix(v, "4.") {
		return card{}, fmt.Errorf("%w: credentialSubject.fhirVersion is not 4.x", ErrUnsupported)
	}
	if len(cs.FHIRBundle) == 0 || string(cs.FHIRBundle) == "null" {
		return card{}, fmt.Errorf("%w: payload has no vc.credentialSubject.fhirBundle", ErrMalformed)
	}
	return card{iss: p.Iss, bundle: cs.FHIRBundle, size: len(b)}, nil
}

var errTooDeep = fmt.Errorf("%w: JSON nested more than %d levels", ErrTooLarge, MaxJSONDepth)

// jsonErr describes a JSON error without quoting the input.
func jsonErr(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Errorf("%w: %s has the wrong JSON type", ErrMalformed, te.Field)
	}
	return fmt.Errorf("%w: invalid JSON", ErrMalformed)
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}
