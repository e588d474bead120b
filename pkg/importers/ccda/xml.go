package ccda

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"
)

// XML namespaces that matter here.
const (
	nsV3   = "urn:hl7-org:v3"
	nsSDTC = "urn:hl7-org:sdtc"
	nsXSI  = "http://www.w3.org/2001/XMLSchema-instance"
)

// node is one element of a parsed document. Text between elements is kept
// as children with an empty local name, so that narrative keeps its order.
type node struct {
	space  string // namespace URI ("" when none is declared)
	local  string // "" for a text node
	attrs  []xml.Attr
	kids   []*node
	parent *node
	text   string // text nodes only
	line   int
}

// spaceNode stands for whitespace-only text, which is common and carries
// nothing but a word break.
var spaceNode = &node{text: " "}

// parseLimits bound what parse reads.
type parseLimits struct {
	depth    int
	elements int
}

// xmlError is a failure to parse the document, with where it happened.
type xmlError struct {
	line   int
	offset int64
	err    error
}

func (e *xmlError) Error() string { return e.err.Error() }
func (e *xmlError) Unwrap() error { return e.err }

// parse reads a whole XML document into a tree. It refuses DTDs (and so
// entity declarations), nesting deeper than lim.depth, more than
// lim.elements elements, a second root element and text outside the root.
// ids collects the elements that carry an ID attribute (narrative anchors).
//
// fastParse reads the common case; parseStd, on encoding/xml, reads the
// rest and reports every error.
func parse(data []byte, lim parseLimits) (root *node, ids map[string]*node, err error) {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	if root, ids, ok := fastParse(data, lim); ok {
		return root, ids, nil
	}
	return parseStd(data, lim)
}

// parseStd is parse on encoding/xml.
func parseStd(data []byte, lim parseLimits) (root *node, ids map[string]*node, err error) {
	d := xml.NewDecoder(bytes.NewReader(data))
	d.Strict = true
	d.CharsetReader = charsetReader
	ids = make(map[string]*node)
	var (
		stack []*node
		count int
	)
	fail := func(e error) (*node, map[string]*node, error) {
		line, _ := d.InputPos()
		return nil, nil, &xmlError{line: line, offset: d.InputOffset(), err: e}
	}
	for {
		tok, terr := d.Token()
		if terr == io.EOF {
			break
		}
		if terr != nil {
			var se *xml.SyntaxError
			if errors.As(terr, &se) {
				if strings.Contains(se.Msg, "unexpected EOF") {
					return nil, nil, &xmlError{line: se.Line, offset: d.InputOffset(), err: ErrTruncated}
				}
				return nil, nil, &xmlError{line: se.Line, offset: d.InputOffset(), err: fmt.Errorf("%w: %s", ErrInvalidXML, syntaxMsg(se.Msg))}
			}
			if errors.Is(terr, io.ErrUnexpectedEOF) {
				return fail(ErrTruncated)
			}
			return fail(fmt.Errorf("%w: %v", ErrInvalidXML, terr))
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if len(stack) == 0 && root != nil {
				return fail(fmt.Errorf("%w: a second root element", ErrInvalidXML))
			}
			if len(stack) >= lim.depth {
				return fail(ErrTooDeep)
			}
			count++
			if count > lim.elements {
				return fail(ErrTooLarge)
			}
			line, _ := d.InputPos()
			n := &node{space: t.Name.Space, local: t.Name.Local, attrs: t.Attr, line: line}
			if len(stack) > 0 {
				p := stack[len(stack)-1]
				n.parent = p
				p.kids = append(p.kids, n)
			} else {
				root = n
			}
			for _, a := range t.Attr {
				if a.Name.Local == "ID" && a.Value != "" {
					if _, dup := ids[a.Value]; !dup {
						ids[a.Value] = n
					}
				}
			}
			stack = append(stack, n)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) == 0 {
				if len(bytes.TrimSpace(t)) != 0 {
					return fail(fmt.Errorf("%w: text outside the root element", ErrInvalidXML))
				}
				continue
			}
			p := stack[len(stack)-1]
			if len(bytes.TrimSpace(t)) == 0 {
				if len(p.kids) == 0 || p.kids[len(p.kids)-1] != spaceNode {
					p.kids = append(p.kids, spaceNode)
				}
				continue
			}
			p.kids = append(p.kids, &node{text: string(t)})
		case xml.Directive:
			// <!DOCTYPE ...> (with or without <!ENTITY ...>): C-CDA never
			// needs a DTD, and entity declarations are how XML bombs and
			// external-entity reads start.
			if bytes.Contains(t, []byte("ENTITY")) {
				return fail(ErrEntity)
			}
			return fail(ErrDTD)
		}
	}
	if root == nil {
		return nil, nil, &xmlError{err: fmt.Errorf("%w: no root element", ErrInvalidXML)}
	}
	if len(stack) != 0 {
		return fail(ErrTruncated)
	}
	return root, ids, nil
}

