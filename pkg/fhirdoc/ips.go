package fhirdoc

import (
	"fmt"
	"html"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/phr-project/phr/pkg/record"
)

// LOINC codes of the International Patient Summary document and sections
// (IPS 2.0.0, Composition-uv-ips).
const (
	LOINCPatientSummary  = "60591-5"  // Patient summary Document
	LOINCAllergies       = "48765-2"  // Allergies and adverse reactions Document
	LOINCMedications     = "10160-0"  // History of Medication use Narrative
	LOINCProblems        = "11450-4"  // Problem list - Reported
	LOINCImmunizations   = "11369-6"  // History of Immunization note
	LOINCResults         = "30954-2"  // Relevant diagnostic tests/laboratory data note
	LOINCVitalSigns      = "8716-3"   // Vital signs note
	LOINCProcedures      = "47519-4"  // History of Procedures Document
	LOINCMedicalDevices  = "46264-8"  // History of medical device use
	LOINCSocialHistory   = "29762-2"  // Social history note
	LOINCAlerts          = "104605-1" // Alert
	LOINCAdvanceDirect   = "42348-3"  // Advance healthcare directives
	LOINCFunctional      = "47420-5"  // Functional status assessment note
	LOINCPastProblems    = "11348-0"  // History of Past illness note
	LOINCPregnancy       = "10162-6"  // History of pregnancies Narrative
	LOINCPlanOfCare      = "18776-5"  // Plan of care note
	loincTobaccoUse      = "72166-2"  // Tobacco smoking status
	loincAlcoholUse      = "74013-4"  // Alcoholic drinks per day
	loincPregnancyStatus = "82810-3"  // Pregnancy status
)

// ipsPregnancyCodes are the LOINC codes of the IPS pregnancy observations:
// status, expected delivery date (edd-method-uv-ips) and outcomes
// (pregnancies-summary-uv-ips).
var ipsPregnancyCodes = map[string]bool{
	loincPregnancyStatus: true, "11778-8": true, "11779-6": true, "11780-4": true,
	"11636-8": true, "11637-6": true, "11638-4": true, "11639-2": true, "11640-0": true,
	"11612-9": true, "11613-7": true, "11614-5": true, "33065-4": true,
}

// maxNarrativeItems bounds the list in one section's narrative; the
// section's entries still reference every resource.
const maxNarrativeItems = 200

// ipsSection describes one Composition section.
type ipsSection struct {
	title, code, display string
	required             bool // present even when empty, with an emptyReason
	empty                string
}

// The sections, in the order BuildIPS writes them (IPS leaves the order
// open): allergies first, as a clinician reads them first.
const (
	secAllergies = iota
	secMedications
	secProblems
	secImmunizations
	secResults
	secVitalSigns
	secProcedures
	secDevices
	secSocial
	secPregnancy
	secPastProblems
	secFunctional
	secAlerts
	secAdvanceDirectives
	secPlanOfCare
)

var ipsSections = []ipsSection{
	secAllergies: {title: "Allergies and Intolerances", code: LOINCAllergies, display: "Allergies and adverse reactions Document", required: true,
		empty: "No information about allergies or intolerances is available."},
	secMedications: {title: "Medication Summary", code: LOINCMedications, display: "History of Medication use Narrative", required: true,
		empty: "No information about medications is available."},
	secProblems: {title: "Problem List", code: LOINCProblems, display: "Problem list - Reported", required: true,
		empty: "No information about problems is available."},
	secImmunizations:     {title: "Immunizations", code: LOINCImmunizations, display: "History of Immunization note"},
	secResults:           {title: "Results", code: LOINCResults, display: "Relevant diagnostic tests/laboratory data note"},
	secVitalSigns:        {title: "Vital Signs", code: LOINCVitalSigns, display: "Vital signs note"},
	secProcedures:        {title: "History of Procedures", code: LOINCProcedures, display: "History of Procedures Document"},
	secDevices:           {title: "Medical Devices", code: LOINCMedicalDevices, display: "History of medical device use"},
	secSocial:            {title: "Social History", code: LOINCSocialHistory, display: "Social history note"},
	secPregnancy:         {title: "History of Pregnancy", code: LOINCPregnancy, display: "History of pregnancies Narrative"},
	secPastProblems:      {title: "History of Past Illness", code: LOINCPastProblems, display: "History of Past illness note"},
	secFunctional:        {title: "Functional Status", code: LOINCFunctional, display: "Functional status assessment note"},
	secAlerts:            {title: "Alerts", code: LOINCAlerts, display: "Alert"},
	secAdvanceDirectives: {title: "Advance Directives", code: LOINCAdvanceDirect, display: "Advance healthcare directives"},
	secPlanOfCare:        {title: "Plan of Care", code: LOINCPlanOfCare, display: "Plan of care note"},
}

