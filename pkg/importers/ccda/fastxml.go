package ccda

import (
	"encoding/xml"
	"strconv"
	"strings"
	"unicode/utf8"
)

// fastParse builds the tree parseStd would build, for the documents C-CDA
// exports are made of: UTF-8, ASCII names, the five predefined entities
// and character references, comments, processing instructions and CDATA.
// It reads the document as one string and hands out substrings of it, so
// names, attribute values and most text cost no allocation; encoding/xml
// copies every token.
//
// It gives up (ok false) on anything outside that subset and on every
// error, and parse then runs parseStd, which decides: it is the reference,
// gives the error its wording and position, and handles other charsets,
// DTDs and Unicode names. FuzzFastParse checks that the two agree.
func fastParse(data []byte, lim parseLimits) (root *node, ids map[string]*node, ok bool) {
	if !plainUTF8(data) {
		return nil, nil, false
	}
	p := fastParser{s: string(data), lim: lim, line: 1}
	p.ns = map[string]string{}
	p.ids = make(map[string]*node)
	if !p.run() {
		return nil, nil, false
	}
	return p.root, p.ids, true
}

// plainUTF8 reports whether data is valid UTF-8 without the characters
// XML forbids (controls other than tab, newline and carriage return;
// U+FFFE and U+FFFF). Surrogates are not valid UTF-8.
func plainUTF8(data []byte) bool {
	if !utf8.Valid(data) {
		return false
	}
	for i, c := range data {
		switch {
		case c < 0x20 && c != '\t' && c != '\n' && c != '\r':
			return false
		case c == 0xEF && i+2 < len(data) && data[i+1] == 0xBF && (data[i+2] == 0xBE || data[i+2] == 0xBF):
			return false
		}
	}
	return true
}

type fastParser struct {
	s   string
	i   int
	lim parseLimits

	// line is the 1-based line of lineAt.
	line, lineAt int

	root  *node
	ids   map[string]*node
	stack []*node
	names []string // raw qualified names of the open elements
	count int

	// ns maps prefixes ("" for the default) to namespace URIs; undo
	// records what each element's declarations replaced.
	ns   map[string]string
	undo []nsUndo

	// pending holds the children of each open element until it closes;
	// then they move to one exact-size piece of kidSlab.
	pending [][]*node
	kidSlab []*node

	slab  []node
	attrs []xml.Attr
	buf   []byte
}

type nsUndo struct {
	depth  int // len(stack) of the element that declared it
	prefix string
	old    string
	had    bool
}

const xmlNamespace = "http://www.w3.org/XML/1998/namespace"

func (p *fastParser) run() bool {
	s := p.s
	for p.i < len(s) {
		if s[p.i] != '<' {
			j := strings.IndexByte(s[p.i:], '<')
			if j < 0 {
				j = len(s) - p.i
			}
			raw := s[p.i : p.i+j]
			if strings.Contains(raw, "]]>") {
				return false
			}
			text, ok := p.decode(raw, true)
			if !ok || !p.charData(text) {
				return false
			}
			p.i += j
			continue
		}
		rest := s[p.i:]
		switch {
		case strings.HasPrefix(rest, "<!--"):
			// encoding/xml ends a comment at the first "--", which must
			// be followed by ">".
			k := strings.Index(rest[4:], "--")
			if k < 0 || 4+k+2 >= len(rest) || rest[4+k+2] != '>' {
				return false
			}
			p.i += 4 + k + 3
		case strings.HasPrefix(rest, "<![CDATA["):
			k := strings.Index(rest[9:], "]]>")
			if k < 0 {
				return false
			}
			text, _ := p.decode(rest[9:9+k], false)
			if !p.charData(text) {
				return false
			}
			p.i += 9 + k + 3
		case strings.HasPrefix(rest, "<!"):
			return false // a DTD or other declaration: parseStd refuses it
		case strings.HasPrefix(rest, "<?"):
			if !p.procInst() {
				return false
			}
		case strings.HasPrefix(rest, "</"):
			if !p.end() {
				return false
			}
		default:
			if !p.start() {
				return false
			}
		}
	}
	return p.root != nil && len(p.stack) == 0
}

