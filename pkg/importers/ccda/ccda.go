package ccda

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/phr-project/phr/pkg/importers"
	"github.com/phr-project/phr/pkg/record"
)

// Name is the format's name, as --format takes it.
const Name = "ccda"

// OptionTimezone is the Input.Options key naming the time zone to assume
// for times of day that carry no offset: an IANA name
// ("America/Chicago"), "UTC", or an offset ("-0500"). Without it, the
// offset of the document's own effectiveTime is assumed, and when that has
// none either, such times are kept as written, without an offset
// ("2013-08-15T10:30:00"). The wall-clock time is never shifted.
const OptionTimezone = "timezone"

type importer struct{}

// New returns the C-CDA importer.
func New() importers.Importer { return importer{} }

var _ importers.Importer = importer{}

func (importer) Name() string { return Name }

// Detect reports whether head starts an XML document whose root element
// is ClinicalDocument in the urn:hl7-org:v3 namespace. A byte-order mark,
// the XML declaration, comments, processing instructions and a DOCTYPE
// may come first.
func (importer) Detect(head []byte) bool {
	if len(head) > importers.DetectSize {
		head = head[:importers.DetectSize]
	}
	head = bytes.TrimPrefix(head, []byte("\xef\xbb\xbf"))
	if !bytes.Contains(head, []byte("ClinicalDocument")) {
		return false
	}
	d := xml.NewDecoder(bytes.NewReader(head))
	d.Strict = true
	d.CharsetReader = charsetReader
	for range 4096 {
		tok, err := d.Token()
		if err != nil {
			return false
		}
		switch t := tok.(type) {
		case xml.StartElement:
			return t.Name.Local == "ClinicalDocument" && t.Name.Space == nsV3
		case xml.CharData:
			if len(bytes.TrimSpace(t)) != 0 {
				return false
			}
		}
	}
	return false
}

