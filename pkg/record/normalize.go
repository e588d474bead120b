package record

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"

	"github.com/phr-project/phr/pkg/terminology"
)

// Normalize applies phr's rules for codes and units to a parsed resource,
// in place, and reports whether it changed anything:
//
//   - a placeholder coding (terminology.IsPlaceholder: "UNK", "Unknown",
//     null flavors, empty codes) is dropped from its CodeableConcept, whose
//     text stays; a concept that would be left with neither codings nor
//     text is left as it was;
//   - a coding without a display gets the published name of its code
//     (terminology.Display), when there is one;
//   - a Quantity is labelled UCUM (system and code) only when its unit is
//     valid UCUM, in canonical case ("mg/dl" -> "mg/dL"); a UCUM label on a
//     unit that is not UCUM ("tablet", "CELLS/MCL") is removed and the unit
//     kept as text;
//   - a medication reference to a contained Medication gets that
//     medication's name as its display.
//
// The result depends on the resource alone. New and NewParsed apply it to
// imported and device records; the share builders apply it to every
// resource they export, so records stored before these rules read the
// same.
func Normalize(r Resource) bool {
	changed := normalizeValue(map[string]any(r))
	if resolveContained(r) {
		changed = true
	}
	return changed
}

func normalizeValue(v any) bool {
	changed := false
	switch v := v.(type) {
	case map[string]any:
		// One pass over the keys: most objects have none of these, and
		// lookups by name cost more than the iteration that recursion
		// needs anyway.
		var hasCoding, hasValue, hasCode bool
		for k, c := range v {
			switch k {
			case "div":
				return false // a narrative: XHTML, no codes
			case "coding":
				hasCoding = true
			case "value":
				hasValue = true
			case "code":
				hasCode = true
			}
			switch c.(type) {
			case map[string]any, []any:
				if normalizeValue(c) {
					changed = true
				}
			}
		}
		if hasCoding {
			if codings, ok := v["coding"].([]any); ok && dropPlaceholders(v, codings) {
				changed = true
			}
		}
		if hasValue && isQuantity(v) {
			if normalizeQuantity(v) {
				changed = true
			}
		} else if hasCode && fillDisplay(v) {
			changed = true
		}
	case []any:
		for _, c := range v {
			if normalizeValue(c) {
				changed = true
			}
		}
	}
	return changed
}

// dropPlaceholders removes the placeholder codings of the concept m.
func dropPlaceholders(m map[string]any, codings []any) bool {
	placeholder := func(c any) bool {
		cm, ok := c.(map[string]any)
		if !ok {
			return false
		}
		sys, _ := cm["system"].(string)
		code, _ := cm["code"].(string)
		return terminology.IsPlaceholder(sys, code)
	}
	if !slices.ContainsFunc(codings, placeholder) {
		return false // the common case, without allocating
	}
	var kept []any
	for _, c := range codings {
		if !placeholder(c) {
			kept = append(kept, c)
		}
	}
	if len(kept) == 0 {
		if t, _ := m["text"].(string); strings.TrimSpace(t) == "" {
			return false // nothing would be left: keep what the source said
		}
		delete(m, "coding")
		return true
	}
	m["coding"] = kept
	return true
}

// fillDisplay gives a coding without a display its published name.
func fillDisplay(m map[string]any) bool {
	code, ok := m["code"].(string)
	if !ok || code == "" {
		return false
	}
	sys, ok := m["system"].(string)
	if !ok || sys == "" {
		return false
	}
	if d, _ := m["display"].(string); d != "" {
		return false
	}
	name, ok := terminology.Display(sys, code)
	if !ok {
		return false
	}
	m["display"] = name
	return true
}

// isQuantity reports whether m is a FHIR Quantity (or Age, Duration, ...):
// a numeric value.
func isQuantity(m map[string]any) bool {
	switch m["value"].(type) {
	case json.Number, float64:
		return true
	}
	return false
}

// normalizeQuantity applies the UCUM rule to a Quantity.
func normalizeQuantity(m map[string]any) bool {
	sys, _ := m["system"].(string)
	code, _ := m["code"].(string)
	unit, _ := m["unit"].(string)
	if sys != "" && terminology.System(sys) != UCUM {
		return false // another unit system: not ours to judge
	}
	if sys == "" && code != "" {
		return false // a code without a system says nothing about UCUM
	}
	if sys == "" {
		c, ok := terminology.UCUM(unit)
		if !ok {
			return false
		}
		m["system"], m["code"] = UCUM, c
		return true
	}
	if c, ok := terminology.UCUM(code); ok {
		if c == code && sys == UCUM {
			return false
		}
		m["system"], m["code"] = UCUM, c
		return true
	}
	if c, ok := terminology.UCUM(unit); ok && code == "" {
		m["system"], m["code"] = UCUM, c
		return true
	}
	// Labelled UCUM, but not UCUM: keep the unit as text only.
	delete(m, "system")
	delete(m, "code")
	if unit == "" && code != "" {
		m["unit"] = code
	}
	return true
}

