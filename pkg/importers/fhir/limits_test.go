package fhir

import (
	"bytes"
	"context"
	"errors"
	"io"
	"runtime"
	"strings"
	"testing"

	"github.com/phr-project/phr/internal/jsondepth"
	"github.com/phr-project/phr/internal/racedetect"
	"github.com/phr-project/phr/pkg/importers"
	"github.com/phr-project/phr/pkg/importers/importertest"
)

const gib = 1 << 30

// importStream runs imp over r as a stream (no ReaderAt: the input is never
// in memory) and reports the bytes allocated meanwhile.
func importStream(t *testing.T, imp importers.Importer, name string, r io.Reader) (*importertest.Sink, uint64, error) {
	t.Helper()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	s := &importertest.Sink{}
	err := imp.Import(context.Background(), &importers.Input{Name: name, R: r, Size: -1}, s)
	runtime.ReadMemStats(&after)
	return s, after.TotalAlloc - before.TotalAlloc, err
}

// TestStreamLimits feeds 2 GiB inputs lazily and checks that each fails
// fast: a *ParseError wrapping ErrTooLarge that names where, after reading
// little more than the limit, with memory bounded by that limit.
func TestStreamLimits(t *testing.T) {
	if testing.Short() || racedetect.Enabled {
		t.Skip("reads up to 512 MiB")
	}
	// Nine entries with 60 MiB of a member phr skips: 540 MiB in all.
	var overFile []importertest.Part
	overFile = append(overFile, importertest.Once(`{"resourceType":"Bundle","entry":[`))
	for range 9 {
		overFile = append(overFile, importertest.Once(`{"request":{"url":"`), importertest.Fill("a", 60<<20), importertest.Once(`"}},`))
	}
	overFile = append(overFile, importertest.Once(`{}]}`))
	cases := []struct {
		name     string
		imp      importers.Importer
		r        *importertest.LazyReader
		maxRead  int64
		path     string
		line     int
		msg      string
		records  int
		maxAlloc uint64
	}{
		{"resource string over MaxResourceSize", New(),
			importertest.Lazy(importertest.Once(`{"resourceType":"Basic","text":"`), importertest.Fill("a", 2*gib)),
			MaxResourceSize + 2<<20, "text", 0, "over 64 MiB", 0, 512 << 20},
		{"member name over MaxResourceSize", New(),
			importertest.Lazy(importertest.Once(`{"resourceType":"Basic","`), importertest.Fill("a", 2*gib)),
			MaxResourceSize + 2<<20, "", 0, "over 64 MiB", 0, 512 << 20},
		{"white space over MaxResourceSize", New(),
			importertest.Lazy(importertest.Once(`{"resourceType":"Basic",`), importertest.Fill(" \r\n", 2*gib), importertest.Once(`"a":1}`)),
			MaxResourceSize + 2<<20, "", 0, "over 64 MiB", 0, 512 << 20},
		{"bundle entry over MaxResourceSize", New(),
			importertest.Lazy(importertest.Once(`{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Basic"}},{"resource":{"resourceType":"Basic","x":"`), importertest.Fill("a", 2*gib)),
			MaxResourceSize + 2<<20, "entry[1]", 0, "over 64 MiB", 0, 512 << 20},
		{"white space between entries", New(),
			importertest.Lazy(importertest.Once(`{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Basic"}},`), importertest.Fill("\n", 2*gib)),
			MaxResourceSize + 2<<20, "entry[1]", 0, "over 64 MiB", 0, 512 << 20},
		{"file over MaxFileSize", New(), importertest.Lazy(overFile...),
			MaxFileSize + 2<<20, "entry[8]", 0, "a file over 512 MiB", 0, 1 << 30},
		{"NDJSON line of 2 GiB", NewNDJSON(),
			importertest.Lazy(importertest.Once("{\"resourceType\":\"Patient\",\"id\":\"p\"}\n\n{\"resourceType\":\"Basic\",\"x\":\""), importertest.Fill("a", 2*gib), importertest.Once("\"}\n")),
			MaxResourceSize + 1<<20, "", 3, "a line over 64 MiB", 1, 512 << 20},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, alloc, err := importStream(t, c.imp, "big.json", c.r)
			var pe *importers.ParseError
			if !errors.As(err, &pe) || !errors.Is(err, ErrTooLarge) {
				t.Fatalf("err = %v, want a *ParseError wrapping ErrTooLarge", err)
			}
			if pe.File != "big.json" || pe.Path != c.path || pe.Line != c.line || !strings.Contains(err.Error(), c.msg) {
				t.Errorf("error %q at %s:%d path %q, want line %d path %q and %q", err, pe.File, pe.Line, pe.Path, c.line, c.path, c.msg)
			}
			if c.line == 0 && pe.Offset <= 0 {
				t.Errorf("no offset in %v", err)
			}
			if c.r.Consumed() > c.maxRead {
				t.Errorf("read %d MiB before failing, want at most %d MiB", c.r.Consumed()>>20, c.maxRead>>20)
			}
			if alloc > c.maxAlloc {
				t.Errorf("allocated %d MiB, want at most %d MiB", alloc>>20, c.maxAlloc>>20)
			}
			if len(s.Records) != c.records {
				t.Errorf("%d records, want %d", len(s.Records), c.records)
			}
			t.Logf("%v after %d MiB read, %d MiB allocated", err, c.r.Consumed()>>20, alloc>>20)
		})
	}
}

