// Package atrest checks the promise of docs/design.md that nothing about
// the patient is readable at rest: it writes known, distinctive strings
// through every write path of the real phr binary and of phrd, then greps
// every byte phr and phrd left on disk for them.
package atrest

import (
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/phr-project/phr/pkg/server"
	"github.com/phr-project/phr/pkg/server/api"
	"github.com/phr-project/phr/pkg/share"
	"github.com/phr-project/phr/pkg/vault"
	"github.com/phr-project/phr/test/security/internal/e2e"
	"github.com/phr-project/phr/test/security/internal/phrdtest"
)

var phrBin string

func TestMain(m *testing.M) {
	// phrd runs in-process: its account passphrase slots and share
	// passcode hashes use test costs. The phr binary keeps production
	// costs; the test avoids its passphrase slots except where a command
	// needs one (restore).
	vault.ScryptWorkFactor = 10
	share.SetPasscodeCostForTesting(4)
	e2e.Main(m, "github.com/phr-project/phr/cmd/phr", &phrBin)
}

const testdata = "../../../../shared/testdata"

// A secret is a known plaintext string that went into phr through one
// write path.
type secret struct {
	text string
	// via is the write path (a command, an API route, a source file).
	via string
	// plain names the plaintext that must hold it (the positive control:
	// a string that never reached phr proves nothing by being absent).
	plain string
	// source, for imported strings, is the file it was taken from, which
	// must hold it too (csvName: the CSV file the test writes).
	source string
	// allow lists files (relative to a target's root) where the string
	// may appear, with the reason in the comment of the table.
	allow []string
}

// Plaintexts of the positive controls.
const (
	plainCLI       = "phr export, phr list --json and the decrypted backup of the CLI vault"
	plainPHRD      = "phrd's changes feed and phr export of the account vault"
	plainShareList = "phr share list"
	plainShareLog  = "phr share log"
	plainRemote    = "phr remote status"
	plainLinks     = "the share links and phr share list"
)

var (
	ccdaFile    = testdata + "/ccda/hl7-c-cda-examples/Documents/CCD/CCD 2/CCD.xml"
	bundleFile  = testdata + "/fhir/synthea-r4/Clemente_Kreiger_1484a42d-0eaf-4654-9cbf-6b050a5cd73b.json"
	ndjsonPat   = testdata + "/fhir/bulk-ndjson-10-patients/Patient.000.ndjson"
	ndjsonAll   = testdata + "/fhir/bulk-ndjson-10-patients/AllergyIntolerance.000.ndjson"
	shcFile     = testdata + "/shc/input/images/example-00-e-file.smart-health-card"
	shcBundle   = testdata + "/shc/input/images/example-00-a-fhirBundle.json"
	appleXML    = testdata + "/apple-health/dogsheep-healthkit-to-sqlite/tests/export.xml"
	appleZipDir = testdata + "/apple-health/dogsheep-healthkit-to-sqlite/tests/zip_contents"
	uploadFile  = testdata + "/ccda/chb-sample_ccdas/Kareo Samples/Kareo_CCD_export_Joey_Miller.ccd"
)

const (
	username    = "zorblax-atrest"
	accountPass = "Grommet-Vellichor-Passphrase-42"
	csvName     = "meds.csv"
	csvFile     = "type,name,value,unit,date,end_date,code,code_system,status,note\n" +
		"medication,Frobnizolam 20 mg tablet,20,mg,2024-01-05,,,,,\"twice daily, csv-Wibblethorpe\"\n" +
		"lab,Zentrifugal index,6.1,%,2024-02-10,,4548-4,loinc,final,\n" +
		"vital,bp,118/79,mmHg,2024-03-01T08:30,,,,,\n"
	fhirEditName = "symptom.json"
	fhirEdit     = `{"resourceType":"Observation","status":"final","code":{"text":"Gallimaufry tremor"},` +
		`"valueInteger":4,"effectiveDateTime":"2019-08-17T07:42:00Z"}`
)

