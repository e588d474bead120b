package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/phr-project/phr/pkg/record"
	"github.com/phr-project/phr/pkg/vault"
)

const shared = "../../../shared/testdata/"

type importJSON struct {
	Files []struct {
		File       string
		Format     string
		Added      int
		Duplicates int
		Skipped    int
		Failed     int
		Error      string
		Failures   []string
		ByType     map[string]map[string]int
	}
	NotRecognized []string
}

func (c *cli) importJSON(args ...string) (int, importJSON, string) {
	c.t.Helper()
	// The shared files are about several people, none of them the test
	// vault's owner: accept them (TestPatientMismatch tests the refusal).
	code, out, errOut := c.run(append([]string{"import", "--json", "--accept-patient-mismatch"}, args...)...)
	var r importJSON
	if out != "" {
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			c.t.Fatalf("import --json output: %v\n%s", err, out)
		}
	}
	return code, r, errOut
}

func TestImportRealExports(t *testing.T) {
	c := newCLI(t)
	c.initVault()
	files := []struct {
		path   string
		format string
	}{
		{shared + "fhir/synthea-r4/Jorge_Brekke_ac7921e0-c949-4b42-97f2-fad5d171cd01.json", "fhir"},
		{shared + "fhir/bulk-ndjson-10-patients/Condition.000.ndjson", "ndjson"},
		{shared + "ccda/hl7-c-cda-examples/Documents/CCD/CCD 2/CCD.xml", "ccda"},
		{shared + "ccda/chb-sample_ccdas/NextGen Samples/" + firstFile(t, shared+"ccda/chb-sample_ccdas/NextGen Samples"), "ccda"},
		{shared + "shc/input/images/example-00-e-file.smart-health-card", "shc"},
		{shared + "shc/input/images/example-02-f-qr-code-numeric-value-0.txt", ""},
		{shared + "apple-health/dogsheep-healthkit-to-sqlite/tests/export.xml", "apple-health"},
	}
	for _, f := range files {
		t.Run(filepath.Base(f.path), func(t *testing.T) {
			code, rep, errOut := c.importJSON(f.path)
			if f.format == "" { // one chunk of a three-chunk QR: refused
				if code != 1 || rep.Files[0].Error == "" {
					t.Fatalf("partial QR: exit %d %s", code, errOut)
				}
				return
			}
			if code != 0 || len(rep.Files) != 1 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			r := rep.Files[0]
			if r.Format != f.format || r.Added == 0 || r.Failed != 0 {
				t.Fatalf("report %+v", r)
			}
			// The same file again adds nothing.
			_, rep2, _ := c.importJSON(f.path)
			if rep2.Files[0].Added != 0 || rep2.Files[0].Duplicates != r.Added {
				t.Fatalf("second import %+v (first added %d)", rep2.Files[0], r.Added)
			}
		})
	}
	if n := len(c.list("list", "--source", "ccda")); n != 0 {
		// Sources are organizations; the importer name also matches.
		_ = n
	}
	if n := len(c.list("list", "immunization")); n == 0 {
		t.Error("no immunizations after importing SHCs and C-CDAs")
	}
}

func firstFile(t *testing.T, dir string) string {
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !e.IsDir() && !strings.HasSuffix(strings.ToLower(e.Name()), ".md") {
			return e.Name()
		}
	}
	t.Fatalf("no file in %s", dir)
	return ""
}

