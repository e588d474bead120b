package applehealth

import (
	"archive/zip"
	"bufio"
	"bytes"
	"context"
	"errors"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/phr-project/phr/pkg/importers"
	"github.com/phr-project/phr/pkg/importers/importertest"
	"github.com/phr-project/phr/pkg/record"
)

var (
	ashtom      = td + "apple-health/ashtom-hkimport/Data/export.xml"
	dogsheep    = td + "apple-health/dogsheep-healthkit-to-sqlite/tests/export.xml"
	dogsheepZip = td + "apple-health/dogsheep-healthkit-to-sqlite/tests/zip_contents"
)

// zipDir builds an export.zip in memory from a directory laid out as the
// Health app writes it (apple_health_export/...).
func zipDir(t testing.TB, dir string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	// The Health app writes export.xml first; keep that order.
	var names []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		names = append(names, filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(names, func(a, b string) int {
		if strings.HasSuffix(a, "/export.xml") != strings.HasSuffix(b, "/export.xml") {
			if strings.HasSuffix(a, "/export.xml") {
				return -1
			}
			return 1
		}
		return strings.Compare(a, b)
	})
	for _, n := range names {
		w, err := zw.Create(n)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(importertest.ReadFile(t, filepath.Join(dir, filepath.FromSlash(n)))); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestDetect(t *testing.T) {
	imp := New()
	if imp.Name() != "apple-health" {
		t.Fatalf("Name() = %q", imp.Name())
	}
	ashtomData := importertest.ReadFile(t, ashtom)
	otherZip := func() []byte {
		var buf bytes.Buffer
		zw := zip.NewWriter(&buf)
		w, _ := zw.Create("export.xml")
		w.Write([]byte("<HealthData/>"))
		zw.Close()
		return buf.Bytes()
	}()
	tests := []struct {
		name string
		head []byte
		want bool
	}{
		{"ashtom export", importertest.Head(ashtomData), true},
		{"ashtom export cut inside the DTD", ashtomData[:1000], true},
		{"dogsheep export (no prolog)", importertest.Head(importertest.ReadFile(t, dogsheep)), true},
		{"export.zip", importertest.Head(zipDir(t, dogsheepZip)), true},
		{"BOM, prolog and comment", []byte("\xef\xbb\xbf<?xml version=\"1.0\"?>\n<!-- x -->\n<HealthData locale=\"en_US\">"), true},
		{"DOCTYPE cut by the head", []byte("<?xml version=\"1.0\"?><!DOCTYPE HealthData"), true},
		{"other zip", importertest.Head(otherZip), false},
		{"C-CDA", []byte(`<?xml version="1.0"?><ClinicalDocument xmlns="urn:hl7-org:v3">`), false},
		{"HealthDataX root", []byte(`<HealthDataX>`), false},
		{"FHIR JSON", []byte(`{"resourceType":"Bundle","type":"collection"}`), false},
		{"SHC file", []byte(`{"verifiableCredential":["eyJ..."]}`), false},
		{"CSV", []byte("type,name,value,unit,date\n"), false},
		{"empty", nil, false},
		{"truncated zip header", []byte("PK\x03\x04\x14\x00"), false},
	}
	for _, tt := range tests {
		if got := imp.Detect(tt.head); got != tt.want {
			t.Errorf("%s: Detect = %v, want %v", tt.name, got, tt.want)
		}
	}
	// No other format's real files are claimed.
	for _, p := range importertest.CheckDetectShared(t, imp, func(path string) bool { return strings.Contains(path, "apple-health") }) {
		t.Error(p)
	}
}

var (
	recordLine = regexp.MustCompile(`^ <Record type="([A-Za-z0-9]+)"`)
	attrRe     = regexp.MustCompile(`([A-Za-z]+)="([^"]*)"`)
)

// scanLines counts, independently of the importer, the top-level items of
// an export written one item per line with one space of indent.
func scanLines(t *testing.T, path string) (records map[string]int, workouts, correlations int) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	records = map[string]int{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if m := recordLine.FindStringSubmatch(line); m != nil {
			records[m[1]]++
		}
		if strings.HasPrefix(line, " <Workout ") {
			workouts++
		}
		if strings.HasPrefix(line, " <Correlation ") {
			correlations++
		}
	}
	return records, workouts, correlations
}

// codes counts records by the first coding of their code.
func codes(t *testing.T, recs []record.Record) map[string]int {
	t.Helper()
	m := map[string]int{}
	for _, r := range recs {
		res, err := record.Parse(r.Resource)
		if err != nil {
			t.Fatal(err)
		}
		cs := res.Codings("code")
		if len(cs) > 0 {
			m[cs[0].Code]++
		}
	}
	return m
}

func TestImportAshtom(t *testing.T) {
	counts, workouts, correlations := scanLines(t, ashtom)
	total := 0
	for _, n := range counts {
		total += n
	}
	if total != 10939 || workouts != 61 || correlations != 34 {
		t.Fatalf("test premise: %d top-level records, %d workouts, %d correlations", total, workouts, correlations)
	}
	s, err := importBytes(t, ashtom, importertest.ReadFile(t, ashtom), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Fails) != 0 {
		t.Fatalf("fails: %v", s.Fails)
	}
	// Every top-level record and workout is one Observation; the 162
	// records inside the 34 food correlations are duplicates of top-level
	// ones and are not imported twice.
	if got, want := s.Counts(), map[string]int{"Observation": total + workouts}; !maps.Equal(got, want) {
		t.Errorf("by type = %v, want %v", got, want)
	}
	if n := s.SkipCounts()["Observation: correlation (Food): its samples are imported as top-level records"]; n != correlations {
		t.Errorf("food correlations skipped = %d, want %d (skips %v)", n, correlations, s.SkipCounts())
	}
	if n := s.SkipCounts()["Patient: "+skipNoPatient]; n != 1 {
		t.Errorf("Patient skipped %d times, want 1", n)
	}
	byCode := codes(t, s.Records)
	for code, hk := range map[string]string{
		"8867-4":  "HKQuantityTypeIdentifierHeartRate",
		"55423-8": "HKQuantityTypeIdentifierStepCount",
		"41981-2": "HKQuantityTypeIdentifierActiveEnergyBurned",
		"29463-7": "HKQuantityTypeIdentifierBodyMass",
		"2339-0":  "HKQuantityTypeIdentifierBloodGlucose",
		"93832-4": "HKCategoryTypeIdentifierSleepAnalysis",
	} {
		if byCode[code] != counts[hk] || counts[hk] == 0 {
			t.Errorf("LOINC %s: %d records, want %d (%s)", code, byCode[code], counts[hk], hk)
		}
	}
	if byCode["55411-3"] != workouts {
		t.Errorf("workouts: %d, want %d", byCode["55411-3"], workouts)
	}
	// Types without LOINC keep the HealthKit identifier as their code.
	hk := 0
	for _, r := range s.Records {
		res, _ := record.Parse(r.Resource)
		if cs := res.Codings("code"); cs[0].System == HealthKitSystem && cs[0].Code == "HKQuantityTypeIdentifierDistanceWalkingRunning" {
			hk++
		}
	}
	if hk != counts["HKQuantityTypeIdentifierDistanceWalkingRunning"] {
		t.Errorf("walking distance: %d, want %d", hk, counts["HKQuantityTypeIdentifierDistanceWalkingRunning"])
	}

	// The first record of the file, checked field by field:
	// <Record type="HKQuantityTypeIdentifierBloodGlucose" ... unit="mg/dL"
	// creationDate="2017-03-30 09:29:59 +0200" startDate="2017-03-30 09:29:00 +0200" ... value="81">
	r := s.Records[0]
	res, _ := record.Parse(r.Resource)
	checks := map[string]string{
		"code.coding.0.code":       "2339-0",
		"code.coding.1.code":       "HKQuantityTypeIdentifierBloodGlucose",
		"effectiveDateTime":        "2017-03-30T09:29:00+02:00",
		"issued":                   "2017-03-30T09:29:59+02:00",
		"valueQuantity.value":      "81",
		"valueQuantity.code":       "mg/dL",
		"valueQuantity.system":     record.UCUM,
		"category.0.coding.0.code": "vital-signs",
	}
	for path, want := range checks {
		if got := res.Str(path); got != want {
			t.Errorf("first record %s = %q, want %q", path, got, want)
		}
	}
	if r.Kind != record.KindVital || r.Display != "Blood glucose: 81 mg/dL" {
		t.Errorf("first record kind %q display %q", r.Kind, r.Display)
	}
	if !strings.HasPrefix(res.ID(), "ah-") || len(res.ID()) != 35 {
		t.Errorf("resource id %q", res.ID())
	}
	p := r.Provenance
	if p.Method != record.MethodImported || p.Importer != "apple-health" || p.File != "export.xml" || p.System != "Apple Health" || p.OriginalID != "" || len(p.FileSHA256) != 64 {
		t.Errorf("provenance %+v", p)
	}
	// The last item is a running workout of 60 min with 69 kcal.
	last, _ := record.Parse(s.Records[len(s.Records)-1].Resource)
	if last.Str("code.coding.0.code") != "55411-3" || last.Str("valueQuantity.value") != "60" ||
		last.Str("effectivePeriod.start") != "2017-10-31T17:08:08+02:00" || last.Str("component.0.valueCodeableConcept.text") != "Running" ||
		last.Str("component.2.valueQuantity.value") != "69" || last.Str("component.2.valueQuantity.code") != "kcal" {
		t.Errorf("last workout: %s", s.Records[len(s.Records)-1].Resource)
	}
}

func TestImportDogsheep(t *testing.T) {
	s, err := importBytes(t, dogsheep, importertest.ReadFile(t, dogsheep), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Counts(); !maps.Equal(got, map[string]int{"Patient": 1, "Observation": 3}) || len(s.Fails) != 0 {
		t.Fatalf("by type %v, fails %v", got, s.Fails)
	}
	if s.SkipCounts()[": "+skipRoute] != 1 || s.SkipCounts()["Observation: "+skipSummary] != 2 {
		t.Errorf("skips %v", s.SkipCounts())
	}
	want := []map[string]string{
		{"resourceType": "Patient", "birthDate": "1990-02-02", "gender": "male"},
		{"code.coding.0.code": "39156-5", "valueQuantity.value": "22.5312", "valueQuantity.code": "kg/m2", "effectiveDateTime": "2016-04-18T08:25:32-07:00", "device.display": "Health Mate"},
		{"code.coding.0.code": "8867-4", "valueQuantity.value": "72", "valueQuantity.code": "/min", "valueQuantity.unit": "bpm",
			"device.display": "Apple\u00a0Watch (Apple Watch, Watch2,4, software 4.3.1)"},
		{"code.coding.0.code": "55411-3", "valueQuantity.value": "5.19412346680959", "valueQuantity.code": "min",
			"effectivePeriod.end":                            "2016-11-14T07:30:52-07:00",
			"component.0.valueCodeableConcept.coding.0.code": "HKWorkoutActivityTypeRunning",
			"component.1.valueQuantity.value":                "0.4971749504535062", "component.1.valueQuantity.code": "[mi_i]",
			"component.2.valueQuantity.value": "48.74499999999999", "component.2.code.coding.0.code": "41981-2"},
	}
	for i, w := range want {
		res, _ := record.Parse(s.Records[i].Resource)
		for path, v := range w {
			if got := res.Str(path); got != v {
				t.Errorf("record %d: %s = %q, want %q", i, path, got, v)
			}
		}
	}
	// The device's object address changes from one export to the next and
	// must not leak into the resource.
	for _, r := range s.Records {
		if bytes.Contains(r.Resource, []byte("0x282a45810")) {
			t.Errorf("device address kept: %s", r.Resource)
		}
	}
}

func fingerprints(s *importertest.Sink) []string {
	var out []string
	for i := range s.Records {
		out = append(out, string(record.FingerprintInput(&s.Records[i])))
	}
	return out
}

func TestZip(t *testing.T) {
	data := zipDir(t, dogsheepZip)
	if !New().Detect(importertest.Head(data)) {
		t.Fatal("export.zip not detected")
	}
	fromZip, err := importBytes(t, "export.zip", data, nil)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := importBytes(t, "export.xml", importertest.ReadFile(t, dogsheep), nil)
	if err != nil {
		t.Fatal(err)
	}
	// The zip's export.xml differs from the plain one only in its workout
	// route, which is not imported: the records deduplicate against each
	// other.
	if a, b := fingerprints(fromZip), fingerprints(plain); !slices.Equal(a, b) || len(a) != 4 {
		t.Errorf("zip and plain export differ:\n%q\n%q", a, b)
	}
	if fromZip.Records[0].Provenance.File != "export.zip" {
		t.Errorf("provenance file %q", fromZip.Records[0].Provenance.File)
	}

	// A zip from a pipe cannot be read.
	in := importertest.Input("export.zip", data, nil)
	in.ReaderAt, in.Size = nil, -1
	err = New().Import(context.Background(), in, &importertest.Sink{})
	var pe *importers.ParseError
	if !errors.As(err, &pe) || !errors.Is(err, ErrNotSeekable) || !strings.Contains(err.Error(), "seekable") {
		t.Errorf("stream zip: %v", err)
	}

	// A zip without the export.
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, _ := zw.Create("apple_health_export/electrocardiograms/ecg.csv")
	w.Write([]byte("x"))
	zw.Close()
	if _, err := importBytes(t, "export.zip", buf.Bytes(), nil); !errors.Is(err, ErrNoExport) {
		t.Errorf("zip without export.xml: %v", err)
	}

	// A damaged zip.
	bad := slices.Clone(data)
	bad = bad[:len(bad)-30]
	if _, err := importBytes(t, "export.zip", bad, nil); !errors.As(err, &pe) {
		t.Errorf("damaged zip: %v", err)
	}
}

func TestReimportSameFingerprints(t *testing.T) {
	data := importertest.ReadFile(t, ashtom)
	for _, opts := range []map[string]string{nil, {"aggregate": "daily"}} {
		a, err := importBytes(t, ashtom, data, opts)
		if err != nil {
			t.Fatal(err)
		}
		b, err := importBytes(t, ashtom, data, opts)
		if err != nil {
			t.Fatal(err)
		}
		fa, fb := fingerprints(a), fingerprints(b)
		if !slices.Equal(fa, fb) {
			t.Fatalf("options %v: fingerprints differ between two imports", opts)
		}
		if a.Records[0].ID == b.Records[0].ID {
			t.Error("record IDs should be fresh on each import")
		}
		for i := range a.Records {
			if !bytes.Equal(a.Records[i].Resource, b.Records[i].Resource) {
				t.Fatalf("resource %d differs between imports", i)
			}
		}
	}
}

func TestBOM(t *testing.T) {
	data := append([]byte("\xef\xbb\xbf"), importertest.ReadFile(t, dogsheep)...)
	if !New().Detect(importertest.Head(data)) {
		t.Error("export with a BOM not detected")
	}
	s, err := importBytes(t, "export.xml", data, nil)
	if err != nil || len(s.Records) != 4 {
		t.Errorf("export with a BOM: %d records, %v", len(s.Records), err)
	}
}

func TestEntityRefused(t *testing.T) {
	path := "testdata/entity.xml"
	s, err := importBytes(t, path, importertest.ReadFile(t, path), nil)
	var pe *importers.ParseError
	if !errors.As(err, &pe) || !errors.Is(err, ErrEntityDeclaration) {
		t.Fatalf("err = %v, want ErrEntityDeclaration", err)
	}
	if pe.Line != 6 || pe.File != path {
		t.Errorf("error at %s:%d, want %s:6", pe.File, pe.Line, path)
	}
	if len(s.Records) != 0 {
		t.Errorf("%d records from a refused file", len(s.Records))
	}
	// An entity declaration outside a DOCTYPE is refused too.
	_, err = importBytes(t, "x.xml", []byte("<!ENTITY x \"y\"><HealthData/>"), nil)
	if !errors.Is(err, ErrEntityDeclaration) {
		t.Errorf("bare ENTITY: %v", err)
	}
}

func TestMalformed(t *testing.T) {
	ash := importertest.ReadFile(t, ashtom)
	tests := []struct {
		name     string
		data     []byte
		wantLine int // 0: any line > 0
		wantMsg  string
	}{
		{"truncated in the middle", ash[:len(ash)/2], 0, ""},
		{"truncated in a tag", []byte("<HealthData>\n <Record type=\"HKQuantityTypeIdentifierHeartRate\" value=\"7"), 2, "syntax"},
		{"truncated after a record", []byte("<HealthData>\n <Record type=\"X\" startDate=\"2020-01-01 00:00:00 +0000\" value=\"1\"/>\n"), 3, "not closed"},
		{"truncated inside a record", []byte("<HealthData>\n <Record type=\"X\">\n  <MetadataEntry key=\"a\" value=\"b\"/>\n"), 4, "inside <Record>"},
		{"mismatched end tag", []byte("<HealthData>\n<Record>\n</Workout>\n</HealthData>"), 3, "closes"},
		{"wrong root", []byte("<?xml version=\"1.0\"?>\n<ClinicalDocument/>"), 2, "not <HealthData>"},
		{"no root", []byte("   "), 0, "no <HealthData>"},
		{"text outside root", []byte("<HealthData/>\ngarbage"), 0, "outside"},
		{"second root", []byte("<HealthData/>\n<HealthData/>"), 2, "after the end"},
		{"binary", []byte("\x00\x01\x02PK"), 1, ""},
		{"BOM then text", []byte("\xef\xbb\xbf<?xml version=\"1.0\"?>x<HealthData/>"), 1, "outside"},
		{"undeclared entity", []byte("<HealthData>\n<Record value=\"&72 bpm\"/></HealthData>"), 2, "entity"},
		{"too deep", []byte("<HealthData>" + strings.Repeat("<a>", MaxDepth+1)), 1, "deeper"},
		{"other encoding", []byte("<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><HealthData/>"), 1, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := importBytes(t, "export.xml", tt.data, nil)
			var pe *importers.ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("err = %v (%T), want *ParseError", err, err)
			}
			if tt.wantLine > 0 && pe.Line != tt.wantLine || tt.wantLine == 0 && pe.Line <= 0 && tt.name != "no root" {
				t.Errorf("line %d, want %d: %v", pe.Line, tt.wantLine, err)
			}
			if pe.File != "export.xml" || !strings.Contains(err.Error(), tt.wantMsg) || strings.Contains(err.Error(), "72 bpm") {
				t.Errorf("error %q", err)
			}
		})
	}
}

func TestTokenTooLarge(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates 16 MiB")
	}
	data := append([]byte("<HealthData>\n<Record value=\""), bytes.Repeat([]byte("1"), MaxTokenBytes+1<<16)...)
	_, err := importBytes(t, "export.xml", data, nil)
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("err = %v, want ErrTooLarge", err)
	}
}

