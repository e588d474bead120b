package fhirdoc

import (
	"strings"
	"testing"

	"github.com/phr-project/phr/pkg/record"
)

func sectionsByCode(t *testing.T, comp map[string]any) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	for _, s := range record.Resource(comp).List("section") {
		sec := s.(map[string]any)
		out[record.Resource(sec).Str("code.coding.0.code")] = sec
	}
	return out
}

func TestBuildIPS(t *testing.T) {
	v := sampleVault(t)
	data, err := BuildIPS(v.patient, v.recs, tb0)
	if err != nil {
		t.Fatal(err)
	}
	b := parseBundle(t, data)
	if b.Type != "document" || b.Timestamp != "2030-03-04T09:30:00Z" {
		t.Errorf("type %q timestamp %q", b.Type, b.Timestamp)
	}
	if b.Identifier == nil || !strings.HasPrefix(b.Identifier.Value, "urn:uuid:") || b.Identifier.System == "" {
		t.Errorf("document bundles need an identifier: %+v", b.Identifier)
	}
	checkReferences(t, b)
	comp := b.Entry[0].Resource
	if comp["resourceType"] != "Composition" {
		t.Fatalf("first entry is a %v", comp["resourceType"])
	}
	c := record.Resource(comp)
	if c.Str("status") != "final" || !c.HasCoding("type", record.LOINC, LOINCPatientSummary) || c.Str("date") != "2030-03-04T09:30:00Z" || c.Str("title") == "" {
		t.Errorf("composition header: %v", comp)
	}
	if b.Entry[1].Resource["resourceType"] != "Patient" || c.Str("subject.reference") != b.Entry[1].FullURL {
		t.Errorf("subject %q, second entry %v", c.Str("subject.reference"), b.Entry[1].Resource["resourceType"])
	}
	if c.Str("author.0.reference") != b.Entry[1].FullURL {
		t.Errorf("author %q, want the patient", c.Str("author.0.reference"))
	}

	byURL := map[string]map[string]any{}
	for _, e := range b.Entry {
		byURL[e.FullURL] = e.Resource
	}
	secs := sectionsByCode(t, comp)
	want := map[string][]string{
		LOINCAllergies:     {"AllergyIntolerance"},
		LOINCMedications:   {"MedicationStatement", "MedicationStatement"},
		LOINCProblems:      {"Condition"}, // not the entered-in-error one, not the deleted one
		LOINCImmunizations: {"Immunization"},
		LOINCResults:       {"Observation", "DiagnosticReport"},
		LOINCVitalSigns:    {"Observation"},
	}
	for code, types := range want {
		sec, ok := secs[code]
		if !ok {
			t.Errorf("section %s missing", code)
			continue
		}
		entries := record.Resource(sec).List("entry")
		if len(entries) != len(types) {
			t.Errorf("section %s has %d entries, want %d", code, len(entries), len(types))
			continue
		}
		got := map[string]int{}
		for _, e := range entries {
			got[byURL[e.(map[string]any)["reference"].(string)]["resourceType"].(string)]++
		}
		for _, typ := range types {
			got[typ]--
		}
		for typ, n := range got {
			if n != 0 {
				t.Errorf("section %s: %+d %s", code, n, typ)
			}
		}
		div := record.Resource(sec).Str("text.div")
		if !strings.HasPrefix(div, `<div xmlns="http://www.w3.org/1999/xhtml">`) || record.Resource(sec).Str("text.status") != "generated" {
			t.Errorf("section %s narrative %q", code, div)
		}
	}
	if _, ok := secs[LOINCProcedures]; ok {
		t.Errorf("empty optional section present")
	}
	// The Medication a statement references is in the bundle; symptoms
	// are not (no section takes them, nothing references them).
	if len(findEntries(b, "Medication")) != 1 {
		t.Errorf("referenced Medication missing")
	}
	for _, o := range findEntries(b, "Observation") {
		if record.KindOf(record.Resource(o)) == record.KindSymptom {
			t.Errorf("symptom included in the summary")
		}
	}
	for _, cnd := range findEntries(b, "Condition") {
		if cnd["id"] == "cond-err" {
			t.Errorf("entered-in-error condition included")
		}
	}

	// HTML in a medication name is escaped in the narrative.
	med := record.Resource(secs[LOINCMedications]).Str("text.div")
	if strings.Contains(med, "<script") || !strings.Contains(med, "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; Co") {
		t.Errorf("medication narrative not escaped: %s", med)
	}
	if !strings.Contains(med, "<li>Metformin 500 mg tablet (2029-06-01)</li>") {
		t.Errorf("medication narrative lacks the imported statement: %s", med)
	}
}

