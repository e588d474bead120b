package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/phr-project/phr/pkg/record"
	"github.com/phr-project/phr/pkg/vault"
	"github.com/spf13/cobra"
)

// resolve finds a record by ID or unique ID prefix; "patient" (or "me")
// is the vault owner's own Patient record.
func resolve(v *vault.Vault, id string) (record.Record, error) {
	switch strings.ToLower(strings.TrimSpace(id)) {
	case "patient", "me":
		r, err := v.Patient()
		if errors.Is(err, vault.ErrNoPatient) {
			return record.Record{}, errors.New("the vault has no Patient record for you")
		}
		return r, err
	}
	if len(strings.TrimSpace(id)) < 4 {
		return record.Record{}, usagef("ID %q: give at least its first 4 characters (phr list shows IDs)", id)
	}
	// A whole ID is looked up at once; a prefix needs every key read.
	if record.ValidID(strings.ToLower(strings.TrimSpace(id))) {
		r, err := v.Get(strings.ToLower(strings.TrimSpace(id)))
		if err == nil || !errors.Is(err, vault.ErrNotFound) {
			return r, err
		}
	}
	full, err := v.Resolve(id)
	switch {
	case errors.Is(err, vault.ErrNotFound):
		return record.Record{}, fmt.Errorf("no record with ID %s", id)
	case errors.Is(err, vault.ErrAmbiguous):
		return record.Record{}, usagef("ID %s matches several records; give more characters", id)
	case err != nil:
		return record.Record{}, err
	}
	return v.Get(full)
}

func newShowCommand(g *globals) *cobra.Command {
	var fhir bool
	cmd := &cobra.Command{
		Use:   "show ID",
		Short: "Show one record (ID or a unique prefix of it; 'patient' is you)",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			v, err := g.openVault(true)
			if err != nil {
				return err
			}
			r, err := resolve(v, a[0])
			v.Close()
			if err != nil {
				return err
			}
			if fhir {
				if r.Deleted {
					return fmt.Errorf("record %s was deleted", r.ID)
				}
				var buf bytes.Buffer
				if err := json.Indent(&buf, r.Resource, "", "  "); err != nil {
					return err
				}
				buf.WriteByte('\n')
				_, err := g.stdout.Write(buf.Bytes())
				return err
			}
			return g.print(showJSON(r), func(w io.Writer) error {
				printRecord(g, r)
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&fhir, "fhir", false, "print the FHIR resource")
	return cmd
}

// showJSON is a record's full JSON form: the listing fields, the
// envelope's, and the resource.
func showJSON(r record.Record) map[string]any {
	s := r.Summarize()
	m := map[string]any{
		"id": s.ID, "type": s.Kind, "resourceType": s.ResourceType, "date": s.Date, "display": s.Display,
		"source": s.Source, "version": r.Version, "provenance": r.Provenance, "deleted": r.Deleted,
		"createdAt": r.CreatedAt.Format(time.RFC3339), "updatedAt": r.UpdatedAt.Format(time.RFC3339),
	}
	if s.Negation != "" {
		m["negation"] = s.Negation
	}
	if len(r.Resource) > 0 {
		m["resource"] = json.RawMessage(r.Resource)
	}
	return m
}

// dateLabel names what a record's date is: when it began, when it was
// recorded (which is not "since"), or when it happened.
func dateLabel(field string) string {
	switch {
	case strings.HasPrefix(field, "onset"):
		return "Since"
	case field == "recordedDate" || field == "recorded" || field == "dateAsserted" || field == "issued" || field == "created" || field == "authoredOn":
		return "Recorded on"
	case strings.HasPrefix(field, "abatement"):
		return "Ended"
	}
	return "Date"
}

func printRecord(g *globals, r record.Record) {
	tw := tabwriter.NewWriter(g.stdout, 0, 0, 2, ' ', 0)
	row := func(k, v string) {
		if v != "" {
			fmt.Fprintf(tw, "%s\t%s\n", k, v)
		}
	}
	row("ID", r.ID)
	row("Type", r.Kind+" ("+r.ResourceType+")")
	if r.Deleted {
		row("Deleted", r.UpdatedAt.Local().Format("2006-01-02 15:04"))
	}
	row("What", r.Display)
	if w := r.When(); !w.IsZero() {
		row(dateLabel(w.Field), w.String())
	}
	if r.ResourceType == "Patient" {
		if res, err := record.Parse(r.Resource); err == nil {
			row("Birth date", res.Str("birthDate"))
			row("Sex", res.Str("gender"))
			for _, id := range res.List("identifier") {
				if m, ok := id.(map[string]any); ok {
					if val, _ := m["value"].(string); val != "" {
						if sys, _ := m["system"].(string); sys != "" {
							val += " (" + sys + ")"
						}
						row("Identifier", val)
					}
				}
			}
		}
	}
	p := r.Provenance
	row("Source", p.Source())
	row("Entered", p.Method)
	row("Importer", p.Importer)
	row("File", p.File)
	row("File SHA-256", p.FileSHA256)
	row("Original ID", p.OriginalID)
	if p.PatientMismatch {
		row("Patient", "the file was about another person; imported as you asked")
	}
	if p.Importer == "shc" {
		row("Signature", map[bool]string{true: "verified", false: "not verified"}[p.Verified])
	}
	row("Recorded", r.CreatedAt.Local().Format("2006-01-02 15:04"))
	if r.Version > 1 {
		row("Changed", r.UpdatedAt.Local().Format("2006-01-02 15:04")+fmt.Sprintf(" (version %d)", r.Version))
	}
	if res, err := record.Parse(r.Resource); err == nil {
		for _, n := range res.List("note") {
			if m, ok := n.(map[string]any); ok {
				if t, _ := m["text"].(string); t != "" {
					row("Note", t)
				}
			}
		}
	}
	tw.Flush()
}

func newRmCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "rm ID",
		Aliases: []string{"delete"},
		Short:   "Delete a record (a tombstone remains for sync; the content is gone)",
		Args:    args(cobra.ExactArgs(1)),
		RunE: g.onVault(false, func(cmd *cobra.Command, a []string, v *vault.Vault) error {
			r, err := resolve(v, a[0])
			if err != nil {
				return err
			}
			if r.Deleted {
				return fmt.Errorf("record %s was already deleted", r.ID)
			}
			if err := v.Delete(r.ID, r.Version); err != nil {
				return err
			}
			return g.print(map[string]any{"id": r.ID, "deleted": true}, func(w io.Writer) error {
				fmt.Fprintf(w, "Deleted %s: %s (%s)\n", r.Kind, r.Display, r.ID)
				return nil
			})
		}),
	}
}
