package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/phr-project/phr/pkg/record"
	"github.com/spf13/cobra"
)

func newLogCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "log",
		Short: "Record a medication, dose, symptom, vital sign, condition, allergy, immunization or note",
		Args:  args(cobra.NoArgs),
	}
	cmd.AddCommand(
		newLogMedCommand(g), newLogDoseCommand(g), newLogSymptomCommand(g), newLogVitalCommand(g),
		newLogConditionCommand(g), newLogAllergyCommand(g), newLogImmunizationCommand(g), newLogNoteCommand(g),
	)
	return cmd
}

// when parses an optional date flag; empty means zero.
func when(flag, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := record.ParseWhen(s, time.Now())
	if err != nil {
		return time.Time{}, usagef("--%s: %v", flag, err)
	}
	return t, nil
}

// joinArgs makes one name of the remaining arguments, so that
// `phr log med vitamin D` works without quotes.
func joinArgs(a []string) string { return strings.TrimSpace(strings.Join(a, " ")) }

// logRecord validates with build (before the vault is opened, so bad input
// writes nothing), stores the record and prints it.
func (g *globals) logRecord(build func(c record.Common) (record.Record, error)) error {
	// Build once without a subject to check the input before unlocking.
	if _, err := build(record.Common{}); err != nil {
		return &usageError{err: err}
	}
	v, err := g.openVault(false)
	if err != nil {
		return err
	}
	defer v.Close()
	c := record.Common{}
	if pat, err := v.Patient(); err == nil {
		c.Subject = "Patient/" + pat.ID
	}
	r, err := build(c)
	if err != nil {
		return &usageError{err: err}
	}
	if _, err := v.Put(r); err != nil {
		return err
	}
	stored, err := v.Get(r.ID)
	if err != nil {
		return err
	}
	return g.print(stored.Summarize(), func(w io.Writer) error {
		fmt.Fprintf(w, "Logged %s: %s (%s)\n", stored.Kind, stored.Display, stored.ID)
		return nil
	})
}

func newLogMedCommand(g *globals) *cobra.Command {
	var m record.Medication
	var start, stop string
	cmd := &cobra.Command{
		Use:     "med NAME",
		Aliases: []string{"medication"},
		Short:   "Record a medication you take (MedicationStatement)",
		Example: `  phr log med metformin --dose "500 mg" --frequency "twice daily" --start 2026-01-10`,
		Args:    args(cobra.MinimumNArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			var err error
			if m.Start, err = when("start", start); err != nil {
				return err
			}
			if m.Stop, err = when("stop", stop); err != nil {
				return err
			}
			m.Name = joinArgs(a)
			return g.logRecord(func(c record.Common) (record.Record, error) { return record.NewMedication(c, m) })
		},
	}
	f := cmd.Flags()
	f.StringVar(&m.Dose, "dose", "", `dose, e.g. "500 mg"`)
	f.StringVar(&m.Frequency, "frequency", "", `how often, e.g. "twice daily"`)
	f.StringVar(&start, "start", "", "when you started (date)")
	f.StringVar(&stop, "stop", "", "when you stopped (date)")
	f.StringVar(&m.Reason, "reason", "", "why you take it")
	f.StringVar(&m.Note, "note", "", "a note")
	return cmd
}

func newLogDoseCommand(g *globals) *cobra.Command {
	var d record.Dose
	var at string
	cmd := &cobra.Command{
		Use:     "dose NAME",
		Short:   "Record a dose you took (MedicationAdministration)",
		Example: `  phr log dose ibuprofen --amount "400 mg" --at "2h ago"`,
		Args:    args(cobra.MinimumNArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			var err error
			if d.At, err = when("at", at); err != nil {
				return err
			}
			d.Name = joinArgs(a)
			return g.logRecord(func(c record.Common) (record.Record, error) { return record.NewDose(c, d) })
		},
	}
	cmd.Flags().StringVar(&at, "at", "", "when you took it (default now)")
	cmd.Flags().StringVar(&d.Amount, "amount", "", `amount taken, e.g. "400 mg"`)
	cmd.Flags().StringVar(&d.Note, "note", "", "a note")
	return cmd
}

func newLogSymptomCommand(g *globals) *cobra.Command {
	var s record.Symptom
	var at, severity string
	cmd := &cobra.Command{
		Use:     "symptom NAME",
		Short:   "Record a symptom, with a severity from 0 to 10",
		Example: `  phr log symptom headache --severity 6 --at "30m ago"`,
		Args:    args(cobra.MinimumNArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			var err error
			if s.At, err = when("at", at); err != nil {
				return err
			}
			s.Severity = -1
			if severity != "" {
				n, err := strconv.Atoi(severity)
				if err != nil || n < 0 || n > 10 {
					return usagef("--severity: must be a whole number from 0 to 10")
				}
				s.Severity = n
			}
			s.Name = joinArgs(a)
			return g.logRecord(func(c record.Common) (record.Record, error) { return record.NewSymptom(c, s) })
		},
	}
	cmd.Flags().StringVar(&severity, "severity", "", "severity, 0 (none) to 10 (worst)")
	cmd.Flags().StringVar(&at, "at", "", "when (default now)")
	cmd.Flags().StringVar(&s.Note, "note", "", "a note")
	return cmd
}

