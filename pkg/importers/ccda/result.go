package ccda

import (
	"strconv"
	"strings"

	"github.com/phr-project/phr/pkg/record"
)

const (
	diagServiceSections = "http://terminology.hl7.org/CodeSystem/v2-0074"
	loincSmokingStatus  = "72166-2"
)

var obsStatuses = map[string]string{
	"completed": "final", "active": "preliminary", "aborted": "cancelled", "cancelled": "cancelled",
	"held": "registered", "new": "registered", "suspended": "preliminary",
}

var reportStatuses = map[string]string{
	"completed": "final", "active": "partial", "aborted": "cancelled", "cancelled": "cancelled",
	"held": "registered", "new": "registered", "suspended": "partial", "nullified": "entered-in-error",
}

// resultEntry maps a Result Organizer to a DiagnosticReport and its Result
// Observations to Observations; a bare Result Observation to an
// Observation.
func (c *conv) resultEntry(stmt *node) error {
	switch stmt.local {
	case "observation":
		res, reason := c.observation(stmt, "laboratory", nil)
		if res == nil {
			c.skip("Observation", reason)
			return nil
		}
		_, err := c.emit(res, stmt)
		return err
	case "organizer":
	default:
		c.skip("Observation", "unsupported entry in results section")
		return nil
	}
	org := stmt
	if org.attr("nullFlavor") != "" {
		c.skip("DiagnosticReport", reasonNullFlav)
		return nil
	}
	var refs []any
	var firstTime, firstCode *obj
	comps := org.children("component")
	for _, comp := range comps {
		o := comp.child("observation")
		if o == nil {
			continue
		}
		res, reason := c.observation(o, "laboratory", org.child("effectiveTime"))
		if res == nil {
			c.skip("Observation", reason)
			continue
		}
		if status(org) == "nullified" {
			res.set("status", "entered-in-error") // the whole panel was
		}
		if firstTime == nil {
			firstTime = res
			firstCode, _ = res.get("code").(*obj)
		}
		id, err := c.emit(res, o)
		if err != nil {
			return err
		}
		if id != "" {
			refs = append(refs, newObj("reference", "Observation/"+id))
		}
	}
	code, _ := named(c.concept(org.child("code")))
	if code == nil && len(refs) == 1 {
		code = firstCode
	}
	if code == nil {
		if len(refs) == 0 {
			c.skip("DiagnosticReport", "no panel code and no results")
			return nil
		}
		code = newObj("text", "Laboratory results")
	}
	rep := newObj("resourceType", "DiagnosticReport")
	rep.set("identifier", identifiers(org))
	st := reportStatuses[status(org)]
	if st == "" {
		st = "unknown"
	}
	rep.set("status", st)
	rep.set("category", list(codeable(diagServiceSections, "LAB", "Laboratory")))
	rep.set("code", code)
	rep.set("subject", c.patientRef())
	c.effective(rep, "effective", org.child("effectiveTime"))
	if !rep.has("effectiveDateTime") && !rep.has("effectivePeriod") && firstTime != nil {
		rep.set("effectiveDateTime", firstTime.get("effectiveDateTime"))
	}
	rep.set("result", refs)
	_, err := c.emit(rep, org)
	return err
}

