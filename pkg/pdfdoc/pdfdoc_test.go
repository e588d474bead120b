package pdfdoc_test

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/phr-project/phr/internal/vaulttest"
	"github.com/phr-project/phr/pkg/pdfdoc"
	"github.com/phr-project/phr/pkg/record"
)

const shared = "../../../shared/testdata/"

var now = time.Date(2026, 12, 4, 9, 30, 0, 0, time.FixedZone("", -5*3600))

// importFiles imports real files into a new vault and returns its patient
// and records.
func importFiles(t *testing.T, paths ...string) (record.Record, []record.Record) {
	t.Helper()
	v := vaulttest.New(t)
	vaulttest.Import(t, v, paths...)
	return vaulttest.Contents(t, v)
}

// need skips without the poppler tools unless CI is set.
func need(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s is missing (apt-get install poppler-utils)", tool)
			}
			t.Skipf("%s is missing (apt-get install poppler-utils)", tool)
		}
	}
}

// pdfText extracts the text of a PDF with pdftotext, in reading order.
func pdfText(t *testing.T, pdf []byte) string {
	t.Helper()
	need(t, "pdftotext")
	cmd := exec.Command("pdftotext", "-layout", "-enc", "UTF-8", "-", "-")
	cmd.Stdin = bytes.NewReader(pdf)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("pdftotext: %v", err)
	}
	return string(out)
}