// Import reads one C-CDA document.
func (importer) Import(ctx context.Context, in *importers.Input, sink importers.Sink) error {
	file := filepath.Base(in.Name)
	perr := func(line int, off int64, path string, err error) error {
		return &importers.ParseError{ItemError: importers.ItemError{File: file, Line: line, Offset: off, Path: path, Err: err}}
	}
	if in.Size > MaxFileSize {
		return perr(0, 0, "", fmt.Errorf("%w: file is over %d MiB", ErrTooLarge, MaxFileSize>>20))
	}
	data, err := readFile(in)
	if err != nil {
		return perr(0, 0, "", fmt.Errorf("reading: %w", err))
	}
	if len(data) > MaxFileSize {
		return perr(0, MaxFileSize, "", fmt.Errorf("%w: file is over %d MiB", ErrTooLarge, MaxFileSize>>20))
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	root, ids, err := parse(data, parseLimits{depth: MaxDepth, elements: MaxElements})
	if err != nil {
		var xe *xmlError
		if errors.As(err, &xe) {
			return perr(xe.line, xe.offset, "", xe.err)
		}
		return perr(0, 0, "", err)
	}
	if root.local != "ClinicalDocument" || root.space != nsV3 {
		return perr(root.line, 0, "/"+root.local, ErrNotCCDA)
	}
	sha := in.SHA256
	if sha == "" {
		sum := sha256.Sum256(data)
		sha = hex.EncodeToString(sum[:])
	}
	c := &conv{
		ctx:     ctx,
		sink:    sink,
		file:    file,
		sha:     sha,
		data:    data,
		doc:     root,
		ids:     ids,
		seen:    map[string]int{},
		usedIDs: map[string]int{},
		refs:    map[string]string{},
	}
	if z, ok := parseZoneOption(in.Options[OptionTimezone]); ok {
		c.zone = z
	} else if z, ok := zoneOf(root.child("effectiveTime").attr("value")); ok {
		c.zone = z
	}
	return c.run()
}

// conv holds the state of one import.
type conv struct {
	ctx  context.Context
	sink importers.Sink
	file string
	sha  string
	data []byte
	doc  *node
	ids  map[string]*node
	zone *zoneSpec

	system     string // custodian organization
	patientID  string
	seen       map[string]int    // resourceType + original id -> times seen
	usedIDs    map[string]int    // content-derived resource id -> times used
	docVersion string            // "1.1", "2.0", "2.1"
	refs       map[string]string // narrative text by ID, once resolved
	dxRole     string            // AD or DD inside admission or discharge diagnoses
}

func (c *conv) run() error {
	c.system = c.sourceSystem()
	c.docVersion = c.version()
	if err := c.patient(); err != nil {
		return err
	}
	if err := c.documentReference(); err != nil {
		return err
	}
	body := c.doc.child("component")
	if sb := body.child("structuredBody"); sb != nil {
		for _, comp := range sb.children("component") {
			if err := c.section(comp.child("section"), 0); err != nil {
				return err
			}
		}
	}
	return nil
}

// version tells C-CDA R1.1, R2.0 and R2.1 apart by the extension of the
// document-level templateIds (US Realm Header, document type).
func (c *conv) version() string {
	v := ""
	for _, t := range c.doc.children("templateId") {
		if !strings.HasPrefix(t.attr("root"), "2.16.840.1.113883.10.20.22.1.") {
			continue
		}
		switch t.attr("extension") {
		case "2015-08-01":
			return "2.1"
		case "2014-06-09":
			v = "2.0"
		case "":
			if v == "" {
				v = "1.1"
			}
		}
	}
	return v
}

var idEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// resID derives a resource id from the file and the element's position
// (the DocumentReference, and a Patient without identifiers), so that
// importing the same file again yields the same ids.
func (c *conv) resID(n *node, kind string) string {
	h := sha256.New()
	h.Write([]byte(c.sha))
	h.Write([]byte{0})
	h.Write([]byte(kind))
	h.Write([]byte{0})
	if n != nil {
		h.Write([]byte(n.where()))
	}
	return hashID(h.Sum(nil))
}

func hashID(sum []byte) string { return toLower(idEncoding.EncodeToString(sum[:10])) }

// patientResID derives the Patient's id from who the patient is (the
// source and the recordTarget's identifiers), so that two documents about
// one patient from one source refer to the same Patient/<id> and their
// records compare equal when their content is. Without identifiers it is
// the file's.
func (c *conv) patientResID(role *node, ids []any) string {
	var keys []string
	for _, x := range ids {
		id := x.(*obj)
		keys = append(keys, id.str("system")+"|"+id.str("value"))
	}
	if len(keys) == 0 {
		return c.resID(role, "Patient")
	}
	slices.Sort(keys)
	h := sha256.New()
	h.Write([]byte("Patient\x00" + c.system + "\x00"))
	for _, k := range keys {
		h.Write([]byte(k))
		h.Write([]byte{0})
	}
	return hashID(h.Sum(nil))
}

func toLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

func (c *conv) patientRef() *obj {
	if c.patientID == "" {
		return nil
	}
	return newObj("reference", "Patient/"+c.patientID)
}

// emit turns res into a record and hands it to the sink; src is the entry
// whose ids give the record's original id. It returns the resource's id.
//
// A resource without an id yet gets one derived from its source system,
// type and content (which includes the Patient reference), the second and
// later resources of one file with equal content getting "#2", "#3" ...
// mixed in: the same file always yields the same ids, and the same fact in
// two documents of one patient and source has the same id, so references
// to it (DiagnosticReport.result, Encounter.diagnosis) compare equal too.
func (c *conv) emit(res *obj, src *node) (string, error) {
	if err := c.ctx.Err(); err != nil {
		return "", err
	}
	rt := res.str("resourceType")
	var data []byte
	id := res.str("id")
	if id != "" {
		data = res.marshal()
	} else {
		body := res.marshal()
		h := sha256.New()
		h.Write([]byte(c.system))
		h.Write([]byte{0})
		h.Write(body)
		sum := h.Sum(nil)
		id = hashID(sum)
		if n := c.usedIDs[id]; n > 0 {
			c.usedIDs[id] = n + 1
			h.Write([]byte("#" + strconv.Itoa(n+1)))
			id = hashID(h.Sum(nil))
		} else {
			c.usedIDs[id] = 1
		}
		res.setID(id)
		data = spliceID(body, rt, id)
		if data == nil {
			data = res.marshal()
		}
	}
	orig := originalID(src)
	if orig != "" {
		key := rt + "\x00" + orig
		c.seen[key]++
		if n := c.seen[key]; n > 1 {
			// The same id on two entries of one file (a concern act and
			// its observation, or a careless export): keep both apart.
			orig += "#" + strconv.Itoa(n)
		}
	}
	prov := record.Provenance{
		Method:     record.MethodImported,
		Importer:   Name,
		File:       c.file,
		FileSHA256: c.sha,
		System:     c.system,
		OriginalID: orig,
	}
	r, err := record.NewParsed(data, res.resource(), prov)
	if err != nil {
		c.fail(src, fmt.Errorf("%w: %s", ErrResource, rt))
		return "", nil
	}
	return id, c.sink.Record(r)
}

// spliceID inserts "id" after resourceType in a resource's JSON, or
// returns nil when body does not start as expected.
func spliceID(body []byte, rt, id string) []byte {
	head := `{"resourceType":"` + rt + `"`
	if !bytes.HasPrefix(body, []byte(head)) {
		return nil
	}
	out := make([]byte, 0, len(body)+len(id)+8)
	out = append(out, head...)
	out = append(out, `,"id":"`...)
	out = append(out, id...)
	out = append(out, '"')
	return append(out, body[len(head):]...)
}

// skip notes an entry deliberately not imported.
func (c *conv) skip(resourceType, reason string) { c.sink.Skip(resourceType, reason) }

// fail notes an entry that could not be read, with its position.
func (c *conv) fail(n *node, err error) {
	e := &importers.ItemError{File: c.file, Err: err}
	if n != nil {
		e.Line = n.line
		e.Path = n.where()
	}
	c.sink.Fail(e)
}

// readFile reads the whole input, at most MaxFileSize+1 bytes, in one
// allocation when the size is known.
func readFile(in *importers.Input) ([]byte, error) {
	if in.Size <= 0 || in.Size > MaxFileSize {
		return io.ReadAll(io.LimitReader(in.R, MaxFileSize+1))
	}
	buf := make([]byte, in.Size+1)
	n, err := io.ReadFull(in.R, buf)
	switch {
	case err == io.EOF || err == io.ErrUnexpectedEOF:
		return buf[:n], nil
	case err != nil:
		return nil, err
	}
	// Longer than announced: read on, up to the limit.
	rest, err := io.ReadAll(io.LimitReader(in.R, MaxFileSize+1-int64(n)))
	return append(buf, rest...), err
}