// TestTooManyEntries: a Bundle of MaxEntries+1 (empty) entries fails at the
// entry over the limit.
func TestTooManyEntries(t *testing.T) {
	if testing.Short() || racedetect.Enabled {
		t.Skip("reads a million entries")
	}
	prefix := `{"resourceType":"Bundle","entry":[`
	r := importertest.Lazy(importertest.Once(prefix), importertest.Fill("{},", 3*(MaxEntries+10)), importertest.Once("{}]}"))
	s, alloc, err := importStream(t, New(), "many.json", r)
	var pe *importers.ParseError
	if !errors.As(err, &pe) || !errors.Is(err, ErrTooLarge) || pe.Path != "entry" || !strings.Contains(err.Error(), "more than 1048576 entries") {
		t.Fatalf("err = %v, want ErrTooLarge at entry", err)
	}
	// The offset is of the comma before the entry over the limit.
	if want := int64(len(prefix) + 3*MaxEntries); pe.Offset < want-1 || pe.Offset > want {
		t.Errorf("offset %d, want about %d", pe.Offset, want)
	}
	if len(s.Records) != 0 {
		t.Errorf("%d records", len(s.Records))
	}
	t.Logf("%v, %d MiB allocated", err, alloc>>20)
	// Exactly MaxEntries is accepted (entries without a resource are
	// skipped).
	r = importertest.Lazy(importertest.Once(prefix), importertest.Fill("{},", 3*(MaxEntries-1)), importertest.Once("{}]}"))
	s, _, err = importStream(t, New(), "many.json", r)
	if err != nil || len(s.Skips) != MaxEntries {
		t.Errorf("MaxEntries entries: %v, %d skipped", err, len(s.Skips))
	}
}

// nest wraps inner in n JSON arrays.
func nest(n int, inner string) string {
	return strings.Repeat("[", n) + inner + strings.Repeat("]", n)
}