// ipsSectionOf returns the section a resource goes in, or -1. IPS 2.0.0
// restricts what each section's entries may be (Composition-uv-ips):
//
//   - Conditions are problems, unless their clinical status is inactive,
//     remission or resolved: then they are past illness. A "no known
//     problems" statement and a refuted problem stay in the problem list,
//     where IPS looks for them;
//   - Observations are social history (that category, or tobacco or
//     alcohol use), pregnancy (the IPS pregnancy codes), vital signs, or
//     results (laboratory, imaging, any other not a symptom the patient
//     reported);
//   - DeviceUseStatements, Flags, Consents, CarePlans and
//     ImmunizationRecommendations, and ClinicalImpressions have sections
//     of their own (devices, alerts, advance directives, plan of care,
//     functional status).
func ipsSectionOf(e *bundleEntry) int {
	r := record.Resource(e.res)
	switch e.typ() {
	case "AllergyIntolerance":
		return secAllergies
	case "MedicationStatement", "MedicationRequest":
		return secMedications
	case "Condition":
		if record.NegationOf(r) == "" {
			for _, c := range r.Codings("clinicalStatus") {
				switch c.Code {
				case "inactive", "remission", "resolved":
					return secPastProblems
				}
			}
		}
		return secProblems
	case "Immunization":
		return secImmunizations
	case "DiagnosticReport":
		return secResults
	case "Observation":
		switch kind := record.KindOf(r); {
		case r.HasCoding("category", record.ObsCategory, "social-history") ||
			r.HasCoding("code", record.LOINC, loincTobaccoUse) || r.HasCoding("code", record.LOINC, loincAlcoholUse):
			return secSocial
		case isPregnancyObservation(r):
			return secPregnancy
		case kind == record.KindVital:
			return secVitalSigns
		case kind == record.KindLab || kind == record.KindObservation:
			return secResults
		}
	case "Procedure":
		return secProcedures
	case "DeviceUseStatement":
		return secDevices
	case "Flag":
		return secAlerts
	case "Consent":
		return secAdvanceDirectives
	case "CarePlan", "ImmunizationRecommendation":
		return secPlanOfCare
	case "ClinicalImpression":
		return secFunctional
	}
	return -1
}

func isPregnancyObservation(r record.Resource) bool {
	for _, c := range r.Codings("code") {
		if c.System == record.LOINC && ipsPregnancyCodes[c.Code] {
			return true
		}
	}
	return false
}

// ipsSubjectField names where each section entry's type refers to its
// patient; IPS requires a reference there.
var ipsSubjectField = map[string]string{
	"AllergyIntolerance": "patient", "Immunization": "patient", "Consent": "patient", "ImmunizationRecommendation": "patient",
	"Condition": "subject", "MedicationStatement": "subject", "MedicationRequest": "subject", "Observation": "subject",
	"DiagnosticReport": "subject", "Procedure": "subject", "DeviceUseStatement": "subject", "Flag": "subject",
	"CarePlan": "subject", "ClinicalImpression": "subject",
}

// dataAbsent is FHIR's data-absent-reason extension with code "unknown",
// for an element IPS requires that the record does not have.
func dataAbsent() map[string]any {
	return map[string]any{"extension": []any{map[string]any{
		"url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason", "valueCode": "unknown",
	}}}
}

