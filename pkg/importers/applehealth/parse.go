package applehealth

import (
	"bufio"
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/phr-project/phr/pkg/importers"
	"github.com/phr-project/phr/pkg/record"
)

// maxKeptNodes bounds the children kept for one item (metadata entries,
// correlation members, workout statistics); further children are read and
// dropped.
const maxKeptNodes = 1024

// guardReader fails when more than limit bytes are read since mark, so that
// no single XML token can make the decoder buffer without bound.
type guardReader struct {
	r           io.Reader
	n, mark     int64
	limit       int64
	exceededErr error
}

func (g *guardReader) Read(p []byte) (int, error) {
	if g.n-g.mark > g.limit {
		return 0, g.exceededErr
	}
	n, err := g.r.Read(p)
	g.n += int64(n)
	return n, err
}

// node is one element of an item, with the children the mapping uses.
type node struct {
	name  string
	attrs []xml.Attr
	kids  []*node
	// over is set on an item whose kept children passed MaxItemBytes.
	over bool
}

// size estimates the memory a node's name and attributes hold.
func (n *node) size() int {
	s := len(n.name) + 64
	for _, a := range n.attrs {
		s += len(a.Name.Space) + len(a.Name.Local) + len(a.Value) + 64
	}
	return s
}

func (n *node) attr(name string) string {
	for _, a := range n.attrs {
		if a.Name.Local == name && a.Name.Space == "" {
			return a.Value
		}
	}
	return ""
}

func (n *node) has(name string) bool {
	for _, a := range n.attrs {
		if a.Name.Local == name && a.Name.Space == "" {
			return true
		}
	}
	return false
}

// parser streams one export.xml.
type parser struct {
	ctx   context.Context
	dec   *xml.Decoder
	guard *guardReader
	file  string
	sink  importers.Sink
	prov  record.Provenance

	stack      []string
	rootSeen   bool
	rootClosed bool
	items      int

	daily bool
	agg   aggregator
	bp    bpMatcher
	names map[string]string // humanized identifiers

	clinical  clinicalFiles // nil when the input has no clinical records
	exportDir string        // prefix of their names in errors
}

func parse(ctx context.Context, r io.Reader, src source, prov record.Provenance, daily bool, sink importers.Sink) error {
	br, ok := r.(*bufio.Reader)
	if !ok {
		br = bufio.NewReaderSize(r, 64<<10)
	}
	if bom, _ := br.Peek(3); string(bom) == "\xef\xbb\xbf" {
		br.Discard(3)
	}
	g := &guardReader{r: br, limit: MaxTokenBytes}
	p := &parser{
		ctx:       ctx,
		guard:     g,
		file:      src.name,
		sink:      sink,
		prov:      prov,
		daily:     daily,
		names:     map[string]string{},
		clinical:  src.clinical,
		exportDir: src.exportDir,
	}
	g.exceededErr = fmt.Errorf("%w: an XML token is longer than %d bytes", ErrTooLarge, MaxTokenBytes)
	p.dec = xml.NewDecoder(g)
	p.dec.Strict = true
	if err := p.run(); err != nil {
		return err
	}
	if err := p.bp.flush(p); err != nil {
		return err
	}
	return p.agg.flush(p)
}

func (p *parser) run() error {
	for {
		tok, err := p.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			name := qname(t.Name)
			if len(p.stack) == 1 {
				if name != "HealthData" {
					return p.errHere("", fmt.Errorf("root element is <%s>, not <HealthData>", clip(name)))
				}
				p.rootSeen = true
				continue
			}
			line, _ := p.dec.InputPos()
			n, err := p.collect(t)
			if err != nil {
				return err
			}
			if n.over {
				p.fail(line, clip(n.name), fmt.Errorf("%w: the item and its children are over %d MiB", ErrTooLarge, MaxItemBytes>>20))
			} else if err := p.item(n, line); err != nil {
				return err
			}
			p.items++
			if p.items%1024 == 0 {
				if err := p.ctx.Err(); err != nil {
					return err
				}
			}
		case xml.Directive:
			if err := p.directive(t); err != nil {
				return err
			}
		case xml.CharData:
			if len(p.stack) == 0 && len(bytes.TrimSpace(t)) > 0 {
				return p.errHere("", errors.New("text outside the root element"))
			}
		}
	}
	if !p.rootSeen {
		return p.errHere("", errors.New("no <HealthData> element: not an Apple Health export"))
	}
	if len(p.stack) > 0 {
		return p.errHere(p.path(), fmt.Errorf("unexpected end of file: <%s> is not closed (truncated export?)", clip(p.stack[len(p.stack)-1])))
	}
	return nil
}