// observation maps a Result, Vital Sign or Social History observation.
// It returns nil and why when the entry is not imported.
//
// The observation's name is its code (translations, originalText), else
// its own text; a text that says nothing is known ("Result excluded/not
// available") is no name. A negated observation is skipped: FHIR has no
// negated Observation, and "not X" is not a value phr may invent. A
// nullified one is kept as entered-in-error.
func (c *conv) observation(o *node, category string, orgTime *node) (*obj, string) {
	if o.attr("nullFlavor") != "" {
		return nil, reasonNullFlav
	}
	if o.negated() {
		return nil, reasonNegated
	}
	if planned(o) {
		return nil, "planned, not performed"
	}
	code, kind := named(c.bestConcept(o.child("code"), c.entryText(o)))
	if code == nil {
		if kind == textNoInfo && c.entryText(o)+c.originalText(o.child("code")) != "" {
			return nil, reasonNoInfo
		}
		if kind == textNoneKnown {
			return nil, "no results (the document says there are none)"
		}
		return nil, "no observation code (nullFlavor without original text)"
	}
	res := newObj("resourceType", "Observation")
	res.set("identifier", identifiers(o))
	st := obsStatuses[status(o)]
	switch {
	case status(o) == "nullified":
		st = "entered-in-error"
	case st == "":
		st = "final"
		if status(o) != "" {
			st = "unknown"
		}
	}
	res.set("status", st)
	disp := map[string]string{"laboratory": "Laboratory", "vital-signs": "Vital Signs", "social-history": "Social History"}[category]
	res.set("category", list(codeable(record.ObsCategory, category, disp)))
	res.set("code", code)
	res.set("subject", c.patientRef())
	if t := c.pointTime(o.child("effectiveTime")); t != "" {
		res.set("effectiveDateTime", t)
	} else {
		res.set("effectiveDateTime", c.pointTime(orgTime))
	}
	c.value(res, o.child("value"))
	res.set("interpretation", c.concepts(o.children("interpretationCode")))
	res.set("note", c.notes(o))
	res.set("bodySite", c.concept(o.child("targetSiteCode")))
	res.set("method", c.concept(o.child("methodCode")))
	res.set("referenceRange", mapNodes(o.children("referenceRange"), func(rr *node) *obj { return c.referenceRange(rr.child("observationRange")) }))
	if !hasValue(res) && !res.has("effectiveDateTime") && !res.has("interpretation") && !res.has("note") {
		// A name alone says nothing about the patient (an organizer of
		// UNK placeholders, a "Laboratory Studies" stub).
		return nil, "no value"
	}
	return res, ""
}

// value sets value[x] from an ANY-typed value by its xsi:type.
func (c *conv) value(res *obj, v *node) {
	if v == nil || v.attr("nullFlavor") != "" {
		return
	}
	switch t := v.xsiType(); t {
	case "PQ":
		res.set("valueQuantity", quantity(v))
	case "IVL_PQ":
		c.rangeValue(res, v)
	case "CD", "CE", "CV", "CO", "CS":
		cc := c.concept(v)
		if cc == nil && t == "CS" && v.attr("code") != "" {
			cc = newObj("coding", list(newObj("code", v.attr("code"))))
		}
		res.set("valueCodeableConcept", cc)
	case "ST", "ED", "SC":
		s := ""
		if ref := v.child("reference"); ref != nil {
			s = c.refText(ref)
		}
		if s == "" {
			s = oneLine(v.textContent())
		}
		res.set("valueString", s)
	case "INT":
		if n, err := strconv.ParseInt(v.attr("value"), 10, 32); err == nil {
			res.set("valueInteger", int(n))
		}
	case "REAL":
		if n, ok := number(v.attr("value")); ok {
			res.set("valueQuantity", newObj("value", n))
		}
	case "BL":
		switch v.attr("value") {
		case "true":
			res.set("valueBoolean", true)
		case "false":
			res.set("valueBoolean", false)
		}
	case "TS":
		res.set("valueDateTime", c.ts(v))
	case "RTO", "RTO_PQ_PQ", "RTO_INT_INT", "RTO_QTY_QTY":
		num, den := quantity(v.child("numerator")), quantity(v.child("denominator"))
		if num != nil && den != nil {
			res.set("valueRatio", newObj("numerator", num, "denominator", den))
		}
	case "":
		switch {
		case v.attr("code") != "" || v.child("originalText") != nil:
			res.set("valueCodeableConcept", c.concept(v))
		case v.attr("value") != "":
			res.set("valueQuantity", quantity(v))
		default:
			res.set("valueString", oneLine(v.textContent()))
		}
	}
}