func TestItemFailures(t *testing.T) {
	path := "testdata/bad-items.xml"
	s, err := importBytes(t, path, importertest.ReadFile(t, path), nil)
	if err != nil {
		t.Fatal(err)
	}
	// No value from the file appears in an error.
	got := s.FailPositions(t, path, "seventy-two", "14/07/1985", "Feb 1 2024", "NaN", "120", "long", "Watch", "Scale")
	want := []importertest.Position{
		{Line: 4, Path: "Me/@HKCharacteristicTypeIdentifierDateOfBirth"},
		{Line: 5, Path: "Record/@value"},
		{Line: 6, Path: "Record/@startDate"},
		{Line: 7, Path: "Record/@type"},
		{Line: 8, Path: "Record/@endDate"},
		{Line: 9, Path: "Record/@value"},
		{Line: 10, Path: "Record/@value"},
		{Line: 12, Path: "Correlation"},
		{Line: 14, Path: "Workout/@duration"},
	}
	if !slices.Equal(got, want) {
		t.Errorf("fails at\n%v, want\n%v", got, want)
	}
	// The good items around them are imported: the Patient (sex only) and
	// the body mass of line 11.
	if got := s.Counts(); !maps.Equal(got, map[string]int{"Patient": 1, "Observation": 1}) {
		t.Errorf("by type %v", got)
	}
}

