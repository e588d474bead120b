package csvimport

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/phr-project/phr/pkg/importers"
	"github.com/phr-project/phr/pkg/record"
)

// Name is the importer's format name, as --format takes it.
const Name = "csv"

// Options understood by Import (importers.Input.Options).
const (
	// OptionSource names the source system recorded in provenance.
	OptionSource = "source"
	// OptionTimezone is the IANA time zone of times written without an
	// offset. Without it such times are kept as written, without an
	// offset (never the machine's zone: the same file must give the same
	// records on every machine).
	OptionTimezone = "timezone"
)

// Limits on what is read. docs/formats/limits.md lists them with the
// limits of the other importers.
const (
	// MaxRowBytes bounds one row, quoted line breaks included, and the
	// blank and comment lines before it: 1 MiB. Reading stops there, so a
	// gigabyte line costs no more.
	MaxRowBytes = 1 << 20
	// MaxFields is the most fields a row (or the header) may have: 1024.
	// The template has ten columns; spreadsheets add some empty ones.
	MaxFields = 1024
	// MaxRows is the most rows a file may have after its header, blank
	// rows of empty fields included: one million. A patient's own list of
	// medications, labs and vitals is far shorter; phr log and FHIR are
	// the ways for device streams.
	MaxRows = 1_000_000
)

// Columns of the template, in the documented order.
const (
	colType       = "type"
	colName       = "name"
	colValue      = "value"
	colUnit       = "unit"
	colDate       = "date"
	colEndDate    = "end_date"
	colCode       = "code"
	colCodeSystem = "code_system"
	colStatus     = "status"
	colNote       = "note"
)

// Columns lists the template's columns.
var Columns = []string{colType, colName, colValue, colUnit, colDate, colEndDate, colCode, colCodeSystem, colStatus, colNote}

// columnAliases maps other spellings of column names.
var columnAliases = map[string]string{
	"kind": colType, "end": colEndDate, "enddate": colEndDate, "stop": colEndDate, "stop_date": colEndDate,
	"start": colDate, "start_date": colDate, "units": colUnit, "system": colCodeSystem, "codesystem": colCodeSystem,
	"notes": colNote, "comment": colNote, "comments": colNote,
}

// Errors callers may branch on; they arrive wrapped in an
// *importers.ParseError.
var (
	// ErrHeader reports a missing or unusable header row.
	ErrHeader = errors.New("bad header row")
	// ErrRowTooLong reports a row over MaxRowBytes.
	ErrRowTooLong = fmt.Errorf("row longer than %d bytes", MaxRowBytes)
	// ErrUnterminated reports a quoted field still open at the end of the
	// file.
	ErrUnterminated = errors.New("quoted field not closed at the end of the file (truncated file?)")
	// ErrTooManyFields reports a header over MaxFields fields (a row over
	// it is reported alone, as an item failure wrapping it).
	ErrTooManyFields = fmt.Errorf("more than %d fields", MaxFields)
	// ErrTooManyRows reports a file over MaxRows rows.
	ErrTooManyRows = fmt.Errorf("more than %d rows", MaxRows)
)

type importer struct{}

// New returns the CSV template importer.
func New() importers.Importer { return importer{} }

var _ importers.Importer = importer{}

func (importer) Name() string { return Name }

// normColumn normalizes a header cell: lower case, spaces and hyphens to
// underscores, aliases resolved.
func normColumn(s string) string {
	s = strings.ToLower(strings.TrimSpace(strings.Trim(strings.TrimSpace(s), `"`)))
	s = strings.NewReplacer(" ", "_", "-", "_").Replace(s)
	if a, ok := columnAliases[s]; ok {
		return a
	}
	return s
}

// Detect claims a file whose first line (after blank and # comment lines),
// split on commas, has a type and a name column.
func (importer) Detect(head []byte) bool {
	if len(head) > importers.DetectSize {
		head = head[:importers.DetectSize]
	}
	head = bytes.TrimPrefix(head, []byte("\xef\xbb\xbf"))
	var line []byte
	for {
		var found bool
		line, head, found = bytes.Cut(head, []byte("\n"))
		if !found && len(line) >= importers.DetectSize-3 {
			return false // first line longer than the head: not a header
		}
		t := bytes.TrimSpace(line)
		if len(t) > 0 && t[0] != '#' || !found {
			break
		}
	}
	line = bytes.TrimSuffix(line, []byte("\r"))
	if !utf8.Valid(line) || bytes.IndexByte(line, 0) >= 0 {
		return false
	}
	var typ, name bool
	for f := range strings.SplitSeq(string(line), ",") {
		switch normColumn(f) {
		case colType:
			typ = true
		case colName:
			name = true
		}
	}
	return typ && name
}

// guardReader fails when more than limit bytes are read since mark.
type guardReader struct {
	r       io.Reader
	n, mark int64
}

func (g *guardReader) Read(p []byte) (int, error) {
	if g.n-g.mark > MaxRowBytes {
		return 0, ErrRowTooLong
	}
	n, err := g.r.Read(p)
	g.n += int64(n)
	return n, err
}

// importer state for one file.
type run struct {
	file string
	sink importers.Sink
	prov record.Provenance
	loc  *time.Location
	cols map[string]int // column name -> field index
	last int            // line of the last row read
}

