package ccda

import (
	"strconv"
	"strings"

	"github.com/phr-project/phr/pkg/record"
)

// medStatuses maps a Medication Activity's statusCode ("ordered" is not
// an ActStatus, but Cerner writes it for prescriptions).
var medStatuses = map[string]string{
	"active": "active", "completed": "completed", "aborted": "stopped", "suspended": "on-hold",
	"held": "on-hold", "cancelled": "not-taken", "new": "intended", "ordered": "intended",
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

// product returns the best name of consumable/manufacturedProduct/
// manufacturedMaterial: its code with translations, its original text,
// else its name.
func (c *conv) product(sa *node) (*obj, *node) {
	mp := sa.path("consumable", "manufacturedProduct")
	mm := mp.child("manufacturedMaterial")
	return c.bestConcept(mm.child("code"), oneLine(mm.child("name").textContent())), mp
}

// Medication Status observation values (the CCD-era template
// 2.16.840.1.113883.10.20.1.47, LOINC 33999-4 "Status", still in R1.1
// exports) as MedicationStatement statuses.
var medStatusValues = map[string]string{
	"55561003":  "active",    // Active
	"73425007":  "completed", // Inactive ("No Longer Active")
	"421139008": "on-hold",   // On hold
	"392521001": "completed", // Prior history
	"413322009": "completed", // Resolved
	"116673000": "completed", // Administered
}

// medStatusWords maps the status observation's words when its value has
// no code ("Ordered").
var medStatusWords = map[string]string{
	"active": "active", "ordered": "intended", "completed": "completed", "discontinued": "stopped",
	"stopped": "stopped", "on hold": "on-hold", "held": "on-hold", "inactive": "completed",
}

// medStatusObs returns the status a Medication Status observation gives,
// or "".
func (c *conv) medStatusObs(sa *node) string {
	for _, o := range related(sa, "observation") {
		code := o.child("code")
		if !o.hasTemplate(tplMedStatus) && !(code.attr("code") == "33999-4" && code.attr("codeSystem") == oidLOINC) {
			continue
		}
		v := o.child("value")
		if v == nil {
			continue
		}
		if st := medStatusValues[v.attr("code")]; st != "" && v.attr("nullFlavor") == "" {
			return st
		}
		if st := medStatusWords[strings.ToLower(c.originalText(v))]; st != "" {
			return st
		}
	}
	return ""
}

// refusalReasons returns the reasons given for not doing something: the
// Immunization Refusal Reason (4.53, its code) and the QRDA Reason
// (2.16.840.1.113883.10.20.24.3.88, its value).
func (c *conv) refusalReasons(n *node) []any {
	var out []any
	for _, o := range related(n, "observation") {
		if !o.hasTemplate(tplRefusalReasonQDM, tplImmRefusal) {
			continue
		}
		cc := c.concept(o.child("value"))
		if o.hasTemplate(tplImmRefusal) || cc == nil {
			if x := c.concept(o.child("code")); x != nil && !conceptHas(x, record.LOINC, "77301-0") {
				cc = x
			}
		}
		if cc != nil {
			out = append(out, cc)
		}
	}
	return out
}

// medication maps a Medication Activity to a MedicationStatement.
//
// A negated activity of a real drug is "not-taken"; a negated one without
// a real drug (code nullFlavor, only 410942007 "drug or medicament") or a
// placeholder saying there are none is the IPS no-known-medications
// statement; one whose words say nothing is known is skipped. A nullified
// activity is kept as entered-in-error. The status is the Medication
// Status observation's when there is one (R1.1 exports say "completed" in
// statusCode and "Active" there), else statusCode's.
func (c *conv) medication(sa *node) error {
	if sa.attr("nullFlavor") != "" {
		c.skip("MedicationStatement", reasonNullFlav)
		return nil
	}
	med, _ := c.product(sa)
	negated := sa.negated()
	res := newObj("resourceType", "MedicationStatement")
	res.set("identifier", identifiers(sa))
	if !names(med, genericDrugs) {
		words := firstNonEmpty(med.str("text"), c.entryText(sa))
		switch absentKind(negated, words) {
		case textNoInfo:
			c.skip("MedicationStatement", reasonNoInfo)
			return nil
		case textName:
			c.skip("MedicationStatement", "no medication code (nullFlavor without original text)")
			return nil
		}
		st := "active" // "no known medications" holds now
		if status(sa) == "nullified" {
			st = "entered-in-error"
		}
		res.set("status", st)
		res.set("medicationCodeableConcept", noneKnown(noKnownMedications[0], noKnownMedications[1], noKnownMedications[2], words))
		res.set("subject", c.patientRef())
		res.set("dateAsserted", c.authorTime(sa))
		_, err := c.emit(res, sa)
		return err
	}
	st := ""
	switch {
	case status(sa) == "nullified":
		st = "entered-in-error"
	case negated:
		st = "not-taken"
	default:
		st = c.medStatusObs(sa)
		if st == "" {
			st = medStatuses[status(sa)]
		}
	}
	if st == "" {
		st = "unknown"
	}
	res.set("status", st)
	if negated {
		res.set("statusReason", c.refusalReasons(sa))
	}
	res.set("medicationCodeableConcept", dropGeneric(med, genericDrugs))
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
	_, err := c.emit(res, sa)
	return err
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
		// A dose counted in units of the product ("2" puffs) names the
		// unit in administrationUnitCode.
		au := sa.child("administrationUnitCode")
		if q := quantity(dq); q != nil {
			dr.set("doseQuantity", c.doseUnit(q, au))
		} else if lo, hi := quantity(dq.child("low")), quantity(dq.child("high")); lo != nil || hi != nil {
			dr.set("doseRange", newObj("low", c.doseUnit(lo, au), "high", c.doseUnit(hi, au)))
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

// doseUnit gives a dose quantity without a unit the administration unit
// (administrationUnitCode: PUFF, TABLET ...): its display (else its code)
// as unit, and its code and system, which are not UCUM.
func (c *conv) doseUnit(q *obj, au *node) *obj {
	if q == nil || q.has("unit") || au.null() {
		return q
	}
	cd := coding(au)
	if cd == nil {
		return q
	}
	q.set("unit", firstNonEmpty(cd.str("display"), cd.str("code")))
	q.set("system", cd.str("system"))
	if cd.has("system") {
		q.set("code", cd.str("code"))
	}
	return q
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
//
// A negated activity of a real vaccine is "not-done", with the
// Immunization Refusal Reason (4.53) as statusReason; a negated one
// without a real vaccine ("no immunization history": code nullFlavor, the
// generic SNOMED CT 71181003 vaccine, CVX 998) is not an immunization and
// is skipped, as is a placeholder whose words say there are none or that
// nothing is known. A nullified activity is kept as entered-in-error.
func (c *conv) immunizationEntry(stmt *node) error {
	if !c.occurred(stmt, "Immunization", "immunizations", "planned, not given", "substanceAdministration") {
		return nil
	}
	sa := stmt
	vaccine, mp := c.product(sa)
	negated := sa.negated()
	if !names(vaccine, genericVaccines) {
		c.skipAbsent("Immunization", negated, firstNonEmpty(vaccine.str("text"), c.entryText(sa)),
			"no known immunizations (not an immunization)", "no vaccine code (nullFlavor without original text)")
		return nil
	}
	res := newObj("resourceType", "Immunization")
	res.set("identifier", identifiers(sa))
	switch {
	case status(sa) == "nullified":
		res.set("status", "entered-in-error")
	case negated || status(sa) == "cancelled":
		res.set("status", "not-done")
		if reasons := c.refusalReasons(sa); len(reasons) > 0 {
			res.set("statusReason", reasons[0])
		}
	default:
		res.set("status", "completed")
	}
	res.set("vaccineCode", dropGeneric(vaccine, genericVaccines))
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
	_, err := c.emit(res, sa)
	return err
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
