package fhirdoc

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/phr-project/phr/pkg/record"
)

// BuildBundle returns the content of a share: a FHIR R4 Bundle of type
// "collection" (ContentTypeFHIR) holding the patient first, then the
// resources of recs in their order.
//
// patient may be the zero Record; then the first Patient among recs, if
// any, takes its place. The vault holds one patient, so every other
// Patient record is left out and every "Patient/..." reference points at
// the bundle's patient.
//
// Every entry gets a fresh "urn:uuid:" fullUrl, and references are
// rewritten to resolve inside the bundle:
//
//   - "Type/id" (relative, absolute, or with "/_history/n") naming an
//     included resource becomes that entry's fullUrl;
//   - a reference to anything not included (a practitioner, another
//     server, an unresolved urn:) loses its "reference" and keeps its
//     "display" (or gets one saying what is not included), so a reader
//     never follows a reference out of the bundle;
//   - references to contained resources ("#id") are kept.
//
// Each resource is normalized as imports are (record.Normalize: published
// names for codes without a display, UCUM units, no placeholder codings),
// so that records stored before those rules read the same, and a
// medicationReference to a Medication of the share gets that medication's
// name as its display. Everything else is kept as stored. Deleted records
// are skipped. It fails if a record's resource is not a FHIR resource.
func BuildBundle(patient record.Record, recs []record.Record) ([]byte, error) {
	b, err := newBundleBuilder(patient, recs)
	if err != nil {
		return nil, err
	}
	b.include(b.pool)
	b.resolve()
	entries := make([]*bundleEntry, 0, len(b.pool)+1)
	if b.patient != nil {
		entries = append(entries, b.patient)
	}
	entries = append(entries, b.pool...)
	return marshalBundle(bundleHeader{Type: "collection"}, entries)
}

// bundleEntry is one resource on its way into a bundle.
type bundleEntry struct {
	fullURL string
	res     map[string]any
	rec     *record.Record // nil for resources made here
}

func (e *bundleEntry) typ() string { s, _ := e.res["resourceType"].(string); return s }

func (e *bundleEntry) key() string {
	id, _ := e.res["id"].(string)
	if id == "" {
		return ""
	}
	return e.typ() + "/" + id
}

// bundleBuilder selects resources and rewrites references between them.
type bundleBuilder struct {
	patient  *bundleEntry
	pool     []*bundleEntry          // every non-patient resource, in input order
	included []*bundleEntry          // what goes into the bundle (besides the patient)
	byKey    map[string]*bundleEntry // "Type/id" -> included entry (first wins)
	inSet    map[*bundleEntry]bool
}

func newBundleBuilder(patient record.Record, recs []record.Record) (*bundleBuilder, error) {
	b := &bundleBuilder{byKey: map[string]*bundleEntry{}, inSet: map[*bundleEntry]bool{}}
	if len(patient.Resource) > 0 {
		e, err := newEntry(&patient)
		if err != nil {
			return nil, err
		}
		if e.typ() != "Patient" {
			return nil, fmt.Errorf("share: the patient record holds a %s, not a Patient", e.typ())
		}
		b.patient = e
	}
	for i := range recs {
		r := &recs[i]
		if r.Deleted || len(r.Resource) == 0 {
			continue
		}
		e, err := newEntry(r)
		if err != nil {
			return nil, err
		}
		if e.typ() == "Patient" {
			if b.patient == nil {
				b.patient = e
			}
			continue // one patient per vault: the others are the same person
		}
		b.pool = append(b.pool, e)
	}
	b.nameMedications()
	return b, nil
}

// nameMedications writes into every medicationReference without a
// display the name of the pool's Medication it points at, before
// references are rewritten.
func (b *bundleBuilder) nameMedications() {
	names := map[string]string{}
	for _, e := range b.pool {
		if e.typ() != "Medication" {
			continue
		}
		if k, name := e.key(), record.Resource(e.res).ConceptText("code"); k != "" && name != "" {
			names[k] = name
		}
	}
	if len(names) == 0 {
		return
	}
	for _, e := range b.pool {
		ref, ok := e.res["medicationReference"].(map[string]any)
		if !ok {
			continue
		}
		if d, _ := ref["display"].(string); d != "" {
			continue
		}
		s, _ := ref["reference"].(string)
		if typ, id, ok := parseReference(s); ok {
			if name, ok := names[typ+"/"+id]; ok {
				ref["display"] = name
			}
		}
	}
}

func newEntry(r *record.Record) (*bundleEntry, error) {
	d := json.NewDecoder(bytes.NewReader(r.Resource))
	d.UseNumber() // keep numbers exactly as stored
	var m map[string]any
	if err := d.Decode(&m); err != nil || m == nil {
		return nil, fmt.Errorf("share: record %s: %w", r.ID, record.ErrNotResource)
	}
	if rt, _ := m["resourceType"].(string); rt == "" {
		return nil, fmt.Errorf("share: record %s: %w: no resourceType", r.ID, record.ErrNotResource)
	}
	record.Normalize(record.Resource(m))
	return &bundleEntry{fullURL: newUUIDURN(), res: m, rec: r}, nil
}

// include adds entries to the bundle.
func (b *bundleBuilder) include(es []*bundleEntry) {
	for _, e := range es {
		if b.inSet[e] {
			continue
		}
		b.inSet[e] = true
		b.included = append(b.included, e)
		if k := e.key(); k != "" {
			if _, dup := b.byKey[k]; !dup {
				b.byKey[k] = e
			}
		}
	}
}

