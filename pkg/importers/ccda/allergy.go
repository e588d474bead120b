package ccda

import (
	"strings"

	"github.com/phr-project/phr/pkg/record"
)

const (
	oidSNOMED      = "2.16.840.1.113883.6.96"
	oidLOINC       = "2.16.840.1.113883.6.1"
	oidActCode     = "2.16.840.1.113883.5.4"
	allergyVerif   = "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification"
	snomedNKA      = "716186003"
	snomedNKDA     = "409137002"
	snomedNKFA     = "429625007"
	snomedNKEA     = "428607008"
	snomedNKAOld   = "160244002" // "No known allergies", a finding used by R1.1 exports
	snomedNKInsect = "428197003"
)

// noKnown maps the allergy type (observation value) of a negated allergy
// without a substance to the SNOMED "no known ..." situation (the C-CDA
// on FHIR CF-NoKnownAllergies concept map).
var noKnown = map[string][2]string{
	"419199007": {snomedNKA, "No known allergy"},
	"416098002": {snomedNKDA, "No known drug allergy"},
	"414285001": {snomedNKFA, "No known food allergy"},
	"426232007": {snomedNKEA, "No known environmental allergy"},
}

// Values that are themselves "no known allergy" statements.
var noKnownValues = map[string]bool{snomedNKA: true, snomedNKDA: true, snomedNKFA: true, snomedNKEA: true, snomedNKAOld: true, snomedNKInsect: true}

// allergyTypes maps the allergy observation's value (its kind) to
// AllergyIntolerance type and category.
var allergyTypes = map[string][2]string{
	"419199007": {"allergy", ""},
	"416098002": {"allergy", "medication"},
	"414285001": {"allergy", "food"},
	"426232007": {"allergy", "environment"},
	"232347008": {"allergy", "environment"},
	"59037007":  {"intolerance", "medication"},
	"235719002": {"intolerance", "food"},
	"782197009": {"intolerance", ""},
	"420134006": {"", ""},
	"418038007": {"", ""},
	"419511003": {"", "medication"},
	"418471000": {"", "food"},
}

var severities = map[string]string{
	"255604002": "mild", "6736007": "moderate", "24484000": "severe",
	"371923003": "moderate", "371924009": "severe", "399166001": "severe",
}

// Status observation values (allergy and problem status).
var clinicalStatuses = map[string]string{
	"55561003": "active", "73425007": "inactive", "413322009": "resolved",
	"277022003": "remission", "246455001": "recurrence",
}

// allergyEntry maps an Allergy Concern Act (or a bare Allergy
// Observation) in the allergies section.
func (c *conv) allergyEntry(stmt *node) error {
	var act *node
	var obs []*node
	switch stmt.local {
	case "act":
		act = stmt
		obs = relatedWith(act, "observation", tplAllergyObs)
		if len(obs) == 0 {
			for _, er := range act.children("entryRelationship") {
				if o := er.child("observation"); o != nil && !o.hasTemplate(tplReaction, tplSeverity, tplAllergyStatus, tplCriticality) {
					obs = append(obs, o)
				}
			}
		}
	case "observation":
		obs = []*node{stmt}
	}
	if len(obs) == 0 {
		c.skip("AllergyIntolerance", "no allergy observation in the entry")
		return nil
	}
	for _, o := range obs {
		if err := c.allergy(act, o); err != nil {
			return err
		}
	}
	return nil
}

