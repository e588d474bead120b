package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/phr-project/phr/pkg/record"
	"github.com/spf13/cobra"
)

type editOptions struct {
	name, note, date, stop, status, value, severity, fhirFile string
	birthDate, sex                                            string
}

func newEditCommand(g *globals) *cobra.Command {
	var o editOptions
	cmd := &cobra.Command{
		Use:   "edit ID",
		Short: "Change a record: its name, date, note, value, severity, status, or the whole FHIR resource",
		Example: `  phr edit 3kq7 --severity 4
  phr edit patient --name "Alice Example" --birth-date 1980-04-02 --sex female
  phr edit 3kq7 --stop today
  phr edit 3kq7 --fhir corrected.json`,
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error { return runEdit(g, cmd, o, a[0]) },
	}
	f := cmd.Flags()
	f.StringVar(&o.name, "name", "", "new name (medication, symptom, condition, substance, vaccine)")
	f.StringVar(&o.note, "note", "", "replace the note")
	f.StringVar(&o.date, "date", "", "new date (--at is the same)")
	f.StringVar(&o.date, "at", "", "new date")
	f.StringVar(&o.stop, "stop", "", "medication: when you stopped (marks it completed)")
	f.StringVar(&o.status, "status", "", "medication: active|completed|stopped|on-hold; condition: active|resolved|inactive|remission")
	f.StringVar(&o.value, "value", "", "vital sign: the new reading (e.g. 125/82, 71kg)")
	f.StringVar(&o.severity, "severity", "", "symptom: 0-10; allergy: mild|moderate|severe")
	f.StringVar(&o.fhirFile, "fhir", "", "replace the resource with this FHIR JSON file (same resourceType)")
	f.StringVar(&o.birthDate, "birth-date", "", "you (phr edit patient): your date of birth, YYYY-MM-DD")
	f.StringVar(&o.sex, "sex", "", "you (phr edit patient): female|male|other|unknown")
	return cmd
}

func runEdit(g *globals, cmd *cobra.Command, o editOptions, id string) error {
	if cmd.Flags().NFlag() == 0 {
		return usagef("nothing to change: give at least one flag (see phr edit --help)")
	}
	v, err := g.openVault(false)
	if err != nil {
		return err
	}
	defer v.Close()
	r, err := resolve(v, id)
	if err != nil {
		return err
	}
	if r.Deleted {
		return fmt.Errorf("record %s was deleted", r.ID)
	}
	var res record.Resource
	if o.fhirFile != "" {
		data, err := os.ReadFile(o.fhirFile)
		if err != nil {
			return err
		}
		nr, err := record.Parse(data)
		if err != nil {
			return usagef("%s: %v", o.fhirFile, err)
		}
		if nr.Type() != r.ResourceType {
			return usagef("%s: resourceType %s, but the record is a %s", o.fhirFile, nr.Type(), r.ResourceType)
		}
		res = nr
	} else if res, err = record.Parse(r.Resource); err != nil {
		return err
	}
	if err := applyEdits(res, r.Kind, o); err != nil {
		return err
	}
	data, err := json.Marshal(map[string]any(res))
	if err != nil {
		return err
	}
	r.Resource = data
	updated, err := v.Update(r, r.Version)
	if err != nil {
		return err
	}
	return g.print(updated.Summarize(), func(w io.Writer) error {
		fmt.Fprintf(w, "Updated %s: %s (%s, version %d)\n", updated.Kind, updated.Display, updated.ID, updated.Version)
		return nil
	})
}

// conceptField is where a record kind keeps its name.
var conceptField = map[string]string{
	"MedicationStatement": "medicationCodeableConcept", "MedicationAdministration": "medicationCodeableConcept",
	"MedicationRequest": "medicationCodeableConcept", "Observation": "code", "Condition": "code",
	"AllergyIntolerance": "code", "Immunization": "vaccineCode", "Procedure": "code", "DiagnosticReport": "code",
}

// dateField is the date an edit of --date sets.
var dateField = map[string]string{
	"MedicationAdministration": "effectiveDateTime", "Observation": "effectiveDateTime", "Condition": "onsetDateTime",
	"AllergyIntolerance": "onsetDateTime", "Immunization": "occurrenceDateTime", "Procedure": "performedDateTime",
	"DocumentReference": "date", "DiagnosticReport": "effectiveDateTime", "Encounter": "period.start",
}