func TestBuildIPSEmpty(t *testing.T) {
	data, err := BuildIPS(record.Record{}, nil, tb0)
	if err != nil {
		t.Fatal(err)
	}
	b := parseBundle(t, data)
	checkReferences(t, b)
	if len(b.Entry) != 3 { // Composition, Patient, Device
		t.Fatalf("%d entries", len(b.Entry))
	}
	comp := record.Resource(b.Entry[0].Resource)
	dev := b.Entry[2]
	if dev.Resource["resourceType"] != "Device" || comp.Str("author.0.reference") != dev.FullURL {
		t.Errorf("author %q, third entry %v", comp.Str("author.0.reference"), dev.Resource)
	}
	// IPS requires a name with a family, given or text (ips-pat-1) and a
	// birth date: absent, and said so, rather than invented.
	if p := record.Resource(b.Entry[1].Resource); p.Str("name.0._text.extension.0.valueCode") != "unknown" || p.Str("_birthDate.extension.0.valueCode") != "unknown" {
		t.Errorf("placeholder patient %v", b.Entry[1].Resource)
	}
	secs := sectionsByCode(t, b.Entry[0].Resource)
	if len(secs) != 3 {
		t.Errorf("%d sections, want the 3 required ones", len(secs))
	}
	for _, code := range []string{LOINCAllergies, LOINCMedications, LOINCProblems} {
		sec := record.Resource(secs[code])
		if sec.Str("emptyReason.coding.0.code") != "unavailable" || sec.Get("entry") != nil || !strings.Contains(sec.Str("text.div"), "No information") {
			t.Errorf("empty section %s: %v", code, secs[code])
		}
	}
}

func TestEscapeText(t *testing.T) {
	if got := escapeText("a<b>&\"c'\x00\x1b"); got != "a&lt;b&gt;&amp;&#34;c&#39;  " {
		t.Errorf("escapeText = %q", got)
	}
}

// stored wraps a resource as a record stored before imports were
// normalized: no published names, units and placeholders as the source
// wrote them.
func stored(t *testing.T, resource string) record.Record {
	t.Helper()
	r := record.Record{ID: record.NewID(), Provenance: record.Provenance{Method: record.MethodImported, Importer: "fhir"}, Resource: []byte(resource)}
	if err := r.Derive(); err != nil {
		t.Fatal(err)
	}
	return r
}