// syntaxMsg keeps encoding/xml's message where it names only markup, and
// drops the quoted text of messages about entities, which may be a piece of
// the file's content ("Smith&Jones").
func syntaxMsg(msg string) string {
	if strings.Contains(msg, "entity") {
		return "invalid character entity (a bare & in text?)"
	}
	return msg
}

// charsetReader decodes the single-byte encodings C-CDA files are
// sometimes declared in. UTF-8 never reaches it.
func charsetReader(label string, in io.Reader) (io.Reader, error) {
	var table *[256]rune
	switch strings.ToLower(strings.TrimSpace(label)) {
	case "us-ascii", "ascii", "iso-8859-1", "iso8859-1", "latin1", "latin-1", "l1", "iso_8859-1":
		table = &latin1
	case "windows-1252", "cp1252":
		table = &win1252
	default:
		return nil, fmt.Errorf("%w: %q", ErrCharset, label)
	}
	b, err := io.ReadAll(in)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(b)+len(b)/8)
	for _, c := range b {
		out = utf8.AppendRune(out, table[c])
	}
	return bytes.NewReader(out), nil
}

var latin1, win1252 [256]rune

func init() {
	for i := range latin1 {
		latin1[i] = rune(i)
		win1252[i] = rune(i)
	}
	// Windows-1252 differs from ISO-8859-1 in 0x80-0x9F.
	hi := [32]rune{
		0x20AC, 0xFFFD, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021,
		0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0xFFFD, 0x017D, 0xFFFD,
		0xFFFD, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014,
		0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0xFFFD, 0x017E, 0x0178,
	}
	for i, r := range hi {
		win1252[0x80+i] = r
	}
}

// --- navigation -------------------------------------------------------

// isV3 reports whether n is an element in the CDA namespace. Elements
// without a namespace count too: fragments often omit xmlns.
func (n *node) isV3() bool { return n != nil && n.local != "" && (n.space == nsV3 || n.space == "") }

// child returns the first CDA child element named local, or nil.
func (n *node) child(local string) *node {
	if n == nil {
		return nil
	}
	for _, k := range n.kids {
		if k.local == local && (k.space == nsV3 || k.space == "") {
			return k
		}
	}
	return nil
}

// children returns the CDA child elements named local.
func (n *node) children(local string) []*node {
	if n == nil {
		return nil
	}
	var out []*node
	for _, k := range n.kids {
		if k.local == local && (k.space == nsV3 || k.space == "") {
			out = append(out, k)
		}
	}
	return out
}

// elems returns all child elements.
func (n *node) elems() []*node {
	if n == nil {
		return nil
	}
	var out []*node
	for _, k := range n.kids {
		if k.local != "" {
			out = append(out, k)
		}
	}
	return out
}

// sdtc returns the first child in the SDTC extension namespace named local.
func (n *node) sdtc(local string) *node {
	if n == nil {
		return nil
	}
	for _, k := range n.kids {
		if k.local == local && (k.space == nsSDTC || k.space == "sdtc") {
			return k
		}
	}
	return nil
}

// path walks children by name: n.path("a", "b") is n/a/b.
func (n *node) path(names ...string) *node {
	for _, name := range names {
		n = n.child(name)
		if n == nil {
			return nil
		}
	}
	return n
}

