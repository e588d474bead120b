package pdfdoc

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/phr-project/phr/pkg/record"
	"github.com/phr-project/phr/pkg/terminology"
)

// Options control a Summary.
type Options struct {
	// Now is when the document is made: shown on it (in Now's location)
	// and the PDF's creation date. Required.
	Now time.Time
	// Title heads the first page; "Health summary" when empty.
	Title string
	// Complete appends every record that no section of the summary
	// shows, and lists every result rather than the recent ones: the PDF
	// then renders all the records it was given.
	Complete bool
	// RecentResults is how many results the summary lists, newest first
	// (default 15). Ignored with Complete.
	RecentResults int
}

// ErrNoTime is returned when Options.Now is zero.
var ErrNoTime = errors.New("pdfdoc: Options.Now is required")

// item is one record on its way into the document.
type item struct {
	rec    *record.Record
	res    record.Resource
	when   record.When
	neg    string // record.NegationOf
	source string
	shown  bool // a section of the summary lists it
}

func (it *item) date() string { return it.when.String() }

// compareWhen orders by the instant (as sorting does everywhere in phr);
// undated last.
func compareWhen(a, b record.When) int {
	switch {
	case a.IsZero() && b.IsZero():
		return 0
	case a.IsZero():
		return 1
	case b.IsZero():
		return -1
	}
	return a.Time.Compare(b.Time)
}

// newestFirst sorts items by date, newest first, undated last.
func newestFirst(items []*item) {
	slices.SortStableFunc(items, func(a, b *item) int {
		switch {
		case a.when.IsZero() && b.when.IsZero():
			return 0
		case a.when.IsZero():
			return 1
		case b.when.IsZero():
			return -1
		}
		return b.when.Time.Compare(a.when.Time)
	})
}

// Summary renders patient and recs as a printable health summary (see
// the package documentation). patient may be the zero Record: the first
// Patient among recs, if any, is the patient then. Deleted records are
// left out; so are entered-in-error ones, except that Complete lists
// them apart as what they are.
func Summary(patient record.Record, recs []record.Record, o Options) ([]byte, error) {
	if o.Now.IsZero() {
		return nil, ErrNoTime
	}
	if o.Title == "" {
		o.Title = "Health summary"
	}
	if o.RecentResults <= 0 {
		o.RecentResults = 15
	}
	recs = slices.Clone(recs)
	// Name medications given by reference (a statement pointing at a
	// Medication record), as every other surface of phr does.
	if err := record.ResolveMedicationRefs(recs); err != nil {
		return nil, err
	}
	var pat record.Resource
	if len(patient.Resource) > 0 {
		p, err := record.Parse(patient.Resource)
		if err != nil {
			return nil, fmt.Errorf("pdfdoc: the patient record: %w", err)
		}
		pat = p
	}
	var items []*item
	sources := map[string]bool{}
	for i := range recs {
		r := &recs[i]
		if r.Deleted || len(r.Resource) == 0 {
			continue
		}
		res, err := record.Parse(r.Resource)
		if err != nil {
			return nil, fmt.Errorf("pdfdoc: record %s: %w", r.ID, err)
		}
		if res.Type() == "Patient" {
			if pat == nil {
				pat = res
			}
			continue
		}
		it := &item{rec: r, res: res, when: record.WhenOf(res), neg: record.NegationOf(res), source: sourceName(r.Provenance)}
		items = append(items, it)
		sources[it.source] = true
	}
	if len(patient.Resource) > 0 {
		sources[sourceName(patient.Provenance)] = true
	}
	newestFirst(items)
	srcs := sortedKeys(sources)
	if len(srcs) > 1 {
		// Tables name a record's source by its number in the header's
		// list; with one source, the header says it for all.
		for _, it := range items {
			it.source = strconv.Itoa(slices.Index(srcs, it.source) + 1)
		}
		for i := range srcs {
			srcs[i] = strconv.Itoa(i+1) + " = " + srcs[i]
		}
	} else {
		for _, it := range items {
			it.source = ""
		}
	}

	w := newWriter(o.Title, "Health summary made by phr", o.Now)
	w.sources = len(srcs) > 1
	name := patientName(pat)
	w.footLeft = o.Title + " · " + name + " · made " + o.Now.Format("2006-01-02 15:04")
	header(w, o, pat, name, srcs)

	allergies(w, items)
	medications(w, items)
	problems(w, items)
	results(w, items, o)
	socialHistory(w, items)
	vitals(w, items, o.Complete)
	immunizations(w, items)
	if o.Complete {
		everythingElse(w, items)
	}
	return w.bytes()
}