// next returns the next raw token, keeping the element stack, the depth
// limit and the per-token size limit.
func (p *parser) next() (xml.Token, error) {
	p.guard.mark = p.guard.n
	tok, err := p.dec.RawToken()
	if err != nil {
		if err == io.EOF {
			return nil, io.EOF
		}
		return nil, p.syntaxErr(err)
	}
	switch t := tok.(type) {
	case xml.StartElement:
		if p.rootClosed {
			return nil, p.errHere("", errors.New("element after the end of <HealthData>"))
		}
		if len(p.stack) >= MaxDepth {
			return nil, p.errHere(p.path(), fmt.Errorf("%w: elements nested deeper than %d", ErrTooLarge, MaxDepth))
		}
		if err := p.checkStart(t); err != nil {
			return nil, err
		}
		p.stack = append(p.stack, qname(t.Name))
	case xml.EndElement:
		name := qname(t.Name)
		if len(p.stack) == 0 {
			return nil, p.errHere("", fmt.Errorf("unexpected </%s>", clip(name)))
		}
		if top := p.stack[len(p.stack)-1]; top != name {
			return nil, p.errHere(p.path(), fmt.Errorf("</%s> closes <%s>", clip(name), clip(top)))
		}
		p.stack = p.stack[:len(p.stack)-1]
		if len(p.stack) == 0 {
			p.rootClosed = true
		}
	}
	return tok, nil
}

// checkStart enforces the limits on one start tag: name length, number of
// attributes, attribute name and value lengths. The error names the
// element and the attribute, never the value.
func (p *parser) checkStart(t xml.StartElement) error {
	if len(t.Name.Space)+len(t.Name.Local) > MaxNameBytes {
		return p.errHere(p.path(), fmt.Errorf("%w: an element name over %d bytes", ErrTooLarge, MaxNameBytes))
	}
	// The element's path, built only for an error.
	at := func() string {
		if len(p.stack) == 0 {
			return qname(t.Name)
		}
		return p.path() + "/" + qname(t.Name)
	}
	if len(t.Attr) > MaxAttributes {
		return p.errHere(at(), fmt.Errorf("%w: more than %d attributes", ErrTooLarge, MaxAttributes))
	}
	for _, a := range t.Attr {
		if len(a.Name.Space)+len(a.Name.Local) > MaxNameBytes {
			return p.errHere(at(), fmt.Errorf("%w: an attribute name over %d bytes", ErrTooLarge, MaxNameBytes))
		}
		if len(a.Value) > MaxAttrBytes {
			return p.errHere(at()+"/@"+qname(a.Name), fmt.Errorf("%w: an attribute value over %d KiB", ErrTooLarge, MaxAttrBytes>>10))
		}
	}
	return nil
}

// directive accepts the DOCTYPE with its internal subset of ELEMENT and
// ATTLIST declarations, and refuses any entity declaration (general or
// parameter: billion laughs, external entities), an external DTD and
// parameter entity references.
func (p *parser) directive(d xml.Directive) error {
	if bytes.HasPrefix(d, []byte("ENTITY")) || bytes.Contains(d, []byte("<!ENTITY")) {
		return p.errHere("", ErrEntityDeclaration)
	}
	if !bytes.HasPrefix(d, []byte("DOCTYPE")) {
		return p.errHere("", errors.New("unexpected <! declaration outside the DOCTYPE"))
	}
	if p.rootSeen {
		return p.errHere(p.path(), errors.New("DOCTYPE inside the document"))
	}
	if err := checkDoctype(d[len("DOCTYPE"):]); err != nil {
		return p.errHere("", err)
	}
	return nil
}