// TestDepthLimits: JSON nested deeper than MaxJSONDepth (the resource being
// level 1) fails where it is: the file for a resource or a Bundle's own
// member, the entry for a resource in a Bundle, the line in NDJSON. Exactly
// MaxJSONDepth levels are accepted.
func TestDepthLimits(t *testing.T) {
	ok := nest(MaxJSONDepth-1, "1")   // with the resource: MaxJSONDepth levels
	deep := nest(MaxJSONDepth, `"x"`) // one more
	cases := []struct {
		name    string
		imp     importers.Importer
		in      string
		fatal   bool // a *ParseError, else one item failure
		path    string
		line    int
		records int
	}{
		{"resource at the limit", New(), `{"resourceType":"Basic","x":` + ok + `}`, false, "", 0, 1},
		{"resource too deep", New(), "{\"resourceType\":\"Basic\",\n\"x\":" + deep + `}`, true, "x", 2, 0},
		{"object nesting too deep", New(), `{"resourceType":"Basic","x":` + strings.Repeat(`{"a":`, MaxJSONDepth) + "1" + strings.Repeat("}", MaxJSONDepth) + `}`, true, "x", 1, 0},
		{"bracket inside a string does not count", New(), `{"resourceType":"Basic","x":"` + strings.Repeat("[", 500) + `"}`, false, "", 0, 1},
		{"bundle member too deep", New(), "{\"resourceType\":\"Bundle\",\"entry\":[],\n\"signature\":" + deep + `}`, true, "signature", 2, 0},
		{"bundle entry resource too deep", New(), "{\"resourceType\":\"Bundle\",\"entry\":[\n{\"resource\":{\"resourceType\":\"Basic\"}},\n{\"resource\":{\"resourceType\":\"Basic\",\"x\":" + deep + "}}]}", false, "entry[1].resource", 3, 1},
		{"entry before resourceType", New(), `{"entry":[{"resource":{"resourceType":"Basic","x":` + deep + `}},{"resource":{"resourceType":"Basic"}}],"resourceType":"Bundle"}`, false, "entry[0].resource", 0, 1},
		{"NDJSON line too deep", NewNDJSON(), "{\"resourceType\":\"Basic\"}\n{\"resourceType\":\"Basic\",\"x\":" + deep + "}\n", false, "", 2, 1},
		{"NDJSON bundle member too deep", NewNDJSON(), "{\"resourceType\":\"Bundle\",\"entry\":[{\"resource\":{\"resourceType\":\"Basic\"}}],\"x\":" + nest(MaxJSONDepth+5, "1") + "}\n", false, "", 1, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, err := run(c.imp, "dir/deep.json", []byte(c.in))
			var at *importers.ItemError
			if !c.fatal && (strings.Contains(c.name, "limit") || strings.Contains(c.name, "string")) {
				if err != nil || len(s.Fails) != 0 {
					t.Fatalf("err = %v, fails %v", err, s.Fails)
				}
			} else {
				at = s.Failure(t, err, c.fatal)
			}
			if at != nil {
				if !errors.Is(at, ErrTooDeep) || at.File != "deep.json" || at.Path != c.path || at.Line != c.line {
					t.Errorf("error %v at line %d path %q, want ErrTooDeep at line %d path %q", at, at.Line, at.Path, c.line, c.path)
				}
				if !strings.Contains(at.Error(), "nested more than 128 levels") {
					t.Errorf("message %q does not name the limit", at.Error())
				}
			}
			if len(s.Records) != c.records {
				t.Errorf("%d records, want %d", len(s.Records), c.records)
			}
		})
	}
}

func TestDepthExceeds(t *testing.T) {
	for _, c := range []struct {
		in   string
		max  int
		want bool
	}{
		{`{}`, 1, false},
		{`{"a":[]}`, 1, true},
		{`{"a":"[[[["}`, 1, false},
		{`{"a\"[[":"\\"}`, 1, false},
		{`[[1],[2],[3]]`, 2, false},
		{nest(10, ""), 9, true},
	} {
		if got := jsondepth.Exceeds([]byte(c.in), c.max); got != c.want {
			t.Errorf("jsondepth.Exceeds(%s, %d) = %v", c.in, c.max, got)
		}
	}
	if jsondepth.Exceeds(bytes.Repeat([]byte("["), 1<<20), 1<<21) {
		t.Error("a million levels under a higher max")
	}
}