func sortedKeys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// sourceName names where a record came from for a reader.
func sourceName(p record.Provenance) string {
	s := p.Source()
	switch {
	case s == "self":
		return "entered by the patient"
	case p.File != "" && p.System == "":
		return s + " file " + p.File
	}
	return s
}

func patientName(p record.Resource) string {
	if p == nil {
		return "Patient not named"
	}
	if n := record.DisplayOf(p); n != "" && n != "Patient" {
		return n
	}
	return "Patient not named"
}

// header writes the patient's identity and what the document is.
func header(w *writer, o Options, pat record.Resource, name string, sources []string) {
	w.text(o.Title, 10, "B", grey)
	w.f.Ln(0.5)
	w.text(name, 18, "B", black)
	w.f.Ln(0.8)
	var facts []string
	if pat != nil {
		if bd := pat.Str("birthDate"); bd != "" {
			s := "Born " + bd
			if age := ageAt(bd, o.Now); age >= 0 {
				s += " (age " + strconv.Itoa(age) + ")"
			}
			facts = append(facts, s)
		} else {
			facts = append(facts, "Birth date not recorded")
		}
		if g := pat.Str("gender"); g != "" {
			facts = append(facts, "Sex: "+g)
		}
		for i, id := range pat.List("identifier") {
			if i == 3 {
				break
			}
			m, ok := id.(map[string]any)
			if !ok || ssn(m) {
				continue
			}
			idr := record.Resource(m)
			if v := idr.Str("value"); v != "" {
				label := idr.ConceptText("type")
				if label == "" {
					label = "ID"
				}
				facts = append(facts, label+" "+v)
			}
		}
	} else {
		facts = append(facts, "The record names no patient")
	}
	w.text(strings.Join(facts, "   ·   "), 10.5, "", black)
	w.f.Ln(1.2)
	w.text("Made "+o.Now.Format("2006-01-02 15:04")+" by phr from the patient's own record. Sources: "+strings.Join(sources, "; ")+".", 8.5, "", grey)
	w.text("Dates are as the sources wrote them. An empty section means the record holds nothing for it, not that the patient has nothing.", 8.5, "", grey)
}

// ssn reports whether an identifier is a social security number, which
// a printed summary leaves out: clinicians identify a patient by name,
// birth date and record number.
func ssn(id map[string]any) bool {
	if s, _ := id["system"].(string); s == "http://hl7.org/fhir/sid/us-ssn" {
		return true
	}
	return record.Resource(id).HasCoding("type", "http://terminology.hl7.org/CodeSystem/v2-0203", "SS")
}

// ageAt is the age in whole years on now's day of someone born on bd (a
// FHIR date), or -1 when bd is not a whole date.
func ageAt(bd string, now time.Time) int {
	if len(bd) < 10 {
		return -1
	}
	b, err := time.Parse(time.DateOnly, bd[:10])
	if err != nil {
		return -1
	}
	y, m, d := now.Date()
	age := y - b.Year()
	if m < b.Month() || m == b.Month() && d < b.Day() {
		age--
	}
	if age < 0 {
		return -1
	}
	return age
}

// conceptName names a concept: its text or a coding's display, the
// terminology's name, and only then the code with its system's name.
func conceptName(r record.Resource, path string) string {
	s := r.ConceptText(path)
	for _, c := range r.Codings(path) {
		if s == c.Code && c.Display == "" {
			if n := terminology.Name(c.System); n != "" {
				return n + " " + c.Code
			}
		}
	}
	return s
}

func code(r record.Resource, path string) string {
	for _, c := range r.Codings(path) {
		if c.Code != "" {
			return c.Code
		}
	}
	return ""
}

