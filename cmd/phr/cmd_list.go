package main

import (
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"

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
	f.StringVar(&o.since, "since", "", "only records dated on or after (2026-11-24, yesterday, 2h ago; 7d is 7d ago)")
	f.StringVar(&o.until, "until", "", "only records dated before")
	f.StringVar(&o.source, "source", "", "only records from this source (self, a provider, an importer)")
	f.IntVar(&o.limit, "limit", 0, "at most this many records")
	f.BoolVar(&o.ids, "ids", false, "print only the records' IDs, one per line (for scripts: phr edit $(phr list medication --limit 1 --ids) --stop today)")
}

func (o *listOptions) query(kinds []string) (vault.Query, error) {
	q := vault.Query{Source: o.source, Limit: o.limit, Oldest: o.oldest}
	var err error
	if q.Since, err = when("since", relative(o.since)); err != nil {
		return q, err
	}
	if q.Until, err = when("until", relative(o.until)); err != nil {
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

// relative reads a bare amount of time ("7d", "2h", "1w") as that long
// ago: what --since 7d means.
func relative(s string) string {
	t := strings.TrimSpace(s)
	if t == "" || t[0] < '0' || t[0] > '9' || strings.ContainsAny(t, ":-T ") || strings.HasSuffix(strings.ToLower(t), "ago") {
		return s
	}
	if _, err := record.ParseWhen(t+" ago", time.Now()); err != nil {
		return s
	}
	return t + " ago"
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

// list returns the records q selects, from a vault opened for reading.
func (g *globals) list(q vault.Query) ([]record.Record, error) {
	v, err := g.openVault(true)
	if err != nil {
		return nil, err
	}
	defer v.Close()
	return v.List(q)
}

// listIDs prints the IDs of the records q selects, one per line.
func (g *globals) listIDs(q vault.Query) error {
	recs, err := g.list(q)
	if err != nil {
		return err
	}
	for _, r := range recs {
		fmt.Fprintln(g.stdout, r.ID)
	}
	return nil
}

func (g *globals) listGroups(q vault.Query) error {
	recs, err := g.list(q)
	if err != nil {
		return err
	}
	return printRows(g, record.GroupRecords(recs), "No records.", "DATE\tTYPE\tWHAT\tSOURCES\tIDS", func(gr *record.Group) string {
		d := gr.Date
		if d == "" {
			d = "-"
		}
		return fmt.Sprintf("%s\t%s\t%s\t%s\t%s", d, gr.Kind, clip(gr.Display, 60), clip(strings.Join(gr.Sources, ", "), 40), strings.Join(gr.IDs, " "))
	}, "")
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

// listRecords prints the records q selects from the listing index,
// streaming: it unseals no record (but those a text query tests), and
// holds no more than one listing entry at a time in memory.
func (g *globals) listRecords(q vault.Query) error {
	v, err := g.openVault(true)
	if err != nil {
		return err
	}
	defer v.Close()
	return g.printEntries(v, q, printTable)
}

// printTable prints a table of the entries each (called twice: once to
// size the columns, as text/tabwriter would, once to print) gives, or
// "No records.".
func printTable(w io.Writer, each func(func(vault.Entry) error) error) error {
	header := [5]string{"DATE", "TYPE", "WHAT", "SOURCE", "ID"}
	row := func(e *vault.Entry) [5]string {
		return [5]string{shortDate(e.When()), e.Kind, clip(e.Display, 60), clip(e.Source, 24), e.ID}
	}
	var widths [4]int
	for i := range widths {
		widths[i] = utf8.RuneCountInString(header[i])
	}
	n := 0
	if err := each(func(e vault.Entry) error {
		n++
		r := row(&e)
		for i := range widths {
			widths[i] = max(widths[i], utf8.RuneCountInString(r[i]))
		}
		return nil
	}); err != nil {
		return err
	}
	if n == 0 {
		_, err := fmt.Fprintln(w, "No records.")
		return err
	}
	line := make([]byte, 0, 256)
	print := func(cells [5]string) error {
		line = line[:0]
		for i, c := range cells[:4] {
			line = append(line, c...)
			for pad := widths[i] + 2 - utf8.RuneCountInString(c); pad > 0; pad-- {
				line = append(line, ' ')
			}
		}
		line = append(append(line, cells[4]...), '\n')
		_, err := w.Write(line)
		return err
	}
	if err := print(header); err != nil {
		return err
	}
	return each(func(e vault.Entry) error { return print(row(&e)) })
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
			defer v.Close()
			return g.printEntries(v, q, printTimeline)
		},
	}
	o.addFlags(cmd)
	return cmd
}

// printTimeline prints the entries each gives, day by day, as they come.
func printTimeline(w io.Writer, each func(func(vault.Entry) error) error) error {
	day := ""
	n := 0
	err := each(func(r vault.Entry) error {
		n++
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
		_, err := fmt.Fprintf(w, "  %s  %-12s %s  [%s]\n", at, r.Kind, r.Display, r.ID)
		return err
	})
	if err == nil && n == 0 {
		_, err = fmt.Fprintln(w, "No records.")
	}
	return err
}
