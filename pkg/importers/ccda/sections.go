package ccda

import "slices"

// Section and entry templates (C-CDA R2.1; R1.1 uses the same roots,
// R2.x adds extensions, which are ignored).
const (
	tplAllergyConcern   = "2.16.840.1.113883.10.20.22.4.30"
	tplAllergyObs       = "2.16.840.1.113883.10.20.22.4.7"
	tplSeverity         = "2.16.840.1.113883.10.20.22.4.8"
	tplReaction         = "2.16.840.1.113883.10.20.22.4.9"
	tplAllergyStatus    = "2.16.840.1.113883.10.20.22.4.28"
	tplCriticality      = "2.16.840.1.113883.10.20.22.4.145"
	tplMedActivity      = "2.16.840.1.113883.10.20.22.4.16"
	tplIndication       = "2.16.840.1.113883.10.20.22.4.19"
	tplInstruction      = "2.16.840.1.113883.10.20.22.4.20"
	tplProblemConcern   = "2.16.840.1.113883.10.20.22.4.3"
	tplProblemObs       = "2.16.840.1.113883.10.20.22.4.4"
	tplProblemStatus    = "2.16.840.1.113883.10.20.22.4.6"
	tplResultOrganizer  = "2.16.840.1.113883.10.20.22.4.1"
	tplResultObs        = "2.16.840.1.113883.10.20.22.4.2"
	tplVitalOrganizer   = "2.16.840.1.113883.10.20.22.4.26"
	tplVitalObs         = "2.16.840.1.113883.10.20.22.4.27"
	tplImmunization     = "2.16.840.1.113883.10.20.22.4.52"
	tplImmRefusal       = "2.16.840.1.113883.10.20.22.4.53"
	tplProcAct          = "2.16.840.1.113883.10.20.22.4.12"
	tplProcObs          = "2.16.840.1.113883.10.20.22.4.13"
	tplProcProc         = "2.16.840.1.113883.10.20.22.4.14"
	tplEncounter        = "2.16.840.1.113883.10.20.22.4.49"
	tplEncounterDx      = "2.16.840.1.113883.10.20.22.4.80"
	tplSmokingStatus    = "2.16.840.1.113883.10.20.22.4.78"
	tplTobaccoUse       = "2.16.840.1.113883.10.20.22.4.85"
	tplComment          = "2.16.840.1.113883.10.20.22.4.64"
	tplDischargeDx      = "2.16.840.1.113883.10.20.22.4.33"
	tplAdmissionDx      = "2.16.840.1.113883.10.20.22.4.34"
	tplDischargeMed     = "2.16.840.1.113883.10.20.22.4.35"
	tplAdmissionMed     = "2.16.840.1.113883.10.20.22.4.36"
	tplRefusalReasonQDM = "2.16.840.1.113883.10.20.24.3.88"
	tplMedStatus        = "2.16.840.1.113883.10.20.1.47" // CCD Medication Status Observation
)

type sectionKind int

const (
	secOther sectionKind = iota
	secAllergies
	secMedications
	secProblems
	secDiagnoses // hospital admission/discharge diagnoses: Conditions of the encounter
	secResults
	secVitals
	secImmunizations
	secProcedures
	secEncounters
	secSocial
)

var sectionTemplates = map[string]sectionKind{
	"2.16.840.1.113883.10.20.22.2.6":    secAllergies,
	"2.16.840.1.113883.10.20.22.2.6.1":  secAllergies,
	"2.16.840.1.113883.10.20.22.2.1":    secMedications,
	"2.16.840.1.113883.10.20.22.2.1.1":  secMedications,
	"2.16.840.1.113883.10.20.22.2.38":   secMedications, // medications administered
	"2.16.840.1.113883.10.20.22.2.11":   secMedications, // hospital discharge medications
	"2.16.840.1.113883.10.20.22.2.11.1": secMedications,
	"2.16.840.1.113883.10.20.22.2.44":   secMedications, // admission medications
	"2.16.840.1.113883.10.20.22.2.5":    secProblems,
	"2.16.840.1.113883.10.20.22.2.5.1":  secProblems,
	"2.16.840.1.113883.10.20.22.2.24":   secDiagnoses, // hospital discharge diagnosis
	"2.16.840.1.113883.10.20.22.2.43":   secDiagnoses, // hospital admission diagnosis
	"2.16.840.1.113883.10.20.22.2.3":    secResults,
	"2.16.840.1.113883.10.20.22.2.3.1":  secResults,
	"2.16.840.1.113883.10.20.22.2.4":    secVitals,
	"2.16.840.1.113883.10.20.22.2.4.1":  secVitals,
	"2.16.840.1.113883.10.20.22.2.2":    secImmunizations,
	"2.16.840.1.113883.10.20.22.2.2.1":  secImmunizations,
	"2.16.840.1.113883.10.20.22.2.7":    secProcedures,
	"2.16.840.1.113883.10.20.22.2.7.1":  secProcedures,
	"2.16.840.1.113883.10.20.22.2.22":   secEncounters,
	"2.16.840.1.113883.10.20.22.2.22.1": secEncounters,
	"2.16.840.1.113883.10.20.22.2.17":   secSocial,
}