func ofType(items []*item, types ...string) []*item {
	var out []*item
	for _, it := range items {
		if slices.Contains(types, it.res.Type()) && it.neg != record.NegEnteredInError {
			out = append(out, it)
		}
	}
	return out
}

// sentence lists the display texts of items ("No known allergy").
func sentence(items []*item) string {
	var parts []string
	seen := map[string]bool{}
	for _, it := range items {
		s := record.DisplayOf(it.res)
		if d := it.date(); d != "" {
			s += " (" + d + ")"
		}
		if !seen[s] {
			seen[s] = true
			parts = append(parts, s)
		}
		it.shown = true
	}
	return strings.Join(parts, "; ")
}

func allergies(w *writer, items []*item) {
	w.heading("Allergies and intolerances")
	all := ofType(items, "AllergyIntolerance")
	var facts, none, ruledOut []*item
	for _, it := range all {
		switch it.neg {
		case "":
			facts = append(facts, it)
		case record.NegNoneKnown:
			none = append(none, it)
		default:
			ruledOut = append(ruledOut, it)
		}
	}
	if len(all) == 0 {
		w.note("The record holds no information about allergies.")
		return
	}
	rank := func(it *item) int {
		r := 0
		if it.res.Str("criticality") != "high" {
			r += 2
		}
		if c := code(it.res, "clinicalStatus"); c != "" && c != "active" {
			r++
		}
		return r
	}
	slices.SortStableFunc(facts, func(a, b *item) int { return rank(a) - rank(b) })
	if len(facts) > 0 {
		var rows [][]cell
		for _, it := range facts {
			it.shown = true
			crit := cell{text: ""}
			switch c := it.res.Str("criticality"); c {
			case "high":
				crit = cell{text: "HIGH", bold: true, color: red}
			case "low":
				crit = cell{text: "low"}
			case "unable-to-assess":
				crit = cell{text: "unable to assess"}
			}
			status := code(it.res, "clinicalStatus")
			if v := code(it.res, "verificationStatus"); v != "" && v != "confirmed" {
				status = strings.TrimSpace(status + " (" + v + ")")
			}
			name := conceptName(it.res, "code")
			if cat := it.res.List("category"); len(cat) > 0 {
				if s, ok := cat[0].(string); ok && s != "" {
					name += " (" + s + ")"
				}
			}
			rows = append(rows, []cell{
				{text: name, bold: true, color: allergyColor(it)},
				crit,
				{text: reactions(it.res)},
				{text: status},
				{text: it.date()},
			})
		}
		w.table([]float64{0.30, 0.11, 0.29, 0.12, 0.18}, []string{"Substance", "Criticality", "Reaction", "Status", "Since / recorded"}, rows)
	}
	if len(none) > 0 {
		w.text(sentence(none), bodySize, "B", black)
	}
	if len(ruledOut) > 0 {
		w.text("Ruled out (not allergies): "+sentence(ruledOut), bodySize, "", grey)
	}
}

func allergyColor(it *item) [3]int {
	if it.res.Str("criticality") == "high" {
		return red
	}
	return black
}

// reactions lists an allergy's reactions with their severity.
func reactions(r record.Resource) string {
	var out []string
	for _, re := range r.List("reaction") {
		m, ok := re.(map[string]any)
		if !ok {
			continue
		}
		rr := record.Resource(m)
		var ms []string
		for i := range rr.List("manifestation") {
			if s := conceptName(rr, "manifestation."+strconv.Itoa(i)); s != "" {
				ms = append(ms, s)
			}
		}
		s := strings.Join(ms, ", ")
		if s == "" {
			s = rr.Str("description")
		}
		if sev := rr.Str("severity"); sev != "" && s != "" {
			s += " (" + sev + ")"
		}
		if s != "" {
			out = append(out, s)
		}
	}
	return strings.Join(out, "; ")
}

// activeMedication reports whether a medication statement or request is
// in use now: status active (or none, or intended for a statement), and
// no negation.
func activeMedication(it *item) bool {
	if it.neg != "" || it.res.Str("doNotPerform") == "true" {
		return false
	}
	switch it.res.Str("status") {
	case "active", "":
		return true
	case "intended":
		return it.res.Type() == "MedicationStatement"
	}
	return false
}

