package crash

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"filippo.io/age"
)

// testdata is the shared corpus of real exports (see its README.md).
const testdata = "../../../shared/testdata"

// smallFiles are real exports of a few dozen to a few hundred records
// each: every one is written in one transaction. They share no record, so
// each file's records are its own whatever the order.
var smallFiles = []string{
	"fhir/synthea-r4/Clemente_Kreiger_1484a42d-0eaf-4654-9cbf-6b050a5cd73b.json",
	"fhir/bulk-ndjson-10-patients/AllergyIntolerance.000.ndjson",
	"ccda/hl7-c-cda-examples/Documents/CCD/CCD 1/CCD.XML",
	"fhir/synthea-r4/Liz_Conn_27c911c6-f045-4ffa-af5d-6eba57ac94b2.json",
	"fhir/bulk-ndjson-10-patients/Immunization.000.ndjson",
	"ccda/chb-sample_ccdas/Cerner Samples/problems-and-medications.xml",
	"ccda/chb-sample_ccdas/EMERGE/Patient-0.xml",
	"fhir/synthea-r4/Reyna_Ziemann_08f8bfce-34cf-4b5a-a398-8e49650c6e3c.json",
}

// bigParts are joined into one NDJSON file of 5,571 resources: past the
// 5,000 records the import pipeline holds, it writes 128 records per
// transaction.
var bigParts = []string{
	"fhir/bulk-ndjson-10-patients/Procedure.000.ndjson",
	"fhir/bulk-ndjson-10-patients/MedicationRequest.000.ndjson",
	"fhir/bulk-ndjson-10-patients/Encounter.000.ndjson",
	"fhir/bulk-ndjson-10-patients/Condition.000.ndjson",
}

// bigLines is the least number of resources the big file must have.
const bigLines = 5_001

// fixture is what every lane shares, made once per TestCrash.
type fixture struct {
	root     string
	cfg      string         // PHR_CONFIG_DIR: the device identity
	ids      []age.Identity // that identity
	template string         // a vault from phr init: the Patient record only
	corpus   string         // the small files, copied and numbered in import order
	small    []string       // the files in corpus, in order
	big      string         // the generated large NDJSON file

	refs sync.Map // key -> *refEntry

	phrdOnce sync.Once
	phrd     *phrdTemplate
	phrdErr  error
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	root := t.TempDir()
	f := &fixture{root: root, cfg: filepath.Join(root, "config"), template: filepath.Join(root, "template.phr"),
		corpus: filepath.Join(root, "corpus"), big: filepath.Join(root, "big.ndjson")}
	if err := os.MkdirAll(f.corpus, 0o700); err != nil {
		t.Fatal(err)
	}
	for i, rel := range smallFiles {
		src := filepath.Join(testdata, rel)
		dst := filepath.Join(f.corpus, fmt.Sprintf("%02d-%s", i+1, filepath.Base(rel)))
		if err := copyFile(dst, src); err != nil {
			t.Fatalf("the shared test data is needed (%s): %v", testdata, err)
		}
		f.small = append(f.small, dst)
	}
	if n, err := joinLines(f.big, bigParts); err != nil {
		t.Fatal(err)
	} else if n < bigLines {
		t.Fatalf("the big file has %d resources, want at least %d", n, bigLines)
	}
	res, err := run(bins.phr, f.phrEnv(f.template), nil, "init", "--no-passphrase")
	if err != nil || res.code != 0 {
		t.Fatalf("phr init: %v %s", err, res.stderr)
	}
	if f.ids, err = readIdentities(filepath.Join(f.cfg, "device-identity.txt")); err != nil {
		t.Fatal(err)
	}
	return f
}

// joinLines writes the non-empty lines of the parts into dst (0600) and
// returns how many it wrote.
func joinLines(dst string, parts []string) (int, error) {
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return 0, err
	}
	defer out.Close()
	w := bufio.NewWriter(out)
	n := 0
	for _, p := range parts {
		in, err := os.Open(filepath.Join(testdata, p))
		if err != nil {
			return 0, fmt.Errorf("the shared test data is needed (%s): %w", testdata, err)
		}
		sc := bufio.NewScanner(in)
		sc.Buffer(make([]byte, 1<<20), 16<<20)
		for sc.Scan() {
			if len(strings.TrimSpace(sc.Text())) == 0 {
				continue
			}
			w.Write(sc.Bytes())
			w.WriteByte('\n')
			n++
		}
		in.Close()
		if err := sc.Err(); err != nil {
			return 0, err
		}
	}
	if err := w.Flush(); err != nil {
		return 0, err
	}
	return n, out.Close()
}

