package ccda

import (
	"bytes"
	"encoding/json"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/phr-project/phr/pkg/record"
)

// obj is a JSON object that keeps its keys in the order they were set, so
// that resources read like FHIR's own examples (resourceType first) and the
// same input always gives the same bytes.
type obj struct {
	keys []string
	vals []any
}

func newObj(kv ...any) *obj {
	o := &obj{}
	for i := 0; i+1 < len(kv); i += 2 {
		o.set(kv[i].(string), kv[i+1])
	}
	return o
}

// set adds or replaces key. Empty values (nil, "", empty objects and
// arrays) are not set: a missing field is better than an empty one.
func (o *obj) set(key string, v any) *obj {
	if empty(v) {
		return o
	}
	for i, k := range o.keys {
		if k == key {
			o.vals[i] = v
			return o
		}
	}
	o.keys = append(o.keys, key)
	o.vals = append(o.vals, v)
	return o
}

// setID sets "id" right after "resourceType" (the first key), where FHIR
// writes it.
func (o *obj) setID(id string) {
	for i, k := range o.keys {
		if k == "id" {
			o.vals[i] = id
			return
		}
	}
	at := min(1, len(o.keys))
	o.keys = slices.Insert(o.keys, at, "id")
	o.vals = slices.Insert(o.vals, at, any(id))
}

func (o *obj) get(key string) any {
	if o == nil {
		return nil
	}
	for i, k := range o.keys {
		if k == key {
			return o.vals[i]
		}
	}
	return nil
}

func (o *obj) str(key string) string { s, _ := o.get(key).(string); return s }

func (o *obj) has(key string) bool { return o.get(key) != nil }

func empty(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case string:
		return x == ""
	case safeString:
		return x == ""
	case *obj:
		return x == nil || len(x.keys) == 0
	case []any:
		return len(x) == 0
	case []*obj:
		return len(x) == 0
	case json.Number:
		return x == ""
	}
	return false
}

// safeString is a string known to need no escaping in JSON (base64), so
// that writeJSON copies it without looking at each byte.
type safeString string

// list makes a JSON array of the non-empty values.
func list(vs ...any) []any {
	var out []any
	for _, v := range vs {
		if !empty(v) {
			out = append(out, v)
		}
	}
	return out
}

func (o *obj) marshal() []byte {
	var b bytes.Buffer
	b.Grow(sizeHint(o) + 64)
	writeJSON(&b, o)
	return b.Bytes()
}

// writeArray writes the elements of xs that are not empty as a JSON array.
func writeArray[T any](b *bytes.Buffer, xs []T) {
	b.WriteByte('[')
	first := true
	for _, e := range xs {
		if empty(e) {
			continue
		}
		if !first {
			b.WriteByte(',')
		}
		first = false
		writeJSON(b, e)
	}
	b.WriteByte(']')
}

func writeJSON(b *bytes.Buffer, v any) {
	switch x := v.(type) {
	case *obj:
		b.WriteByte('{')
		first := true
		for i, k := range x.keys {
			if empty(x.vals[i]) {
				continue
			}
			if !first {
				b.WriteByte(',')
			}
			first = false
			writeString(b, k)
			b.WriteByte(':')
			writeJSON(b, x.vals[i])
		}
		b.WriteByte('}')
	case []any:
		writeArray(b, x)
	case []*obj:
		writeArray(b, x)
	case string:
		writeString(b, x)
	case safeString:
		b.WriteByte('"')
		b.WriteString(string(x))
		b.WriteByte('"')
	case json.Number:
		b.WriteString(string(x))
	case bool:
		b.WriteString(strconv.FormatBool(x))
	case int:
		b.WriteString(strconv.Itoa(x))
	case int64:
		b.WriteString(strconv.FormatInt(x, 10))
	case float64:
		b.WriteString(strconv.FormatFloat(x, 'f', -1, 64))
	default:
		b.WriteString("null")
	}
}

// resource returns o as record.Parse would decode o.marshal(): objects
// as maps, arrays as []any, numbers as json.Number. Strings are shared,
// not copied, so an embedded document costs nothing here.
func (o *obj) resource() record.Resource {
	return record.Resource(parsed(o).(map[string]any))
}

func parsed(v any) any {
	switch x := v.(type) {
	case *obj:
		m := make(map[string]any, len(x.keys))
		for i, k := range x.keys {
			if !empty(x.vals[i]) {
				m[k] = parsed(x.vals[i])
			}
		}
		return m
	case []any:
		out := make([]any, 0, len(x))
		for _, e := range x {
			if !empty(e) {
				out = append(out, parsed(e))
			}
		}
		return out
	case []*obj:
		out := make([]any, 0, len(x))
		for _, e := range x {
			if !empty(e) {
				out = append(out, parsed(e))
			}
		}
		return out
	case string:
		return x
	case safeString:
		return string(x)
	case json.Number:
		return x
	case bool:
		return x
	case int:
		return json.Number(strconv.Itoa(x))
	case int64:
		return json.Number(strconv.FormatInt(x, 10))
	case float64:
		return json.Number(strconv.FormatFloat(x, 'f', -1, 64))
	}
	return nil
}

// sizeHint is about the length of v's JSON, a little less when strings
// need escaping.
func sizeHint(v any) int {
	switch x := v.(type) {
	case *obj:
		n := 2
		for i, k := range x.keys {
			n += len(k) + 4 + sizeHint(x.vals[i])
		}
		return n
	case []any:
		n := 2
		for _, e := range x {
			n += 1 + sizeHint(e)
		}
		return n
	case []*obj:
		n := 2
		for _, e := range x {
			n += 1 + sizeHint(e)
		}
		return n
	case string:
		return len(x) + 2
	case safeString:
		return len(x) + 2
	case json.Number:
		return len(x)
	}
	return 8
}

const hexDigits = "0123456789abcdef"

func writeString(b *bytes.Buffer, s string) {
	b.WriteByte('"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b.WriteString(s[start:i])
			switch c {
			case '"':
				b.WriteString(`\"`)
			case '\\':
				b.WriteString(`\\`)
			case '\n':
				b.WriteString(`\n`)
			case '\r':
				b.WriteString(`\r`)
			case '\t':
				b.WriteString(`\t`)
			default:
				b.WriteString(`\u00`)
				b.WriteByte(hexDigits[c>>4])
				b.WriteByte(hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b.WriteString(s[start:i])
			b.WriteString(`\ufffd`)
			i++
			start = i
			continue
		}
		i += size
	}
	b.WriteString(s[start:])
	b.WriteByte('"')
}