func medications(w *writer, items []*item) {
	w.heading("Active medications")
	all := ofType(items, "MedicationStatement", "MedicationRequest")
	if len(all) == 0 {
		w.note("The record holds no information about medications.")
		return
	}
	var active, notTaken, doNot, none []*item
	others := 0
	seen := map[string]bool{}
	for _, it := range all {
		switch {
		case it.neg == record.NegNoneKnown:
			none = append(none, it)
		case it.neg != "":
			notTaken = append(notTaken, it)
		case it.res.Str("doNotPerform") == "true":
			doNot = append(doNot, it)
		case activeMedication(it):
			key := strings.ToLower(record.MedicationName(it.res)) + "\x00" + strings.ToLower(dosage(it.res))
			if seen[key] {
				it.shown = true // the same medication, from another source or an older statement
				continue
			}
			seen[key] = true
			active = append(active, it)
		default:
			others++
		}
	}
	if len(active) > 0 {
		var rows [][]cell
		for _, it := range active {
			it.shown = true
			name := record.MedicationName(it.res)
			if name == "" {
				name = "Medication not named"
			}
			rows = append(rows, []cell{{text: name, bold: true}, {text: dosage(it.res)}, {text: it.date()}, {text: it.source}})
		}
		w.sourced([]float64{0.40, 0.35, 0.18, 0.07}, []string{"Medication", "Dose and instructions", "Since", "From"}, rows)
	} else {
		w.note("No medication is recorded as active.")
	}
	if len(none) > 0 {
		w.text(sentence(none), bodySize, "B", black)
	}
	if len(notTaken) > 0 {
		w.text(sentence(notTaken), bodySize, "", black)
	}
	if len(doNot) > 0 {
		w.text("Do not use: "+sentence(doNot), bodySize, "B", black)
	}
	if others > 0 {
		w.note(strconv.Itoa(others) + " other medication records are stopped, completed or otherwise not active.")
	}
}

// dosage is a medication's dose as the record states it.
func dosage(r record.Resource) string {
	for _, p := range []string{"dosage.text", "dosageInstruction.text"} {
		if s := r.Str(p); s != "" {
			return s
		}
	}
	for _, p := range []string{"dosage", "dosageInstruction"} {
		var parts []string
		if q := quantityText(r.Get(p+".doseAndRate.doseQuantity"), -1); q != "" {
			parts = append(parts, q)
		}
		if s := conceptName(r, p+".route"); s != "" {
			parts = append(parts, s)
		}
		if s := conceptName(r, p+".timing.code"); s != "" {
			parts = append(parts, s)
		}
		if len(parts) > 0 {
			return strings.Join(parts, ", ")
		}
	}
	return ""
}

func problems(w *writer, items []*item) {
	w.heading("Problems")
	all := ofType(items, "Condition")
	if len(all) == 0 {
		w.note("The record holds no information about problems.")
		return
	}
	var active, past, ruledOut, none []*item
	seen := map[string]bool{}
	for _, it := range all {
		switch it.neg {
		case record.NegNoneKnown:
			none = append(none, it)
			continue
		case record.NegRefuted:
			ruledOut = append(ruledOut, it)
			continue
		}
		key := strings.ToLower(conceptName(it.res, "code"))
		if seen[key] {
			it.shown = true
			continue
		}
		seen[key] = true
		switch code(it.res, "clinicalStatus") {
		case "inactive", "remission", "resolved":
			past = append(past, it)
		default:
			active = append(active, it)
		}
	}
	if len(active) > 0 {
		var rows [][]cell
		for _, it := range active {
			it.shown = true
			status := code(it.res, "clinicalStatus")
			if v := code(it.res, "verificationStatus"); v != "" && v != "confirmed" {
				status = strings.TrimSpace(status + " (" + v + ")")
			}
			rows = append(rows, []cell{{text: conceptName(it.res, "code"), bold: true}, {text: status}, {text: conceptName(it.res, "severity")}, {text: it.date()}})
		}
		w.table([]float64{0.50, 0.18, 0.14, 0.18}, []string{"Problem", "Status", "Severity", "Since"}, rows)
	} else {
		w.note("No problem is recorded as active.")
	}
	if len(none) > 0 {
		w.text(sentence(none), bodySize, "B", black)
	}
	if len(past) > 0 {
		var parts []string
		for _, it := range past {
			it.shown = true
			s := conceptName(it.res, "code") + " (" + code(it.res, "clinicalStatus")
			if d := it.date(); d != "" {
				s += ", " + d
			}
			parts = append(parts, s+")")
		}
		w.text("Past: "+strings.Join(parts, "; "), bodySize, "", black)
	}
	if len(ruledOut) > 0 {
		w.text("Ruled out: "+sentence(ruledOut), bodySize, "", grey)
	}
}