// TestBuildIPSNegationsAndNames: negated records are entries of their
// sections but never listed as events; "no known ..." statements sit in
// their sections; codes of records stored before normalization read as
// their published names, units as UCUM, placeholders dropped; a
// medication named by reference reads as the Medication (the pattern of
// the SMART Health Cards example 02: a Medication coded in SNOMED CT
// without a display; its code there, 108774000, is not in the Global
// Patient Set, so this test uses one that is).
func TestBuildIPSNegationsAndNames(t *testing.T) {
	recs := []record.Record{
		stored(t, `{"resourceType":"Immunization","id":"imm-refused","status":"not-done","vaccineCode":{"coding":[{"system":"http://hl7.org/fhir/sid/cvx","code":"88"}]},
			"statusReason":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v3-ActReason","code":"PATOBJ"}]},"occurrenceDateTime":"2024-10-01"}`),
		stored(t, `{"resourceType":"Immunization","id":"imm-given","status":"completed","vaccineCode":{"coding":[{"system":"urn:oid:2.16.840.1.113883.12.292","code":"03"}]},"occurrenceDateTime":"2020-05-01"}`),
		stored(t, `{"resourceType":"AllergyIntolerance","id":"nka","code":{"coding":[{"system":"http://snomed.info/sct","code":"716186003"}]},"recordedDate":"2023-01-01"}`),
		stored(t, `{"resourceType":"Condition","id":"refuted","verificationStatus":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/condition-ver-status","code":"refuted"}]},"code":{"text":"Asthma"},"recordedDate":"2022-01-01"}`),
		stored(t, `{"resourceType":"Condition","id":"htn","code":{"coding":[{"system":"http://snomed.info/sct","code":"UNK"}],"text":"Hypertension"},"recordedDate":"2021-01-01"}`),
		stored(t, `{"resourceType":"Medication","id":"m1","code":{"coding":[{"system":"http://snomed.info/sct","code":"109081006"}]}}`),
		stored(t, `{"resourceType":"MedicationStatement","id":"ms1","status":"active","medicationReference":{"reference":"Medication/m1"},"effectiveDateTime":"2015-03-01"}`),
		stored(t, `{"resourceType":"Observation","id":"hb","status":"final","category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"laboratory"}]}],
			"code":{"text":"Hemoglobin"},"valueQuantity":{"value":13.2,"unit":"G/DL","system":"http://unitsofmeasure.org","code":"G/DL"},"effectiveDateTime":"2024-01-01"}`),
	}
	data, err := BuildIPS(record.Record{}, recs, tb0)
	if err != nil {
		t.Fatal(err)
	}
	b := parseBundle(t, data)
	checkReferences(t, b)
	secs := sectionsByCode(t, b.Entry[0].Resource)
	div := func(code string) string { return record.Resource(secs[code]).Str("text.div") }

	imm := div(LOINCImmunizations)
	events, others, _ := strings.Cut(imm, "Recorded as not done")
	if !strings.Contains(events, "<li>measles, mumps and rubella virus vaccine (2020-05-01)</li>") {
		t.Errorf("given vaccine not listed by name: %s", imm)
	}
	if strings.Contains(events, "influenza") || !strings.Contains(others, "<li>influenza virus vaccine, unspecified formulation — not given: patient objection (2024-10-01)</li>") {
		t.Errorf("refused vaccine listed as given, or not as refused: %s", imm)
	}
	if n := len(record.Resource(secs[LOINCImmunizations]).List("entry")); n != 2 {
		t.Errorf("%d immunization entries, want both", n)
	}

	all := div(LOINCAllergies)
	if ev, _, _ := strings.Cut(all, "Recorded as not done"); strings.Contains(ev, "No known") || !strings.Contains(all, "No known allergy (2023-01-01)") || len(record.Resource(secs[LOINCAllergies]).List("entry")) != 1 {
		t.Errorf("no known allergy: %s", all)
	}
	prob := div(LOINCProblems)
	if ev, _, _ := strings.Cut(prob, "Recorded as not done"); strings.Contains(ev, "Asthma") || !strings.Contains(prob, "Asthma — refuted") || !strings.Contains(ev, "Hypertension") {
		t.Errorf("problems: %s", prob)
	}
	if med := div(LOINCMedications); !strings.Contains(med, "<li>Product containing metformin (2015-03-01)</li>") {
		t.Errorf("medication by reference: %s", med)
	}

	for _, ms := range findEntries(b, "MedicationStatement") {
		if record.Resource(ms).Str("medicationReference.display") != "Product containing metformin" {
			t.Errorf("reference display not written: %v", ms["medicationReference"])
		}
	}
	for _, c := range findEntries(b, "Condition") {
		if c["id"] == "htn" && record.Resource(c).Get("code.coding") != nil {
			t.Errorf("placeholder coding exported: %v", c["code"])
		}
	}
	for _, a := range findEntries(b, "AllergyIntolerance") {
		if record.Resource(a).Str("code.coding.0.display") != "No known allergy" {
			t.Errorf("display not filled: %v", a["code"])
		}
	}
	for _, o := range findEntries(b, "Observation") {
		if q := record.Resource(o); q.Str("valueQuantity.code") != "g/dL" || q.Str("valueQuantity.unit") != "G/DL" {
			t.Errorf("unit: %v", o["valueQuantity"])
		}
	}
}
