package record

import (
	"slices"
	"strconv"
	"strings"
)

// Grouping: the same fact from several sources, one line.
//
// Two records are one fact when they are of the same kind, name the same
// thing by code (a shared system and code in their main concept; by
// their words only when either has no code), happened on the same day as
// written, and, for measurements, have the same value. A group never
// holds two records of one source: a source that says a thing twice (two
// doses on one day) means two events.

// Group is records that say the same thing, from one or more sources.
type Group struct {
	Kind    string   `json:"type"`
	Display string   `json:"display"`
	Date    string   `json:"date"`
	Sources []string `json:"sources"`
	IDs     []string `json:"ids"`
}

// mainConcept is where each resource type names what it is about.
var mainConcept = map[string]string{
	"MedicationStatement": "medicationCodeableConcept", "MedicationRequest": "medicationCodeableConcept",
	"MedicationAdministration": "medicationCodeableConcept", "MedicationDispense": "medicationCodeableConcept",
	"Medication": "code", "Immunization": "vaccineCode", "Encounter": "type",
}

// codeSystemAliases maps the OIDs C-CDA names code systems by to FHIR's
// URIs, so that a C-CDA's fact and its FHIR version share their codes.
var codeSystemAliases = map[string]string{
	"urn:oid:2.16.840.1.113883.6.1":    LOINC,
	"2.16.840.1.113883.6.1":            LOINC,
	"urn:oid:2.16.840.1.113883.6.96":   SNOMED,
	"2.16.840.1.113883.6.96":           SNOMED,
	"urn:oid:2.16.840.1.113883.6.88":   RxNorm,
	"2.16.840.1.113883.6.88":           RxNorm,
	"urn:oid:2.16.840.1.113883.12.292": CVX,
	"2.16.840.1.113883.12.292":         CVX,
}

// groupKey is what grouping compares.
type groupKey struct {
	kind, day, value string
	codes            []string // system|code, sorted
	words            string   // the display, folded
}

func keyOf(r *Record) groupKey {
	res, err := Parse(r.Resource)
	if err != nil {
		return groupKey{kind: r.Kind, words: foldDisplay(r.Display)}
	}
	k := thingKey(r, res)
	if w := WhenOf(res); w.Precision >= PrecisionDay {
		y, m, d := w.Date()
		k.day = strconv.Itoa(y) + "-" + strconv.Itoa(int(m)) + "-" + strconv.Itoa(d)
	} else if !w.IsZero() {
		k.day = w.Raw
	}
	k.value = valueKey(res)
	return k
}

func foldDisplay(s string) string { return strings.ToLower(strings.Join(strings.Fields(s), " ")) }

// thingKey is the part of a groupKey that says what a record is about:
// kind, codes and words.
func thingKey(r *Record, res Resource) groupKey {
	k := groupKey{kind: r.Kind, words: foldDisplay(r.Display)}
	k.codes = conceptCodes(res)
	slices.Sort(k.codes)
	return k
}

// valueKey is a measurement's value, unit and components, normalised.
func valueKey(res Resource) string {
	var parts []string
	q := func(v any) {
		m, ok := v.(map[string]any)
		if !ok {
			return
		}
		val := ""
		if f, ok := numberOf(m["value"]); ok {
			val = strconv.FormatFloat(f, 'g', 6, 64)
		}
		unit, _ := m["code"].(string)
		if unit == "" {
			unit, _ = m["unit"].(string)
		}
		parts = append(parts, val+" "+strings.ToLower(unit))
	}
	q(res.Get("valueQuantity"))
	for _, p := range []string{"valueString", "valueBoolean", "valueInteger"} {
		if v := res.Get(p); v != nil {
			parts = append(parts, p+"="+strings.ToLower(toString(v)))
		}
	}
	for _, c := range res.Codings("valueCodeableConcept") {
		parts = append(parts, "code="+c.Code)
	}
	for _, comp := range res.List("component") {
		if m, ok := comp.(map[string]any); ok {
			q(m["valueQuantity"])
		}
	}
	return strings.Join(parts, ";")
}

func numberOf(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case int:
		return float64(x), true
	case interface{ String() string }: // json.Number
		f, err := strconv.ParseFloat(x.String(), 64)
		return f, err == nil
	}
	return 0, false
}

func toString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case bool:
		return strconv.FormatBool(x)
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	case interface{ String() string }:
		return x.String()
	}
	return ""
}

// sameFact reports whether two keys name one fact.
func (a groupKey) sameFact(b groupKey) bool {
	if a.kind != b.kind || a.day != b.day || a.value != b.value {
		return false
	}
	if len(a.codes) > 0 && len(b.codes) > 0 {
		for _, c := range a.codes {
			if _, ok := slices.BinarySearch(b.codes, c); ok {
				return true
			}
		}
		return false
	}
	return a.words != "" && a.words == b.words
}

// SameThing reports whether a and b name the same thing: the same kind,
// and a shared code in their main concept (or, when either has no code,
// the same words). A source that sends a record again under its id with
// another status, date or value sends a new version of it; under the same
// id but about another thing, it sends another record (template-made
// documents reuse entry ids across unrelated entries).
func SameThing(a, b *Record) bool { return ThingOf(a).Same(ThingOf(b)) }

// Thing is what a record is about, for telling whether two records name
// the same thing (SameThing) when one must be compared with many.
type Thing struct{ k groupKey }

// ThingOf returns what r is about.
func ThingOf(r *Record) Thing {
	res, err := Parse(r.Resource)
	if err != nil {
		return Thing{groupKey{kind: r.Kind, words: foldDisplay(r.Display)}}
	}
	return Thing{thingKey(r, res)}
}

// Same reports whether a and b name the same thing (see SameThing).
func (a Thing) Same(b Thing) bool { return a.k.kind == b.k.kind && a.k.sameFact(b.k) }

// GroupRecords groups records that state one fact (see above). Records
// are in list order; groups keep the order of their first record.
func GroupRecords(recs []Record) []*Group {
	type entry struct {
		g       *Group
		key     groupKey
		sources map[string]bool
	}
	var out []*Group
	byDay := map[string][]*entry{} // kind and day -> groups
	for i := range recs {
		r := &recs[i]
		k := keyOf(r)
		src := r.Provenance.Source()
		var into *entry
		for _, e := range byDay[k.kind+"\x00"+k.day] {
			if !e.sources[src] && e.key.sameFact(k) {
				into = e
				break
			}
		}
		if into == nil {
			date := ""
			if w := r.When(); !w.IsZero() {
				date = w.Raw
				if w.Precision > PrecisionDay {
					date = w.Raw[:10]
				}
			}
			into = &entry{g: &Group{Kind: r.Kind, Display: r.Display, Date: date}, key: k, sources: map[string]bool{}}
			byDay[k.kind+"\x00"+k.day] = append(byDay[k.kind+"\x00"+k.day], into)
			out = append(out, into.g)
		}
		into.sources[src] = true
		into.g.Sources = append(into.g.Sources, src)
		into.g.IDs = append(into.g.IDs, r.ID)
	}
	return out
}
