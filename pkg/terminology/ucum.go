package terminology

import (
	_ "embed"
	"strings"
)

// UCUM reports whether unit is a valid UCUM expression and returns it in
// canonical form.
//
// Validity follows the grammar of the UCUM specification (§7): terms of
// components joined by "." and "/", an optional leading "/", components
// that are a unit atom with an optional prefix (only on metric atoms) and
// exponent ("m2", "s-1"), an integer factor, an annotation ("{beats}"), a
// unit with an annotation ("mL{total}") or a parenthesised term. Atoms and
// prefixes are those of the UCUM table ("[lb_av]", "mm[Hg]", "[degF]",
// "10*3", "%").
//
// Canonical form: the input itself when it is valid as written, except
// that the liter is written "L" ("mg/dl" -> "mg/dL"). An expression that
// is valid only when read case-insensitively ("G/DL", "mEq/L") is read
// with UCUM's case-insensitive codes, which give every atom and prefix
// one reading, and accepted only when that reading is one of the common
// clinical units of the HL7 value set ucum-common ("g/dL", "meq/L"): a
// reading such as "NA" -> "nA" (nanoampere) or "M/uL" -> "m/uL" (meter
// per microliter) is not what the writer meant, so those are not UCUM.
// Annotations are kept as written.
//
// Syntax only: "K/uL" is valid UCUM (kelvin per microliter) even when a
// lab meant thousands per microliter.
func UCUM(unit string) (canonical string, ok bool) {
	if unit == "" || len(unit) > maxUCUM {
		return "", false
	}
	if canonicalCommon[unit] {
		return unit, true // most units, without parsing
	}
	if out, ok := parseUCUM(unit, false); ok {
		return out, true
	}
	// UCUM's case-insensitive codes are not always the case-sensitive ones
	// in capitals (PAL is Pa): only a reading that differs in case counts.
	if out, ok := parseUCUM(unit, true); ok && commonUnits[out] && len(out) == len(unit) && strings.EqualFold(out, unit) {
		return out, true
	}
	return "", false
}

//go:embed data/ucum-common.txt
var commonUnitsTxt string

// commonUnits holds the codes of the value set ucum-common;
// canonicalCommon those of them that are canonical as written.
var commonUnits, canonicalCommon = map[string]bool{}, map[string]bool{}

// maxUCUM bounds the input: real units are a few dozen bytes.
const maxUCUM = 256

var (
	atomCS, atomCI     = map[string]*ucumAtom{}, map[string]*ucumAtom{}
	prefixCS, prefixCI = map[string]string{}, map[string]string{} // code -> case-sensitive code
)

func init() {
	for line := range strings.SplitSeq(commonUnitsTxt, "\n") {
		if line != "" && line[0] != '#' {
			commonUnits[line] = true
		}
	}
	for i := range ucumAtoms {
		a := &ucumAtoms[i]
		atomCS[a.cs] = a
		if a.ci != "" {
			atomCI[a.ci] = a
		}
	}
	for _, p := range ucumPrefixes {
		prefixCS[p[0]] = p[0]
		prefixCI[p[1]] = p[0]
	}
	for u := range commonUnits {
		if c, ok := parseUCUM(u, false); ok && c == u {
			canonicalCommon[u] = true
		}
	}
}

type ucumParser struct {
	s   string // the input (upper-cased in case-insensitive mode)
	raw string // the input as given, for annotations
	i   int
	ci  bool
	out strings.Builder
}

func parseUCUM(unit string, ci bool) (string, bool) {
	p := &ucumParser{s: unit, raw: unit, ci: ci}
	if ci {
		p.s = strings.ToUpper(unit)
		if len(p.s) != len(unit) {
			return "", false // non-ASCII case mapping changed the length
		}
	}
	if p.peek() == '/' {
		p.out.WriteByte('/')
		p.i++
	}
	if !p.term(0) || p.i != len(p.s) {
		return "", false
	}
	return p.out.String(), true
}

func (p *ucumParser) peek() byte {
	if p.i < len(p.s) {
		return p.s[p.i]
	}
	return 0
}

