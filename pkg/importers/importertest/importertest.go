// Package importertest is the test kit every importer's tests use: a
// memory Sink (with the check that item failures name the file and quote
// no value, FailPositions), Inputs over bytes and streams, a lazy reader
// that feeds gigabytes without holding them, the location of the shared
// test data, an independent count of a Bundle's entries, and Run, the
// conformance checks all importers pass (determinism, detection, error
// positions without values, limits; CheckDetectShared also walks every
// shared file).
//
// It is imported by tests only.
package importertest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/phr-project/phr/pkg/importers"
	"github.com/phr-project/phr/pkg/record"
)

// Skipped is one call of Sink.Skip.
type Skipped struct{ Type, Reason string }

// Sink keeps everything an importer sends, in order.
type Sink struct {
	Records []record.Record
	Skips   []Skipped
	Fails   []*importers.ItemError
}

var _ importers.Sink = (*Sink)(nil)

// Record keeps r.
func (s *Sink) Record(r record.Record) error { s.Records = append(s.Records, r); return nil }

// Skip keeps the skip.
func (s *Sink) Skip(resourceType, reason string) {
	s.Skips = append(s.Skips, Skipped{resourceType, reason})
}

// Fail keeps the failure.
func (s *Sink) Fail(err *importers.ItemError) { s.Fails = append(s.Fails, err) }

// Failure is the one failure of an import that returned err into s: with
// fatal, err must be an *importers.ParseError, and the failure is its;
// without, err must be nil and s hold exactly one item failure.
func (s *Sink) Failure(t testing.TB, err error, fatal bool) *importers.ItemError {
	t.Helper()
	if fatal {
		var pe *importers.ParseError
		if !errors.As(err, &pe) {
			t.Fatalf("err = %v, want a *ParseError", err)
		}
		return &pe.ItemError
	}
	if err != nil || len(s.Fails) != 1 {
		t.Fatalf("err = %v, fails %v; want one item failure", err, s.Fails)
	}
	return s.Fails[0]
}

// Position is where an item failed: its line and path.
type Position struct {
	Line int
	Path string
}

// FailPositions checks every failure: it names file, wraps an error and
// quotes none of values (the file's contents, which an error must never
// show). It returns where they are, in order, for the test to compare.
func (s *Sink) FailPositions(t testing.TB, file string, values ...string) []Position {
	t.Helper()
	var out []Position
	for _, f := range s.Fails {
		out = append(out, Position{f.Line, f.Path})
		if f.File != file || f.Err == nil {
			t.Errorf("the failure at %s:%d %s: want one naming %s and wrapping an error", f.File, f.Line, f.Path, file)
			continue
		}
		msg := f.Error()
		for _, v := range values {
			if strings.Contains(msg, v) {
				t.Errorf("error %q shows the value %q", msg, v)
			}
		}
	}
	return out
}

// Counts counts the records per resourceType.
func (s *Sink) Counts() map[string]int {
	m := map[string]int{}
	for _, r := range s.Records {
		m[r.ResourceType]++
	}
	return m
}

// SkipCounts counts the skips per "resourceType: reason".
func (s *Sink) SkipCounts() map[string]int {
	m := map[string]int{}
	for _, k := range s.Skips {
		m[k.Type+": "+k.Reason]++
	}
	return m
}

// Fingerprints returns the dedup fingerprint input of every record.
func (s *Sink) Fingerprints() []string {
	out := make([]string, len(s.Records))
	for i := range s.Records {
		out[i] = string(record.FingerprintInput(&s.Records[i]))
	}
	return out
}

// Resources parses the resources of one type, in order ("" for all).
func (s *Sink) Resources(t testing.TB, resourceType string) []record.Resource {
	t.Helper()
	var out []record.Resource
	for _, r := range s.Records {
		if resourceType != "" && r.ResourceType != resourceType {
			continue
		}
		res, err := record.Parse(r.Resource)
		if err != nil {
			t.Fatalf("%s: %v", r.ResourceType, err)
		}
		out = append(out, res)
	}
	return out
}

// CountSink counts what an importer sends and keeps nothing, as a vault
// batch would not (for benchmarks).
type CountSink struct{ N, Skipped, Failed int }

// Record counts a record.
func (s *CountSink) Record(record.Record) error { s.N++; return nil }

// Skip counts a skip.
func (s *CountSink) Skip(string, string) { s.Skipped++ }

