package fhir

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/phr-project/phr/internal/jsondepth"
	"github.com/phr-project/phr/pkg/importers"
	"github.com/phr-project/phr/pkg/record"
)

// processor turns decoded resources into records for one input.
type processor struct {
	ctx  context.Context
	sink importers.Sink
	prov record.Provenance // template; System and OriginalID filled per record
	file string
	ra   io.ReaderAt // for line numbers in errors; may be nil
	base int64       // bytes skipped before the JSON (a BOM)
	line int         // current NDJSON line, for item errors
}

// itemAt reports a failure of one item at offset off of the file (-1 when
// the item is not located in the file itself: in a nested bundle or an
// NDJSON line).
func (p *processor) itemAt(path string, off int64, err error) {
	ie := &importers.ItemError{File: p.file, Line: p.line, Path: path, Err: err}
	if off >= 0 && p.line == 0 {
		ie.Offset = p.base + off
		if p.ra != nil {
			ie.Offset = skipSpace(p.ra, ie.Offset)
			ie.Line = lineAt(p.ra, ie.Offset)
		}
	}
	p.sink.Fail(ie)
}

// skipSpace moves off past whitespace and commas, to the item's first byte.
func skipSpace(ra io.ReaderAt, off int64) int64 {
	var buf [4096]byte
	n, _ := ra.ReadAt(buf[:], off)
	for i := 0; i < n; i++ {
		switch buf[i] {
		case ' ', '\t', '\r', '\n', ',':
		default:
			return off + int64(i)
		}
	}
	return off
}

// posErr is a failure at an offset (-1: unknown) and JSON path.
type posErr struct {
	off  int64
	path string
	err  error
}

func (p *processor) parseError(pe *posErr) *importers.ParseError {
	ie := importers.ItemError{File: p.file, Line: p.line, Path: pe.path, Err: pe.err}
	if pe.off < 0 && pe.path == "" && p.line == 0 && p.ra != nil {
		// About the top-level value as a whole (no resourceType, too
		// large): it is where that value starts.
		pe.off = skipSpace(p.ra, p.base) - p.base
	}
	if pe.off >= 0 && p.line == 0 {
		ie.Offset = pe.off + p.base
		if p.ra != nil {
			ie.Line = lineAt(p.ra, ie.Offset)
		}
	}
	return &importers.ParseError{ItemError: ie}
}

func (p *processor) fail(path string, err error) {
	p.sink.Fail(&importers.ItemError{File: p.file, Line: p.line, Path: path, Err: err})
}

// lineAt counts the lines before off by reading the file again.
func lineAt(ra io.ReaderAt, off int64) int {
	if off > MaxFileSize {
		return 0
	}
	buf := make([]byte, 64<<10)
	line := 1
	for pos := int64(0); pos < off; {
		n := int64(len(buf))
		if off-pos < n {
			n = off - pos
		}
		m, err := ra.ReadAt(buf[:n], pos)
		line += bytes.Count(buf[:m], []byte{'\n'})
		pos += int64(m)
		if err != nil || m == 0 {
			break
		}
	}
	return line
}

// capReader fails reads past a limit, so that the decoder never buffers
// more than one oversized value before it is refused. The readers of
// bundle.go call value before every token they read: encoding/json buffers
// a whole value, and also every byte of white space before a token, so
// both are bounded to MaxResourceSize.
type capReader struct {
	r     io.Reader
	n     int64 // bytes read so far
	max   int64 // the whole input's limit
	limit int64 // the current limit: the end allowed to the next token or value
}

func newCapReader(r io.Reader, max int64) *capReader {
	return &capReader{r: r, max: max, limit: max}
}

func (c *capReader) Read(b []byte) (int, error) {
	if c.n >= c.limit {
		if c.limit < c.max {
			return 0, fmt.Errorf("%w: a resource or JSON token over %d MiB", ErrTooLarge, MaxResourceSize>>20)
		}
		return 0, fmt.Errorf("%w: a file over %d MiB", ErrTooLarge, c.max>>20)
	}
	if int64(len(b)) > c.limit-c.n {
		b = b[:c.limit-c.n]
	}
	n, err := c.r.Read(b)
	c.n += int64(n)
	return n, err
}

