package ccda

import "strings"

const (
	actEncounterCodes = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
	nullFlavorCodes   = "http://terminology.hl7.org/CodeSystem/v3-NullFlavor"
)

var procStatuses = map[string]string{
	"completed": "completed", "active": "in-progress", "aborted": "stopped", "cancelled": "not-done",
	"held": "on-hold", "suspended": "on-hold", "new": "preparation",
}

// procedureEntry maps a Procedure Activity Procedure, Observation or Act.
//
// The procedure's name is its code (translations, originalText), else the
// entry's own text. A negated procedure is "not-done" with its reason; a
// negated one without a real procedure (code nullFlavor, only 71388002
// "Procedure") says there were none and is skipped, as is a placeholder
// whose words say nothing is known. A nullified one is kept as
// entered-in-error.
func (c *conv) procedureEntry(stmt *node) error {
	if !c.occurred(stmt, "Procedure", "procedures", "planned, not performed", "procedure", "observation", "act") {
		return nil
	}
	p := stmt
	negated := p.negated()
	code := c.bestConcept(p.child("code"), c.entryText(p))
	if !names(code, genericProcedures) {
		c.skipAbsent("Procedure", negated, code.str("text"),
			"no known procedures (not a procedure)", "no procedure code (nullFlavor without original text)")
		return nil
	}
	res := newObj("resourceType", "Procedure")
	res.set("identifier", identifiers(p))
	st := procStatuses[status(p)]
	switch {
	case status(p) == "nullified":
		st = "entered-in-error"
	case negated:
		st = "not-done"
	case st == "":
		st = "unknown"
	}
	res.set("status", st)
	if st == "not-done" {
		if reasons := c.refusalReasons(p); len(reasons) > 0 {
			res.set("statusReason", reasons[0])
		}
	}
	res.set("code", dropGeneric(code, genericProcedures))
	res.set("subject", c.patientRef())
	c.effective(res, "performed", firstEffective(p))
	var perf []any
	for _, s := range performers(p) {
		perf = append(perf, newObj("actor", newObj("display", s)))
	}
	res.set("performer", perf)
	res.set("reasonCode", c.indications(p))
	res.set("bodySite", c.concepts(p.children("targetSiteCode")))
	res.set("note", c.notes(p))
	_, err := c.emit(res, p)
	return err
}

var encStatuses = map[string]string{
	"completed": "finished", "active": "in-progress", "aborted": "cancelled", "cancelled": "cancelled",
	"held": "onleave", "suspended": "onleave", "new": "planned",
}

// encounterEntry maps an Encounter Activity; its Encounter Diagnoses
// become Conditions the Encounter points to. A negated encounter did not
// take place and is skipped (FHIR's Encounter has no such status), and so
// is a placeholder that names no encounter ("No Encounters Indicated", or
// nothing at all: no type, time, place or diagnosis). A nullified one is
// kept as entered-in-error.
func (c *conv) encounterEntry(stmt *node) error {
	if !c.occurred(stmt, "Encounter", "encounters", "planned encounter", "encounter") {
		return nil
	}
	e := stmt
	if e.negated() {
		c.skip("Encounter", reasonNegated)
		return nil
	}
	code := e.child("code")
	typ := c.bestConcept(code, c.entryText(e))
	if typ != nil && !hasCoding(typ) {
		switch classifyText(typ.str("text")) {
		case textNoneKnown:
			c.skip("Encounter", "no known encounters (not an encounter)")
			return nil
		case textNoInfo:
			c.skip("Encounter", reasonNoInfo)
			return nil
		}
	}
	res := newObj("resourceType", "Encounter")
	res.set("identifier", identifiers(e))
	period := c.period(firstEffective(e))
	st := encStatuses[status(e)]
	switch {
	case status(e) == "nullified":
		st = "entered-in-error"
	case st == "":
		st = "unknown"
		if status(e) == "" && period != nil {
			st = "finished" // an event with a time has happened
		}
	}
	res.set("status", st)
	res.set("class", encounterClass(code))
	if typ != nil {
		res.set("type", list(typ))
	}
	res.set("subject", c.patientRef())
	var parts []any
	for _, s := range performers(e) {
		parts = append(parts, newObj("individual", newObj("display", s)))
	}
	res.set("participant", parts)
	res.set("period", period)
	res.set("reasonCode", c.indications(e))
	var diags []any
	for _, act := range related(e, "act") {
		if !act.hasTemplate(tplEncounterDx) {
			continue
		}
		for _, o := range related(act, "observation") {
			if !o.hasTemplate(tplProblemObs) && len(o.templates()) > 0 {
				continue
			}
			id, err := c.condition(act, o, "encounter-diagnosis")
			if err != nil {
				return err
			}
			if id != "" {
				diags = append(diags, newObj("condition", newObj("reference", "Condition/"+id)))
			}
		}
	}
	res.set("diagnosis", diags)
	if dd := c.concept(e.sdtc("dischargeDispositionCode")); dd != nil {
		res.set("hospitalization", newObj("dischargeDisposition", dd))
	}
	var locs []any
	for _, p := range e.children("participant") {
		if p.attr("typeCode") != "LOC" {
			continue
		}
		pr := p.child("participantRole")
		name := oneLine(pr.path("playingEntity", "name").textContent())
		if name == "" {
			name = c.concept(pr.child("code")).str("text")
		}
		if name == "" {
			if cd := coding(pr.child("code")); cd != nil {
				name = cd.str("display")
			}
		}
		if name != "" {
			locs = append(locs, newObj("location", newObj("display", name)))
		}
	}
	res.set("location", locs)
	if typ == nil && period == nil && len(diags) == 0 && len(locs) == 0 {
		c.skip("Encounter", "no encounter information (no type, time, place or diagnosis)")
		return nil
	}
	_, err := c.emit(res, e)
	return err
}

// encounterClass finds an ActCode encounter class (AMB, IMP, EMER, ...)
// in the encounter's code or its translations. FHIR requires a class; when
// the document gives none it is the UNK null flavor rather than a guess.
func encounterClass(code *node) *obj {
	cands := append([]*node{code}, code.children("translation")...)
	for _, n := range cands {
		if n != nil && n.attr("codeSystem") == oidActCode && n.attr("code") != "" && n.attr("nullFlavor") == "" {
			return newObj("system", actEncounterCodes, "code", strings.ToUpper(n.attr("code")), "display", oneLine(n.attr("displayName")))
		}
	}
	return newObj("system", nullFlavorCodes, "code", "UNK", "display", "unknown")
}