// phrEnv is the whole environment of a phr process: the vault, the
// config directory with the device identity, and nothing else (no
// passphrase: unlocking by the device identity costs no scrypt).
func (f *fixture) phrEnv(vaultPath string) []string {
	return []string{"HOME=" + f.root, "PHR_CONFIG_DIR=" + f.cfgFor(vaultPath), "PHR_VAULT=" + vaultPath, "TMPDIR=" + os.TempDir(), "PATH=" + os.Getenv("PATH")}
}

// cfgFor is the config directory phr uses with the vault at vaultPath.
// Every lane's vault is a copy of the template (the same vault ID, each at
// its own state), and a device remembers the newest state it has seen of
// a vault (docs/format.md, "Device memory"): so each copy gets a config
// directory of its own, with the shared device identity.
func (f *fixture) cfgFor(vaultPath string) string {
	if vaultPath == f.template {
		return f.cfg
	}
	dir := vaultPath + ".config"
	if _, err := os.Stat(dir); err != nil {
		os.MkdirAll(dir, 0o700)
		copyFile(filepath.Join(dir, "device-identity.txt"), filepath.Join(f.cfg, "device-identity.txt"))
	}
	return dir
}

// freshVault copies the template vault to path, as a vault the device
// at path has not seen yet (a lane starting over puts a fresh copy where
// the last one was).
func (f *fixture) freshVault(t *testing.T, path string) {
	t.Helper()
	if err := copyFile(path, f.template); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(path+".config", "heads")); err != nil {
		t.Fatal(err)
	}
}

// reference is a vault with files imported one by one, without kills.
type reference struct {
	files []string
	shas  []string
	took  []time.Duration // how long each file's import took
	st    *state
}

type refEntry struct {
	once sync.Once
	done chan struct{}
	ref  *reference
	err  error
}

// startReference starts building the reference for files, once, and
// returns a function that waits for it.
func (f *fixture) startReference(files []string) func(t *testing.T) *reference {
	e, _ := f.refs.LoadOrStore(strings.Join(files, "\n"), &refEntry{done: make(chan struct{})})
	ent := e.(*refEntry)
	ent.once.Do(func() {
		go func() {
			ent.ref, ent.err = f.buildReference(files)
			close(ent.done)
		}()
	})
	return func(t *testing.T) *reference {
		t.Helper()
		<-ent.done
		if ent.err != nil {
			t.Fatalf("reference vault: %v", ent.err)
		}
		return ent.ref
	}
}

// reference returns the reference for files, building it the first time.
func (f *fixture) reference(t *testing.T, files []string) *reference {
	t.Helper()
	return f.startReference(files)(t)
}

func (f *fixture) buildReference(files []string) (*reference, error) {
	dir, err := os.MkdirTemp(f.root, "ref-")
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, "vault.phr")
	if err := copyFile(path, f.template); err != nil {
		return nil, err
	}
	ref := &reference{files: files}
	for _, file := range files {
		sha, err := fileSHA256(file)
		if err != nil {
			return nil, err
		}
		res, err := run(bins.phr, f.phrEnv(path), nil, "import", "--accept-patient-mismatch", file)
		if err != nil {
			return nil, err
		}
		if res.code != 0 {
			return nil, fmt.Errorf("import of %s failed: %s", filepath.Base(file), res.stderr)
		}
		ref.shas = append(ref.shas, sha)
		ref.took = append(ref.took, res.took)
	}
	if ref.st, err = readState(path, f.ids, true); err != nil {
		return nil, err
	}
	for i, sha := range ref.shas {
		if ref.st.count(sha) == 0 {
			return nil, fmt.Errorf("%s added no records", filepath.Base(files[i]))
		}
	}
	if len(ref.st.problems) > 0 || ref.st.duplicates() > 0 {
		return nil, fmt.Errorf("the reference vault is not sound: %s, %d duplicates", problemList(ref.st.problems), ref.st.duplicates())
	}
	return ref, nil
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
