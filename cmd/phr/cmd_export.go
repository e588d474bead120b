package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"

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
		Use:   "export --format fhir|ndjson [-o FILE] [TYPE...]",
		Short: "Write records as standard FHIR: a Bundle or NDJSON",
		Long: `export writes the records (all, or of the given types and dates) as FHIR R4:
a Bundle of type collection (fhir) or one resource per line (ndjson). Both
import back into phr, and into other FHIR tools.`,
		RunE: func(cmd *cobra.Command, a []string) error { return runExport(g, o, a) },
	}
	cmd.Flags().StringVar(&o.format, "format", "fhir", "fhir or ndjson")
	cmd.Flags().StringVarP(&o.out, "output", "o", "", "file to write (default: standard output)")
	o.list.addFlags(cmd)
	return cmd
}

func runExport(g *globals, o exportOptions, kinds []string) error {
	switch o.format {
	case "fhir", "ndjson":
	default:
		return usagef("--format: use fhir or ndjson")
	}
	o.list.oldest = true
	q, err := o.list.query(kinds)
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
	w := g.stdout
	var f *os.File
	var tmp string
	if o.out != "" {
		if _, err := os.Lstat(o.out); err == nil {
			return fmt.Errorf("%s exists; not overwriting it", o.out)
		}
		tmp = filepath.Join(filepath.Dir(o.out), "."+filepath.Base(o.out)+".partial")
		if f, err = os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600); err != nil {
			return err
		}
		w = f
	}
	bw := bufio.NewWriter(w)
	if o.format == "ndjson" {
		err = writeNDJSON(bw, recs)
	} else {
		err = writeBundle(bw, recs)
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
	if err == nil && o.out != "" && !g.json {
		fmt.Fprintf(g.stderr, "Exported %d records to %s\n", len(recs), o.out)
	}
	return err
}

func writeNDJSON(w io.Writer, recs []record.Record) error {
	for _, r := range recs {
		if err := writeCompact(w, r.Resource); err != nil {
			return fmt.Errorf("record %s: %w", r.ID, err)
		}
		if _, err := io.WriteString(w, "\n"); err != nil {
			return err
		}
	}
	return nil
}

// writeBundle streams a FHIR Bundle of type collection. Each entry's
// fullUrl is ResourceType/id (the resource's own id).
func writeBundle(w io.Writer, recs []record.Record) error {
	if _, err := io.WriteString(w, `{"resourceType":"Bundle","type":"collection","entry":[`); err != nil {
		return err
	}
	for i, r := range recs {
		if i > 0 {
			io.WriteString(w, ",")
		}
		res, err := record.Parse(r.Resource)
		if err != nil {
			return fmt.Errorf("record %s: %w", r.ID, err)
		}
		id := res.ID()
		if id == "" {
			id = r.ID
		}
		full, _ := json.Marshal(r.ResourceType + "/" + id)
		fmt.Fprintf(w, "\n{\"fullUrl\":%s,\"resource\":", full)
		if err := writeCompact(w, r.Resource); err != nil {
			return fmt.Errorf("record %s: %w", r.ID, err)
		}
		io.WriteString(w, "}")
	}
	_, err := io.WriteString(w, "\n]}\n")
	return err
}

func writeCompact(w io.Writer, data []byte) error {
	var b bytes.Buffer
	if err := json.Compact(&b, data); err != nil {
		return err
	}
	_, err := w.Write(b.Bytes())
	return err
}
