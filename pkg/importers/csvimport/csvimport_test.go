package csvimport

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/phr-project/phr/pkg/importers"
	"github.com/phr-project/phr/pkg/importers/importertest"
	"github.com/phr-project/phr/pkg/record"
)

// utc pins times without an offset, so that the tests do not depend on
// the machine's time zone.
var utc = map[string]string{OptionTimezone: "UTC"}

func importFile(t *testing.T, path string, opts map[string]string) (*importertest.Sink, error) {
	t.Helper()
	return importertest.Import(New(), path, importertest.ReadFile(t, path), opts)
}

func TestDetect(t *testing.T) {
	imp := New()
	if imp.Name() != "csv" {
		t.Fatalf("Name() = %q", imp.Name())
	}
	tests := []struct {
		name string
		head string
		want bool
	}{
		{"template header", "type,name,value,unit,date\nvital,hr,72,,2024-01-01\n", true},
		{"any order, case, spaces", " Name , TYPE ,Date\r\n", true},
		{"BOM", "\xef\xbb\xbftype,name\n", true},
		{"comment first", "# my meds\n\ntype,name,value\n", true},
		{"quoted header", `"type","name"` + "\n", true},
		{"header without newline", "type,name", true},
		{"no name column", "type,value,unit\n", false},
		{"other CSV", "date,steps\n2024-01-01,100\n", false},
		{"semicolons", "type;name;value\n", false},
		{"FHIR JSON", `{"resourceType":"Bundle","type":"collection","name":"x"}`, false},
		{"XML", `<HealthData locale="en_US">`, false},
		{"NDJSON", `{"resourceType":"Patient","id":"1"}` + "\n", false},
		{"empty", "", false},
		{"long first line", strings.Repeat("x", importers.DetectSize), false},
	}
	for _, tt := range tests {
		if got := imp.Detect([]byte(tt.head)); got != tt.want {
			t.Errorf("%s: Detect = %v, want %v", tt.name, got, tt.want)
		}
	}
	// No real file of another format is claimed.
	for _, p := range importertest.CheckDetectShared(t, imp, nil) {
		t.Error(p)
	}
	for _, p := range []string{"testdata/good.csv", "testdata/bom.csv", "testdata/bad.csv"} {
		data, _ := os.ReadFile(p)
		if !imp.Detect(data) {
			t.Errorf("Detect does not claim %s", p)
		}
	}
}