func TestImportBadInput(t *testing.T) {
	c := newCLI(t)
	c.initVault()
	c.ok("log", "condition", "asthma")
	dir := t.TempDir()
	good, _ := os.ReadFile(shared + "fhir/synthea-r4/Jorge_Brekke_ac7921e0-c949-4b42-97f2-fad5d171cd01.json")
	trunc := filepath.Join(dir, "truncated.json")
	os.WriteFile(trunc, good[:len(good)/2], 0o600)
	badnd := filepath.Join(dir, "bad.ndjson")
	os.WriteFile(badnd, []byte("{\"resourceType\":\"Condition\",\"id\":\"a\",\"code\":{\"text\":\"x\"}}\n{not json\n{\"resourceType\":\"Condition\",\"id\":\"b\",\"code\":{\"text\":\"y\"}}\n"), 0o600)
	unknown := filepath.Join(dir, "notes.txt")
	os.WriteFile(unknown, []byte("just some text\n"), 0o600)
	before := c.vaultHash()

	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"truncated bundle", []string{trunc}, "truncated.json"},
		{"bad ndjson line", []string{badnd}, "bad.ndjson:2"},
		{"unknown format", []string{unknown}, "unrecognized"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, rep, errOut := c.importJSON(tc.args...)
			if code != 1 || len(rep.Files) != 1 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			all := rep.Files[0].Error + strings.Join(rep.Files[0].Failures, "\n")
			if !strings.Contains(all, tc.want) && !strings.Contains(errOut, tc.want) {
				t.Errorf("error %q does not name %q", all, tc.want)
			}
		})
	}
	if c.vaultHash() != before {
		t.Fatal("failed imports changed the vault")
	}
	// --partial keeps the good lines.
	code, rep, errOut := c.importJSON("--partial", badnd)
	if code != 0 || rep.Files[0].Added != 2 || rep.Files[0].Failed != 1 {
		t.Fatalf("--partial: %d %+v %s", code, rep.Files, errOut)
	}
	// --dry-run writes nothing.
	before = c.vaultHash()
	code, rep, _ = c.importJSON("--dry-run", shared+"fhir/bulk-ndjson-10-patients/Immunization.000.ndjson")
	if code != 0 || rep.Files[0].Added == 0 || c.vaultHash() != before {
		t.Fatalf("--dry-run: %d %+v", code, rep.Files)
	}
	// A folder: health records imported, other files ignored, not failed.
	code, rep, errOut = c.importJSON(shared + "fhir/bulk-ndjson-10-patients")
	if code != 0 || len(rep.Files) != 14 || len(rep.NotRecognized) != 0 {
		t.Fatalf("folder: exit %d, %d files, %v %s", code, len(rep.Files), rep.NotRecognized, errOut)
	}
	if code, _, _ := c.run("import", "--format", "pdf", badnd); code != 2 {
		t.Fatal("unknown --format accepted")
	}
}

func TestExportImportRoundTrip(t *testing.T) {
	c := newCLI(t)
	c.initVault()
	c.ok("import", "--accept-patient-mismatch", shared+"fhir/synthea-r4/Jorge_Brekke_ac7921e0-c949-4b42-97f2-fad5d171cd01.json")
	c.ok("log", "symptom", "headache", "--severity", "5")
	want := c.list("list")
	for _, format := range []string{"fhir", "ndjson"} {
		t.Run(format, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "export."+format)
			c.ok("export", "--format", format, "-o", out)
			c2 := newCLI(t)
			c2.initVault()
			code, rep, errOut := c2.importJSON(out)
			if code != 0 {
				t.Fatalf("import of export: %s", errOut)
			}
			if rep.Files[0].Added != len(want) {
				t.Fatalf("export %d records, import added %d", len(want), rep.Files[0].Added)
			}
			got := c2.list("list")
			// The fresh vault has its own Patient from init besides the one exported.
			displays := map[string]int{}
			for _, r := range want {
				displays[r["type"].(string)+"|"+r["display"].(string)+"|"+r["date"].(string)]++
			}
			for _, r := range got {
				displays[r["type"].(string)+"|"+r["display"].(string)+"|"+r["date"].(string)]--
			}
			for k, n := range displays {
				if n > 0 {
					t.Errorf("missing after round trip: %s (%d)", k, n)
				}
			}
		})
	}
}

