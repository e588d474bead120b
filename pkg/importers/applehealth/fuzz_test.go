package applehealth

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/phr-project/phr/pkg/importers"
	"github.com/phr-project/phr/pkg/importers/importertest"
)

// FuzzImportAppleHealth feeds arbitrary bytes (as a file and, when they
// start like a zip, as a seekable archive) and checks that the importer
// never panics, that a failure is a *ParseError or an item failure with a
// position, and that every record it makes is a valid resource.
func FuzzImportAppleHealth(f *testing.F) {
	for _, p := range []string{dogsheep, "testdata/units.xml", "testdata/blood-pressure.xml", "testdata/bad-items.xml", "testdata/daily.xml", "testdata/entity.xml"} {
		f.Add(importertest.ReadFile(f, p))
	}
	f.Add(zipDir(f, dogsheepZip))
	f.Add(clinicalZip(f, true))
	f.Add([]byte("<HealthData><Me HKCharacteristicTypeIdentifierDateOfBirth=\"19800101\"/><Record type=\"HKQuantityTypeIdentifierStepCount\" source=\"Health\" unit=\"count\" startDate=\"20150616071820-0700\" endDate=\"20150616071920-0700\" value=\"14\"/></HealthData>"))
	f.Add([]byte("<HealthData><Correlation type=\"HKCorrelationTypeIdentifierBloodPressure\" startDate=\"2020-01-01 00:00:00 +0000\"><Record type=\"HKQuantityTypeIdentifierBloodPressureSystolic\" value=\"1\"/></Correlation></HealthData>"))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, daily := range []bool{false, true} {
			opts := map[string]string{}
			if daily {
				opts["aggregate"] = "daily"
			}
			s := &importertest.Sink{}
			in := &importers.Input{Name: "export.xml", R: bytes.NewReader(data), ReaderAt: bytes.NewReader(data), Size: int64(len(data)), Options: opts}
			err := New().Import(context.Background(), in, s)
			var pe *importers.ParseError
			if err != nil && !errors.As(err, &pe) {
				t.Fatalf("error %v (%T) is not a *ParseError", err, err)
			}
			checkFuzzResult(t, s, "export.xml")
		}
		_ = New().Detect(data)
	})
}

// FuzzImportAppleHealthZip builds an export.zip from fuzzed entry names,
// contents and methods, and checks what FuzzImportAppleHealth checks: no
// panic, a *ParseError or item failures with positions, valid records. It
// reaches the zip handling (unsafe names, nested archives, fallbacks) that
// raw bytes rarely form.
func FuzzImportAppleHealthZip(f *testing.F) {
	export := importertest.ReadFile(f, dogsheepZip+"/apple_health_export/export.xml")
	route := importertest.ReadFile(f, dogsheepZip+"/apple_health_export/workout-routes/route_2019-06-11_3.00pm.gpx")
	f.Add(ZipExportPath, export, "apple_health_export/workout-routes/route_2019-06-11_3.00pm.gpx", route, false)
	f.Add("../"+ZipExportPath, export, "/"+ZipExportPath, export, true)
	f.Add(`export\export.xml`, importertest.ReadFile(f, "testdata/units.xml"), "apple_health_export/export.zip", zipBytes(f, ZipExportPath, export), false)
	f.Add(ZipExportPath, zipBytes(f, ZipExportPath, export), "x/export.xml", importertest.ReadFile(f, "testdata/blood-pressure.xml"), true)
	// A clinical record and its FHIR file (a bare bundle entry, too).
	f.Add(ZipExportPath, []byte(clinicalExport), "apple_health_export/clinical-records/AllergyIntolerance-a1.json", []byte(clinicalFilesOf["clinical-records/AllergyIntolerance-a1.json"]), false)
	f.Add(ZipExportPath, []byte(clinicalExport), "apple_health_export/clinical-records/Observation-l1.json", []byte(`{"fullUrl":"urn:uuid:x","resource":{"resourceType":"Observation","id":"l1"}}`), true)
	f.Fuzz(func(t *testing.T, name1 string, data1 []byte, name2 string, data2 []byte, store bool) {
		var buf bytes.Buffer
		zw := zip.NewWriter(&buf)
		method := zip.Deflate
		if store {
			method = zip.Store
		}
		for _, e := range []struct {
			name string
			data []byte
		}{{name1, data1}, {name2, data2}} {
			w, err := zw.CreateHeader(&zip.FileHeader{Name: e.name, Method: method})
			if err != nil {
				return
			}
			w.Write(e.data)
		}
		if zw.Close() != nil {
			return
		}
		data := buf.Bytes()
		s := &importertest.Sink{}
		in := &importers.Input{Name: "export.zip", R: bytes.NewReader(data), ReaderAt: bytes.NewReader(data), Size: int64(len(data))}
		err := New().Import(context.Background(), in, s)
		var pe *importers.ParseError
		if err != nil && !errors.As(err, &pe) {
			t.Fatalf("error %v (%T) is not a *ParseError", err, err)
		}
		checkFuzzResult(t, s, "export.zip")
	})
}

// checkFuzzResult checks what every import must give: failures with a
// position, and records with this importer's provenance (the system is
// Apple Health, or a clinical record's provider).
func checkFuzzResult(t *testing.T, s *importertest.Sink, file string) {
	for _, fe := range s.Fails {
		if fe.Line <= 0 && fe.Offset <= 0 && fe.Path == "" || fe.Err == nil || fe.File == "" {
			t.Fatalf("item error without a position: %+v", fe)
		}
	}
	for _, r := range s.Records {
		if r.ResourceType == "" || r.Provenance.Importer != Name || r.Provenance.System == "" || r.Provenance.File != file {
			t.Fatalf("bad record %+v", r)
		}
	}
}

// zipBytes is a zip of one entry.
func zipBytes(t testing.TB, name string, data []byte) []byte {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, err := zw.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(data)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