func TestImportGood(t *testing.T) {
	s, err := importFile(t, "testdata/good.csv", map[string]string{OptionTimezone: "Europe/Berlin", OptionSource: "Dr. Example's office"})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range s.Fails {
		t.Errorf("fail: %v", f)
	}
	type want struct {
		kind    string
		display string
		checks  map[string]string
	}
	wants := []want{
		{record.KindMedication, "Metformin 500 mg tablet — 500 mg", map[string]string{
			"resourceType": "MedicationStatement", "status": "active",
			"medicationCodeableConcept.coding.0.system": record.RxNorm, "medicationCodeableConcept.coding.0.code": "861007",
			"effectivePeriod.start": "2024-01-05", "dosage.0.doseAndRate.0.doseQuantity.value": "500",
			"dosage.0.doseAndRate.0.doseQuantity.code": "mg", "note.0.text": "twice daily, with food"}},
		{record.KindMedication, "Amoxicillin — 250 mg — stopped 2023-11-12", map[string]string{
			"status": "completed", "effectivePeriod.start": "2023-11-02", "effectivePeriod.end": "2023-11-12"}},
		{record.KindMedication, "Ibuprofen, 200 mg — 2 tablets", map[string]string{
			"status": "active", "dosage.0.doseAndRate.0.doseQuantity.code": "{tablet}", "effectivePeriod.start": ""}},
		{record.KindLab, "Hemoglobin A1c: 6.1 %", map[string]string{
			"resourceType": "Observation", "status": "final", "category.0.coding.0.code": "laboratory",
			"code.coding.0.system": record.LOINC, "code.coding.0.code": "4548-4", "effectiveDateTime": "2024-02-10",
			"valueQuantity.code": "%", "valueQuantity.system": record.UCUM}},
		{record.KindLab, "Glucose [Mass/volume] in Serum or Plasma: 98 mg/dl", map[string]string{
			"code.coding.0.code": "2345-7", "effectiveDateTime": "2024-02-10T08:15:00+01:00", "valueQuantity.code": "mg/dL", "note.0.text": "fasting"}},
		{record.KindLab, "SARS-CoV-2 RNA: negative", map[string]string{"valueString": "negative", "code.coding.0.code": "94500-6"}},
		{record.KindLab, "Creatinine: <0.5 mg/dL", map[string]string{
			"status": "preliminary", "valueQuantity.comparator": "<", "valueQuantity.value": "0.5",
			"effectiveDateTime": "2024-02-10T08:15:00+01:00", "note.0.text": "first line\nsecond line, with a comma\nand a \"quoted\" word"}},
		{record.KindVital, "Blood pressure: 120/80 mmHg", map[string]string{
			"code.coding.0.code": record.LoincBP, "component.0.code.coding.0.code": record.LoincSystolic,
			"component.1.valueQuantity.value": "80", "component.1.valueQuantity.code": "mm[Hg]", "effectiveDateTime": "2024-03-01T08:30:00+01:00"}},
		{record.KindVital, "Body weight: 72.5 kg", map[string]string{"code.coding.0.code": record.LoincWeight, "effectiveDateTime": "2024-03-01", "note.0.text": "after breakfast"}},
		{record.KindVital, "Body temperature: 98.6 °F", map[string]string{"code.coding.0.code": record.LoincTemperature, "valueQuantity.code": "[degF]", "effectiveDateTime": "2024-03-02T21:00:00+01:00"}},
		{record.KindVital, "Heart rate: 64 bpm", map[string]string{"code.coding.0.code": record.LoincHeartRate, "valueQuantity.code": "/min"}},
		{record.KindVital, "Blood glucose: 5.4 mmol/L", map[string]string{"code.coding.0.code": record.LoincGlucoseMol}},
		{record.KindVital, "Oxygen saturation: 97 %", map[string]string{"code.coding.0.code": record.LoincSpO2, "status": "amended"}},
	}
	if len(s.Records) != len(wants) {
		for _, r := range s.Records {
			t.Logf("%s", r.Display)
		}
		t.Fatalf("%d records, want %d", len(s.Records), len(wants))
	}
	for i, w := range wants {
		r := s.Records[i]
		if r.Kind != w.kind || r.Display != w.display {
			t.Errorf("record %d: kind %q display %q, want %q %q", i, r.Kind, r.Display, w.kind, w.display)
		}
		res, err := record.Parse(r.Resource)
		if err != nil {
			t.Fatal(err)
		}
		for path, v := range w.checks {
			if got := res.Str(path); got != v {
				t.Errorf("record %d (%s): %s = %q, want %q", i, w.display, path, got, v)
			}
		}
		if id := res.ID(); !strings.HasPrefix(id, "csv-") || len(id) != 36 {
			t.Errorf("record %d: id %q", i, id)
		}
		p := r.Provenance
		if p.Method != record.MethodImported || p.Importer != "csv" || p.File != "good.csv" || p.System != "Dr. Example's office" || p.OriginalID != "" || len(p.FileSHA256) != 64 {
			t.Errorf("record %d: provenance %+v", i, p)
		}
	}
}

