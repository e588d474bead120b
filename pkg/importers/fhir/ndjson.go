package fhir

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/phr-project/phr/pkg/importers"
)

// NDJSONImporter is the FHIR NDJSON importer (bulk data $export output).
type NDJSONImporter struct{}

var _ importers.Importer = NDJSONImporter{}

// NewNDJSON returns the NDJSON importer (format "ndjson"): one FHIR
// resource per line, of one type or mixed; blank lines are ignored.
func NewNDJSON() importers.Importer { return NDJSONImporter{} }

// Name returns "ndjson".
func (NDJSONImporter) Name() string { return "ndjson" }

// Detect reports whether head starts line-delimited JSON: a first line that
// is a whole JSON object with a resourceType (or a bulk export log entry)
// followed by a line starting with "{", or one such line ending in a
// newline. A pretty-printed resource is left to the "fhir" importer.
func (NDJSONImporter) Detect(head []byte) bool { return detectNDJSON(head) }

type lineResult int

const (
	lineBlank  lineResult = iota
	lineRead              // imported or skipped on purpose
	lineFailed            // reported to sink.Fail
)

// Import reads in line by line. A line that cannot be read goes to
// sink.Fail with its line number; bulk export log lines are skipped with a
// reason. Import returns a *importers.ParseError when the file cannot be
// read at all: an I/O error, a line over MaxResourceSize (reading stops
// there), or 1000 unreadable lines before the first readable one.
func (NDJSONImporter) Import(ctx context.Context, in *importers.Input, sink importers.Sink) error {
	p := newProcessor(ctx, in, sink, "ndjson")
	br := bufio.NewReaderSize(in.R, 64<<10)
	var buf []byte
	good, bad := 0, 0
	for n := 1; ; n++ {
		if n%256 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		line, long, rerr := readLine(br, buf[:0], MaxResourceSize)
		buf = line
		p.line = n
		if rerr != nil && rerr != io.EOF {
			return p.parseError(&posErr{-1, "", fmt.Errorf("read error: %w", rerr)})
		}
		if long {
			// Stop here rather than read on to the end of the line: it may
			// be gigabytes, and a resource that large is not data.
			return p.parseError(&posErr{-1, "", fmt.Errorf("%w: a line over %d MiB", ErrTooLarge, MaxResourceSize>>20)})
		}
		if n == 1 {
			line = bytes.TrimPrefix(line, bom)
		}
		res, err := p.ndjsonLine(bytes.TrimSpace(line))
		if err != nil {
			return p.finish(err)
		}
		switch res {
		case lineRead:
			good++
		case lineFailed:
			bad++
		}
		if good == 0 && bad >= maxFailures {
			return p.parseError(&posErr{-1, "", fmt.Errorf("%w: %d lines and none is JSON", ErrTooManyFailures, bad)})
		}
		if rerr == io.EOF {
			return nil
		}
	}
}

// ndjsonLine imports one line. It returns an error only to stop the import
// (a sink or context error).
func (p *processor) ndjsonLine(line []byte) (lineResult, error) {
	if len(line) == 0 {
		return lineBlank, nil
	}
	if line[0] != '{' {
		p.fail("", fmt.Errorf("%w: the line is not a JSON object", ErrNotResource))
		return lineFailed, nil
	}
	var cbuf bytes.Buffer
	cbuf.Grow(len(line))
	if err := json.Compact(&cbuf, line); err != nil {
		_, e := describe(err)
		p.fail("", e)
		return lineFailed, nil
	}
	raw := cbuf.Bytes()
	info, err := scanResource(raw)
	if err != nil {
		if info != nil && info.typ == "" && isLogMembers(info) {
			p.sink.Skip("", "bulk export log entry, not a FHIR resource")
			return lineRead, nil
		}
		p.fail("", err)
		return lineFailed, nil
	}
	if info.typ == "Bundle" {
		dec := json.NewDecoder(bytes.NewReader(raw))
		obj, pe := p.readObject(dec, newCapReader(nil, MaxFileSize), "", false)
		if pe != nil {
			p.fail(pe.path, pe.err)
			return lineFailed, nil
		}
		return lineRead, p.emitBundle(obj.bundle, nil, 0, "")
	}
	return lineRead, p.emitResource(raw, info, "", "")
}

func isLogMembers(info *resInfo) bool {
	_, ev := info.has("eventId")
	_, ex := info.has("exportId")
	_, de := info.has("eventDetail")
	return ev && (ex || de)
}

// readLine reads one line into buf, without its newline. When the line is
// longer than max bytes, it stops reading there, leaving the rest of the
// line unread, and reports long with an empty line: memory and reading stay
// within max however long the line is.
func readLine(br *bufio.Reader, buf []byte, max int) (line []byte, long bool, err error) {
	for {
		frag, err := br.ReadSlice('\n')
		n := len(buf) + len(frag)
		if len(frag) > 0 && frag[len(frag)-1] == '\n' {
			n-- // the newline does not count
		}
		if n > max {
			return buf[:0], true, nil
		}
		buf = append(buf, frag...)
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		return bytes.TrimSuffix(buf, []byte{'\n'}), false, err
	}
}
