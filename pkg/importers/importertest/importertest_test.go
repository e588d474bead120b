package importertest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/phr-project/phr/pkg/importers"
	"github.com/phr-project/phr/pkg/importers/fhir"
	"github.com/phr-project/phr/pkg/record"
)

var errLimit = errors.New("limit")

// broken breaks every rule Run checks: it claims every file, puts a counter
// in its resources, quotes the file in errors without a position, and reads
// its input to the end.
type broken struct{ n atomic.Int64 }

func (*broken) Name() string         { return "broken" }
func (*broken) Detect(_ []byte) bool { return true }
func (b *broken) Import(_ context.Context, in *importers.Input, sink importers.Sink) error {
	data, _ := io.ReadAll(in.R)
	if strings.Contains(string(data), "bad") {
		return &importers.ParseError{ItemError: importers.ItemError{File: in.Name, Err: fmt.Errorf("cannot read %q", data)}}
	}
	res := fmt.Sprintf(`{"resourceType":"Basic","id":"b%d"}`, b.n.Add(1))
	rec, err := record.New([]byte(res), record.Provenance{Method: record.MethodImported, Importer: "broken", File: in.Name})
	if err != nil {
		return err
	}
	return sink.Record(rec)
}

// good keeps every rule for the same corpus.
type good struct{}

func (good) Name() string            { return "good" }
func (good) Detect(head []byte) bool { return strings.HasPrefix(string(head), "GOOD") }
func (good) Import(_ context.Context, in *importers.Input, sink importers.Sink) error {
	buf := make([]byte, 4096)
	n, _ := io.ReadFull(in.R, buf)
	switch {
	case n == len(buf):
		return &importers.ParseError{ItemError: importers.ItemError{File: in.Name, Offset: 4096, Err: errLimit}}
	case strings.Contains(string(buf[:n]), "bad"):
		return &importers.ParseError{ItemError: importers.ItemError{File: in.Name, Line: 1, Err: errors.New("not good")}}
	}
	rec, err := record.New([]byte(`{"resourceType":"Basic","id":"g"}`), record.Provenance{Method: record.MethodImported, Importer: "good", File: in.Name})
	if err != nil {
		return err
	}
	return sink.Record(rec)
}

func TestChecks(t *testing.T) {
	c := Corpus{
		Files:  []Sample{{Name: "a", Data: []byte("GOOD a")}},
		Bad:    []Bad{{Name: "x.txt", Data: []byte("GOOD bad Secret"), Secrets: []string{"Secret"}}},
		Limits: []Limit{{Name: "big", Is: errLimit, MaxRead: 8192, Input: func() *LazyReader { return Lazy(Once("GOOD"), Fill("x", 1<<20)) }}},
	}
	checks := []struct {
		name string
		fn   func(testing.TB, importers.Importer, Corpus) []string
		want []string // what each problem of the broken importer says
	}{
		{"detect", CheckDetect, []string{"claims"}},
		{"deterministic", CheckDeterministic, []string{"differs between two imports"}},
		{"errors", CheckErrors, []string{"no position", "quotes the file"}},
		{"limits", CheckLimits, []string{"want limit", "read 1048580 bytes"}},
	}
	for _, ch := range checks {
		if got := ch.fn(t, good{}, c); len(got) > 0 {
			t.Errorf("%s: a good importer breaks rules: %v", ch.name, got)
		}
		got := strings.Join(ch.fn(t, &broken{}, c), "\n")
		for _, w := range ch.want {
			if !strings.Contains(got, w) {
				t.Errorf("%s: the broken importer's problems %q lack %q", ch.name, got, w)
			}
		}
	}
}

func TestCheckDetectShared(t *testing.T) {
	if got := CheckDetectShared(t, good{}, nil); len(got) > 0 {
		t.Errorf("a good importer claims shared files: %v", got)
	}
	// The broken importer claims everything: every file but its "own"
	// (here: all but the SMART Health Card files) is a problem.
	got := CheckDetectShared(t, &broken{}, func(path string) bool { return !strings.HasSuffix(path, ".smart-health-card") })
	if len(got) == 0 {
		t.Fatal("the broken importer claims no shared file")
	}
	for _, p := range got {
		if !strings.Contains(p, "broken claims ") || !strings.HasSuffix(p, ".smart-health-card") {
			t.Errorf("problem %q", p)
		}
	}
}

func TestLazyReader(t *testing.T) {
	r := Lazy(Once("ab"), Fill("xyz", 10), Once("!"))
	b, err := io.ReadAll(r)
	if err != nil || string(b) != "abxyzxyzxyzx!" || r.Consumed() != 13 {
		t.Errorf("%q %v %d", b, err, r.Consumed())
	}
}