// Import reads the header, then one record per row.
func (importer) Import(ctx context.Context, in *importers.Input, sink importers.Sink) error {
	var loc *time.Location // nil: times without an offset stay so
	if tz := strings.TrimSpace(in.Options[OptionTimezone]); tz != "" {
		l, err := time.LoadLocation(tz)
		if err != nil {
			return fmt.Errorf("%s: unknown %s option (want an IANA time zone such as Europe/Berlin): %w", Name, OptionTimezone, err)
		}
		loc = l
	}
	source := strings.TrimSpace(in.Options[OptionSource])
	if len(source) > 200 || !utf8.ValidString(source) {
		return fmt.Errorf("%s: the %s option must be valid UTF-8 of at most 200 bytes", Name, OptionSource)
	}
	ru := &run{
		file: in.Name,
		sink: sink,
		loc:  loc,
		prov: record.Provenance{
			Method:     record.MethodImported,
			Importer:   Name,
			File:       filepath.Base(in.Name),
			FileSHA256: in.SHA256,
			System:     source,
		},
	}
	r := in.R
	if r == nil {
		if in.ReaderAt == nil || in.Size < 0 {
			return ru.parseErr(0, "", errors.New("no input"))
		}
		r = io.NewSectionReader(in.ReaderAt, 0, in.Size)
	}
	g := &guardReader{r: r}
	br := bufio.NewReaderSize(g, 64<<10)
	if bom, err := br.Peek(3); err == nil && string(bom) == "\xef\xbb\xbf" {
		br.Discard(3)
	}
	cr := csv.NewReader(br)
	cr.FieldsPerRecord = -1
	cr.Comment = '#'
	cr.TrimLeadingSpace = true
	cr.ReuseRecord = true

	header, err := cr.Read()
	if err == io.EOF {
		return ru.parseErr(1, "header", fmt.Errorf("%w: the file is empty; the first row must name the columns (%s)", ErrHeader, strings.Join(Columns, ",")))
	}
	if err != nil {
		return ru.readErr(err)
	}
	if err := ru.header(header, cr); err != nil {
		return err
	}
	var pending *csv.ParseError // a quote error, reported once we know whether the file ended
	rows := 0
	for n := 0; ; n++ {
		if n%256 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		g.mark = g.n - int64(br.Buffered())
		fields, err := cr.Read()
		if pending != nil {
			if err == io.EOF && pending.StartLine < pending.Line && errors.Is(pending.Err, csv.ErrQuote) {
				return ru.parseErr(pending.StartLine, "", ErrUnterminated)
			}
			ru.fail(pending.StartLine, "row", fmt.Errorf("misplaced quote in column %d (quote fields that contain commas, quotes or line breaks, and double the quotes inside)", pending.Column))
			pending = nil
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) && (errors.Is(err, csv.ErrQuote) || errors.Is(err, csv.ErrBareQuote)) {
				pending = pe
				continue
			}
			return ru.readErr(err)
		}
		line, _ := cr.FieldPos(0)
		ru.last = line
		if rows++; rows > MaxRows {
			return ru.parseErr(line, "", ErrTooManyRows)
		}
		if len(fields) > MaxFields {
			ru.fail(line, "row", fmt.Errorf("%w (the header has %d)", ErrTooManyFields, len(ru.cols)))
			continue
		}
		if err := ru.row(fields, line); err != nil {
			return err
		}
	}
}

// header maps the columns. Unknown and repeated columns fail the file.
func (ru *run) header(fields []string, cr *csv.Reader) error {
	line, _ := cr.FieldPos(0)
	if len(fields) > MaxFields {
		return ru.parseErr(line, "header", fmt.Errorf("%w: %w", ErrHeader, ErrTooManyFields))
	}
	ru.cols = map[string]int{}
	var unknown []string
	for i, f := range fields {
		c := normColumn(f)
		if !slices.Contains(Columns, c) {
			unknown = append(unknown, fmt.Sprintf("%q", clip(strings.TrimSpace(f), 40)))
			continue
		}
		if _, dup := ru.cols[c]; dup {
			return ru.parseErr(line, "header", fmt.Errorf("%w: column %q appears twice", ErrHeader, c))
		}
		ru.cols[c] = i
	}
	if len(unknown) > 0 {
		if len(unknown) > 5 {
			unknown = append(unknown[:5], fmt.Sprintf("and %d more", len(unknown)-5))
		}
		return ru.parseErr(line, "header", fmt.Errorf("%w: unknown column %s (the template's columns are %s)", ErrHeader, strings.Join(unknown, ", "), strings.Join(Columns, ",")))
	}
	for _, c := range []string{colType, colName} {
		if _, ok := ru.cols[c]; !ok {
			return ru.parseErr(line, "header", fmt.Errorf("%w: no %q column (the first row must name the columns: %s)", ErrHeader, c, strings.Join(Columns, ",")))
		}
	}
	return nil
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

func (ru *run) parseErr(line int, path string, err error) error {
	return &importers.ParseError{ItemError: importers.ItemError{File: ru.file, Line: line, Path: path, Err: err}}
}

// readErr turns a csv or read error into a *ParseError with its line.
func (ru *run) readErr(err error) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		if errors.Is(err, ErrRowTooLong) {
			return ru.parseErr(pe.StartLine, "", ErrRowTooLong)
		}
		msg := pe.Err
		if !errors.Is(msg, csv.ErrQuote) && !errors.Is(msg, csv.ErrBareQuote) && !errors.Is(msg, csv.ErrFieldCount) {
			msg = fmt.Errorf("read error: %w", msg)
		}
		return ru.parseErr(pe.StartLine, "", msg)
	}
	if errors.Is(err, ErrRowTooLong) {
		return ru.parseErr(ru.last+1, "", err)
	}
	return ru.parseErr(0, "", fmt.Errorf("read error: %w", err))
}

func (ru *run) fail(line int, col string, err error) {
	ru.sink.Fail(&importers.ItemError{File: ru.file, Line: line, Path: col, Err: err})
}
