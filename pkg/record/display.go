package record

import (
	"encoding/base64"
	"encoding/json"
	"strconv"
	"strings"
)

// DisplayOf returns one line of human text for a resource: what it is, and
// for observations its value ("Heart rate: 72 /min").
func DisplayOf(r Resource) string {
	var s string
	switch r.Type() {
	case "MedicationStatement", "MedicationRequest", "MedicationAdministration", "MedicationDispense":
		s = r.ConceptText("medicationCodeableConcept")
		if s == "" {
			s = r.Str("medicationReference.display")
		}
		if d := r.Str("dosage.text"); d != "" && r.Type() == "MedicationStatement" {
			s += " — " + d
		} else if d := r.Str("dosageInstruction.text"); d != "" {
			s += " — " + d
		} else if q := quantityText(r.Get("dosage.dose")); q != "" && r.Type() == "MedicationAdministration" {
			s += " — " + q
		}
	case "Medication":
		s = r.ConceptText("code")
	case "Observation":
		s = observationDisplay(r)
	case "AllergyIntolerance":
		s = r.ConceptText("code")
		if m := r.ConceptText("reaction.manifestation"); m != "" {
			s += " (" + m + ")"
		}
	case "Immunization":
		s = r.ConceptText("vaccineCode")
	case "Patient":
		s = humanName(r.Get("name"))
	case "Practitioner", "RelatedPerson":
		s = humanName(r.Get("name"))
	case "Organization", "Location", "HealthcareService":
		s = r.Str("name")
	case "Encounter":
		s = r.ConceptText("type")
		if s == "" {
			s = r.Str("class.display")
		}
		if s == "" {
			s = r.Str("class.code")
		}
	case "DocumentReference":
		s = r.Str("description")
		if s == "" && r.HasCoding("type", LOINC, PatientNoteType) {
			s = noteText(r)
		}
		if s == "" {
			s = r.ConceptText("type")
		}
		if s == "" {
			s = r.Str("content.attachment.title")
		}
	case "DiagnosticReport", "Condition", "Procedure", "ServiceRequest":
		s = r.ConceptText("code")
	case "CarePlan", "Goal":
		s = r.Str("title")
		if s == "" {
			s = r.ConceptText("category")
		}
		if s == "" {
			s = r.ConceptText("description")
		}
	case "Composition":
		s = r.Str("title")
	case "Device":
		s = r.Str("deviceName.name")
		if s == "" {
			s = r.ConceptText("type")
		}
	}
	if s == "" {
		for _, p := range []string{"code", "type"} {
			if s = r.ConceptText(p); s != "" {
				break
			}
		}
	}
	if s == "" {
		s = r.Str("title")
	}
	if s == "" {
		s = r.Str("name")
	}
	if s == "" {
		s = r.Type()
	}
	return oneLine(s, 200)
}

func observationDisplay(r Resource) string {
	name := r.ConceptText("code")
	if r.HasCoding("code", LOINC, LoincBP) {
		sys, dia := "", ""
		for _, c := range r.List("component") {
			cm, ok := c.(map[string]any)
			if !ok {
				continue
			}
			cr := Resource(cm)
			switch {
			case cr.HasCoding("code", LOINC, LoincSystolic):
				sys = number(cr.Get("valueQuantity.value"))
			case cr.HasCoding("code", LOINC, LoincDiastolic):
				dia = number(cr.Get("valueQuantity.value"))
			}
		}
		if sys != "" && dia != "" {
			return name + ": " + sys + "/" + dia + " mmHg"
		}
	}
	v := observationValue(r)
	if v == "" {
		var parts []string
		for _, c := range r.List("component") {
			cm, ok := c.(map[string]any)
			if !ok {
				continue
			}
			cr := Resource(cm)
			if cv := observationValue(cr); cv != "" {
				parts = append(parts, cr.ConceptText("code")+" "+cv)
			}
		}
		v = strings.Join(parts, ", ")
	}
	if v == "" {
		return name
	}
	if r.HasCoding("category", SNOMED, SymptomCategory) {
		return name + " (severity " + v + "/10)"
	}
	return name + ": " + v
}

// observationValue renders value[x] of an Observation or component.
func observationValue(r Resource) string {
	if q := quantityText(r.Get("valueQuantity")); q != "" {
		return q
	}
	if s := r.ConceptText("valueCodeableConcept"); s != "" {
		return s
	}
	for _, k := range []string{"valueString", "valueInteger", "valueBoolean", "valueDateTime", "valueTime"} {
		if s := r.Str(k); s != "" {
			return s
		}
	}
	if lo, hi := quantityText(r.Get("valueRange.low")), quantityText(r.Get("valueRange.high")); lo != "" || hi != "" {
		return lo + "–" + hi
	}
	return ""
}

func quantityText(v any) string {
	m, ok := v.(map[string]any)
	if !ok {
		return ""
	}
	n := number(m["value"])
	if n == "" {
		return ""
	}
	if c, _ := m["comparator"].(string); c != "" {
		n = c + n
	}
	u, _ := m["unit"].(string)
	if u == "" {
		u, _ = m["code"].(string)
	}
	if u == "" {
		return n
	}
	return n + " " + u
}

func number(v any) string {
	switch n := v.(type) {
	case json.Number:
		return n.String()
	case float64:
		return strconv.FormatFloat(n, 'f', -1, 64)
	case string:
		return n
	}
	return ""
}

func humanName(v any) string {
	names, _ := v.([]any)
	var best map[string]any
	for _, n := range names {
		m, ok := n.(map[string]any)
		if !ok {
			continue
		}
		if best == nil || m["use"] == "official" {
			best = m
		}
	}
	if best == nil {
		return ""
	}
	if t, _ := best["text"].(string); t != "" {
		return t
	}
	var parts []string
	given, _ := best["given"].([]any)
	for _, g := range given {
		if s, ok := g.(string); ok {
			parts = append(parts, s)
		}
	}
	if f, _ := best["family"].(string); f != "" {
		parts = append(parts, f)
	}
	return strings.Join(parts, " ")
}

// noteText returns the text of a plain-text note's first attachment.
func noteText(r Resource) string {
	ct := r.Str("content.attachment.contentType")
	if !strings.HasPrefix(ct, "text/plain") {
		return ""
	}
	b, err := base64.StdEncoding.DecodeString(r.Str("content.attachment.data"))
	if err != nil {
		return ""
	}
	return string(b)
}

// oneLine folds whitespace and cuts s to at most n runes.
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}