// Section LOINC codes, for sections without (known) templateIds.
var sectionCodes = map[string]sectionKind{
	"48765-2": secAllergies,
	"10160-0": secMedications,
	"29549-3": secMedications,
	"10183-2": secMedications,
	"42346-7": secMedications,
	"11450-4": secProblems,
	"11535-2": secDiagnoses,
	"46241-6": secDiagnoses,
	"30954-2": secResults,
	"8716-3":  secVitals,
	"11369-6": secImmunizations,
	"47519-4": secProcedures,
	"46240-8": secEncounters,
	"29762-2": secSocial,
}

// unmapped names the sections whose entries phr does not map yet, by
// section LOINC code: the FHIR resource type they would become and a name
// for the skip reason. Their content is kept in the DocumentReference.
var unmapped = map[string][2]string{
	"18776-5": {"CarePlan", "plan of treatment"},
	"10157-6": {"FamilyMemberHistory", "family history"},
	"47420-5": {"Observation", "functional status"},
	"48768-6": {"Coverage", "payers"},
	"46264-8": {"Device", "medical equipment"},
	"42348-3": {"Consent", "advance directives"},
	"61146-7": {"Goal", "goals"},
	"75310-3": {"Condition", "health concerns"},
	"10190-7": {"Observation", "mental status"},
	"61144-2": {"Observation", "nutrition"},
	"69730-0": {"Communication", "instructions"},
	"85847-2": {"CareTeam", "care team"},
	"29299-5": {"Observation", "reason for visit"},
	"8648-8":  {"Observation", "hospital course"},
	"51848-0": {"Observation", "assessment"},
	"62387-6": {"Procedure", "interventions"},
	"11348-0": {"Condition", "past medical history"},
	"29545-1": {"Observation", "physical findings"},
	"10187-3": {"Observation", "review of systems"},
	"57828-6": {"ServiceRequest", "prescriptions"},
	"59776-5": {"Procedure", "procedure findings"},
	"11493-4": {"Observation", "hospital consultations"},
	"34109-9": {"DocumentReference", "notes"},
}

// kindTypes is the main resource type of each mapped section, for skip
// reports.
var kindTypes = map[sectionKind]string{
	secAllergies: "AllergyIntolerance", secMedications: "MedicationStatement", secProblems: "Condition",
	secDiagnoses: "Condition", secResults: "Observation", secVitals: "Observation",
	secImmunizations: "Immunization", secProcedures: "Procedure", secEncounters: "Encounter",
	secSocial: "Observation",
}

func (c *conv) sectionKind(s *node) sectionKind {
	for _, t := range s.templates() {
		if k, ok := sectionTemplates[t]; ok {
			return k
		}
	}
	if code := s.child("code"); code != nil && code.attr("codeSystem") == "2.16.840.1.113883.6.1" {
		if k, ok := sectionCodes[code.attr("code")]; ok {
			return k
		}
	}
	return secOther
}

// section maps the entries of one section and of the sections nested in
// it. A section with a nullFlavor or without entries is narrative only:
// the DocumentReference keeps it.
func (c *conv) section(s *node, depth int) error {
	if s == nil || depth > 16 {
		return nil
	}
	kind := c.sectionKind(s)
	if kind == secDiagnoses {
		prev := c.dxRole
		c.dxRole = diagnosisRole(s)
		defer func() { c.dxRole = prev }()
	}
	for _, e := range s.children("entry") {
		stmt := firstElem(e)
		if stmt == nil {
			continue
		}
		if stmt.attr("nullFlavor") != "" && kind != secOther {
			c.skip(kindTypes[kind], "no information (entry is a nullFlavor)")
			continue
		}
		var err error
		switch kind {
		case secAllergies:
			err = c.allergyEntry(stmt)
		case secMedications:
			err = c.medicationEntry(stmt, 0)
		case secProblems:
			err = c.problemEntry(stmt, "problem-list-item")
		case secDiagnoses:
			err = c.problemEntry(stmt, "encounter-diagnosis")
		case secResults:
			err = c.resultEntry(stmt)
		case secVitals:
			err = c.vitalEntry(stmt)
		case secImmunizations:
			err = c.immunizationEntry(stmt)
		case secProcedures:
			err = c.procedureEntry(stmt)
		case secEncounters:
			err = c.encounterEntry(stmt)
		case secSocial:
			err = c.socialEntry(stmt)
		default:
			c.skipUnmapped(s, stmt)
		}
		if err != nil {
			return err
		}
	}
	for _, comp := range s.children("component") {
		if err := c.section(comp.child("section"), depth+1); err != nil {
			return err
		}
	}
	return nil
}