// checkDoctype reads what follows "<!DOCTYPE": the root name, an optional
// external ID (SYSTEM "uri" or PUBLIC "id" "uri") and an optional internal
// subset in brackets. It refuses the external ID and, outside quoted
// literals, parameter entity references. (encoding/xml has removed the
// comments.)
func checkDoctype(d []byte) error {
	subset := false
	var quote byte
	for i := 0; i < len(d); i++ {
		c := d[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '[':
			subset = true
		case c == '%' && i+1 < len(d) && isNameStart(d[i+1]):
			return fmt.Errorf("%w: a parameter entity reference in the DTD", ErrExternalDTD)
		case !subset && (c == 'S' || c == 'P') && (i == 0 || isSpace(d[i-1])):
			w := d[i:]
			if j := bytes.IndexFunc(w, func(r rune) bool { return r < 0x80 && isSpace(byte(r)) || r == '"' || r == '\'' || r == '[' }); j >= 0 {
				w = w[:j]
			}
			if string(w) == "SYSTEM" || string(w) == "PUBLIC" {
				return fmt.Errorf("%w: the DOCTYPE names an external DTD (%s)", ErrExternalDTD, w)
			}
		}
	}
	return nil
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

func isNameStart(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c == ':' || c >= 0x80
}

// collect reads the item that start opened up to its end tag. It keeps the
// item's attributes and the children the mapping uses (two levels), within
// maxKeptNodes and MaxItemBytes (past which it marks the item over and
// keeps nothing more).
func (p *parser) collect(start xml.StartElement) (*node, error) {
	root := &node{name: qname(start.Name), attrs: start.Attr}
	base := len(p.stack) // depth of root
	chain := []*node{root}
	kept := 0
	size := root.size()
	for len(p.stack) >= base {
		tok, err := p.next()
		if err == io.EOF {
			return nil, p.errHere(p.path(), fmt.Errorf("unexpected end of file inside <%s> (truncated export?)", clip(root.name)))
		}
		if err != nil {
			return nil, err
		}
		t, ok := tok.(xml.StartElement)
		if !ok {
			if d, ok := tok.(xml.Directive); ok {
				if err := p.directive(d); err != nil {
					return nil, err
				}
			}
			continue
		}
		rel := len(p.stack) - base // 1 for a child of root
		var parent *node
		if rel-1 < len(chain) {
			parent = chain[rel-1]
		}
		var n *node
		if parent != nil && kept < maxKeptNodes && !root.over && keepChild(parent.name, t.Name.Local, rel) {
			n = &node{name: qname(t.Name), attrs: t.Attr}
			if size += n.size(); size > MaxItemBytes {
				root.over, root.kids, n = true, nil, nil
			} else {
				parent.kids = append(parent.kids, n)
				kept++
			}
		}
		if rel < len(chain) {
			chain = append(chain[:rel], n)
		} else {
			for len(chain) < rel {
				chain = append(chain, nil)
			}
			chain = append(chain, n)
		}
	}
	return root, nil
}

// keepChild says which descendants the mapping reads.
func keepChild(parent, child string, rel int) bool {
	switch rel {
	case 1:
		switch child {
		case "MetadataEntry", "Record", "WorkoutStatistics", "WorkoutRoute", "WorkoutEvent":
			return true
		}
	case 2:
		return parent == "Record" && child == "MetadataEntry"
	}
	return false
}

func qname(n xml.Name) string {
	if n.Space == "" {
		return n.Local
	}
	return n.Space + ":" + n.Local
}

// path names the open elements, root first; a deep stack is shown by its
// first three and last two elements.
func (p *parser) path() string {
	var b bytes.Buffer
	for i, s := range p.stack {
		if n := len(p.stack); n > 6 && i >= 3 && i < n-2 {
			if i == 3 {
				fmt.Fprintf(&b, "/...%d more...", n-5)
			}
			continue
		}
		if i > 0 {
			b.WriteByte('/')
		}
		b.WriteString(clip(s))
	}
	return b.String()
}

// clip shortens element names echoed in errors.
func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

func (p *parser) errHere(path string, err error) error {
	line, _ := p.dec.InputPos()
	return parseErr(p.file, line, p.dec.InputOffset(), path, err)
}

func (p *parser) syntaxErr(err error) error {
	var se *xml.SyntaxError
	if errors.As(err, &se) {
		return parseErr(p.file, se.Line, p.dec.InputOffset(), p.path(), fmt.Errorf("XML syntax error: %s", syntaxMsg(se.Msg)))
	}
	if errors.Is(err, ErrTooLarge) {
		return p.errHere(p.path(), err)
	}
	return p.errHere(p.path(), fmt.Errorf("read error: %w", err))
}

// syntaxMsg keeps encoding/xml's message unless it may quote the file's
// text (entity references and names), which could be health data.
func syntaxMsg(msg string) string {
	switch {
	case strings.Contains(msg, "entity"):
		return "invalid entity reference (only &lt; &gt; &amp; &apos; &quot; and character references are allowed)"
	case strings.HasPrefix(msg, "invalid XML name"):
		return "invalid XML name"
	}
	return clip(msg)
}

// fail reports a per-item problem and goes on.
func (p *parser) fail(line int, path string, err error) {
	p.sink.Fail(&importers.ItemError{File: p.file, Line: line, Path: path, Err: err})
}
