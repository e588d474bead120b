package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/phr-project/phr/pkg/vault"
	bolt "go.etcd.io/bbolt"
)

func init() { vault.ScryptWorkFactor = 10 }

const testPassphrase = "correct horse battery"

// cli runs phr in-process against one temporary vault and config dir.
type cli struct {
	t   *testing.T
	dir string
	env map[string]string
}

func newCLI(t *testing.T) *cli {
	dir := t.TempDir()
	return &cli{t: t, dir: dir, env: map[string]string{
		"PHR_VAULT":      filepath.Join(dir, "data", "vault.phr"),
		"PHR_CONFIG_DIR": filepath.Join(dir, "config"),
		"HOME":           dir,
	}}
}

// initVault runs phr init with the test passphrase.
func (c *cli) initVault() {
	c.t.Helper()
	c.env["PHR_PASSPHRASE"] = testPassphrase
	if code, _, errOut := c.run("init", "--name", "Alice Example"); code != 0 {
		c.t.Fatalf("init: exit %d: %s", code, errOut)
	}
	delete(c.env, "PHR_PASSPHRASE")
}

func (c *cli) run(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	env := func(k string) string { return c.env[k] }
	code = run(context.Background(), args, strings.NewReader(""), &out, &errb, env)
	return code, out.String(), errb.String()
}

// ok runs a command that must succeed and returns its stdout.
func (c *cli) ok(args ...string) string {
	c.t.Helper()
	code, out, errOut := c.run(args...)
	if code != 0 {
		c.t.Fatalf("phr %s: exit %d: %s", strings.Join(args, " "), code, errOut)
	}
	return out
}

func (c *cli) list(args ...string) []map[string]any {
	c.t.Helper()
	out := c.ok(append(args, "--json")...)
	var recs []map[string]any
	if err := json.Unmarshal([]byte(out), &recs); err != nil {
		c.t.Fatalf("list --json output %q: %v", out, err)
	}
	return recs
}

func (c *cli) vaultHash() [32]byte {
	b, err := os.ReadFile(c.env["PHR_VAULT"])
	if err != nil {
		c.t.Fatal(err)
	}
	return sha256.Sum256(b)
}

