package record

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"time"
	"unicode/utf8"
)

// Builders for patient-entered data. Each takes an input struct, checks it,
// and returns a Record (with a fresh ID, MethodSelf provenance and derived
// fields) around a valid FHIR R4 resource whose id is the record ID.

// maxText bounds free-text fields of patient-entered data.
const maxText = 4000

// Common holds what every builder needs.
type Common struct {
	// Subject is the FHIR reference to the patient, "Patient/<id>".
	Subject string
	// Author names who entered the record; "patient" when empty.
	Author string
	// Now is the time of entry; time.Now() when zero.
	Now time.Time
	// IDs, if set, makes the records' IDs: the run of the vault they are
	// for (vault.Vault.IDs), so that a batch of them shares its ID run
	// (see IDRun). Nil: NewID.
	IDs *IDRun
}

// NewID makes a record ID for a builder: of c.IDs's run, or NewID.
func (c Common) NewID() string {
	if c.IDs != nil {
		return c.IDs.Next()
	}
	return NewID()
}

func (c Common) now() time.Time {
	if c.Now.IsZero() {
		return time.Now()
	}
	return c.Now
}

func (c Common) subject() map[string]any {
	if c.Subject == "" {
		return nil
	}
	return map[string]any{"reference": c.Subject}
}

func (c Common) build(res map[string]any) (Record, error) {
	id := c.NewID()
	res["id"] = id
	for k, v := range res { // drop unset optional fields
		if isEmpty(v) {
			delete(res, k)
		}
	}
	data, err := json.Marshal(res)
	if err != nil {
		return Record{}, err
	}
	author := c.Author
	if author == "" {
		author = "patient"
	}
	r := Record{ID: id, Provenance: Provenance{Method: MethodSelf, Author: author}, Resource: data}
	if err := r.Derive(); err != nil {
		return Record{}, err
	}
	return r, nil
}

func isEmpty(v any) bool {
	switch v := v.(type) {
	case nil:
		return true
	case string:
		return v == ""
	case map[string]any:
		return len(v) == 0
	case []any:
		return len(v) == 0
	}
	return false
}

func checkText(field, s string, required bool) (string, error) {
	s = strings.TrimSpace(s)
	switch {
	case required && s == "":
		return "", inputErr(field, "must not be empty")
	case !utf8.ValidString(s):
		return "", inputErr(field, "is not valid UTF-8")
	case len(s) > maxText:
		return "", inputErr(field, "is longer than %d bytes", maxText)
	}
	return s, nil
}

func fhirTime(t time.Time) string { return FHIRTime(t) }

func concept(text string, codings ...Coding) map[string]any {
	m := map[string]any{}
	if len(codings) > 0 {
		cs := make([]any, len(codings))
		for i, c := range codings {
			cm := map[string]any{"system": c.System, "code": c.Code}
			if c.Display != "" {
				cm["display"] = c.Display
			}
			cs[i] = cm
		}
		m["coding"] = cs
	}
	if text != "" {
		m["text"] = text
	}
	return m
}

func notes(text string) []any {
	if text == "" {
		return nil
	}
	return []any{map[string]any{"text": text}}
}

// Medication describes a medication the patient takes.
type Medication struct {
	Name      string
	Dose      string // "500 mg"
	Frequency string // "twice daily"
	Start     time.Time
	Stop      time.Time
	Reason    string
	Note      string
}

