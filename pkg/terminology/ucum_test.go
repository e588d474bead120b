package terminology

import (
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestUCUM(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		// Valid as written.
		{"mg/dL", "mg/dL", true},
		{"mm[Hg]", "mm[Hg]", true},
		{"[lb_av]", "[lb_av]", true},
		{"[degF]", "[degF]", true},
		{"Cel", "Cel", true},
		{"/min", "/min", true},
		{"kg/m2", "kg/m2", true},
		{"s-1", "s-1", true},
		{"m+2", "m+2", true},
		{"%", "%", true},
		{"1", "1", true},
		{"10*3/uL", "10*3/uL", true},
		{"10^3/uL", "10^3/uL", true},
		{"mL/min/{1.73_m2}", "mL/min/{1.73_m2}", true},
		{"{beats}/min", "{beats}/min", true},
		{"mL{total}", "mL{total}", true},
		{"{tbl}", "{tbl}", true},
		{"kg.m/s2", "kg.m/s2", true},
		{"(kg.m)/s2", "(kg.m)/s2", true},
		{"[iU]/L", "[iU]/L", true},
		{"m[IU]/L", "m[IU]/L", true},
		{"meq/L", "meq/L", true},
		{"ug", "ug", true},
		{"dam", "dam", true},
		{"K/uL", "K/uL", true}, // kelvin per microliter: valid syntax, whatever was meant
		// The liter is written L.
		{"mg/dl", "mg/dL", true},
		{"ml", "mL", true},
		{"10*3/ul", "10*3/uL", true},
		// Case-only variants read with UCUM's case-insensitive codes, kept
		// when the reading is a common clinical unit.
		{"G/DL", "g/dL", true},
		{"MG/DL", "mg/dL", true},
		{"mEq/L", "meq/L", true},
		{"mMol/L", "mmol/L", true},
		{"KG", "kg", true},
		{"MM[HG]", "mm[Hg]", true},
		{"/MIN", "/min", true},
		// ... and refused when that reading is not what anyone meant.
		{"NA", "", false},   // nanoampere
		{"pAl", "", false},  // PAL is the pascal, Pa: more than case differs
		{"M/uL", "", false}, // meter per microliter
		// Not UCUM.
		{"", "", false},
		{"tablet", "", false},
		{"Tablet", "", false},
		{"puff", "", false},
		{"puff(s)", "", false},
		{"CELLS/MCL", "", false},
		{"mmHg", "", false},
		{"bpm", "", false},
		{"count/min", "", false},
		{"mcg", "", false},
		{"lbs", "", false},
		{"units", "", false},
		{"degF", "", false},
		{"10X9cells/L", "", false},
		{"10+3/ul", "", false},
		{"mg/3ml", "", false},
		{"mg /dL", "", false},
		{"mg/", "", false},
		{"/", "", false},
		{"mg//dL", "", false},
		{"(mg", "", false},
		{"mg)", "", false},
		{"{unclosed", "", false},
		{"{a{b}}", "", false},
		{"{a b}", "", false},
		{"[lb_av", "", false},
		{"m2.", "", false},
		{"kcal", "kcal", true},  // cal is metric: prefixes apply
		{"k[lb_av]", "", false}, // [lb_av] is not
		{"mm12345", "", false},
		{"µg", "", false},
	}
	for _, tt := range tests {
		got, ok := UCUM(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("UCUM(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

// TestUCUMCommonUnits: every unit of HL7's ucum-common value set is valid
// and canonical as written, but for the liter, which is written "L".
func TestUCUMCommonUnits(t *testing.T) {
	n := 0
	for u := range commonUnits {
		n++
		got, ok := UCUM(u)
		if !ok || got != strings.ReplaceAll(u, "l", "L") && got != u {
			t.Errorf("UCUM(%q) = %q, %v", u, got, ok)
		}
	}
	if n < 800 {
		t.Fatalf("only %d common units", n)
	}
}

// knownNotUCUM lists the units the shared test data labels as UCUM (FHIR
// Quantities with system http://unitsofmeasure.org, C-CDA PQ units) that
// are not UCUM, and why.
var knownNotUCUM = map[string]string{
	"10+3/ul":       "'+' is not an operator",
	"10X9cells/L":   "'X' is not a UCUM symbol",
	"Grams":         "a word, not an atom",
	"M/uL":          "read case-insensitively it is meter per microliter",
	"NA":            "read case-insensitively it is nanoampere",
	"Puff":          "a dose form, not a unit",
	"Puffs":         "a dose form, not a unit",
	"Tablet":        "a dose form, not a unit",
	"Units":         "a word, not an atom",
	"cap(s)":        "a dose form, not a unit",
	"in":            "UCUM's inch is [in_i]",
	"lbs":           "UCUM's pound is [lb_av]",
	"mcg":           "UCUM's microgram is ug",
	"mg/3ml":        "a factor cannot precede an atom",
	"mg/actuat":     "'actuat' is not an atom",
	"mgAlb/gCre":    "'Alb' and 'Cre' belong in annotations",
	"milliGRAM(s)":  "a word, not an atom",
	"milliLiter(s)": "a word, not an atom",
	"puff":          "a dose form, not a unit",
	"puff(s)":       "a dose form, not a unit",
	"tab(s)":        "a dose form, not a unit",
	"tablet":        "a dose form, not a unit",
	"unit":          "a word, not an atom",
	"units":         "a word, not an atom",
	"uug":           "two prefixes",
	"UCUM_UNIT":     "a template placeholder",
	"md/dL":         "a typo for mg/dL: the day takes no prefix",
}

// TestUCUMSharedTestData checks UCUM against every unit the shared test
// data (all FHIR files and C-CDAs) labels as UCUM.
func TestUCUMSharedTestData(t *testing.T) {
	root := filepath.Join("..", "..", "..", "shared", "testdata")
	if _, err := os.Stat(root); err != nil {
		t.Skip("shared test data not found:", err)
	}
	units := map[string]string{} // unit -> a file that has it
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		switch ext := strings.ToLower(filepath.Ext(path)); {
		case ext == ".json" || ext == ".ndjson":
			f, err := os.Open(path)
			if err != nil {
				return err
			}
			defer f.Close()
			dec := json.NewDecoder(f)
			for {
				var v any
				if err := dec.Decode(&v); err != nil {
					break // end, or not JSON (a few .json files are JWS or text)
				}
				collectFHIRUnits(v, func(u string) { units[u] = path })
			}
		case strings.Contains(path, "ccda") && (ext == ".xml" || ext == ".ccd" || ext == ".txt"):
			f, err := os.Open(path)
			if err != nil {
				return err
			}
			defer f.Close()
			dec := xml.NewDecoder(f)
			dec.Strict = false
			for {
				tok, err := dec.Token()
				if err != nil {
					if !errors.Is(err, io.EOF) {
						t.Logf("%s: %v", path, err)
					}
					break
				}
				se, ok := tok.(xml.StartElement)
				if !ok {
					continue
				}
				var unit, value string
				hasUnit := false
				for _, a := range se.Attr {
					switch a.Name.Local {
					case "unit":
						unit, hasUnit = a.Value, true
					case "value":
						value = a.Value
					}
				}
				if hasUnit && value != "" && unit != "" {
					units[unit] = path
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(units) < 50 {
		t.Fatalf("found only %d distinct units", len(units))
	}
	var valid int
	for _, u := range slices.Sorted(mapKeys(units)) {
		c, ok := UCUM(u)
		why, known := knownNotUCUM[u]
		switch {
		case ok && known:
			t.Errorf("%q (in %s) is accepted as %q but listed as not UCUM: %s", u, units[u], c, why)
		case !ok && !known:
			t.Errorf("%q (in %s) is refused", u, units[u])
		case ok:
			valid++
		}
	}
	for u := range knownNotUCUM {
		if _, ok := units[u]; !ok {
			t.Errorf("%q is listed as found in the shared data but is not there", u)
		}
	}
	t.Logf("%d distinct units, %d valid UCUM", len(units), valid)
}

func mapKeys(m map[string]string) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// collectFHIRUnits calls fn with the code of every Quantity labelled UCUM.
func collectFHIRUnits(v any, fn func(string)) {
	switch v := v.(type) {
	case map[string]any:
		if sys, _ := v["system"].(string); System(sys) == UCUMSystem {
			if _, isNum := v["value"].(float64); isNum {
				if code, _ := v["code"].(string); code != "" {
					fn(code)
				}
			}
		}
		for _, c := range v {
			collectFHIRUnits(c, fn)
		}
	case []any:
		for _, c := range v {
			collectFHIRUnits(c, fn)
		}
	}
}

// FuzzUCUM: no panics; an accepted unit differs from its canonical form
// only in case, and the canonical form is accepted as itself.
func FuzzUCUM(f *testing.F) {
	for _, s := range []string{"mg/dL", "G/DL", "mm[Hg]", "10*3/uL", "{beats}/min", "(kg.m)/s2", "/min", "mEq/L", "m+2", "tablet", "[lb_av", "{a{b}}", "NA"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, ok := UCUM(s)
		if !ok {
			if c != "" {
				t.Fatalf("UCUM(%q) = %q, false", s, c)
			}
			return
		}
		if len(c) != len(s) || !strings.EqualFold(c, s) {
			t.Fatalf("UCUM(%q) = %q: more than case changed", s, c)
		}
		if c2, ok := UCUM(c); !ok || c2 != c {
			t.Fatalf("UCUM(%q) = %q, %v; want itself", c, c2, ok)
		}
	})
}