func TestInitAndLog(t *testing.T) {
	c := newCLI(t)
	c.env["PHR_PASSPHRASE"] = testPassphrase
	out := c.ok("init", "--name", "Alice Example")
	if !strings.Contains(out, "Recovery code") {
		t.Fatalf("init output lacks the recovery code: %s", out)
	}
	st, err := os.Stat(filepath.Join(c.env["PHR_CONFIG_DIR"], "device-identity.txt"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("device identity: %v, mode %v", err, st.Mode())
	}
	if st, _ := os.Stat(c.env["PHR_CONFIG_DIR"]); st.Mode().Perm() != 0o700 {
		t.Errorf("config dir mode %v", st.Mode().Perm())
	}
	if st, _ := os.Stat(c.env["PHR_VAULT"]); st.Mode().Perm() != 0o600 {
		t.Errorf("vault mode %v", st.Mode().Perm())
	}
	// init refuses an existing vault and leaves it alone.
	before := c.vaultHash()
	if code, _, errOut := c.run("init"); code != 1 || !strings.Contains(errOut, "already exists") {
		t.Fatalf("second init: exit %d: %s", code, errOut)
	}
	if c.vaultHash() != before {
		t.Fatal("second init modified the vault")
	}
	delete(c.env, "PHR_PASSPHRASE") // from here on the device identity opens it

	logs := []struct {
		args    []string
		kind    string
		display string
	}{
		{[]string{"log", "med", "metformin", "--dose", "500 mg", "--frequency", "twice daily", "--start", "2026-01-10"}, "medication", "metformin — 500 mg twice daily"},
		{[]string{"log", "dose", "ibuprofen", "--at", "2h ago"}, "dose", "ibuprofen"},
		{[]string{"log", "symptom", "headache", "--severity", "6"}, "symptom", "headache (severity 6/10)"},
		{[]string{"log", "vital", "bp", "120/80"}, "vital", "Blood pressure: 120/80 mmHg"},
		{[]string{"log", "vital", "hr", "72"}, "vital", "Heart rate: 72 bpm"},
		{[]string{"log", "vital", "weight", "154lb", "--at", "yesterday"}, "vital", "Body weight: 154 lb"},
		{[]string{"log", "vital", "temp", "99.1F"}, "vital", "Body temperature: 99.1 °F"},
		{[]string{"log", "vital", "glucose", "97mg/dL"}, "vital", "Blood glucose: 97 mg/dL"},
		{[]string{"log", "vital", "spo2", "97%"}, "vital", "Oxygen saturation: 97 %"},
		{[]string{"log", "condition", "asthma"}, "condition", "asthma"},
		{[]string{"log", "allergy", "penicillin", "--reaction", "hives", "--severity", "severe"}, "allergy", "penicillin (hives)"},
		{[]string{"log", "immunization", "influenza", "--date", "2026-10-01"}, "immunization", "influenza"},
		{[]string{"log", "note", "Walked", "5", "km"}, "note", "Walked 5 km"},
	}
	for _, l := range logs {
		out := c.ok(append(l.args, "--json")...)
		var s map[string]any
		if err := json.Unmarshal([]byte(out), &s); err != nil {
			t.Fatalf("%v: %v", l.args, err)
		}
		if s["type"] != l.kind || s["display"] != l.display || s["source"] != "self" {
			t.Errorf("%v: got %v", l.args, s)
		}
	}
	all := c.list("list")
	if len(all) != len(logs)+1 { // + the Patient
		t.Fatalf("list: %d records, want %d", len(all), len(logs)+1)
	}
	for _, r := range all {
		for _, k := range []string{"id", "type", "resourceType", "date", "display", "source"} {
			if _, ok := r[k]; !ok {
				t.Errorf("list --json record lacks %q: %v", k, r)
			}
		}
	}
	if n := len(c.list("list", "vital")); n != 6 {
		t.Errorf("list vital: %d", n)
	}
	if n := len(c.list("list", "meds", "symptom")); n != 2 {
		t.Errorf("list meds symptom: %d", n)
	}
	if n := len(c.list("list", "vital", "--since", "today")); n != 5 {
		t.Errorf("list vital --since today: %d", n)
	}
	if n := len(c.list("list", "--until", "2026-02-01")); n != 1 {
		t.Errorf("list --until: %d", n)
	}
	if n := len(c.list("search", "PENICILLIN")); n != 1 {
		t.Errorf("search: %d", n)
	}
	if n := len(c.list("list", "--source", "self")); n != len(logs)+1 {
		t.Errorf("list --source self: %d", n)
	}
	if n := len(c.list("list", "--source", "St. Elsewhere")); n != 0 {
		t.Errorf("list --source other: %d", n)
	}
	if out := c.ok("timeline"); !strings.Contains(out, "January 2026") || !strings.Contains(out, "metformin") {
		t.Errorf("timeline: %s", out)
	}
	if out := c.ok("list"); !strings.Contains(out, "DATE") || !strings.Contains(out, "Blood pressure: 120/80 mmHg") {
		t.Errorf("list text: %s", out)
	}
}

func TestShowEditRm(t *testing.T) {
	c := newCLI(t)
	c.initVault()
	var s map[string]any
	json.Unmarshal([]byte(c.ok("log", "symptom", "headache", "--severity", "6", "--json")), &s)
	id := s["id"].(string)

	fhir := c.ok("show", id[:6], "--fhir")
	var res map[string]any
	if err := json.Unmarshal([]byte(fhir), &res); err != nil || res["resourceType"] != "Observation" || res["id"] != id {
		t.Fatalf("show --fhir: %v %s", err, fhir)
	}
	if out := c.ok("show", id); !strings.Contains(out, "headache") || !strings.Contains(out, "self-entered") {
		t.Errorf("show: %s", out)
	}
	c.ok("edit", id, "--severity", "3", "--note", "better")
	var shown map[string]any
	json.Unmarshal([]byte(c.ok("show", id, "--json")), &shown)
	if shown["display"] != "headache (severity 3/10)" || shown["version"] != float64(2) {
		t.Fatalf("after edit: %v", shown)
	}
	if code, _, _ := c.run("edit", id, "--severity", "11"); code != 2 {
		t.Errorf("edit --severity 11: exit %d", code)
	}
	if code, _, _ := c.run("edit", id, "--stop", "today"); code != 2 {
		t.Errorf("edit --stop on a symptom: exit %d", code)
	}
	json.Unmarshal([]byte(c.ok("log", "vital", "bp", "150/95", "--json")), &s)
	bp := s["id"].(string)
	c.ok("edit", bp, "--value", "125/82")
	json.Unmarshal([]byte(c.ok("show", bp, "--json")), &shown)
	if shown["display"] != "Blood pressure: 125/82 mmHg" {
		t.Errorf("after vital edit: %v", shown["display"])
	}
	json.Unmarshal([]byte(c.ok("log", "med", "amoxicillin", "--json")), &s)
	med := s["id"].(string)
	c.ok("edit", med, "--stop", "today")
	var medRes map[string]any
	json.Unmarshal([]byte(c.ok("show", med, "--fhir")), &medRes)
	if medRes["status"] != "completed" {
		t.Errorf("stopped medication status %v", medRes["status"])
	}

	c.ok("rm", id)
	if n := len(c.list("list", "symptom")); n != 0 {
		t.Errorf("deleted symptom still listed")
	}
	if code, _, errOut := c.run("rm", id); code != 1 || !strings.Contains(errOut, "already deleted") {
		t.Errorf("second rm: %d %s", code, errOut)
	}
	if code, _, errOut := c.run("show", "zzzzzzzz"); code != 1 || !strings.Contains(errOut, "no record") {
		t.Errorf("show unknown: %d %s", code, errOut)
	}
}

func TestBadInputWritesNothing(t *testing.T) {
	c := newCLI(t)
	c.initVault()
	before := c.vaultHash()
	tests := [][]string{
		{"log", "vital", "weight", "70"},
		{"log", "vital", "weight", "70st"},
		{"log", "vital", "temp", "37.2K"},
		{"log", "vital", "height", "1800cm"},
		{"log", "vital", "bp", "80/120"},
		{"log", "symptom", "headache", "--severity", "11"},
		{"log", "symptom", "headache", "--severity", "bad"},
		{"log", "symptom", "headache", "--at", "next blue moon"},
		{"log", "med", ""},
		{"log", "med", "x", "--dose", "lots"},
		{"log", "med", "x", "--start", "2026-02-01", "--stop", "2026-01-01"},
		{"log", "allergy", "x", "--severity", "deadly"},
		{"log", "med"},
		{"log", "med", "x", "--nonsense"},
		{"list", "--since", "someday"},
		{"frobnicate"},
		{"show"},
	}
	for _, args := range tests {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			code, out, errOut := c.run(args...)
			if code != 2 {
				t.Fatalf("exit %d, want 2 (stderr %q)", code, errOut)
			}
			if lines := strings.Count(strings.TrimSpace(errOut), "\n") + 1; lines > 2 || !strings.HasPrefix(errOut, "phr: ") {
				t.Errorf("error is not one line: %q", errOut)
			}
			if out != "" {
				t.Errorf("stdout %q", out)
			}
		})
	}
	if c.vaultHash() != before {
		t.Fatal("bad input changed the vault")
	}
}