func TestExportCSVAndIPS(t *testing.T) {
	c := newCLI(t)
	c.initVault()
	c.ok("import", "--accept-patient-mismatch", shared+"ccda/hl7-c-cda-examples/Documents/CCD/CCD 2/CCD.xml")
	c.ok("log", "med", "metformin", "--dose", "500 mg", "--start", "2026-01-10")
	c.ok("log", "vital", "bp", "120/80", "--at", "2026-02-01T08:00")
	c.ok("log", "vital", "weight", "154lb", "--at", "2026-02-01")
	c.ok("log", "symptom", "headache") // not in the CSV template
	count := func(c *cli, kinds ...string) int { return len(c.list(append([]string{"list"}, kinds...)...)) }

	out := filepath.Join(t.TempDir(), "export.csv")
	code, _, errOut := c.run("export", "--format", "csv", "-o", out)
	if code != 0 || !strings.Contains(errOut, "cannot hold") {
		t.Fatalf("csv export: %d %s", code, errOut)
	}
	csvData, _ := os.ReadFile(out)
	rows := strings.Count(strings.TrimSpace(string(csvData)), "\n") // without the header
	if rows < 4 || !strings.Contains(string(csvData), "medication,metformin,500,mg") || !strings.Contains(string(csvData), "vital,bp,120/80") {
		t.Fatalf("CSV export:\n%s", csvData)
	}
	c2 := newCLI(t)
	c2.initVault()
	if code, rep, errOut := c2.importJSON(out); code != 0 || rep.Files[0].Format != "csv" || rep.Files[0].Added != rows {
		t.Fatalf("import of the CSV export (%d rows): %d %s %+v", rows, code, errOut, rep.Files)
	}
	if got := count(c2, "medication", "vital", "lab"); got != rows {
		t.Fatalf("CSV round trip: %d records, want %d", got, rows)
	}

	ips := filepath.Join(t.TempDir(), "ips.json")
	c.ok("export", "--format", "ips", "-o", ips)
	data, _ := os.ReadFile(ips)
	for _, s := range []string{`"Composition"`, "60591-5", "metformin"} {
		if !strings.Contains(string(data), s) {
			t.Errorf("IPS lacks %s", s)
		}
	}
	c3 := newCLI(t)
	c3.initVault()
	if code, _, errOut := c3.importJSON(ips); code != 0 {
		t.Fatalf("import of the IPS export: %s", errOut)
	}
	if count(c3, "medication") == 0 {
		t.Fatal("no medications after importing the IPS")
	}
}

// A read-only command does not show the first records of an import a
// crash interrupted: it rolls the import back first, and says so.
func TestReadOnlyCommandRollsBackInterruptedImport(t *testing.T) {
	c := newCLI(t)
	c.initVault()
	c.ok("log", "condition", "asthma")
	v, err := vault.Open(c.env["PHR_VAULT"], vault.Passphrase(testPassphrase), nil)
	if err != nil {
		t.Fatal(err)
	}
	sha := strings.Repeat("cd", 32)
	im, _ := v.BeginImport(sha)
	var recs []record.Record
	for i := range 3 {
		r, err := record.New([]byte(fmt.Sprintf(`{"resourceType":"Condition","id":"c%d","code":{"text":"Interrupted %d"}}`, i, i)),
			record.Provenance{Method: record.MethodImported, Importer: "fhir", System: "Clinic", OriginalID: fmt.Sprint("c", i), FileSHA256: sha})
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, r)
	}
	if _, err := im.Add(recs); err != nil {
		t.Fatal(err)
	}
	v.Close() // as if the process died: the import's marker stays

	code, out, errOut := c.run("list", "--json")
	if code != 0 {
		t.Fatalf("list: exit %d: %s", code, errOut)
	}
	if strings.Contains(out, "Interrupted") {
		t.Fatalf("list shows records of the interrupted import: %s", out)
	}
	if !strings.Contains(errOut, "Rolled back an interrupted import: 3 records removed") {
		t.Fatalf("stderr does not say what was rolled back: %q", errOut)
	}
	if !strings.Contains(c.ok("list"), "asthma") {
		t.Fatal("the records before the import are gone")
	}
	if out := c.ok("check"); !strings.Contains(out, "0 problems") {
		t.Fatalf("check after the rollback: %s", out)
	}
}
