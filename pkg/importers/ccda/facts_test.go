package ccda

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/phr-project/phr/pkg/record"
)

// fact is one thing an import must say: among the records of Type whose
// resource matches every Where path (record.Resource.Str paths such as
// "code.coding.0.code"), each has the Want values ("" means absent). N,
// when set, is how many records match; else at least one must. Orig, when
// set, is the Provenance.OriginalID each match has. Why says where the
// fact is in the source and why it is what it is.
type fact struct {
	Type  string            `json:"type"`
	Where map[string]string `json:"where,omitempty"`
	N     *int              `json:"n,omitempty"`
	Want  map[string]string `json:"want,omitempty"`
	Orig  string            `json:"orig,omitempty"`
	Why   string            `json:"why"`
}

// expectation is what importing one document must give: the number of
// records per resource type (all of them), skips per "Type: reason" (all
// of them, when given) and named facts. It is the format of the files in
// testdata/expect (see testdata/expect/README.md).
type expectation struct {
	File      string         `json:"file"` // under shared/testdata/ccda
	Vendor    string         `json:"vendor"`
	Why       string         `json:"why"`
	Counts    map[string]int `json:"counts"`
	CountsWhy string         `json:"counts_why"`
	Skips     map[string]int `json:"skips,omitempty"`
	Facts     []fact         `json:"facts"`
}

func n(i int) *int { return &i }

// checkFacts checks facts against an import.
func checkFacts(t *testing.T, s *memSink, facts []fact) {
	t.Helper()
	for i, f := range facts {
		var matches []int
		for j, r := range s.recs {
			if r.ResourceType != f.Type {
				continue
			}
			res, err := record.Parse(r.Resource)
			if err != nil {
				t.Fatal(err)
			}
			ok := true
			for p, v := range f.Where {
				if res.Str(p) != v {
					ok = false
					break
				}
			}
			if ok {
				matches = append(matches, j)
			}
		}
		label := fmt.Sprintf("fact %d (%s %v)", i, f.Type, f.Where)
		switch {
		case f.N != nil && len(matches) != *f.N:
			t.Errorf("%s: %d records match, want %d", label, len(matches), *f.N)
		case f.N == nil && len(matches) == 0:
			t.Errorf("%s: no record matches", label)
		}
		for _, j := range matches {
			r := s.recs[j]
			res, _ := record.Parse(r.Resource)
			for p, want := range f.Want {
				if got := res.Str(p); got != want {
					t.Errorf("%s: %s = %q, want %q", label, p, got, want)
				}
			}
			if f.Orig != "" && r.Provenance.OriginalID != f.Orig {
				t.Errorf("%s: OriginalID = %q, want %q", label, r.Provenance.OriginalID, f.Orig)
			}
		}
	}
}

// checkSkips checks that the skips are exactly want.
func checkSkips(t *testing.T, s *memSink, want map[string]int) {
	t.Helper()
	keys := map[string]bool{}
	for k := range want {
		keys[k] = true
	}
	for k := range s.skips {
		keys[k] = true
	}
	for k := range keys {
		if s.skips[k] != want[k] {
			t.Errorf("skip %q: %d, want %d", k, s.skips[k], want[k])
		}
	}
}

// TestExpectations imports each document of testdata/expect/*.json (at
// least 8 documents of 6 vendors, each fact checked by hand against the
// XML, with the reason beside it) and checks what it must give.
func TestExpectations(t *testing.T) {
	paths, err := filepath.Glob(filepath.Join("testdata", "expect", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	vendors := map[string]bool{}
	for _, p := range paths {
		data := read(t, p)
		var e expectation
		dec := json.NewDecoder(strings.NewReader(string(data)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&e); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if e.File == "" || e.Vendor == "" || e.Why == "" || e.CountsWhy == "" || len(e.Counts) == 0 || len(e.Facts) == 0 {
			t.Fatalf("%s: file, vendor, why, counts, counts_why and facts are required", p)
		}
		vendors[e.Vendor] = true
		t.Run(filepath.Base(p), func(t *testing.T) {
			s := importFile(t, filepath.Join(testdata, e.File))
			got := s.count()
			keys := map[string]bool{}
			for k := range got {
				keys[k] = true
			}
			for k := range e.Counts {
				keys[k] = true
			}
			var diff []string
			for k := range keys {
				if got[k] != e.Counts[k] {
					diff = append(diff, fmt.Sprintf("%s %d (want %d)", k, got[k], e.Counts[k]))
				}
			}
			sort.Strings(diff)
			if len(diff) > 0 {
				t.Errorf("counts: %s", strings.Join(diff, ", "))
			}
			if e.Skips != nil {
				checkSkips(t, s, e.Skips)
			}
			for i, f := range e.Facts {
				if f.Why == "" {
					t.Errorf("fact %d has no reason", i)
				}
			}
			checkFacts(t, s, e.Facts)
		})
	}
	if len(paths) < 8 || len(vendors) < 6 {
		t.Errorf("%d expectation files of %d vendors, want at least 8 of 6", len(paths), len(vendors))
	}
}