func TestUnitsAndTypes(t *testing.T) {
	path := "testdata/units.xml"
	s, err := importBytes(t, path, importertest.ReadFile(t, path), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Fails) != 0 {
		t.Fatalf("fails %v", s.Fails)
	}
	byHK := map[string]record.Resource{}
	var others []record.Resource
	for _, r := range s.Records {
		res, _ := record.Parse(r.Resource)
		key := ""
		for _, c := range res.Codings("code") {
			if c.System == HealthKitSystem {
				key = c.Code
			}
		}
		if key == "" || key == hkSleep {
			others = append(others, res)
			continue
		}
		byHK[key] = res
	}
	q := quantityPrefix
	tests := []struct {
		hk     string
		checks map[string]string
	}{
		{q + "OxygenSaturation", map[string]string{"code.coding.0.code": "59408-5", "code.coding.1.code": "2708-6", "valueQuantity.value": "97", "valueQuantity.code": "%"}},
		{q + "BloodGlucose", map[string]string{"code.coding.0.code": "15074-8", "valueQuantity.value": "5.4", "valueQuantity.code": "mmol/L"}},
		{q + "BodyMass", map[string]string{"code.coding.0.code": "29463-7", "valueQuantity.value": "154.2", "valueQuantity.code": "[lb_av]", "valueQuantity.unit": "lb"}},
		{q + "BodyTemperature", map[string]string{"code.coding.0.code": "8310-5", "valueQuantity.value": "98.6", "valueQuantity.code": "[degF]"}},
		{q + "RespiratoryRate", map[string]string{"code.coding.0.code": "9279-1", "valueQuantity.code": "/min", "valueQuantity.unit": "breaths/min"}},
		{q + "Height", map[string]string{"code.coding.0.code": "8302-2", "valueQuantity.code": "cm"}},
		{q + "RestingHeartRate", map[string]string{"code.coding.0.code": "40443-4", "effectivePeriod.end": "2024-02-01T23:59:00+01:00"}},
		{q + "HeartRateVariabilitySDNN", map[string]string{"code.coding.0.code": "80404-7", "valueQuantity.value": "41.2", "valueQuantity.code": "ms"}},
		{q + "VO2Max", map[string]string{"code.text": "Cardio fitness (VO2 max)", "valueQuantity.code": "mL/(kg.min)"}},
		{q + "EnvironmentalAudioExposure", map[string]string{"valueQuantity.code": "dB[SPL]"}},
		{q + "DietaryWater", map[string]string{"code.text": "Dietary water", "valueQuantity.code": "mL"}},
		{q + "UVExposure", map[string]string{"code.text": "UV exposure", "valueQuantity.code": "{count}"}},
		{q + "StrangeNewType", map[string]string{"code.text": "Strange new type", "valueQuantity.unit": "furlong/fortnight", "valueQuantity.code": ""}},
		{categoryPrefix + "MindfulSession", map[string]string{"valueQuantity.value": "5", "valueQuantity.code": "min"}},
		{categoryPrefix + "AppleStandHour", map[string]string{"valueCodeableConcept.text": "Stood", "valueCodeableConcept.coding.0.code": "HKCategoryValueAppleStandHourStood"}},
		{"HKDataTypeSleepDurationGoal", map[string]string{"code.text": "Sleep duration goal", "valueQuantity.value": "8", "valueQuantity.code": "h"}},
	}
	for _, tt := range tests {
		res, ok := byHK[tt.hk]
		if !ok {
			t.Errorf("%s: no record", tt.hk)
			continue
		}
		for path, want := range tt.checks {
			if got := res.Str(path); got != want {
				t.Errorf("%s: %s = %q, want %q", tt.hk, path, got, want)
			}
		}
	}
	// others: Patient, blood type, 3 sleep stages, workout.
	want := []map[string]string{
		{"resourceType": "Patient", "birthDate": "1985-07-14", "gender": "female"},
		{"code.coding.0.code": "882-1", "valueCodeableConcept.text": "O-"},
		{"code.coding.0.code": "93832-4", "code.coding.1.code": "93830-8", "valueQuantity.value": "45", "code.text": "Sleep (core)"},
		{"code.coding.0.code": "93832-4", "code.coding.1.code": "93831-6", "valueQuantity.value": "30.5", "component.0.valueCodeableConcept.coding.0.code": "HKCategoryValueSleepAnalysisAsleepDeep"},
		{"code.coding.0.code": "93832-4", "code.coding.1.code": "93829-0", "valueQuantity.value": "20", "code.text": "Sleep (REM)"},
		{"code.coding.0.code": "55411-3", "code.text": "Cycling workout", "valueQuantity.value": "45.5",
			"component.1.code.text": "Total energy burned", "component.1.valueQuantity.value": "410.5",
			"component.2.code.text": "Total distance", "component.2.valueQuantity.value": "18.2",
			"component.3.code.text": "Average heart rate", "component.3.valueQuantity.value": "142", "component.5.valueQuantity.value": "171"},
	}
	if len(others) != len(want) {
		t.Fatalf("%d other records, want %d", len(others), len(want))
	}
	for i, w := range want {
		for path, v := range w {
			if got := others[i].Str(path); got != v {
				t.Errorf("record %d: %s = %q, want %q", i, path, got, v)
			}
		}
	}
	for _, reason := range []string{": " + skipRoute, "Observation: " + skipSummary, ": " + skipClinicalAbsent, ": unsupported Apple Health element <Audiogram>"} {
		if s.SkipCounts()[reason] != 1 {
			t.Errorf("skip %q: %d, want 1 (%v)", reason, s.SkipCounts()[reason], s.SkipCounts())
		}
	}
}

