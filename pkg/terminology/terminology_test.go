package terminology

import (
	"os"
	"strings"
	"testing"
)

func TestDisplay(t *testing.T) {
	tests := []struct {
		system, code, want string
		ok                 bool
	}{
		// SNOMED CT from the Global Patient Set, semantic tag removed; by
		// URI, by C-CDA's OID, by urn:oid.
		{SNOMED, "373270004", "Substance with penicillin structure and antibacterial mechanism of action", true},
		{"2.16.840.1.113883.6.96", "716186003", "No known allergy", true},
		{"urn:oid:2.16.840.1.113883.6.96", "409137002", "No known drug allergy", true},
		{"https://snomed.info/sct/", "160245001", "No current problems or disability", true},
		{SNOMED, "6736007", "Moderate (severity modifier)", true}, // FSN "... (severity modifier) (qualifier value)"
		// CVX from the CDC's table, by URI, OID and THO's older URI (140
		// had the name "Influenza, seasonal, injectable, preservative free"
		// in US Core 3.1.1; the CDC's current name wins).
		{CVX, "03", "measles, mumps and rubella virus vaccine", true},
		{"2.16.840.1.113883.12.292", "88", "influenza virus vaccine, unspecified formulation", true},
		{"http://terminology.hl7.org/CodeSystem/CVX", "140", "Influenza, split virus, trivalent, injectable, preservative free", true},
		// LOINC: IPS sections and answers.
		{LOINC, "11450-4", "Problem list - Reported", true},
		{"2.16.840.1.113883.6.1", "LA6751-7", "Moderate", true},
		{"http://loinc.org/", "48765-2", "Allergies and adverse reactions Document", true},
		// RxNorm from US Core's allergy substances.
		{"2.16.840.1.113883.6.88", "7980", "Penicillin G", true},
		// HL7 code systems and their OIDs.
		{"http://terminology.hl7.org/CodeSystem/condition-ver-status", "refuted", "Refuted", true},
		{"http://terminology.hl7.org/CodeSystem/v3-ActReason", "PATOBJ", "patient objection", true},
		{"2.16.840.1.113883.5.1008", "UNK", "unknown", true},
		// Goals and claims as Synthea and Blue Button write them, without displays.
		{"http://terminology.hl7.org/CodeSystem/goal-achievement", "in-progress", "In Progress", true},
		{"http://terminology.hl7.org/CodeSystem/claim-type", "institutional", "Institutional", true},
		{"http://terminology.hl7.org/CodeSystem/processpriority", "normal", "Normal", true},
		{"http://terminology.hl7.org/CodeSystem/ex-diagnosistype", "principal", "Principal Diagnosis", true},
		{"2.16.840.1.113883.5.4", "AMB", "ambulatory", true},
		// Unknown codes and systems.
		{SNOMED, "999999999999", "", false},
		{"http://example.org/local", "373270004", "", false},
		{SNOMED, "", "", false},
		{"", "", "", false},
	}
	for _, tt := range tests {
		got, ok := Display(tt.system, tt.code)
		if got != tt.want || ok != tt.ok {
			t.Errorf("Display(%q, %q) = %q, %v; want %q, %v", tt.system, tt.code, got, ok, tt.want, tt.ok)
		}
	}
}

// CVX codes the CDC added after 2019 (US Core 3.1.1's list) have the
// CDC's names (internal/gen/cvx-cdc-20251031.tsv).
func TestDisplayCVXAfter2019(t *testing.T) {
	tests := []struct{ code, want string }{
		{"213", "SARS-COV-2 (COVID-19) vaccine, UNSPECIFIED"},
		{"229", "SARS-COV-2 (COVID-19) vaccine, mRNA, spike protein, LNP, bivalent, preservative free, 50 mcg/0.5 mL or 25 mcg/0.25 mL dose"},
		{"303", "Respiratory syncytial virus (RSV), vaccine, recombinant, protein subunit RSV prefusion F, adjuvant reconstituted, 0.5 mL, preservative free"},
		{"309", "SARS-COV-2 (COVID-19) vaccine, mRNA, spike protein, LNP, preservative free, tris-sucrose, 30 mcg/0.3 mL dose"},
		{"334", "SARS-COV-2 (COVID-19) vaccine, mRNA, spike protein, LNP, preservative free, 10 mcg/0.2 mL dose"},
		{"512", "SARS-COV-2 COVID-19 Virus Like Particle (VLP) Non-US Vaccine Product (Medicago, Covifenz)"},
	}
	for _, tt := range tests {
		for _, sys := range []string{CVX, "2.16.840.1.113883.12.292", "urn:oid:2.16.840.1.113883.12.292"} {
			if got, ok := Display(sys, tt.code); got != tt.want || !ok {
				t.Errorf("Display(%q, %q) = %q, %v; want %q", sys, tt.code, got, ok, tt.want)
			}
		}
	}
}