// diagnosisRole tells a hospital admission diagnosis section (AD) from a
// discharge diagnosis section (DD), codes of the diagnosis-role code
// system, so that the same diagnosis on admission and at discharge stays
// two facts.
func diagnosisRole(s *node) string {
	switch {
	case s.hasTemplate("2.16.840.1.113883.10.20.22.2.43"):
		return "AD"
	case s.hasTemplate("2.16.840.1.113883.10.20.22.2.24"):
		return "DD"
	}
	switch s.child("code").attr("code") {
	case "46241-6":
		return "AD"
	case "11535-2":
		return "DD"
	}
	return ""
}

func (c *conv) skipUnmapped(s, stmt *node) {
	code := s.child("code").attr("code")
	if u, ok := unmapped[code]; ok {
		c.skip(u[0], "not mapped yet: "+u[1]+" section (kept in the DocumentReference)")
		return
	}
	rt := map[string]string{
		"observation": "Observation", "procedure": "Procedure", "encounter": "Encounter",
		"substanceAdministration": "MedicationStatement", "supply": "SupplyDelivery",
		"organizer": "Observation", "act": "Basic",
	}[stmt.local]
	if rt == "" {
		rt = "Basic"
	}
	c.skip(rt, "not mapped: unrecognized section (kept in the DocumentReference)")
}

// firstElem returns the clinical statement inside an entry or
// entryRelationship.
func firstElem(n *node) *node {
	for _, k := range n.kids {
		if !k.isV3() {
			continue
		}
		switch k.local {
		case "act", "observation", "organizer", "procedure", "substanceAdministration", "supply", "encounter", "observationMedia", "regionOfInterest":
			return k
		}
	}
	return nil
}

// related returns the clinical statements named local in n's
// entryRelationships.
func related(n *node, local string) []*node {
	var out []*node
	for _, er := range n.children("entryRelationship") {
		if s := er.child(local); s != nil {
			out = append(out, s)
		}
	}
	return out
}

// relatedWith returns the statements in n's entryRelationships that carry
// one of the templates.
func relatedWith(n *node, local string, roots ...string) []*node {
	var out []*node
	for _, s := range related(n, local) {
		if s.hasTemplate(roots...) {
			out = append(out, s)
		}
	}
	return out
}

// status returns statusCode/@code.
func status(n *node) string { return n.child("statusCode").attr("code") }

// notes maps Comment Activity acts to Annotations.
func (c *conv) notes(n *node) []any {
	var out []any
	for _, a := range relatedWith(n, "act", tplComment) {
		if t := c.entryText(a); t != "" {
			out = append(out, newObj("text", t))
		}
	}
	return out
}

// indications maps Indication observations to reason CodeableConcepts:
// the value, else (a nullFlavor value) the observation's own text.
func (c *conv) indications(n *node) []any {
	var out []any
	for _, o := range relatedWith(n, "observation", tplIndication) {
		if o.negated() || o.attr("nullFlavor") != "" {
			continue
		}
		if cc, _ := named(c.bestConcept(o.child("value"), c.entryText(o))); cc != nil {
			out = append(out, cc)
		}
	}
	return out
}

// authorTime is the first author/time of n.
func (c *conv) authorTime(n *node) string {
	for _, a := range n.children("author") {
		if t := c.ts(a.child("time")); t != "" {
			return t
		}
	}
	return ""
}

// performers returns display-only references to the people or
// organizations in n's performers.
func performers(n *node) []string {
	var out []string
	for _, p := range n.children("performer") {
		ae := p.child("assignedEntity")
		s := nameText(ae.path("assignedPerson", "name"))
		if s == "" {
			s = oneLine(ae.path("representedOrganization", "name").textContent())
		}
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

// occurred reports whether stmt, an entry of the named section, is an
// event to map as a resource of type rt: one of the element names locals,
// without a nullFlavor and not planned. Otherwise it skips it, giving
// notDone as the reason for a planned one.
func (c *conv) occurred(stmt *node, rt, section, notDone string, locals ...string) bool {
	if !slices.Contains(locals, stmt.local) {
		c.skip(rt, "unsupported entry in "+section+" section")
		return false
	}
	if stmt.attr("nullFlavor") != "" {
		c.skip(rt, reasonNullFlav)
		return false
	}
	if planned(stmt) {
		c.skip(rt, notDone)
		return false
	}
	return true
}

// planned reports a moodCode other than an event: intended, requested,
// proposed, appointed, promised.
func planned(n *node) bool {
	switch n.attr("moodCode") {
	case "", "EVN":
		return false
	}
	return true
}