func TestBloodPressure(t *testing.T) {
	path := "testdata/blood-pressure.xml"
	s, err := importBytes(t, path, importertest.ReadFile(t, path), nil)
	if err != nil {
		t.Fatal(err)
	}
	var displays []string
	for _, r := range s.Records {
		displays = append(displays, r.Display)
		if r.Kind != record.KindVital {
			t.Errorf("kind %q", r.Kind)
		}
	}
	// Two panels in file order, then the systolic reading that no panel
	// claimed. The four top-level members of the panels are skipped.
	want := []string{"Blood pressure: 121/79 mmHg", "Blood pressure: 118/76 mmHg", "Systolic blood pressure: 135 mmHg"}
	if !slices.Equal(displays, want) {
		t.Errorf("displays %q, want %q", displays, want)
	}
	if n := s.SkipCounts()["Observation: "+skipInPanel]; n != 4 {
		t.Errorf("skipped members: %d, want 4", n)
	}
	res, _ := record.Parse(s.Records[0].Resource)
	if res.Str("code.coding.0.code") != record.LoincBP || res.Str("component.0.code.coding.0.code") != record.LoincSystolic ||
		res.Str("component.1.code.coding.0.code") != record.LoincDiastolic || res.Str("component.0.valueQuantity.code") != "mm[Hg]" {
		t.Errorf("panel %s", s.Records[0].Resource)
	}
}

