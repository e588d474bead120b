package record

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/phr-project/phr/pkg/terminology"
)

// Resource is a parsed FHIR resource: a JSON object, read with path helpers.
// It is for reading facts out of resources of any type, including ones phr
// has no model for.
type Resource map[string]any

// ErrNotResource reports JSON that is not a FHIR resource.
var ErrNotResource = errors.New("not a FHIR resource")

// Parse decodes a FHIR resource. It fails if data is not a JSON object with
// a string resourceType.
func Parse(data []byte) (Resource, error) {
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotResource, err)
	}
	if m == nil {
		return nil, fmt.Errorf("%w: null", ErrNotResource)
	}
	rt, _ := m["resourceType"].(string)
	if rt == "" {
		return nil, fmt.Errorf("%w: no resourceType", ErrNotResource)
	}
	return Resource(m), nil
}

// Type returns the resourceType.
func (r Resource) Type() string { s, _ := r["resourceType"].(string); return s }

// ID returns the resource's id.
func (r Resource) ID() string { return r.Str("id") }

// Get walks a dotted path ("code.coding.0.display"); numeric parts index
// arrays, and a non-numeric part applied to an array takes its first
// element's field. It returns nil when the path does not exist.
func (r Resource) Get(path string) any {
	var cur any = map[string]any(r)
	for part := range strings.SplitSeq(path, ".") {
		switch v := cur.(type) {
		case map[string]any:
			cur = v[part]
		case []any:
			if i, err := strconv.Atoi(part); err == nil {
				if i < 0 || i >= len(v) {
					return nil
				}
				cur = v[i]
				continue
			}
			if len(v) == 0 {
				return nil
			}
			m, ok := v[0].(map[string]any)
			if !ok {
				return nil
			}
			cur = m[part]
		default:
			return nil
		}
		if cur == nil {
			return nil
		}
	}
	return cur
}

// Str returns the string at path, or "".
func (r Resource) Str(path string) string {
	switch v := r.Get(path).(type) {
	case string:
		return v
	case json.Number:
		return v.String()
	case bool:
		return strconv.FormatBool(v)
	}
	return ""
}

// List returns the array at path, or nil.
func (r Resource) List(path string) []any {
	v, _ := r.Get(path).([]any)
	return v
}

// Codings returns the codings of the CodeableConcept at path.
func (r Resource) Codings(path string) []Coding {
	var out []Coding
	for _, c := range r.List(path + ".coding") {
		m, ok := c.(map[string]any)
		if !ok {
			continue
		}
		s, _ := m["system"].(string)
		code, _ := m["code"].(string)
		disp, _ := m["display"].(string)
		out = append(out, Coding{System: s, Code: code, Display: disp})
	}
	return out
}

// HasCoding reports whether any CodeableConcept in the array or object at
// path has a coding with system and code.
func (r Resource) HasCoding(path, system, code string) bool {
	v := r.Get(path)
	var concepts []any
	switch v := v.(type) {
	case []any:
		concepts = v
	case map[string]any:
		concepts = []any{v}
	}
	for _, c := range concepts {
		cm, ok := c.(map[string]any)
		if !ok {
			continue
		}
		codings, _ := cm["coding"].([]any)
		for _, cd := range codings {
			m, ok := cd.(map[string]any)
			if !ok {
				continue
			}
			if m["system"] == system && m["code"] == code {
				return true
			}
		}
	}
	return false
}

// ConceptText returns the best human text for the CodeableConcept at path:
// its text, else the first coding display, else the published name of the
// first code the terminology knows, else the first code.
func (r Resource) ConceptText(path string) string {
	if t := r.Str(path + ".text"); t != "" {
		return t
	}
	cs := r.Codings(path)
	for _, c := range cs {
		if c.Display != "" {
			return c.Display
		}
	}
	for _, c := range cs {
		if name, ok := terminology.Display(c.System, c.Code); ok {
			return name
		}
	}
	for _, c := range cs {
		if c.Code != "" {
			return c.Code
		}
	}
	return ""
}

// ParseDate parses a FHIR date, dateTime or instant ("2020", "2020-05",
// "2020-05-01", "2020-05-01T10:00:00+02:00", with or without seconds and
// fractions). Partial dates take the first instant they cover, in UTC.
func ParseDate(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	layouts := []string{
		time.RFC3339Nano,
		"2006-01-02T15:04:05Z07:00",
		"2006-01-02T15:04Z07:00",
		"2006-01-02T15:04:05",
		"2006-01-02T15:04",
		"2006-01-02",
		"2006-01",
		"2006",
	}
	for _, l := range layouts {
		if t, err := time.Parse(l, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, errors.New("not a FHIR date (want YYYY, YYYY-MM, YYYY-MM-DD or a dateTime)")
}

// Coding is a FHIR Coding.
type Coding struct {
	System  string `json:"system,omitempty"`
	Code    string `json:"code,omitempty"`
	Display string `json:"display,omitempty"`
}
