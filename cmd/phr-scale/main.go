// Command phr-scale makes the large Apple Health exports that the
// read-at-any-size measurements of docs/performance.md import: the body
// of a real export repeated, each copy's dates moved by whole years (and
// the newest copy to end near the given day), so that no copy
// deduplicates against another.
//
//	phr-scale export -copies 137 -o big.xml
//
// It is an opt-in tool: nothing in the test suite runs it, and the files
// it makes (hundreds of megabytes) belong outside the repository.
package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"time"
)

const defaultSource = "../shared/testdata/apple-health/ashtom-hkimport/Data/export.xml"

func main() {
	if len(os.Args) >= 2 && os.Args[1] == "stats" {
		if err := stats(os.Args[2:], os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "phr-scale:", err)
			os.Exit(1)
		}
		return
	}
	if len(os.Args) < 2 || os.Args[1] != "export" {
		fmt.Fprintln(os.Stderr, "usage: phr-scale export -copies N [-src export.xml] [-end 2026-12-01] -o FILE\n       phr-scale stats VAULT")
		os.Exit(2)
	}
	fs := flag.NewFlagSet("export", flag.ExitOnError)
	copies := fs.Int("copies", 1, "how many copies of the source's records")
	src := fs.String("src", defaultSource, "the Apple Health export.xml to repeat")
	end := fs.String("end", "2026-12-01", "the newest copy's last day")
	out := fs.String("o", "", "file to write (must not exist)")
	fs.Parse(os.Args[2:])
	endDay, err := time.Parse(time.DateOnly, *end)
	if err != nil || *out == "" || *copies < 1 {
		fmt.Fprintln(os.Stderr, "phr-scale: give -copies N (at least 1), -o FILE and -end as YYYY-MM-DD")
		os.Exit(2)
	}
	n, err := writeExport(*src, *out, *copies, endDay)
	if err != nil {
		fmt.Fprintln(os.Stderr, "phr-scale:", err)
		os.Exit(1)
	}
	fmt.Printf("%s: %d copies, %d bytes\n", *out, *copies, n)
}

// dateAttr matches the date attributes of an export: startDate,
// endDate, creationDate (2017-10-05 08:16:12 +0200), WorkoutEvent's date,
// and ActivitySummary's dateComponents (2017-10-05).
var dateAttr = regexp.MustCompile(`(?i)(date|datecomponents)="(\d{4}-\d{2}-\d{2})( \d{2}:\d{2}:\d{2} [+-]\d{4})?"`)

func writeExport(src, out string, copies int, endDay time.Time) (int64, error) {
	data, err := os.ReadFile(src)
	if err != nil {
		return 0, err
	}
	// The header ends after <Me .../>; the body is everything up to
	// </HealthData>.
	me := bytes.Index(data, []byte("<Me "))
	if me < 0 {
		return 0, errors.New(src + ": no <Me> element")
	}
	bodyStart := me + bytes.Index(data[me:], []byte("/>")) + 2
	bodyEnd := bytes.LastIndex(data, []byte("</HealthData>"))
	if bodyEnd < bodyStart {
		return 0, errors.New(src + ": no </HealthData>")
	}
	header, body := data[:bodyStart], data[bodyStart:bodyEnd]
	last := time.Time{}
	for _, m := range dateAttr.FindAllSubmatch(body, -1) {
		if t, err := time.Parse(time.DateOnly, string(m[2])); err == nil && t.After(last) {
			last = t
		}
	}
	if last.IsZero() {
		return 0, errors.New(src + ": no dates")
	}
	// Copy 0 ends on endDay; copy i is i years older.
	days := int(endDay.Sub(last).Hours() / 24)
	f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return 0, err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	cw := &countWriter{w: w}
	cw.Write(header)
	for i := range copies {
		shift := func(m []byte) []byte {
			sub := dateAttr.FindSubmatch(m)
			if sub == nil {
				return m
			}
			layout, value := time.DateOnly, string(sub[2])
			if len(sub[3]) > 0 {
				layout, value = "2006-01-02 15:04:05 -0700", value+string(sub[3])
			}
			t, err := time.Parse(layout, value)
			if err != nil {
				return m
			}
			t = t.AddDate(-i, 0, days)
			return []byte(string(sub[1]) + `="` + t.Format(layout) + `"`)
		}
		cw.Write(dateAttr.ReplaceAllFunc(body, shift))
	}
	cw.Write([]byte("</HealthData>\n"))
	if err := errors.Join(cw.err, w.Flush(), f.Sync(), f.Close()); err != nil {
		os.Remove(out)
		return 0, err
	}
	return cw.n, nil
}

type countWriter struct {
	w   io.Writer
	n   int64
	err error
}

func (c *countWriter) Write(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.w.Write(p)
	c.n += int64(n)
	c.err = err
	return n, err
}
