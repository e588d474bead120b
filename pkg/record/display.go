package record

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/phr-project/phr/pkg/terminology"
)

// DisplayOf returns one line of human text for a resource: what it is, and
// for observations its value ("Heart rate: 72 bpm", "Blood pressure:
// 120/80 mmHg"). Codes without a display read as their published name
// (package terminology); a medication named only by reference reads as
// the referenced Medication (the reference's display, or a contained
// Medication's name); and a record that does not state a fact says so
// (see NegationOf): "Influenza vaccine — not given: patient objection",
// "Asthma — refuted".
func DisplayOf(r Resource) string {
	s := displayOf(r)
	suffix := negationText(r)
	if suffix == "" {
		suffix = stoppedText(r)
	}
	if suffix == "" {
		return oneLine(s, 200)
	}
	suffix = " " + oneLine(suffix, 120) // oneLine trims the leading space
	return oneLine(s, 200-len([]rune(suffix))) + suffix
}

// stoppedText says that a medication the patient took is stopped or
// paused, and since when as the source wrote it: "— stopped 2026-11-20".
// It is kept whole however long the name and dosage before it are.
func stoppedText(r Resource) string {
	if r.Type() != "MedicationStatement" && r.Type() != "MedicationRequest" {
		return ""
	}
	var s string
	switch r.Str("status") {
	case "completed", "stopped":
		s = "— stopped"
	case "on-hold":
		s = "— on hold"
	case "cancelled":
		s = "— cancelled"
	default:
		return ""
	}
	end := r.Str("effectivePeriod.end")
	if end == "" {
		end = r.Str("dosageInstruction.timing.repeat.boundsPeriod.end")
	}
	if w, err := ParseWhenValue(end); err == nil && end != "" && s == "— stopped" {
		s += " " + w.String()
	}
	return s
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
		} else if q := quantityText(r.Get("dosage.dose"), nil); q != "" && r.Type() == "MedicationAdministration" {
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
	vs := VitalOf(r)
	if pv := panelValue(r); pv != "" {
		return name + ": " + pv
	}
	v := observationValue(r, vs)
	if v == "" {
		var parts []string
		for _, c := range r.List("component") {
			cm, ok := c.(map[string]any)
			if !ok {
				continue
			}
			cr := Resource(cm)
			if cv := observationValue(cr, vitalPartOf(cr)); cv != "" {
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

// panelValue renders a panel whose components the vital-sign table knows
// (a blood pressure: "120/80 mmHg"), whatever the panel's own code (some
// sources use 55284-4 or 35094-2, or none). It returns "" unless every
// component of the table's panel has a value.
func panelValue(r Resource) string {
	comps, _ := r["component"].([]any)
	if len(comps) < 2 {
		return ""
	}
	for i := range vitalTable {
		vs := &vitalTable[i]
		if len(vs.Components) == 0 {
			continue
		}
		vals := make([]string, len(vs.Components))
		unit := ""
		for _, c := range comps {
			cm, ok := c.(map[string]any)
			if !ok {
				continue
			}
			cr := Resource(cm)
			for j, part := range vs.Components {
				if vals[j] == "" && cr.HasCoding("code", LOINC, part.Code.Code) {
					q, _ := cr.Get("valueQuantity").(map[string]any)
					if q == nil {
						continue
					}
					u := vs.quantityUnit(q)
					vals[j] = displayNumber(q["value"], decimalsOf(u))
					if unit == "" {
						unit = unitText(q, vs)
					}
				}
			}
		}
		if slices.Contains(vals, "") {
			continue
		}
		if unit == "" {
			unit = vs.Units[0].Symbol
		}
		return joinUnit(strings.Join(vals, "/"), unit)
	}
	return ""
}

// vitalPartOf returns the vital a component's code belongs to (a systolic
// pressure belongs to blood pressure), or nil.
func vitalPartOf(r Resource) *VitalSign {
	return loincLookup(r, vitalPartByCode)
}

// observationValue renders value[x] of an Observation or component; vs is
// the vital sign it records, or nil.
func observationValue(r Resource, vs *VitalSign) string {
	if q := quantityText(r.Get("valueQuantity"), vs); q != "" {
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
	if lo, hi := quantityText(r.Get("valueRange.low"), vs), quantityText(r.Get("valueRange.high"), vs); lo != "" || hi != "" {
		return lo + "–" + hi
	}
	return ""
}

// quantityText renders a Quantity for people: the value with the precision
// the source wrote (binary-float noise rounded, see displayNumber) and the
// unit as people write it, never a UCUM code ("mm[Hg]" shows as "mmHg").
// vs, when not nil, is the vital sign measured: its table gives the
// symbol and the precision.
func quantityText(v any, vs *VitalSign) string {
	m, ok := v.(map[string]any)
	if !ok {
		return ""
	}
	var u *VitalUnit
	if vs != nil {
		u = vs.quantityUnit(m)
	}
	n := displayNumber(m["value"], decimalsOf(u))
	if n == "" {
		return ""
	}
	if c, _ := m["comparator"].(string); c != "" {
		n = c + n
	}
	return joinUnit(n, unitText(m, vs))
}

// quantityUnit finds the table's unit of a Quantity: by its UCUM code,
// else by its unit text.
func (v *VitalSign) quantityUnit(q map[string]any) *VitalUnit {
	if sys, _ := q["system"].(string); sys == "" || sys == UCUM {
		if code, _ := q["code"].(string); code != "" {
			if u := v.unitByUCUM(code); u != nil {
				return u
			}
		}
	}
	if unit, _ := q["unit"].(string); unit != "" {
		if u := v.unitByUCUM(unit); u != nil {
			return u
		}
		if u, ok := v.Unit(unit); ok {
			return u
		}
	}
	return nil
}

func decimalsOf(u *VitalUnit) int {
	if u == nil {
		return -1
	}
	return u.Decimals
}

// unitText is a Quantity's unit as people write it. The source's unit text
// is kept, unless it is a UCUM code (as Synthea writes them), which shows
// as its symbol; without unit text, the UCUM code's symbol is used.
func unitText(q map[string]any, vs *VitalSign) string {
	unit, _ := q["unit"].(string)
	code, _ := q["code"].(string)
	if sys, _ := q["system"].(string); sys != "" && sys != UCUM {
		if unit == "" {
			return code // another system's code: shown as it is
		}
		code = ""
	}
	if unit != "" && unit != code {
		if s, ok := UnitSymbol(unit); ok {
			return s
		}
		return unit
	}
	if code == "" {
		code = unit
	}
	if vs != nil {
		if u := vs.unitByUCUM(code); u != nil {
			return u.Symbol
		}
	}
	if s, ok := UnitSymbol(code); ok {
		return s
	}
	return code
}

// number renders a JSON number (or a numeric string) as written.
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

// maxWrittenDigits is the most significant digits a measured value is
// taken to be written with. Devices and people write a handful; more is
// the noise of a binary float converted to decimal (81.69998963820044,
// 97.00000286102295) and is rounded for display.
const maxWrittenDigits = 9

// displayNumber renders a number for people: as the source wrote it when
// it has at most maxWrittenDigits significant digits, else rounded, to
// decimals places when decimals >= 0 (a vital sign's precision), else to
// 12 significant digits (which removes float64 noise) or, if the value
// still has more than maxWrittenDigits, to 6. Trailing zeros of a rounded
// value are dropped. The stored value is never changed.
func displayNumber(v any, decimals int) string {
	s := number(v)
	if s == "" || !strings.ContainsAny(s, ".eE") || significantDigits(s) <= maxWrittenDigits {
		return s // whole numbers are exact as written
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return s
	}
	if decimals >= 0 {
		return trimZeros(strconv.FormatFloat(f, 'f', decimals, 64))
	}
	for _, digits := range []int{12, 6} {
		r, _ := strconv.ParseFloat(strconv.FormatFloat(f, 'g', digits, 64), 64)
		if out := strconv.FormatFloat(r, 'f', -1, 64); significantDigits(out) <= maxWrittenDigits || digits == 6 {
			return out
		}
	}
	return s
}

// significantDigits counts the digits of a decimal's mantissa from its
// first non-zero digit ("0.0120" has 3; "1200" has 4).
func significantDigits(s string) int {
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		s = s[:i]
	}
	n, started := 0, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			continue
		}
		if c != '0' {
			started = true
		}
		if started {
			n++
		}
	}
	return n
}

// trimZeros drops the trailing zeros of a decimal fraction, and its point
// when nothing follows it; "-0" becomes "0".
func trimZeros(s string) string {
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	if s == "-0" {
		return "0"
	}
	return s
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
