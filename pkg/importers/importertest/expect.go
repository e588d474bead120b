package importertest

import (
	"encoding/json"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/phr-project/phr/pkg/importers"
	"github.com/phr-project/phr/pkg/record"
)

// Expectations say what importing one real document (or a set, such as a
// bulk export's files) must give, as written down by a person who read
// the document, with the reason beside each fact. They are JSON files in
// an importer's testdata/expect folder; CheckExpectations runs them.
type Expectations struct {
	// About says what the document is and where it comes from.
	About string `json:"about"`
	// Format is the importer's name.
	Format string `json:"format"`
	// Files are paths in the shared test data (Shared), imported in turn.
	Files []string `json:"files"`
	// Options are the import options.
	Options map[string]string `json:"options,omitempty"`
	// Counts are the records per resourceType, over all Files; CountsWhy
	// says how they were counted in the source.
	Counts    map[string]int `json:"counts"`
	CountsWhy string         `json:"countsWhy"`
	// Skips are the skipped items per "resourceType: reason", when any.
	Skips map[string]int `json:"skips,omitempty"`
	// Facts are single records and what they must say.
	Facts []Fact `json:"facts"`
}

// Fact is one record an import must give.
type Fact struct {
	// Why says where the fact is in the source and why it is so.
	Why string `json:"why"`
	// Type is the record's resourceType.
	Type string `json:"type"`
	// Where finds the record: paths of its resource (record.Resource.Str,
	// "code.coding.0.code") and their values. Exactly one record may match.
	Where map[string]string `json:"where"`
	// Want are paths and the values they must have; "" for absent. Keys
	// starting with $ are the record's envelope: $display, $kind, $date
	// (RFC 3339 in UTC), $system, $originalId, $importer, $file.
	Want map[string]string `json:"want"`
}

// CheckExpectations runs every expectations file (*.json) of dir as a
// subtest, importing its files with the importer its Format names.
func CheckExpectations(t *testing.T, dir string, imps ...importers.Importer) {
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no expectations in %s", dir)
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".json"), func(t *testing.T) {
			var e Expectations
			dec := json.NewDecoder(strings.NewReader(string(ReadFile(t, f))))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&e); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			if e.About == "" || e.CountsWhy == "" || len(e.Files) == 0 {
				t.Fatalf("%s: about, countsWhy and files are required", f)
			}
			var imp importers.Importer
			for _, i := range imps {
				if i.Name() == e.Format {
					imp = i
				}
			}
			if imp == nil {
				t.Fatalf("no importer %q", e.Format)
			}
			for _, p := range CheckExpectation(t, imp, e) {
				t.Error(p)
			}
		})
	}
}

// CheckExpectation imports e's files and returns what differs from e.
func CheckExpectation(t testing.TB, imp importers.Importer, e Expectations) []string {
	var out []string
	all := &Sink{}
	for _, f := range e.Files {
		s, err := Import(imp, f, ReadFile(t, Shared(t, filepath.FromSlash(f))), e.Options)
		if err != nil {
			return append(out, fmt.Sprintf("%s: %v", f, err))
		}
		for _, fe := range s.Fails {
			out = append(out, fmt.Sprintf("%s: failed item: %v", f, fe))
		}
		all.Records = append(all.Records, s.Records...)
		all.Skips = append(all.Skips, s.Skips...)
	}
	if got := all.Counts(); !maps.Equal(got, e.Counts) {
		out = append(out, fmt.Sprintf("counts %v, want %v (%s)", got, e.Counts, e.CountsWhy))
	}
	if got := all.SkipCounts(); (len(got) > 0 || len(e.Skips) > 0) && !maps.Equal(got, e.Skips) {
		out = append(out, fmt.Sprintf("skips %v, want %v", got, e.Skips))
	}
	res := make([]record.Resource, len(all.Records))
	for i, r := range all.Records {
		p, err := record.Parse(r.Resource)
		if err != nil {
			return append(out, fmt.Sprintf("record %d: %v", i, err))
		}
		res[i] = p
	}
	for _, fact := range e.Facts {
		if fact.Why == "" || len(fact.Where) == 0 || len(fact.Want) == 0 {
			out = append(out, fmt.Sprintf("fact %v: why, where and want are required", fact.Where))
			continue
		}
		var match []int
		for i, r := range res {
			if r.Type() != fact.Type {
				continue
			}
			ok := true
			for path, v := range fact.Where {
				ok = ok && value(&all.Records[i], r, path) == v
			}
			if ok {
				match = append(match, i)
			}
		}
		if len(match) != 1 {
			out = append(out, fmt.Sprintf("%s %v: %d records match, want 1 (%s)", fact.Type, fact.Where, len(match), fact.Why))
			continue
		}
		i := match[0]
		keys := make([]string, 0, len(fact.Want))
		for k := range fact.Want {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, path := range keys {
			if got := value(&all.Records[i], res[i], path); got != fact.Want[path] {
				out = append(out, fmt.Sprintf("%s %v: %s = %q, want %q (%s)", fact.Type, fact.Where, path, got, fact.Want[path], fact.Why))
			}
		}
	}
	return out
}

// value reads a path of a record's resource, or of its envelope ($...).
func value(rec *record.Record, res record.Resource, path string) string {
	switch path {
	case "$display":
		return rec.Display
	case "$kind":
		return rec.Kind
	case "$date":
		if rec.Date.IsZero() {
			return ""
		}
		return rec.Date.UTC().Format(time.RFC3339)
	case "$system":
		return rec.Provenance.System
	case "$originalId":
		return rec.Provenance.OriginalID
	case "$importer":
		return rec.Provenance.Importer
	case "$file":
		return rec.Provenance.File
	}
	return res.Str(path)
}
