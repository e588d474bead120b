package record

import (
	"strconv"
	"strings"
	"time"
)

// Edit is a change a person asks of a record, field by field: each set
// field replaces what the record says, the rest stays as it is. The CLI's
// phr edit and any other front end share it, so that an edit means the
// same everywhere. Errors are *InputError naming the field (as the
// Edit's field names, e.g. "severity").
type Edit struct {
	Name string // the concept's name (a medication, condition, vaccine...)
	Note string // replaces every note
	// Date is the record's clinical date; Stop ends a medication (and
	// marks it completed). Zero: unchanged.
	Date, Stop time.Time
	Status     string // medication: active|completed|stopped|on-hold...; condition: active|resolved...
	Value      string // a vital sign's new reading ("125/82", "71kg")
	Severity   string // symptom: 0-10; allergy: mild|moderate|severe
	// BirthDate (YYYY-MM-DD) and Sex apply to a Patient only.
	BirthDate, Sex string
}

// conceptField is where each resource type keeps its name.
var conceptField = map[string]string{
	"MedicationStatement": "medicationCodeableConcept", "MedicationAdministration": "medicationCodeableConcept",
	"MedicationRequest": "medicationCodeableConcept", "Observation": "code", "Condition": "code",
	"AllergyIntolerance": "code", "Immunization": "vaccineCode", "Procedure": "code", "DiagnosticReport": "code",
}

// dateField is the date an edit of Date sets.
var dateField = map[string]string{
	"MedicationAdministration": "effectiveDateTime", "Observation": "effectiveDateTime", "Condition": "onsetDateTime",
	"AllergyIntolerance": "onsetDateTime", "Immunization": "occurrenceDateTime", "Procedure": "performedDateTime",
	"DocumentReference": "date", "DiagnosticReport": "effectiveDateTime", "Encounter": "period.start",
}

