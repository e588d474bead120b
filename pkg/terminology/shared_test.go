package terminology_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/phr-project/phr/pkg/importers/all"
	"github.com/phr-project/phr/pkg/importers/importertest"
	"github.com/phr-project/phr/pkg/importers/pipeline"
	"github.com/phr-project/phr/pkg/terminology"
)

// Every CVX coding in the records imported from the shared test data (every
// file some importer reads: FHIR, NDJSON, C-CDA, SMART Health Cards, Apple
// Health) has a name: its own display, or the terminology's name that
// normalization gives it. A clinician never sees a bare vaccine code.
func TestSharedCVXCodingsNamed(t *testing.T) {
	files, err := pipeline.Walk([]string{importertest.Shared(t)})
	if err != nil {
		t.Fatalf("the shared test data is needed: %v", err)
	}
	reg := all.Default()
	var imported, codings int
	named := map[string]int{}   // CVX code -> codings named by the terminology
	unnamed := map[string]int{} // "file: code" -> codings left without a name
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		imp, err := reg.Detect(importertest.Head(data))
		if err != nil {
			continue // documentation, images the QR reader does not take
		}
		s, err := importertest.Import(imp, f, data, nil)
		if err != nil && len(s.Records) == 0 {
			continue // files whose import fails are the importers' tests' business
		}
		imported++
		rel, _ := filepath.Rel(importertest.Shared(t), f)
		for _, r := range s.Records {
			var v any
			if err := json.Unmarshal(r.Resource, &v); err != nil {
				t.Fatalf("%s: %s: %v", rel, r.ResourceType, err)
			}
			walkCodings(v, func(system, code, display string) {
				if terminology.System(system) != terminology.CVX {
					return
				}
				codings++
				if display == "" {
					unnamed[rel+": "+code]++
				}
				if _, ok := terminology.Display(system, code); ok {
					named[code]++
				}
			})
		}
	}
	if imported < 200 || codings < 100 {
		t.Fatalf("only %d files imported, %d CVX codings: the shared test data is incomplete", imported, codings)
	}
	keys := make([]string, 0, len(unnamed))
	for k := range unnamed {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		t.Errorf("%s: %d CVX codings without a name", k, unnamed[k])
	}
	if named["229"] == 0 {
		t.Errorf("no CVX 229 coding named by the terminology; the shared data has some")
	}
	t.Logf("%d files, %d CVX codings, %d distinct codes the terminology names", imported, codings, len(named))
}

// walkCodings calls fn for every object with a "system" and a "code"
// (Codings), outside narrative.
func walkCodings(v any, fn func(system, code, display string)) {
	switch v := v.(type) {
	case map[string]any:
		if _, ok := v["div"]; ok {
			return
		}
		sys, _ := v["system"].(string)
		code, _ := v["code"].(string)
		if sys != "" && code != "" {
			d, _ := v["display"].(string)
			fn(sys, code, strings.TrimSpace(d))
		}
		for _, c := range v {
			walkCodings(c, fn)
		}
	case []any:
		for _, c := range v {
			walkCodings(c, fn)
		}
	}
}