func applyEdits(res record.Resource, kind string, o editOptions) error {
	rt := res.Type()
	if rt == "Patient" {
		return editPatient(res, o)
	}
	if o.birthDate != "" || o.sex != "" {
		return usagef("--birth-date and --sex apply to you: phr edit patient")
	}
	if o.name != "" {
		f, ok := conceptField[rt]
		if !ok {
			return usagef("--name: a %s has no name to change", rt)
		}
		name := strings.TrimSpace(o.name)
		if name == "" {
			return usagef("--name must not be empty")
		}
		res[f] = map[string]any{"text": name} // the codes named the old name
	}
	if o.note != "" {
		res["note"] = []any{map[string]any{"text": o.note}}
	}
	if o.date != "" {
		t, err := when("date", o.date)
		if err != nil {
			return err
		}
		if rt != "MedicationStatement" && rt != "MedicationRequest" {
			if err := record.NotFuture("date", t, time.Now()); err != nil {
				return &usageError{err: err}
			}
		}
		ts := record.FHIRTime(t)
		switch rt {
		case "MedicationStatement":
			setPath(res, "effectivePeriod.start", ts)
			delete(res, "effectiveDateTime")
		default:
			f, ok := dateField[rt]
			if !ok {
				return usagef("--date: don't know which date of a %s to change", rt)
			}
			for _, alt := range []string{"effectivePeriod", "effectiveInstant", "onsetPeriod", "performedPeriod"} {
				if strings.HasPrefix(f, strings.TrimSuffix(alt, "Period")) {
					delete(res, alt)
				}
			}
			setPath(res, f, ts)
		}
	}
	if o.stop != "" {
		if rt != "MedicationStatement" {
			return usagef("--stop applies to medications")
		}
		t, err := when("stop", o.stop)
		if err != nil {
			return err
		}
		setPath(res, "effectivePeriod.end", record.FHIRTime(t))
		res["status"] = "completed"
	}
	if o.status != "" {
		switch rt {
		case "MedicationStatement":
			switch o.status {
			case "active", "completed", "stopped", "on-hold", "intended", "not-taken", "entered-in-error":
				res["status"] = o.status
			default:
				return usagef("--status: a medication is active, completed, stopped, on-hold, intended or not-taken")
			}
		case "Condition":
			switch o.status {
			case "active", "recurrence", "relapse", "inactive", "remission", "resolved":
				res["clinicalStatus"] = map[string]any{"coding": []any{map[string]any{"system": record.ConditionClin, "code": o.status}}}
			default:
				return usagef("--status: a condition is active, recurrence, relapse, inactive, remission or resolved")
			}
		default:
			return usagef("--status applies to medications and conditions")
		}
	}
	if o.severity != "" {
		switch kind {
		case record.KindSymptom:
			n, err := strconv.Atoi(o.severity)
			if err != nil || n < 0 || n > 10 {
				return usagef("--severity: must be a whole number from 0 to 10")
			}
			res["valueInteger"] = n
		case record.KindAllergy:
			switch o.severity {
			case "mild", "moderate", "severe":
			default:
				return usagef("--severity: an allergy is mild, moderate or severe")
			}
			reactions := res.List("reaction")
			if len(reactions) == 0 {
				reactions = []any{map[string]any{"manifestation": []any{map[string]any{"text": "Reaction not specified"}}}}
			}
			if m, ok := reactions[0].(map[string]any); ok {
				m["severity"] = o.severity
			}
			res["reaction"] = reactions
		default:
			return usagef("--severity applies to symptoms and allergies")
		}
	}
	if o.value != "" {
		vk := vitalKindOf(res)
		if vk == "" {
			return usagef("--value applies to vital signs")
		}
		vt, err := record.ParseVital(vk, o.value)
		if err != nil {
			return &usageError{err: err}
		}
		fresh, err := record.NewVital(record.Common{}, vt, record.DateOf(res))
		if err != nil {
			return err
		}
		nr, _ := record.Parse(fresh.Resource)
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

// editPatient changes the name, birth date or sex of a Patient.
func editPatient(res record.Resource, o editOptions) error {
	if o.note != "" || o.date != "" || o.stop != "" || o.status != "" || o.value != "" || o.severity != "" {
		return usagef("a Patient takes --name, --birth-date and --sex")
	}
	if o.name != "" {
		p, err := record.NewPatient(record.Common{}, o.name, time.Time{})
		if err != nil {
			return &usageError{err: err}
		}
		nr, _ := record.Parse(p.Resource)
		res["name"] = nr["name"]
	}
	if o.birthDate != "" {
		t, err := time.Parse(time.DateOnly, strings.TrimSpace(o.birthDate))
		if err != nil {
			return usagef("--birth-date: use YYYY-MM-DD")
		}
		if err := record.NotFuture("birth-date", record.Day(t.Year(), t.Month(), t.Day()), time.Now()); err != nil {
			return &usageError{err: err}
		}
		res["birthDate"] = t.Format(time.DateOnly)
	}
	if o.sex != "" {
		switch s := strings.ToLower(strings.TrimSpace(o.sex)); s {
		case "female", "male", "other", "unknown":
			res["gender"] = s
		default:
			return usagef("--sex: female, male, other or unknown")
		}
	}
	return nil
}

// vitalKindOf maps a vital-signs Observation back to its kind in the
// vital-sign table (record.VitalOf), or "".
func vitalKindOf(res record.Resource) string {
	if vs := record.VitalOf(res); vs != nil {
		return vs.Kind
	}
	return ""
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