// secrets is every known string, by write path.
var secrets = []secret{
	// phr init and phr log, edit (the CLI's vault).
	{text: "Zyxwqv", via: "phr init --name", plain: plainCLI},
	{text: "Plorkington", via: "phr init --name", plain: plainCLI},
	{text: "1987-03-14", via: "phr init --birth-date", plain: plainCLI},
	{text: "Quuxotrine", via: "phr log med, phr log dose", plain: plainCLI},
	{text: "Vexalgia of the left knee", via: "phr log med --reason", plain: plainCLI},
	{text: "Hrothgar Pennyfeather", via: "phr log med --note", plain: plainCLI},
	{text: "Snorklebread", via: "phr log dose --note", plain: plainCLI},
	{text: "Glimmering scotoma", via: "phr log symptom", plain: plainCLI},
	{text: "Wobblefrost aura", via: "phr log symptom --note", plain: plainCLI},
	{text: "2019-08-17T07:42", via: "phr log vital --at", plain: plainCLI},
	{text: "Zanzibrook Clinic", via: "phr log note", plain: plainCLI},
	{text: "Crumblewick syndrome", via: "phr log condition", plain: plainCLI},
	{text: "Brindlemoss fever", via: "phr log condition (then phr share update)", plain: plainCLI},
	{text: "Flibbertigibbet pollen", via: "phr log allergy", plain: plainCLI},
	{text: "Spangled hives", via: "phr log allergy --reaction", plain: plainCLI},
	{text: "Vorpalvax booster", via: "phr log immunization", plain: plainCLI},
	{text: "lot QX-99817", via: "phr log immunization --note", plain: plainCLI},
	{text: "Snarfquillin", via: "phr edit --name", plain: plainCLI},
	{text: "Reviewed by Dr. Ixworth", via: "phr edit --note", plain: plainCLI},
	{text: "Gallimaufry tremor", via: "phr edit --fhir", plain: plainCLI},
	// phr import, every format; strings taken from the source files.
	{text: "Frobnizolam 20 mg tablet", via: "phr import (csv)", plain: plainCLI, source: csvName},
	{text: "csv-Wibblethorpe", via: "phr import (csv)", plain: plainCLI, source: csvName},
	{text: "Zentrifugal index", via: "phr import (csv)", plain: plainCLI, source: csvName},
	{text: "Quimbleford Clinic", via: "phr import --source (csv): provenance", plain: plainCLI},
	{text: "Isabella", via: "phr import (ccda): patient given name", plain: plainCLI, source: ccdaFile},
	{text: "4567 Residence Rd", via: "phr import (ccda): patient address", plain: plainCLI, source: ccdaFile},
	{text: "Laparoscopic Appendectomy", via: "phr import (ccda): procedure", plain: plainCLI, source: ccdaFile},
	{text: "CBC with Ordered Manual Differential panel", via: "phr import (ccda): LOINC display", plain: plainCLI, source: ccdaFile},
	{text: "The Doctors Together Physician Group", via: "phr import (ccda): source organization", plain: plainCLI, source: ccdaFile},
	{text: "Good Health Laboratory", via: "phr import (ccda): performer organization", plain: plainCLI, source: ccdaFile},
	{text: "Kreiger", via: "phr import (fhir bundle): family name", plain: plainCLI, source: bundleFile},
	{text: "931 Doyle Corner Apt 89", via: "phr import (fhir bundle): address", plain: plainCLI, source: bundleFile},
	{text: "LAHEY HOSPITAL", via: "phr import (fhir bundle): organization", plain: plainCLI, source: bundleFile},
	{text: "Body mass index 30+ - obesity", via: "phr import (fhir bundle): condition", plain: plainCLI, source: bundleFile},
	{text: "Kassulke", via: "phr import (fhir bundle): practitioner", plain: plainCLI, source: bundleFile},
	{text: "Erythrocyte distribution width", via: "phr import (fhir bundle): LOINC display", plain: plainCLI, source: bundleFile},
	{text: "VonRueden376", via: "phr import (ndjson): mother's maiden name", plain: plainCLI, source: ndjsonPat},
	{text: "Kasandra729", via: "phr import (ndjson): given name", plain: plainCLI, source: ndjsonPat},
	{text: "Tree nut (substance)", via: "phr import (ndjson): allergy", plain: plainCLI, source: ndjsonAll},
	{text: "Anyperson", via: "phr import (shc): family name", plain: plainCLI, source: shcBundle},
	{text: "ABC General Hospital", via: "phr import (shc): performer", plain: plainCLI, source: shcBundle},
	{text: "1951-01-20", via: "phr import (shc): birth date", plain: plainCLI, source: shcBundle},
	{text: "Health Mate", via: "phr import (apple-health xml and zip): source", plain: plainCLI, source: appleXML},
	{text: "Withings User Identifier", via: "phr import (apple-health xml and zip): metadata", plain: plainCLI, source: appleXML},
	{text: "1990-02-02", via: "phr import (apple-health xml and zip): birth date", plain: plainCLI, source: appleXML},
	{text: "Clemente_Kreiger_1484a42d", via: "phr import: the file's name (provenance)", plain: plainCLI},
	// phrd: the API's write paths (the account's vault).
	{text: "Blorptastatin", via: "POST /api/v1/records (log med)", plain: plainPHRD},
	{text: "Umbriel Fensworth", via: "POST /api/v1/records (log med note)", plain: plainPHRD},
	{text: "GRLK-7731", via: "POST /api/v1/records (FHIR): observation code", plain: plainPHRD},
	{text: "Grelkin antibody titer", via: "POST /api/v1/records (FHIR): observation display", plain: plainPHRD},
	{text: "Ploonic reactivity resolved", via: "PUT /api/v1/records/:id", plain: plainPHRD},
	{text: "Reviewed by Nurse Oxtaby", via: "PUT /api/v1/records/:id", plain: plainPHRD},
	{text: "Glucometrix Zeta-9", via: "POST /api/v1/ingest: device", plain: plainPHRD},
	{text: "zeta9-Quorvex-", via: "POST /api/v1/ingest: reading ids", plain: plainPHRD},
	{text: "acetaminophen-aspirin buffered", via: "POST /api/v1/imports (ccda upload): medication", plain: plainPHRD, source: uploadFile},
	{text: "KAREO EHR", via: "POST /api/v1/imports (ccda upload): source system", plain: plainPHRD, source: uploadFile},
	{text: "Hypothyroidism", via: "POST /api/v1/imports (ccda upload): problem", plain: plainPHRD, source: uploadFile},
	{text: "Kareo_CCD_export_Joey_Miller", via: "POST /api/v1/imports: the upload's file name (provenance)", plain: plainPHRD},
	{text: "Gnarlwick laptop 7", via: "phr remote login --label (phrd device slot and audit)", plain: plainPHRD},
	// Shares: labels and recipients are sealed in shares.db.
	{text: "For Dr. Thistlewaite", via: "phr share create --label", plain: plainShareList},
	{text: "Ongoing Yarrowby plan", via: "phr share create --long-term --label", plain: plainShareList},
	{text: "Zephyrine handover", via: "POST /api/v1/shares (select) label", plain: plainShareList},
	{text: "Nurse Ambervale-Kross", via: "POST /shl/:id recipient (CLI share)", plain: plainShareLog},
	{text: "Dr. Quillfeather-Mbeki", via: "POST /shl/:id recipient (server share)", plain: plainShareLog},
	// The username: phrd keeps vault file names as HMACs of it. The CLI's
	// remote.json names the account it logs in to, by design: it is the
	// CLI's configuration, not health data.
	{text: username, via: "POST /api/v1/accounts", plain: plainRemote, allow: []string{"config/remote.json"}},
}