// BuildIPS returns an International Patient Summary (IPS 2.0.0) FHIR R4
// Bundle of type "document", with an identifier and a timestamp, built
// from the patient and recs at time now:
//
//   - first a Composition (LOINC 60591-5 "Patient summary Document",
//     status final, subject the patient, date now, author the patient, or
//     a Device named "phr" when there is no patient record) with the IPS
//     sections its records fill (see ipsSectionOf): allergies (48765-2),
//     medications (10160-0), problems (11450-4), immunizations (11369-6),
//     results (30954-2), vital signs (8716-3), procedures (47519-4),
//     medical devices (46264-8), social history (29762-2), pregnancy
//     (10162-6), past illness (11348-0), functional status (47420-5),
//     alerts (104605-1), advance directives (42348-3) and plan of care
//     (18776-5). Each has a generated narrative listing its entries
//     (display text and date as written, HTML-escaped) and references
//     them, newest first;
//   - the three required sections are present even when empty, with an
//     emptyReason ("unavailable") and a narrative saying so; the others
//     only when they have entries;
//   - then the Patient, the Device if any, the section entries, and the
//     resources they reference (a Medication, a report's Observations, a
//     device use's Device, a performer).
//
// What IPS requires and a record lacks is marked absent rather than
// invented: a Patient without a name or birth date gets them as
// data-absent-reason ("unknown"; a minimal Patient so when there is no
// patient record), as does a MedicationStatement without an effective
// time. A section entry without a reference to its patient gets one to
// the bundle's Patient (a vault holds one person). Of the smoking status
// and alcohol use observations, IPS takes one each: the newest.
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
		b.patient = &bundleEntry{fullURL: newUUIDURN(), res: map[string]any{"resourceType": "Patient"}}
	}
	ipsPatient(b.patient.res)

	// Sort the candidates into sections.
	members := make([][]*bundleEntry, len(ipsSections))
	for _, e := range b.pool {
		if record.NegationOf(record.Resource(e.res)) == record.NegEnteredInError {
			continue
		}
		if i := ipsSectionOf(e); i >= 0 {
			members[i] = append(members[i], e)
		}
	}
	for i := range members {
		slices.SortStableFunc(members[i], func(x, y *bundleEntry) int { return entryDate(y).Compare(entryDate(x)) })
	}
	members[secSocial] = newestOfEach(members[secSocial], loincTobaccoUse, loincAlcoholUse)
	for i := range members {
		b.include(members[i])
	}
	b.includeReferenced()
	b.resolve()
	for _, m := range members {
		for _, e := range m {
			ipsEntry(e.res, b.patient.fullURL)
		}
	}

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

// ipsPatient marks the name and birth date IPS requires of the Patient
// as absent when the record has none (ips-pat-1: a name has a family
// name, given names or a text).
func ipsPatient(p map[string]any) {
	named := false
	for _, n := range record.Resource(p).List("name") {
		if m, ok := n.(map[string]any); ok && (m["family"] != nil || m["given"] != nil || m["text"] != nil || m["_text"] != nil) {
			named = true
		}
	}
	if !named {
		p["name"] = []any{map[string]any{"_text": dataAbsent()}}
	}
	if _, ok := p["birthDate"].(string); !ok && p["_birthDate"] == nil {
		p["_birthDate"] = dataAbsent()
	}
}

// ipsEntry gives a section entry the reference to its patient and the
// effective time (of a MedicationStatement) that IPS requires.
func ipsEntry(res map[string]any, patientURL string) {
	r := record.Resource(res)
	if f := ipsSubjectField[r.Type()]; f != "" {
		ref, _ := res[f].(map[string]any)
		if ref == nil {
			res[f] = map[string]any{"reference": patientURL}
		} else if s, _ := ref["reference"].(string); s == "" {
			ref["reference"] = patientURL
		}
	}
	if r.Type() == "MedicationStatement" {
		for _, k := range []string{"effectiveDateTime", "effectivePeriod", "_effectiveDateTime"} {
			if res[k] != nil {
				return
			}
		}
		res["_effectiveDateTime"] = dataAbsent()
	}
}

// newestOfEach keeps, of the entries (newest first) coded with each of
// codes, only the first.
func newestOfEach(es []*bundleEntry, codes ...string) []*bundleEntry {
	seen := map[string]bool{}
	out := es[:0:0]
	for _, e := range es {
		dup := false
		for _, c := range codes {
			if record.Resource(e.res).HasCoding("code", record.LOINC, c) {
				dup = seen[c]
				seen[c] = true
			}
		}
		if !dup {
			out = append(out, e)
		}
	}
	return out
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
			sb.WriteString(escapeText(ipsDisplay(record.Resource(e.res))))
			if d := record.WhenOf(record.Resource(e.res)).String(); d != "" {
				sb.WriteString(" (")
				sb.WriteString(escapeText(d))
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

// ipsDisplay is an entry's text in a narrative: record.DisplayOf, or for
// the types it can name only by their type (a device use, a consent),
// the device or the consent's category.
func ipsDisplay(r record.Resource) string {
	s := record.DisplayOf(r)
	if s != r.Type() {
		return s
	}
	for _, alt := range []string{r.Str("device.display"), r.ConceptText("category"), r.ConceptText("scope")} {
		if alt != "" {
			return alt
		}
	}
	return s
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