// NewMedication builds a MedicationStatement.
func NewMedication(c Common, m Medication) (Record, error) {
	var err error
	if m.Name, err = checkText("name", m.Name, true); err != nil {
		return Record{}, err
	}
	for _, f := range []struct {
		name string
		v    *string
	}{{"dose", &m.Dose}, {"frequency", &m.Frequency}, {"reason", &m.Reason}, {"note", &m.Note}} {
		if *f.v, err = checkText(f.name, *f.v, false); err != nil {
			return Record{}, err
		}
	}
	if !m.Start.IsZero() && !m.Stop.IsZero() && m.Stop.Before(m.Start) {
		return Record{}, inputErr("stop", "is before start")
	}
	status := "active"
	if !m.Stop.IsZero() && m.Stop.Before(c.now()) {
		status = "completed"
	}
	dosage := map[string]any{}
	text := strings.TrimSpace(m.Dose + " " + m.Frequency)
	if text != "" {
		dosage["text"] = text
	}
	if m.Dose != "" {
		q, err := ParseQuantity(m.Dose)
		if err != nil {
			return Record{}, &InputError{Field: "dose", Msg: err.(*InputError).Msg}
		}
		dosage["doseAndRate"] = []any{map[string]any{"doseQuantity": q.fhir()}}
	}
	if m.Frequency != "" {
		dosage["timing"] = map[string]any{"code": map[string]any{"text": m.Frequency}}
	}
	var dosages []any
	if len(dosage) > 0 {
		dosages = []any{dosage}
	}
	period := map[string]any{}
	if !m.Start.IsZero() {
		period["start"] = fhirTime(m.Start)
	}
	if !m.Stop.IsZero() {
		period["end"] = fhirTime(m.Stop)
	}
	var reason []any
	if m.Reason != "" {
		reason = []any{concept(m.Reason)}
	}
	return c.build(map[string]any{
		"resourceType":              "MedicationStatement",
		"status":                    status,
		"medicationCodeableConcept": concept(m.Name),
		"subject":                   c.subject(),
		"effectivePeriod":           period,
		"dateAsserted":              fhirTime(c.now()),
		"reasonCode":                reason,
		"dosage":                    dosages,
		"note":                      notes(m.Note),
		"informationSource":         c.subject(),
	})
}

// Dose is one dose the patient took.
type Dose struct {
	Name   string
	At     time.Time
	Amount string // optional, "500 mg"
	Note   string
}

// NewDose builds a MedicationAdministration (status completed).
func NewDose(c Common, d Dose) (Record, error) {
	var err error
	if d.Name, err = checkText("name", d.Name, true); err != nil {
		return Record{}, err
	}
	if d.Note, err = checkText("note", d.Note, false); err != nil {
		return Record{}, err
	}
	if d.At.IsZero() {
		d.At = c.now()
	}
	if err := NotFuture("at", d.At, c.now()); err != nil {
		return Record{}, err
	}
	var dosage map[string]any
	if strings.TrimSpace(d.Amount) != "" {
		q, err := ParseQuantity(d.Amount)
		if err != nil {
			return Record{}, &InputError{Field: "dose", Msg: err.(*InputError).Msg}
		}
		dosage = map[string]any{"dose": q.fhir()}
	}
	return c.build(map[string]any{
		"resourceType":              "MedicationAdministration",
		"status":                    "completed",
		"medicationCodeableConcept": concept(d.Name),
		"subject":                   c.subject(),
		"effectiveDateTime":         fhirTime(d.At),
		"dosage":                    dosage,
		"note":                      notes(d.Note),
	})
}

// Symptom is a symptom the patient reports.
type Symptom struct {
	Name     string
	Severity int // 0-10; -1 when not given
	At       time.Time
	Note     string
}

// NewSymptom builds an Observation in the SNOMED CT category "Finding
// reported by subject or history provider", with the severity (0-10) as
// valueInteger.
func NewSymptom(c Common, s Symptom) (Record, error) {
	var err error
	if s.Name, err = checkText("name", s.Name, true); err != nil {
		return Record{}, err
	}
	if s.Note, err = checkText("note", s.Note, false); err != nil {
		return Record{}, err
	}
	if s.Severity < -1 || s.Severity > 10 {
		return Record{}, inputErr("severity", "must be between 0 and 10")
	}
	if s.At.IsZero() {
		s.At = c.now()
	}
	if err := NotFuture("at", s.At, c.now()); err != nil {
		return Record{}, err
	}
	res := map[string]any{
		"resourceType": "Observation",
		"status":       "final",
		"category": []any{concept("Symptom", Coding{System: SNOMED, Code: SymptomCategory, Display: "Finding reported by subject or history provider"}),
			concept("", Coding{System: ObsCategory, Code: "survey", Display: "Survey"})},
		"code":              concept(s.Name),
		"subject":           c.subject(),
		"effectiveDateTime": fhirTime(s.At),
		"note":              notes(s.Note),
	}
	if s.Severity >= 0 {
		res["valueInteger"] = s.Severity
	}
	return c.build(res)
}

