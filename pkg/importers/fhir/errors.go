package fhir

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/phr-project/phr/pkg/record"
)

// Sentinel errors. The Err of every *importers.ItemError and
// *importers.ParseError this package reports wraps one of them; callers
// branch with errors.Is. Messages name positions and fields, never values
// from the file.
var (
	// ErrInvalidJSON means the bytes are not well-formed JSON.
	ErrInvalidJSON = errors.New("invalid JSON")
	// ErrTruncated means the file ends in the middle of a JSON value.
	ErrTruncated = errors.New("file ends in the middle of a JSON value (truncated?)")
	// ErrNotResource means a JSON value is not a FHIR resource: not an
	// object, or without a string resourceType. It is record.ErrNotResource.
	ErrNotResource = record.ErrNotResource
	// ErrWrongType means a member has the wrong JSON type ("entry" not an
	// array, "fullUrl" not a string).
	ErrWrongType = errors.New("wrong JSON type")
	// ErrTooLarge means a resource, line or file exceeds its size limit
	// (MaxResourceSize, MaxFileSize), or a bundle has more than MaxEntries
	// entries.
	ErrTooLarge = errors.New("too large")
	// ErrTooDeep means JSON nests deeper than phr reads (MaxJSONDepth
	// levels in a resource, MaxBundleNesting bundles inside bundles).
	ErrTooDeep = errors.New("nested too deeply")
	// ErrTrailingData means something follows the resource in a FHIR JSON
	// file; NDJSON files have one resource per line and are read by the
	// "ndjson" importer.
	ErrTrailingData = errors.New("data after the end of the resource (one resource per line is NDJSON: use the ndjson format)")
	// ErrTooManyFailures means so many NDJSON lines could not be read that
	// the file is taken not to be NDJSON at all.
	ErrTooManyFailures = errors.New("too many unreadable lines")
)

// Limits on what is read. docs/formats/limits.md lists them with the
// limits of the other importers.
const (
	// MaxResourceSize is the largest single resource (a bundle entry, an
	// NDJSON line, a file holding one resource) phr reads: 64 MiB. It also
	// bounds any single JSON token (a member name, a string). An NDJSON
	// line over it fails the file at once: reading stops there, so a
	// gigabyte line costs no more than 64 MiB of memory and reading.
	MaxResourceSize = 64 << 20
	// MaxFileSize is the largest FHIR JSON file (a Bundle) phr reads:
	// 512 MiB. A bundle's entries are held in memory until their
	// references are resolved, so this bounds memory too. NDJSON files are
	// streamed and have no overall limit.
	MaxFileSize = 512 << 20
	// MaxEntries is the most entries one Bundle may have: 2^20, far above
	// the largest patient-access exports (tens of thousands), while a
	// file of empty entries cannot make millions of them.
	MaxEntries = 1 << 20
	// MaxBundleNesting is how deep Bundles may nest inside Bundle entries.
	MaxBundleNesting = 8
	// MaxJSONDepth is the deepest nesting of JSON objects and arrays in
	// one resource (the resource's own object is level 1). FHIR resources
	// nest a dozen levels, Questionnaire items a few more; deeper input is
	// refused rather than walked.
	MaxJSONDepth = 128
	// maxFailures is how many unreadable NDJSON lines end the import of a
	// file that has had no readable line.
	maxFailures = 1000
)

// describe turns an error from encoding/json into one that wraps a
// sentinel and holds no bytes of the input, with the offset it names.
func describe(err error) (int64, error) {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF):
		return -1, ErrTruncated
	case errors.As(err, &se):
		return se.Offset, fmt.Errorf("%w: syntax error", ErrInvalidJSON)
	case errors.As(err, &te):
		field := te.Field
		if field == "" {
			field = "value"
		}
		return -1, fmt.Errorf("%w: %s is a JSON %s, want %s", ErrWrongType, field, te.Value, jsonKind(te.Type.Kind().String()))
	case errors.Is(err, ErrTooLarge), errors.Is(err, ErrTooDeep), errors.Is(err, ErrNotResource),
		errors.Is(err, ErrInvalidJSON), errors.Is(err, ErrWrongType), errors.Is(err, ErrTruncated):
		return -1, err
	}
	return -1, fmt.Errorf("%w: %v", ErrInvalidJSON, err)
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "string"
	case "slice", "array":
		return "array"
	case "struct", "map":
		return "object"
	}
	return goKind
}
