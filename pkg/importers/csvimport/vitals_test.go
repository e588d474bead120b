package csvimport

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/phr-project/phr/pkg/importers/importertest"
	"github.com/phr-project/phr/pkg/record"
)

// TestVitalRows checks vital rows against record's vital-sign table: the
// vitals it added (height, BMI, respiratory rate, pain), the names people
// write (pulse) and the unit spellings of spreadsheets and devices. The
// rows are written for this test: no shared file has them.
func TestVitalRows(t *testing.T) {
	tests := []struct {
		name, value, unit string
		display           string
		code              string
		errCol            string
	}{
		{"pulse", "64", "", "Heart rate: 64 bpm", record.LoincHeartRate, ""},
		{"Heart Rate", "64", "beats/min", "Heart rate: 64 bpm", record.LoincHeartRate, ""},
		{"blood pressure", "120/80", "mm[Hg]", "Blood pressure: 120/80 mmHg", record.LoincBP, ""},
		{"weight", "160", "pounds", "Body weight: 160 lb", record.LoincWeight, ""},
		{"temp", "37.1", "Cel", "Body temperature: 37.1 °C", record.LoincTemperature, ""},
		{"height", "178.4", "cm", "Body height: 178.4 cm", record.LoincHeight, ""},
		{"body height", "70", "in", "Body height: 70 in", record.LoincHeight, ""},
		{"bmi", "24.3", "", "Body mass index: 24.3 kg/m²", record.LoincBMI, ""},
		{"respiratory rate", "16", "/min", "Respiratory rate: 16 breaths/min", record.LoincRespRate, ""},
		{"pain", "4", "", "Pain severity: 4/10", record.LoincPain, ""},
		{"pain score", "4", "/10", "Pain severity: 4/10", record.LoincPain, ""},
		{"pain", "4.5", "", "", "", "value"},
		{"height", "178", "", "", "", "value"},
		{"height", "178", "furlong", "", "", "value,unit"},
		{"mood", "5", "", "", "", "name"},
	}
	for _, tt := range tests {
		t.Run(tt.name+" "+tt.value+tt.unit, func(t *testing.T) {
			data := "type,name,value,unit,date\nvital," + tt.name + "," + tt.value + "," + tt.unit + ",2024-03-01\n"
			s := &importertest.Sink{}
			if err := New().Import(context.Background(), importertest.Input("v.csv", []byte(data), nil), s); err != nil {
				t.Fatal(err)
			}
			if tt.errCol != "" {
				if len(s.Fails) != 1 || !strings.Contains(s.Fails[0].Error(), tt.errCol+":") {
					t.Fatalf("fails %v, want one naming %s", s.Fails, tt.errCol)
				}
				if strings.Contains(s.Fails[0].Error(), tt.value) && tt.errCol != "name" {
					t.Errorf("error quotes the value: %v", s.Fails[0])
				}
				return
			}
			if len(s.Fails) > 0 || len(s.Records) != 1 {
				t.Fatalf("records %d fails %v", len(s.Records), s.Fails)
			}
			r := s.Records[0]
			res, _ := record.Parse(r.Resource)
			if r.Display != tt.display || !res.HasCoding("code", record.LOINC, tt.code) || res.Str("effectiveDateTime") != "2024-03-01" {
				t.Errorf("display %q code %v date %q", r.Display, res.Codings("code"), res.Str("effectiveDateTime"))
			}
		})
	}
}

// TestVitalTableDocumented checks that docs/formats/csv.md lists every
// vital of the table with its LOINC codes.
func TestVitalTableDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../../docs/formats/csv.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range record.VitalSigns() {
		var row string
		for line := range strings.SplitSeq(string(doc), "\n") {
			if strings.HasPrefix(line, "| `"+v.Kind+"` |") {
				row = line
			}
		}
		if row == "" {
			t.Errorf("csv.md has no row for vital %s", v.Kind)
			continue
		}
		for _, c := range v.Codes {
			if !strings.Contains(row, c.Code) {
				t.Errorf("csv.md row of %s lacks LOINC %s", v.Kind, c.Code)
			}
		}
		for _, u := range v.Units {
			for _, c := range u.Codes {
				if !strings.Contains(row, c.Code) {
					t.Errorf("csv.md row of %s lacks LOINC %s", v.Kind, c.Code)
				}
			}
		}
	}
}

// TestTimeWithoutZone checks that a time without an offset is kept as
// written when no time zone is given (the same file gives the same records
// on every machine), and takes the given zone's offset otherwise.
func TestTimeWithoutZone(t *testing.T) {
	data := []byte("type,name,value,unit,date\nvital,hr,64,,2024-03-01 08:30\nlab,Sodium,140,mmol/L,2024-03-01T08:30:15\n")
	tests := []struct {
		opts map[string]string
		want []string
	}{
		{nil, []string{"2024-03-01T08:30:00", "2024-03-01T08:30:15"}},
		{map[string]string{OptionTimezone: "America/New_York"}, []string{"2024-03-01T08:30:00-05:00", "2024-03-01T08:30:15-05:00"}},
	}
	for _, tt := range tests {
		s := &importertest.Sink{}
		if err := New().Import(context.Background(), importertest.Input("t.csv", data, tt.opts), s); err != nil || len(s.Fails) > 0 {
			t.Fatal(err, s.Fails)
		}
		for i, r := range s.Records {
			res, _ := record.Parse(r.Resource)
			if got := res.Str("effectiveDateTime"); got != tt.want[i] {
				t.Errorf("%v: record %d effectiveDateTime %q, want %q", tt.opts, i, got, tt.want[i])
			}
		}
	}
}
