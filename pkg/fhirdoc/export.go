package fhirdoc

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"

	"github.com/phr-project/phr/pkg/record"
)

// Each calls fn with each record to write, in order, and stops at fn's
// first error, which it returns: a vault's Each over a query, or a loop
// over a slice. The writers of this file stream what it gives, so an
// export of any size holds one record at a time.
type Each func(fn func(record.Record) error) error

// WriteNDJSON writes FHIR NDJSON: each record's resource, compacted, on
// a line of its own, in the order each gives them; it returns how many.
// An error names the record by its ID.
func WriteNDJSON(w io.Writer, each Each) (int, error) {
	n := 0
	err := each(func(r record.Record) error {
		if err := writeCompact(w, r.Resource); err != nil {
			return fmt.Errorf("record %s: %w", r.ID, err)
		}
		n++
		_, err := io.WriteString(w, "\n")
		return err
	})
	return n, err
}

// WriteBundle streams a FHIR Bundle of type collection of the records
// each gives, one entry a line, resources compacted and otherwise as
// stored (unlike BuildBundle, which makes a share: references are not
// rewritten, nothing is normalized). Each entry's fullUrl is
// ResourceType/id (the resource's own id, else the record's ID). It
// returns how many entries it wrote.
func WriteBundle(w io.Writer, each Each) (int, error) {
	if _, err := io.WriteString(w, `{"resourceType":"Bundle","type":"collection","entry":[`); err != nil {
		return 0, err
	}
	n := 0
	err := each(func(r record.Record) error {
		if n > 0 {
			io.WriteString(w, ",")
		}
		n++
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
		_, err = io.WriteString(w, "}")
		return err
	})
	if err != nil {
		return n, err
	}
	_, err = io.WriteString(w, "\n]}\n")
	return n, err
}

func writeCompact(w io.Writer, data []byte) error {
	var b bytes.Buffer
	if err := json.Compact(&b, data); err != nil {
		return err
	}
	_, err := w.Write(b.Bytes())
	return err
}