func TestBOMAndCRLF(t *testing.T) {
	s, err := importFile(t, "testdata/bom.csv", utc)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Records) != 2 || len(s.Fails) != 0 {
		t.Fatalf("%d records, fails %v", len(s.Records), s.Fails)
	}
	if s.Records[0].Display != "Heart rate: 72 bpm" || s.Records[1].Display != "Lisinopril — 10 mg" {
		t.Errorf("displays %q, %q", s.Records[0].Display, s.Records[1].Display)
	}
	if s.Records[0].Provenance.System != "" {
		t.Errorf("system %q without the source option", s.Records[0].Provenance.System)
	}
}

func TestBadRows(t *testing.T) {
	s, err := importFile(t, "testdata/bad.csv", utc)
	if err != nil {
		t.Fatal(err)
	}
	got := s.FailPositions(t, "testdata/bad.csv", "Peanuts", "allergy", "4548-5", "10/02/2024", "80/120", "stone", "Aspirin", "done", "seventy", "13.5", "five", "Warfarin", "Ferritin", "1234-5")
	want := []importertest.Position{
		{Line: 2, Path: "name"},
		{Line: 3, Path: "type"},
		{Line: 4, Path: "code"},
		{Line: 5, Path: "date"},
		{Line: 6, Path: "value,unit"},
		{Line: 7, Path: "value,unit"},
		{Line: 8, Path: "end_date"},
		{Line: 9, Path: "status"},
		{Line: 10, Path: "row"},
		{Line: 11, Path: "value"},
		{Line: 12, Path: "row"},
		{Line: 13, Path: "value"},
		{Line: 14, Path: "date"},
		{Line: 15, Path: "code"},
	}
	if !slices.Equal(got, want) {
		t.Errorf("fails at\n%v\nwant\n%v", got, want)
		for _, f := range s.Fails {
			t.Log(f)
		}
	}
	if len(s.Records) != 1 || s.Records[0].Display != "Vitamin D: 30 ng/mL" {
		t.Errorf("records %v", s.Records)
	}
}

func TestMalformedFiles(t *testing.T) {
	tests := []struct {
		name string
		data string
		line int
		err  error
		msg  string
	}{
		{"empty", "", 1, ErrHeader, "empty"},
		{"comments only", "# nothing\n", 1, ErrHeader, "empty"},
		{"unknown column", "type,name,dose,frequency\n", 1, ErrHeader, `unknown column "dose", "frequency"`},
		{"repeated column", "type,name,Type\n", 1, ErrHeader, `"type" appears twice`},
		{"no name column", "type,value\n", 1, ErrHeader, `no "name" column`},
		{"header after comments", "# x\n# y\ntype,foo\n", 3, ErrHeader, "unknown column"},
		{"truncated quoted field", "", 3, ErrUnterminated, "truncated"},
		{"binary header", "type,name\x00,\"x\n", 1, nil, ""},
	}
	trunc, _ := os.ReadFile("testdata/truncated.csv")
	tests[6].data = string(trunc)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &importertest.Sink{}
			err := New().Import(context.Background(), importertest.Input("in.csv", []byte(tt.data), utc), s)
			var pe *importers.ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("err = %v, want *ParseError", err)
			}
			if pe.Line != tt.line || pe.File != "in.csv" {
				t.Errorf("at %s:%d, want line %d: %v", pe.File, pe.Line, tt.line, err)
			}
			if tt.err != nil && !errors.Is(err, tt.err) || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("err = %v", err)
			}
		})
	}
	// The truncated file's first row was read before the end was found;
	// the caller drops it unless --partial.
}

func TestRowTooLong(t *testing.T) {
	data := "type,name,value,unit,date,end_date,code,code_system,status,note\nvital,hr,72,,2024-01-01,,,,,\nlab,x,1,,2024-01-01,,,,,\"" + strings.Repeat("a", MaxRowBytes+1<<17) + "\"\n"
	err := New().Import(context.Background(), importertest.Input("in.csv", []byte(data), utc), &importertest.Sink{})
	var pe *importers.ParseError
	if !errors.As(err, &pe) || !errors.Is(err, ErrRowTooLong) || pe.Line != 3 {
		t.Fatalf("err = %v", err)
	}
}

