package applehealth

import (
	"archive/zip"
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/phr-project/phr/pkg/importers/fhir"
	"github.com/phr-project/phr/pkg/importers/importertest"
	"github.com/phr-project/phr/pkg/record"
)

// clinicalExport is the smallest export with clinical records: no shared
// export has any. The <ClinicalRecord> attributes are those of Apple's DTD
// (type, identifier, sourceName, sourceURL, fhirVersion, receivedDate,
// resourceFilePath); the files are FHIR R4 resources, one per file, as the
// Health app writes them under clinical-records/.
const clinicalExport = `<?xml version="1.0" encoding="UTF-8"?>
<HealthData locale="en_US">
 <ExportDate value="2024-05-01 10:00:00 +0200"/>
 <Me HKCharacteristicTypeIdentifierDateOfBirth="1970-02-03" HKCharacteristicTypeIdentifierBiologicalSex="HKBiologicalSexFemale"/>
 <ClinicalRecord type="HKClinicalTypeIdentifierAllergyRecord" identifier="A1" sourceName="Example Hospital" sourceURL="https://fhir.example.org/r4" fhirVersion="4.0.1" receivedDate="2024-04-01 09:00:00 +0200" resourceFilePath="/clinical-records/AllergyIntolerance-a1.json"/>
 <Record type="HKQuantityTypeIdentifierHeartRate" sourceName="Watch" unit="count/min" startDate="2024-04-30 08:00:00 +0200" endDate="2024-04-30 08:00:00 +0200" value="64"/>
 <ClinicalRecord type="HKClinicalTypeIdentifierLabResultRecord" identifier="L1" sourceName="Example Hospital" sourceURL="https://fhir.example.org/r4" fhirVersion="4.0.1" receivedDate="2024-04-01 09:00:00 +0200" resourceFilePath="/clinical-records/Observation-l1.json"/>
 <ClinicalRecord type="HKClinicalTypeIdentifierConditionRecord" identifier="C1" sourceName="Old Clinic" sourceURL="https://old.example.org/dstu2" fhirVersion="1.0.2" receivedDate="2018-04-01 09:00:00 +0200" resourceFilePath="/clinical-records/Condition-c1.json"/>
 <ClinicalRecord type="HKClinicalTypeIdentifierImmunizationRecord" identifier="I1" sourceName="Example Hospital" sourceURL="https://fhir.example.org/r4" fhirVersion="4.0.1" receivedDate="2024-04-01 09:00:00 +0200" resourceFilePath="/clinical-records/Immunization-gone.json"/>
 <ClinicalRecord type="HKClinicalTypeIdentifierProcedureRecord" identifier="P1" sourceName="Example Hospital" sourceURL="https://fhir.example.org/r4" fhirVersion="4.0.1" receivedDate="2024-04-01 09:00:00 +0200" resourceFilePath="/clinical-records/Procedure-bad.json"/>
</HealthData>
`

var clinicalFilesOf = map[string]string{
	"clinical-records/AllergyIntolerance-a1.json": `{"resourceType":"AllergyIntolerance","id":"a1","meta":{"source":"#req-1"},
  "clinicalStatus":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical","code":"active"}]},
  "code":{"coding":[{"system":"http://snomed.info/sct","code":"91936005","display":"Allergy to penicillin"}],"text":"Penicillin"},
  "patient":{"reference":"Patient/p1"}}`,
	"clinical-records/Observation-l1.json": `{"resourceType":"Observation","id":"l1","status":"final",
  "code":{"coding":[{"system":"http://loinc.org","code":"4548-4"}],"text":"Hemoglobin A1c"},
  "subject":{"reference":"Patient/p1"},"effectiveDateTime":"2024-03-28","valueQuantity":{"value":6.1,"unit":"%","system":"http://unitsofmeasure.org","code":"%"}}`,
	"clinical-records/Condition-c1.json":  `{"resourceType":"Condition","id":"c1","code":{"text":"Old"}}`,
	"clinical-records/Procedure-bad.json": "{\"resourceType\":\"Procedure\",\n\"id\":\"Secretid\",\n\"code\": Secretcode}",
}

// clinicalZip is clinicalExport as export.zip, with its files; without
// the unreadable one unless withBad.
func clinicalZip(t testing.TB, withBad bool) []byte {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	add := func(name, data string) {
		w, err := zw.Create("apple_health_export/" + name)
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(data))
	}
	add("export.xml", clinicalExport)
	for name, data := range clinicalFilesOf {
		if withBad || !strings.Contains(name, "bad") {
			add(name, data)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func clinicalDir(t testing.TB) string {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "clinical-records"), 0o755)
	os.WriteFile(filepath.Join(dir, "export.xml"), []byte(clinicalExport), 0o644)
	for name, data := range clinicalFilesOf {
		os.WriteFile(filepath.Join(dir, filepath.FromSlash(name)), []byte(data), 0o644)
	}
	return dir
}