// rangeValue maps an IVL_PQ result: one bound (or a lower bound of 0, the
// C-CDA way to write "less than") is a Quantity with a comparator, two
// bounds a Range.
func (c *conv) rangeValue(res *obj, v *node) {
	lo, hi := quantity(v.child("low")), quantity(v.child("high"))
	incl := func(n *node) bool { return !strings.EqualFold(n.attr("inclusive"), "false") }
	switch {
	case lo != nil && hi == nil:
		cmp := ">="
		if !incl(v.child("low")) {
			cmp = ">"
		}
		lo.set("comparator", cmp)
		res.set("valueQuantity", reorderComparator(lo))
	case hi != nil && (lo == nil || isZero(lo)):
		cmp := "<="
		if !incl(v.child("high")) {
			cmp = "<"
		}
		hi.set("comparator", cmp)
		res.set("valueQuantity", reorderComparator(hi))
	case lo != nil && hi != nil:
		res.set("valueRange", newObj("low", lo, "high", hi))
	default:
		if q := quantity(v); q != nil {
			res.set("valueQuantity", q)
		} else if q := quantity(v.child("center")); q != nil {
			res.set("valueQuantity", q)
		}
	}
}

// reorderComparator puts comparator right after value, as FHIR writes it.
func reorderComparator(q *obj) *obj {
	out := newObj("value", q.get("value"), "comparator", q.get("comparator"))
	for i, k := range q.keys {
		if k != "value" && k != "comparator" {
			out.set(k, q.vals[i])
		}
	}
	return out
}

func isZero(q *obj) bool {
	v, _ := q.get("value").(interface{ String() string })
	if v == nil {
		return false
	}
	f, err := strconv.ParseFloat(v.String(), 64)
	return err == nil && f == 0
}

// referenceRange maps an observationRange that states the normal range
// (interpretationCode N or none); other ranges (high, critical) have no
// place in FHIR's referenceRange.
func (c *conv) referenceRange(or *node) *obj {
	if or == nil {
		return nil
	}
	if ic := or.child("interpretationCode"); ic != nil && ic.attr("code") != "" && ic.attr("code") != "N" {
		return nil
	}
	r := &obj{}
	v := or.child("value")
	if v != nil && v.attr("nullFlavor") == "" {
		switch v.xsiType() {
		case "IVL_PQ", "":
			r.set("low", quantity(v.child("low")))
			r.set("high", quantity(v.child("high")))
		}
	}
	text := ""
	if t := or.child("text"); t != nil {
		text = firstNonEmpty(c.refText(t.child("reference")), oneLine(t.ownText()))
	}
	if text == "" && v != nil && (v.xsiType() == "ST" || v.xsiType() == "ED") {
		text = oneLine(v.textContent())
	}
	r.set("text", text)
	if len(r.keys) == 0 {
		return nil
	}
	return r
}

// vitalEntry maps a Vital Signs Organizer's observations, with systolic and
// diastolic pressure combined into one blood pressure panel.
func (c *conv) vitalEntry(stmt *node) error {
	var obs []*node
	var orgTime *node
	switch stmt.local {
	case "organizer":
		if stmt.attr("nullFlavor") != "" {
			c.skip("Observation", reasonNullFlav)
			return nil
		}
		orgTime = stmt.child("effectiveTime")
		for _, comp := range stmt.children("component") {
			if o := comp.child("observation"); o != nil {
				obs = append(obs, o)
			}
		}
	case "observation":
		obs = []*node{stmt}
	default:
		c.skip("Observation", "unsupported entry in vital signs section")
		return nil
	}
	type mapped struct {
		o   *node
		res *obj
	}
	var all []mapped
	var sys, dia []int
	for _, o := range obs {
		res, reason := c.observation(o, "vital-signs", orgTime)
		if res == nil {
			c.skip("Observation", reason)
			continue
		}
		if status(stmt) == "nullified" {
			res.set("status", "entered-in-error") // the whole organizer was
		}
		cc, _ := res.get("code").(*obj)
		if res.has("valueQuantity") {
			switch {
			case conceptHas(cc, record.LOINC, record.LoincSystolic):
				sys = append(sys, len(all))
			case conceptHas(cc, record.LOINC, record.LoincDiastolic):
				dia = append(dia, len(all))
			}
		}
		all = append(all, mapped{o, res})
	}
	combined := map[int]*obj{}
	drop := map[int]bool{}
	for i := 0; i < len(sys) && i < len(dia); i++ {
		s, d := all[sys[i]], all[dia[i]]
		combined[sys[i]] = bpPanel(s.res, d.res)
		drop[dia[i]] = true
	}
	for i, m := range all {
		if drop[i] {
			continue
		}
		res := m.res
		if p, ok := combined[i]; ok {
			res = p
		}
		if _, err := c.emit(res, m.o); err != nil {
			return err
		}
	}
	return nil
}

