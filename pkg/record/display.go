package record

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"strconv"
	"strings"

	"github.com/phr-project/phr/pkg/terminology"
)

// DisplayOf returns one line of human text for a resource: what it is, and
// for observations its value ("Heart rate: 72 /min"). Codes without a
// display read as their published name (package terminology); a
// medication named only by reference reads as the referenced Medication
// (the reference's display, or a contained Medication's name); and a
// record that does not state a fact says so (see NegationOf):
// "Influenza vaccine — not given: patient objection", "Asthma — refuted".
func DisplayOf(r Resource) string {
	s := displayOf(r)
	suffix := negationText(r)
	if suffix == "" {
		return oneLine(s, 200)
	}
	suffix = " " + oneLine(suffix, 120) // oneLine trims the leading space
	return oneLine(s, 200-len([]rune(suffix))) + suffix
}

func displayOf(r Resource) string {
	var s string
	negated := NegationOf(r) != ""
	switch r.Type() {
	case "MedicationStatement", "MedicationRequest", "MedicationAdministration", "MedicationDispense":
		s = MedicationName(r)
		if negated {
			break // the dose of a medication not taken is not the point
		}
		if s == "" {
			s = r.Type() // so that a dose never reads as the drug's name
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
		switch r.Str("criticality") {
		case "high":
			s += " — high risk"
		case "unable-to-assess":
			s += " — risk not assessed"
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
	return s
}

// MedicationName returns the name of the drug a medication resource
// (MedicationStatement, MedicationRequest, ...) is about: its
// medicationCodeableConcept, else the display of its medicationReference,
// else the name of the contained Medication that reference points at.
func MedicationName(r Resource) string {
	if s := r.ConceptText("medicationCodeableConcept"); s != "" {
		return s
	}
	if s := r.Str("medicationReference.display"); s != "" {
		return s
	}
	if id, ok := strings.CutPrefix(r.Str("medicationReference.reference"), "#"); ok && id != "" {
		for _, c := range r.List("contained") {
			if cm, ok := c.(map[string]any); ok && cm["resourceType"] == "Medication" && cm["id"] == id {
				return Resource(cm).ConceptText("code")
			}
		}
	}
	return ""
}

// Negations: the values of NegationOf and of Summary.Negation.
const (
	// NegNotDone: an Immunization, Procedure or MedicationAdministration
	// with status "not-done" (refused, contraindicated, ...).
	NegNotDone = "not-done"
	// NegNotTaken: a MedicationStatement with status "not-taken".
	NegNotTaken = "not-taken"
	// NegRefuted: a Condition or AllergyIntolerance whose
	// verificationStatus is "refuted".
	NegRefuted = "refuted"
	// NegEnteredInError: a record marked as a mistake (status or
	// verificationStatus "entered-in-error"). Kept, never listed as a fact.
	NegEnteredInError = "entered-in-error"
	// NegNoneKnown: a "no known ..." statement (SNOMED CT 716186003 No
	// known allergy and its kind, 160245001 No current problems or
	// disability, 787481004 No known medications, 787482006 No known
	// immunizations, or the IPS absent-unknown "no-known-..." codes).
	NegNoneKnown = "none-known"
)

// noneKnown are the SNOMED CT "no known ..." situations (in the Global
// Patient Set and IPS value sets).
var noneKnown = map[string]bool{
	"716186003": true, // No known allergy
	"409137002": true, // No known drug allergy
	"428607008": true, // No known environmental allergy
	"429625007": true, // No known food allergy
	"160245001": true, // No current problems or disability
	"787481004": true, // No known medications
	"787482006": true, // No known immunizations
}

// negatable are the resource types that can state a negation; any type
// can be entered in error.
var negatable = map[string]bool{
	"Immunization": true, "Procedure": true, "MedicationAdministration": true,
	"MedicationStatement": true, "MedicationRequest": true, "Condition": true, "AllergyIntolerance": true,
}

// NegationOf says whether a resource does not state that something
// happened or holds, and how (one of the Neg* constants), or "" for a
// plain fact.
func NegationOf(r Resource) string {
	status := r.Str("status")
	switch {
	case status == "entered-in-error" || verification(r) == "entered-in-error":
		return NegEnteredInError
	case !negatable[r.Type()]:
		return ""
	case status == "not-done":
		return NegNotDone
	case status == "not-taken":
		return NegNotTaken
	case verification(r) == "refuted":
		return NegRefuted
	}
	for _, path := range []string{"code", "vaccineCode", "medicationCodeableConcept"} {
		for _, c := range r.Codings(path) {
			if terminology.System(c.System) == terminology.SNOMED && noneKnown[c.Code] ||
				strings.HasSuffix(c.System, "/absent-unknown-uv-ips") && strings.HasPrefix(c.Code, "no-known-") {
				return NegNoneKnown
			}
		}
	}
	return ""
}

// verification returns the code of a Condition's or AllergyIntolerance's
// verificationStatus.
func verification(r Resource) string {
	for _, c := range r.Codings("verificationStatus") {
		if c.Code != "" {
			return c.Code
		}
	}
	return ""
}

// negationText is what DisplayOf adds to a record's name for its negation.
func negationText(r Resource) string {
	reason := r.ConceptText("statusReason")
	if reason == "" {
		reason = r.ConceptText("reasonCode")
	}
	with := func(s string) string {
		if reason != "" {
			return s + ": " + reason
		}
		return s
	}
	switch NegationOf(r) {
	case NegNotDone:
		if r.Type() == "Procedure" {
			return with(" — not done")
		}
		return with(" — not given")
	case NegNotTaken:
		return with(" — not taken")
	case NegRefuted:
		return " — refuted"
	case NegEnteredInError:
		return " — entered in error"
	}
	return ""
}

// negationMarkers are byte strings one of which every negated resource
// contains; Negation reads no other resource.
var negationMarkers = [][]byte{
	[]byte("entered-in-error"), []byte("not-done"), []byte("not-taken"), []byte("refuted"), []byte("no-known-"),
	[]byte("716186003"), []byte("409137002"), []byte("428607008"), []byte("429625007"),
	[]byte("160245001"), []byte("787481004"), []byte("787482006"),
}

// Negation is NegationOf for the record's resource. It parses the resource
// only when its bytes contain a marker of a negation, so listings stay
// cheap.
func (r *Record) Negation() string {
	if len(r.Resource) == 0 {
		return ""
	}
	markers := negationMarkers
	if !negatable[r.ResourceType] {
		markers = markers[:1] // entered-in-error only
	}
	found := false
	for _, m := range markers {
		if bytes.Contains(r.Resource, m) {
			found = true
			break
		}
	}
	if !found {
		return ""
	}
	res, err := Parse(r.Resource)
	if err != nil {
		return ""
	}
	return NegationOf(res)
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