// pdfPages renders a PDF's pages to PNG files with pdftoppm and returns
// their paths. With PDF_PAGES set, the pages are also copied there.
func pdfPages(t *testing.T, pdf []byte, name string) []string {
	t.Helper()
	need(t, "pdftoppm")
	dir := t.TempDir()
	in := filepath.Join(dir, name+".pdf")
	if err := os.WriteFile(in, pdf, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("pdftoppm", "-png", "-r", "80", in, filepath.Join(dir, name)).CombinedOutput(); err != nil {
		t.Fatalf("pdftoppm: %v %s", err, out)
	}
	pages, _ := filepath.Glob(filepath.Join(dir, name+"-*.png"))
	if keep := os.Getenv("PDF_PAGES"); keep != "" {
		os.WriteFile(filepath.Join(keep, name+".pdf"), pdf, 0o644)
		for _, p := range pages {
			b, _ := os.ReadFile(p)
			os.WriteFile(filepath.Join(keep, filepath.Base(p)), b, 0o644)
		}
	}
	return pages
}

// folded squeezes runs of spaces, so that table columns read as text.
func folded(s string) string { return regexp.MustCompile(`[ \t]+`).ReplaceAllString(s, " ") }

func TestSummaryOfRealRecords(t *testing.T) {
	tests := []struct {
		name  string
		files []string
		want  []string // in this order on the first page(s)
		not   []string
	}{
		{
			name:  "synthea with allergies",
			files: []string{shared + "fhir/synthea-r4/Jorge_Brekke_ac7921e0-c949-4b42-97f2-fad5d171cd01.json"},
			want: []string{
				"Health summary", "Jorge Brekke", "Born 2012-11-11", "(age 14)", "Sex: male", "Made 2026-12-04 09:30 by phr",
				"Allergies and intolerances", "Allergy to bee venom", "low", "Active medications", "Loratadine 5 MG", "Problems", "Recent results", "Vital signs",
				"Blood pressure", "mmHg", "Immunizations",
			},
			not: []string{"mm[Hg]", "Cel", "[lb_av]", "T00:00:00", "999-57-9533"},
		},
		{
			name:  "C-CDA with negations",
			files: []string{shared + "ccda/hl7-c-cda-examples/Documents/CCD/CCD 2/CCD.xml"},
			want:  []string{"Allergies and intolerances", "Active medications", "Problems", "Immunizations"},
			not:   []string{"mm[Hg]"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, f := range tt.files {
				if _, err := os.Stat(f); err != nil {
					t.Skipf("shared test data missing: %v", err)
				}
			}
			patient, recs := importFiles(t, tt.files...)
			pdf, err := pdfdoc.Summary(patient, recs, pdfdoc.Options{Now: now})
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(pdf, []byte("%PDF-")) {
				t.Fatalf("not a PDF: %q", pdf[:min(len(pdf), 16)])
			}
			text := folded(pdfText(t, pdf))
			checkText(t, text, tt.want, tt.not)
			if pages := pdfPages(t, pdf, strings.ReplaceAll(tt.name, " ", "-")); len(pages) == 0 {
				t.Error("pdftoppm rendered no page")
			}
			again, err := pdfdoc.Summary(patient, recs, pdfdoc.Options{Now: now})
			if err != nil || !bytes.Equal(pdf, again) {
				t.Error("the same records made a different PDF")
			}
		})
	}
}

// checkText checks that text holds each of want, in that order, and none
// of not; it reports whether all of want are there.
func checkText(t *testing.T, text string, want, not []string) bool {
	t.Helper()
	ok := true
	at := 0
	for _, w := range want {
		i := strings.Index(text[at:], w)
		if i < 0 {
			t.Errorf("%q missing (or out of order) after byte %d in:\n%s", w, at, text)
			ok = false
			break
		}
		at += i + len(w)
	}
	for _, n := range not {
		if strings.Contains(text, n) {
			t.Errorf("%q in:\n%s", n, text)
		}
	}
	return ok
}

// resource builds a record from FHIR JSON, as an import would.
func resource(t *testing.T, js string) record.Record {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(js), &m); err != nil {
		t.Fatal(err)
	}
	r, err := record.New([]byte(js), record.Provenance{Method: record.MethodImported, Importer: "fhir", System: "Example Clinic"})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// negations holds the smallest resources that show each rule (no shared
// file has all of them in one record): a high-criticality allergy and a
// refuted one, "no known" statements, a refused vaccine with its reason,
// a medication not taken, an entered-in-error problem, a resolved one, a
// blood pressure with float noise from a unit conversion, a result above
// its range, and a day-only date.
func negations(t *testing.T) []record.Record {
	return []record.Record{
		resource(t, `{"resourceType":"AllergyIntolerance","clinicalStatus":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical","code":"active"}]},"code":{"text":"Latex"},"criticality":"low","recordedDate":"2020-01-05"}`),
		resource(t, `{"resourceType":"AllergyIntolerance","clinicalStatus":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical","code":"active"}]},"code":{"text":"Penicillin"},"criticality":"high","reaction":[{"manifestation":[{"text":"Anaphylaxis"}],"severity":"severe"}],"recordedDate":"2019-03-02"}`),
		resource(t, `{"resourceType":"AllergyIntolerance","verificationStatus":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/allergyintolerance-verification","code":"refuted"}]},"code":{"text":"Sulfa drugs"}}`),
		resource(t, `{"resourceType":"AllergyIntolerance","code":{"coding":[{"system":"http://snomed.info/sct","code":"429625007","display":"No known food allergy"}]}}`),
		resource(t, `{"resourceType":"Immunization","status":"not-done","vaccineCode":{"text":"Influenza vaccine"},"statusReason":{"text":"patient objection"},"occurrenceDateTime":"2024-10-01"}`),
		resource(t, `{"resourceType":"Immunization","status":"completed","vaccineCode":{"text":"Tdap"},"occurrenceDateTime":"2023-05-17","lotNumber":"AB123"}`),
		resource(t, `{"resourceType":"MedicationStatement","status":"not-taken","medicationCodeableConcept":{"text":"Ibuprofen"},"statusReason":[{"text":"stomach upset"}],"effectiveDateTime":"2024-02-01"}`),
		resource(t, `{"resourceType":"MedicationStatement","status":"active","medicationCodeableConcept":{"text":"Metformin 500 mg"},"dosage":[{"text":"twice daily"}],"effectiveDateTime":"2021-06-01"}`),
		resource(t, `{"resourceType":"Condition","clinicalStatus":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/condition-clinical","code":"active"}]},"verificationStatus":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/condition-ver-status","code":"entered-in-error"}]},"code":{"text":"Heart failure"}}`),
		resource(t, `{"resourceType":"Condition","clinicalStatus":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/condition-clinical","code":"active"}]},"code":{"text":"Type 2 diabetes"},"onsetDateTime":"2021-05"}`),
		resource(t, `{"resourceType":"Condition","clinicalStatus":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/condition-clinical","code":"resolved"}]},"code":{"text":"Appendicitis"},"onsetDateTime":"2009"}`),
		resource(t, `{"resourceType":"Observation","status":"final","category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"vital-signs"}]}],"code":{"coding":[{"system":"http://loinc.org","code":"85354-9"}]},"effectiveDateTime":"2026-06-14T08:00:00-05:00","component":[{"code":{"coding":[{"system":"http://loinc.org","code":"8480-6"}]},"valueQuantity":{"value":128.00000000000001,"unit":"mm[Hg]","system":"http://unitsofmeasure.org","code":"mm[Hg]"}},{"code":{"coding":[{"system":"http://loinc.org","code":"8462-4"}]},"valueQuantity":{"value":81.69998963820044,"unit":"mm[Hg]","system":"http://unitsofmeasure.org","code":"mm[Hg]"}}]}`),
		resource(t, `{"resourceType":"Observation","status":"final","category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"vital-signs"}]}],"code":{"coding":[{"system":"http://loinc.org","code":"85354-9"}]},"effectiveDateTime":"2026-06-01T08:00:00-05:00","component":[{"code":{"coding":[{"system":"http://loinc.org","code":"8480-6"}]},"valueQuantity":{"value":135,"unit":"mm[Hg]"}},{"code":{"coding":[{"system":"http://loinc.org","code":"8462-4"}]},"valueQuantity":{"value":88,"unit":"mm[Hg]"}}]}`),
		resource(t, `{"resourceType":"Observation","status":"final","category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"laboratory"}]}],"code":{"text":"HbA1c"},"valueQuantity":{"value":7.9,"unit":"%"},"referenceRange":[{"low":{"value":4,"unit":"%"},"high":{"value":5.6,"unit":"%"}}],"effectiveDateTime":"2026-05-20"}`),
		resource(t, `{"resourceType":"Encounter","status":"finished","class":{"code":"AMB"},"type":[{"text":"Annual check-up"}],"period":{"start":"2026-05-20"}}`),
	}
}

func TestSummaryNegationsAndComplete(t *testing.T) {
	patient := resource(t, `{"resourceType":"Patient","name":[{"given":["Jessica"],"family":"Argonaut"}],"birthDate":"1985-03-15","gender":"female","identifier":[{"system":"http://hl7.org/fhir/sid/us-ssn","value":"999-12-3456"},{"type":{"text":"MRN"},"value":"A-77"}]}`)
	recs := negations(t)
	tests := []struct {
		name     string
		complete bool
		want     []string // in this order
		not      []string
	}{
		{
			name: "summary",
			want: []string{
				"Jessica Argonaut", "Born 1985-03-15 (age 41)", "MRN A-77",
				"Allergies and intolerances", "Penicillin", "HIGH", "Anaphylaxis (severe)", "Latex", "low",
				"No known food allergy", "Ruled out (not allergies): Sulfa drugs — refuted",
				"Active medications", "Metformin 500 mg", "twice daily", "2021-06-01",
				"Ibuprofen — not taken: stomach upset",
				"Problems", "Type 2 diabetes", "2021-05", "Past: Appendicitis (resolved, 2009)",
				"Recent results", "HbA1c", "7.9%", "high", "4–5.6%", "2026-05-20",
				"Vital signs", "Blood pressure", "128/82 mmHg", "2026-06-14 08:00", "2",
				"Immunizations", "Tdap", "2023-05-17", "lot AB123",
				"Influenza vaccine — not given: patient objection",
			},
			not: []string{"Heart failure", "999-12-3456", "Blood pressure: 128", "128.00000000000001", "81.69998963820044", "Annual check-up", "Every other record"},
		},
		{
			name:     "complete",
			complete: true,
			want: []string{
				"Allergies and intolerances", "Immunizations",
				"Every other record shared", "Observations (2)", "Blood pressure: 128/82 mmHg", "Blood pressure: 135/88 mmHg",
				"Encounters (1)", "Annual check-up", "2026-05-20",
				"Entered in error", "Heart failure — entered in error",
			},
			not: []string{"81.69998963820044"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pdf, err := pdfdoc.Summary(patient, recs, pdfdoc.Options{Now: now, Complete: tt.complete})
			if err != nil {
				t.Fatal(err)
			}
			text := folded(pdfText(t, pdf))
			if !checkText(t, text, tt.want, tt.not) {
				t.FailNow()
			}
			// A refused vaccine is never among those given.
			given := text[strings.Index(text, "Vaccine given"):]
			if i := strings.Index(given, "Influenza"); i >= 0 && !strings.HasPrefix(given[i:], "Influenza vaccine — not given") {
				t.Errorf("the refused vaccine reads as given:\n%s", given)
			}
			pdfPages(t, pdf, "negations-"+tt.name)
		})
	}
}

func TestStory(t *testing.T) {
	patient := resource(t, `{"resourceType":"Patient","name":[{"text":"Jessica Argonaut"}],"birthDate":"1985-03-15"}`)
	tests := []struct {
		name, text string
		want       []string
		err        error
	}{
		{name: "paragraphs", text: "I get dizzy when I stand up.\r\n\r\nMy main worry: <b>falls</b> at night.\x07", want: []string{"In my own words", "Jessica Argonaut", "Born 1985-03-15", "I get dizzy when I stand up.", "My main worry: <b>falls</b> at night."}},
		{name: "empty", text: " \n ", err: pdfdoc.ErrStory},
		{name: "too long", text: strings.Repeat("a", pdfdoc.MaxStory+1), err: pdfdoc.ErrStory},
		{name: "not UTF-8", text: "caf\xe9", err: pdfdoc.ErrStory},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pdf, err := pdfdoc.Story(patient, tt.text, now)
			if tt.err != nil {
				if err != tt.err {
					t.Fatalf("err = %v, want %v", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			text := folded(pdfText(t, pdf))
			for _, w := range tt.want {
				if !strings.Contains(text, w) {
					t.Errorf("%q missing in:\n%s", w, text)
				}
			}
		})
	}
}

func TestSummaryNeedsTime(t *testing.T) {
	if _, err := pdfdoc.Summary(record.Record{}, nil, pdfdoc.Options{}); err != pdfdoc.ErrNoTime {
		t.Fatalf("err = %v", err)
	}
	// No patient and no records: a document that says so.
	pdf, err := pdfdoc.Summary(record.Record{}, nil, pdfdoc.Options{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	text := folded(pdfText(t, pdf))
	for _, w := range []string{"Patient not named", "The record names no patient", "The record holds no information about allergies."} {
		if !strings.Contains(text, w) {
			t.Errorf("%q missing in:\n%s", w, text)
		}
	}
}
