package csvimport

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"testing"

	"github.com/phr-project/phr/pkg/importers"
	"github.com/phr-project/phr/pkg/importers/importertest"
)

const header = "type,name,value,unit,date\n"

// TestLimits proves each limit with a crafted input, streamed so that the
// 2 GiB ones are never in memory: the import stops at the limit with a
// *ParseError (or, for one row, an item failure) naming the line.
func TestLimits(t *testing.T) {
	good := "lab,Glucose,5.4,mmol/L,2024-01-01\n"
	cases := []struct {
		name    string
		parts   []importertest.Part
		is      error
		line    int
		path    string
		fatal   bool
		records int
		maxRead int64
	}{
		{"a 2 GiB line", []importertest.Part{importertest.Once(header + good), importertest.Once("lab,"), importertest.Fill("x", 2<<30)},
			ErrRowTooLong, 3, "", true, 1, MaxRowBytes + 256<<10},
		{"a 2 GiB quoted field over many lines", []importertest.Part{importertest.Once(header + good + good), importertest.Once(`lab,"`), importertest.Fill("x\n", 2<<30)},
			ErrRowTooLong, 4, "", true, 2, MaxRowBytes + 256<<10},
		{"a header of too many fields", []importertest.Part{importertest.Once(strings.Repeat("note,", MaxFields) + "type,name\n" + good)},
			ErrTooManyFields, 1, "header", true, 0, 1 << 20},
		{"a row of too many fields", []importertest.Part{importertest.Once(header + good + "lab,x,1" + strings.Repeat(",", MaxFields) + "\n" + good)},
			ErrTooManyFields, 3, "row", false, 2, 1 << 20},
		{"too many rows", []importertest.Part{importertest.Once(header), importertest.Fill(",,,,\n", 5*int64(MaxRows)), importertest.Once(good + good)},
			ErrTooManyRows, MaxRows + 2, "", true, 0, 8 << 20},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := importertest.Lazy(c.parts...)
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			s := &importertest.Sink{}
			err := New().Import(context.Background(), &importers.Input{Name: "dir/big.csv", R: r, Size: -1, Options: utc}, s)
			runtime.ReadMemStats(&after)
			at := s.Failure(t, err, c.fatal)
			if !errors.Is(at, c.is) || at.Line != c.line || at.Path != c.path || at.File != "dir/big.csv" {
				t.Errorf("error %v at line %d path %q, want %v at line %d path %q", at, at.Line, at.Path, c.is, c.line, c.path)
			}
			if len(s.Records) != c.records {
				t.Errorf("%d records, want %d", len(s.Records), c.records)
			}
			if r.Consumed() > c.maxRead {
				t.Errorf("read %d KiB before stopping, want at most %d KiB", r.Consumed()>>10, c.maxRead>>10)
			}
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 1<<30 {
				t.Errorf("allocated %d MiB", alloc>>20)
			}
		})
	}
	// At the limits: MaxFields fields and MaxRows rows are read.
	s := &importertest.Sink{}
	r := importertest.Lazy(importertest.Once(header), importertest.Fill(",,,,\n", 5*int64(MaxRows-1)), importertest.Once("lab,x,1,,2024-01-01"+strings.Repeat(",", MaxFields-5)+"\n"))
	if err := New().Import(context.Background(), &importers.Input{Name: "ok.csv", R: r, Size: -1, Options: utc}, s); err != nil || len(s.Records) != 1 || len(s.Fails) != 0 {
		t.Errorf("at the limits: %v, %d records, fails %v", err, len(s.Records), s.Fails)
	}
}
