package record

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/phr-project/phr/pkg/terminology"
)

func TestNormalize(t *testing.T) {
	tests := []struct {
		name, in, want string // want "" means unchanged
	}{
		{"placeholder coding dropped, text kept",
			`{"resourceType":"Condition","code":{"coding":[{"system":"http://snomed.info/sct","code":"UNK"}],"text":"Headache"}}`,
			`{"code":{"text":"Headache"},"resourceType":"Condition"}`},
		{"only the placeholder of two codings dropped",
			`{"resourceType":"Condition","code":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v3-NullFlavor","code":"NI"},{"system":"http://snomed.info/sct","code":"38341003","display":"Hypertension"}]}}`,
			`{"code":{"coding":[{"code":"38341003","display":"Hypertension","system":"http://snomed.info/sct"}]},"resourceType":"Condition"}`},
		{"Unknown in a local system dropped",
			`{"resourceType":"AllergyIntolerance","code":{"coding":[{"system":"urn:oid:1.2.3","code":"Unknown","display":"Unknown"}],"text":"Cat dander"}}`,
			`{"code":{"text":"Cat dander"},"resourceType":"AllergyIntolerance"}`},
		{"nothing would be left: kept as the source said",
			`{"resourceType":"Condition","code":{"coding":[{"system":"http://snomed.info/sct","code":"UNK","display":"x"}]}}`, ""},
		{"NA in a local lab system is a code",
			`{"resourceType":"Observation","code":{"coding":[{"system":"http://example.org/lab","code":"NA","display":"Sodium"}]}}`, ""},
		{"display filled from the terminology",
			`{"resourceType":"Immunization","vaccineCode":{"coding":[{"system":"http://hl7.org/fhir/sid/cvx","code":"140"}]}}`,
			`{"resourceType":"Immunization","vaccineCode":{"coding":[{"code":"140","display":"Influenza, split virus, trivalent, injectable, preservative free","system":"http://hl7.org/fhir/sid/cvx"}]}}`},
		{"display filled through an OID, system kept as written",
			`{"resourceType":"AllergyIntolerance","code":{"coding":[{"system":"urn:oid:2.16.840.1.113883.6.96","code":"716186003"}]}}`,
			`{"code":{"coding":[{"code":"716186003","display":"No known allergy","system":"urn:oid:2.16.840.1.113883.6.96"}]},"resourceType":"AllergyIntolerance"}`},
		{"a display is never replaced",
			`{"resourceType":"Immunization","vaccineCode":{"coding":[{"system":"http://hl7.org/fhir/sid/cvx","code":"140","display":"Flu shot"}]}}`, ""},
		{"unknown code left without a display",
			`{"resourceType":"Immunization","vaccineCode":{"coding":[{"system":"http://hl7.org/fhir/sid/cvx","code":"99999"}]}}`, ""},
		{"valid unit labelled UCUM in canonical case",
			`{"resourceType":"Observation","valueQuantity":{"value":5.40,"unit":"mg/dl"}}`,
			`{"resourceType":"Observation","valueQuantity":{"code":"mg/dL","system":"http://unitsofmeasure.org","unit":"mg/dl","value":5.40}}`},
		{"UCUM code case-normalised",
			`{"resourceType":"Observation","valueQuantity":{"value":13.2,"unit":"G/DL","system":"http://unitsofmeasure.org","code":"G/DL"}}`,
			`{"resourceType":"Observation","valueQuantity":{"code":"g/dL","system":"http://unitsofmeasure.org","unit":"G/DL","value":13.2}}`},
		{"wrong UCUM label removed, unit kept",
			`{"resourceType":"MedicationStatement","dosage":[{"doseAndRate":[{"doseQuantity":{"value":1,"unit":"tablet","system":"http://unitsofmeasure.org","code":"tablet"}}]}]}`,
			`{"dosage":[{"doseAndRate":[{"doseQuantity":{"unit":"tablet","value":1}}]}],"resourceType":"MedicationStatement"}`},
		{"wrong UCUM code without a unit becomes the unit",
			`{"resourceType":"Observation","valueQuantity":{"value":4.1,"system":"http://unitsofmeasure.org","code":"CELLS/MCL"}}`,
			`{"resourceType":"Observation","valueQuantity":{"unit":"CELLS/MCL","value":4.1}}`},
		{"UCUM by OID becomes the canonical URI",
			`{"resourceType":"Observation","valueQuantity":{"value":72,"unit":"/min","system":"2.16.840.1.113883.6.8","code":"/min"}}`,
			`{"resourceType":"Observation","valueQuantity":{"code":"/min","system":"http://unitsofmeasure.org","unit":"/min","value":72}}`},
		{"a unit that is not UCUM stays unlabelled",
			`{"resourceType":"Observation","valueQuantity":{"value":3,"unit":"puff"}}`, ""},
		{"another unit system is left alone",
			`{"resourceType":"Observation","valueQuantity":{"value":3,"unit":"tab","system":"http://example.org/units","code":"tab"}}`, ""},
		{"valid UCUM left alone",
			`{"resourceType":"Observation","valueQuantity":{"value":120,"unit":"mmHg","system":"http://unitsofmeasure.org","code":"mm[Hg]"}}`, ""},
		{"contained Medication names the reference",
			`{"resourceType":"MedicationStatement","contained":[{"resourceType":"Medication","id":"m1","code":{"text":"Lisinopril 10 MG Oral Tablet"}}],"medicationReference":{"reference":"#m1"}}`,
			`{"contained":[{"code":{"text":"Lisinopril 10 MG Oral Tablet"},"id":"m1","resourceType":"Medication"}],"medicationReference":{"display":"Lisinopril 10 MG Oral Tablet","reference":"#m1"},"resourceType":"MedicationStatement"}`},
		{"narrative untouched",
			`{"resourceType":"Condition","text":{"status":"generated","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\">UNK</div>"}}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Parse([]byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			changed := Normalize(r)
			if tt.want == "" {
				if changed {
					got, _ := marshalResource(r)
					t.Fatalf("changed to %s", got)
				}
				return
			}
			got, err := marshalResource(r)
			if err != nil {
				t.Fatal(err)
			}
			if !changed || string(got) != tt.want {
				t.Fatalf("Normalize = %v\n got %s\nwant %s", changed, got, tt.want)
			}
		})
	}
}

func TestNewNormalizesImportedOnly(t *testing.T) {
	in := []byte(`{"resourceType":"Observation","valueQuantity":{"value":5,"unit":"mg/dl"}}`)
	self, err := New(in, Provenance{Method: MethodSelf})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(self.Resource, in) {
		t.Errorf("self-entered record changed: %s", self.Resource)
	}
	for _, m := range []string{MethodImported, MethodDevice} {
		r, err := New(in, Provenance{Method: m, Importer: "x"})
		if err != nil {
			t.Fatal(err)
		}
		if Resource(mustParse(t, r.Resource)).Str("valueQuantity.code") != "mg/dL" {
			t.Errorf("%s record not normalized: %s", m, r.Resource)
		}
		res := mustParse(t, in)
		p, err := NewParsed(in, res, Provenance{Method: m})
		if err != nil || !bytes.Equal(p.Resource, r.Resource) {
			t.Errorf("NewParsed = %s, %v; New = %s", p.Resource, err, r.Resource)
		}
	}
	// Nothing to change: the bytes are kept as given, not re-encoded.
	clean := []byte(`{"resourceType":"Observation", "valueQuantity":{"value":5,"unit":"mg/dL","system":"http://unitsofmeasure.org","code":"mg/dL"}}`)
	r, err := New(clean, Provenance{Method: MethodImported})
	if err != nil || !bytes.Equal(r.Resource, clean) {
		t.Errorf("clean resource re-encoded: %s, %v", r.Resource, err)
	}
}

func mustParse(t *testing.T, b []byte) Resource {
	t.Helper()
	r, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestNormalizeSharedFHIR normalizes every resource of the shared FHIR
// test data and checks what must hold after it: normalizing again changes
// nothing (and so is deterministic), no CodeableConcept with a text keeps
// a placeholder coding, every UCUM-labelled Quantity has a canonical UCUM
// code, and no coding of a system the terminology names lacks a display
// when the terminology has one.
func TestNormalizeSharedFHIR(t *testing.T) {
	root := filepath.Join("..", "..", "..", "shared", "testdata", "fhir")
	files, _ := filepath.Glob(filepath.Join(root, "*", "*.json"))
	nd, _ := filepath.Glob(filepath.Join(root, "*", "*.ndjson"))
	files = append(files, nd...)
	if len(files) == 0 {
		t.Skip("shared test data not found")
	}
	var resources, changed int
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var raws []json.RawMessage
		if strings.HasSuffix(f, ".ndjson") {
			for line := range bytes.SplitSeq(b, []byte("\n")) {
				if len(bytes.TrimSpace(line)) > 0 {
					raws = append(raws, line)
				}
			}
		} else {
			var bundle struct {
				ResourceType string `json:"resourceType"`
				Entry        []struct {
					Resource json.RawMessage `json:"resource"`
				} `json:"entry"`
			}
			if json.Unmarshal(b, &bundle) != nil {
				continue
			}
			if bundle.ResourceType != "Bundle" {
				raws = append(raws, b)
			}
			for _, e := range bundle.Entry {
				raws = append(raws, e.Resource)
			}
		}
		for _, raw := range raws {
			res, err := Parse(raw)
			if err != nil {
				continue
			}
			resources++
			if Normalize(res) {
				changed++
			}
			out, err := marshalResource(res)
			if err != nil {
				t.Fatal(err)
			}
			again := mustParse(t, out)
			if Normalize(again) {
				t.Errorf("%s: %s/%s: a second normalization changes it", filepath.Base(f), res.Type(), res.ID())
			}
			checkNormalized(t, filepath.Base(f)+": "+res.Type()+"/"+res.ID(), map[string]any(res))
		}
	}
	if resources < 1000 {
		t.Fatalf("only %d resources", resources)
	}
	t.Logf("%d resources, %d changed", resources, changed)
}

func checkNormalized(t *testing.T, where string, v any) {
	switch v := v.(type) {
	case map[string]any:
		if _, ok := v["div"]; ok {
			return
		}
		if codings, ok := v["coding"].([]any); ok {
			if text, _ := v["text"].(string); text != "" {
				for _, c := range codings {
					cm, _ := c.(map[string]any)
					sys, _ := cm["system"].(string)
					code, _ := cm["code"].(string)
					if terminology.IsPlaceholder(sys, code) {
						t.Errorf("%s: placeholder coding %q kept", where, code)
					}
				}
			}
		}
		if isQuantity(v) {
			if sys, _ := v["system"].(string); sys == UCUM {
				code, _ := v["code"].(string)
				if c, ok := terminology.UCUM(code); !ok || c != code {
					t.Errorf("%s: UCUM code %q is not canonical UCUM", where, code)
				}
			}
		} else if sys, ok := v["system"].(string); ok {
			code, _ := v["code"].(string)
			if d, _ := v["display"].(string); d == "" {
				if name, ok := terminology.Display(sys, code); ok {
					t.Errorf("%s: %s|%s has no display, the terminology says %q", where, sys, code, name)
				}
			}
		}
		for _, c := range v {
			checkNormalized(t, where, c)
		}
	case []any:
		for _, c := range v {
			checkNormalized(t, where, c)
		}
	}
}