// isResult reports whether an Observation is a result: not a vital sign,
// not a symptom the patient reported.
func isResult(it *item) bool {
	r := it.res
	if r.Type() != "Observation" || it.neg != "" {
		return false
	}
	if vitalOf(r) != nil || r.HasCoding("category", record.ObsCategory, "vital-signs") ||
		r.HasCoding("code", record.LOINC, record.LoincSystolic) || r.HasCoding("code", record.LOINC, record.LoincDiastolic) {
		return false
	}
	return !r.HasCoding("category", record.SNOMED, record.SymptomCategory) && !social(r)
}

// social reports whether an Observation is social history: of that
// category, or smoking status (LOINC 72166-2) or alcohol use (74013-4),
// which some sources file under "survey".
func social(r record.Resource) bool {
	return r.HasCoding("category", record.ObsCategory, "social-history") ||
		r.HasCoding("code", record.LOINC, "72166-2") || r.HasCoding("code", record.LOINC, "74013-4")
}

// socialHistory lists the latest observation of each social-history code
// (smoking status, alcohol use, ...), with its date.
func socialHistory(w *writer, items []*item) {
	var lines []string
	seen := map[string]bool{}
	for _, it := range items {
		if it.res.Type() != "Observation" || it.neg != "" || !social(it.res) {
			continue
		}
		name := conceptName(it.res, "code")
		if seen[name] {
			continue
		}
		seen[name] = true
		it.shown = true
		s := name + ": " + observationValue(it.res, -1)
		if d := it.date(); d != "" {
			s += " (" + d + ")"
		}
		lines = append(lines, s)
	}
	if len(lines) == 0 {
		return
	}
	w.heading("Social history")
	for _, l := range lines {
		w.text(l, bodySize, "", black)
	}
}

func results(w *writer, items []*item, o Options) {
	var rs []*item
	for _, it := range items {
		if isResult(it) {
			rs = append(rs, it)
		}
	}
	w.heading("Recent results")
	if len(rs) == 0 {
		w.note("The record holds no results.")
		return
	}
	limit := o.RecentResults
	if o.Complete {
		limit = len(rs)
	}
	var rows [][]cell
	for i, it := range rs {
		if i == limit {
			break
		}
		it.shown = true
		value := observationValue(it.res, -1)
		flag := interpretation(it.res)
		c := cell{text: value}
		if value == "" {
			c = cell{text: "no value given", color: grey}
		}
		if flag != "" {
			c = cell{text: value, bold: true, color: red}
		}
		rows = append(rows, []cell{{text: conceptName(it.res, "code")}, c, {text: flag, bold: flag != "", color: red}, {text: referenceRange(it.res)}, {text: it.date()}})
	}
	w.table([]float64{0.34, 0.17, 0.10, 0.21, 0.18}, []string{"Test", "Result", "Flag", "Reference range", "Date"}, rows)
	if len(rs) > limit {
		w.note(strconv.Itoa(len(rs)-limit) + " earlier results are not listed.")
	}
}