// value allows the next token or value, starting at decoder offset off
// (white space included), at most MaxResourceSize bytes, plus slack for
// the decoder's read-ahead.
func (c *capReader) value(off int64) { c.limit = min(c.max, off+MaxResourceSize+1<<20) }

// compactRaw is a JSON value with insignificant whitespace removed.
type compactRaw []byte

func (c *compactRaw) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*c = nil
		return nil
	}
	out := compactJSON(make([]byte, 0, len(b)), b)
	if cap(out)-len(out) > len(out)/4 {
		out = bytes.Clone(out)
	}
	*c = out
	return nil
}

// compactJSON appends b, a valid JSON value, to dst without insignificant
// whitespace: what json.Compact does, without checking b again.
// encoding/json has checked the whole value before it calls an
// UnmarshalJSON method, and the check was a sixth of a FHIR import's time.
// Bytes inside strings are copied as they are, as json.Compact copies
// them.
func compactJSON(dst, b []byte) []byte {
	inString := false
	start := 0
	for i := 0; i < len(b); i++ {
		c := b[i]
		if inString {
			switch c {
			case '\\':
				i++ // the escaped byte cannot end the string
			case '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case ' ', '\t', '\n', '\r':
			dst = append(dst, b[start:i]...)
			start = i + 1
		}
	}
	return append(dst, b[start:]...)
}

type rawMember struct {
	key string
	raw compactRaw
}

// entry is one Bundle entry, held until the bundle's references are known.
type entry struct {
	path    string // "entry[3]"
	off     int64  // offset of the entry in the file, or -1
	fullURL string
	mode    string // search.mode
	res     compactRaw
	err     error // the entry or its resource could not be read
	errPath string
	info    *resInfo
	newID   string // id assigned to a resource that had none
	done    bool   // emitted ahead of the others (a Patient)
}

type entryJSON struct {
	FullURL  string     `json:"fullUrl"`
	Resource compactRaw `json:"resource"`
	Search   struct {
		Mode string `json:"mode"`
	} `json:"search"`
}

type bundle struct {
	source  string // meta.source
	entries []*entry
}

// object is one top-level JSON object: a Bundle (with its entries) or any
// other resource (with its members, in order).
type object struct {
	rt      string
	rtSeen  bool
	members []rawMember
	bundle  *bundle
}

// readObject reads one JSON object, which must be a FHIR resource, from
// dec. Entries of a Bundle are decoded one at a time, so a bundle is held in
// memory once, compacted.
// Offsets are of the file when top is set, else unknown.
func (p *processor) readObject(dec *json.Decoder, cr *capReader, prefix string, top bool) (*object, *posErr) {
	cr.value(dec.InputOffset())
	tok, err := dec.Token()
	if err != nil {
		if err == io.EOF {
			return nil, &posErr{0, prefix, fmt.Errorf("%w: empty", ErrInvalidJSON)}
		}
		return nil, decErr(dec, err, prefix)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, &posErr{0, prefix, fmt.Errorf("%w: the JSON value is not an object", ErrNotResource)}
	}
	obj := &object{}
	var entryRaw compactRaw
	resourceOff := int64(-1) // offset of a "resource" member (a bare entry)
	for {
		// The white space before a member and its name are bounded like a
		// value.
		cr.value(dec.InputOffset())
		if !dec.More() {
			break
		}
		tok, err := dec.Token()
		if err != nil {
			return nil, decErr(dec, err, prefix)
		}
		key, _ := tok.(string)
		path := prefix + key
		if (key == "resourceType" && obj.rtSeen) || (key == "entry" && (obj.bundle != nil || entryRaw != nil)) {
			return nil, &posErr{dec.InputOffset(), path, fmt.Errorf("%w: %s given twice", ErrInvalidJSON, key)}
		}
		if key == "entry" && obj.rt == "Bundle" {
			b, pe := p.readEntries(dec, cr, path, top)
			if pe != nil {
				return nil, pe
			}
			obj.bundle = b
			continue
		}
		off := dec.InputOffset()
		cr.value(off)
		var raw compactRaw
		if err := dec.Decode(&raw); err != nil {
			return nil, decErr(dec, err, path)
		}
		// The member's value sits one level inside the resource. (An
		// "entry" read before resourceType is checked entry by entry.)
		if key != "entry" && jsondepth.Exceeds(raw, MaxJSONDepth-1) {
			return nil, &posErr{off, path, errTooDeep}
		}
		switch key {
		case "resource":
			if top {
				resourceOff = off
			}
		case "resourceType":
			if err := json.Unmarshal(raw, &obj.rt); err != nil || obj.rt == "" {
				return nil, &posErr{-1, path, fmt.Errorf("%w: resourceType is not a non-empty string", ErrNotResource)}
			}
			obj.rtSeen = true
		case "entry":
			entryRaw = raw // resourceType not known yet
		}
		obj.members = append(obj.members, rawMember{key, raw})
	}
	cr.value(dec.InputOffset())
	if _, err := dec.Token(); err != nil { // '}'
		return nil, decErr(dec, err, prefix)
	}
	if !obj.rtSeen {
		if prefix == "" && isBareEntry(obj.members) {
			// One Bundle entry saved on its own: a bundle of one entry.
			obj.bundle = &bundle{entries: []*entry{bareEntry(obj.members, resourceOff)}}
			obj.members = nil
			return obj, nil
		}
		return nil, &posErr{-1, prefix, fmt.Errorf("%w: no resourceType", ErrNotResource)}
	}
	if obj.rt != "Bundle" {
		return obj, nil
	}
	if obj.bundle == nil {
		obj.bundle = &bundle{}
		if entryRaw != nil {
			d := json.NewDecoder(bytes.NewReader(entryRaw))
			b, pe := p.readEntries(d, newCapReader(nil, MaxFileSize), prefix+"entry", false)
			if pe != nil {
				pe.off = -1
				return nil, pe
			}
			obj.bundle = b
		}
	}
	for _, m := range obj.members {
		if m.key != "meta" {
			continue
		}
		var meta struct {
			Source any `json:"source"`
		}
		if err := json.Unmarshal(m.raw, &meta); err != nil {
			return nil, &posErr{-1, prefix + "meta", fmt.Errorf("%w: meta is not an object", ErrWrongType)}
		}
		obj.bundle.source, _ = meta.Source.(string)
	}
	obj.members = nil
	return obj, nil
}

// entryMembers are the elements of a Bundle entry (Bundle.entry).
var entryMembers = map[string]bool{
	"fullUrl": true, "resource": true, "search": true, "request": true, "response": true,
	"link": true, "id": true, "extension": true, "modifierExtension": true,
}

// isBareEntry reports whether the members of an object without a
// resourceType are those of a Bundle entry with a resource.
func isBareEntry(members []rawMember) bool {
	hasResource := false
	for _, m := range members {
		if !entryMembers[m.key] {
			return false
		}
		hasResource = hasResource || m.key == "resource"
	}
	return hasResource
}

// bareEntry makes the entry of a file holding one Bundle entry; off is the
// offset of its resource in the file, or -1.
func bareEntry(members []rawMember, off int64) *entry {
	e := &entry{path: "entry", off: off}
	var ej entryJSON
	if err := json.Unmarshal(assemble(members), &ej); err != nil {
		var te *json.UnmarshalTypeError
		_, e.err = describe(err)
		e.errPath = e.path
		if errors.As(err, &te) && te.Field != "" {
			e.errPath += "." + te.Field
		}
		return e
	}
	e.fullURL, e.mode, e.res = ej.FullURL, ej.Search.Mode, ej.Resource
	return e
}

// readEntries reads a Bundle's entry array.
func (p *processor) readEntries(dec *json.Decoder, cr *capReader, path string, top bool) (*bundle, *posErr) {
	cr.value(dec.InputOffset())
	tok, err := dec.Token()
	if err != nil {
		return nil, decErr(dec, err, path)
	}
	if d, ok := tok.(json.Delim); !ok || d != '[' {
		return nil, &posErr{dec.InputOffset(), path, fmt.Errorf("%w: entry is not an array", ErrWrongType)}
	}
	b := &bundle{}
	for i := 0; ; i++ {
		cr.value(dec.InputOffset())
		if !dec.More() {
			break
		}
		if i >= MaxEntries {
			return nil, &posErr{dec.InputOffset(), path, fmt.Errorf("%w: more than %d entries", ErrTooLarge, MaxEntries)}
		}
		if i%256 == 0 {
			if err := p.ctx.Err(); err != nil {
				return nil, &posErr{-1, path, err}
			}
		}
		e := &entry{path: fmt.Sprintf("%s[%d]", path, i), off: -1}
		if top {
			e.off = dec.InputOffset()
		}
		var ej entryJSON
		if err := dec.Decode(&ej); err != nil {
			var te *json.UnmarshalTypeError
			if !errors.As(err, &te) {
				return nil, decErr(dec, err, e.path)
			}
			_, e.err = describe(err)
			e.errPath = e.path
			if te.Field != "" {
				e.errPath += "." + te.Field
			}
		} else {
			e.fullURL, e.mode, e.res = ej.FullURL, ej.Search.Mode, ej.Resource
		}
		b.entries = append(b.entries, e)
	}
	cr.value(dec.InputOffset())
	if _, err := dec.Token(); err != nil { // ']'
		return nil, decErr(dec, err, path)
	}
	return b, nil
}

func decErr(dec *json.Decoder, err error, path string) *posErr {
	off, e := describe(err)
	if off < 0 {
		off = dec.InputOffset()
	}
	return &posErr{off, path, e}
}

// assemble joins a resource's members back into compact JSON.
func assemble(members []rawMember) []byte {
	n := 2
	for _, m := range members {
		n += len(m.key) + len(m.raw) + 4
	}
	out := make([]byte, 0, n)
	out = append(out, '{')
	for i, m := range members {
		if i > 0 {
			out = append(out, ',')
		}
		out = appendString(out, m.key)
		out = append(out, ':')
		out = append(out, m.raw...)
	}
	return append(out, '}')
}

func appendString(b []byte, s string) []byte {
	q, _ := json.Marshal(s) // a string always marshals
	return append(b, q...)
}

// emitResource sends one resource to the sink, or skips it with a reason.
func (p *processor) emitResource(raw []byte, info *resInfo, bundleSource, path string) error {
	if info.typ == "OperationOutcome" {
		p.sink.Skip(info.typ, "OperationOutcome is a server message, not health data")
		return nil
	}
	if why := preR4(info); why != "" {
		p.sink.Skip(info.typ, "not FHIR R4 ("+why+"); phr imports R4 only")
		return nil
	}
	prov := p.prov
	if prov.System == "" {
		prov.System = sourceSystem(info.source)
		if prov.System == "" {
			prov.System = sourceSystem(bundleSource)
		}
	}
	prov.OriginalID = info.id
	rec, err := record.New(raw, prov)
	if err != nil {
		p.fail(path, err)
		return nil
	}
	return p.sink.Record(rec)
}

// sourceSystem is meta.source without its fragment: servers such as HAPI
// append "#<request id>", which differs on every export and would defeat
// deduplication.
func sourceSystem(s string) string {
	if i := strings.IndexByte(s, '#'); i >= 0 {
		s = s[:i]
	}
	return strings.TrimSpace(s)
}

// scope indexes one bundle's entries for reference resolution; parent is
// the enclosing bundle's scope.
type scope struct {
	parent *scope
	byURL  map[string]*entry // fullUrl
	byTail map[string]*entry // "Type/id" at the end of a RESTful fullUrl
}

func (sc *scope) resolve(ref, base string) *entry {
	abs := hasScheme(ref)
	for s := sc; s != nil; s = s.parent {
		if abs {
			if e := s.byURL[ref]; e != nil {
				return e
			}
			continue
		}
		if base != "" {
			if e := s.byURL[base+ref]; e != nil {
				return e
			}
		}
		if e := s.byTail[ref]; e != nil {
			return e
		}
	}
	return nil
}

// hasScheme reports whether ref is an absolute URI ("urn:uuid:...",
// "https://...", "resource:0").
func hasScheme(ref string) bool {
	i := strings.IndexByte(ref, ':')
	return i > 0 && !strings.ContainsAny(ref[:i], "/?#")
}

// splitRESTful splits "https://host/fhir/Patient/123" into its base
// ("https://host/fhir/") and "Patient/123".
func splitRESTful(u string) (base, tail string) {
	if !strings.Contains(u, "://") {
		return "", ""
	}
	i := strings.LastIndexByte(u, '/')
	if i <= 0 || i == len(u)-1 {
		return "", ""
	}
	j := strings.LastIndexByte(u[:i], '/')
	if j < 0 || j+1 >= i {
		return "", ""
	}
	if c := u[j+1]; c < 'A' || c > 'Z' { // resource types start upper-case
		return "", ""
	}
	return u[:j+1], u[j+1:]
}

// validID reports whether s is a valid FHIR id: [A-Za-z0-9\-\.]{1,64}.
func validID(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// idFromFullURL derives an id from an entry's fullUrl, or returns "".
func idFromFullURL(u, typ string) string {
	var id string
	switch {
	case strings.HasPrefix(u, "urn:uuid:"):
		id = u[len("urn:uuid:"):]
	case strings.HasPrefix(u, "urn:oid:"):
		id = u[len("urn:oid:"):]
	default:
		_, tail := splitRESTful(u)
		t, rest, ok := strings.Cut(tail, "/")
		if !ok || t != typ {
			return ""
		}
		id = rest
	}
	if !validID(id) {
		return ""
	}
	return id
}

// emitBundle resolves the references between a bundle's entries and emits
// them in order.
func (p *processor) emitBundle(b *bundle, parent *scope, depth int, parentSource string) error {
	if depth > MaxBundleNesting {
		return &posErr{-1, "", ErrTooDeep}
	}
	src := b.source
	if src == "" {
		src = parentSource
	}
	// Patients seed the digest ids of resources without one, so that the
	// same content for two people never gets the same id.
	seed := sha256.New()
	for _, e := range b.entries {
		if e.err != nil || e.res == nil {
			continue
		}
		info, err := scanResource(e.res)
		if err != nil {
			e.err, e.errPath = err, e.path+".resource"
			continue
		}
		e.info = info
		if info.typ == "Patient" {
			fmt.Fprintf(seed, "%d:", len(e.res))
			seed.Write(e.res)
		}
	}
	sum := seed.Sum(nil)
	sc := &scope{parent: parent, byURL: make(map[string]*entry), byTail: make(map[string]*entry)}
	for _, e := range b.entries {
		if e.info == nil {
			continue
		}
		if !e.info.hasID {
			e.newID = idFromFullURL(e.fullURL, e.info.typ)
			if e.newID == "" {
				h := sha256.New()
				h.Write(sum)
				h.Write(e.res)
				e.newID = hex.EncodeToString(h.Sum(nil))[:32]
			}
			e.info.id = e.newID
		}
		if e.fullURL == "" {
			continue
		}
		if _, dup := sc.byURL[e.fullURL]; dup {
			continue
		}
		sc.byURL[e.fullURL] = e
		if _, tail := splitRESTful(e.fullURL); tail != "" {
			if _, dup := sc.byTail[tail]; !dup {
				sc.byTail[tail] = e
			}
		}
	}
	// The bundle's Patients go first: the importer pipeline compares the
	// file's subject with the vault's owner before any clinical record.
	for _, e := range b.entries {
		if e.err == nil && e.info != nil && e.info.typ == "Patient" && e.mode != "outcome" {
			if err := p.emitResource(rewrite(e, sc), e.info, src, e.path+".resource"); err != nil {
				return err
			}
			e.res, e.done = nil, true
		}
	}
	for i, e := range b.entries {
		if i%256 == 0 {
			if err := p.ctx.Err(); err != nil {
				return err
			}
		}
		var err error
		switch {
		case e.done:
		case e.err != nil:
			p.itemAt(e.errPath, e.off, e.err)
		case e.res == nil:
			p.sink.Skip("", "bundle entry without a resource")
		case e.mode == "outcome":
			p.sink.Skip(e.info.typ, "search outcome entry (a server message)")
		case e.info.typ == "Bundle":
			err = p.emitNested(e, sc, depth, src)
		default:
			err = p.emitResource(rewrite(e, sc), e.info, src, e.path+".resource")
		}
		e.res = nil // done with it: let it go
		if err != nil {
			return err
		}
	}
	return nil
}

// emitNested imports a Bundle found in an entry.
func (p *processor) emitNested(e *entry, sc *scope, depth int, src string) error {
	path := e.path + ".resource."
	if depth+1 > MaxBundleNesting {
		p.fail(e.path+".resource", fmt.Errorf("%w: bundles nested more than %d deep", ErrTooDeep, MaxBundleNesting))
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(e.res))
	obj, pe := p.readObject(dec, newCapReader(nil, MaxFileSize), path, false)
	if pe != nil {
		p.fail(pe.path, pe.err)
		return nil
	}
	e.res = nil
	return p.emitBundle(obj.bundle, sc, depth+1, src)
}

// rewrite returns e's resource with its assigned id inserted and its
// references to other entries rewritten to "Type/id". It returns the
// resource itself when nothing changes.
func rewrite(e *entry, sc *scope) []byte {
	res := e.res
	var out []byte
	last := 0
	if e.newID != "" {
		out = make([]byte, 0, len(res)+len(e.newID)+64)
		at := e.info.afterType
		out = append(out, res[:at]...)
		if at > 1 {
			out = append(out, `,"id":`...)
			out = appendString(out, e.newID)
		} else {
			out = append(out, `"id":`...)
			out = appendString(out, e.newID)
			out = append(out, ',')
		}
		last = at
	}
	base, _ := splitRESTful(e.fullURL)
	for _, r := range e.info.refs {
		if r.val == "" || r.val[0] == '#' {
			continue
		}
		t := sc.resolve(r.val, base)
		if t == nil || t.info == nil || t.info.id == "" {
			continue
		}
		nr := t.info.typ + "/" + t.info.id
		if nr == r.val {
			continue
		}
		if out == nil {
			out = make([]byte, 0, len(res)+64)
		}
		out = append(out, res[last:r.start]...)
		out = appendString(out, nr)
		last = r.end
	}
	if out == nil {
		return res
	}
	return append(out, res[last:]...)
}

// ImportBundle imports the entries of the FHIR R4 Bundle in data, for
// importers that find a bundle inside another container (a SMART Health
// Card's credentialSubject.fhirBundle). References between entries are
// resolved as for a Bundle file. prov is copied into every record, with
// OriginalID set per resource; when prov.System is empty, each record's
// System is its meta.source, else the bundle's. Errors are reported under
// prov.File; the JSON paths they name are relative to the bundle.
func ImportBundle(ctx context.Context, data []byte, prov record.Provenance, sink importers.Sink) error {
	p := &processor{ctx: ctx, sink: sink, prov: prov, file: prov.File}
	if len(data) > MaxFileSize {
		return p.parseError(&posErr{-1, "", fmt.Errorf("%w: bundle over %d MiB", ErrTooLarge, MaxFileSize>>20)})
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	obj, pe := p.readObject(dec, newCapReader(nil, MaxFileSize), "", false)
	if pe != nil {
		pe.off = -1
		return p.parseError(pe)
	}
	if obj.rt != "Bundle" {
		return p.parseError(&posErr{-1, "resourceType", fmt.Errorf("%w: not a Bundle", ErrNotResource)})
	}
	return p.finish(p.emitBundle(obj.bundle, nil, 0, ""))
}

// finish turns a *posErr escaping emission into a *ParseError.
func (p *processor) finish(err error) error {
	var pe *posErr
	if errors.As(err, &pe) {
		return p.parseError(pe)
	}
	return err
}

func (pe *posErr) Error() string { return pe.path + ": " + pe.err.Error() }
func (pe *posErr) Unwrap() error { return pe.err }
