// Package qrimage imports photos and screenshots of QR codes (format
// "qr-image", PNG or JPEG): SMART Health Cards ("shc:/", a card in one
// code or split into numbered chunks "shc:/C/N/...") and SMART Health
// Links ("shlink:/", bare or behind a viewer URL).
//
// The package guarantees:
//   - every QR code of the image is read (a sheet with all the chunks of a
//     split card, side by side, is one image), in any rotation, dark on
//     light or light on dark; the image is scaled down to at most 4000
//     pixels a side before decoding;
//   - a card's text goes through the shc importer exactly as if it had been
//     typed into a file: the same records, provenance (Provenance.File is
//     the image's name, FileSHA256 the image's SHA-256) and signature
//     checks (Options "issuer-keys");
//   - a link is not fetched here: Import fails with a *LinkError holding
//     the link, which callers that can fetch (phr import, phrd) pass to
//     shlink.Receive;
//   - the chunks of a split card spread over several images are joined by
//     Gather, which callers run on the images of one import;
//   - input is bounded (MaxImageSize, MaxPixels, MaxCodes, and the shc
//     importer's limits for the text); an image without a QR code fails
//     with ErrNoCode, which wraps importers.ErrUnknownFormat (a photo in a
//     folder of records is not a failure); the decoder never panics.
//
// The decoder is github.com/makiuchi-d/gozxing, a port of ZXing.
package qrimage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/phr-project/phr/pkg/importers"
	"github.com/phr-project/phr/pkg/importers/shc"
	"github.com/phr-project/phr/pkg/share"
)

// ErrLink is what a *LinkError is.
var ErrLink = errors.New("the image holds a SMART Health Link")

// ErrNotHealthCode means a QR code holds neither a card nor a link.
var ErrNotHealthCode = errors.New("the QR code holds neither a SMART Health Card (shc:/) nor a SMART Health Link (shlink:/)")

// LinkError says that an image holds SMART Health Links, which must be
// fetched (shlink.Receive) rather than imported as a file. Its message
// never contains the links: they carry their key.
type LinkError struct {
	Links []string
}

func (e *LinkError) Error() string {
	return ErrLink.Error() + ": its files are fetched from the link's server"
}

// Is makes errors.Is(err, ErrLink) true.
func (e *LinkError) Is(target error) bool { return target == ErrLink }

// Importer reads QR code images.
type Importer struct{}

var _ importers.Importer = Importer{}

// New returns the QR image importer (format "qr-image").
func New() importers.Importer { return Importer{} }

// Name returns "qr-image".
func (Importer) Name() string { return "qr-image" }

// Detect reports whether head starts a PNG or JPEG file.
func (Importer) Detect(head []byte) bool { return Detect(head) }

// Import reads the image's QR codes and imports the cards they hold.
func (Importer) Import(ctx context.Context, in *importers.Input, sink importers.Sink) error {
	file := filepath.Base(in.Name)
	texts, err := Scan(in.R)
	if err != nil {
		return &importers.ParseError{ItemError: importers.ItemError{File: file, Err: err}}
	}
	cards, links, err := classify(texts)
	if err != nil {
		return &importers.ParseError{ItemError: importers.ItemError{File: file, Err: err}}
	}
	if len(links) > 0 {
		return &LinkError{Links: links}
	}
	return importCards(ctx, in, cards, sink)
}

// classify sorts an image's texts into card lines and links.
func classify(texts []string) (cards, links []string, err error) {
	for _, t := range texts {
		t = strings.TrimSpace(t)
		switch {
		case len(t) >= 5 && strings.EqualFold(t[:5], "shc:/"):
			cards = append(cards, t)
		case share.IsLink(t):
			links = append(links, t)
		default:
			return nil, nil, ErrNotHealthCode
		}
	}
	return cards, links, nil
}

// importCards imports card lines with the shc importer, as the file in.
func importCards(ctx context.Context, in *importers.Input, cards []string, sink importers.Sink) error {
	text := []byte(strings.Join(cards, "\n") + "\n")
	sub := &importers.Input{Name: in.Name, R: bytes.NewReader(text), ReaderAt: bytes.NewReader(text), Size: int64(len(text)), SHA256: in.SHA256, Options: in.Options}
	err := shc.New().Import(ctx, sub, sink)
	if errors.Is(err, shc.ErrQRChunks) {
		return fmt.Errorf("%w (import the images of all the card's QR codes together)", err)
	}
	return err
}