// NewVital builds a vital-signs Observation from a parsed reading, coded
// and measured as the vital-sign table says (see VitalSign).
func NewVital(c Common, v Vital, at time.Time) (Record, error) {
	vs, ok := LookupVital(v.Kind)
	if !ok || vs.Kind != v.Kind {
		return Record{}, inputErr("kind", "unknown vital %q", v.Kind)
	}
	u := vs.unitByUCUM(v.Unit)
	codes, ok := vs.CodesFor(v.Unit)
	if !ok {
		return Record{}, inputErr("value", "%s is not recorded in %s", vs.Kind, v.Unit)
	}
	if at.IsZero() {
		at = c.now()
	}
	if err := NotFuture("at", at, c.now()); err != nil {
		return Record{}, err
	}
	res := map[string]any{
		"resourceType":      "Observation",
		"status":            "final",
		"category":          []any{concept("Vital Signs", Coding{System: ObsCategory, Code: "vital-signs", Display: "Vital Signs"})},
		"subject":           c.subject(),
		"effectiveDateTime": fhirTime(at),
	}
	qty := func(value float64) map[string]any {
		return map[string]any{"value": value, "unit": u.Symbol, "system": UCUM, "code": u.UCUM}
	}
	res["code"] = concept(vs.Name, codes...)
	if len(vs.Components) > 0 {
		vals := []float64{v.Value, v.Value2}
		comps := make([]any, len(vs.Components))
		for i, cp := range vs.Components {
			comps[i] = map[string]any{"code": concept(cp.Name, cp.Code), "valueQuantity": qty(vals[i])}
		}
		res["component"] = comps
	} else {
		res["valueQuantity"] = qty(v.Value)
	}
	return c.build(res)
}

// NewCondition builds a Condition on the problem list.
func NewCondition(c Common, name string, onset time.Time, note string) (Record, error) {
	var err error
	if name, err = checkText("name", name, true); err != nil {
		return Record{}, err
	}
	if note, err = checkText("note", note, false); err != nil {
		return Record{}, err
	}
	if err := NotFuture("onset", onset, c.now()); err != nil {
		return Record{}, err
	}
	return c.build(map[string]any{
		"resourceType":   "Condition",
		"clinicalStatus": concept("", Coding{System: ConditionClin, Code: "active", Display: "Active"}),
		"category":       []any{concept("", Coding{System: ConditionCat, Code: "problem-list-item", Display: "Problem List Item"})},
		"code":           concept(name),
		"subject":        c.subject(),
		"onsetDateTime":  fhirTime(onset),
		"recordedDate":   fhirTime(c.now()),
		"note":           notes(note),
	})
}

// Allergy describes an allergy or intolerance.
type Allergy struct {
	Substance string
	Reaction  string
	Severity  string // of the reaction: mild, moderate, severe or empty
	// Criticality is the risk of a life-threatening reaction next time:
	// low, high, unable-to-assess, or empty. Empty means high when the
	// reaction is anaphylaxis.
	Criticality string
	Note        string
}

