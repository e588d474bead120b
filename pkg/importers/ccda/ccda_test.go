package ccda

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/phr-project/phr/pkg/importers"
	"github.com/phr-project/phr/pkg/record"
)

func hl7(p string) string { return filepath.Join(testdata, "hl7-c-cda-examples", p) }
func chb(p string) string { return filepath.Join(testdata, "chb-sample_ccdas", p) }
func read(t testing.TB, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDetect(t *testing.T) {
	imp := New()
	yes := map[string][]byte{
		"hl7 CCD":            read(t, hl7("Documents/CCD/CCD 1/CCD.XML")),
		"NextGen .txt":       read(t, chb("NextGen Samples/CCDA_Sample_NextGen_JonesIsabella.txt")),
		"Kareo .ccd":         read(t, chb("Kareo Samples/Kareo_CCD_export_Joey_Miller.ccd")),
		"BOM, PI, comment":   []byte("\xef\xbb\xbf<?xml version=\"1.0\"?>\n<?xml-stylesheet type=\"text/xsl\" href=\"CDA.xsl\"?>\n<!-- c -->\n<ClinicalDocument xmlns=\"urn:hl7-org:v3\"><id/>"),
		"prefixed root":      []byte(`<cda:ClinicalDocument xmlns:cda="urn:hl7-org:v3"><cda:id/>`),
		"latin-1 declared":   []byte(`<?xml version="1.0" encoding="ISO-8859-1"?><ClinicalDocument xmlns="urn:hl7-org:v3">`),
		"head cut mid-file":  []byte(`<ClinicalDocument xmlns="urn:hl7-org:v3"><title>Unfinished`),
		"DOCTYPE before doc": []byte(`<!DOCTYPE ClinicalDocument><ClinicalDocument xmlns="urn:hl7-org:v3">`),
	}
	for name, head := range yes {
		if len(head) > importers.DetectSize {
			head = head[:importers.DetectSize]
		}
		if !imp.Detect(head) {
			t.Errorf("%s: not detected", name)
		}
	}
	no := map[string][]byte{
		"FHIR bundle":        []byte(`{"resourceType":"Bundle","type":"collection","entry":[]}`),
		"SHC file":           []byte(`{"verifiableCredential":["eyJ..."]}`),
		"NDJSON":             []byte("{\"resourceType\":\"Patient\",\"id\":\"1\"}\n{\"resourceType\":\"Patient\",\"id\":\"2\"}\n"),
		"Apple Health":       []byte("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!DOCTYPE HealthData [\n<!ELEMENT HealthData (ExportDate)>\n]>\n<HealthData locale=\"en_US\">"),
		"CSV":                []byte("type,date,value,unit\nweight,2024-01-01,70,kg\n"),
		"wrong namespace":    []byte(`<ClinicalDocument xmlns="urn:example"><id/>`),
		"no namespace":       []byte(`<ClinicalDocument><id/>`),
		"section fragment":   read(t, hl7("Allergies/No Known Allergies/No Known Allergies with Author Timestamp(C-CDA2.1).xml")),
		"text mentioning it": []byte("This file is about a ClinicalDocument <ClinicalDocument xmlns=\"urn:hl7-org:v3\">"),
		"empty":              nil,
		"HTML":               read(t, hl7("Care Team/Care Team Narrative Only/Care Team Rendering.html")),
	}
	for name, head := range no {
		if len(head) > importers.DetectSize {
			head = head[:importers.DetectSize]
		}
		if imp.Detect(head) {
			t.Errorf("%s: detected as C-CDA", name)
		}
	}
}

// TestDetectOtherFormats checks that the other importers' real files are
// not claimed.
func TestDetectOtherFormats(t *testing.T) {
	n := 0
	for _, dir := range []string{"fhir", "shc", "shl", "apple-health"} {
		filepath.WalkDir(filepath.Join(testdata, "..", dir), func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			defer f.Close()
			head := make([]byte, importers.DetectSize)
			k, _ := io.ReadFull(f, head)
			n++
			if New().Detect(head[:k]) {
				t.Errorf("%s detected as C-CDA", p)
			}
			return nil
		})
	}
	if n < 20 {
		t.Errorf("only %d files of other formats found", n)
	}
}

func TestCharset(t *testing.T) {
	doc := strings.Replace(string(read(t, "testdata/shell.xml")), `encoding="UTF-8"`, `encoding="windows-1252"`, 1)
	doc = strings.Replace(doc, "<title>Test shell</title>", "<title>Caf\xe9 \x93note\x94</title>", 1)
	s, err := importData(t, "latin.xml", []byte(doc), nil)
	if err != nil {
		t.Fatal(err)
	}
	wantStr(t, s.ofType("DocumentReference")[0], "description", "Café “note”")
}

