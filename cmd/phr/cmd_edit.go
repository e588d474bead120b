package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
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

// applyEdits applies the flags as the record edit they ask for
// (record.Edit); a bad value is a usage error naming its flag.
func applyEdits(res record.Resource, kind string, o editOptions) error {
	if res.Type() != "Patient" && (o.birthDate != "" || o.sex != "") {
		return usagef("--birth-date and --sex apply to you: phr edit patient")
	}
	e := record.Edit{Name: o.name, Note: o.note, Status: o.status, Value: o.value, Severity: o.severity, BirthDate: o.birthDate, Sex: o.sex}
	var err error
	if e.Date, err = when("date", o.date); err != nil {
		return err
	}
	if e.Stop, err = when("stop", o.stop); err != nil {
		return err
	}
	if err := e.Apply(res, kind, time.Now()); err != nil {
		var in *record.InputError
		switch {
		case errors.As(err, &in) && in.Field == "" && res.Type() == "Patient":
			return usagef("a Patient takes --name, --birth-date and --sex")
		case errors.As(err, &in) && in.Field != "":
			return usagef("--%s: %s", in.Field, in.Msg)
		}
		return &usageError{err: err}
	}
	return nil
}
