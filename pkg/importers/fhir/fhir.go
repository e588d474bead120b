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
	p := newProcessor(ctx, in, sink, "fhir")
	br := bufio.NewReaderSize(in.R, 64<<10)
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