// observationValue is an Observation's value as people write it.
func observationValue(r record.Resource, decimals int) string {
	if s, d, ok := bpComponents(r); ok {
		return numberText(s, 0) + "/" + numberText(d, 0) + " mmHg"
	}
	if v := valueText(r, decimals); v != "" {
		return v
	}
	var parts []string
	for _, c := range r.List("component") {
		cm, ok := c.(map[string]any)
		if !ok {
			continue
		}
		cr := record.Resource(cm)
		if v := valueText(cr, decimals); v != "" {
			parts = append(parts, conceptName(cr, "code")+" "+v)
		}
	}
	if len(parts) > 0 {
		return strings.Join(parts, "; ")
	}
	if s := conceptName(r, "dataAbsentReason"); s != "" {
		return "(" + s + ")"
	}
	return ""
}

func valueText(r record.Resource, decimals int) string {
	if q := quantityText(r.Get("valueQuantity"), decimals); q != "" {
		return q
	}
	if s := conceptName(r, "valueCodeableConcept"); s != "" {
		return s
	}
	for _, k := range []string{"valueString", "valueInteger", "valueBoolean", "valueDateTime", "valueTime"} {
		if s := r.Str(k); s != "" {
			return s
		}
	}
	if lo, hi := quantityText(r.Get("valueRange.low"), decimals), quantityText(r.Get("valueRange.high"), decimals); lo != "" || hi != "" {
		return lo + "–" + hi
	}
	if n, d := quantityText(r.Get("valueRatio.numerator"), decimals), quantityText(r.Get("valueRatio.denominator"), decimals); n != "" && d != "" {
		return n + " / " + d
	}
	return ""
}

// interpretation names an abnormal flag: from the Observation's
// interpretation, else from its reference range.
func interpretation(r record.Resource) string {
	names := map[string]string{
		"H": "high", "HH": "critical high", "HU": "very high", "L": "low", "LL": "critical low", "LU": "very low",
		"A": "abnormal", "AA": "critical", "POS": "positive", "DET": "detected", "R": "resistant",
	}
	for _, c := range r.Codings("interpretation") {
		if n, ok := names[c.Code]; ok {
			return n
		}
		if c.Code == "N" || c.Code == "NEG" || c.Code == "ND" {
			return ""
		}
	}
	v, ok := numberValue(r.Get("valueQuantity.value"))
	if !ok || r.Str("valueQuantity.comparator") != "" {
		return ""
	}
	if lo, ok := numberValue(r.Get("referenceRange.0.low.value")); ok && v < lo {
		return "low"
	}
	if hi, ok := numberValue(r.Get("referenceRange.0.high.value")); ok && v > hi {
		return "high"
	}
	return ""
}

func referenceRange(r record.Resource) string {
	if s := r.Str("referenceRange.0.text"); s != "" {
		return s
	}
	lo := quantityText(r.Get("referenceRange.0.low"), -1)
	hi := quantityText(r.Get("referenceRange.0.high"), -1)
	switch {
	case lo != "" && hi != "":
		lv := numberText(r.Get("referenceRange.0.low.value"), -1)
		return lv + "–" + hi
	case lo != "":
		return "≥ " + lo
	case hi != "":
		return "≤ " + hi
	}
	return ""
}

// vitals shows the latest reading of each vital sign, how many there
// are, and a trend chart. Unless complete, that stands for every reading:
// with complete, the readings are listed one by one at the end.
func vitals(w *writer, items []*item, complete bool) {
	ss := vitalSeries(items)
	if len(ss) == 0 {
		return
	}
	w.heading("Vital signs")
	for _, it := range items {
		if !complete && it.res.Type() == "Observation" && it.neg == "" && !isResult(it) &&
			!it.res.HasCoding("category", record.SNOMED, record.SymptomCategory) && !social(it.res) {
			it.shown = true
		}
	}
	var rows [][]cell
	for _, s := range ss {
		last := s.readings[len(s.readings)-1]
		shown := s.readings[max(0, len(s.readings)-maxChartPoints):]
		rows = append(rows, []cell{
			{text: s.kind.name, bold: true},
			{text: last.text, bold: true},
			{text: last.when.String()},
			{text: strconv.Itoa(len(s.readings))},
			trend(shown),
		})
	}
	w.table([]float64{0.19, 0.15, 0.18, 0.07, 0.41}, []string{"Vital sign", "Latest", "When", "Count", "Trend (last readings)"}, rows)
}

