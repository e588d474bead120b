package applehealth

import (
	"archive/zip"
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"path"
	"path/filepath"
	"strings"

	"github.com/phr-project/phr/pkg/importers"
	"github.com/phr-project/phr/pkg/record"
)

// Name is the importer's format name, as --format takes it.
const Name = "apple-health"

// System is the provenance system of every record this importer makes.
const System = "Apple Health"

// Limits on what one export may hold.
const (
	// MaxDepth is the deepest element nesting accepted.
	MaxDepth = 256
	// MaxTokenBytes bounds the bytes of one XML token (a start tag with its
	// attributes, a run of text, the DOCTYPE).
	MaxTokenBytes = 16 << 20
)

// ZipExportPath is where the Health app puts export.xml inside export.zip.
const ZipExportPath = "apple_health_export/export.xml"

// Errors callers may branch on; they arrive wrapped in an
// *importers.ParseError.
var (
	// ErrEntityDeclaration reports an <!ENTITY declaration in the DTD.
	ErrEntityDeclaration = errors.New("entity declarations are not allowed")
	// ErrNotSeekable reports a zip archive given as a stream.
	ErrNotSeekable = errors.New("a zip archive needs a seekable file (unzip it, or import the file itself rather than a pipe)")
	// ErrNoExport reports a zip archive without apple_health_export/export.xml.
	ErrNoExport = errors.New("zip archive has no " + ZipExportPath)
	// ErrTooLarge reports a token over MaxTokenBytes or nesting over MaxDepth.
	ErrTooLarge = errors.New("input exceeds a size limit")
)

// Options understood by Import (importers.Input.Options).
const (
	// OptionAggregate set to "daily" combines high-frequency samples into
	// one Observation per type, source and day. "raw" (the default) keeps
	// every sample.
	OptionAggregate = "aggregate"
)

type importer struct{}

// New returns the Apple Health importer.
func New() importers.Importer { return importer{} }

var _ importers.Importer = importer{}

func (importer) Name() string { return Name }

var zipMagic = []byte("PK\x03\x04")

// Detect claims an XML document whose root (or DOCTYPE) is HealthData, and a
// zip archive whose first entry lies under apple_health_export/.
func (importer) Detect(head []byte) bool {
	if len(head) > importers.DetectSize {
		head = head[:importers.DetectSize]
	}
	if bytes.HasPrefix(head, zipMagic) {
		return isAppleZip(head)
	}
	return isHealthDataXML(head)
}

// isAppleZip reads the first local file header: the name length is at
// offset 26 and the name starts at offset 30.
func isAppleZip(head []byte) bool {
	const prefix = "apple_health_export/"
	if len(head) < 30 {
		return false
	}
	n := int(binary.LittleEndian.Uint16(head[26:28]))
	if n < len(prefix) || 30+len(prefix) > len(head) {
		return false
	}
	return string(head[30:30+len(prefix)]) == prefix
}

// isHealthDataXML skips a BOM, white space, processing instructions and
// comments, then wants <!DOCTYPE HealthData or <HealthData.
func isHealthDataXML(head []byte) bool {
	b := bytes.TrimPrefix(head, []byte("\xef\xbb\xbf"))
	for {
		b = bytes.TrimLeft(b, " \t\r\n")
		switch {
		case bytes.HasPrefix(b, []byte("<?")):
			i := bytes.Index(b, []byte("?>"))
			if i < 0 {
				return false
			}
			b = b[i+2:]
		case bytes.HasPrefix(b, []byte("<!--")):
			i := bytes.Index(b[4:], []byte("-->"))
			if i < 0 {
				return false
			}
			b = b[4+i+3:]
		case bytes.HasPrefix(b, []byte("<!DOCTYPE")):
			return nameFollows(bytes.TrimLeft(b[len("<!DOCTYPE"):], " \t\r\n"), true)
		case bytes.HasPrefix(b, []byte("<")):
			return nameFollows(b[1:], false)
		default:
			return false
		}
	}
}

// nameFollows reports whether b starts with the name HealthData followed by
// a character that ends a name (or the end of the head, for a DOCTYPE).
func nameFollows(b []byte, doctype bool) bool {
	const name = "HealthData"
	if !bytes.HasPrefix(b, []byte(name)) {
		return false
	}
	if len(b) == len(name) {
		return doctype
	}
	switch b[len(name)] {
	case ' ', '\t', '\r', '\n', '>', '/', '[':
		return true
	}
	return false
}

// Import reads an export.xml or export.zip and sends one record per mapped
// item to sink.
func (importer) Import(ctx context.Context, in *importers.Input, sink importers.Sink) error {
	daily := false
	switch v := strings.ToLower(strings.TrimSpace(in.Options[OptionAggregate])); v {
	case "", "raw", "none":
	case "daily":
		daily = true
	default:
		return fmt.Errorf("%s: unknown %s option %q (use daily or raw)", Name, OptionAggregate, v)
	}
	prov := record.Provenance{
		Method:     record.MethodImported,
		Importer:   Name,
		File:       filepath.Base(in.Name),
		FileSHA256: in.SHA256,
		System:     System,
	}
	r := in.R
	if r == nil {
		if in.ReaderAt == nil || in.Size < 0 {
			return parseErr(in.Name, 0, 0, "", errors.New("no input"))
		}
		r = io.NewSectionReader(in.ReaderAt, 0, in.Size)
	}
	br := bufio.NewReaderSize(r, 64<<10)
	head, _ := br.Peek(len(zipMagic))
	if bytes.Equal(head, zipMagic) {
		if in.ReaderAt == nil || in.Size < 0 {
			return parseErr(in.Name, 0, 0, "", ErrNotSeekable)
		}
		return importZip(ctx, in, prov, daily, sink)
	}
	return parse(ctx, br, in.Name, prov, daily, sink)
}

func importZip(ctx context.Context, in *importers.Input, prov record.Provenance, daily bool, sink importers.Sink) error {
	zr, err := zip.NewReader(in.ReaderAt, in.Size)
	if err != nil {
		return parseErr(in.Name, 0, 0, "", fmt.Errorf("not a readable zip archive: %w", err))
	}
	var f *zip.File
	for _, zf := range zr.File {
		name := strings.TrimPrefix(path.Clean(strings.ReplaceAll(zf.Name, `\`, "/")), "/")
		if name == ZipExportPath {
			f = zf
			break
		}
		// Some tools re-zip the folder under another name: accept a single
		// */export.xml one level down as a fallback.
		if f == nil && path.Base(name) == "export.xml" && strings.Count(name, "/") == 1 {
			f = zf
		}
	}
	if f == nil {
		return parseErr(in.Name, 0, 0, "", ErrNoExport)
	}
	rc, err := f.Open()
	if err != nil {
		return parseErr(in.Name, 0, 0, f.Name, fmt.Errorf("cannot open the zip entry: %w", err))
	}
	defer rc.Close()
	return parse(ctx, rc, in.Name+"/"+f.Name, prov, daily, sink)
}

func parseErr(file string, line int, off int64, path string, err error) *importers.ParseError {
	return &importers.ParseError{ItemError: importers.ItemError{File: file, Line: line, Offset: off, Path: path, Err: err}}
}