// TestClinicalRecords imports the FHIR files of <ClinicalRecord> elements,
// from export.zip and from an unpacked export folder, with Apple Health
// provenance and the provider's name as the system; DSTU2 and missing
// files are skipped with a reason, an unreadable one fails alone.
func TestClinicalRecords(t *testing.T) {
	dir := clinicalDir(t)
	cases := []struct {
		name    string
		run     func() (*importertest.Sink, error)
		file    string // Provenance.File
		errFile string // the bad clinical record's name in its error
	}{
		{"zip", func() (*importertest.Sink, error) {
			return importertest.Import(New(), "dir/export.zip", clinicalZip(t, true), nil)
		}, "export.zip", "dir/export.zip/apple_health_export/clinical-records/Procedure-bad.json"},
		{"folder", func() (*importertest.Sink, error) {
			path := filepath.Join(dir, "export.xml")
			return importertest.Import(New(), path, importertest.ReadFile(t, path), map[string]string{OptionClinicalRecords: "beside"})
		}, "export.xml", filepath.Join(dir, "clinical-records", "Procedure-bad.json")},
	}
	var resources [][]string
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, err := c.run()
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			var res []string
			for _, r := range s.Records {
				got = append(got, r.ResourceType)
				res = append(res, string(r.Resource))
			}
			resources = append(resources, res)
			if strings.Join(got, ",") != "Patient,AllergyIntolerance,Observation,Observation" {
				t.Fatalf("records %v", got)
			}
			allergy, lab := s.Records[1], s.Records[3]
			for _, r := range []record.Record{allergy, lab} {
				p := r.Provenance
				if p.Importer != Name || p.File != c.file || p.System != "Example Hospital" || p.Method != record.MethodImported {
					t.Errorf("%s provenance %+v", r.ResourceType, p)
				}
			}
			if allergy.Provenance.OriginalID != "a1" || lab.Provenance.OriginalID != "l1" || lab.Display != "Hemoglobin A1c: 6.1 %" {
				t.Errorf("allergy %+v, lab %+v %q", allergy.Provenance, lab.Provenance, lab.Display)
			}
			// Kept as the provider wrote it, but for what record.Normalize
			// adds (a coding's published display): id and meta stay.
			if res, err := record.Parse(allergy.Resource); err != nil || res.ID() != "a1" || res.Str("meta.source") != "#req-1" || res.ConceptText("code") != "Penicillin" {
				t.Errorf("allergy %s", allergy.Resource)
			}
			skips := s.SkipCounts()
			if skips[": clinical record in FHIR 1.0.2 (DSTU2): phr imports R4 only"] != 1 || skips[": "+skipClinicalMissing] != 1 {
				t.Errorf("skips %v", skips)
			}
			if len(s.Fails) != 1 || s.Fails[0].File != c.errFile || s.Fails[0].Line != 3 || !errors.Is(s.Fails[0], fhir.ErrInvalidJSON) {
				t.Fatalf("fails %v", s.Fails)
			}
			if e := s.Fails[0].Error(); strings.Contains(e, "Secret") {
				t.Errorf("error quotes the file: %s", e)
			}
		})
	}
	if len(resources) == 2 && strings.Join(resources[0], "\n") != strings.Join(resources[1], "\n") {
		t.Error("the zip and the folder give different resources")
	}
	// export.xml alone says where the files would be.
	s, err := importertest.Import(New(), "export.xml", []byte(clinicalExport), nil)
	if err != nil || s.SkipCounts()[": "+skipClinicalAbsent] != 4 || s.Counts()["AllergyIntolerance"] != 0 {
		t.Errorf("export.xml alone: %v, skips %v", err, s.SkipCounts())
	}
	if _, err := importertest.Import(New(), "export.xml", []byte(clinicalExport), map[string]string{OptionClinicalRecords: "yes"}); err == nil {
		t.Error("unknown option value accepted")
	}
}