// bpPanel combines systolic and diastolic observations into a blood
// pressure panel (LOINC 85354-9) with two components.
func bpPanel(sys, dia *obj) *obj {
	res := newObj("resourceType", "Observation")
	// Both identifiers, once each (some exports give both one id).
	var ids []any
	seen := map[string]bool{}
	for _, x := range append(anyList(sys.get("identifier")), anyList(dia.get("identifier"))...) {
		id := x.(*obj)
		if k := id.str("system") + "|" + id.str("value"); !seen[k] {
			seen[k] = true
			ids = append(ids, x)
		}
	}
	res.set("identifier", ids)
	res.set("status", sys.get("status"))
	res.set("category", sys.get("category"))
	res.set("code", newObj("coding", list(newObj("system", record.LOINC, "code", record.LoincBP, "display", "Blood pressure panel with all children optional")), "text", "Blood pressure"))
	res.set("subject", sys.get("subject"))
	res.set("effectiveDateTime", firstNonEmpty(sys.str("effectiveDateTime"), dia.str("effectiveDateTime")))
	res.set("interpretation", sys.get("interpretation"))
	comp := func(o *obj) *obj {
		return newObj("code", o.get("code"), "valueQuantity", o.get("valueQuantity"), "interpretation", o.get("interpretation"), "referenceRange", o.get("referenceRange"))
	}
	res.set("component", list(comp(sys), comp(dia)))
	return res
}

// socialEntry maps smoking status, tobacco use and other social history
// observations.
func (c *conv) socialEntry(stmt *node) error {
	if stmt.local != "observation" {
		c.skip("Observation", "unsupported entry in social history section")
		return nil
	}
	res, reason := c.observation(stmt, "social-history", nil)
	if res == nil {
		c.skip("Observation", reason)
		return nil
	}
	if stmt.hasTemplate(tplSmokingStatus) {
		cc, _ := res.get("code").(*obj)
		if !conceptHas(cc, record.LOINC, loincSmokingStatus) {
			// R1.1 coded smoking status as ASSERTION; FHIR (US Core) uses
			// LOINC 72166-2.
			res.set("code", newObj("coding", list(newObj("system", record.LOINC, "code", loincSmokingStatus, "display", "Tobacco smoking status")), "text", "Tobacco smoking status"))
		}
	}
	if stmt.hasTemplate(tplTobaccoUse) {
		delete1(res, "effectiveDateTime")
		c.effective(res, "effective", stmt.child("effectiveTime"))
	}
	if !hasValue(res) && !res.has("effectiveDateTime") && !res.has("effectivePeriod") {
		// A code alone says nothing about the patient.
		c.skip("Observation", "no value")
		return nil
	}
	_, err := c.emit(res, stmt)
	return err
}

func hasValue(res *obj) bool {
	for _, k := range res.keys {
		if strings.HasPrefix(k, "value") {
			return true
		}
	}
	return false
}

func delete1(o *obj, key string) {
	for i, k := range o.keys {
		if k == key {
			o.keys = append(o.keys[:i], o.keys[i+1:]...)
			o.vals = append(o.vals[:i], o.vals[i+1:]...)
			return
		}
	}
}
