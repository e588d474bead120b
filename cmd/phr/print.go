package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"reflect"
	"text/tabwriter"

	"github.com/phr-project/phr/pkg/vault"
)

// The one printer of phr's results. Every command prints what it did
// through g.print (a value that is its JSON form with --json, and a
// function that writes its text otherwise); listings that stream go
// through g.printEntries. Notices for a person (progress, hints) go to
// standard error and never into JSON.

// print is how a command prints its result: with --json, v as indented
// JSON (a nil slice as [], never null); otherwise what text writes to w.
func (g *globals) print(v any, text func(w io.Writer) error) error {
	if g.json {
		if rv := reflect.ValueOf(v); rv.Kind() == reflect.Slice && rv.IsNil() {
			v = []any{}
		}
		return printJSON(g.stdout, v)
	}
	return text(g.stdout)
}

// printRows is g.print for a listing: with --json, rows; otherwise
// empty when there are none (unless empty is ""), else header and a line
// a row, their cells separated by tabs and aligned, then foot.
func printRows[T any](g *globals, rows []T, empty, header string, line func(T) string, foot string) error {
	return g.print(rows, func(w io.Writer) error {
		if len(rows) == 0 && empty != "" {
			_, err := fmt.Fprintln(w, empty)
			return err
		}
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, header)
		for _, r := range rows {
			fmt.Fprintln(tw, line(r))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		if foot != "" {
			_, err := fmt.Fprintln(w, foot)
			return err
		}
		return nil
	})
}

// printJSON writes v as indented JSON, without HTML escapes.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// printEntries is the printer of listings that stream: the entries q
// selects, as a JSON array written element by element (--json) or as
// text writes them, through one buffer.
func (g *globals) printEntries(v *vault.Vault, q vault.Query, text func(io.Writer, func(func(vault.Entry) error) error) error) error {
	each := func(fn func(vault.Entry) error) error { return v.Entries(q, fn) }
	bw := bufio.NewWriterSize(g.stdout, 64<<10)
	var err error
	if g.json {
		a := newJSONArray(bw)
		if err = each(func(e vault.Entry) error { return a.add(e.Summary()) }); err == nil {
			err = a.close()
		}
	} else {
		err = text(bw, each)
	}
	if err != nil {
		return err
	}
	return bw.Flush()
}

// jsonArray writes a JSON array one element at a time, as printJSON
// writes a slice: indented by two spaces, HTML left unescaped.
type jsonArray struct {
	w   io.Writer
	buf bytes.Buffer
	enc *json.Encoder
	n   int
}

func newJSONArray(w io.Writer) *jsonArray {
	a := &jsonArray{w: w}
	a.enc = json.NewEncoder(&a.buf)
	a.enc.SetIndent("  ", "  ")
	a.enc.SetEscapeHTML(false)
	return a
}

func (a *jsonArray) add(v any) error {
	a.buf.Reset()
	if a.n == 0 {
		a.buf.WriteString("[\n  ")
	} else {
		a.buf.WriteString(",\n  ")
	}
	a.n++
	if err := a.enc.Encode(v); err != nil {
		return err
	}
	b := a.buf.Bytes()
	_, err := a.w.Write(b[:len(b)-1]) // the encoder's newline: the next element or close writes it
	return err
}

func (a *jsonArray) close() error {
	if a.n == 0 {
		_, err := io.WriteString(a.w, "[]\n")
		return err
	}
	_, err := io.WriteString(a.w, "\n]\n")
	return err
}
