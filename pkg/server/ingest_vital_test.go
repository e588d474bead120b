package server

import (
	"errors"
	"strings"
	"testing"

	"github.com/phr-project/phr/pkg/record"
	"github.com/phr-project/phr/pkg/server/api"
)

// TestBuildReadingVitalTable checks that device readings follow the
// vital-sign table of pkg/record: every vital it lists is accepted by its
// kind or an alias, in the table's units, and nothing else.
func TestBuildReadingVitalTable(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	tests := []struct {
		rd        api.Reading
		code      string // LOINC code of the Observation
		display   string
		errField  string
		errSubstr string
	}{
		{api.Reading{Type: api.ReadingHeartRate, Value: f(72), Unit: "beats/min"}, record.LoincHeartRate, "Heart rate: 72 bpm", "", ""},
		{api.Reading{Type: "pulse", Value: f(72)}, record.LoincHeartRate, "Heart rate: 72 bpm", "", ""},
		{api.Reading{Type: api.ReadingBP, Value: f(120), Value2: f(80), Unit: "mm[Hg]"}, record.LoincBP, "Blood pressure: 120/80 mmHg", "", ""},
		{api.Reading{Type: api.ReadingWeight, Value: f(154), Unit: "[lb_av]"}, record.LoincWeight, "Body weight: 154 lb", "", ""},
		{api.Reading{Type: "temp", Value: f(37.2), Unit: "Cel"}, record.LoincTemperature, "Body temperature: 37.2 °C", "", ""},
		{api.Reading{Type: "height", Value: f(178.4), Unit: "cm"}, record.LoincHeight, "Body height: 178.4 cm", "", ""},
		{api.Reading{Type: "respiratory_rate", Value: f(16)}, record.LoincRespRate, "Respiratory rate: 16 breaths/min", "", ""},
		{api.Reading{Type: "bmi", Value: f(24.3)}, record.LoincBMI, "Body mass index: 24.3 kg/m²", "", ""},
		{api.Reading{Type: "pain", Value: f(3)}, record.LoincPain, "Pain severity: 3/10", "", ""},
		{api.Reading{Type: api.ReadingGlucose, Value: f(100)}, "", "", "unit", "mg/dL or mmol/L"},
		{api.Reading{Type: "height", Value: f(178)}, "", "", "unit", "cm or m or [in_i]"},
		{api.Reading{Type: api.ReadingBP, Value: f(120)}, "", "", "value2", "diastolic"},
		{api.Reading{Type: api.ReadingHeartRate, Value: f(72), Value2: f(1)}, "", "", "value2", "bp only"},
		{api.Reading{Type: "pain", Value: f(12)}, "", "", "value", "plausible"},
		{api.Reading{Type: "mood", Value: f(3)}, "", "", "type", "pain"},
	}
	for _, tt := range tests {
		t.Run(tt.rd.Type+" "+tt.rd.Unit, func(t *testing.T) {
			tt.rd.ID, tt.rd.At = "r1", "2026-05-01T08:00:00Z"
			rec, err := buildReading(record.Common{Subject: "Patient/p"}, tt.rd)
			if tt.errField != "" {
				var ie *record.InputError
				if !errors.As(err, &ie) || ie.Field != tt.errField || !strings.Contains(ie.Msg, tt.errSubstr) {
					t.Fatalf("err = %v, want field %s with %q", err, tt.errField, tt.errSubstr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			res, _ := record.Parse(rec.Resource)
			if !res.HasCoding("code", record.LOINC, tt.code) || rec.Display != tt.display {
				t.Errorf("codes %v display %q, want %s %q", res.Codings("code"), rec.Display, tt.code, tt.display)
			}
		})
	}
}
