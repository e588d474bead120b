package ccda

import (
	"strconv"

	"github.com/phr-project/phr/pkg/record"
)

const snomedDrugOrMedicament = "410942007"

var medStatuses = map[string]string{
	"active": "active", "completed": "completed", "aborted": "stopped", "suspended": "on-hold",
	"held": "on-hold", "cancelled": "not-taken", "new": "intended",
}

// medicationEntry maps a Medication Activity; admission and discharge
// medication acts wrap one.
func (c *conv) medicationEntry(stmt *node, depth int) error {
	switch stmt.local {
	case "substanceAdministration":
		return c.medication(stmt)
	case "act":
		inner := related(stmt, "substanceAdministration")
		if len(inner) == 0 || depth > 4 {
			c.skip("MedicationStatement", "unsupported entry in medications section")
			return nil
		}
		for _, sa := range inner {
			if err := c.medicationEntry(sa, depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	c.skip("MedicationStatement", "unsupported entry in medications section")
	return nil
}

// product returns the concept of consumable/manufacturedProduct/
// manufacturedMaterial: its code with translations, its original text,
// else its name.
func (c *conv) product(sa *node) (*obj, *node) {
	mp := sa.path("consumable", "manufacturedProduct")
	mm := mp.child("manufacturedMaterial")
	return c.conceptOrName(mm.child("code"), mm.child("name")), mp
}

func (c *conv) medication(sa *node) error {
	if status(sa) == "nullified" {
		c.skip("MedicationStatement", "entered in error")
		return nil
	}
	med, _ := c.product(sa)
	mm := sa.path("consumable", "manufacturedProduct", "manufacturedMaterial")
	generic := med == nil || (mm.child("code").null() && conceptHas(med, record.SNOMED, snomedDrugOrMedicament) && !med.has("text"))
	if sa.negated() && generic {
		c.skip("MedicationStatement", "no medications")
		return nil
	}
	if med == nil {
		c.skip("MedicationStatement", "no medication code (nullFlavor without original text)")
		return nil
	}
	res := newObj("resourceType", "MedicationStatement", "id", c.resID(sa, "MedicationStatement"))
	res.set("identifier", identifiers(sa))
	st := medStatuses[status(sa)]
	if sa.negated() {
		st = "not-taken"
	}
	if st == "" {
		st = "unknown"
	}
	res.set("status", st)
	if sa.negated() {
		var reasons []any
		for _, o := range related(sa, "observation") {
			if o.hasTemplate(tplRefusalReasonQDM) || o.hasTemplate(tplImmRefusal) {
				if cc := c.concept(o.child("value")); cc != nil {
					reasons = append(reasons, cc)
				} else if cc := c.concept(o.child("code")); cc != nil {
					reasons = append(reasons, cc)
				}
			}
		}
		res.set("statusReason", reasons)
	}
	res.set("medicationCodeableConcept", med)
	res.set("subject", c.patientRef())
	var timing *node
	for _, et := range sa.children("effectiveTime") {
		switch et.xsiType() {
		case "PIVL_TS", "EIVL_TS", "SXPR_TS", "PIVL_PPD_TS":
			if timing == nil {
				timing = et
			}
		default:
			if !res.has("effectiveDateTime") && !res.has("effectivePeriod") {
				c.effective(res, "effective", et)
			}
		}
	}
	res.set("dateAsserted", c.authorTime(sa))
	res.set("reasonCode", c.indications(sa))
	res.set("note", c.notes(sa))
	res.set("dosage", list(c.dosage(sa, timing)))
	return c.emit(res, sa)
}

// dosage maps the sig of a substanceAdministration.
func (c *conv) dosage(sa, timing *node) *obj {
	d := &obj{}
	d.set("text", c.entryText(sa))
	for _, ins := range relatedWith(sa, "act", tplInstruction) {
		if t := firstNonEmpty(c.entryText(ins), c.concept(ins.child("code")).str("text")); t != "" {
			d.set("patientInstruction", t)
		}
	}
	d.set("timing", c.timing(timing))
	if pc := sa.child("precondition"); pc != nil {
		if cc := c.concept(pc.path("criterion", "value")); cc != nil {
			d.set("asNeededCodeableConcept", cc)
		} else {
			d.set("asNeededBoolean", true)
		}
	}
	d.set("site", c.concept(sa.child("approachSiteCode")))
	d.set("route", c.concept(sa.child("routeCode")))
	dr := &obj{}
	if dq := sa.child("doseQuantity"); !dq.null() {
		if q := quantity(dq); q != nil {
			dr.set("doseQuantity", q)
		} else if lo, hi := quantity(dq.child("low")), quantity(dq.child("high")); lo != nil || hi != nil {
			dr.set("doseRange", newObj("low", lo, "high", hi))
		}
	}
	if rq := sa.child("rateQuantity"); !rq.null() {
		if q := quantity(rq); q != nil {
			dr.set("rateQuantity", q)
		} else if lo, hi := quantity(rq.child("low")), quantity(rq.child("high")); lo != nil || hi != nil {
			dr.set("rateRange", newObj("low", lo, "high", hi))
		}
	}
	d.set("doseAndRate", list(dr))
	if len(d.keys) == 0 {
		return nil
	}
	return d
}

// UCUM time units FHIR's Timing takes.
var timingUnits = map[string]string{"s": "s", "min": "min", "h": "h", "d": "d", "wk": "wk", "mo": "mo", "a": "a"}

// timing maps a PIVL_TS (every n units) or EIVL_TS (at an event such as
// bedtime) to a Timing.
func (c *conv) timing(et *node) *obj {
	if et == nil || et.attr("nullFlavor") != "" {
		return nil
	}
	rep := &obj{}
	switch et.xsiType() {
	case "PIVL_TS":
		p := et.child("period")
		if p == nil {
			return nil
		}
		unit := timingUnits[p.attr("unit")]
		if v, ok := number(p.attr("value")); ok && unit != "" {
			rep.set("frequency", 1)
			rep.set("period", v)
			rep.set("periodUnit", unit)
		} else if lo, hi := p.child("low"), p.child("high"); lo != nil && hi != nil {
			lv, ok1 := number(lo.attr("value"))
			hv, ok2 := number(hi.attr("value"))
			u := timingUnits[lo.attr("unit")]
			if ok1 && ok2 && u != "" && timingUnits[hi.attr("unit")] == u {
				rep.set("frequency", 1)
				rep.set("period", lv)
				rep.set("periodMax", hv)
				rep.set("periodUnit", u)
			}
		}
	case "EIVL_TS":
		if ev := et.child("event").attr("code"); ev != "" {
			rep.set("when", list(ev))
		}
	}
	if len(rep.keys) == 0 {
		return nil
	}
	return newObj("repeat", rep)
}

// immunizationEntry maps an Immunization Activity.
func (c *conv) immunizationEntry(stmt *node) error {
	if stmt.local != "substanceAdministration" {
		c.skip("Immunization", "unsupported entry in immunizations section")
		return nil
	}
	sa := stmt
	if status(sa) == "nullified" {
		c.skip("Immunization", "entered in error")
		return nil
	}
	if planned(sa) {
		c.skip("Immunization", "planned, not given")
		return nil
	}
	vaccine, mp := c.product(sa)
	if vaccine == nil {
		c.skip("Immunization", "no vaccine code (nullFlavor without original text)")
		return nil
	}
	res := newObj("resourceType", "Immunization", "id", c.resID(sa, "Immunization"))
	res.set("identifier", identifiers(sa))
	if sa.negated() {
		res.set("status", "not-done")
		for _, o := range related(sa, "observation") {
			if o.hasTemplate(tplImmRefusal) {
				res.set("statusReason", c.concept(o.child("code")))
			}
		}
	} else {
		res.set("status", "completed")
	}
	res.set("vaccineCode", vaccine)
	res.set("patient", c.patientRef())
	res.set("occurrenceDateTime", c.pointTime(firstEffective(sa)))
	res.set("recorded", c.authorTime(sa))
	mm := mp.child("manufacturedMaterial")
	res.set("lotNumber", oneLine(mm.child("lotNumberText").textContent()))
	if org := oneLine(mp.path("manufacturerOrganization", "name").textContent()); org != "" {
		res.set("manufacturer", newObj("display", org))
	}
	res.set("site", c.concept(sa.child("approachSiteCode")))
	res.set("route", c.concept(sa.child("routeCode")))
	res.set("doseQuantity", quantity(sa.child("doseQuantity")))
	res.set("note", c.notes(sa))
	res.set("reasonCode", c.indications(sa))
	if seq := sa.child("repeatNumber"); seq != nil {
		if n, err := strconv.Atoi(seq.attr("value")); err == nil && n > 0 && n < 100 {
			res.set("protocolApplied", list(newObj("doseNumberPositiveInt", n)))
		}
	}
	return c.emit(res, sa)
}

// firstEffective returns the first effectiveTime that is not a
// frequency.
func firstEffective(n *node) *node {
	for _, et := range n.children("effectiveTime") {
		switch et.xsiType() {
		case "PIVL_TS", "EIVL_TS", "SXPR_TS", "PIVL_PPD_TS":
			continue
		}
		return et
	}
	return nil
}
