package record

import (
	"encoding/json"
	"errors"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestVitalTable checks the table's own rules: names, codes and unit
// spellings are unambiguous, ranges are ranges, typical ranges lie within
// the plausible ones and name their source, a panel has the two values a
// Vital holds, and VitalKinds follows the table.
func TestVitalTable(t *testing.T) {
	names := map[string]string{}
	codes := map[string]string{}
	checkRange := func(what string, r VitalRange, min, max float64) {
		if r.Low >= r.High || r.Low < min || r.High > max || r.Source == "" {
			t.Errorf("%s: typical range %+v must lie within %v-%v and name its source", what, r, min, max)
		}
	}
	for i, v := range vitalTable {
		if VitalKinds[i] != v.Kind {
			t.Errorf("VitalKinds[%d] = %q, want %q", i, VitalKinds[i], v.Kind)
		}
		if v.Name == "" || len(v.Codes) == 0 || len(v.Units) == 0 {
			t.Errorf("%s: name, codes and units are required", v.Kind)
		}
		for _, n := range append([]string{v.Kind}, v.Aliases...) {
			if other, dup := names[vitalName(n)]; dup {
				t.Errorf("name %q is both %s and %s", n, other, v.Kind)
			}
			names[vitalName(n)] = v.Kind
		}
		for _, c := range append(v.codes(), componentCodes(v)...) {
			if c.System != LOINC || c.Code == "" || c.Display == "" {
				t.Errorf("%s: coding %+v", v.Kind, c)
			}
			if other, dup := codes[c.Code]; dup {
				t.Errorf("code %s is both %s and %s", c.Code, other, v.Kind)
			}
			codes[c.Code] = v.Kind
		}
		for _, c := range v.OtherCodes {
			if !loincCode.MatchString(c) {
				t.Errorf("%s: other code %q is not a LOINC code", v.Kind, c)
			}
			if other, dup := codes[c]; dup {
				t.Errorf("code %s is both %s and %s", c, other, v.Kind)
			}
			codes[c] = v.Kind
		}
		for _, c := range v.Components {
			if c.Kind != strings.ToLower(c.Kind) || c.Kind == "" || c.Label == "" || c.Name == "" {
				t.Errorf("%s: component %+v needs a lower-case kind, a label and a name", v.Kind, c)
			}
			for ucum, r := range c.Normal {
				u := v.unitByUCUM(ucum)
				if u == nil {
					t.Errorf("%s %s: typical range in %s, not a unit of %s", v.Kind, c.Kind, ucum, v.Kind)
					continue
				}
				checkRange(v.Kind+" "+c.Kind, r, max(c.Min, u.Min), min(c.Max, u.Max))
			}
		}
		if len(v.Components) == 1 || len(v.Components) > 2 {
			t.Errorf("%s: a panel has two components (Vital.Value and Value2)", v.Kind)
		}
		spellings := map[string]bool{}
		defaults := 0
		for _, u := range v.Units {
			if u.UCUM == "" || u.Min >= u.Max || u.Decimals < 0 || u.Decimals > 3 {
				t.Errorf("%s: unit %+v", v.Kind, u)
			}
			for _, a := range u.Aliases {
				if a != strings.ToLower(strings.ReplaceAll(a, " ", "")) {
					t.Errorf("%s: alias %q must be lower case without spaces", v.Kind, a)
				}
				if spellings[a] {
					t.Errorf("%s: unit spelling %q twice", v.Kind, a)
				}
				spellings[a] = true
				if a == "" {
					defaults++
				}
			}
			if _, isUCUM := UnitSymbol(u.UCUM); isUCUM && u.Symbol == u.UCUM {
				t.Errorf("%s: symbol %q is a UCUM code people should not see", v.Kind, u.Symbol)
			}
			// The viewer finds a unit by its UCUM code or, in lower case
			// without spaces, by an alias: the symbol must be one.
			if !slices.Contains(u.Aliases, strings.ToLower(strings.ReplaceAll(u.Symbol, " ", ""))) {
				t.Errorf("%s: symbol %q is not among the aliases", v.Kind, u.Symbol)
			}
			if u.Normal != (VitalRange{}) {
				checkRange(v.Kind+" in "+u.UCUM, u.Normal, u.Min, u.Max)
			}
		}
		if defaults > 1 {
			t.Errorf("%s: %d default units", v.Kind, defaults)
		}
	}
}

// loincCode is the form of a LOINC code: digits, a hyphen, a check digit.
var loincCode = regexp.MustCompile(`^[0-9]{1,7}-[0-9]$`)

// fhirVitalSigns are the LOINC codes of FHIR R4's vital-signs profiles
// (https://hl7.org/fhir/R4/observation-vitalsigns.html): the vital-signs
// panel, respiratory rate, heart rate, oxygen saturation (2708-6, with
// 59408-5 for pulse oximetry), body temperature, body height, head
// circumference, body weight, BMI, and the blood pressure panel with its
// systolic and diastolic components.
var fhirVitalSigns = []string{"85353-1", "9279-1", "8867-4", "2708-6", "59408-5", "8310-5", "8302-2", "9843-4", "29463-7", "39156-5", "85354-9", "8480-6", "8462-4"}

// TestVitalSignFlag: a kind is flagged a vital sign exactly when FHIR's
// vital-signs profiles list its code (the viewer then shows a reading with
// that code among the vital signs even without the vital-signs category);
// blood glucose, a laboratory result too, and pain are not.
func TestVitalSignFlag(t *testing.T) {
	for _, v := range vitalTable {
		listed := slices.Contains(fhirVitalSigns, v.Codes[0].Code)
		if v.VitalSign != listed {
			t.Errorf("%s: VitalSign = %v, but FHIR's vital-signs profiles list %s: %v", v.Kind, v.VitalSign, v.Codes[0].Code, listed)
		}
	}
	for kind, want := range map[string]bool{"bp": true, "head": true, "glucose": false, "pain": false} {
		if v, _ := LookupVital(kind); v == nil || v.VitalSign != want {
			t.Errorf("%s: VitalSign want %v", kind, want)
		}
	}
}

// TestOtherCodesAreNotWritten: the codes other sources use identify a
// kind for the viewer, but phr never writes them and VitalOf does not
// match them (an edit would rewrite the record's code).
func TestOtherCodesAreNotWritten(t *testing.T) {
	oral := Resource{"resourceType": "Observation", "code": map[string]any{"coding": []any{map[string]any{"system": LOINC, "code": "8331-1"}}}}
	if v := VitalOf(oral); v != nil {
		t.Errorf("VitalOf(oral temperature) = %s, want nil", v.Kind)
	}
	temp, _ := LookupVital("temp")
	if !slices.Contains(temp.OtherCodes, "8331-1") {
		t.Errorf("temp's other codes %v lack oral temperature", temp.OtherCodes)
	}
	for _, v := range vitalTable {
		for _, u := range v.Units {
			written, _ := v.CodesFor(u.UCUM)
			for _, c := range written {
				if slices.Contains(v.OtherCodes, c.Code) {
					t.Errorf("%s writes %s, listed among its other codes", v.Kind, c.Code)
				}
			}
		}
	}
}

func componentCodes(v VitalSign) []Coding {
	var out []Coding
	for _, c := range v.Components {
		out = append(out, c.Code)
	}
	return out
}

// TestParseVitalTable covers the vitals and spellings the table added:
// height, BMI, respiratory rate, pain, "pulse" and the spellings CSV files
// and devices write.
func TestParseVitalTable(t *testing.T) {
	tests := []struct {
		kind, in  string
		wantKind  string
		value     float64
		value2    float64
		unit      string
		wantText  string
		errSubstr string
	}{
		{"pulse", "72", "hr", 72, 0, "/min", "72 bpm", ""},
		{"Heart Rate", "72 beats/min", "hr", 72, 0, "/min", "72 bpm", ""},
		{"heart_rate", "72{beats}/min", "hr", 72, 0, "/min", "72 bpm", ""},
		{"Blood_Pressure", "120/80 mm[Hg]", "bp", 120, 80, "mm[Hg]", "120/80 mmHg", ""},
		{"bp", "120/80/70", "", 0, 0, "", "", "systolic/diastolic"},
		{"bp", "80/80", "", 0, 0, "", "", "systolic above diastolic"},
		{"weight", "154 pounds", "weight", 154, 0, "[lb_av]", "154 lb", ""},
		{"weight", "70[lb_av]", "weight", 70, 0, "[lb_av]", "70 lb", ""},
		{"temp", "37.2 Cel", "temp", 37.2, 0, "Cel", "37.2 °C", ""},
		{"temperature", "99.1 fahrenheit", "temp", 99.1, 0, "[degF]", "99.1 °F", ""},
		{"blood sugar", "5.4 mmol/L", "glucose", 5.4, 0, "mmol/L", "5.4 mmol/L", ""},
		{"height", "178.4cm", "height", 178.4, 0, "cm", "178.4 cm", ""},
		{"height", "1.78 m", "height", 1.78, 0, "m", "1.78 m", ""},
		{"body height", "70 in", "height", 70, 0, "[in_i]", "70 in", ""},
		{"height", "178", "", 0, 0, "", "", "needs a unit"},
		{"height", "1780cm", "", 0, 0, "", "", "plausible"},
		{"bmi", "24.3", "bmi", 24.3, 0, "kg/m2", "24.3 kg/m²", ""},
		{"BMI", "24.3 kg/m²", "bmi", 24.3, 0, "kg/m2", "24.3 kg/m²", ""},
		{"bmi", "243", "", 0, 0, "", "", "plausible"},
		{"rr", "16", "rr", 16, 0, "/min", "16 breaths/min", ""},
		{"respiratory rate", "16/min", "rr", 16, 0, "/min", "16 breaths/min", ""},
		{"rr", "160", "", 0, 0, "", "", "plausible"},
		{"pain", "7", "pain", 7, 0, "{score}", "7/10", ""},
		{"pain score", "0/10", "pain", 0, 0, "{score}", "0/10", ""},
		{"pain", "11", "", 0, 0, "", "", "plausible"},
		{"pain", "6.5", "", 0, 0, "", "", "whole number"},
		{"head circumference", "45.5 cm", "head", 45.5, 0, "cm", "45.5 cm", ""},
		{"ofc", "17.9in", "head", 17.9, 0, "[in_i]", "17.9 in", ""},
		{"head", "450cm", "", 0, 0, "", "", "plausible"},
		{"hr", "72 beats per minute", "hr", 72, 0, "/min", "72 bpm", ""},
		{"rr", "16 breaths per minute", "rr", 16, 0, "/min", "16 breaths/min", ""},
		{"spo2", "97 %O2", "spo2", 97, 0, "%", "97 %", ""},
		{"steps", "1000", "", 0, 0, "", "", "unknown vital"},
	}
	for _, tt := range tests {
		t.Run(tt.kind+" "+tt.in, func(t *testing.T) {
			got, err := ParseVital(tt.kind, tt.in)
			if tt.errSubstr != "" {
				var ie *InputError
				if !errors.As(err, &ie) || !strings.Contains(err.Error(), tt.errSubstr) {
					t.Fatalf("err = %v, want an InputError with %q", err, tt.errSubstr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := Vital{Kind: tt.wantKind, Value: tt.value, Value2: tt.value2, Unit: tt.unit}
			if got.Kind != want.Kind || got.Value != want.Value || got.Value2 != want.Value2 || got.Unit != want.Unit || got.Text != tt.wantText {
				t.Fatalf("got %+v, want %+v text %q", got, want, tt.wantText)
			}
		})
	}
}

// TestNewVitalFromTable builds every vital of the table and checks that
// the resource carries the table's codes and units and reads back as the
// same vital.
func TestNewVitalFromTable(t *testing.T) {
	readings := map[string]string{
		"bp": "120/80", "hr": "72", "weight": "70.5kg", "temp": "37.2C", "glucose": "5.4mmol/L",
		"spo2": "97", "height": "178.4cm", "bmi": "24.3", "rr": "16", "pain": "7", "head": "45.5cm",
	}
	displays := map[string]string{
		"bp": "Blood pressure: 120/80 mmHg", "hr": "Heart rate: 72 bpm", "weight": "Body weight: 70.5 kg",
		"temp": "Body temperature: 37.2 °C", "glucose": "Blood glucose: 5.4 mmol/L", "spo2": "Oxygen saturation: 97 %",
		"height": "Body height: 178.4 cm", "bmi": "Body mass index: 24.3 kg/m²", "rr": "Respiratory rate: 16 breaths/min",
		"pain": "Pain severity: 7/10", "head": "Head circumference: 45.5 cm",
	}
	at := time.Date(2026, 3, 1, 8, 30, 0, 0, time.UTC)
	for _, kind := range VitalKinds {
		t.Run(kind, func(t *testing.T) {
			in, ok := readings[kind]
			if !ok {
				t.Fatalf("no test reading for %s: every vital of the table needs one", kind)
			}
			v, err := ParseVital(kind, in)
			if err != nil {
				t.Fatal(err)
			}
			rec, err := NewVital(Common{Subject: "Patient/p"}, v, at)
			if err != nil {
				t.Fatal(err)
			}
			res, _ := Parse(rec.Resource)
			vs, _ := LookupVital(kind)
			if got := VitalOf(res); got != vs {
				t.Errorf("VitalOf = %v", got)
			}
			if rec.Kind != KindVital || rec.Display != displays[kind] {
				t.Errorf("kind %q display %q, want %q", rec.Kind, rec.Display, displays[kind])
			}
			if res.Str("code.text") != vs.Name || res.Str("code.coding.0.system") != LOINC {
				t.Errorf("code %v", res.Get("code"))
			}
			q := "valueQuantity"
			if len(vs.Components) > 0 {
				q = "component.0.valueQuantity"
			}
			if res.Str(q+".system") != UCUM || res.Str(q+".code") != v.Unit || res.Str(q+".unit") != v.Display {
				t.Errorf("quantity %v", res.Get(q))
			}
		})
	}
	// The unit picks the glucose code.
	mg, _ := ParseVital("glucose", "97mg/dL")
	rec, _ := NewVital(Common{}, mg, at)
	res, _ := Parse(rec.Resource)
	if !res.HasCoding("code", LOINC, LoincGlucoseMass) || res.HasCoding("code", LOINC, LoincGlucoseMol) {
		t.Errorf("glucose in mg/dL coded %v", res.Codings("code"))
	}
	if _, err := NewVital(Common{}, Vital{Kind: "hr", Value: 72, Unit: "kg"}, at); err == nil {
		t.Error("a heart rate in kg was built")
	}
}

// TestNewVitalUnchanged pins the JSON the builders wrote before the table
// existed, so that the same reading still gives the same resource.
func TestNewVitalUnchanged(t *testing.T) {
	at := time.Date(2026, 3, 1, 8, 30, 0, 0, time.UTC)
	tests := []struct{ kind, in, want string }{
		{"bp", "120/80", `{"category":[{"coding":[{"code":"vital-signs","display":"Vital Signs","system":"http://terminology.hl7.org/CodeSystem/observation-category"}],"text":"Vital Signs"}],"code":{"coding":[{"code":"85354-9","display":"Blood pressure panel with all children optional","system":"http://loinc.org"}],"text":"Blood pressure"},"component":[{"code":{"coding":[{"code":"8480-6","display":"Systolic blood pressure","system":"http://loinc.org"}],"text":"Systolic blood pressure"},"valueQuantity":{"code":"mm[Hg]","system":"http://unitsofmeasure.org","unit":"mmHg","value":120}},{"code":{"coding":[{"code":"8462-4","display":"Diastolic blood pressure","system":"http://loinc.org"}],"text":"Diastolic blood pressure"},"valueQuantity":{"code":"mm[Hg]","system":"http://unitsofmeasure.org","unit":"mmHg","value":80}}],"effectiveDateTime":"2026-03-01T08:30:00Z","resourceType":"Observation","status":"final"}`},
		{"spo2", "97", `{"category":[{"coding":[{"code":"vital-signs","display":"Vital Signs","system":"http://terminology.hl7.org/CodeSystem/observation-category"}],"text":"Vital Signs"}],"code":{"coding":[{"code":"59408-5","display":"Oxygen saturation in Arterial blood by Pulse oximetry","system":"http://loinc.org"},{"code":"2708-6","display":"Oxygen saturation in Arterial blood","system":"http://loinc.org"}],"text":"Oxygen saturation"},"effectiveDateTime":"2026-03-01T08:30:00Z","resourceType":"Observation","status":"final","valueQuantity":{"code":"%","system":"http://unitsofmeasure.org","unit":"%","value":97}}`},
	}
	for _, tt := range tests {
		v, err := ParseVital(tt.kind, tt.in)
		if err != nil {
			t.Fatal(err)
		}
		rec, err := NewVital(Common{}, v, at)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		json.Unmarshal(rec.Resource, &m)
		delete(m, "id")
		got, _ := json.Marshal(m)
		if string(got) != tt.want {
			t.Errorf("%s:\n got %s\nwant %s", tt.kind, got, tt.want)
		}
	}
}

func TestVitalSignsIsACopy(t *testing.T) {
	a := VitalSigns()
	b, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	// What the viewer reads: typical ranges with their sources, the other
	// codes, the vital-sign flag; no empty range where there is none.
	for _, want := range []string{`"kind":"pain"`, `"symbol":"mmHg"`, `"normal":{"low":60,"high":100,"source":"American Heart Association`,
		`"normal":{"mm[Hg]":{"low":90,"high":120,`, `"otherCodes":["8331-1"]`, `"vitalSign":false`, `"label":"Systolic"`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("VitalSigns JSON lacks %s", want)
		}
	}
	if strings.Contains(string(b), `"low":0,"high":0`) {
		t.Error("VitalSigns JSON has an empty typical range")
	}
	a[0].Units[0].Aliases[0] = "changed"
	a[1].Codes[0].Code = "changed"
	a[0].OtherCodes[0] = "changed"
	a[0].Components[0].Normal[ucumMmHg] = VitalRange{Source: "changed"}
	if slices.Contains(vitalTable[0].Units[0].Aliases, "changed") || vitalTable[1].Codes[0].Code == "changed" ||
		vitalTable[0].OtherCodes[0] == "changed" || vitalTable[0].Components[0].Normal[ucumMmHg].Source == "changed" {
		t.Error("VitalSigns shares memory with the table")
	}
}