func (c *conv) allergy(act, o *node) error {
	if o.attr("nullFlavor") != "" {
		c.skip("AllergyIntolerance", reasonNullFlav)
		return nil
	}
	pe := (*node)(nil)
	for _, p := range o.children("participant") {
		if x := p.path("participantRole", "playingEntity"); x != nil {
			pe = x
			if p.attr("typeCode") == "CSM" {
				break
			}
		}
	}
	substance := c.bestConcept(pe.child("code"), oneLine(pe.child("name").textContent()))
	value := o.child("value")
	valueCode := ""
	if !value.null() && value.attr("codeSystem") == oidSNOMED {
		valueCode = value.attr("code")
	}
	negated := o.negated() || act.negated()
	errored := status(act) == "nullified" || status(o) == "nullified"
	// What the statement says in words, for "none" and "no information".
	said := firstNonEmpty(c.entryText(o), c.originalText(value))

	// A real substance: a specific code, or a text that names one.
	isReal := names(substance, genericSubstances)
	substText := ""
	if substance != nil && !isReal {
		substText = substance.str("text")
	}

	res := newObj("resourceType", "AllergyIntolerance")
	res.set("identifier", identifiers(o))

	// No known allergies, in every way C-CDA says it: a negated
	// observation without a real substance (code nullFlavor, a generic
	// code such as 105590001 Substance, or no participant), a value that
	// is itself a "no known ..." code, or a substance or text that only
	// says so ("NKA", "No Known Allergies").
	nka, nkaDisplay := "", ""
	words := firstNonEmpty(substText, said)
	kind := textName
	if !isReal {
		kind = absentKind(negated, words)
	}
	switch {
	case kind == textNoInfo:
		c.skip("AllergyIntolerance", reasonNoInfo)
		return nil
	case !negated && noKnownValues[valueCode]:
		nka = valueCode
	case kind == textNoneKnown && negated:
		m, ok := noKnown[valueCode]
		if !ok {
			m = noKnown["419199007"]
		}
		nka, nkaDisplay = m[0], m[1]
	case kind == textNoneKnown:
		nka, nkaDisplay = noKnownAllergy[1], noKnownAllergy[2]
		if t := strings.ToLower(words); strings.Contains(t, "drug") || strings.Contains(t, "medication") || strings.Contains(t, "nkda") {
			nka, nkaDisplay = snomedNKDA, "No known drug allergy"
		}
	}
	if nka != "" {
		code := c.concept(value)
		if nkaDisplay != "" || code == nil {
			// The document's words when they say the same as the code;
			// a narrower code (no known drug allergy) keeps its own
			// name, so that "No Known Allergies" never stands for less.
			w := words
			if nka != snomedNKA {
				w = ""
			}
			code = noneKnown(record.SNOMED, nka, nkaDisplay, w)
		}
		if errored {
			res.set("verificationStatus", codeable(allergyVerif, "entered-in-error", "Entered in Error"))
		} else {
			res.set("clinicalStatus", codeable(record.AllergyClin, "active", "Active"))
			res.set("verificationStatus", codeable(allergyVerif, "confirmed", "Confirmed"))
		}
		res.set("code", code)
		res.set("patient", c.patientRef())
		res.set("recordedDate", firstNonEmpty(c.authorTime(o), c.authorTime(act)))
		_, err := c.emit(res, o)
		return err
	}
	if !isReal {
		c.skip("AllergyIntolerance", "no substance code (nullFlavor without original text)")
		return nil
	}

	// Clinical status: the Allergy Status Observation, else the concern
	// act's status; an end time means resolved. A negated allergy to a
	// real substance ("not allergic to peanuts") is refuted; a nullified
	// one is entered in error (and has no clinical status, FHIR ait-2).
	cs := ""
	for _, so := range relatedWith(o, "observation", tplAllergyStatus) {
		if v := so.child("value"); !v.null() {
			cs = clinicalStatuses[v.attr("code")]
		}
	}
	et := o.child("effectiveTime")
	if cs == "" && c.ts(et.child("high")) != "" {
		cs = "resolved"
	}
	if cs == "" && act != nil {
		cs = concernStatus(status(act))
	}
	switch {
	case errored:
		res.set("verificationStatus", codeable(allergyVerif, "entered-in-error", "Entered in Error"))
	default:
		if cs == "" && negated {
			cs = "active" // FHIR ait-1 wants a clinical status beside refuted
		}
		if cs == "resolved" || cs == "inactive" || cs == "active" {
			res.set("clinicalStatus", codeable(record.AllergyClin, cs, strings.ToUpper(cs[:1])+cs[1:]))
		}
		if negated {
			res.set("verificationStatus", codeable(allergyVerif, "refuted", "Refuted"))
		}
	}
	if t, ok := allergyTypes[valueCode]; ok {
		res.set("type", t[0])
		if t[1] != "" {
			res.set("category", list(t[1]))
		}
	}
	for _, co := range relatedWith(o, "observation", tplCriticality) {
		switch co.child("value").attr("code") {
		case "CRITL":
			res.set("criticality", "low")
		case "CRITH":
			res.set("criticality", "high")
		case "CRITU":
			res.set("criticality", "unable-to-assess")
		}
	}
	substance = dropGeneric(substance, genericSubstances)
	res.set("code", substance)
	res.set("patient", c.patientRef())
	res.set("onsetDateTime", firstNonEmpty(c.ts(et.child("low")), c.ts(et)))
	res.set("recordedDate", firstNonEmpty(c.authorTime(o), c.authorTime(act)))

	// Severity directly on the allergy (R1.1 placement) applies to every
	// reaction that has none of its own.
	allergySeverity := ""
	for _, so := range relatedWith(o, "observation", tplSeverity) {
		allergySeverity = severities[so.child("value").attr("code")]
	}
	reactionObs := relatedWith(o, "observation", tplReaction)
	if act != nil {
		reactionObs = append(reactionObs, relatedWith(act, "observation", tplReaction)...)
	}
	var reactions []any
	for _, ro := range reactionObs {
		if ro.attr("nullFlavor") != "" || ro.negated() {
			continue
		}
		// The reaction's name: its value (code, translations,
		// originalText), else the observation's own text.
		m, _ := named(c.bestConcept(ro.child("value"), c.entryText(ro)))
		if m == nil {
			continue
		}
		r := newObj("manifestation", list(m))
		sev := allergySeverity
		for _, so := range relatedWith(ro, "observation", tplSeverity) {
			if s := severities[so.child("value").attr("code")]; s != "" {
				sev = s
			}
		}
		r.set("severity", sev)
		r.set("onset", c.pointTime(ro.child("effectiveTime")))
		reactions = append(reactions, r)
	}
	res.set("reaction", reactions)
	// Some exports (the HL7 R1.1 samples, NIST) point the substance's
	// originalText at the reaction's narrative: codeine would read
	// "Shortness of Breath". A coded substance whose text is the name of
	// one of its own reactions takes the playingEntity's name instead (or
	// none, and its coding's display names it).
	if t := strings.ToLower(substance.str("text")); t != "" && hasCoding(substance) {
		for _, r := range reactions {
			m := r.(*obj).get("manifestation").([]any)[0].(*obj)
			if strings.ToLower(m.str("text")) == t || conceptDisplays(m, t) {
				name := oneLine(pe.child("name").textContent())
				if strings.ToLower(name) == t {
					name = ""
				}
				setOrDelete(substance, "text", name)
				break
			}
		}
	}
	res.set("note", c.notes(o))
	_, err := c.emit(res, o)
	return err
}

// concernStatus maps a concern act's statusCode to a clinical status.
func concernStatus(s string) string {
	switch s {
	case "active":
		return "active"
	case "completed":
		return "resolved"
	case "suspended", "aborted":
		return "inactive"
	}
	return ""
}

// conceptDisplays reports whether one of cc's codings has the display t
// (lower-case).
func conceptDisplays(cc *obj, t string) bool {
	cs, _ := cc.get("coding").([]any)
	for _, x := range cs {
		if strings.ToLower(x.(*obj).str("display")) == t {
			return true
		}
	}
	return false
}

// setOrDelete sets key, or removes it when v is empty.
func setOrDelete(o *obj, key, v string) {
	if v == "" {
		delete1(o, key)
		return
	}
	o.set(key, v)
}

func hasCoding(cc *obj) bool {
	cs, _ := cc.get("coding").([]any)
	return len(cs) > 0
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}
