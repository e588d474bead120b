package ccda

import (
	"strings"

	"github.com/phr-project/phr/pkg/record"
)

// problemEntry maps a Problem Concern Act (or a Hospital Admission or
// Discharge Diagnosis act, or a bare Problem Observation) to Conditions.
func (c *conv) problemEntry(stmt *node, category string) error {
	var act *node
	var obs []*node
	switch stmt.local {
	case "act":
		act = stmt
		obs = relatedWith(act, "observation", tplProblemObs)
		if len(obs) == 0 {
			for _, o := range related(act, "observation") {
				if !o.hasTemplate(tplProblemStatus, tplComment) {
					obs = append(obs, o)
				}
			}
		}
		// A diagnosis act may wrap a problem concern act.
		for _, inner := range related(act, "act") {
			if inner.hasTemplate(tplProblemConcern) {
				if err := c.problemEntry(inner, category); err != nil {
					return err
				}
			}
		}
	case "observation":
		obs = []*node{stmt}
	default:
		c.skip("Condition", "unsupported entry in problems section")
		return nil
	}
	for _, o := range obs {
		if _, err := c.condition(act, o, category); err != nil {
			return err
		}
	}
	return nil
}

const (
	conditionVer   = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
	diagnosisRoles = "http://terminology.hl7.org/CodeSystem/diagnosis-role"
)

// condition maps one Problem Observation to a Condition and returns its
// id ("" when it was skipped).
//
// The problem's name is the value (code, translations, originalText),
// else the observation's own text. A negated observation of a specific
// problem is a refuted Condition; a negated one without a specific
// problem ("no known problems") is a Condition coded with the IPS
// no-known-problems code; a nullified one is kept as entered-in-error.
func (c *conv) condition(act, o *node, category string) (string, error) {
	if o.attr("nullFlavor") != "" {
		c.skip("Condition", reasonNullFlav)
		return "", nil
	}
	errored := status(act) == "nullified" || status(o) == "nullified"
	negated := o.negated() || act.negated()
	said := c.entryText(o)
	code := c.bestConcept(o.child("value"), said)
	res := newObj("resourceType", "Condition")
	res.set("identifier", identifiers(o))

	none := false
	switch {
	case names(code, genericProblems):
		code = dropGeneric(code, genericProblems)
	default:
		// No specific problem: "none", or no information at all.
		text := code.str("text")
		switch absentKind(negated, text) {
		case textNoneKnown:
			none = true
			code = noneKnown(noKnownProblems[0], noKnownProblems[1], noKnownProblems[2], text)
		case textNoInfo:
			c.skip("Condition", reasonNoInfo)
			return "", nil
		default:
			c.skip("Condition", "no problem code (nullFlavor without original text)")
			return "", nil
		}
	}

	et := o.child("effectiveTime")
	onset := firstNonEmpty(c.ts(et.child("low")), c.ts(et))
	abatement := c.ts(et.child("high"))
	cs := ""
	for _, so := range relatedWith(o, "observation", tplProblemStatus) {
		if v := so.child("value"); !v.null() {
			cs = clinicalStatuses[v.attr("code")]
		}
	}
	if cs == "" && abatement != "" {
		cs = "resolved"
	}
	if cs == "" && act != nil {
		cs = concernStatus(status(act))
	}
	if abatement != "" && (cs == "active" || cs == "recurrence" || cs == "relapse") {
		cs = "resolved" // FHIR: an abated condition is not active
	}
	if none {
		cs = "active" // the statement "no known problems" holds now
	}
	switch {
	case errored:
		// FHIR con-5: no clinical status beside entered-in-error.
		res.set("verificationStatus", codeable(conditionVer, "entered-in-error", "Entered in Error"))
	case negated && !none:
		if cs != "" {
			res.set("clinicalStatus", codeable(record.ConditionClin, cs, strings.ToUpper(cs[:1])+cs[1:]))
		}
		res.set("verificationStatus", codeable(conditionVer, "refuted", "Refuted"))
	default:
		if cs != "" {
			res.set("clinicalStatus", codeable(record.ConditionClin, cs, strings.ToUpper(cs[:1])+cs[1:]))
		}
		if none {
			res.set("verificationStatus", codeable(conditionVer, "confirmed", "Confirmed"))
		}
	}
	disp := map[string]string{"problem-list-item": "Problem List Item", "encounter-diagnosis": "Encounter Diagnosis"}[category]
	cats := list(codeable(record.ConditionCat, category, disp))
	if category == "encounter-diagnosis" {
		switch c.dxRole {
		case "AD":
			cats = append(cats, codeable(diagnosisRoles, "AD", "Admission diagnosis"))
		case "DD":
			cats = append(cats, codeable(diagnosisRoles, "DD", "Discharge diagnosis"))
		}
	}
	res.set("category", cats)
	res.set("code", code)
	res.set("bodySite", c.concepts(o.children("targetSiteCode")))
	res.set("subject", c.patientRef())
	recorded := firstNonEmpty(c.authorTime(o), c.authorTime(act))
	if none {
		// "No known problems" has no onset; it was stated when the
		// concern was (the concern act's time) if no author says when.
		if recorded == "" && act != nil {
			recorded = c.pointTime(act.child("effectiveTime"))
		}
	} else {
		res.set("onsetDateTime", onset)
		res.set("abatementDateTime", abatement)
	}
	res.set("recordedDate", recorded)
	res.set("note", c.notes(o))
	return c.emit(res, o)
}

// concepts maps several CDs, dropping empty ones.
func (c *conv) concepts(ns []*node) []any {
	var out []any
	for _, n := range ns {
		if cc := c.concept(n); cc != nil {
			out = append(out, cc)
		}
	}
	return out
}
