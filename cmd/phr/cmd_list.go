package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/phr-project/phr/pkg/record"
	"github.com/phr-project/phr/pkg/vault"
	"github.com/spf13/cobra"
)

type listOptions struct {
	since, until string
	source       string
	limit        int
	oldest       bool
	group        bool
	ids          bool
}

func (o *listOptions) addFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&o.since, "since", "", "only records dated on or after (2026-11-24, yesterday, 2h ago)")
	f.StringVar(&o.until, "until", "", "only records dated before")
	f.StringVar(&o.source, "source", "", "only records from this source (self, a provider, an importer)")
	f.IntVar(&o.limit, "limit", 0, "at most this many records")
	f.BoolVar(&o.ids, "ids", false, "print only the records' IDs, one per line (for scripts: phr edit $(phr list medication --limit 1 --ids) --stop today)")
}

func (o *listOptions) query(kinds []string) (vault.Query, error) {
	q := vault.Query{Source: o.source, Limit: o.limit, Oldest: o.oldest}
	var err error
	if q.Since, err = when("since", o.since); err != nil {
		return q, err
	}
	if q.Until, err = when("until", o.until); err != nil {
		return q, err
	}
	if o.limit < 0 {
		return q, usagef("--limit must not be negative")
	}
	for _, k := range kinds {
		k = record.NormalizeKind(k)
		if k == "" {
			return q, usagef("empty record type")
		}
		q.Kinds = append(q.Kinds, k)
	}
	return q, nil
}

func newListCommand(g *globals) *cobra.Command {
	var o listOptions
	cmd := &cobra.Command{
		Use:   "list [TYPE...]",
		Short: "List records, newest first",
		Long: `list shows records, newest first. TYPE is one of ` + strings.Join(record.Kinds, ", ") + `,
or any FHIR resource type in lower case (careplan, claim, ...).`,
		Example: `  phr list medication
  phr list vital symptom --since "7d ago"
  phr list --source self --json`,
		RunE: func(cmd *cobra.Command, a []string) error {
			q, err := o.query(a)
			if err != nil {
				return err
			}
			switch {
			case o.ids:
				return g.listIDs(q)
			case o.group:
				return g.listGroups(q)
			}
			return g.listRecords(q)
		},
	}
	o.addFlags(cmd)
	cmd.Flags().BoolVar(&o.group, "group", false, "one line per fact: the same medication, result or condition from several sources grouped")
	return cmd
}

// listIDs prints the IDs of the records q selects, one per line.
func (g *globals) listIDs(q vault.Query) error {
	v, err := g.openVault(true)
	if err != nil {
		return err
	}
	recs, err := v.List(q)
	v.Close()
	if err != nil {
		return err
	}
	for _, r := range recs {
		fmt.Fprintln(g.stdout, r.ID)
	}
	return nil
}

func (g *globals) listGroups(q vault.Query) error {
	v, err := g.openVault(true)
	if err != nil {
		return err
	}
	recs, err := v.List(q)
	v.Close()
	if err != nil {
		return err
	}
	groups := record.GroupRecords(recs)
	if g.json {
		return printJSON(g.stdout, groups)
	}
	if len(groups) == 0 {
		fmt.Fprintln(g.stdout, "No records.")
		return nil
	}
	tw := tabwriter.NewWriter(g.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "DATE\tTYPE\tWHAT\tSOURCES\tIDS")
	for _, gr := range groups {
		d := gr.Date
		if d == "" {
			d = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", d, gr.Kind, clip(gr.Display, 60), clip(strings.Join(gr.Sources, ", "), 40), strings.Join(gr.IDs, " "))
	}
	return tw.Flush()
}

func newSearchCommand(g *globals) *cobra.Command {
	var o listOptions
	cmd := &cobra.Command{
		Use:   "search TEXT",
		Short: "Find records whose text contains TEXT (case-insensitive)",
		Args:  args(cobra.MinimumNArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			q, err := o.query(nil)
			if err != nil {
				return err
			}
			q.Text = joinArgs(a)
			if strings.TrimSpace(q.Text) == "" {
				return usagef("an empty search finds everything: give words to look for (phr list shows every record)")
			}
			if o.ids {
				return g.listIDs(q)
			}
			return g.listRecords(q)
		},
	}
	o.addFlags(cmd)
	return cmd
}

func (g *globals) listRecords(q vault.Query) error {
	v, err := g.openVault(true)
	if err != nil {
		return err
	}
	recs, err := v.List(q)
	v.Close()
	if err != nil {
		return err
	}
	if g.json {
		return printJSON(g.stdout, summaries(recs))
	}
	if len(recs) == 0 {
		fmt.Fprintln(g.stdout, "No records.")
		return nil
	}
	printTable(g.stdout, recs)
	return nil
}

func summaries(recs []record.Record) []record.Summary {
	out := make([]record.Summary, len(recs))
	for i := range recs {
		out[i] = recs[i].Summarize()
	}
	return out
}

func printTable(w io.Writer, recs []record.Record) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "DATE\tTYPE\tWHAT\tSOURCE\tID")
	for _, r := range recs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", shortDate(r.When()), r.Kind, clip(r.Display, 60), clip(r.Provenance.Source(), 24), r.ID)
	}
	tw.Flush()
}

// shortDate is a record's date as its source wrote it: a day as that
// day, a time on the source's clock (never converted into this
// machine's zone).
func shortDate(w record.When) string {
	if w.IsZero() {
		return "-"
	}
	return w.String()
}

func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

func newTimelineCommand(g *globals) *cobra.Command {
	var o listOptions
	cmd := &cobra.Command{
		Use:   "timeline [TYPE...]",
		Short: "Show records day by day, oldest first",
		RunE: func(cmd *cobra.Command, a []string) error {
			o.oldest = true
			q, err := o.query(a)
			if err != nil {
				return err
			}
			v, err := g.openVault(true)
			if err != nil {
				return err
			}
			recs, err := v.List(q)
			v.Close()
			if err != nil {
				return err
			}
			if g.json {
				return printJSON(g.stdout, summaries(recs))
			}
			printTimeline(g.stdout, recs)
			return nil
		},
	}
	o.addFlags(cmd)
	return cmd
}

func printTimeline(w io.Writer, recs []record.Record) {
	if len(recs) == 0 {
		fmt.Fprintln(w, "No records.")
		return
	}
	day := ""
	for _, r := range recs {
		d := "Undated"
		when := r.When()
		switch {
		case when.Precision >= record.PrecisionDay:
			y, m, dd := when.Date()
			d = time.Date(y, m, dd, 0, 0, 0, 0, time.UTC).Format("Monday 2 January 2006")
		case when.Precision == record.PrecisionMonth:
			d = when.Time.Format("January 2006")
		case when.Precision == record.PrecisionYear:
			d = when.Raw
		}
		if d != day {
			if day != "" {
				fmt.Fprintln(w)
			}
			fmt.Fprintln(w, d)
			day = d
		}
		at := "     "
		if c := when.Clock(); c != "" {
			at = c
		}
		fmt.Fprintf(w, "  %s  %-12s %s  [%s]\n", at, r.Kind, r.Display, r.ID)
	}
}