// undisplayedMedication returns r's medicationReference and the reference
// it holds, when it has one without a display.
func undisplayedMedication(r Resource) (ref map[string]any, reference string, ok bool) {
	ref, ok = r["medicationReference"].(map[string]any)
	if !ok {
		return nil, "", false
	}
	if d, _ := ref["display"].(string); d != "" {
		return nil, "", false
	}
	reference, _ = ref["reference"].(string)
	return ref, reference, true
}

// resolveContained writes the name of a contained Medication into the
// display of a medicationReference ("#med1") that has none.
func resolveContained(r Resource) bool {
	ref, s, ok := undisplayedMedication(r)
	if !ok {
		return false
	}
	id, ok := strings.CutPrefix(s, "#")
	if !ok || id == "" {
		return false
	}
	for _, c := range r.List("contained") {
		cm, ok := c.(map[string]any)
		if !ok || cm["resourceType"] != "Medication" || cm["id"] != id {
			continue
		}
		if name := Resource(cm).ConceptText("code"); name != "" {
			ref["display"] = name
			return true
		}
	}
	return false
}

// marshalResource encodes a parsed resource for storage: keys sorted
// (encoding/json's map order), numbers as parsed, no HTML escaping.
func marshalResource(r Resource) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(map[string]any(r)); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// normalizes reports whether records of this provenance are normalized
// at construction.
func normalizes(p Provenance) bool {
	return !skipNormalize && (p.Method == MethodImported || p.Method == MethodDevice)
}

// skipNormalize turns normalization at construction off, for the
// benchmark that measures its cost (export_test.go).
var skipNormalize bool

// medicationTypes are the resources that name a drug by medication[x].
var medicationTypes = map[string]bool{
	"MedicationStatement": true, "MedicationRequest": true, "MedicationAdministration": true, "MedicationDispense": true,
}

// ResolveMedicationRefs writes into each medication record of recs whose
// medicationReference points at a Medication among recs ("Medication/id",
// an absolute URL ending so, with or without "/_history/n") the name of
// that Medication as the reference's display (a FHIR Reference's own
// field), and derives the record's Display again, so that every surface
// shows the drug rather than "MedicationStatement". A reference that has
// a display already, or points elsewhere, is left alone. recs are one
// file's records, as an importer emits them; it changes nothing when there
// is no Medication among them.
func ResolveMedicationRefs(recs []Record) error {
	names := map[string]string{} // Medication id -> name
	for i := range recs {
		if recs[i].ResourceType != "Medication" || recs[i].Deleted {
			continue
		}
		res, err := Parse(recs[i].Resource)
		if err != nil {
			return err
		}
		name := res.ConceptText("code")
		if name == "" {
			continue
		}
		for _, id := range []string{res.ID(), recs[i].Provenance.OriginalID} {
			if id != "" {
				names[id] = name
			}
		}
	}
	if len(names) == 0 {
		return nil
	}
	for i := range recs {
		r := &recs[i]
		if !medicationTypes[r.ResourceType] || !bytes.Contains(r.Resource, []byte("medicationReference")) {
			continue
		}
		res, err := Parse(r.Resource)
		if err != nil {
			return err
		}
		if !setMedicationDisplay(res, names) {
			continue
		}
		b, err := marshalResource(res)
		if err != nil {
			return err
		}
		r.Resource = b
		r.derive(res)
	}
	return nil
}

// setMedicationDisplay fills medicationReference.display from names
// (Medication id -> name); it reports whether it did.
func setMedicationDisplay(r Resource, names map[string]string) bool {
	ref, s, ok := undisplayedMedication(r)
	if !ok {
		return false
	}
	id, ok := medicationID(s)
	if !ok {
		return false
	}
	name, ok := names[id]
	if !ok {
		return false
	}
	ref["display"] = name
	return true
}

// medicationID returns the id of a literal reference to a Medication
// ("Medication/id", "https://host/fhir/Medication/id/_history/2").
func medicationID(ref string) (string, bool) {
	if i := strings.Index(ref, "/_history/"); i >= 0 {
		ref = ref[:i]
	}
	parts := strings.Split(ref, "/")
	if len(parts) < 2 || parts[len(parts)-2] != "Medication" || parts[len(parts)-1] == "" {
		return "", false
	}
	return parts[len(parts)-1], true
}
