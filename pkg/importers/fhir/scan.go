package fhir

import (
	"encoding/json"
	"fmt"
	"unicode/utf8"
)

// member is a top-level member of a resource: its name and the first byte
// of its value ('{', '[', '"', 't', 'f', 'n' or a number's first byte).
type member struct {
	key  string
	kind byte
}

// span locates a string value inside a compact resource: the byte range of
// the JSON string including its quotes, and the decoded value.
type span struct {
	start, end int
	val        string
}

// resInfo is what phr needs to know about one resource before it is
// emitted: found by a single pass over its compact JSON.
type resInfo struct {
	typ         string // resourceType
	id          string // id, if a string
	hasID       bool   // an "id" member exists (of any JSON type)
	source      string // meta.source, if a string
	fhirVersion string // fhirVersion (CapabilityStatement)
	members     []member
	refs        []span // every "reference": "<string>" at any depth
	// afterType is the offset just after the "resourceType" member when it
	// is the first member, else 1 (just after the opening brace): where an
	// assigned id is inserted.
	afterType int
}

func (ri *resInfo) has(key string) (byte, bool) {
	for _, m := range ri.members {
		if m.key == key {
			return m.kind, true
		}
	}
	return 0, false
}

// scanner walks compact JSON (no insignificant whitespace), as produced by
// json.Compact. It is not a validator: it relies on its input being valid,
// compact JSON, but it never reads out of bounds and reports malformed input
// as an error rather than panicking.
type scanner struct {
	b    []byte
	i    int
	info *resInfo
}

type scanCtx int

const (
	ctxOther scanCtx = iota
	ctxTop
	ctxMeta
)

// scanResource reads the facts of resInfo out of one compact resource.
// On error the info is nil, except for an object without resourceType.
func scanResource(b []byte) (*resInfo, error) {
	info := &resInfo{afterType: 1}
	if len(b) == 0 || b[0] != '{' {
		return nil, fmt.Errorf("%w: not a JSON object", ErrNotResource)
	}
	s := scanner{b: b, info: info}
	if err := s.object(1, ctxTop); err != nil {
		return nil, err
	}
	if s.i != len(b) {
		return nil, errMalformed
	}
	if info.typ == "" {
		// The members are returned too: the caller may recognize other
		// JSON (a bulk export log entry).
		return info, fmt.Errorf("%w: no resourceType", ErrNotResource)
	}
	return info, nil
}

var (
	errMalformed = fmt.Errorf("%w: malformed", ErrInvalidJSON)
	errTooDeep   = fmt.Errorf("%w: JSON nested more than %d levels", ErrTooDeep, MaxJSONDepth)
)

func (s *scanner) peek() (byte, error) {
	if s.i >= len(s.b) {
		return 0, errMalformed
	}
	return s.b[s.i], nil
}

func (s *scanner) expect(c byte) error {
	if s.i >= len(s.b) || s.b[s.i] != c {
		return errMalformed
	}
	s.i++
	return nil
}

func (s *scanner) value(depth int, ctx scanCtx) error {
	c, err := s.peek()
	if err != nil {
		return err
	}
	switch c {
	case '{':
		return s.object(depth+1, ctx)
	case '[':
		return s.array(depth + 1)
	case '"':
		_, err := s.str()
		return err
	default:
		return s.literal()
	}
}

func (s *scanner) array(depth int) error {
	if depth > MaxJSONDepth {
		return errTooDeep
	}
	s.i++ // '['
	if c, err := s.peek(); err != nil {
		return err
	} else if c == ']' {
		s.i++
		return nil
	}
	for {
		if err := s.value(depth, ctxOther); err != nil {
			return err
		}
		if more, err := s.more(']'); !more {
			return err
		}
	}
}

// more reads what follows a member of an array or object: a comma, for
// another member (true), or its closing byte (false, nil).
func (s *scanner) more(closing byte) (bool, error) {
	c, err := s.peek()
	if err != nil {
		return false, err
	}
	s.i++
	switch c {
	case ',':
		return true, nil
	case closing:
		return false, nil
	}
	return false, errMalformed
}

func (s *scanner) object(depth int, ctx scanCtx) error {
	if depth > MaxJSONDepth {
		return errTooDeep
	}
	if err := s.expect('{'); err != nil {
		return err
	}
	if c, err := s.peek(); err != nil {
		return err
	} else if c == '}' {
		s.i++
		return nil
	}
	for first := true; ; first = false {
		key, err := s.str()
		if err != nil {
			return err
		}
		if err := s.expect(':'); err != nil {
			return err
		}
		vstart := s.i
		c, err := s.peek()
		if err != nil {
			return err
		}
		handled := false
		switch {
		case ctx == ctxTop:
			s.info.members = append(s.info.members, member{key, c})
			switch key {
			case "resourceType", "id", "fhirVersion":
				if c != '"' {
					if key == "id" {
						s.info.hasID = true
					}
					break
				}
				v, err := s.str()
				if err != nil {
					return err
				}
				handled = true
				switch key {
				case "resourceType":
					s.info.typ = v
					if first {
						s.info.afterType = s.i
					}
				case "id":
					s.info.id, s.info.hasID = v, true
				case "fhirVersion":
					s.info.fhirVersion = v
				}
			case "meta":
				if c == '{' {
					if err := s.object(depth+1, ctxMeta); err != nil {
						return err
					}
					handled = true
				}
			}
		case ctx == ctxMeta && key == "source" && c == '"':
			v, err := s.str()
			if err != nil {
				return err
			}
			s.info.source = v
			handled = true
		}
		if !handled && key == "reference" && c == '"' {
			v, err := s.str()
			if err != nil {
				return err
			}
			s.info.refs = append(s.info.refs, span{vstart, s.i, v})
			handled = true
		}
		if !handled {
			if err := s.value(depth, ctxOther); err != nil {
				return err
			}
		}
		if more, err := s.more('}'); !more {
			return err
		}
	}
}

// str reads a JSON string at s.i and returns its decoded value.
func (s *scanner) str() (string, error) {
	if err := s.expect('"'); err != nil {
		return "", err
	}
	start := s.i - 1
	escaped := false
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case '\\':
			escaped = true
			s.i += 2
			continue
		case '"':
			s.i++
			if raw := s.b[start+1 : s.i-1]; !escaped && utf8.Valid(raw) {
				return string(raw), nil
			}
			// Escapes, or bytes that are not UTF-8 (which encoding/json
			// turns into U+FFFD, as the stored resource will have them).
			var v string
			if err := json.Unmarshal(s.b[start:s.i], &v); err != nil {
				return "", errMalformed
			}
			return v, nil
		}
		s.i++
	}
	return "", errMalformed
}

// literal skips a number, true, false or null.
func (s *scanner) literal() error {
	j := s.i
	for j < len(s.b) {
		c := s.b[j]
		if c == ',' || c == '}' || c == ']' {
			break
		}
		j++
	}
	if j == s.i {
		return errMalformed
	}
	s.i = j
	return nil
}
