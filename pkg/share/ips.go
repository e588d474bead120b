package share

import (
	"fmt"
	"html"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/phr-project/phr/pkg/record"
)

// LOINC codes of the International Patient Summary document and sections.
const (
	LOINCPatientSummary = "60591-5" // Patient summary Document
	LOINCAllergies      = "48765-2" // Allergies and adverse reactions Document
	LOINCMedications    = "10160-0" // History of Medication use Narrative
	LOINCProblems       = "11450-4" // Problem list - Reported
	LOINCImmunizations  = "11369-6" // History of Immunization Narrative
	LOINCResults        = "30954-2" // Relevant diagnostic tests/laboratory data Narrative
	LOINCVitalSigns     = "8716-3"  // Vital signs
	LOINCProcedures     = "47519-4" // History of Procedures Document
)

// maxNarrativeItems bounds the list in one section's narrative; the
// section's entries still reference every resource.
const maxNarrativeItems = 200

// ipsSection describes one Composition section and which resources go in.
type ipsSection struct {
	title, code, display string
	required             bool // present even when empty, with an emptyReason
	empty                string
	accepts              func(e *bundleEntry, kind string) bool
}

var ipsSections = []ipsSection{
	{title: "Allergies and Intolerances", code: LOINCAllergies, display: "Allergies and adverse reactions Document", required: true,
		empty:   "No information about allergies or intolerances is available.",
		accepts: func(e *bundleEntry, _ string) bool { return e.typ() == "AllergyIntolerance" }},
	{title: "Medication Summary", code: LOINCMedications, display: "History of Medication use Narrative", required: true,
		empty: "No information about medications is available.",
		accepts: func(e *bundleEntry, _ string) bool {
			return e.typ() == "MedicationStatement" || e.typ() == "MedicationRequest"
		}},
	{title: "Problem List", code: LOINCProblems, display: "Problem list - Reported", required: true,
		empty:   "No information about problems is available.",
		accepts: func(e *bundleEntry, _ string) bool { return e.typ() == "Condition" }},
	{title: "Immunizations", code: LOINCImmunizations, display: "History of Immunization Narrative",
		accepts: func(e *bundleEntry, _ string) bool { return e.typ() == "Immunization" }},
	{title: "Results", code: LOINCResults, display: "Relevant diagnostic tests/laboratory data Narrative",
		accepts: func(e *bundleEntry, kind string) bool {
			return e.typ() == "DiagnosticReport" || e.typ() == "Observation" && (kind == record.KindLab || kind == record.KindObservation)
		}},
	{title: "Vital Signs", code: LOINCVitalSigns, display: "Vital signs",
		accepts: func(e *bundleEntry, kind string) bool { return e.typ() == "Observation" && kind == record.KindVital }},
	{title: "History of Procedures", code: LOINCProcedures, display: "History of Procedures Document",
		accepts: func(e *bundleEntry, _ string) bool { return e.typ() == "Procedure" }},
}

