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
func (c *conv) procedureEntry(stmt *node) error {
	switch stmt.local {
	case "procedure", "observation", "act":
	default:
		c.skip("Procedure", "unsupported entry in procedures section")
		return nil
	}
	p := stmt
	if status(p) == "nullified" {
		c.skip("Procedure", "entered in error")
		return nil
	}
	if planned(p) {
		c.skip("Procedure", "planned, not performed")
		return nil
	}
	code := c.concept(p.child("code"))
	if code == nil {
		c.skip("Procedure", "no procedure code (nullFlavor without original text)")
		return nil
	}
	res := newObj("resourceType", "Procedure", "id", c.resID(p, "Procedure"))
	res.set("identifier", identifiers(p))
	st := procStatuses[status(p)]
	if p.negated() {
		st = "not-done"
	}
	if st == "" {
		st = "unknown"
	}
	res.set("status", st)
	if p.negated() {
		for _, o := range related(p, "observation") {
			if o.hasTemplate(tplRefusalReasonQDM) {
				res.set("statusReason", c.concept(o.child("value")))
			}
		}
	}
	res.set("code", code)
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
	return c.emit(res, p)
}

var encStatuses = map[string]string{
	"completed": "finished", "active": "in-progress", "aborted": "cancelled", "cancelled": "cancelled",
	"held": "onleave", "suspended": "onleave", "new": "planned",
}

// encounterEntry maps an Encounter Activity; its Encounter Diagnoses
// become Conditions the Encounter points to.
func (c *conv) encounterEntry(stmt *node) error {
	if stmt.local != "encounter" {
		c.skip("Encounter", "unsupported entry in encounters section")
		return nil
	}
	e := stmt
	if status(e) == "nullified" {
		c.skip("Encounter", "entered in error")
		return nil
	}
	if planned(e) {
		c.skip("Encounter", "planned encounter")
		return nil
	}
	res := newObj("resourceType", "Encounter", "id", c.resID(e, "Encounter"))
	res.set("identifier", identifiers(e))
	period := c.period(firstEffective(e))
	st := encStatuses[status(e)]
	if st == "" {
		st = "unknown"
		if status(e) == "" && period != nil {
			st = "finished" // an event with a time has happened
		}
	}
	res.set("status", st)
	code := e.child("code")
	res.set("class", encounterClass(code))
	if cc := c.concept(code); cc != nil {
		res.set("type", list(cc))
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
	return c.emit(res, e)
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
