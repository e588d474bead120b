package record

import (
	"encoding/json"
	"testing"
)

// TestDisplayOfValues checks how measured values read: with the precision
// the source wrote, without binary-float noise, and with units as people
// write them, never as UCUM codes. The resources are the smallest that show
// each pattern; the shapes are those of real sources (Synthea writes UCUM
// codes as unit text, Apple Health float noise, EHRs other BP panel codes).
func TestDisplayOfValues(t *testing.T) {
	const vitalCat = `"category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"vital-signs"}]}]`
	obs := func(code, text, value string) string {
		return `{"resourceType":"Observation",` + vitalCat + `,"code":{"coding":[{"system":"http://loinc.org","code":"` + code + `"}],"text":"` + text + `"},"valueQuantity":` + value + `}`
	}
	bp := func(panel, sys, dia, unit string) string {
		q := func(v string) string {
			return `{"value":` + v + `,"unit":"` + unit + `","system":"http://unitsofmeasure.org","code":"mm[Hg]"}`
		}
		return `{"resourceType":"Observation",` + vitalCat + `,"code":{"coding":[{"system":"http://loinc.org","code":"` + panel + `"}],"text":"Blood pressure"},"component":[` +
			`{"code":{"coding":[{"system":"http://loinc.org","code":"8462-4"}],"text":"Diastolic"},"valueQuantity":` + q(dia) + `},` +
			`{"code":{"coding":[{"system":"http://loinc.org","code":"8480-6"}],"text":"Systolic"},"valueQuantity":` + q(sys) + `}]}`
	}
	tests := []struct{ name, res, want string }{
		{"BP panel with float noise and UCUM unit text", bp("85354-9", "120.00000000000001", "81.69998963820044", "mm[Hg]"), "Blood pressure: 120/82 mmHg"},
		{"BP under another panel code", bp("55284-4", "128", "79", "mmHg"), "Blood pressure: 128/79 mmHg"},
		{"height as written", obs("8302-2", "Body height", `{"value":178.4,"unit":"cm","system":"http://unitsofmeasure.org","code":"cm"}`), "Body height: 178.4 cm"},
		{"height with float noise", obs("8302-2", "Body height", `{"value":178.39999999999998,"unit":"cm","system":"http://unitsofmeasure.org","code":"cm"}`), "Body height: 178.4 cm"},
		{"weight converted from pounds", obs("29463-7", "Body weight", `{"value":81.69998963820044,"unit":"kg","system":"http://unitsofmeasure.org","code":"kg"}`), "Body weight: 81.7 kg"},
		{"weight with more decimals than the table, as written", obs("29463-7", "Body weight", `{"value":81.725,"unit":"kg"}`), "Body weight: 81.725 kg"},
		{"weight in UCUM pounds", obs("29463-7", "Body weight", `{"value":180,"unit":"[lb_av]","system":"http://unitsofmeasure.org","code":"[lb_av]"}`), "Body weight: 180 lb"},
		{"temperature in Cel", obs("8310-5", "Body temperature", `{"value":37.2,"unit":"Cel","system":"http://unitsofmeasure.org","code":"Cel"}`), "Body temperature: 37.2 °C"},
		{"heart rate in /min", obs("8867-4", "Heart rate", `{"value":72,"unit":"/min","system":"http://unitsofmeasure.org","code":"/min"}`), "Heart rate: 72 bpm"},
		{"heart rate with its own unit text", obs("8867-4", "Heart rate", `{"value":72,"unit":"beats/minute","system":"http://unitsofmeasure.org","code":"/min"}`), "Heart rate: 72 beats/minute"},
		{"respiratory rate", obs("9279-1", "Respiratory rate", `{"value":16,"unit":"/min","system":"http://unitsofmeasure.org","code":"/min"}`), "Respiratory rate: 16 breaths/min"},
		{"pain score", obs("72514-3", "Pain severity", `{"value":2,"unit":"{score}","system":"http://unitsofmeasure.org","code":"{score}"}`), "Pain severity: 2/10"},
		{"SpO2 from a float32 fraction", obs("59408-5", "Oxygen saturation", `{"value":97.00000286102295,"unit":"%","system":"http://unitsofmeasure.org","code":"%"}`), "Oxygen saturation: 97 %"},
		{"unit code only", obs("8867-4", "Heart rate", `{"value":72,"system":"http://unitsofmeasure.org","code":"/min"}`), "Heart rate: 72 bpm"},
		{"lab value as written", obs("2345-7", "Glucose", `{"value":5.10,"unit":"mmol/L"}`), "Glucose: 5.10 mmol/L"},
		{"lab value with float noise", obs("2345-7", "Glucose", `{"value":48.74499999999999,"unit":"mg/dL"}`), "Glucose: 48.745 mg/dL"},
		{"lab value in UCUM micro units", obs("1989-3", "Vitamin D", `{"value":30,"unit":"ug/L","system":"http://unitsofmeasure.org","code":"ug/L"}`), "Vitamin D: 30 µg/L"},
		{"lab count unit", obs("6690-2", "Leukocytes", `{"value":6.2,"unit":"10*3/uL","system":"http://unitsofmeasure.org","code":"10*3/uL"}`), "Leukocytes: 6.2 ×10³/µL"},
		{"small value kept", obs("1234-5", "Trace", `{"value":0.000123,"unit":"mg/L"}`), "Trace: 0.000123 mg/L"},
		{"large whole number kept", obs("1234-5", "Count", `{"value":12345678901234,"unit":"{cells}"}`), "Count: 12345678901234 cells"},
		{"noise without a vital's precision, many digits left", obs("1234-5", "Ratio", `{"value":0.12345678901234,"unit":"1"}`), "Ratio: 0.123457 1"},
		{"comparator", obs("1234-5", "CRP", `{"value":0.5,"comparator":"<","unit":"mg/L"}`), "CRP: <0.5 mg/L"},
		{"non-UCUM system keeps its code", obs("1234-5", "X", `{"value":3,"system":"http://example.org/units","code":"mm[Hg]"}`), "X: 3 mm[Hg]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := Parse([]byte(tt.res))
			if err != nil {
				t.Fatal(err)
			}
			if got := DisplayOf(res); got != tt.want {
				t.Errorf("DisplayOf = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestUnitSymbol(t *testing.T) {
	tests := []struct {
		code, want string
		changed    bool
	}{
		{"mm[Hg]", "mmHg", true}, {"[lb_av]", "lb", true}, {"Cel", "°C", true}, {"/min", "/min", true},
		{"{tablet}", "tablet", true}, {"{score}", "", true}, {"mg/dL", "mg/dL", false}, {"%", "%", false},
		{"{a}{b}", "{a}{b}", false},
	}
	for _, tt := range tests {
		if got, ok := UnitSymbol(tt.code); got != tt.want || ok != tt.changed {
			t.Errorf("UnitSymbol(%q) = %q, %v; want %q, %v", tt.code, got, ok, tt.want, tt.changed)
		}
	}
}

func TestDisplayNumber(t *testing.T) {
	tests := []struct {
		in       string
		decimals int
		want     string
	}{
		{"120", 0, "120"}, {"120.0", 0, "120.0"}, {"81.69998963820044", 1, "81.7"}, {"81.69998963820044", -1, "81.7"},
		{"70.00000000000001", 1, "70"}, {"-0.0000000000001", 0, "-0.0000000000001"}, {"-0.0000000001234567891", 0, "0"}, {"1e-7", -1, "1e-7"},
		{"1.2345678901234e-7", -1, "0.000000123457"}, {"99.99999999999999", 0, "100"},
	}
	for _, tt := range tests {
		if got := displayNumber(json.Number(tt.in), tt.decimals); got != tt.want {
			t.Errorf("displayNumber(%s, %d) = %q, want %q", tt.in, tt.decimals, got, tt.want)
		}
	}
}
