package csvimport

import (
	"context"
	"errors"
	"io"
	"runtime"
	"strings"
	"testing"

	"github.com/phr-project/phr/pkg/importers"
)

// lazyReader yields its parts in order, each part's pattern repeated to
// its size, without ever holding more than the patterns; read counts what
// was consumed.
type lazyReader struct {
	parts []part
	read  int64
}

type part struct {
	pattern []byte
	size    int64 // bytes left in this part
	pos     int   // position in pattern
}

func once(s string) part { return part{pattern: []byte(s), size: int64(len(s))} }

func fill(pattern string, size int64) part {
	p := []byte(pattern)
	for len(p) < 4096 {
		p = append(p, pattern...)
	}
	return part{pattern: p[:len(p)/len(pattern)*len(pattern)], size: size}
}

func (l *lazyReader) Read(b []byte) (int, error) {
	n := 0
	for n < len(b) && len(l.parts) > 0 {
		p := &l.parts[0]
		if p.size == 0 {
			l.parts = l.parts[1:]
			continue
		}
		chunk := p.pattern[p.pos:]
		if int64(len(chunk)) > p.size {
			chunk = chunk[:p.size]
		}
		m := copy(b[n:], chunk)
		n += m
		p.size -= int64(m)
		p.pos = (p.pos + m) % len(p.pattern)
		l.read += int64(m)
	}
	if n == 0 {
		return 0, io.EOF
	}
	return n, nil
}

const header = "type,name,value,unit,date\n"

// TestLimits proves each limit with a crafted input, streamed so that the
// 2 GiB ones are never in memory: the import stops at the limit with a
// *ParseError (or, for one row, an item failure) naming the line.
func TestLimits(t *testing.T) {
	good := "lab,Glucose,5.4,mmol/L,2024-01-01\n"
	cases := []struct {
		name    string
		parts   []part
		is      error
		line    int
		path    string
		fatal   bool
		records int
		maxRead int64
	}{
		{"a 2 GiB line", []part{once(header + good), once("lab,"), fill("x", 2<<30)},
			ErrRowTooLong, 3, "", true, 1, MaxRowBytes + 256<<10},
		{"a 2 GiB quoted field over many lines", []part{once(header + good + good), once(`lab,"`), fill("x\n", 2<<30)},
			ErrRowTooLong, 4, "", true, 2, MaxRowBytes + 256<<10},
		{"a header of too many fields", []part{once(strings.Repeat("note,", MaxFields) + "type,name\n" + good)},
			ErrTooManyFields, 1, "header", true, 0, 1 << 20},
		{"a row of too many fields", []part{once(header + good + "lab,x,1" + strings.Repeat(",", MaxFields) + "\n" + good)},
			ErrTooManyFields, 3, "row", false, 2, 1 << 20},
		{"too many rows", []part{once(header), fill(",,,,\n", 5*int64(MaxRows)), once(good + good)},
			ErrTooManyRows, MaxRows + 2, "", true, 0, 8 << 20},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := &lazyReader{parts: c.parts}
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			s := &memSink{}
			err := New().Import(context.Background(), &importers.Input{Name: "dir/big.csv", R: r, Size: -1, Options: utc}, s)
			runtime.ReadMemStats(&after)
			var at *importers.ItemError
			if c.fatal {
				var pe *importers.ParseError
				if !errors.As(err, &pe) {
					t.Fatalf("err = %v, want a *ParseError", err)
				}
				at = &pe.ItemError
			} else {
				if err != nil || len(s.fails) != 1 {
					t.Fatalf("err = %v, fails %v; want one row failure", err, s.fails)
				}
				at = s.fails[0]
			}
			if !errors.Is(at, c.is) || at.Line != c.line || at.Path != c.path || at.File != "dir/big.csv" {
				t.Errorf("error %v at line %d path %q, want %v at line %d path %q", at, at.Line, at.Path, c.is, c.line, c.path)
			}
			if len(s.records) != c.records {
				t.Errorf("%d records, want %d", len(s.records), c.records)
			}
			if r.read > c.maxRead {
				t.Errorf("read %d KiB before stopping, want at most %d KiB", r.read>>10, c.maxRead>>10)
			}
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 1<<30 {
				t.Errorf("allocated %d MiB", alloc>>20)
			}
		})
	}
	// At the limits: MaxFields fields and MaxRows rows are read.
	s := &memSink{}
	r := &lazyReader{parts: []part{once(header), fill(",,,,\n", 5*int64(MaxRows-1)), once("lab,x,1,,2024-01-01" + strings.Repeat(",", MaxFields-5) + "\n")}}
	if err := New().Import(context.Background(), &importers.Input{Name: "ok.csv", R: r, Size: -1, Options: utc}, s); err != nil || len(s.records) != 1 || len(s.fails) != 0 {
		t.Errorf("at the limits: %v, %d records, fails %v", err, len(s.records), s.fails)
	}
}
