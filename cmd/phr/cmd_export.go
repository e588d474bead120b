package main

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/phr-project/phr/pkg/fhirdoc"
	"github.com/phr-project/phr/pkg/pdfdoc"
	"github.com/phr-project/phr/pkg/record"
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
	w := g.rawStdout
	var f *os.File
	var tmp string
	if o.out != "" {
		tmp = filepath.Join(filepath.Dir(o.out), "."+filepath.Base(o.out)+".partial")
		if f, err = os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600); err != nil {
			return err
		}
		w = f
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	// Records stream from the vault to the output one at a time, oldest
	// first; an IPS document and a PDF need them all at once (a
	// Composition lists every entry first; a PDF is grouped by section).
	each := func(fn func(record.Record) error) error { return v.Each(q, fn) }
	n, skipped := 0, 0
	switch o.format {
	case "ndjson":
		n, err = fhirdoc.WriteNDJSON(bw, each)
	case "fhir":
		n, err = fhirdoc.WriteBundle(bw, each)
	case "csv":
		n, skipped, err = fhirdoc.WriteCSV(bw, each)
	case "pdf":
		// A printed summary, like an IPS document, needs every record
		// at once (it is grouped by section).
		var recs []record.Record
		err = each(func(r record.Record) error {
			n++
			recs = append(recs, r)
			return nil
		})
		var doc []byte
		if err == nil {
			doc, err = pdfdoc.Summary(patient, recs, pdfdoc.Options{Now: time.Now()})
		}
		if err == nil {
			_, err = bw.Write(doc)
		}
	case "ips":
		var others []record.Record
		err = each(func(r record.Record) error {
			n++
			if r.ID != patient.ID && r.Kind != record.KindPatient {
				others = append(others, r)
			}
			return nil
		})
		var doc []byte
		if err == nil {
			doc, err = fhirdoc.BuildIPS(patient, others, time.Now())
		}
		if err == nil {
			_, err = bw.Write(append(doc, '\n'))
		}
	}
	if err == nil {
		err = bw.Flush()
	}
	if f != nil {
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = os.Link(tmp, o.out)
		}
		os.Remove(tmp)
	}
	if err == nil && skipped > 0 {
		fmt.Fprintf(g.stderr, "phr: %d records are not medications, lab results or vital signs: the CSV template cannot hold them\n", skipped)
	}
	if err == nil && o.out != "" && !g.json {
		fmt.Fprintf(g.stderr, "Exported %d records to %s\n", n, o.out)
	}
	return err
}