// BuildIPS returns an International Patient Summary-shaped FHIR R4 Bundle
// of type "document" built from the patient and recs at time now:
//
//   - first a Composition (LOINC 60591-5 "Patient summary Document",
//     status final, subject the patient, date now, author the patient, or
//     a Device named "phr" when there is no patient record) with sections
//     for allergies (48765-2), medications (10160-0), problems (11450-4),
//     immunizations (11369-6), results (30954-2), vital signs (8716-3) and
//     procedures (47519-4); each section has a generated narrative listing
//     its entries (display text and date, HTML-escaped) and references
//     them, newest first;
//   - the three required sections are present even when empty, with an
//     emptyReason ("unavailable") and a narrative saying so; the others
//     only when they have entries;
//   - then the Patient (a minimal one with a data-absent name when there
//     is no patient record), the Device if any, the section entries, and
//     the resources they reference (a Medication, a report's
//     Observations).
//
// Records that belong to no section (symptoms, doses, notes, documents,
// encounters, ...) and are not referenced by one are left out, as are
// deleted and entered-in-error records. A record that states no event or
// fact (record.NegationOf: a vaccine not given, a medication not taken, a
// refuted problem or allergy, a "no known ..." statement) is an entry of
// its section, but its narrative never lists it among the events: it
// reads, after them, as what it is ("Influenza vaccine — not given:
// patient objection", "No known allergy"). "No known ..." statements are
// in the section IPS puts them in (allergies, medications, problems,
// immunizations). Resources are normalized and references resolved as in
// BuildBundle.
func BuildIPS(patient record.Record, recs []record.Record, now time.Time) ([]byte, error) {
	b, err := newBundleBuilder(patient, recs)
	if err != nil {
		return nil, err
	}
	realPatient := b.patient != nil
	if !realPatient {
		b.patient = &bundleEntry{fullURL: newUUIDURN(), res: map[string]any{
			"resourceType": "Patient",
			"name": []any{map[string]any{"extension": []any{map[string]any{
				"url":       "http://hl7.org/fhir/StructureDefinition/data-absent-reason",
				"valueCode": "unknown",
			}}}},
		}}
	}

	// Sort the candidates into sections.
	members := make([][]*bundleEntry, len(ipsSections))
	for _, e := range b.pool {
		if record.NegationOf(record.Resource(e.res)) == record.NegEnteredInError {
			continue
		}
		kind := record.KindOf(record.Resource(e.res))
		for i, s := range ipsSections {
			if s.accepts(e, kind) {
				members[i] = append(members[i], e)
				break
			}
		}
	}
	for i := range members {
		slices.SortStableFunc(members[i], func(x, y *bundleEntry) int { return entryDate(y).Compare(entryDate(x)) })
		b.include(members[i])
	}
	b.includeReferenced()
	b.resolve()

	author := b.patient
	var device *bundleEntry
	if !realPatient {
		device = &bundleEntry{fullURL: newUUIDURN(), res: map[string]any{
			"resourceType": "Device",
			"deviceName":   []any{map[string]any{"name": "phr", "type": "user-friendly-name"}},
		}}
		author = device
	}

	var sections []any
	for i, s := range ipsSections {
		if len(members[i]) == 0 && !s.required {
			continue
		}
		sec := map[string]any{
			"title": s.title,
			"code":  map[string]any{"coding": []any{map[string]any{"system": record.LOINC, "code": s.code, "display": s.display}}},
		}
		if len(members[i]) == 0 {
			sec["text"] = narrative("<p>" + escapeText(s.empty) + "</p>")
			sec["emptyReason"] = map[string]any{
				"coding": []any{map[string]any{
					"system":  "http://terminology.hl7.org/CodeSystem/list-empty-reason",
					"code":    "unavailable",
					"display": "Unavailable",
				}},
				"text": "No information available",
			}
		} else {
			refs := make([]any, len(members[i]))
			for j, e := range members[i] {
				refs[j] = map[string]any{"reference": e.fullURL}
			}
			sec["text"] = narrative(sectionList(members[i]))
			sec["entry"] = refs
		}
		sections = append(sections, sec)
	}

	stamp := now.UTC().Format(time.RFC3339)
	comp := &bundleEntry{fullURL: newUUIDURN(), res: map[string]any{
		"resourceType": "Composition",
		"id":           strings.TrimPrefix(newUUIDURN(), "urn:uuid:"),
		"status":       "final",
		"type": map[string]any{"coding": []any{map[string]any{
			"system": record.LOINC, "code": LOINCPatientSummary, "display": "Patient summary Document",
		}}},
		"subject": map[string]any{"reference": b.patient.fullURL},
		"date":    stamp,
		"author":  []any{map[string]any{"reference": author.fullURL}},
		"title":   "Patient Summary as of " + now.UTC().Format("2006-01-02"),
		"section": sections,
	}}

	entries := []*bundleEntry{comp, b.patient}
	if device != nil {
		entries = append(entries, device)
	}
	entries = append(entries, b.included...)
	return marshalBundle(bundleHeader{Type: "document", Timestamp: stamp, Identifier: newUUIDURN()}, entries)
}

func entryDate(e *bundleEntry) time.Time {
	if e.rec != nil && !e.rec.Date.IsZero() {
		return e.rec.Date
	}
	return record.DateOf(record.Resource(e.res))
}

// sectionList is a section's narrative: a list of its events and facts,
// then, apart, what it records as not done, not taken, refuted or none
// known, each with its display text (record.DisplayOf, which says so)
// and date.
func sectionList(es []*bundleEntry) string {
	var events, others []*bundleEntry
	for _, e := range es {
		if record.NegationOf(record.Resource(e.res)) == "" {
			events = append(events, e)
		} else {
			others = append(others, e)
		}
	}
	var sb strings.Builder
	n := 0
	list := func(es []*bundleEntry) {
		sb.WriteString("<ul>")
		for _, e := range es {
			if n == maxNarrativeItems {
				fmt.Fprintf(&sb, "<li>and %d more</li>", len(es)-n)
				break
			}
			n++
			sb.WriteString("<li>")
			sb.WriteString(escapeText(record.DisplayOf(record.Resource(e.res))))
			if d := entryDate(e); !d.IsZero() {
				sb.WriteString(" (")
				sb.WriteString(d.UTC().Format("2006-01-02"))
				sb.WriteString(")")
			}
			sb.WriteString("</li>")
		}
		sb.WriteString("</ul>")
	}
	if len(events) > 0 {
		list(events)
	}
	if len(others) > 0 {
		sb.WriteString("<p>Recorded as not done, not taken, refuted or none known:</p>")
		n = 0
		list(others)
	}
	return sb.String()
}

// narrative wraps XHTML content in a FHIR Narrative.
func narrative(content string) map[string]any {
	return map[string]any{
		"status": "generated",
		"div":    `<div xmlns="http://www.w3.org/1999/xhtml">` + content + `</div>`,
	}
}

// escapeText makes s safe as XHTML text: markup characters are escaped and
// control characters (not allowed in XML) become spaces.
func escapeText(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	return html.EscapeString(s)
}
