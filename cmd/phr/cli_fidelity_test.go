package main

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"
)

// A file about someone else is refused: one line naming the file and what
// differs, exit 1, nothing written; --accept-patient-mismatch imports it
// and show says so.
func TestPatientMismatchCLI(t *testing.T) {
	c := newCLI(t)
	c.env["PHR_PASSPHRASE"] = testPassphrase
	c.ok("init", "--name", "Alice Example", "--birth-date", "1980-04-02")
	delete(c.env, "PHR_PASSPHRASE")
	file := shared + "fhir/synthea-r4/Jorge_Brekke_ac7921e0-c949-4b42-97f2-fad5d171cd01.json"
	before := c.vaultHash()
	code, out, errOut := c.run("import", file)
	if code != 1 {
		t.Fatalf("exit %d, want 1: %s %s", code, out, errOut)
	}
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 1 || !strings.Contains(lines[0], "Jorge_Brekke") || !strings.Contains(lines[0], "birth date and name differ") {
		t.Errorf("output %q: want one line naming the file and what differs", out)
	}
	if !strings.Contains(errOut, "--accept-patient-mismatch") {
		t.Errorf("no hint: %s", errOut)
	}
	if c.vaultHash() != before {
		t.Fatal("a refused file changed the vault")
	}
	code, rep, errOut := c.importJSON(file) // importJSON accepts mismatches
	if code != 0 || rep.Files[0].Added == 0 {
		t.Fatalf("accepted import: %d %s", code, errOut)
	}
	imm := c.list("list", "immunization")
	if len(imm) == 0 {
		t.Fatal("no immunizations imported")
	}
	var shown struct {
		Provenance struct {
			PatientMismatch bool `json:"patientMismatch"`
		} `json:"provenance"`
	}
	if err := json.Unmarshal([]byte(c.ok("show", imm[0]["id"].(string), "--json")), &shown); err != nil || !shown.Provenance.PatientMismatch {
		t.Fatalf("show --json: %v %+v", err, shown)
	}
	if text := c.ok("show", imm[0]["id"].(string)); !strings.Contains(text, "another person") {
		t.Errorf("show does not say the file was about another person:\n%s", text)
	}
}

// phr show patient shows who the vault is about; phr edit patient
// changes it; a vault without a name takes it from its first import.
func TestPatientShowEdit(t *testing.T) {
	c := newCLI(t)
	c.env["PHR_PASSPHRASE"] = testPassphrase
	c.ok("init") // no terminal, no flags: no name yet
	delete(c.env, "PHR_PASSPHRASE")
	out := c.ok("import", shared+"ccda/hl7-c-cda-examples/Documents/CCD/CCD 2/CCD.xml")
	if !strings.Contains(out, "took your name, birth date and sex from this file") {
		t.Fatalf("import did not say it took the owner's facts:\n%s", out)
	}
	show := c.ok("show", "patient")
	for _, want := range []string{"Birth date", "Sex"} {
		if !strings.Contains(show, want) {
			t.Errorf("show patient lacks %s:\n%s", want, show)
		}
	}
	c.ok("edit", "patient", "--name", "Alice Example", "--birth-date", "1980-04-02", "--sex", "female")
	show = c.ok("show", "me")
	for _, want := range []string{"Alice Example", "1980-04-02", "female"} {
		if !strings.Contains(show, want) {
			t.Errorf("show after edit lacks %q:\n%s", want, show)
		}
	}
	for _, bad := range [][]string{
		{"edit", "patient", "--birth-date", "1980-13-01"},
		{"edit", "patient", "--sex", "x"},
		{"edit", "patient", "--severity", "3"},
	} {
		if code, _, _ := c.run(bad...); code != 2 {
			t.Errorf("%v: exit %d, want 2", bad, code)
		}
	}
}

// A day typed by the patient stays that day in every time zone; a future
// time for something that happened is refused; a condition without an
// onset is not "since" the day it was recorded.
func TestDatesKeepPrecision(t *testing.T) {
	c := newCLI(t)
	c.initVault()
	c.ok("log", "med", "metformin", "--start", "2026-06-01")
	old := time.Local
	defer func() { time.Local = old }()
	for _, zone := range []string{"America/Los_Angeles", "Pacific/Kiritimati", "Asia/Kolkata", "UTC"} {
		loc, err := time.LoadLocation(zone)
		if err != nil {
			t.Skip(err)
		}
		time.Local = loc
		recs := c.list("list", "medication")
		if len(recs) != 1 || recs[0]["date"] != "2026-06-01" {
			t.Fatalf("%s: list --json date %v", zone, recs)
		}
		if out := c.ok("list", "medication"); !strings.Contains(out, "2026-06-01") {
			t.Errorf("%s: list shows\n%s", zone, out)
		}
		if out := c.ok("timeline", "medication"); !strings.Contains(out, "Monday 1 June 2026") {
			t.Errorf("%s: timeline shows\n%s", zone, out)
		}
	}
	time.Local = old
	for _, future := range [][]string{
		{"log", "dose", "ibuprofen", "--at", "2030-01-01"},
		{"log", "vital", "weight", "70kg", "--at", "tomorrow"},
		{"log", "symptom", "headache", "--at", "2099-05-01T10:00"},
		{"log", "immunization", "flu", "--date", "2031-01-01"},
	} {
		if code, _, errOut := c.run(future...); code != 2 || !strings.Contains(errOut, "future") {
			t.Errorf("%v: exit %d %s", future, code, errOut)
		}
	}
	c.ok("log", "condition", "asthma")
	cond := c.list("list", "condition")
	if len(cond) != 1 {
		t.Fatalf("conditions: %v", cond)
	}
	show := c.ok("show", cond[0]["id"].(string))
	if strings.Contains(show, "Since") || !strings.Contains(show, "Recorded on") {
		t.Errorf("a condition without an onset reads:\n%s", show)
	}
}

// What a newcomer tripped over: short ID prefixes say how long they must
// be, "-o -" is standard output, share expiries take w and y.
func TestNewcomerPolish(t *testing.T) {
	c := newCLI(t)
	c.initVault()
	c.ok("log", "med", "metformin")
	if code, _, errOut := c.run("show", "a6"); code != exitUsage || !strings.Contains(errOut, "at least its first 4 characters") {
		t.Errorf("short prefix: %d %s", code, errOut)
	}
	out := c.ok("export", "--format", "ndjson", "-o", "-")
	if !strings.Contains(out, `"resourceType":"MedicationStatement"`) {
		t.Errorf("export -o - wrote %q", out)
	}
	if _, err := os.Stat("-"); err == nil {
		t.Error("export -o - made a file named -")
	}
	for _, tt := range []struct {
		in   string
		want time.Duration
	}{{"1y", 365 * 24 * time.Hour}, {"2w", 14 * 24 * time.Hour}, {"30m", 30 * time.Minute}} {
		if d, err := parseExpiry(tt.in); err != nil || d != tt.want {
			t.Errorf("parseExpiry(%q) = %v, %v", tt.in, d, err)
		}
	}
	if _, err := parseExpiry("2y"); err == nil || !strings.Contains(err.Error(), "a year") {
		t.Errorf("2y: %v", err)
	}
	if code, _, _ := c.run("search", ""); code != exitUsage {
		t.Errorf("empty search: exit %d", code)
	}
}