// term parses component (("." | "/") component)*.
func (p *ucumParser) term(depth int) bool {
	if depth > 8 {
		return false
	}
	if !p.component(depth) {
		return false
	}
	for c := p.peek(); c == '.' || c == '/'; c = p.peek() {
		p.out.WriteByte(c)
		p.i++
		if !p.component(depth) {
			return false
		}
	}
	return true
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func (p *ucumParser) component(depth int) bool {
	switch c := p.peek(); {
	case c == '(':
		p.out.WriteByte('(')
		p.i++
		if !p.term(depth+1) || p.peek() != ')' {
			return false
		}
		p.out.WriteByte(')')
		p.i++
		return true
	case c == '{':
		return p.annotation()
	case isDigit(c):
		start := p.i
		for isDigit(p.peek()) {
			p.i++
		}
		// "10*" and "10^" are atoms; other digits are a factor.
		if p.s[start:p.i] == "10" && (p.peek() == '*' || p.peek() == '^') {
			p.i = start
			break
		}
		p.out.WriteString(p.s[start:p.i])
		return true
	case c == 0:
		return false
	}
	return p.annotatable()
}

// annotatable parses a simple unit, an optional exponent and an optional
// annotation.
func (p *ucumParser) annotatable() bool {
	start := p.i
	if strings.HasPrefix(p.s[p.i:], "10*") || strings.HasPrefix(p.s[p.i:], "10^") {
		p.i += 3
	} else {
		for p.i < len(p.s) {
			c := p.s[p.i]
			if c == '[' {
				end := strings.IndexByte(p.s[p.i:], ']')
				if end < 0 {
					return false
				}
				p.i += end + 1
				continue
			}
			if c == '.' || c == '/' || c == '(' || c == ')' || c == '{' || c == '}' || c == ']' ||
				isDigit(c) || c == '+' || c == '-' || c <= ' ' || c > '~' {
				break
			}
			p.i++
		}
	}
	sym := p.s[start:p.i]
	if sym == "" {
		return false
	}
	code, ok := p.simpleUnit(sym)
	if !ok {
		return false
	}
	p.out.WriteString(code)
	// Exponent: an optional sign and digits.
	if c := p.peek(); c == '+' || c == '-' || isDigit(c) {
		es := p.i
		if c == '+' || c == '-' {
			p.i++
		}
		ds := p.i
		for isDigit(p.peek()) {
			p.i++
		}
		if p.i == ds || p.i-ds > 3 {
			return false
		}
		p.out.WriteString(p.s[es:p.i])
	}
	if p.peek() == '{' {
		return p.annotation()
	}
	return true
}

// simpleUnit resolves an atom, or a prefix and a metric atom, to its
// case-sensitive code. Two readings make it invalid.
func (p *ucumParser) simpleUnit(sym string) (string, bool) {
	atoms, prefixes := atomCS, prefixCS
	if p.ci {
		atoms, prefixes = atomCI, prefixCI
	}
	if a, ok := atoms[sym]; ok {
		return canonicalAtom(a.cs), true
	}
	found := ""
	for n := 1; n <= 3 && n < len(sym); n++ {
		pre, ok := prefixes[sym[:n]]
		if !ok {
			continue
		}
		a, ok := atoms[sym[n:]]
		if !ok || !a.metric {
			continue
		}
		code := pre + canonicalAtom(a.cs)
		if found != "" && found != code {
			return "", false
		}
		found = code
	}
	return found, found != ""
}

// canonicalAtom writes the liter as "L": UCUM defines both "l" and "L".
func canonicalAtom(cs string) string {
	if cs == "l" {
		return "L"
	}
	return cs
}

// annotation parses "{" printable ASCII without braces "}" and writes it as
// given.
func (p *ucumParser) annotation() bool {
	start := p.i
	p.i++ // {
	for p.i < len(p.s) && p.s[p.i] != '}' {
		if c := p.s[p.i]; c < '!' || c > '~' || c == '{' {
			return false
		}
		p.i++
	}
	if p.i == len(p.s) {
		return false
	}
	p.i++ // }
	p.out.WriteString(p.raw[start:p.i])
	return true
}