// TestClinicalRecordPaths checks that resourceFilePath cannot reach
// outside the export: not with "..", not through a symbolic link.
func TestClinicalRecordPaths(t *testing.T) {
	for in, want := range map[string]string{
		"/clinical-records/A.json": "clinical-records/A.json", `\clinical-records\A.json`: "clinical-records/A.json",
		"clinical-records//A.json": "clinical-records/A.json", "/../A.json": "", "/clinical-records/../../A.json": "", "": "",
	} {
		got, ok := clinicalPath(in)
		if got != want || ok != (want != "") {
			t.Errorf("clinicalPath(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
	dir := t.TempDir()
	outside := filepath.Join(t.TempDir(), "secret.json")
	os.WriteFile(outside, []byte(`{"resourceType":"Patient","id":"not-mine"}`), 0o644)
	os.MkdirAll(filepath.Join(dir, "clinical-records"), 0o755)
	if err := os.Symlink(outside, filepath.Join(dir, "clinical-records", "Patient-x.json")); err != nil {
		t.Skip("no symbolic links here:", err)
	}
	xml := `<HealthData><ClinicalRecord type="HKClinicalTypeIdentifierAllergyRecord" sourceName="H" fhirVersion="4.0.1" resourceFilePath="/clinical-records/Patient-x.json"/></HealthData>`
	path := filepath.Join(dir, "export.xml")
	os.WriteFile(path, []byte(xml), 0o644)
	s, err := importertest.Import(New(), path, []byte(xml), map[string]string{OptionClinicalRecords: "beside"})
	if err != nil || len(s.Records) != 0 || len(s.Fails) != 1 {
		t.Errorf("a link out of the export: %v, %d records, fails %v", err, len(s.Records), s.Fails)
	}
}

// TestOldExportFormats imports an export in the form iOS 8 wrote: compact
// dates (20150616071820-0700), source instead of sourceName, a compact
// date of birth. No shared export is that old; the document is the
// smallest that shows each form (the Record is the one of an Apple bug
// report of 2015, without its metadata attributes, whose names have spaces
// and make that file not XML at all).
func TestOldExportFormats(t *testing.T) {
	const old = `<?xml version="1.0" encoding="UTF-8"?>
<HealthData locale="en_US">
 <ExportDate value="20150618194013-0700"/>
 <Me HKCharacteristicTypeIdentifierDateOfBirth="19800101" HKCharacteristicTypeIdentifierBiologicalSex="HKBiologicalSexMale"/>
 <Record type="HKQuantityTypeIdentifierBodyFatPercentage" source="Withings" unit="%" creationDate="20150616071916-0700" startDate="20150616071820-0700" endDate="20150616071820-0700" value="0.21"/>
 <Record type="HKQuantityTypeIdentifierHeartRate" source="Health" unit="count/min" startDate="20150616080000-0700" endDate="20150616080100-0700" value="72"/>
 <Record type="HKQuantityTypeIdentifierHeartRate" source="Health" unit="count/min" startDate="20150616230000-0700" endDate="20150616230100-0700" value="60"/>
</HealthData>
`
	s, err := importertest.Import(New(), "export.xml", []byte(old), nil)
	if err != nil || len(s.Fails) > 0 {
		t.Fatal(err, s.Fails)
	}
	res := s.Resources(t, "")
	if len(res) != 4 || res[0].Type() != "Patient" || res[0].Str("birthDate") != "1980-01-01" || res[0].Str("gender") != "male" {
		t.Fatalf("%d records; first %v", len(res), res[0])
	}
	fat := res[1]
	if fat.Str("effectiveDateTime") != "2015-06-16T07:18:20-07:00" || fat.Str("issued") != "2015-06-16T07:19:16-07:00" ||
		fat.Str("device.display") != "Withings" || fat.Str("valueQuantity.value") != "21" {
		t.Errorf("body fat %v", fat)
	}
	if res[2].Str("effectivePeriod.start") != "2015-06-16T08:00:00-07:00" || res[2].Str("effectivePeriod.end") != "2015-06-16T08:01:00-07:00" {
		t.Errorf("heart rate %v", res[2])
	}
	// Daily aggregates take the day from the date, whatever its form.
	s, err = importertest.Import(New(), "export.xml", []byte(old), map[string]string{OptionAggregate: "daily"})
	if err != nil {
		t.Fatal(err)
	}
	daily := s.Resources(t, "Observation")
	last := daily[len(daily)-1]
	if last.Str("effectiveDateTime") != "2015-06-16" || last.Str("valueQuantity.value") != "66" || last.Str("device.display") != "Health" {
		t.Errorf("daily heart rate %v", last)
	}
	if _, _, ok := fhirTime("2015-06-16T07:18:20-07:00"); !ok {
		t.Error("RFC 3339 refused")
	}
	for _, bad := range []string{"20150616071820", "2015-06-16 07:18:20", "16/06/2015 07:18"} {
		if _, _, ok := fhirTime(bad); ok {
			t.Errorf("fhirTime(%q) accepted a time without an offset", bad)
		}
	}
}
