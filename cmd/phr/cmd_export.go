package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"slices"
	"time"

	"github.com/phr-project/phr/pkg/fhirdoc"
	"github.com/phr-project/phr/pkg/pdfdoc"
	"github.com/phr-project/phr/pkg/record"
	"github.com/phr-project/phr/pkg/vault"
	"github.com/spf13/cobra"
)

type exportOptions struct {
	format string
	out    string
	list   listOptions
}

func newExportCommand(g *globals) *cobra.Command {
	var o exportOptions
	cmd := &cobra.Command{
		Use:   "export --format fhir|ndjson|ips|csv|pdf [-o FILE] [TYPE...]",
		Short: "Write records in standard formats: a FHIR Bundle, NDJSON, an IPS document, CSV, or a printable PDF summary",
		Long: `export writes the records (all, or of the given types and dates) as FHIR R4:
a Bundle of type collection (fhir), one resource per line (ndjson), or an
International Patient Summary document (ips); or as the CSV template of
docs/formats/csv.md (medications, lab results and vital signs only). All of
them import back into phr, and into other tools. pdf writes a printable
health summary for a clinician (docs/share-protocol.md, "PDF").`,
		RunE: func(cmd *cobra.Command, a []string) error { return runExport(g, o, a) },
	}
	cmd.Flags().StringVar(&o.format, "format", "fhir", "fhir, ndjson, ips, csv or pdf")
	cmd.Flags().StringVarP(&o.out, "output", "o", "", "file to write (default: standard output)")
	o.list.addFlags(cmd)
	return cmd
}

func runExport(g *globals, o exportOptions, kinds []string) error {
	if o.out == "-" {
		o.out = "" // "-" is standard output, as in every Unix tool
	}
	switch o.format {
	case "fhir", "ndjson", "ips", "csv", "pdf":
	default:
		return usagef("--format: use fhir, ndjson, ips, csv or pdf")
	}
	if o.format == "pdf" && o.out == "" && isTerminal(g.rawStdout) {
		return usagef("--format pdf writes a binary file: give -o FILE (or redirect standard output)")
	}
	o.list.oldest = true
	q, err := o.list.query(kinds)
	if err != nil {
		return err
	}
	// An existing file is refused before anything is read.
	if o.out != "" {
		if _, err := os.Lstat(o.out); err == nil {
			return fmt.Errorf("%s exists; not overwriting it", o.out)
		}
	}
	v, err := g.openVault(true)
	if err != nil {
		return err
	}
	defer v.Close()
	patient, _ := v.Patient()
	n, skipped := 0, 0
	write := func(w io.Writer) error {
		bw := bufio.NewWriterSize(w, 64<<10)
		var err error
		n, skipped, err = writeExport(bw, v, q, o.format, patient)
		if err == nil {
			err = bw.Flush()
		}
		return err
	}
	if o.out == "" {
		err = write(g.rawStdout)
	} else {
		err = createFile(o.out, func(f *os.File) error { return write(f) })
	}
	if err == nil && skipped > 0 {
		fmt.Fprintf(g.stderr, "phr: %d records are not medications, lab results or vital signs: the CSV template cannot hold them\n", skipped)
	}
	if err == nil && o.out != "" && !g.json {
		fmt.Fprintf(g.stderr, "Exported %d records to %s\n", n, o.out)
	}
	return err
}

// writeExport writes the records q selects in format to w and returns how
// many it wrote and, for CSV, how many the template could not hold.
// Records stream from the vault to w one at a time, oldest first, except
// for a PDF and an IPS document, which need them all at once (a PDF is
// grouped by section; a Composition lists every entry first).
func writeExport(w io.Writer, v *vault.Vault, q vault.Query, format string, patient record.Record) (n, skipped int, err error) {
	each := func(fn func(record.Record) error) error { return v.Each(q, fn) }
	switch format {
	case "ndjson":
		n, err = fhirdoc.WriteNDJSON(w, each)
		return n, 0, err
	case "fhir":
		n, err = fhirdoc.WriteBundle(w, each)
		return n, 0, err
	case "csv":
		return fhirdoc.WriteCSV(w, each)
	}
	var recs []record.Record
	if err := each(func(r record.Record) error { recs = append(recs, r); return nil }); err != nil {
		return len(recs), 0, err
	}
	var doc []byte
	if format == "pdf" {
		doc, err = pdfdoc.Summary(patient, recs, pdfdoc.Options{Now: time.Now()})
	} else { // ips: the patient is the document's subject, not an entry
		others := slices.DeleteFunc(slices.Clone(recs), func(r record.Record) bool { return r.ID == patient.ID || r.Kind == record.KindPatient })
		if doc, err = fhirdoc.BuildIPS(patient, others, time.Now()); err == nil {
			doc = append(doc, '\n')
		}
	}
	if err == nil {
		_, err = w.Write(doc)
	}
	return len(recs), 0, err
}