// trend is the chart cell of a series: a chart of two readings or more.
func trend(rs []reading) cell {
	if len(rs) < 2 {
		return cell{text: "one reading", color: grey}
	}
	return cell{draw: chart(rs), minH: 13}
}

// chart draws readings as a small line chart with its range and dates.
func chart(rs []reading) func(w *writer, x, y, width, height float64) {
	return func(w *writer, x, y, width, height float64) {
		f := w.f
		f.SetFont(font, "", 6)
		w.color(grey)
		lo, hi := rs[0].v, rs[0].v
		for _, r := range rs {
			lo, hi = min(lo, r.v), max(hi, r.v)
			if r.hasV2 {
				lo, hi = min(lo, r.v2), max(hi, r.v2)
			}
		}
		if hi == lo {
			hi, lo = hi+1, lo-1
		}
		labelW := 12.0
		cx, cw := x+labelW, width-labelW
		cy, ch := y+0.5, height-4.5
		t0, t1 := rs[0].when.Time, rs[len(rs)-1].when.Time
		span := t1.Sub(t0).Seconds()
		px := func(t time.Time) float64 {
			if span == 0 {
				return cx + cw/2
			}
			return cx + cw*t.Sub(t0).Seconds()/span
		}
		py := func(v float64) float64 { return cy + ch - ch*(v-lo)/(hi-lo) }
		f.SetDrawColor(200, 200, 200)
		f.SetLineWidth(0.15)
		f.Line(cx, cy, cx, cy+ch)
		f.Line(cx, cy+ch, cx+cw, cy+ch)
		f.SetXY(x, cy-1)
		f.CellFormat(labelW-0.8, 2.5, trimNum(hi), "", 0, "R", false, 0, "")
		f.SetXY(x, cy+ch-1.5)
		f.CellFormat(labelW-0.8, 2.5, trimNum(lo), "", 0, "R", false, 0, "")
		f.SetXY(cx, cy+ch+0.3)
		f.CellFormat(cw/2, 2.8, rs[0].when.String(), "", 0, "L", false, 0, "")
		f.CellFormat(cw/2, 2.8, rs[len(rs)-1].when.String(), "", 0, "R", false, 0, "")
		line := func(val func(r reading) float64, c [3]int) {
			f.SetDrawColor(c[0], c[1], c[2])
			f.SetFillColor(c[0], c[1], c[2])
			f.SetLineWidth(0.35)
			for i := 1; i < len(rs); i++ {
				f.Line(px(rs[i-1].when.Time), py(val(rs[i-1])), px(rs[i].when.Time), py(val(rs[i])))
			}
			for _, r := range rs {
				f.Circle(px(r.when.Time), py(val(r)), 0.45, "F")
			}
		}
		line(func(r reading) float64 { return r.v }, [3]int{31, 95, 160})
		if rs[0].hasV2 {
			line(func(r reading) float64 { return r.v2 }, [3]int{120, 60, 150})
		}
		w.color(black)
	}
}

// maxChartPoints is how many of the latest readings a trend chart shows.
const maxChartPoints = 20

func trimNum(f float64) string {
	s := strconv.FormatFloat(f, 'f', 1, 64)
	return strings.TrimSuffix(s, ".0")
}