// NewAllergy builds an AllergyIntolerance.
func NewAllergy(c Common, a Allergy) (Record, error) {
	var err error
	if a.Substance, err = checkText("substance", a.Substance, true); err != nil {
		return Record{}, err
	}
	if a.Reaction, err = checkText("reaction", a.Reaction, false); err != nil {
		return Record{}, err
	}
	if a.Note, err = checkText("note", a.Note, false); err != nil {
		return Record{}, err
	}
	a.Severity = strings.ToLower(strings.TrimSpace(a.Severity))
	switch a.Severity {
	case "", "mild", "moderate", "severe":
	default:
		return Record{}, inputErr("severity", "must be mild, moderate or severe")
	}
	a.Criticality = strings.ToLower(strings.TrimSpace(a.Criticality))
	switch a.Criticality {
	case "":
		if strings.Contains(strings.ToLower(a.Reaction), "anaphyla") {
			a.Criticality = "high"
		}
	case "low", "high", "unable-to-assess":
	default:
		return Record{}, inputErr("criticality", "must be low, high or unable-to-assess")
	}
	var reaction []any
	if a.Reaction != "" || a.Severity != "" {
		manifestation := a.Reaction
		if manifestation == "" {
			manifestation = "Reaction not specified"
		}
		rm := map[string]any{"manifestation": []any{concept(manifestation)}}
		if a.Severity != "" {
			rm["severity"] = a.Severity
		}
		reaction = []any{rm}
	}
	return c.build(map[string]any{
		"resourceType":   "AllergyIntolerance",
		"clinicalStatus": concept("", Coding{System: AllergyClin, Code: "active", Display: "Active"}),
		"code":           concept(a.Substance),
		"criticality":    a.Criticality,
		"patient":        c.subject(),
		"recordedDate":   fhirTime(c.now()),
		"reaction":       reaction,
		"note":           notes(a.Note),
	})
}

// NewImmunization builds an Immunization reported by the patient.
func NewImmunization(c Common, vaccine string, date time.Time, note string) (Record, error) {
	var err error
	if vaccine, err = checkText("vaccine", vaccine, true); err != nil {
		return Record{}, err
	}
	if note, err = checkText("note", note, false); err != nil {
		return Record{}, err
	}
	if date.IsZero() {
		date = c.now()
	}
	if err := NotFuture("date", date, c.now()); err != nil {
		return Record{}, err
	}
	return c.build(map[string]any{
		"resourceType":       "Immunization",
		"status":             "completed",
		"vaccineCode":        concept(vaccine),
		"patient":            c.subject(),
		"occurrenceDateTime": fhirTime(date),
		"recorded":           fhirTime(c.now()),
		"primarySource":      false,
		"reportOrigin":       concept("Patient", Coding{System: "http://terminology.hl7.org/CodeSystem/immunization-origin", Code: "recall", Display: "Parent/Guardian/Patient Recall"}),
		"note":               notes(note),
	})
}

// NewNote builds a DocumentReference of LOINC type Patient Note holding the
// text as a plain-text attachment.
func NewNote(c Common, text string, at time.Time) (Record, error) {
	var err error
	if text, err = checkText("text", text, true); err != nil {
		return Record{}, err
	}
	if at.IsZero() {
		at = c.now()
	}
	if err := NotFuture("at", at, c.now()); err != nil {
		return Record{}, err
	}
	// DocumentReference.date is an instant: a note about a whole day
	// says so in the period it covers instead.
	date, period := at, map[string]any(nil)
	if IsDay(at) {
		date, period = time.Time{}, map[string]any{"period": map[string]any{"start": fhirTime(at), "end": fhirTime(at)}}
	}
	return c.build(map[string]any{
		"resourceType": "DocumentReference",
		"status":       "current",
		"type":         concept("Patient note", Coding{System: LOINC, Code: PatientNoteType, Display: "Patient Note"}),
		"subject":      c.subject(),
		"date":         fhirTime(date),
		"context":      period,
		"content": []any{map[string]any{"attachment": map[string]any{
			"contentType": "text/plain; charset=utf-8",
			"data":        base64.StdEncoding.EncodeToString([]byte(text)),
			"creation":    fhirTime(at),
		}}},
	})
}

// NewPatient builds the vault's own Patient resource.
func NewPatient(c Common, name string, birthDate time.Time) (Record, error) {
	var err error
	if name, err = checkText("name", name, false); err != nil {
		return Record{}, err
	}
	var names []any
	if name != "" {
		parts := strings.Fields(name)
		hn := map[string]any{"text": name, "use": "official"}
		if len(parts) > 1 {
			given := make([]any, 0, len(parts)-1)
			for _, p := range parts[:len(parts)-1] {
				given = append(given, p)
			}
			hn["given"] = given
			hn["family"] = parts[len(parts)-1]
		}
		names = []any{hn}
	}
	bd := ""
	if !birthDate.IsZero() {
		bd = birthDate.Format("2006-01-02")
	}
	return c.build(map[string]any{"resourceType": "Patient", "name": names, "birthDate": bd})
}