func newLogVitalCommand(g *globals) *cobra.Command {
	var at string
	cmd := &cobra.Command{
		Use:   "vital KIND VALUE",
		Short: "Record a vital sign: bp 120/80, hr 72, weight 70kg|154lb, temp 37.2C, height 170cm, ...",
		Long:  vitalHelp(),
		Example: `  phr log vital bp 120/80
  phr log vital weight 154lb --at yesterday`,
		Args: args(cobra.MinimumNArgs(2)),
		RunE: func(cmd *cobra.Command, a []string) error {
			t, err := when("at", at)
			if err != nil {
				return err
			}
			v, err := record.ParseVital(a[0], strings.Join(a[1:], ""))
			if err != nil {
				return &usageError{err: err}
			}
			return g.logRecord(func(c record.Common) (record.Record, error) { return record.NewVital(c, v, t) })
		},
	}
	cmd.Flags().StringVar(&at, "at", "", "when it was measured (default now)")
	return cmd
}

func newLogConditionCommand(g *globals) *cobra.Command {
	var onset, note string
	cmd := &cobra.Command{
		Use:   "condition NAME",
		Short: "Record a condition or diagnosis (Condition)",
		Args:  args(cobra.MinimumNArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			t, err := when("onset", onset)
			if err != nil {
				return err
			}
			name := joinArgs(a)
			return g.logRecord(func(c record.Common) (record.Record, error) { return record.NewCondition(c, name, t, note) })
		},
	}
	cmd.Flags().StringVar(&onset, "onset", "", "when it began (date)")
	cmd.Flags().StringVar(&note, "note", "", "a note")
	return cmd
}

func newLogAllergyCommand(g *globals) *cobra.Command {
	var al record.Allergy
	cmd := &cobra.Command{
		Use:   "allergy SUBSTANCE",
		Short: "Record an allergy or intolerance (AllergyIntolerance)",
		Example: `  phr log allergy penicillin --reaction hives --severity moderate
  phr log allergy peanuts --reaction anaphylaxis            # criticality high`,
		Args: args(cobra.MinimumNArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			al.Substance = joinArgs(a)
			return g.logRecord(func(c record.Common) (record.Record, error) { return record.NewAllergy(c, al) })
		},
	}
	cmd.Flags().StringVar(&al.Reaction, "reaction", "", "what happens, e.g. hives")
	cmd.Flags().StringVar(&al.Severity, "severity", "", "how bad the reaction was: mild, moderate or severe")
	cmd.Flags().StringVar(&al.Criticality, "criticality", "", "risk of a life-threatening reaction: low, high or unable-to-assess (default high for anaphylaxis)")
	cmd.Flags().StringVar(&al.Note, "note", "", "a note")
	return cmd
}

func newLogImmunizationCommand(g *globals) *cobra.Command {
	var date, note string
	cmd := &cobra.Command{
		Use:     "immunization VACCINE",
		Aliases: []string{"vaccine"},
		Short:   "Record a vaccination (Immunization)",
		Args:    args(cobra.MinimumNArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			t, err := when("date", date)
			if err != nil {
				return err
			}
			name := joinArgs(a)
			return g.logRecord(func(c record.Common) (record.Record, error) { return record.NewImmunization(c, name, t, note) })
		},
	}
	cmd.Flags().StringVar(&date, "date", "", "when you got it (default today)")
	cmd.Flags().StringVar(&note, "note", "", "a note (lot number, place)")
	return cmd
}

func newLogNoteCommand(g *globals) *cobra.Command {
	var at string
	cmd := &cobra.Command{
		Use:   "note TEXT",
		Short: "Record a free-text note (DocumentReference)",
		Args:  args(cobra.MinimumNArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			t, err := when("at", at)
			if err != nil {
				return err
			}
			text := joinArgs(a)
			return g.logRecord(func(c record.Common) (record.Record, error) { return record.NewNote(c, text, t) })
		},
	}
	cmd.Flags().StringVar(&at, "at", "", "when (default now)")
	return cmd
}

// isVitalName reports whether s names a vital sign (phr log vital KIND).
func isVitalName(s string) bool {
	_, ok := record.LookupVital(s)
	return ok
}

// vitalHelp lists the vital signs phr log vital takes, from the table.
func vitalHelp() string {
	var b strings.Builder
	b.WriteString("vital records a vital sign. KIND is one of (other names in brackets):\n\n")
	for _, v := range record.VitalSigns() {
		fmt.Fprintf(&b, "  %-8s %s", v.Kind, v.Expect())
		if len(v.Aliases) > 0 {
			fmt.Fprintf(&b, " [%s]", strings.Join(v.Aliases, ", "))
		}
		b.WriteString("\n")
	}
	return b.String()
}