// Fail counts a failure.
func (s *CountSink) Fail(*importers.ItemError) { s.Failed++ }

// Input makes an Input over data, named name, readable as a stream and at
// random offsets, with its SHA-256.
func Input(name string, data []byte, opts map[string]string) *importers.Input {
	sum := sha256.Sum256(data)
	return &importers.Input{
		Name: name, R: bytes.NewReader(data), ReaderAt: bytes.NewReader(data),
		Size: int64(len(data)), SHA256: hex.EncodeToString(sum[:]), Options: opts,
	}
}

// StreamInput makes an Input that can only be read once, in order, of
// unknown size (a pipe; a lazily generated input).
func StreamInput(name string, r io.Reader, opts map[string]string) *importers.Input {
	return &importers.Input{Name: name, R: r, Size: -1, Options: opts}
}

// Import runs imp over data and returns what the sink saw and the error.
func Import(imp importers.Importer, name string, data []byte, opts map[string]string) (*Sink, error) {
	s := &Sink{}
	err := imp.Import(context.Background(), Input(name, data, opts), s)
	return s, err
}

// MustImport is Import failing the test on an error.
func MustImport(t testing.TB, imp importers.Importer, name string, data []byte, opts map[string]string) *Sink {
	t.Helper()
	s, err := Import(imp, name, data, opts)
	if err != nil {
		t.Fatalf("%s: %v", filepath.Base(name), err)
	}
	return s
}

// BundleCounts decodes a FHIR Bundle independently of any importer and
// counts its entries' resources by resourceType: what an import of it
// should give.
func BundleCounts(t testing.TB, data []byte) map[string]int {
	t.Helper()
	var b struct {
		Entry []struct {
			Resource struct {
				ResourceType string `json:"resourceType"`
			} `json:"resource"`
		} `json:"entry"`
	}
	if err := json.Unmarshal(data, &b); err != nil {
		t.Fatal(err)
	}
	m := map[string]int{}
	for _, e := range b.Entry {
		m[e.Resource.ResourceType]++
	}
	return m
}

// Head is what Detect sees of data: its first importers.DetectSize bytes.
func Head(data []byte) []byte { return data[:min(len(data), importers.DetectSize)] }

// ReadFile reads a file or fails the test.
func ReadFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var (
	sharedOnce sync.Once
	sharedDir  string
	sharedErr  error
)

// Shared returns the path of the shared test data (real files written by
// other people, never edited), from any package's directory: the
// directory named by PHR_SHARED_TESTDATA, else "shared/testdata" beside
// the module's root (the folder holding go.mod). With elements, it joins
// them to that path.
func Shared(t testing.TB, elem ...string) string {
	t.Helper()
	sharedOnce.Do(func() { sharedDir, sharedErr = findShared() })
	if sharedErr != nil {
		t.Fatal(sharedErr)
	}
	return filepath.Join(append([]string{sharedDir}, elem...)...)
}

// Path is Shared for package-level variables, where there is no test to
// fail yet: when the shared test data cannot be found, it returns a path
// under a folder whose name says so, and reading it fails with that name.
func Path(elem ...string) string {
	sharedOnce.Do(func() { sharedDir, sharedErr = findShared() })
	if sharedErr != nil {
		return filepath.Join(append([]string{"shared-testdata-not-found (set PHR_SHARED_TESTDATA)"}, elem...)...)
	}
	return filepath.Join(append([]string{sharedDir}, elem...)...)
}

func findShared() (string, error) {
	if d := os.Getenv("PHR_SHARED_TESTDATA"); d != "" {
		return d, nil
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			d := filepath.Join(filepath.Dir(dir), "shared", "testdata")
			if st, err := os.Stat(d); err != nil || !st.IsDir() {
				return "", fmt.Errorf("no shared test data at %s (set PHR_SHARED_TESTDATA)", d)
			}
			return d, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory: cannot find the shared test data (set PHR_SHARED_TESTDATA)")
		}
		dir = parent
	}
}

// Sample is one input of a format.
type Sample struct {
	// Name names the sample in test output and is the Input's name.
	Name string
	// Path is relative to the shared test data; Data is used when it is
	// empty.
	Path string
	Data []byte
	// Options are the import options to use.
	Options map[string]string
}

func (s Sample) bytes(t testing.TB) []byte {
	t.Helper()
	if s.Path != "" {
		return ReadFile(t, Shared(t, filepath.FromSlash(s.Path)))
	}
	return s.Data
}