// TestDashWords checks what phr says of a word that starts with a dash and
// is no flag: a negative reading, or an ID that starts with "-".
func TestDashWords(t *testing.T) {
	c := newCLI(t)
	c.initVault()
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"log", "vital", "weight", "-5kg"}, "-5kg: a value below zero is not a valid reading"},
		{[]string{"log", "vital", "temp", "-.5"}, "below zero"},
		{[]string{"share", "revoke", "-AbC"}, "hint: an ID that starts with - goes after --"},
		{[]string{"list", "--nonsense"}, "unknown flag: --nonsense"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			code, _, errOut := c.run(tt.args...)
			if code != 2 || !strings.Contains(errOut, tt.want) {
				t.Fatalf("exit %d, stderr %q; want 2 and %q", code, errOut, tt.want)
			}
			if !strings.Contains(tt.want, "hint:") && strings.Contains(errOut, "hint:") {
				t.Errorf("a hint where none fits: %q", errOut)
			}
		})
	}
}

func TestWrongSecrets(t *testing.T) {
	c := newCLI(t)
	c.initVault()
	idPath := filepath.Join(c.env["PHR_CONFIG_DIR"], "device-identity.txt")
	os.Rename(idPath, idPath+".away") // no device key from here on
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"wrong passphrase", map[string]string{"PHR_PASSPHRASE": "wrong horse"}, "wrong passphrase"},
		{"right passphrase", map[string]string{"PHR_PASSPHRASE": testPassphrase}, ""},
		{"right identity", map[string]string{"PHR_IDENTITY": idPath + ".away"}, ""},
		{"no key, no terminal", map[string]string{}, "no key"},
	}
	other := filepath.Join(c.dir, "other-identity.txt")
	os.WriteFile(other, []byte("AGE-SECRET-KEY-1GFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPQ4EGAEX\n"), 0o600)
	tests = append(tests, struct {
		name string
		env  map[string]string
		want string
	}{"wrong identity", map[string]string{"PHR_IDENTITY": other}, "does not open this vault"})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				c.env[k] = v
			}
			defer func() {
				for k := range tt.env {
					delete(c.env, k)
				}
			}()
			code, _, errOut := c.run("list")
			if tt.want == "" {
				if code != 0 {
					t.Fatalf("exit %d: %s", code, errOut)
				}
				return
			}
			wantCode := exitWrongKey
			if strings.HasPrefix(tt.want, "no key") {
				wantCode = exitFailure // nothing was tried
			}
			if code != wantCode || !strings.Contains(errOut, tt.want) || strings.Count(errOut, "\n") > 2 {
				t.Fatalf("exit %d, stderr %q; want %d and %q", code, errOut, wantCode, tt.want)
			}
		})
	}
}

