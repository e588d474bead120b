// Package importers turns the files providers hand patients into
// record.Records with provenance: FHIR R4 (bundles, single resources,
// NDJSON), C-CDA, SMART Health Cards, Apple Health exports and CSV.
//
// Every importer detects its format by content, never by file extension,
// and streams what it finds to a Sink. Importers do not write to the vault:
// the caller decides (deduplication, batching, --dry-run, --partial).
package importers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/phr-project/phr/pkg/record"
)

// Input is one file to import.
type Input struct {
	// Name is the file's name as the user gave it, for reports and errors.
	Name string
	// R reads the file's bytes from the start.
	R io.Reader
	// ReaderAt reads the same bytes at random offsets (zip archives); it
	// may be nil when the input is a stream.
	ReaderAt io.ReaderAt
	// Size is the file's size in bytes, or -1 if unknown.
	Size int64
	// SHA256 is the hex SHA-256 of the whole file, recorded in provenance.
	SHA256 string
	// Options are format-specific settings ("aggregate": "daily",
	// "issuer-keys": a JWKS path).
	Options map[string]string
}

// Sink receives what an importer finds.
type Sink interface {
	// Record receives one record. Importers fill Provenance (Method
	// imported, Importer, File, FileSHA256, System, OriginalID) and
	// Resource; the caller derives the rest. An error from Record stops the
	// import and is returned by Import.
	Record(r record.Record) error
	// Skip notes an item deliberately not imported, with why ("negated
	// allergy", "no known allergies", "unsupported entry").
	Skip(resourceType, reason string)
	// Fail notes an item that could not be read. Importers call it only for
	// failures that do not make the rest of the file unreadable; the caller
	// decides whether one failure fails the whole file (the default) or not
	// (--partial).
	Fail(err *ItemError)
}

// Importer reads one format.
type Importer interface {
	// Name is the format's name, as --format takes it: "fhir", "ndjson",
	// "ccda", "shc", "apple-health", "csv".
	Name() string
	// Detect reports whether head, the first bytes of a file (up to
	// DetectSize), look like this format.
	Detect(head []byte) bool
	// Import reads in and sends what it finds to sink. It returns a
	// *ParseError when the file cannot be read at all.
	Import(ctx context.Context, in *Input, sink Sink) error
}

// DetectSize is how many leading bytes Detect sees.
const DetectSize = 8192

// ItemError locates a failure inside a file: a line (NDJSON, CSV, XML), a
// byte offset, or a JSON path such as "entry[3].resource".
type ItemError struct {
	File   string
	Line   int
	Offset int64
	Path   string
	Err    error
}

func (e *ItemError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	} else if e.Offset > 0 {
		fmt.Fprintf(&b, ": byte %d", e.Offset)
	}
	if e.Path != "" {
		b.WriteString(": " + e.Path)
	}
	b.WriteString(": ")
	b.WriteString(e.Err.Error())
	return b.String()
}

func (e *ItemError) Unwrap() error { return e.Err }

// ParseError is an ItemError that makes the whole file unreadable.
type ParseError struct{ ItemError }

// ErrUnknownFormat is returned when no importer recognizes a file.
var ErrUnknownFormat = errors.New("unrecognized file format")

// Registry holds the importers, in detection order.
type Registry struct{ list []Importer }

// Register adds an importer. Importers registered earlier are tried first.
func (r *Registry) Register(i Importer) { r.list = append(r.list, i) }

// Lookup returns the importer with the given name.
func (r *Registry) Lookup(name string) (Importer, bool) {
	for _, i := range r.list {
		if i.Name() == name {
			return i, true
		}
	}
	return nil, false
}

// Names lists the registered formats.
func (r *Registry) Names() []string {
	out := make([]string, len(r.list))
	for i, imp := range r.list {
		out[i] = imp.Name()
	}
	return out
}

// Detect returns the first importer that recognizes head.
func (r *Registry) Detect(head []byte) (Importer, error) {
	for _, i := range r.list {
		if i.Detect(head) {
			return i, nil
		}
	}
	return nil, ErrUnknownFormat
}