func TestDailyAggregate(t *testing.T) {
	path := "testdata/daily.xml"
	s, err := importBytes(t, path, importertest.ReadFile(t, path), map[string]string{"aggregate": "daily"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range s.Records {
		res, _ := record.Parse(r.Resource)
		line := r.Display + " @" + res.Str("effectiveDateTime") + " by " + res.Str("device.display")
		if mn := res.Str("component.0.valueQuantity.value"); mn != "" {
			line += " min " + mn + " max " + res.Str("component.1.valueQuantity.value")
		}
		got = append(got, line)
	}
	// Body mass is not aggregated (every weighing counts); heart rate and
	// SpO2 give a daily mean, min and max; steps a daily total per source.
	want := []string{
		"Body weight: 70.5 kg @2024-02-01T08:00:00+01:00 by Scale",
		"Body weight: 71 kg @2024-02-01T20:00:00+01:00 by Scale",
		"Heart rate (daily mean): 75 bpm @2024-02-01 by Watch min 60 max 90",
		"Heart rate (daily mean): 55 bpm @2024-02-02 by Watch min 55 max 55",
		"Oxygen saturation (daily mean): 97 % @2024-02-01 by Watch min 95 max 99",
		"Steps (daily total): 1250 steps @2024-02-01 by Phone",
		"Steps (daily total): 480 steps @2024-02-01 by Watch",
	}
	if !slices.Equal(got, want) {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	res, _ := record.Parse(s.Records[5].Resource)
	if res.Str("code.coding.0.code") != "41950-7" {
		t.Errorf("daily steps code %q", res.Str("code.coding.0.code"))
	}

	if _, err := importBytes(t, path, importertest.ReadFile(t, path), map[string]string{"aggregate": "weekly"}); err == nil {
		t.Error("unknown aggregate option accepted")
	}
}

// TestDailyAggregateAshtom checks the number of daily records against a
// count made from the file's lines.
func TestDailyAggregateAshtom(t *testing.T) {
	f, err := os.Open(ashtom)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	aggregated := map[string]bool{}
	for typ, spec := range quantityTypes {
		if spec.agg != aggNone {
			aggregated[typ] = true
		}
	}
	days := map[string]bool{}
	raw := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, " <Workout ") {
			raw++
		}
		if !recordLine.MatchString(line) {
			continue
		}
		attrs := map[string]string{}
		for _, m := range attrRe.FindAllStringSubmatch(line, -1) {
			attrs[m[1]] = m[2]
		}
		if aggregated[attrs["type"]] {
			days[attrs["type"]+"|"+attrs["startDate"][:10]+"|"+attrs["sourceName"]+"|"+attrs["unit"]] = true
		} else {
			raw++
		}
	}
	s, err := importBytes(t, ashtom, importertest.ReadFile(t, ashtom), map[string]string{"aggregate": "daily"})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(s.Records), len(days)+raw; got != want || len(s.Fails) != 0 {
		t.Errorf("%d daily-mode records, want %d (%d aggregates + %d raw); fails %v", got, want, len(days), raw, s.Fails)
	}
}

// stopSink fails on the nth record.
type stopSink struct {
	importertest.Sink
	n int
}

var errStop = errors.New("stop")

func (s *stopSink) Record(r record.Record) error {
	if len(s.Records) == s.n {
		return errStop
	}
	return s.Sink.Record(r)
}

func TestSinkErrorStops(t *testing.T) {
	s := &stopSink{n: 10}
	err := New().Import(context.Background(), importertest.Input("export.xml", importertest.ReadFile(t, ashtom), nil), s)
	if !errors.Is(err, errStop) || len(s.Records) != 10 {
		t.Errorf("err %v after %d records", err, len(s.Records))
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err = New().Import(ctx, importertest.Input("export.xml", importertest.ReadFile(t, ashtom), nil), &importertest.Sink{})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled import: %v", err)
	}
}

func TestHelpers(t *testing.T) {
	for in, want := range map[string]string{
		"HKQuantityTypeIdentifierDietaryFatTotal":           "Dietary fat total",
		"HKQuantityTypeIdentifierVO2Max":                    "VO2 max",
		"HKQuantityTypeIdentifierHeartRateVariabilitySDNN":  "Heart rate variability SDNN",
		"HKQuantityTypeIdentifierUVExposure":                "UV exposure",
		"HKWorkoutActivityTypeMixedMetabolicCardioTraining": "Mixed metabolic cardio training",
		"HKCategoryTypeIdentifierMindfulSession":            "Mindful session",
		"x":                                                 "X",
		"":                                                  "",
	} {
		if got := humanize(in); got != want {
			t.Errorf("humanize(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string]string{"0.97": "97", "1": "100", "0.955": "95.5", "0": "0", "-0.5": "-50", "12.3456": "1234.56", "1e-2": "1"} {
		n, f, ok := number(in)
		if !ok {
			t.Fatalf("number(%q) not ok", in)
		}
		if got := string(times100(n, f)); got != want {
			t.Errorf("times100(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string]string{"72": "72", "+5": "5", ".5": "0.5", "5.": "5", " 7 ": "7", "1E3": "1E3"} {
		n, _, ok := number(in)
		if !ok || string(n) != want {
			t.Errorf("number(%q) = %q, %v; want %q", in, n, ok, want)
		}
	}
	for _, in := range []string{"", "abc", "NaN", "Inf", "-Inf", "0x10", "1_000", "1e999", "1e16"} {
		if _, _, ok := number(in); ok {
			t.Errorf("number(%q) accepted", in)
		}
	}
	if got, _, _ := fhirTime("2019-06-11 15:00:00 -0700"); got != "2019-06-11T15:00:00-07:00" {
		t.Errorf("fhirTime = %q", got)
	}
	if got, _, _ := fhirTime("2019-06-11 15:00:00 +0000"); got != "2019-06-11T15:00:00Z" {
		t.Errorf("fhirTime UTC = %q", got)
	}
}