func (s Sample) name() string {
	if s.Name != "" {
		return s.Name
	}
	return filepath.Base(s.Path)
}

// Bad is a malformed input: importing it fails the file (a
// *importers.ParseError) or items of it (Sink.Fail).
type Bad struct {
	Name string
	Data []byte
	// Secrets are values in Data (a name, a value, a code's text) that no
	// error message may quote.
	Secrets []string
	// Is, when set, must be wrapped by the error or by every failure.
	Is error
}

// Limit is an input over one of the importer's documented limits, read
// lazily: it must fail with Is after reading at most MaxRead bytes.
type Limit struct {
	Name    string
	Input   func() *LazyReader
	Is      error
	MaxRead int64
}

// Corpus is what Run checks an importer with.
type Corpus struct {
	// Files are samples of the importer's own format.
	Files []Sample
	// Bad are malformed inputs.
	Bad []Bad
	// Limits are inputs over documented limits.
	Limits []Limit
}

// Run checks the rules every importer keeps, each in a subtest:
//
//   - Detect: it claims each of Files and none of the other formats'
//     samples (Samples);
//   - Deterministic: each of Files imports without error or failed item,
//     and two imports give byte-identical resources and provenance, in the
//     same order;
//   - Errors: each of Bad fails with an error or failures that name the
//     file and a position (line, byte offset or path), wrap Is, and quote
//     none of its Secrets;
//   - Limits: each of Limits fails with Is, having read at most MaxRead
//     bytes.
func Run(t *testing.T, imp importers.Importer, c Corpus) {
	for _, check := range []struct {
		name string
		fn   func(testing.TB, importers.Importer, Corpus) []string
	}{{"Detect", CheckDetect}, {"Deterministic", CheckDeterministic}, {"Errors", CheckErrors}, {"Limits", CheckLimits}} {
		t.Run(check.name, func(t *testing.T) {
			for _, p := range check.fn(t, imp, c) {
				t.Error(p)
			}
		})
	}
}

// CheckDetect returns how Detect breaks the rules Run states.
func CheckDetect(t testing.TB, imp importers.Importer, c Corpus) []string {
	var out []string
	for _, s := range c.Files {
		if !imp.Detect(Head(s.bytes(t))) {
			out = append(out, fmt.Sprintf("%s does not detect its own sample %s", imp.Name(), s.name()))
		}
	}
	for _, s := range Samples() {
		if s.Format != imp.Name() && imp.Detect(Head(s.bytes(t))) {
			out = append(out, fmt.Sprintf("%s claims %s, a %s sample", imp.Name(), s.name(), s.Format))
		}
	}
	return out
}