func TestOptions(t *testing.T) {
	data := []byte("type,name,value,date\nvital,hr,72,2024-01-01T08:00\n")
	if err := New().Import(context.Background(), importertest.Input("in.csv", data, map[string]string{OptionTimezone: "Nowhere/Special"}), &importertest.Sink{}); err == nil {
		t.Error("unknown time zone accepted")
	}
	s := &importertest.Sink{}
	if err := New().Import(context.Background(), importertest.Input("in.csv", data, map[string]string{OptionTimezone: "America/New_York"}), s); err != nil {
		t.Fatal(err)
	}
	res, _ := record.Parse(s.Records[0].Resource)
	if got := res.Str("effectiveDateTime"); got != "2024-01-01T08:00:00-05:00" {
		t.Errorf("effectiveDateTime %q", got)
	}
}

func TestReimportSameFingerprints(t *testing.T) {
	a, err := importFile(t, "testdata/good.csv", utc)
	if err != nil {
		t.Fatal(err)
	}
	b, err := importFile(t, "testdata/good.csv", utc)
	if err != nil {
		t.Fatal(err)
	}
	if fa, fb := a.Fingerprints(), b.Fingerprints(); !slices.Equal(fa, fb) || len(fa) != 13 {
		t.Fatalf("fingerprints differ or missing: %d vs %d", len(fa), len(fb))
	}
	for i := range a.Records {
		if !bytes.Equal(a.Records[i].Resource, b.Records[i].Resource) {
			t.Errorf("resource %d differs between imports", i)
		}
		if a.Records[i].ID == b.Records[i].ID {
			t.Errorf("record %d: IDs should be fresh", i)
		}
	}
	// The same row in another file, at another line, is the same resource.
	data := []byte("# moved\nname,type,value,unit,date\nWeight,vital,72.5,kg,2024-03-01\n")
	s := &importertest.Sink{}
	if err := New().Import(context.Background(), importertest.Input("other.csv", data, utc), s); err != nil {
		t.Fatal(err)
	}
	var weight *record.Record
	for i := range a.Records {
		if a.Records[i].Display == "Body weight: 72.5 kg" {
			weight = &a.Records[i]
		}
	}
	res, _ := record.Parse(weight.Resource)
	delete(res, "note") // the good file's weight row has a note
	other, _ := record.Parse(s.Records[0].Resource)
	delete(res, "id")
	delete(other, "id")
	if string(mustJSON(t, res)) != string(mustJSON(t, other)) {
		t.Errorf("same reading, different resources:\n%s\n%s", mustJSON(t, res), mustJSON(t, other))
	}
}

func TestValidLOINC(t *testing.T) {
	for _, c := range []string{"8867-4", "29463-7", "4548-4", "2345-7", "94500-6", "85354-9", "8480-6", "8462-4", "59408-5", "15074-8", "2339-0", "1-8"} {
		if !ValidLOINC(c) {
			t.Errorf("ValidLOINC(%q) = false", c)
		}
	}
	for _, c := range []string{"8867-5", "8867", "-4", "8867-", "88a7-4", "8867-44", "12345678-9", ""} {
		if ValidLOINC(c) {
			t.Errorf("ValidLOINC(%q) = true", c)
		}
	}
}

func TestSinkErrorStops(t *testing.T) {
	data, _ := os.ReadFile("testdata/good.csv")
	stop := errors.New("stop")
	s := &stopSink{err: stop}
	if err := New().Import(context.Background(), importertest.Input("good.csv", data, utc), s); !errors.Is(err, stop) {
		t.Errorf("err = %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := New().Import(ctx, importertest.Input("good.csv", data, utc), &importertest.Sink{}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}

type stopSink struct {
	importertest.Sink
	err error
}

func (s *stopSink) Record(record.Record) error { return s.err }

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
