package ccda

import (
	"strings"

	"github.com/phr-project/phr/pkg/record"
)

// Generic "problem" values that, negated, say "no known problems".
var genericProblems = map[string]bool{"55607006": true, "404684003": true, "64572001": true}

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

// condition maps one Problem Observation to a Condition and returns its
// id ("" when it was skipped).
func (c *conv) condition(act, o *node, category string) (string, error) {
	if status(act) == "nullified" || status(o) == "nullified" {
		c.skip("Condition", "entered in error")
		return "", nil
	}
	value := o.child("value")
	code := c.concept(value)
	if o.negated() || act.negated() {
		if code == nil || genericProblems[value.attr("code")] {
			c.skip("Condition", "no known problems")
		} else {
			c.skip("Condition", "negated")
		}
		return "", nil
	}
	if code == nil {
		c.skip("Condition", "no problem code (nullFlavor without original text)")
		return "", nil
	}
	id := c.resID(o, "Condition")
	res := newObj("resourceType", "Condition", "id", id)
	res.set("identifier", identifiers(o))
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
	if cs != "" {
		res.set("clinicalStatus", codeable(record.ConditionClin, cs, strings.ToUpper(cs[:1])+cs[1:]))
	}
	disp := map[string]string{"problem-list-item": "Problem List Item", "encounter-diagnosis": "Encounter Diagnosis"}[category]
	res.set("category", list(codeable(record.ConditionCat, category, disp)))
	res.set("code", code)
	res.set("bodySite", c.concepts(o.children("targetSiteCode")))
	res.set("subject", c.patientRef())
	res.set("onsetDateTime", onset)
	res.set("abatementDateTime", abatement)
	res.set("recordedDate", firstNonEmpty(c.authorTime(o), c.authorTime(act)))
	res.set("note", c.notes(o))
	if err := c.emit(res, o); err != nil {
		return "", err
	}
	return id, nil
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