func TestShared(t *testing.T) {
	d := Shared(t)
	if st, err := os.Stat(filepath.Join(d, "fhir")); err != nil || !st.IsDir() {
		t.Fatalf("shared test data at %s: %v", d, err)
	}
	if Path("x") != filepath.Join(d, "x") {
		t.Errorf("Path = %s", Path("x"))
	}
	for _, s := range Samples() {
		if len(s.bytes(t)) == 0 {
			t.Errorf("sample %s is empty", s.name())
		}
	}
}

func TestSink(t *testing.T) {
	s := &Sink{}
	r, _ := record.New([]byte(`{"resourceType":"Basic","id":"1"}`), record.Provenance{Method: record.MethodImported, Importer: "x"})
	s.Record(r)
	s.Skip("Basic", "why")
	s.Skip("Basic", "why")
	s.Fail(&importers.ItemError{File: "f", Err: errors.New("e")})
	if s.Counts()["Basic"] != 1 || s.SkipCounts()["Basic: why"] != 2 || len(s.Fails) != 1 || len(s.Fingerprints()) != 1 || len(s.Resources(t, "Basic")) != 1 {
		t.Errorf("%+v", s)
	}
}

func TestCheckExpectation(t *testing.T) {
	e := Expectations{
		About: "x", Format: "fhir", Files: []string{"fhir/us-core-examples/allergyintolerance-example.json"},
		Counts: map[string]int{"AllergyIntolerance": 1}, CountsWhy: "one resource",
		Facts: []Fact{{Why: "w", Type: "AllergyIntolerance", Where: map[string]string{"id": "example"},
			Want: map[string]string{"criticality": "high", "$kind": "allergy", "onsetDateTime": ""}}},
	}
	if got := CheckExpectation(t, fhir.New(), e); len(got) != 0 {
		t.Errorf("right expectations: %v", got)
	}
	e.Counts = map[string]int{"AllergyIntolerance": 2}
	e.Facts = append(e.Facts,
		Fact{Why: "w", Type: "AllergyIntolerance", Where: map[string]string{"id": "example"}, Want: map[string]string{"criticality": "low"}},
		Fact{Why: "w", Type: "AllergyIntolerance", Where: map[string]string{"id": "other"}, Want: map[string]string{"criticality": "low"}})
	got := strings.Join(CheckExpectation(t, fhir.New(), e), "\n")
	for _, w := range []string{"counts map[AllergyIntolerance:1]", `criticality = "high", want "low"`, "0 records match"} {
		if !strings.Contains(got, w) {
			t.Errorf("problems %q lack %q", got, w)
		}
	}
}

// recorder is a testing.TB that keeps what Errorf reports.
type recorder struct {
	testing.TB
	errs []string
}

func (r *recorder) Helper() {}
func (r *recorder) Errorf(format string, a ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, a...))
}

func TestFailPositions(t *testing.T) {
	s := &Sink{}
	s.Fail(&importers.ItemError{File: "f.csv", Line: 2, Path: "date", Err: errors.New("not a date")})
	s.Fail(&importers.ItemError{File: "f.csv", Line: 3, Path: "name", Err: errors.New("name Aspirin is too long")})
	s.Fail(&importers.ItemError{File: "other.csv", Line: 4, Path: "code", Err: errors.New("bad code")})
	s.Fail(&importers.ItemError{File: "f.csv", Line: 5, Path: "row"})
	r := &recorder{TB: t}
	got := s.FailPositions(r, "f.csv", "Aspirin")
	want := []Position{{Line: 2, Path: "date"}, {Line: 3, Path: "name"}, {Line: 4, Path: "code"}, {Line: 5, Path: "row"}}
	if !slices.Equal(got, want) {
		t.Errorf("positions %v, want %v", got, want)
	}
	// The value, the other file and the missing error are each reported.
	if len(r.errs) != 3 || !strings.Contains(r.errs[0], `shows the value "Aspirin"`) || !strings.Contains(r.errs[1], "other.csv") || !strings.Contains(r.errs[2], "wrapping an error") {
		t.Errorf("reported %q", r.errs)
	}
}

func TestBundleCounts(t *testing.T) {
	got := BundleCounts(t, []byte(`{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Patient"}},{"resource":{"resourceType":"Observation"}},{"resource":{"resourceType":"Observation"}}]}`))
	if !maps.Equal(got, map[string]int{"Patient": 1, "Observation": 2}) {
		t.Errorf("counts %v", got)
	}
}