func TestVaultInUse(t *testing.T) {
	c := newCLI(t)
	c.initVault()
	v, err := vault.Open(c.env["PHR_VAULT"], vault.Passphrase(testPassphrase), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	start := time.Now()
	code, _, errOut := c.run("log", "symptom", "cough")
	if code != exitLocked || !strings.Contains(errOut, "in use by another process") {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("waited %v", d)
	}
}

func TestNoPlaintextOnDisk(t *testing.T) {
	c := newCLI(t)
	c.initVault()
	c.ok("log", "med", "Zyloprimexa", "--dose", "300 mg", "--reason", "gout flare")
	c.ok("log", "symptom", "Vertiginous spells", "--at", "2026-03-14T09:26")
	c.ok("log", "note", "Saw Dr. Quimby about the rash")
	raw, err := os.ReadFile(c.env["PHR_VAULT"])
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"Zyloprimexa", "300 mg", "gout", "Vertiginous", "2026-03-14", "Quimby", "Alice", "Example", "MedicationStatement", "Observation"} {
		if bytes.Contains(raw, []byte(s)) {
			t.Errorf("vault file contains %q", s)
		}
	}
}

func TestDamagedVault(t *testing.T) {
	c := newCLI(t)
	c.initVault()
	raw, _ := os.ReadFile(c.env["PHR_VAULT"])
	os.WriteFile(c.env["PHR_VAULT"], raw[:len(raw)/3], 0o600)
	before := c.vaultHash()
	code, _, errOut := c.run("list")
	if code != 1 || !strings.Contains(errOut, "damaged") {
		t.Fatalf("truncated vault: exit %d %q", code, errOut)
	}
	if c.vaultHash() != before {
		t.Fatal("damaged vault was rewritten")
	}
	c.env["PHR_VAULT"] = filepath.Join(c.dir, "missing.phr")
	if code, _, errOut := c.run("list"); code != 1 || !strings.Contains(errOut, "phr init") {
		t.Fatalf("missing vault: exit %d %q", code, errOut)
	}
}

func TestInitNoDevice(t *testing.T) {
	c := newCLI(t)
	c.env["PHR_PASSPHRASE"] = testPassphrase
	c.ok("init", "--no-device")
	if _, err := os.Stat(filepath.Join(c.env["PHR_CONFIG_DIR"], "device-identity.txt")); err == nil {
		t.Fatal("--no-device wrote a device identity")
	}
	c.ok("log", "symptom", "cough")
	delete(c.env, "PHR_PASSPHRASE")
	if code, _, errOut := c.run("list"); code != 1 || !strings.Contains(errOut, "no key") {
		t.Fatalf("list without a key: %d %q", code, errOut)
	}
	if code, _, _ := c.run("init", "--no-device", "--no-passphrase", "--vault", filepath.Join(c.dir, "x.phr")); code != 2 {
		t.Fatalf("init with no slots but recovery: exit %d", code)
	}
}

// phr check --deep recomputes what a record's content gives: a dedup
// fingerprint removed from the file (derived data, which the head does
// not cover) is named by the deep check; the quick one does not
// recompute fingerprints.
func TestCheckDeep(t *testing.T) {
	c := newCLI(t)
	c.initVault()
	c.ok("import", "--accept-patient-mismatch", shared+"fhir/us-core-examples/condition-duodenal-ulcer.json")
	for _, args := range [][]string{{"check"}, {"check", "--deep"}} {
		if out := c.ok(args...); !strings.Contains(out, "0 problems") {
			t.Fatalf("phr %v on a sound vault: %s", args, out)
		}
	}
	db, err := bolt.Open(c.env["PHR_VAULT"], 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		fb := tx.Bucket([]byte{'f'})
		k, _ := fb.Cursor().First()
		if k == nil {
			return errors.New("no fingerprint in the vault")
		}
		return fb.Delete(bytes.Clone(k))
	}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	const missing = "missing from the dedup fingerprints"
	if quick := c.ok("check"); strings.Contains(quick, missing) {
		t.Fatalf("phr check: %s", quick)
	}
	code, deep, _ := c.run("check", "--deep")
	if code == 0 || !strings.Contains(deep, missing) {
		t.Fatalf("phr check --deep: exit %d\n%s", code, deep)
	}
	c.ok("check", "--deep", "--repair")
	if out := c.ok("check", "--deep"); !strings.Contains(out, "0 problems") {
		t.Fatalf("phr check --deep after the repair: %s", out)
	}
}
