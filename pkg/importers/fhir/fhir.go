package fhir

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"

	"github.com/phr-project/phr/pkg/importers"
	"github.com/phr-project/phr/pkg/record"
)

// Importer is the FHIR R4 JSON importer: one resource or one Bundle a file.
type Importer struct{}

var _ importers.Importer = Importer{}

// New returns the FHIR R4 JSON importer (format "fhir").
func New() importers.Importer { return Importer{} }

// Name returns "fhir".
func (Importer) Name() string { return "fhir" }

// Detect reports whether head starts a FHIR JSON resource: a JSON object
// with a top-level resourceType, that is neither NDJSON (see NDJSONImporter)
// nor a SMART Health Card.
func (Importer) Detect(head []byte) bool { return detectFHIR(head) }

// Import reads one FHIR resource or Bundle from in.
func (Importer) Import(ctx context.Context, in *importers.Input, sink importers.Sink) error {
	return newProcessor(ctx, in, sink, "fhir").importJSON(in.R)
}

// ImportJSON imports one FHIR R4 JSON document held in data (a resource, a
// Bundle of any type, or one bare Bundle entry) as the fhir format imports
// a file, for importers that find FHIR files inside another container
// (the clinical records of an Apple Health export). prov is copied into
// every record, with OriginalID set per resource; when prov.System is
// empty, each record's System is its meta.source, else its Bundle's.
// Errors name the file name, with lines counted in data.
func ImportJSON(ctx context.Context, name string, data []byte, prov record.Provenance, sink importers.Sink) error {
	p := &processor{ctx: ctx, sink: sink, prov: prov, file: name, ra: bytes.NewReader(data)}
	if len(data) > MaxFileSize {
		return p.parseError(&posErr{-1, "", fmt.Errorf("%w: a file over %d MiB", ErrTooLarge, MaxFileSize>>20)})
	}
	return p.importJSON(bytes.NewReader(data))
}

// importJSON reads one FHIR resource, Bundle or bare entry from r.
func (p *processor) importJSON(r io.Reader) error {
	br := bufio.NewReaderSize(r, 64<<10)
	if b, _ := br.Peek(len(bom)); bytes.Equal(b, bom) {
		br.Discard(len(bom))
		p.base = int64(len(bom))
	}
	cr := newCapReader(br, MaxFileSize)
	dec := json.NewDecoder(cr)
	obj, pe := p.readObject(dec, cr, "", true)
	if pe != nil {
		return p.parseError(pe)
	}
	cr.value(dec.InputOffset())
	if tok, err := dec.Token(); err != io.EOF {
		off := dec.InputOffset()
		if err == nil {
			if d, ok := tok.(json.Delim); ok && (d == '{' || d == '[') {
				off-- // the token's first byte
			}
		}
		return p.parseError(&posErr{off, "", ErrTrailingData})
	}
	if obj.bundle != nil { // a Bundle, or one bare entry
		return p.finish(p.emitBundle(obj.bundle, nil, 0, ""))
	}
	raw := assemble(obj.members)
	obj.members = nil
	if len(raw) > MaxResourceSize {
		return p.parseError(&posErr{-1, "", fmt.Errorf("%w: a resource over %d MiB", ErrTooLarge, MaxResourceSize>>20)})
	}
	info, err := scanResource(raw)
	if err != nil {
		return p.parseError(&posErr{-1, "", err})
	}
	return p.emitResource(raw, info, "", "")
}

func newProcessor(ctx context.Context, in *importers.Input, sink importers.Sink, name string) *processor {
	return &processor{
		ctx:  ctx,
		sink: sink,
		file: filepath.Base(in.Name),
		ra:   in.ReaderAt,
		prov: record.Provenance{
			Method:     record.MethodImported,
			Importer:   name,
			File:       filepath.Base(in.Name),
			FileSHA256: in.SHA256,
		},
	}
}
