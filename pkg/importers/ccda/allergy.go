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
	if status(act) == "nullified" || status(o) == "nullified" {
		c.skip("AllergyIntolerance", "entered in error")
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
	substance := c.conceptOrName(pe.child("code"), pe.child("name"))
	value := o.child("value")
	valueCode := ""
	if !value.null() && value.attr("codeSystem") == oidSNOMED {
		valueCode = value.attr("code")
	}
	negated := o.negated() || act.negated()

	res := newObj("resourceType", "AllergyIntolerance", "id", c.resID(o, "AllergyIntolerance"))
	res.set("identifier", identifiers(o))

	// No known allergies: a negated observation without a real substance,
	// a "no known ..." value, or a substance that only says so.
	nka := ""
	nkaDisplay := ""
	switch {
	case noKnownValues[valueCode] && !negated:
		nka = valueCode
	case negated && (substance == nil || !hasCoding(substance)) && !freeTextSubstance(substance):
		m, ok := noKnown[valueCode]
		if !ok {
			m = noKnown["419199007"]
		}
		nka, nkaDisplay = m[0], m[1]
	case !negated && substance != nil && !hasCoding(substance) && isNKAText(substance.str("text")):
		nka, nkaDisplay = snomedNKA, "No known allergy"
		if strings.Contains(strings.ToLower(substance.str("text")), "drug") || strings.Contains(strings.ToUpper(substance.str("text")), "NKDA") {
			nka, nkaDisplay = snomedNKDA, "No known drug allergy"
		}
	}
	if nka != "" {
		code := c.concept(value)
		if nkaDisplay != "" || code == nil {
			code = codeable(record.SNOMED, nka, nkaDisplay)
		}
		if t := c.entryText(o); t != "" {
			code.set("text", t)
		}
		res.set("clinicalStatus", codeable(record.AllergyClin, "active", "Active"))
		res.set("verificationStatus", codeable(allergyVerif, "confirmed", "Confirmed"))
		res.set("code", code)
		res.set("patient", c.patientRef())
		res.set("recordedDate", firstNonEmpty(c.authorTime(o), c.authorTime(act)))
		return c.emit(res, o)
	}
	if negated {
		c.skip("AllergyIntolerance", "negated")
		return nil
	}
	if substance == nil {
		c.skip("AllergyIntolerance", "no substance code (nullFlavor without original text)")
		return nil
	}

	// Clinical status: the Allergy Status Observation, else the concern
	// act's status; an end time means resolved.
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
	if cs == "resolved" || cs == "inactive" || cs == "active" {
		res.set("clinicalStatus", codeable(record.AllergyClin, cs, strings.ToUpper(cs[:1])+cs[1:]))
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
		m := c.concept(ro.child("value"))
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
	res.set("note", c.notes(o))
	return c.emit(res, o)
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

func hasCoding(cc *obj) bool {
	cs, _ := cc.get("coding").([]any)
	return len(cs) > 0
}

// freeTextSubstance reports a substance named only in text that is not a
// "no known allergies" statement.
func freeTextSubstance(cc *obj) bool {
	return cc != nil && cc.str("text") != "" && !isNKAText(cc.str("text"))
}

func isNKAText(s string) bool {
	s = strings.ToLower(strings.TrimSpace(s))
	switch s {
	case "nka", "nkda", "nkfa", "nkma", "none", "no known allergies", "no known drug allergies", "no known allergy",
		"no known drug allergy", "no known food allergies", "no known medication allergies", "no allergies":
		return true
	}
	return false
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}
