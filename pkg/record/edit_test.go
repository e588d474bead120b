package record

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestEditApply(t *testing.T) {
	now := time.Now()
	mk := func(r Record, err error) (Resource, string) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		res, err := Parse(r.Resource)
		if err != nil {
			t.Fatal(err)
		}
		return res, r.Kind
	}
	med := func() (Resource, string) {
		return mk(NewMedication(Common{}, Medication{Name: "Metformin", Dose: "500 mg", Start: Day(2026, 11, 1)}))
	}
	symptom := func() (Resource, string) {
		return mk(NewSymptom(Common{}, Symptom{Name: "Headache", Severity: 4, At: now.Add(-time.Hour)}))
	}
	allergy := func() (Resource, string) { return mk(NewAllergy(Common{}, Allergy{Substance: "Penicillin"})) }
	bp := func() (Resource, string) {
		vt, err := ParseVital("bp", "120/80")
		if err != nil {
			t.Fatal(err)
		}
		return mk(NewVital(Common{}, vt, now.Add(-time.Hour)))
	}
	patient := func() (Resource, string) { return mk(NewPatient(Common{}, "Alice Example", time.Time{})) }
	tests := []struct {
		name     string
		make     func() (Resource, string)
		edit     Edit
		badField string // the InputError's field, or "" for success
		path     string // what the edit set
		want     string
	}{
		{"a medication's name", med, Edit{Name: "Metformin XR"}, "", "medicationCodeableConcept.text", "Metformin XR"},
		{"a medication's start", med, Edit{Date: Day(2026, 10, 1)}, "", "effectivePeriod.start", "2026-10-01"},
		{"a medication stopped", med, Edit{Stop: Day(2026, 12, 1)}, "", "status", "completed"},
		{"a medication's status", med, Edit{Status: "on-hold"}, "", "status", "on-hold"},
		{"a status a medication has not", med, Edit{Status: "resolved"}, "status", "", ""},
		{"a symptom's severity", symptom, Edit{Severity: "7"}, "", "valueInteger", "7"},
		{"a severity out of range", symptom, Edit{Severity: "11"}, "severity", "", ""},
		{"a symptom in the future", symptom, Edit{Date: now.Add(48 * time.Hour)}, "date", "", ""},
		{"a symptom stopped", symptom, Edit{Stop: now}, "stop", "", ""},
		{"an allergy's severity", allergy, Edit{Severity: "severe"}, "", "reaction.severity", "severe"},
		{"a blood pressure's reading", bp, Edit{Value: "125/82"}, "", "component.valueQuantity.value", "125"},
		{"a reading of another kind", symptom, Edit{Value: "125/82"}, "value", "", ""},
		{"a note", allergy, Edit{Note: "since childhood"}, "", "note.text", "since childhood"},
		{"a birth date on a medication", med, Edit{BirthDate: "1980-04-02"}, "birth-date", "", ""},
		{"the patient's birth date", patient, Edit{BirthDate: "1980-04-02", Sex: "Female"}, "", "birthDate", "1980-04-02"},
		{"the patient's sex", patient, Edit{Sex: "Female"}, "", "gender", "female"},
		{"a bad birth date", patient, Edit{BirthDate: "1980-13-01"}, "birth-date", "", ""},
		{"a note on the patient", patient, Edit{Note: "x"}, "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, kind := tt.make()
			err := tt.edit.Apply(res, kind, now)
			var in *InputError
			switch {
			case tt.want == "" && tt.badField == "" && tt.path == "":
				if !errors.As(err, &in) {
					t.Fatalf("err = %v, want an InputError", err)
				}
			case tt.badField != "":
				if !errors.As(err, &in) || in.Field != tt.badField {
					t.Fatalf("err = %v, want an InputError on %s", err, tt.badField)
				}
			case err != nil:
				t.Fatal(err)
			default:
				got := res.Str(tt.path)
				if got == "" {
					got = fmt.Sprint(res.Get(tt.path))
				}
				if got != tt.want {
					t.Fatalf("%s = %q, want %q", tt.path, got, tt.want)
				}
			}
		})
	}
}
