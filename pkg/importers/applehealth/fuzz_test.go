package applehealth

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/phr-project/phr/pkg/importers"
)

// FuzzImportAppleHealth feeds arbitrary bytes (as a file and, when they
// start like a zip, as a seekable archive) and checks that the importer
// never panics, that a failure is a *ParseError or an item failure with a
// position, and that every record it makes is a valid resource.
func FuzzImportAppleHealth(f *testing.F) {
	for _, p := range []string{dogsheep, "testdata/units.xml", "testdata/blood-pressure.xml", "testdata/bad-items.xml", "testdata/daily.xml", "testdata/entity.xml"} {
		f.Add(readFile(f, p))
	}
	f.Add(zipDir(f, dogsheepZip))
	f.Add([]byte("<HealthData><Correlation type=\"HKCorrelationTypeIdentifierBloodPressure\" startDate=\"2020-01-01 00:00:00 +0000\"><Record type=\"HKQuantityTypeIdentifierBloodPressureSystolic\" value=\"1\"/></Correlation></HealthData>"))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, daily := range []bool{false, true} {
			opts := map[string]string{}
			if daily {
				opts["aggregate"] = "daily"
			}
			s := &memSink{}
			in := &importers.Input{Name: "export.xml", R: bytes.NewReader(data), ReaderAt: bytes.NewReader(data), Size: int64(len(data)), Options: opts}
			err := New().Import(context.Background(), in, s)
			var pe *importers.ParseError
			if err != nil && !errors.As(err, &pe) {
				t.Fatalf("error %v (%T) is not a *ParseError", err, err)
			}
			for _, fe := range s.fails {
				if fe.Line <= 0 || fe.Path == "" || fe.Err == nil {
					t.Fatalf("item error without a position: %+v", fe)
				}
			}
			for _, r := range s.records {
				if r.ResourceType == "" || r.Provenance.System != System {
					t.Fatalf("bad record %+v", r)
				}
			}
		}
		_ = New().Detect(data)
	})
}
