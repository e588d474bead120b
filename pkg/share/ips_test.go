package share

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
	if record.Resource(b.Entry[1].Resource).Str("name.0.extension.0.valueCode") != "unknown" {
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