// CheckDetectShared returns how Detect claims real files of other
// formats: every file of the shared test data whose head it claims,
// except those own reports as of imp's own format (nil: none).
func CheckDetectShared(t testing.TB, imp importers.Importer, own func(path string) bool) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(Shared(t), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || own != nil && own(path) {
			return err
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		buf := make([]byte, importers.DetectSize)
		n, _ := io.ReadFull(f, buf)
		if imp.Detect(buf[:n]) {
			out = append(out, fmt.Sprintf("%s claims %s", imp.Name(), path))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// CheckDeterministic returns how importing Files breaks the rules Run
// states.
func CheckDeterministic(t testing.TB, imp importers.Importer, c Corpus) []string {
	var out []string
	for _, s := range c.Files {
		data := s.bytes(t)
		a, errA := Import(imp, s.name(), data, s.Options)
		b, errB := Import(imp, s.name(), data, s.Options)
		if errA != nil || errB != nil || len(a.Fails) > 0 {
			out = append(out, fmt.Sprintf("%s: %v, %v, failures %v", s.name(), errA, errB, a.Fails))
			continue
		}
		if len(a.Records) == 0 || len(a.Records) != len(b.Records) {
			out = append(out, fmt.Sprintf("%s: %d and %d records", s.name(), len(a.Records), len(b.Records)))
			continue
		}
		for i := range a.Records {
			ra, rb := a.Records[i], b.Records[i]
			if !bytes.Equal(ra.Resource, rb.Resource) || ra.Provenance != rb.Provenance {
				out = append(out, fmt.Sprintf("%s: record %d (%s) differs between two imports", s.name(), i, ra.ResourceType))
				break
			}
		}
	}
	return out
}

// CheckErrors returns how the errors of Bad break the rules Run states.
func CheckErrors(t testing.TB, imp importers.Importer, c Corpus) []string {
	var out []string
	for _, bad := range c.Bad {
		s, err := Import(imp, "dir/"+bad.Name, bad.Data, nil)
		var errs []*importers.ItemError
		if err != nil {
			var pe *importers.ParseError
			if !errors.As(err, &pe) {
				out = append(out, fmt.Sprintf("%s: %v (%T), want an *importers.ParseError", bad.Name, err, err))
				continue
			}
			errs = append(errs, &pe.ItemError)
		}
		errs = append(errs, s.Fails...)
		if len(errs) == 0 {
			out = append(out, fmt.Sprintf("%s: imported without an error", bad.Name))
		}
		for _, e := range errs {
			if e.File == "" || !strings.Contains(e.Error(), bad.Name) {
				out = append(out, fmt.Sprintf("%s: error does not name the file: %v", bad.Name, e))
			}
			if e.Line <= 0 && e.Offset <= 0 && e.Path == "" {
				out = append(out, fmt.Sprintf("%s: error has no position (line, offset or path): %v", bad.Name, e))
			}
			if bad.Is != nil && !errors.Is(e, bad.Is) {
				out = append(out, fmt.Sprintf("%s: %v, want %v", bad.Name, e, bad.Is))
			}
			for _, secret := range bad.Secrets {
				if strings.Contains(e.Error(), secret) {
					out = append(out, fmt.Sprintf("%s: error quotes the file (%q): %v", bad.Name, secret, e))
				}
			}
		}
	}
	return out
}

// CheckLimits returns how importing Limits breaks the rules Run states.
func CheckLimits(t testing.TB, imp importers.Importer, c Corpus) []string {
	var out []string
	for _, l := range c.Limits {
		r := l.Input()
		s := &Sink{}
		err := imp.Import(context.Background(), StreamInput(l.Name, r, nil), s)
		found := err != nil && errors.Is(err, l.Is)
		for _, f := range s.Fails {
			found = found || errors.Is(f, l.Is)
		}
		if !found {
			out = append(out, fmt.Sprintf("%s: err %v, failures %v; want %v", l.Name, err, s.Fails, l.Is))
		}
		if l.MaxRead > 0 && r.Consumed() > l.MaxRead {
			out = append(out, fmt.Sprintf("%s: read %d bytes, want at most %d", l.Name, r.Consumed(), l.MaxRead))
		}
	}
	return out
}

// FormatSample is a sample of a named format.
type FormatSample struct {
	Format string
	Sample
}

// Samples are files of every format phr reads, from the shared test data
// (and, for CSV, which it has none of, the template's example), so that
// each importer can check it claims no other format's files.
func Samples() []FormatSample {
	s := func(format, path string) FormatSample { return FormatSample{format, Sample{Path: path}} }
	return []FormatSample{
		s("fhir", "fhir/synthea-r4/Liz_Conn_27c911c6-f045-4ffa-af5d-6eba57ac94b2.json"),
		s("fhir", "fhir/us-core-examples/patient-example.json"),
		s("fhir", "fhir/cms-bluebutton/apps/fhir/bluebutton/tests/fhir_resources/eob_search_v2.json"),
		s("fhir", "shc/input/images/example-00-a-fhirBundle.json"),
		s("ndjson", "fhir/bulk-ndjson-10-patients/Patient.000.ndjson"),
		s("ndjson", "fhir/bulk-ndjson-10-patients/log.ndjson"),
		s("ccda", "ccda/hl7-c-cda-examples/Documents/CCD/CCD 2/CCD.xml"),
		s("ccda", "ccda/chb-sample_ccdas/HL7 Samples/CCD.sample.xml"),
		s("shc", "shc/input/images/example-00-e-file.smart-health-card"),
		s("shc", "shc/input/images/example-00-d-jws.txt"),
		s("shc", "shc/input/images/example-00-f-qr-code-numeric-value-0.txt"),
		s("shc", "shc/input/images/example-00-b-jws-payload-expanded.json"),
		s("apple-health", "apple-health/ashtom-hkimport/Data/export.xml"),
		s("apple-health", "apple-health/dogsheep-healthkit-to-sqlite/tests/export.xml"),
		{"csv", Sample{Name: "template.csv", Data: []byte("type,name,value,unit,date\nvital,bp,120/80,mmHg,2024-03-01\nlab,Hemoglobin A1c,6.1,%,2024-02-10\n")}},
	}
}