// attr returns the value of the unqualified attribute local.
func (n *node) attr(local string) string {
	if n == nil {
		return ""
	}
	for _, a := range n.attrs {
		if a.Name.Local == local && a.Name.Space == "" {
			return strings.TrimSpace(a.Value)
		}
	}
	return ""
}

// xsiType returns the local part of xsi:type ("PQ", "CD", ...).
func (n *node) xsiType() string {
	if n == nil {
		return ""
	}
	for _, a := range n.attrs {
		if a.Name.Local == "type" && (a.Name.Space == nsXSI || a.Name.Space == "xsi") {
			v := strings.TrimSpace(a.Value)
			if i := strings.LastIndexByte(v, ':'); i >= 0 {
				v = v[i+1:]
			}
			return v
		}
	}
	return ""
}

// null reports whether n is absent or carries a nullFlavor.
func (n *node) null() bool { return n == nil || n.attr("nullFlavor") != "" }

// negated reports negationInd="true".
func (n *node) negated() bool { return strings.EqualFold(n.attr("negationInd"), "true") }

// templates returns the roots of n's templateIds.
func (n *node) templates() []string {
	var out []string
	for _, t := range n.children("templateId") {
		if r := t.attr("root"); r != "" {
			out = append(out, r)
		}
	}
	return out
}

// hasTemplate reports whether n has a templateId with one of roots,
// whatever its extension (R1.1 and R2.x use the same roots).
func (n *node) hasTemplate(roots ...string) bool {
	if n == nil {
		return false
	}
	for _, k := range n.kids {
		if k.local != "templateId" || !(k.space == nsV3 || k.space == "") {
			continue
		}
		r := k.attr("root")
		for _, want := range roots {
			if r == want {
				return true
			}
		}
	}
	return false
}

// textContent returns all text under n with whitespace folded; <br/> and
// block elements break words. It reads at most maxText bytes and visits
// at most maxVisit nodes, so that a reference to a huge element costs
// little.
func (n *node) textContent() string {
	if n == nil {
		return ""
	}
	var b strings.Builder
	budget := maxVisit
	n.appendText(&b, 0, &budget)
	return strings.Join(strings.Fields(b.String()), " ")
}

const maxVisit = 1 << 14

func (n *node) appendText(b *strings.Builder, depth int, budget *int) {
	if depth > maxDepth {
		return
	}
	for _, k := range n.kids {
		*budget--
		if *budget < 0 || b.Len() > maxText {
			return
		}
		if k.local == "" {
			b.WriteString(k.text)
			continue
		}
		switch k.local {
		case "br", "paragraph", "tr", "td", "th", "item", "list", "table", "caption":
			b.WriteByte(' ')
		}
		k.appendText(b, depth+1, budget)
		if k.local == "td" || k.local == "th" || k.local == "paragraph" || k.local == "item" {
			b.WriteByte(' ')
		}
	}
}

// ownText returns the text directly inside n (no child elements), trimmed.
func (n *node) ownText() string {
	if n == nil {
		return ""
	}
	var b strings.Builder
	for _, k := range n.kids {
		if k.local == "" {
			b.WriteString(k.text)
		}
	}
	return strings.TrimSpace(b.String())
}

// where returns n's position in XPath-like form, with 1-based indexes
// among same-named siblings where there are several:
// /ClinicalDocument/component/structuredBody/component[3]/section/entry[2].
// It names elements only, never content.
func (n *node) where() string {
	var parts []string
	for c := n; c != nil; c = c.parent {
		name := c.local
		if p := c.parent; p != nil {
			pos, same := 0, 0
			for _, s := range p.kids {
				if s.local == c.local {
					same++
					if s == c {
						pos = same
					}
				}
			}
			if same > 1 {
				name += "[" + strconv.Itoa(pos) + "]"
			}
		}
		parts = append(parts, name)
		if len(parts) > maxDepth {
			break
		}
	}
	var b strings.Builder
	for i := len(parts) - 1; i >= 0; i-- {
		b.WriteByte('/')
		b.WriteString(parts[i])
	}
	return b.String()
}