func immunizations(w *writer, items []*item) {
	all := ofType(items, "Immunization")
	w.heading("Immunizations")
	if len(all) == 0 {
		w.note("The record holds no immunizations.")
		return
	}
	var given, notGiven, none []*item
	for _, it := range all {
		switch it.neg {
		case "":
			given = append(given, it)
		case record.NegNoneKnown:
			none = append(none, it)
		default:
			notGiven = append(notGiven, it)
		}
	}
	if len(given) > 0 {
		var rows [][]cell
		for _, it := range given {
			it.shown = true
			var details []string
			if d := it.res.Str("protocolApplied.0.doseNumberPositiveInt"); d != "" {
				details = append(details, "dose "+d)
			} else if d := it.res.Str("protocolApplied.0.doseNumberString"); d != "" {
				details = append(details, "dose "+d)
			}
			if l := it.res.Str("lotNumber"); l != "" {
				details = append(details, "lot "+l)
			}
			if it.res.Str("primarySource") == "false" {
				details = append(details, "reported, not recorded by the giver")
			}
			rows = append(rows, []cell{{text: conceptName(it.res, "vaccineCode"), bold: true}, {text: it.date()}, {text: strings.Join(details, ", ")}, {text: it.source}})
		}
		w.sourced([]float64{0.45, 0.18, 0.30, 0.07}, []string{"Vaccine given", "Date", "Details", "From"}, rows)
	}
	if len(none) > 0 {
		w.text(sentence(none), bodySize, "B", black)
	}
	if len(notGiven) > 0 {
		w.text(sentence(notGiven), bodySize, "", black)
	}
}

// kindOrder is the order of the appendix's groups.
var kindOrder = []string{
	"AllergyIntolerance", "MedicationStatement", "MedicationRequest", "Medication", "MedicationAdministration",
	"MedicationDispense", "Condition", "Observation", "DiagnosticReport", "Immunization", "Procedure",
	"Encounter", "CarePlan", "Goal", "DocumentReference",
}

// everythingElse lists every record no section showed, grouped by type,
// and the entered-in-error ones apart.
func everythingElse(w *writer, items []*item) {
	groups := map[string][]*item{}
	var errs []*item
	for _, it := range items {
		switch {
		case it.neg == record.NegEnteredInError:
			errs = append(errs, it)
		case !it.shown:
			groups[it.res.Type()] = append(groups[it.res.Type()], it)
		}
	}
	if len(groups) == 0 && len(errs) == 0 {
		return
	}
	w.heading("Every other record shared")
	w.note("Records the sections above do not show, as the record states them.")
	var types []string
	for t := range groups {
		if !slices.Contains(kindOrder, t) {
			types = append(types, t)
		}
	}
	sort.Strings(types)
	for _, t := range append(slices.Clone(kindOrder), types...) {
		g := groups[t]
		if len(g) == 0 {
			continue
		}
		var rows [][]cell
		for _, it := range g {
			it.shown = true
			rows = append(rows, []cell{{text: itemText(it)}, {text: it.date()}, {text: it.source}})
		}
		w.subheading(typeName(t)+" ("+strconv.Itoa(len(g))+")", black)
		w.sourced([]float64{0.75, 0.18, 0.07}, []string{"Record", "Date", "From"}, rows)
	}
	if len(errs) > 0 {
		var rows [][]cell
		for _, it := range errs {
			rows = append(rows, []cell{{text: itemText(it), color: grey}, {text: it.date(), color: grey}, {text: it.source, color: grey}})
		}
		w.subheading("Entered in error: kept by their sources, not facts ("+strconv.Itoa(len(errs))+")", grey)
		w.sourced([]float64{0.75, 0.18, 0.07}, []string{"Record", "Date", "From"}, rows)
	}
}

// itemText is one line for any record: an Observation by its name and
// value as people write them (vital signs at their precision), anything
// else as record.DisplayOf says it, negations included.
func itemText(it *item) string {
	if it.res.Type() != "Observation" {
		return record.DisplayOf(it.res)
	}
	name := conceptName(it.res, "code")
	decimals := -1
	if k := vitalOf(it.res); k != nil {
		name, decimals = k.name, k.decimals
	}
	s := name
	if v := observationValue(it.res, decimals); v != "" {
		s += ": " + v
	}
	if it.neg == record.NegEnteredInError {
		s += " — entered in error"
	}
	return s
}

// typeName writes a resourceType as words: "MedicationStatement" →
// "Medication statements".
func typeName(t string) string {
	var b strings.Builder
	for i, r := range t {
		if i > 0 && r >= 'A' && r <= 'Z' {
			b.WriteByte(' ')
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	s := b.String()
	switch {
	case strings.HasSuffix(s, "y") && !strings.HasSuffix(s, "ey"):
		return s[:len(s)-1] + "ies"
	case strings.HasSuffix(s, "s"):
		return s
	}
	return s + "s"
}