// env is everything the test sets up.
type env struct {
	home, inputs, exports, backups, phrdData string
	cli                                      *e2e.CLI
	base                                     string
	api                                      *api.Client
	logs                                     *e2e.SyncBuffer
	shutdown                                 func()
	plain                                    map[string][]byte // positive controls by name
	// links are the secrets of the three shares (manifest ids and link
	// keys), known only once they exist.
	links []secret
}

func mkdirs(t *testing.T, dirs ...string) {
	t.Helper()
	for _, d := range dirs {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestNothingReadableAtRest writes every secret through its write path,
// checks that each one reached a plaintext phr gives back (the positive
// control), then greps every file the CLI and phrd wrote, the backup, and
// phrd's log for every secret in every form of e2e.Forms: none may be
// there.
//
// Not searched, because they are plaintext on purpose: the inputs the
// test hands to phr (the CSV and FHIR files it writes, the files of
// the shared testdata), the exports (`phr export` writes plaintext FHIR
// for the patient to take elsewhere; they are the positive controls),
// and what the CLI prints.
func TestNothingReadableAtRest(t *testing.T) {
	root := t.TempDir()
	e := &env{
		home: filepath.Join(root, "home"), inputs: filepath.Join(root, "inputs"),
		exports: filepath.Join(root, "exports"), backups: filepath.Join(root, "backup"), phrdData: filepath.Join(root, "phrd"),
		plain: map[string][]byte{},
	}
	mkdirs(t, e.home, e.inputs, e.exports, e.backups)
	e.cli = e2e.NewCLI(phrBin, e.home)
	e.startPHRD(t)

	start := time.Now()
	phase := func(name string, f func(*testing.T)) {
		t0 := time.Now()
		f(t)
		t.Logf("%-28s %v", name, time.Since(t0).Round(time.Millisecond))
	}
	phase("CLI writes and imports", e.cliWrites)
	phase("API writes", e.apiWrites)
	phase("shares", e.shares)
	phase("rotate, backup, restore", e.backupRestoreExport)
	phase("phrd plaintext", func(t *testing.T) {
		e.plain[plainPHRD] = e.changes(t)
		e.shutdown() // closes the account's vault and shares.db
		e.plain[plainPHRD] = append(e.plain[plainPHRD], e.exportPHRD(t)...)
	})
	phase("positive controls", func(t *testing.T) { e.checkPositives(t, append(slices.Clone(secrets), e.links...)) })
	phase("grep", func(t *testing.T) { e.grepAtRest(t, secrets) })
	t.Run("share ids and keys", func(t *testing.T) { e.grepAtRest(t, e.links) })
	t.Run("file modes", e.checkModes)
	t.Logf("total %v", time.Since(start).Round(time.Millisecond))
}

func (e *env) startPHRD(t *testing.T) {
	p := phrdtest.Serve(t, server.Config{DataDir: e.phrdData})
	e.base, e.logs, e.shutdown = p.Base, p.Logs, p.Shutdown
	e.api = &api.Client{BaseURL: p.Base}
}

// cliWrites: init, log (every kind), edit (flags and a whole resource),
// and imports of every format.
func (e *env) cliWrites(t *testing.T) {
	c := e.cli
	// No passphrase slot: the device identity opens the vault without the
	// binary's production scrypt cost.
	c.OK(t, "init", "--no-passphrase", "--name", "Zyxwqv Plorkington", "--birth-date", "1987-03-14")
	med := e.cli.ID(t, "log", "med", "Quuxotrine", "--dose", "40 mg", "--frequency", "twice daily",
		"--reason", "Vexalgia of the left knee", "--note", "from Dr. Hrothgar Pennyfeather")
	e.cli.ID(t, "log", "dose", "Quuxotrine", "--amount", "40 mg", "--note", "taken with Snorklebread")
	e.cli.ID(t, "log", "symptom", "Glimmering scotoma", "--severity", "6", "--note", "Wobblefrost aura")
	e.cli.ID(t, "log", "vital", "bp", "131/87", "--at", "2019-08-17T07:42:00Z")
	e.cli.ID(t, "log", "note", "Appointment at Zanzibrook Clinic")
	cond := e.cli.ID(t, "log", "condition", "Crumblewick syndrome", "--onset", "2001-02-03")
	e.cli.ID(t, "log", "allergy", "Flibbertigibbet pollen", "--reaction", "Spangled hives", "--severity", "moderate")
	e.cli.ID(t, "log", "immunization", "Vorpalvax booster", "--date", "2020-05-06", "--note", "lot QX-99817")
	c.OK(t, "edit", med, "--name", "Snarfquillin")
	c.OK(t, "edit", cond, "--note", "Reviewed by Dr. Ixworth")
	// A second symptom, then its whole resource replaced.
	sym2 := e.cli.ID(t, "log", "symptom", "placeholder symptom", "--severity", "2")
	fhirPath := filepath.Join(e.inputs, fhirEditName)
	writeFile(t, fhirPath, []byte(fhirEdit))
	c.OK(t, "edit", sym2, "--fhir", fhirPath)

	csvPath := filepath.Join(e.inputs, csvName)
	writeFile(t, csvPath, []byte(csvFile))
	zipPath := filepath.Join(e.inputs, "export.zip")
	writeFile(t, zipPath, zipDir(t, appleZipDir))
	// The zip holds the same Apple Health export as the loose export.xml
	// (its workout route without locations): imported first, the zip
	// stores the records and the loose file finds them duplicates, so
	// both paths run over the same strings.
	out := c.OK(t, "import", "--json", "--accept-patient-mismatch", zipPath, ccdaFile, bundleFile, ndjsonPat, ndjsonAll, shcFile, appleXML)
	var rep struct {
		Files []struct {
			File, Format string
			Added        int
		}
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("import report: %v", err)
	}
	formats := map[string]int{}
	for _, f := range rep.Files {
		formats[f.Format] += f.Added
	}
	c.OK(t, "import", "--source", "Quimbleford Clinic", csvPath)
	for _, f := range []string{"apple-health", "ccda", "fhir", "ndjson", "shc"} {
		if formats[f] == 0 {
			t.Errorf("import added nothing in format %s: %v", f, formats)
		}
	}
}

// zipDir zips a directory as the Apple Health app exports it.
func zipDir(t *testing.T, dir string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	files, err := e2e.Files(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		rel, _ := filepath.Rel(dir, f)
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		w, err := zw.Create(filepath.ToSlash(rel))
		if err == nil {
			_, err = w.Write(data)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// apiWrites: records POST (log entry and FHIR) and PUT, ingest, an upload
// import, and a share phrd builds from the vault.
func (e *env) apiWrites(t *testing.T) {
	ctx := context.Background()
	c := e.api
	if _, err := c.CreateAccount(ctx, username, accountPass); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Login(ctx, api.SessionRequest{Username: username, Passphrase: accountPass}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.AddRecord(ctx, api.LogEntry{Log: "med", Name: "Blorptastatin", Dose: "10 mg", Note: "per Dr. Umbriel Fensworth"}); err != nil {
		t.Fatal(err)
	}
	obs := map[string]any{
		"resourceType": "Observation", "status": "final",
		"code": map[string]any{"coding": []any{map[string]any{
			"system": "urn:phr-test:codes", "code": "GRLK-7731", "display": "Grelkin antibody titer"}}},
		"valueString":       "Ploonic reactivity detected",
		"effectiveDateTime": "2025-06-07T10:00:00Z",
	}
	r, err := c.AddRecord(ctx, obs)
	if err != nil {
		t.Fatal(err)
	}
	obs["valueString"] = "Ploonic reactivity resolved"
	obs["note"] = []any{map[string]any{"text": "Reviewed by Nurse Oxtaby"}}
	body, _ := json.Marshal(obs)
	if _, err := c.UpdateRecord(ctx, r.ID, r.Version, body); err != nil {
		t.Fatal(err)
	}
	var readings []api.Reading
	for i := range 5 {
		v := float64(95 + i)
		readings = append(readings, api.Reading{ID: fmt.Sprintf("zeta9-Quorvex-%03d", i), Type: api.ReadingGlucose,
			Value: &v, Unit: "mg/dL", At: time.Date(2025, 6, 7, 8, i, 0, 0, time.UTC).Format(time.RFC3339)})
	}
	if res, err := c.Ingest(ctx, api.IngestRequest{Device: "Glucometrix Zeta-9", Readings: readings}); err != nil || res.Added != 5 {
		t.Fatalf("ingest: %+v, %v", res, err)
	}
	f, err := os.Open(uploadFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	imp, err := c.Import(ctx, filepath.Base(uploadFile), f, "", false, false)
	if err != nil || len(imp.Files) != 1 || imp.Files[0].Added == 0 {
		t.Fatalf("upload import: %+v, %v", imp, err)
	}
	// A share phrd builds and encrypts itself (the app's way).
	var created struct {
		ID, Link string
	}
	req := map[string]any{
		"expires_at": time.Now().Add(time.Hour).UTC().Format(time.RFC3339),
		"passcode":   "8152", "label": "Zephyrine handover",
		"select": map[string]any{"types": []string{"medication", "observation"}},
	}
	if _, err := c.Do(ctx, "POST", api.Prefix+"/shares", req, &created); err != nil {
		t.Fatal(err)
	}
	plain := openShare(t, created.Link, "Dr. Quillfeather-Mbeki", "8152")
	mustContain(t, "the share phrd built", plain, "Blorptastatin", "Grelkin antibody titer", "Ploonic reactivity resolved")
	e.addLink(t, "the share phrd built (POST /api/v1/shares with select)", created.ID, created.Link)
}

// addLink makes the share's manifest id and link key secrets: phrd keeps
// neither in the clear (shares.db holds HMACs of ids and never a key),
// nor does the CLI (a long-term share's key is sealed in the vault).
func (e *env) addLink(t *testing.T, via, id, link string) {
	t.Helper()
	p, err := share.Decode(link)
	if err != nil {
		t.Fatal(err)
	}
	e.plain[plainLinks] = append(e.plain[plainLinks], link+"\n"...)
	e.links = append(e.links,
		secret{text: id, via: via + ": manifest id", plain: plainLinks},
		secret{text: p.Key, via: via + ": link key", plain: plainLinks})
}

// openShare asks for a link's manifest (one wrong passcode first, so that
// the access log has both outcomes) and decrypts every file with the
// link's key.
func openShare(t *testing.T, link, recipient, passcode string) []byte {
	t.Helper()
	if passcode != "" {
		if status, _ := phrdtest.PostManifest(t, link, recipient, "0000-wrong"); status != http.StatusUnauthorized {
			t.Fatalf("wrong passcode: %d", status)
		}
	}
	return phrdtest.OpenShare(t, link, recipient, passcode)
}

func mustContain(t *testing.T, what string, data []byte, strs ...string) {
	t.Helper()
	h := e2e.NewHaystack(what, data)
	for _, s := range strs {
		if !h.Contains(s) {
			t.Errorf("%s does not hold %q", what, s)
		}
	}
}

// shares: phr remote login, share create (passcode), a long-term share
// and its update, then the share list and logs as the positive controls
// of labels and recipients.
func (e *env) shares(t *testing.T) {
	c := e.cli
	c.OKEnv(t, map[string]string{"PHR_PASSPHRASE": accountPass}, "remote", "login", e.base, "--user", username, "--label", "Gnarlwick laptop 7")
	var created struct{ ID, Link string }
	out := c.OK(t, "share", "create", "medication", "symptom", "--expires", "2h", "--passcode", "4711", "--label", "For Dr. Thistlewaite", "--json")
	if err := json.Unmarshal([]byte(out), &created); err != nil {
		t.Fatal(err)
	}
	plain := openShare(t, created.Link, "Nurse Ambervale-Kross", "4711")
	mustContain(t, "the CLI's share", plain, "Snarfquillin", "Glimmering scotoma", "Plorkington")
	e.addLink(t, "phr share create", created.ID, created.Link)
	var lt struct{ ID, Link string }
	out = c.OK(t, "share", "create", "condition", "--long-term", "--expires", "7d", "--label", "Ongoing Yarrowby plan", "--json")
	if err := json.Unmarshal([]byte(out), &lt); err != nil {
		t.Fatal(err)
	}
	c.OK(t, "log", "condition", "Brindlemoss fever", "--onset", "2002-03-04")
	c.OK(t, "share", "update", "--", lt.ID)
	p, err := share.Decode(lt.Link)
	if err != nil {
		t.Fatal(err)
	}
	if p.Flag != "L" {
		t.Fatalf("long-term link flag %q", p.Flag)
	}
	mustContain(t, "the long-term share after phr share update", openShare(t, lt.Link, "Dr. Update-Checker", ""), "Brindlemoss fever", "Crumblewick syndrome")
	e.addLink(t, "phr share create --long-term", lt.ID, lt.Link)
	e.plain[plainShareList] = []byte(c.OK(t, "share", "list", "--json"))
	e.plain[plainLinks] = append(e.plain[plainLinks], e.plain[plainShareList]...)
	var log []byte
	ids := []string{created.ID}
	var list []struct{ ID, Label string }
	if err := json.Unmarshal(e.plain[plainShareList], &list); err != nil {
		t.Fatal(err)
	}
	for _, s := range list {
		if s.Label == "Zephyrine handover" {
			ids = append(ids, s.ID)
		}
	}
	if len(ids) != 2 {
		t.Fatalf("share list: %s", e.plain[plainShareList])
	}
	for _, id := range ids {
		log = append(log, c.OK(t, "share", "log", "--", id)...)
	}
	e.plain[plainShareLog] = log
	e.plain[plainRemote] = []byte(c.OK(t, "remote", "status"))
}

// backupRestoreExport: key rotation (reseals every record), a backup to
// an age recipient, a restore into a second vault, and the exports.
func (e *env) backupRestoreExport(t *testing.T) {
	c := e.cli
	c.OK(t, "key", "rotate")
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	idFile := filepath.Join(e.inputs, "backup-identity.txt")
	writeFile(t, idFile, []byte(id.String()+"\n"))
	backup := filepath.Join(e.backups, "phr.age")
	c.OK(t, "backup", "-o", backup, "--recipient", id.Recipient().String())
	restored := filepath.Join(e.home, "data", "restored.phr")
	c.OKEnv(t, map[string]string{"PHR_IDENTITY": idFile, "PHR_PASSPHRASE": "Restored-Vault-Passphrase"},
		"restore", backup, "--into", restored)
	c.OK(t, "check")
	c.OK(t, "check", "--vault", restored)

	cliExport := filepath.Join(e.exports, "cli.json")
	c.OK(t, "export", "-o", cliExport)
	e.plain[plainCLI] = append(readFile(t, cliExport), c.OK(t, "list", "--json")...)
	restoredExport := filepath.Join(e.exports, "restored.json")
	c.OK(t, "export", "--vault", restored, "-o", restoredExport)
	mustContain(t, "the export of the restored vault", readFile(t, restoredExport), "Plorkington", "Snarfquillin", "Kreiger", "Anyperson")

	f, err := os.Open(backup)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := age.Decrypt(f, id)
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(r)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	mustContain(t, "the decrypted backup", plain, "Plorkington", "Snarfquillin", "Kreiger", "Anyperson", "Health Mate")
	e.plain[plainCLI] = append(e.plain[plainCLI], plain...)
}

// changes reads the account's whole changes feed (every record with its
// provenance: the export has the FHIR resources only) and its devices.
func (e *env) changes(t *testing.T) []byte {
	devs, err := e.api.Devices(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out, _ := json.Marshal(devs)
	var since uint64
	for {
		ch, err := e.api.Changes(context.Background(), since, 1000)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(ch.Changes)
		out = append(out, b...)
		since = ch.Next
		if !ch.More {
			return out
		}
	}
}

// exportPHRD exports the account's vault with the CLI, after phrd has
// shut down: the CLI opens a phrd vault with the account passphrase.
func (e *env) exportPHRD(t *testing.T) []byte {
	vaults, err := filepath.Glob(filepath.Join(e.phrdData, "vaults", "*.phr"))
	if err != nil || len(vaults) != 1 {
		t.Fatalf("phrd vaults: %v %v", vaults, err)
	}
	out := filepath.Join(e.exports, "phrd.json")
	e.cli.OKEnv(t, map[string]string{"PHR_PASSPHRASE": accountPass}, "export", "--vault", vaults[0], "-o", out)
	e.cli.OKEnv(t, map[string]string{"PHR_PASSPHRASE": accountPass}, "check", "--vault", vaults[0])
	return readFile(t, out)
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// checkPositives: every secret is in its plaintext, and every imported
// one in its source file. Without this, the grep could pass by finding
// nothing anywhere.
func (e *env) checkPositives(t *testing.T, secrets []secret) {
	hs := map[string]*e2e.Haystack{}
	for name, data := range e.plain {
		hs[name] = e2e.NewHaystack(name, data)
	}
	for _, s := range secrets {
		h, ok := hs[s.plain]
		if !ok {
			t.Fatalf("no plaintext %q", s.plain)
		}
		if !h.Contains(s.text) {
			t.Errorf("positive control: %q (%s) is not in %s, so its absence on disk proves nothing", s.text, s.via, s.plain)
		}
		if s.source == "" {
			continue
		}
		src := s.source
		if src == csvName { // written by the test
			src = filepath.Join(e.inputs, csvName)
		}
		if !bytes.Contains(readFile(t, src), []byte(s.text)) {
			t.Errorf("positive control: %q is not in its source file %s", s.text, src)
		}
	}
}

// A target is a tree of files phr or phrd wrote that must hold no
// secret.
type target struct {
	name, root string
}

// grepAtRest searches every file of every target (and phrd's log) for
// every form of every secret. It fails the test for each one found.
func (e *env) grepAtRest(t *testing.T, secrets []secret) {
	targets := []target{
		{"the CLI's home (vaults, restored vault, device identity, remote config)", e.home},
		{"the backup directory", e.backups},
		{"phrd's data directory (server key, account vaults, shares.db and its key, tmp)", e.phrdData},
	}
	forms := make([][]e2e.Form, len(secrets))
	nforms := 0
	for i, s := range secrets {
		forms[i] = e2e.Forms(s.text)
		nforms += len(forms[i])
	}
	var files, searched int
	var bytesRead, bytesSearched int64
	check := func(rel string, hs []*e2e.Haystack) {
		for _, h := range hs {
			searched++
			bytesSearched += int64(h.Len())
			for i, s := range secrets {
				f, off, found := h.Find(forms[i])
				if !found {
					continue
				}
				allowed := false
				for _, a := range s.allow {
					allowed = allowed || rel == a
				}
				switch {
				case allowed:
				default:
					t.Errorf("PLAINTEXT AT REST: %q (%s) in %s, as %s at byte %d", s.text, s.via, h.Name, f.Name, off)
				}
			}
		}
	}
	var sawVault, sawShares bool
	// The names of the files and directories, searched like their
	// contents: a vault or an upload named after its account or its file
	// would show who is in it.
	var names []byte
	for _, tg := range targets {
		err := filepath.WalkDir(tg.root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(tg.root, path)
			names = append(names, filepath.ToSlash(rel)+"\n"...)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	check("", []*e2e.Haystack{e2e.NewHaystack("the names of the files and directories", names)})
	for _, tg := range targets {
		paths, err := e2e.Files(tg.root)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range paths {
			data := readFile(t, p)
			files++
			bytesRead += int64(len(data))
			rel, _ := filepath.Rel(tg.root, p)
			t.Logf("  searched %-40s %9d bytes", filepath.Base(tg.root)+"/"+filepath.ToSlash(rel), len(data))
			sawVault = sawVault || strings.HasPrefix(rel, "vaults"+string(filepath.Separator))
			sawShares = sawShares || rel == "shares.db"
			hs, err := e2e.Expand(p, data)
			if err != nil {
				t.Fatal(err)
			}
			check(filepath.ToSlash(rel), hs)
		}
	}
	if !sawVault || !sawShares {
		t.Fatalf("phrd's data directory lacks a vault or shares.db: the grep would prove nothing")
	}
	logs := e.logs.Bytes()
	if len(logs) == 0 {
		t.Fatal("phrd logged nothing")
	}
	fileHaystacks, fileBytes := searched, bytesSearched
	check("", []*e2e.Haystack{e2e.NewHaystack("phrd's log", logs)})
	t.Logf("at rest: %d files of %d bytes (%d bytes with what they decompress to, in %d haystacks), and %d bytes of phrd's log, searched for %d strings in %d forms in all (raw in any case, hex, UTF-16LE, base64 and base64url at 3 alignments each)",
		files, bytesRead, fileBytes, fileHaystacks, len(logs), len(secrets), nforms)
}

// checkModes: every file phr and phrd wrote (vaults, the restored vault,
// the device identity, the remote configuration, heads, the backup, the
// exports, server.key, shares.db, sessions.db, the share key file beside
// the data directory) is 0600, and every directory they made is 0700:
// another local user reads none of them, not even their names
// (docs/security.md, threat model and "At rest"). The roots the test made
// itself (home, exports, backup) are 0700 too, so the walk checks them
// along with the rest.
func (e *env) checkModes(t *testing.T) {
	var files, dirs int
	for _, root := range []string{e.home, e.backups, e.exports, e.phrdData} {
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			fi, err := d.Info()
			if err != nil {
				return err
			}
			want := fs.FileMode(0o600)
			if d.IsDir() {
				want, dirs = 0o700, dirs+1
			} else {
				files++
			}
			if got := fi.Mode().Perm(); got != want {
				t.Errorf("%s: mode %04o, want %04o", path, got, want)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	keyFile := server.DefaultShareKeyFile(e.phrdData)
	if fi, err := os.Stat(keyFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("the share key file %s: %v, %v; want mode 0600", keyFile, fi, err)
	}
	// Without the files the walk would prove nothing: vaults (CLI and
	// restored), identity, remote.json, backup, two exports, server.key,
	// shares.db, sessions.db, an account vault.
	if files < 11 {
		t.Fatalf("only %d files to check", files)
	}
	t.Logf("modes: %d files 0600, %d directories 0700, and the share key file", files, dirs)
}
