package terminology

import "testing"

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
		// CVX from US Core 3.1.1, by URI, OID and THO's older URI.
		{CVX, "03", "measles, mumps and rubella virus vaccine", true},
		{"2.16.840.1.113883.12.292", "88", "influenza virus vaccine, unspecified formulation", true},
		{"http://terminology.hl7.org/CodeSystem/CVX", "140", "Influenza, seasonal, injectable, preservative free", true},
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