// charData adds a run of text, as parseStd does with a CharData token.
func (p *fastParser) charData(text string) bool {
	blank := isBlank(text)
	if len(p.stack) == 0 {
		return blank
	}
	kids := &p.pending[len(p.stack)-1]
	if blank {
		if len(*kids) == 0 || (*kids)[len(*kids)-1] != spaceNode {
			*kids = append(*kids, spaceNode)
		}
		return true
	}
	n := p.newNode()
	n.text = text
	*kids = append(*kids, n)
	return true
}

// isBlank is len(bytes.TrimSpace(text)) == 0.
func isBlank(text string) bool {
	for i := 0; i < len(text); i++ {
		switch c := text[i]; {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f':
		case c >= utf8.RuneSelf:
			return strings.TrimSpace(text[i:]) == ""
		default:
			return false
		}
	}
	return true
}

// decode resolves entities (if entities) and turns CR LF and lone CR into
// LF, as encoding/xml does. ok is false for an entity it does not know.
func (p *fastParser) decode(raw string, entities bool) (string, bool) {
	if !strings.ContainsRune(raw, '\r') && (!entities || !strings.ContainsRune(raw, '&')) {
		return raw, true
	}
	b := p.buf[:0]
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		switch {
		case c == '\r':
			b = append(b, '\n')
		case c == '\n' && i > 0 && raw[i-1] == '\r':
		case c == '&' && entities:
			k := strings.IndexByte(raw[i:], ';')
			if k < 0 {
				return "", false
			}
			r, ok := entity(raw[i+1 : i+k])
			if !ok {
				return "", false
			}
			b = utf8.AppendRune(b, r)
			i += k
		default:
			b = append(b, c)
		}
	}
	p.buf = b
	return string(b), true
}

// entity resolves the name between & and ;.
func entity(name string) (rune, bool) {
	switch name {
	case "lt":
		return '<', true
	case "gt":
		return '>', true
	case "amp":
		return '&', true
	case "apos":
		return '\'', true
	case "quot":
		return '"', true
	}
	if len(name) < 2 || name[0] != '#' {
		return 0, false
	}
	digits, base := name[1:], 10
	if digits[0] == 'x' {
		digits, base = digits[1:], 16
	}
	if digits == "" || len(digits) > 8 {
		return 0, false
	}
	for i := 0; i < len(digits); i++ {
		c := digits[i]
		if !('0' <= c && c <= '9' || base == 16 && ('a' <= c && c <= 'f' || 'A' <= c && c <= 'F')) {
			return 0, false
		}
	}
	n, err := strconv.ParseUint(digits, base, 32)
	if err != nil {
		return 0, false
	}
	r := rune(n)
	if !(r == 0x09 || r == 0x0A || r == 0x0D || r >= 0x20 && r <= 0xD7FF || r >= 0xE000 && r <= 0xFFFD || r >= 0x10000 && r <= 0x10FFFF) {
		return 0, false
	}
	return r, true
}

// name reads an XML name of ASCII letters, digits, '_', '-', '.' and at
// most one ':' between two non-empty parts. ok is false for anything
// else, including names with other characters.
func (p *fastParser) name() (prefix, local, raw string, ok bool) {
	s, start := p.s, p.i
	i := start
	for i < len(s) && isNameByte(s[i]) {
		i++
	}
	if i == start || i < len(s) && s[i] >= utf8.RuneSelf {
		return "", "", "", false
	}
	raw = s[start:i]
	if c := raw[0]; !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_') {
		return "", "", "", false
	}
	prefix, local, found := strings.Cut(raw, ":")
	if found {
		if local == "" || strings.IndexByte(local, ':') >= 0 {
			return "", "", "", false
		}
		if c := local[0]; !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_') {
			return "", "", "", false
		}
	} else {
		prefix, local = "", raw
	}
	p.i = i
	return prefix, local, raw, true
}

func isNameByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == ':' || c == '.' || c == '-'
}

func (p *fastParser) space() {
	for p.i < len(p.s) {
		switch p.s[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// procInst skips <?target ...?>. An XML declaration must say version 1.0
// (or nothing) and UTF-8 (or nothing); other encodings go to parseStd.
func (p *fastParser) procInst() bool {
	p.i += 2
	_, _, target, ok := p.name()
	if !ok {
		return false
	}
	p.space()
	k := strings.Index(p.s[p.i:], "?>")
	if k < 0 {
		return false
	}
	content := p.s[p.i : p.i+k]
	p.i += k + 2
	if target == "xml" {
		if v := declParam("version", content); v != "" && v != "1.0" {
			return false
		}
		if e := declParam("encoding", content); e != "" && !strings.EqualFold(e, "utf-8") {
			return false
		}
	}
	return true
}

// declParam finds param="value" (or '...') in an XML declaration the way
// encoding/xml does: the first occurrence of param= followed by a quote.
func declParam(param, s string) string {
	param += "="
	for i := 0; i < len(s); {
		k := strings.Index(s[i:], param)
		if k < 0 || i+k+len(param) >= len(s) {
			return ""
		}
		q := s[i+k+len(param)]
		i += k + len(param) + 1
		if q == '"' || q == '\'' {
			j := strings.IndexByte(s[i:], q)
			if j < 0 {
				return ""
			}
			return s[i : i+j]
		}
	}
	return ""
}

func (p *fastParser) newNode() *node {
	if len(p.slab) == 0 {
		p.slab = make([]node, 256)
	}
	n := &p.slab[0]
	p.slab = p.slab[1:]
	return n
}

func (p *fastParser) start() bool {
	if len(p.stack) == 0 && p.root != nil {
		return false
	}
	if len(p.stack) >= p.lim.depth {
		return false
	}
	p.count++
	if p.count > p.lim.elements {
		return false
	}
	p.i++
	prefix, local, raw, ok := p.name()
	if !ok {
		return false
	}
	first := len(p.attrs)
	type qual struct{ prefix, local string }
	var quals [16]qual
	qs := quals[:0]
	empty := false
	for {
		p.space()
		if p.i >= len(p.s) {
			return false
		}
		c := p.s[p.i]
		if c == '/' {
			if p.i+1 >= len(p.s) || p.s[p.i+1] != '>' {
				return false
			}
			p.i += 2
			empty = true
			break
		}
		if c == '>' {
			p.i++
			break
		}
		ap, al, _, ok := p.name()
		if !ok {
			return false
		}
		if !p.after('=') {
			return false
		}
		p.space()
		if p.i >= len(p.s) {
			return false
		}
		q := p.s[p.i]
		if q != '"' && q != '\'' {
			return false
		}
		k := strings.IndexByte(p.s[p.i+1:], q)
		if k < 0 {
			return false
		}
		rawVal := p.s[p.i+1 : p.i+1+k]
		if strings.IndexByte(rawVal, '<') >= 0 {
			return false
		}
		val, ok := p.decode(rawVal, true)
		if !ok {
			return false
		}
		p.i += k + 2
		qs = append(qs, qual{ap, al})
		if len(p.attrs) == cap(p.attrs) {
			// A new block; the nodes keep the old one.
			n := len(p.attrs) - first
			block := make([]xml.Attr, n, max(2*n, 1024))
			copy(block, p.attrs[first:])
			p.attrs, first = block, 0
		}
		p.attrs = append(p.attrs, xml.Attr{Value: val})
	}
	attrs := p.attrs[first:len(p.attrs):len(p.attrs)]
	depth := len(p.stack) + 1
	// Declarations first, then names, as encoding/xml's Token does.
	for i, q := range qs {
		switch {
		case q.prefix == "xmlns":
			p.declare(depth, q.local, attrs[i].Value)
		case q.prefix == "" && q.local == "xmlns":
			p.declare(depth, "", attrs[i].Value)
		}
	}
	for i, q := range qs {
		attrs[i].Name = xml.Name{Space: p.attrSpace(q.prefix), Local: q.local}
	}
	if len(attrs) == 0 {
		attrs = nil
	}

	p.line += strings.Count(p.s[p.lineAt:p.i], "\n")
	p.lineAt = p.i
	n := p.newNode()
	n.space, n.local, n.attrs, n.line = p.elemSpace(prefix, local), local, attrs, p.line
	if len(p.stack) > 0 {
		n.parent = p.stack[len(p.stack)-1]
		p.pending[len(p.stack)-1] = append(p.pending[len(p.stack)-1], n)
	} else {
		p.root = n
	}
	for _, a := range attrs {
		if a.Name.Local == "ID" && a.Value != "" {
			if _, dup := p.ids[a.Value]; !dup {
				p.ids[a.Value] = n
			}
		}
	}
	if empty {
		p.closeScope(depth)
		return true
	}
	p.stack = append(p.stack, n)
	p.names = append(p.names, raw)
	if len(p.pending) < len(p.stack) {
		p.pending = append(p.pending, nil)
	}
	return true
}

func (p *fastParser) declare(depth int, prefix, uri string) {
	old, had := p.ns[prefix]
	p.undo = append(p.undo, nsUndo{depth: depth, prefix: prefix, old: old, had: had})
	p.ns[prefix] = uri
}

// closeScope undoes the declarations of the element at depth.
func (p *fastParser) closeScope(depth int) {
	for len(p.undo) > 0 && p.undo[len(p.undo)-1].depth == depth {
		u := p.undo[len(p.undo)-1]
		p.undo = p.undo[:len(p.undo)-1]
		if u.had {
			p.ns[u.prefix] = u.old
		} else {
			delete(p.ns, u.prefix)
		}
	}
}

func (p *fastParser) elemSpace(prefix, local string) string {
	if prefix == "xmlns" || prefix == "" && local == "xmlns" {
		return prefix
	}
	return p.nsOf(prefix)
}

func (p *fastParser) attrSpace(prefix string) string {
	if prefix == "xmlns" || prefix == "" {
		return prefix
	}
	return p.nsOf(prefix)
}

// nsOf is the namespace prefix is bound to (the prefix itself when it is
// bound to none).
func (p *fastParser) nsOf(prefix string) string {
	if prefix == "xml" {
		return xmlNamespace
	}
	if uri, ok := p.ns[prefix]; ok {
		return uri
	}
	return prefix
}

// after skips white space and then the byte c, and reports whether c
// was there.
func (p *fastParser) after(c byte) bool {
	p.space()
	if p.i >= len(p.s) || p.s[p.i] != c {
		return false
	}
	p.i++
	return true
}

func (p *fastParser) end() bool {
	p.i += 2
	_, _, raw, ok := p.name()
	if !ok {
		return false
	}
	if !p.after('>') {
		return false
	}
	if len(p.stack) == 0 || p.names[len(p.names)-1] != raw {
		return false
	}
	p.closeScope(len(p.stack))
	top, kids := p.stack[len(p.stack)-1], p.pending[len(p.stack)-1]
	if len(kids) > 0 {
		if len(p.kidSlab) < len(kids) {
			p.kidSlab = make([]*node, max(len(kids), 2048))
		}
		top.kids = p.kidSlab[:len(kids):len(kids)]
		p.kidSlab = p.kidSlab[len(kids):]
		copy(top.kids, kids)
		clear(kids)
		p.pending[len(p.stack)-1] = kids[:0]
	}
	p.stack = p.stack[:len(p.stack)-1]
	p.names = p.names[:len(p.names)-1]
	return true
}