// Every code of the CDC's CVX table has the table's name in the embedded
// data: the data was generated from the file that is checked in, and no
// other source overrides the CDC.
func TestDisplayCVXTable(t *testing.T) {
	data, err := os.ReadFile("internal/gen/cvx-cdc-20251031.tsv")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for i, line := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		code, want, ok := strings.Cut(line, "\t")
		if !ok {
			t.Fatalf("cvx-cdc-20251031.tsv:%d: no tab", i+1)
		}
		n++
		if got, ok := Display(CVX, code); got != want || !ok {
			t.Errorf("CVX %s: Display = %q, %v; the CDC's table says %q", code, got, ok, want)
		}
	}
	if n < 280 {
		t.Fatalf("only %d CVX codes in the table", n)
	}
}

func TestSystem(t *testing.T) {
	tests := map[string]string{
		"2.16.840.1.113883.6.1":                     LOINC,
		"urn:oid:2.16.840.1.113883.6.1":             LOINC,
		"2.16.840.1.113883.6.96":                    SNOMED,
		"2.16.840.1.113883.6.88":                    RxNorm,
		"2.16.840.1.113883.12.292":                  CVX,
		"2.16.840.1.113883.6.8":                     UCUMSystem,
		"2.16.840.1.113883.5.1008":                  NullFlavor,
		"http://terminology.hl7.org/CodeSystem/CVX": CVX,
		"https://loinc.org":                         LOINC,
		LOINC:                                       LOINC,
		"http://example.org/x":                      "http://example.org/x",
		"":                                          "",
	}
	for in, want := range tests {
		if got := System(in); got != want {
			t.Errorf("System(%q) = %q, want %q", in, got, want)
		}
	}
	if Name("2.16.840.1.113883.6.96") != "SNOMED CT" || Name("http://example.org") != "" {
		t.Errorf("Name: %q %q", Name("2.16.840.1.113883.6.96"), Name("http://example.org"))
	}
}

func TestIsPlaceholder(t *testing.T) {
	tests := []struct {
		system, code string
		want         bool
	}{
		{"", "", true},
		{SNOMED, "  ", true},
		{SNOMED, "UNK", true},
		{"http://example.org/local", "Unknown", true},
		{"http://example.org/local", "UNKNOWN", true},
		{NullFlavor, "NI", true},
		{"2.16.840.1.113883.5.1008", "OTH", true},
		{DataAbsentReason, "asked-unknown", true},
		{LOINC, "NA", true},
		{"", "NI", true},
		{CVX, "NAV", true},
		{"http://hl7.org/fhir/sid/icd-10-cm", "NI", true},
		// A local system may have real codes that look like null flavors.
		{"http://example.org/lab", "NA", false},
		{"http://example.org/lab", "NI", false},
		{SNOMED, "716186003", false},
		{CVX, "03", false},
		{LOINC, "8480-6", false},
	}
	for _, tt := range tests {
		if got := IsPlaceholder(tt.system, tt.code); got != tt.want {
			t.Errorf("IsPlaceholder(%q, %q) = %v, want %v", tt.system, tt.code, got, tt.want)
		}
	}
}

func BenchmarkDisplay(b *testing.B) {
	Display(SNOMED, "1")
	for b.Loop() {
		Display("2.16.840.1.113883.6.96", "716186003")
	}
}

func BenchmarkLoad(b *testing.B) {
	for b.Loop() {
		load()
	}
}

// TestDisplayConcurrentFirstUse: lookups from many goroutines at once are
// safe (run with -race); run alone (-run TestDisplayConcurrentFirstUse)
// they are also the table's first use.
func TestDisplayConcurrentFirstUse(t *testing.T) {
	done := make(chan string)
	for range 8 {
		go func() {
			d, _ := Display("2.16.840.1.113883.6.96", "716186003")
			done <- d
		}()
	}
	for range 8 {
		if d := <-done; d != "No known allergy" {
			t.Errorf("Display = %q", d)
		}
	}
}

// Names gives exactly what Display gives, for every name of a system, and
// a copy: changing it changes no lookup.
func TestNames(t *testing.T) {
	tests := []struct {
		system string
		min    int // at least this many codes
	}{
		{CVX, 280},
		{"urn:oid:2.16.840.1.113883.12.292", 280}, // by alias
		{LOINC, 50},
		{NullFlavor, 10},
		{UCUMSystem, 0},           // units are not named
		{"http://example.org", 0}, // a local system
		{"", 0},
	}
	for _, tt := range tests {
		got := Names(tt.system)
		if tt.min == 0 {
			if got != nil {
				t.Errorf("Names(%q) has %d codes, want nil", tt.system, len(got))
			}
			continue
		}
		if len(got) < tt.min {
			t.Errorf("Names(%q) has %d codes, want at least %d", tt.system, len(got), tt.min)
		}
		for code, name := range got {
			if d, ok := Display(tt.system, code); d != name || !ok {
				t.Errorf("Names(%q)[%q] = %q; Display gives %q, %v", tt.system, code, name, d, ok)
			}
		}
	}
	m := Names(CVX)
	if m["229"] == "" {
		t.Fatal("Names(CVX) lacks 229")
	}
	m["229"] = "changed"
	delete(m, "03")
	if d, _ := Display(CVX, "229"); d == "changed" {
		t.Error("changing the map Names returned changed Display")
	}
	if _, ok := Names(CVX)["03"]; !ok {
		t.Error("deleting from the map Names returned changed the next Names")
	}
}