// includeReferenced adds, transitively, every pool resource that an
// included resource references (a MedicationStatement's Medication, a
// DiagnosticReport's Observations).
func (b *bundleBuilder) includeReferenced() {
	poolKeys := map[string]*bundleEntry{}
	for _, e := range b.pool {
		if k := e.key(); k != "" {
			if _, dup := poolKeys[k]; !dup {
				poolKeys[k] = e
			}
		}
	}
	for i := 0; i < len(b.included); i++ { // b.included grows as we go
		walkReferences(b.included[i].res, func(ref map[string]any) {
			s, _ := ref["reference"].(string)
			if typ, id, ok := parseReference(s); ok {
				if t, found := poolKeys[typ+"/"+id]; found && !b.inSet[t] {
					b.include([]*bundleEntry{t})
				}
			}
		})
	}
}

// resolve rewrites the references of the patient and every included
// resource (see BuildBundle).
func (b *bundleBuilder) resolve() {
	fix := func(ref map[string]any) {
		s, _ := ref["reference"].(string)
		if strings.HasPrefix(s, "#") {
			return
		}
		typ, id, ok := parseReference(s)
		if ok {
			if typ == "Patient" && b.patient != nil {
				ref["reference"] = b.patient.fullURL
				return
			}
			if t, found := b.byKey[typ+"/"+id]; found {
				ref["reference"] = t.fullURL
				return
			}
		}
		delete(ref, "reference")
		if d, _ := ref["display"].(string); d == "" && ref["identifier"] == nil {
			if ok {
				ref["display"] = typ + " (not included in this share)"
			} else {
				ref["display"] = "Not included in this share"
			}
		}
	}
	if b.patient != nil {
		walkReferences(b.patient.res, fix)
	}
	for _, e := range b.included {
		walkReferences(e.res, fix)
	}
}

// walkReferences calls fn for every FHIR Reference in v: every object
// with a string "reference".
func walkReferences(v any, fn func(ref map[string]any)) {
	switch v := v.(type) {
	case map[string]any:
		if _, ok := v["reference"].(string); ok {
			fn(v)
		}
		for _, c := range v {
			walkReferences(c, fn)
		}
	case []any:
		for _, c := range v {
			walkReferences(c, fn)
		}
	}
}

// parseReference splits a literal reference ("Type/id", a URL ending in
// it, optionally with "/_history/n") into type and id.
func parseReference(ref string) (typ, id string, ok bool) {
	if ref == "" || strings.ContainsAny(ref, "?#") || strings.HasPrefix(ref, "urn:") {
		return "", "", false
	}
	if i := strings.Index(ref, "/_history/"); i >= 0 {
		ref = ref[:i]
	}
	parts := strings.Split(ref, "/")
	if len(parts) < 2 {
		return "", "", false
	}
	typ, id = parts[len(parts)-2], parts[len(parts)-1]
	if typ == "" || id == "" || typ[0] < 'A' || typ[0] > 'Z' {
		return "", "", false
	}
	return typ, id, true
}

type bundleHeader struct {
	Type       string
	Timestamp  string
	Identifier string // urn:uuid, for documents
}

// marshalBundle writes the Bundle with resourceType first in every
// resource and without HTML escaping (the JSON is never embedded in HTML).
func marshalBundle(h bundleHeader, entries []*bundleEntry) ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteString(`{"resourceType":"Bundle","id":`)
	writeJSON(&buf, strings.TrimPrefix(newUUIDURN(), "urn:uuid:"))
	if h.Identifier != "" {
		buf.WriteString(`,"identifier":{"system":"urn:ietf:rfc:3986","value":`)
		writeJSON(&buf, h.Identifier)
		buf.WriteString(`}`)
	}
	buf.WriteString(`,"type":`)
	writeJSON(&buf, h.Type)
	if h.Timestamp != "" {
		buf.WriteString(`,"timestamp":`)
		writeJSON(&buf, h.Timestamp)
	}
	buf.WriteString(`,"entry":[`)
	for i, e := range entries {
		if i > 0 {
			buf.WriteByte(',')
		}
		buf.WriteString(`{"fullUrl":`)
		writeJSON(&buf, e.fullURL)
		buf.WriteString(`,"resource":`)
		if err := writeResource(&buf, e.res); err != nil {
			return nil, err
		}
		buf.WriteByte('}')
	}
	buf.WriteString("]}")
	return buf.Bytes(), nil
}

func writeJSON(buf *bytes.Buffer, v any) error {
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return err
	}
	buf.Truncate(buf.Len() - 1) // Encode's newline
	return nil
}

// writeResource writes res with "resourceType" first, then the other
// members in sorted order.
func writeResource(buf *bytes.Buffer, res map[string]any) error {
	rt := res["resourceType"]
	delete(res, "resourceType")
	defer func() { res["resourceType"] = rt }()
	buf.WriteString(`{"resourceType":`)
	if err := writeJSON(buf, rt); err != nil {
		return err
	}
	start := buf.Len()
	if err := writeJSON(buf, res); err != nil {
		return err
	}
	rest := buf.Bytes()[start:]
	if len(rest) == 2 { // {}
		buf.Truncate(start)
		buf.WriteByte('}')
		return nil
	}
	rest[0] = ',' // {"a":... -> ,"a":...
	return nil
}

// newUUIDURN returns "urn:uuid:" and a random (version 4) UUID.
func newUUIDURN() string {
	var u [16]byte
	rand.Read(u[:])
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	return fmt.Sprintf("urn:uuid:%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}