// Apply changes res, a resource of the given record kind, as e asks; now
// is the present, which a clinical date must not be after. On an error
// res may be half changed: apply to a copy.
func (e Edit) Apply(res Resource, kind string, now time.Time) error {
	rt := res.Type()
	if rt == "Patient" {
		return e.applyPatient(res, now)
	}
	if e.BirthDate != "" || e.Sex != "" {
		return inputErr("birth-date", "a birth date and sex belong to the Patient record, not a %s", rt)
	}
	if e.Name != "" {
		f, ok := conceptField[rt]
		if !ok {
			return inputErr("name", "a %s has no name to change", rt)
		}
		name := strings.TrimSpace(e.Name)
		if name == "" {
			return inputErr("name", "must not be empty")
		}
		res[f] = map[string]any{"text": name} // the codes named the old name
	}
	if e.Note != "" {
		res["note"] = []any{map[string]any{"text": e.Note}}
	}
	if !e.Date.IsZero() {
		if rt != "MedicationStatement" && rt != "MedicationRequest" {
			if err := NotFuture("date", e.Date, now); err != nil {
				return err
			}
		}
		ts := FHIRTime(e.Date)
		switch rt {
		case "MedicationStatement":
			setPath(res, "effectivePeriod.start", ts)
			delete(res, "effectiveDateTime")
		default:
			f, ok := dateField[rt]
			if !ok {
				return inputErr("date", "don't know which date of a %s to change", rt)
			}
			for _, alt := range []string{"effectivePeriod", "effectiveInstant", "onsetPeriod", "performedPeriod"} {
				if strings.HasPrefix(f, strings.TrimSuffix(alt, "Period")) {
					delete(res, alt)
				}
			}
			setPath(res, f, ts)
		}
	}
	if !e.Stop.IsZero() {
		if rt != "MedicationStatement" {
			return inputErr("stop", "applies to medications")
		}
		setPath(res, "effectivePeriod.end", FHIRTime(e.Stop))
		res["status"] = "completed"
	}
	if e.Status != "" {
		switch rt {
		case "MedicationStatement":
			switch e.Status {
			case "active", "completed", "stopped", "on-hold", "intended", "not-taken", "entered-in-error":
				res["status"] = e.Status
			default:
				return inputErr("status", "a medication is active, completed, stopped, on-hold, intended or not-taken")
			}
		case "Condition":
			switch e.Status {
			case "active", "recurrence", "relapse", "inactive", "remission", "resolved":
				res["clinicalStatus"] = map[string]any{"coding": []any{map[string]any{"system": ConditionClin, "code": e.Status}}}
			default:
				return inputErr("status", "a condition is active, recurrence, relapse, inactive, remission or resolved")
			}
		default:
			return inputErr("status", "applies to medications and conditions")
		}
	}
	if e.Severity != "" {
		switch kind {
		case KindSymptom:
			n, err := strconv.Atoi(e.Severity)
			if err != nil || n < 0 || n > 10 {
				return inputErr("severity", "must be a whole number from 0 to 10")
			}
			res["valueInteger"] = n
		case KindAllergy:
			switch e.Severity {
			case "mild", "moderate", "severe":
			default:
				return inputErr("severity", "an allergy is mild, moderate or severe")
			}
			reactions := res.List("reaction")
			if len(reactions) == 0 {
				reactions = []any{map[string]any{"manifestation": []any{map[string]any{"text": "Reaction not specified"}}}}
			}
			if m, ok := reactions[0].(map[string]any); ok {
				m["severity"] = e.Severity
			}
			res["reaction"] = reactions
		default:
			return inputErr("severity", "applies to symptoms and allergies")
		}
	}
	if e.Value != "" {
		vs := VitalOf(res)
		if vs == nil {
			return inputErr("value", "applies to vital signs")
		}
		vt, err := ParseVital(vs.Kind, e.Value)
		if err != nil {
			return err
		}
		fresh, err := NewVital(Common{}, vt, DateOf(res))
		if err != nil {
			return err
		}
		nr, _ := Parse(fresh.Resource)
		for _, k := range []string{"code", "valueQuantity", "component"} {
			if val, ok := nr[k]; ok {
				res[k] = val
			} else {
				delete(res, k)
			}
		}
	}
	return nil
}

// applyPatient changes the name, birth date or sex of a Patient.
func (e Edit) applyPatient(res Resource, now time.Time) error {
	if e.Note != "" || !e.Date.IsZero() || !e.Stop.IsZero() || e.Status != "" || e.Value != "" || e.Severity != "" {
		return inputErr("", "a Patient takes a name, a birth date and a sex")
	}
	if e.Name != "" {
		p, err := NewPatient(Common{}, e.Name, time.Time{})
		if err != nil {
			return err
		}
		nr, _ := Parse(p.Resource)
		res["name"] = nr["name"]
	}
	if e.BirthDate != "" {
		t, err := time.Parse(time.DateOnly, strings.TrimSpace(e.BirthDate))
		if err != nil {
			return inputErr("birth-date", "use YYYY-MM-DD")
		}
		if err := NotFuture("birth-date", Day(t.Year(), t.Month(), t.Day()), now); err != nil {
			return err
		}
		res["birthDate"] = t.Format(time.DateOnly)
	}
	if e.Sex != "" {
		switch s := strings.ToLower(strings.TrimSpace(e.Sex)); s {
		case "female", "male", "other", "unknown":
			res["gender"] = s
		default:
			return inputErr("sex", "female, male, other or unknown")
		}
	}
	return nil
}

// setPath sets a dotted path of objects, creating them as needed.
func setPath(m map[string]any, path string, v any) {
	parts := strings.Split(path, ".")
	for _, p := range parts[:len(parts)-1] {
		next, ok := m[p].(map[string]any)
		if !ok {
			next = map[string]any{}
			m[p] = next
		}
		m = next
	}
	m[parts[len(parts)-1]] = v
}