// TestCorpus imports every file of both collections. Every C-CDA
// document must import without error or failed item and yield one
// Patient and one DocumentReference, twice with the same fingerprints;
// every other file (fragments, readmes, images) must be refused with a
// ParseError, and every well-formed fragment must import once wrapped in a
// document.
func TestCorpus(t *testing.T) {
	var docs, fragments, others int
	err := filepath.WalkDir(testdata, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data := read(t, p)
		rel := strings.TrimPrefix(p, testdata+"/")
		if New().Detect(data[:min(len(data), importers.DetectSize)]) {
			docs++
			s := importFile(t, p)
			c := s.count()
			if c["Patient"] != 1 || c["DocumentReference"] != 1 {
				t.Errorf("%s: %s: want one Patient and one DocumentReference", rel, s.summary())
			}
			if len(s.recs) > 0 && s.recs[0].ResourceType != "Patient" {
				t.Errorf("%s: first record is a %s, want the Patient (DECISIONS 3)", rel, s.recs[0].ResourceType)
			}
			checkRecords(t, rel, s)
			again := importFile(t, p)
			if len(again.recs) != len(s.recs) {
				t.Fatalf("%s: %d records, then %d", rel, len(s.recs), len(again.recs))
			}
			for i := range s.recs {
				a, b := record.FingerprintInput(&s.recs[i]), record.FingerprintInput(&again.recs[i])
				if !bytes.Equal(a, b) || !bytes.Equal(s.recs[i].Resource, again.recs[i].Resource) {
					t.Errorf("%s: record %d differs between two imports", rel, i)
				}
			}
			return nil
		}
		_, err = importData(t, p, data, nil)
		var pe *importers.ParseError
		if !errors.As(err, &pe) || pe.File != filepath.Base(p) {
			t.Errorf("%s: not C-CDA, want a ParseError naming the file, got %v", rel, err)
		}
		switch rootName(string(data)) {
		case "section", "component", "recordTarget", "observation", "documentationOf":
			if !strings.HasSuffix(p, ".xml") {
				others++
				return nil // a copy of a fragment without extension, with a comment XML forbids
			}
			fragments++
			s, err := importData(t, p, fragmentDoc(t, p), nil)
			if err != nil {
				t.Errorf("%s: wrapped fragment: %v", rel, err)
				return nil
			}
			for _, f := range s.fails {
				t.Errorf("%s: wrapped fragment: item failed: %v", rel, f)
			}
			checkRecords(t, rel, s)
		default:
			others++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d documents, %d fragments, %d other files", docs, fragments, others)
	if docs < 90 || fragments < 120 {
		t.Errorf("corpus smaller than expected: %d documents, %d fragments", docs, fragments)
	}
}

// checkRecords checks what every record must have.
func checkRecords(t *testing.T, rel string, s *memSink) {
	t.Helper()
	for _, r := range s.recs {
		p := r.Provenance
		if p.Method != record.MethodImported || p.Importer != Name || p.File == "" || len(p.FileSHA256) != 64 {
			t.Errorf("%s: %s: provenance %+v", rel, r.ResourceType, p)
		}
		res, err := record.Parse(r.Resource)
		if err != nil {
			t.Errorf("%s: %v", rel, err)
			continue
		}
		// The importer derives from the resource it built (NewParsed);
		// deriving from the stored JSON must give the same fields.
		again := r
		if err := again.Derive(); err != nil {
			t.Errorf("%s: %v", rel, err)
		} else if again.ResourceType != r.ResourceType || again.Kind != r.Kind || !again.Date.Equal(r.Date) ||
			again.Display != r.Display || !bytes.Equal(record.FingerprintInput(&again), record.FingerprintInput(&r)) {
			t.Errorf("%s: %s: derived fields differ from the stored JSON's", rel, r.ResourceType)
		}
		if res.ID() == "" {
			t.Errorf("%s: %s without id", rel, r.ResourceType)
		}
		if r.Display == "" || r.Display == r.ResourceType && r.ResourceType != "Patient" {
			t.Errorf("%s: %s without display text: %s", rel, r.ResourceType, r.Resource[:min(300, len(r.Resource))])
		}
		switch r.ResourceType {
		case "Patient", "DocumentReference":
		case "AllergyIntolerance", "Immunization":
			if res.Str("patient.reference") == "" {
				t.Errorf("%s: %s without patient", rel, r.ResourceType)
			}
		default:
			if res.Str("subject.reference") == "" {
				t.Errorf("%s: %s without subject", rel, r.ResourceType)
			}
		}
		if bytes.Contains(r.Resource, []byte(`"null"`)) || bytes.Contains(r.Resource, []byte(`:""`)) {
			t.Errorf("%s: %s has empty or null values", rel, r.ResourceType)
		}
	}
}

// find returns the first resource of type rt for which ok holds.
func find(s *memSink, rt string, ok func(record.Resource) bool) record.Resource {
	for _, r := range s.ofType(rt) {
		if ok(r) {
			return r
		}
	}
	return nil
}

func hasCode(path, system, code string) func(record.Resource) bool {
	return func(r record.Resource) bool { return r.HasCoding(path, system, code) }
}

func wantStr(t *testing.T, r record.Resource, path, want string) {
	t.Helper()
	if r == nil {
		t.Errorf("%s: resource not found", path)
		return
	}
	if got := r.Str(path); got != want {
		t.Errorf("%s = %q, want %q", path, got, want)
	}
}

func TestHL7CCD(t *testing.T) {
	s := importFile(t, hl7("Documents/CCD/CCD 1/CCD.XML"))
	want := map[string]int{
		"Patient": 1, "DocumentReference": 1, "AllergyIntolerance": 2, "MedicationStatement": 2,
		"Condition": 4, "DiagnosticReport": 2, "Immunization": 5, "Procedure": 3, "Encounter": 1,
	}
	got := s.count()
	for rt, n := range want {
		if got[rt] != n {
			t.Errorf("%s: %d, want %d (%s)", rt, got[rt], n, s.summary())
		}
	}
	for _, r := range s.recs {
		if r.Provenance.System != "Good Health HIE" {
			t.Fatalf("System = %q, want the custodian", r.Provenance.System)
		}
	}
	p := s.ofType("Patient")[0]
	wantStr(t, p, "birthDate", "1975-05-01")
	wantStr(t, p, "gender", "female")
	wantStr(t, p, "name.0.family", "Betterhalf")
	wantStr(t, p, "identifier.0.system", "http://hl7.org/fhir/sid/us-ssn")
	wantStr(t, p, "extension.0.extension.0.valueCoding.code", "2106-3")

	pen := find(s, "AllergyIntolerance", hasCode("code", record.RxNorm, "70618"))
	wantStr(t, pen, "clinicalStatus.coding.0.code", "active")
	wantStr(t, pen, "onsetDateTime", "1998-05-01")
	wantStr(t, pen, "reaction.0.manifestation.0.coding.0.code", "422587007")
	wantStr(t, pen, "reaction.0.severity", "mild")

	alb := find(s, "MedicationStatement", hasCode("medicationCodeableConcept", record.RxNorm, "573621"))
	wantStr(t, alb, "status", "active")
	wantStr(t, alb, "effectivePeriod.start", "2011-01-03")
	wantStr(t, alb, "dosage.0.timing.repeat.period", "6")
	wantStr(t, alb, "dosage.0.timing.repeat.periodUnit", "h")
	wantStr(t, alb, "dosage.0.route.coding.0.system", "http://ncicb.nci.nih.gov/xml/owl/EVS/Thesaurus.owl")
	wantStr(t, alb, "dosage.0.doseAndRate.0.doseQuantity.value", "2")

	hb := find(s, "Observation", hasCode("code", record.LOINC, "718-7"))
	wantStr(t, hb, "valueQuantity.value", "13.2")
	wantStr(t, hb, "valueQuantity.code", "g/dL")
	wantStr(t, hb, "effectiveDateTime", "2008-03-19T08:30:00-08:00")
	wantStr(t, hb, "category.0.coding.0.code", "laboratory")
	wantStr(t, hb, "referenceRange.0.low.value", "12.0")
	wantStr(t, hb, "interpretation.0.coding.0.code", "N")

	cbc := find(s, "DiagnosticReport", hasCode("code", record.LOINC, "57021-8"))
	if cbc == nil || len(cbc.List("result")) != 5 {
		t.Fatalf("CBC report: %v", cbc)
	}
	ref := cbc.Str("result.0.reference")
	if ref != "Observation/"+hb.ID() {
		t.Errorf("report result[0] = %q, want Observation/%s", ref, hb.ID())
	}

	bp := find(s, "Observation", hasCode("code", record.LOINC, record.LoincBP))
	wantStr(t, bp, "component.0.valueQuantity.value", "132")
	wantStr(t, bp, "component.1.valueQuantity.value", "88")
	wantStr(t, bp, "category.0.coding.0.code", "vital-signs")
	if find(s, "Observation", hasCode("code", record.LOINC, record.LoincSystolic)) != nil {
		t.Error("systolic kept as an Observation of its own next to the BP panel")
	}
	for _, r := range s.recs {
		if strings.HasPrefix(r.Display, "Blood pressure: 132/88") {
			goto displayed
		}
	}
	t.Error("BP panel does not display as 132/88")
displayed:

	smoke := find(s, "Observation", hasCode("code", record.LOINC, "72166-2"))
	wantStr(t, smoke, "valueCodeableConcept.coding.0.code", "8517006")
	wantStr(t, smoke, "category.0.coding.0.code", "social-history")

	flu := find(s, "Immunization", hasCode("vaccineCode", record.CVX, "88"))
	wantStr(t, flu, "status", "completed")
	wantStr(t, flu, "occurrenceDateTime", "1999-11")
	wantStr(t, flu, "lotNumber", "1")
	refused := find(s, "Immunization", hasCode("vaccineCode", record.CVX, "103"))
	wantStr(t, refused, "status", "not-done")
	wantStr(t, refused, "statusReason.coding.0.code", "PATOBJ")

	pneu := find(s, "Condition", func(r record.Resource) bool { return r.Str("onsetDateTime") == "1998-03-10" })
	wantStr(t, pneu, "code.coding.0.code", "233604007")
	wantStr(t, pneu, "clinicalStatus.coding.0.code", "resolved")
	wantStr(t, pneu, "abatementDateTime", "1998-03-16")

	enc := s.ofType("Encounter")[0]
	wantStr(t, enc, "class.code", "AMB")
	wantStr(t, enc, "period.start", "2012-09-27T13:00:00-05:00")

	doc := s.ofType("DocumentReference")[0]
	wantStr(t, doc, "type.coding.0.code", "34133-9")
	wantStr(t, doc, "date", "2013-08-15T10:30:00-08:00")
	wantStr(t, doc, "description", "Patient Chart Summary")
	wantStr(t, doc, "content.0.attachment.contentType", "application/hl7-v3+xml")
	if doc.Get("content.0.format") != nil {
		t.Error("format code on an R2.0 document (HL7 has none for R2.0)")
	}
	orig, err := base64.StdEncoding.DecodeString(doc.Str("content.0.attachment.data"))
	if err != nil || !bytes.Equal(orig, read(t, hl7("Documents/CCD/CCD 1/CCD.XML"))) {
		t.Error("DocumentReference does not carry the original bytes")
	}
	wantStr(t, doc, "content.0.attachment.size", itoa(len(orig)))
}

func itoa(n int) string { return strconv.Itoa(n) }

// fragment imports one of the HL7 example fragments wrapped in a document.
func fragment(t *testing.T, p string) *memSink {
	t.Helper()
	s, err := importData(t, p, fragmentDoc(t, hl7(p)), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range s.fails {
		t.Errorf("item failed: %v", f)
	}
	return s
}

func TestAllergyEdgeCases(t *testing.T) {
	tests := []struct {
		file   string
		code   string // AllergyIntolerance code expected, "" for none
		skip   string // skip reason expected
		status string // clinicalStatus
		verif  string // verificationStatus, "" for none
	}{
		{"Allergies/No Known Allergies/No Known Allergies with Author Timestamp(C-CDA2.1).xml", snomedNKA, "", "active", "confirmed"},
		{"Allergies/No Known Medication Allergies/No Known Medication Allergies(C-CDA2.1).xml", snomedNKDA, "", "active", "confirmed"},
		// A negated allergy to a real substance is refuted, never an allergy.
		{"Allergies/Not Allergic to Peanuts/Not Allergic to Peanuts(C-CDAR2.1).xml", "762952008", "", "active", "refuted"},
		{"Allergies/Allergy to specific drug Codeine/Allergy to specific drug Codeine(C-CDA2.1).xml", "2670", "", "active", ""},
		{"Allergies/Allergy to food egg/Allergy to food egg(C-CDA2.1).xml", "102263004", "", "active", ""},
		{"Allergies/No Section Information Allergies/No Information Allergies(C-CDA2.1).xml", "", "", "", ""},
	}
	for _, tt := range tests {
		t.Run(filepath.Base(filepath.Dir(tt.file)), func(t *testing.T) {
			s := fragment(t, tt.file)
			all := s.ofType("AllergyIntolerance")
			if tt.code == "" {
				if len(all) != 0 {
					t.Fatalf("got %d AllergyIntolerance, want none", len(all))
				}
			} else {
				if len(all) != 1 {
					t.Fatalf("got %d AllergyIntolerance, want 1 (skips %v)", len(all), s.skips)
				}
				a := all[0]
				if cs := a.Codings("code"); len(cs) == 0 || cs[0].Code != tt.code {
					t.Errorf("code = %v, want %s", cs, tt.code)
				}
				wantStr(t, a, "clinicalStatus.coding.0.code", tt.status)
				wantStr(t, a, "verificationStatus.coding.0.code", tt.verif)
				if tt.code == snomedNKA || tt.code == snomedNKDA {
					wantStr(t, a, "code.coding.0.system", record.SNOMED)
				}
			}
			if tt.skip != "" && s.skips[tt.skip] != 1 {
				t.Errorf("skips %v, want %q", s.skips, tt.skip)
			}
		})
	}
}

func TestFragments(t *testing.T) {
	t.Run("medication refused", func(t *testing.T) {
		s := fragment(t, "Medications/Medication Refused/Medication Refused(C-CDAR2.1).xml")
		m := find(s, "MedicationStatement", hasCode("medicationCodeableConcept", record.RxNorm, "314076"))
		wantStr(t, m, "status", "not-taken")
		wantStr(t, m, "statusReason.0.coding.0.code", "105480006")
		wantStr(t, m, "medicationCodeableConcept.text", "Lisinopril 10mg Oral Tablet")
	})
	t.Run("no medications", func(t *testing.T) {
		// A negated Medication Activity of the generic 410942007 "drug or
		// medicament" says there are none: the IPS no-known-medications
		// statement, never a medication of its own.
		s := fragment(t, "Medications/No Medications/No Medications(C-CDA2.1).xml")
		m := s.ofType("MedicationStatement")
		if len(m) != 1 {
			t.Fatalf("%d MedicationStatements, skips %v", len(m), s.skips)
		}
		wantStr(t, m[0], "medicationCodeableConcept.coding.0.system", ipsAbsent)
		wantStr(t, m[0], "medicationCodeableConcept.coding.0.code", "no-known-medications")
		wantStr(t, m[0], "medicationCodeableConcept.coding.1.code", "")
		wantStr(t, m[0], "status", "active")
	})
	t.Run("unknown immunization status (nullFlavor entry)", func(t *testing.T) {
		s := fragment(t, "Immunizations/Unknown Immunization Status/Unknown Immunization Status(C-CDA2.1).xml")
		if n := len(s.ofType("Immunization")); n != 0 || s.skips["Immunization: no information (entry is a nullFlavor)"] != 1 {
			t.Errorf("%d Immunizations, skips %v", n, s.skips)
		}
	})
	t.Run("no known problems", func(t *testing.T) {
		s := fragment(t, "Problems/No Known Problems/No Known Problems(C-CDA2.1).xml")
		c := s.ofType("Condition")
		if len(c) != 1 {
			t.Fatalf("%d Conditions, skips %v", len(c), s.skips)
		}
		wantStr(t, c[0], "code.coding.0.code", "no-known-problems")
		wantStr(t, c[0], "code.coding.1.code", "") // not also 55607006 "Problem"
		wantStr(t, c[0], "verificationStatus.coding.0.code", "confirmed")
		wantStr(t, c[0], "onsetDateTime", "")
	})
	t.Run("greater than", func(t *testing.T) {
		s := fragment(t, "Results/Result with greater than a specified value/Result with greater than a specified value(C-CDA2.1).xml")
		o := find(s, "Observation", func(r record.Resource) bool { return r.Str("valueQuantity.comparator") != "" })
		wantStr(t, o, "valueQuantity.comparator", ">")
		wantStr(t, o, "valueQuantity.value", "500")
		wantStr(t, o, "valueQuantity.code", "mg/dL")
	})
	t.Run("less than", func(t *testing.T) {
		s := fragment(t, "Results/Results with less than specific value/Results with less than specific value(C-CDA2.1).xml")
		o := find(s, "Observation", func(r record.Resource) bool { return r.Str("valueQuantity.comparator") != "" })
		wantStr(t, o, "valueQuantity.comparator", "<=")
		wantStr(t, o, "valueQuantity.value", "5")
	})
	t.Run("urine color string", func(t *testing.T) {
		s := fragment(t, "Results/Result with an unstructured string as value (urine color)/Result with an unstructured string as value urine color (C-CDA2.1).xml")
		if find(s, "Observation", func(r record.Resource) bool { return r.Str("valueString") != "" }) == nil {
			t.Errorf("no valueString: %s", s.summary())
		}
	})
	t.Run("procedure refused", func(t *testing.T) {
		s := fragment(t, "Procedures/Procedure Refused/Procedures Section Procedure Procedure Refused(C-CDA2.1).xml")
		p := s.ofType("Procedure")
		if len(p) != 1 {
			t.Fatalf("%s", s.summary())
		}
		wantStr(t, p[0], "status", "not-done")
	})
	t.Run("patient demographics", func(t *testing.T) {
		s := fragment(t, "Header/Patient Demographic Information/Patient Demographic Information(C-CDA2.1).xml")
		p := s.ofType("Patient")
		if len(p) != 1 {
			t.Fatalf("%s", s.summary())
		}
		if p[0].Str("birthDate") == "" || p[0].Str("gender") == "" || len(p[0].List("address")) == 0 {
			t.Errorf("patient missing demographics: %v", p[0])
		}
	})
}

func TestUnstructuredPDF(t *testing.T) {
	s := importFile(t, hl7("Unstructured/CDA with Embedded PDF 1/Unstructured_Document_embed.xml"))
	docs := s.ofType("DocumentReference")
	if len(docs) != 1 || len(s.ofType("Patient")) != 1 {
		t.Fatalf("%s", s.summary())
	}
	d := docs[0]
	if n := len(d.List("content")); n != 2 {
		t.Fatalf("%d contents, want the document and its PDF", n)
	}
	wantStr(t, d, "content.1.attachment.contentType", "application/pdf")
	wantStr(t, d, "content.0.format.code", "urn:hl7-org:sdwg:ccda-nonXMLBody:2.1")
	pdf, err := base64.StdEncoding.DecodeString(d.Str("content.1.attachment.data"))
	if err != nil || !bytes.HasPrefix(pdf, []byte("%PDF-")) {
		t.Errorf("embedded file is not the PDF: %q", pdf[:min(8, len(pdf))])
	}
	wantStr(t, d, "content.1.attachment.size", itoa(len(pdf)))
	wantStr(t, d, "type.coding.0.code", "11490-0")

	ref := importFile(t, hl7("Unstructured/CDA reference PDF/Unstructured_Document_reference.xml"))
	wantStr(t, ref.ofType("DocumentReference")[0], "content.1.attachment.url", "UD_sample.pdf")
}

func TestVendorR11(t *testing.T) {
	// Kareo, an R1.1 export named .ccd.
	s := importFile(t, chb("Kareo Samples/Kareo_CCD_export_Joey_Miller.ccd"))
	m := find(s, "MedicationStatement", hasCode("medicationCodeableConcept", record.RxNorm, "432638"))
	wantStr(t, m, "medicationCodeableConcept.text", "acetaminophen-aspirin")
	imm := find(s, "Immunization", hasCode("vaccineCode", record.CVX, "33"))
	wantStr(t, imm, "occurrenceDateTime", "2014-05-15T00:53:16-07:00")
	wt := find(s, "Observation", hasCode("code", record.LOINC, "3141-9"))
	wantStr(t, wt, "valueQuantity.value", "160")
	wantStr(t, wt, "valueQuantity.code", "[lb_av]")
	wantStr(t, s.ofType("Patient")[0], "birthDate", "1947-10-10")

	// NextGen, a .txt, with zone-less times that take the document's zone.
	n := importFile(t, chb("NextGen Samples/CCDA_Sample_NextGen_JonesIsabella.txt"))
	if n.count()["Condition"] == 0 || n.count()["MedicationStatement"] == 0 {
		t.Errorf("NextGen: %s", n.summary())
	}
}

func TestTimezoneOption(t *testing.T) {
	doc := []byte(strings.Replace(string(read(t, "testdata/shell.xml")), "<!--BODY-->", `<component><section>
<code code="8716-3" codeSystem="2.16.840.1.113883.6.1"/>
<entry><observation classCode="OBS" moodCode="EVN"><code code="8867-4" codeSystem="2.16.840.1.113883.6.1"/>
<statusCode code="completed"/><effectiveTime value="201301021530"/><value xsi:type="PQ" value="72" unit="/min"/></observation></entry>
</section></component>`, 1))
	for _, tt := range []struct {
		opt, want string
	}{
		{"", "2013-01-02T15:30:00-05:00"}, // the document's own zone
		{"UTC", "2013-01-02T15:30:00+00:00"},
		{"+0530", "2013-01-02T15:30:00+05:30"},
	} {
		s, err := importData(t, "tz.xml", doc, map[string]string{OptionTimezone: tt.opt})
		if err != nil {
			t.Fatal(err)
		}
		wantStr(t, find(s, "Observation", hasCode("code", record.LOINC, "8867-4")), "effectiveDateTime", tt.want)
	}
	// No zone anywhere: the time is kept as written, without an offset
	// (DECISIONS 1), neither cut to its date nor shifted.
	noZone := bytes.Replace(doc, []byte(`<effectiveTime value="20200102030405-0500"/>`), []byte(`<effectiveTime value="20200102"/>`), 1)
	s, err := importData(t, "tz.xml", noZone, nil)
	if err != nil {
		t.Fatal(err)
	}
	wantStr(t, find(s, "Observation", hasCode("code", record.LOINC, "8867-4")), "effectiveDateTime", "2013-01-02T15:30:00")
	// An IANA zone gives the offset in force at that wall-clock time.
	s, err = importData(t, "tz.xml", noZone, map[string]string{OptionTimezone: "America/New_York"})
	if err != nil {
		t.Fatal(err)
	}
	wantStr(t, find(s, "Observation", hasCode("code", record.LOINC, "8867-4")), "effectiveDateTime", "2013-01-02T15:30:00-05:00")
}

func TestTS(t *testing.T) {
	z := &zoneSpec{fixed: "-05:00"}
	for _, tt := range []struct {
		in   string
		zone *zoneSpec
		want string
	}{
		{"2013", nil, "2013"},
		{"201308", nil, "2013-08"},
		{"20130815", nil, "2013-08-15"},
		{"20130815-0800", nil, "2013-08-15"},
		{"2013081510", nil, "2013-08-15T10:00:00"}, // no zone anywhere: as written
		{"201308151030", nil, "2013-08-15T10:30:00"},
		{"20130815103059.5", nil, "2013-08-15T10:30:59.5"},
		{"2013081510", z, "2013-08-15T10:00:00-05:00"},
		{"201308151030-0800", nil, "2013-08-15T10:30:00-08:00"},
		{"20130815103059+0100", nil, "2013-08-15T10:30:59+01:00"},
		{"20130815103059.123-0800", nil, "2013-08-15T10:30:59.123-08:00"},
		{"20130218031000-05", nil, "2013-02-18T03:10:00-05:00"},
		{"20220813124536-500", nil, "2022-08-13T12:45:36"}, // malformed zone: no zone
		{"20220813124536-500", z, "2022-08-13T12:45:36-05:00"},
		{"201302300000", nil, ""}, // 30 February
		{"200130212", nil, ""},
		{"2014030200908-0500", nil, ""},
		{"20131315", nil, ""},
		{"2013081525", nil, ""},
		{"abcd", nil, ""},
		{"", nil, ""},
		{"0000", nil, ""},
	} {
		if got := tsToFHIR(tt.in, tt.zone); got != tt.want {
			t.Errorf("tsToFHIR(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if got := tsToFHIR(tt.in, tt.zone); got != "" {
			if _, err := record.ParseDate(got); err != nil {
				t.Errorf("%q: record.ParseDate(%q): %v", tt.in, got, err)
			}
		}
	}
}

func TestCodeSystems(t *testing.T) {
	for oid, want := range map[string]string{
		"2.16.840.1.113883.6.88":     record.RxNorm,
		"2.16.840.1.113883.6.96":     record.SNOMED,
		"2.16.840.1.113883.6.1":      record.LOINC,
		"2.16.840.1.113883.12.292":   record.CVX,
		"2.16.840.1.113883.6.90":     "http://hl7.org/fhir/sid/icd-10-cm",
		"2.16.840.1.113883.6.103":    "http://hl7.org/fhir/sid/icd-9-cm",
		"2.16.840.1.113883.6.69":     "http://hl7.org/fhir/sid/ndc",
		"2.16.840.1.113883.4.9":      "http://fdasis.nlm.nih.gov",
		"2.16.840.1.113883.6.12":     "http://www.ama-assn.org/go/cpt",
		"2.16.840.1.113883.6.285":    "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets",
		"2.16.840.1.113883.3.26.1.1": "http://ncicb.nci.nih.gov/xml/owl/EVS/Thesaurus.owl",
		"1.2.3.4.5":                  "urn:oid:1.2.3.4.5",
		"not an oid":                 "",
	} {
		if got := systemURI(oid); got != want {
			t.Errorf("systemURI(%q) = %q, want %q", oid, got, want)
		}
	}
}

func TestIdentifiers(t *testing.T) {
	for _, tt := range []struct{ xml, sys, val string }{
		{`<id root="2.16.840.1.113883.19" extension="123"/>`, "urn:oid:2.16.840.1.113883.19", "123"},
		{`<id root="36E3E930-7B14-11DB-9FE1-0800200C9A66"/>`, "urn:ietf:rfc:3986", "urn:uuid:36e3e930-7b14-11db-9fe1-0800200c9a66"},
		{`<id root="2.16.840.1.113883.19"/>`, "urn:ietf:rfc:3986", "urn:oid:2.16.840.1.113883.19"},
		{`<id root="2.16.840.1.113883.4.6" extension="99"/>`, "http://hl7.org/fhir/sid/us-npi", "99"},
	} {
		root, _, err := parse([]byte(tt.xml), parseLimits{depth: 4, elements: 4})
		if err != nil {
			t.Fatal(err)
		}
		id := identifier(root)
		if id.str("system") != tt.sys || id.str("value") != tt.val {
			t.Errorf("%s: %s", tt.xml, id.marshal())
		}
	}
	root, _, _ := parse([]byte(`<id nullFlavor="NI"/>`), parseLimits{depth: 4, elements: 4})
	if identifier(root) != nil {
		t.Error("nullFlavor id mapped")
	}
}

// TestBadInput checks that malformed files fail with a ParseError naming
// the file and position, and leak no content into the message.
func TestBadInput(t *testing.T) {
	good := read(t, hl7("Documents/CCD/CCD 1/CCD.XML"))
	deep := "<ClinicalDocument xmlns=\"urn:hl7-org:v3\">" + strings.Repeat("<a>", 300) + strings.Repeat("</a>", 300) + "</ClinicalDocument>"
	tests := []struct {
		name string
		data []byte
		err  error
		line bool
	}{
		{"truncated", good[:len(good)/2], ErrTruncated, true},
		{"truncated in a tag", []byte("<ClinicalDocument xmlns=\"urn:hl7-org:v3\">\n<title>Betterhalf</ti"), nil, true},
		{"mismatched tags", []byte("<ClinicalDocument xmlns=\"urn:hl7-org:v3\">\n<title>Secret Name</code>\n</ClinicalDocument>"), ErrInvalidXML, true},
		{"doctype", []byte("<?xml version=\"1.0\"?>\n<!DOCTYPE ClinicalDocument SYSTEM \"file:///etc/passwd\">\n<ClinicalDocument xmlns=\"urn:hl7-org:v3\"/>"), ErrDTD, true},
		{"entity", []byte("<?xml version=\"1.0\"?>\n<!DOCTYPE d [<!ENTITY a \"aaaaaaaa\"><!ENTITY b \"&a;&a;&a;&a;\">]>\n<ClinicalDocument xmlns=\"urn:hl7-org:v3\">&b;</ClinicalDocument>"), ErrEntity, true},
		{"too deep", []byte(deep), ErrTooDeep, true},
		{"not C-CDA", []byte("<section xmlns=\"urn:hl7-org:v3\"><title>x</title></section>"), ErrNotCCDA, true},
		{"wrong namespace", []byte("<ClinicalDocument xmlns=\"urn:other\"/>"), ErrNotCCDA, true},
		{"JSON", []byte(`{"resourceType":"Patient"}`), ErrInvalidXML, true},
		{"empty", nil, ErrInvalidXML, false},
		{"two roots", []byte("<ClinicalDocument xmlns=\"urn:hl7-org:v3\"/>\n<ClinicalDocument xmlns=\"urn:hl7-org:v3\"/>"), ErrInvalidXML, true},
		{"unknown charset", []byte("<?xml version=\"1.0\" encoding=\"EBCDIC\"?>\n<ClinicalDocument xmlns=\"urn:hl7-org:v3\"/>"), ErrInvalidXML, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := importData(t, "/some/dir/bad.xml", tt.data, nil)
			var pe *importers.ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("err = %v, want *ParseError", err)
			}
			if pe.File != "bad.xml" {
				t.Errorf("File = %q", pe.File)
			}
			if tt.err != nil && !errors.Is(err, tt.err) {
				t.Errorf("err = %v, want %v", err, tt.err)
			}
			if tt.line && pe.Line == 0 {
				t.Errorf("no line in %v", err)
			}
			if strings.Contains(err.Error(), "Betterhalf") || strings.Contains(err.Error(), "Secret") {
				t.Errorf("error leaks content: %v", err)
			}
			if len(s.recs) != 0 {
				t.Errorf("%d records from a bad file", len(s.recs))
			}
		})
	}

	t.Run("too large", func(t *testing.T) {
		in := &importers.Input{Name: "big.xml", R: bytes.NewReader(nil), Size: MaxFileSize + 1}
		err := New().Import(t.Context(), in, newSink())
		if !errors.Is(err, ErrTooLarge) {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("bad base64 in nonXMLBody", func(t *testing.T) {
		doc := strings.Replace(string(read(t, "testdata/shell.xml")), "<structuredBody>\n      <!--BODY-->\n    </structuredBody>",
			`<nonXMLBody><text mediaType="application/pdf" representation="B64">!!!not base64!!!</text></nonXMLBody>`, 1)
		s, err := importData(t, "b64.xml", []byte(doc), nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(s.fails) != 1 || !errors.Is(s.fails[0], ErrEmbedded) || s.fails[0].Line == 0 || s.fails[0].Path == "" {
			t.Fatalf("fails = %v", s.fails)
		}
		if len(s.ofType("DocumentReference")) != 1 {
			t.Error("document not kept")
		}
	})
	t.Run("wrong types", func(t *testing.T) {
		// Values of the wrong shape are dropped, not turned into garbage.
		doc := strings.Replace(string(read(t, "testdata/shell.xml")), "<!--BODY-->", `<component><section>
<code code="30954-2" codeSystem="2.16.840.1.113883.6.1"/>
<entry><organizer classCode="BATTERY" moodCode="EVN"><code nullFlavor="UNK"/><statusCode code="completed"/>
<effectiveTime value="not a date"/>
<component><observation classCode="OBS" moodCode="EVN"><code code="2345-7" codeSystem="2.16.840.1.113883.6.1"/>
<effectiveTime value="2013"/><value xsi:type="PQ" value="twelve" unit="mg/dL"/></observation></component>
<component><observation classCode="OBS" moodCode="EVN"><code nullFlavor="UNK"/><value xsi:type="INT" value="x"/></observation></component>
</organizer></entry></section></component>`, 1)
		s, err := importData(t, "types.xml", []byte(doc), nil)
		if err != nil {
			t.Fatal(err)
		}
		o := find(s, "Observation", hasCode("code", record.LOINC, "2345-7"))
		if o == nil || o.Get("valueQuantity") != nil || o.Str("effectiveDateTime") != "2013" {
			t.Errorf("observation: %v", o)
		}
		if s.skips["Observation: no observation code (nullFlavor without original text)"] != 1 {
			t.Errorf("skips: %v", s.skips)
		}
		r := s.ofType("DiagnosticReport")
		if len(r) != 1 || r[0].Str("code.coding.0.code") != "2345-7" {
			t.Errorf("report: %v", r)
		}
	})
}

func TestContextCanceled(t *testing.T) {
	data := read(t, hl7("Documents/CCD/CCD 1/CCD.XML"))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err := New().Import(ctx, &importers.Input{Name: "x.xml", R: bytes.NewReader(data), Size: -1}, newSink())
	if err == nil {
		t.Error("canceled import succeeded")
	}
}

func FuzzImportCCDA(f *testing.F) {
	for _, p := range []string{
		hl7("Unstructured/CDA reference PDF/Unstructured_Document_reference.xml"),
		chb("Cerner Samples/problems-and-medications.xml"),
		"testdata/shell.xml",
	} {
		f.Add(read(f, p))
	}
	for _, p := range []string{
		"Allergies/No Known Allergies/No Known Allergies with Author Timestamp(C-CDA2.1).xml",
		"Vital Signs/Panel of Vital Signs in Metric Units/Panel of Vital Signs in Metric Units(C-CDA2.1).xml",
		"Medications/Med every 4-6 hours/Med every 4-6 hours(C-CDA2.1).xml",
		"Results/Result with greater than a specified value/Result with greater than a specified value(C-CDA2.1).xml",
	} {
		f.Add(fragmentDoc(f, hl7(p)))
	}
	// The smallest documents of the patterns no shared file shows
	// (nullified entries, names only in text, zone-less times).
	for _, body := range patternDocs {
		f.Add(shellDoc(f, body))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		New().Detect(data[:min(len(data), importers.DetectSize)])
		s, err := importData(t, "fuzz.xml", data, nil)
		if err != nil {
			var pe *importers.ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error is not a ParseError: %v", err)
			}
			return
		}
		for _, r := range s.recs {
			if _, err := record.Parse(r.Resource); err != nil {
				t.Fatalf("invalid resource: %v", err)
			}
		}
	})
}

func BenchmarkImportCCDA(b *testing.B) {
	paths, _ := filepath.Glob(filepath.Join(testdata, "chb-sample_ccdas", "EMERGE", "*.xml"))
	if len(paths) == 0 {
		b.Skip("no EMERGE files")
	}
	var files [][]byte
	var total int64
	for _, p := range paths {
		d := read(b, p)
		files = append(files, d)
		total += int64(len(d))
	}
	b.SetBytes(total)
	b.ReportAllocs()
	for b.Loop() {
		for _, d := range files {
			if _, err := importData(b, "bench.xml", d, nil); err != nil {
				b.Fatal(err)
			}
		}
	}
}
