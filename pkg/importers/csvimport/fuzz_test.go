package csvimport

import (
	"bytes"
	"context"
	"errors"
	"os"
	"testing"

	"github.com/phr-project/phr/pkg/importers"
	"github.com/phr-project/phr/pkg/importers/importertest"
	"github.com/phr-project/phr/pkg/record"
)

// FuzzImportCSV checks that no input makes the importer panic, that a
// failure is a *ParseError, that row failures carry a line, and that every
// record is a valid resource.
func FuzzImportCSV(f *testing.F) {
	for _, p := range []string{"testdata/good.csv", "testdata/bad.csv", "testdata/bom.csv", "testdata/truncated.csv"} {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("type,name,value,unit,date\nvital,bp,120/80,mmHg,2024-01-01T08:00\n"))
	f.Add([]byte("name,type\n\"a\"\"b\",lab\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s := &importertest.Sink{}
		err := New().Import(context.Background(), importertest.Input("in.csv", data, utc), s)
		var pe *importers.ParseError
		if err != nil && !errors.As(err, &pe) {
			t.Fatalf("error %v (%T) is not a *ParseError", err, err)
		}
		for _, fe := range s.Fails {
			if fe.Line <= 0 || fe.Path == "" || fe.Err == nil {
				t.Fatalf("row error without a position: %+v", fe)
			}
		}
		for _, r := range s.Records {
			if _, err := record.Parse(r.Resource); err != nil || r.Provenance.Importer != Name {
				t.Fatalf("bad record %+v: %v", r, err)
			}
		}
		_ = New().Detect(data)
	})
}

// BenchmarkImportCSV imports the template example repeated to about 1 MB.
func BenchmarkImportCSV(b *testing.B) {
	good, err := os.ReadFile("testdata/good.csv")
	if err != nil {
		b.Fatal(err)
	}
	header, rows, _ := bytes.Cut(good, []byte("Note\n"))
	var buf bytes.Buffer
	buf.Write(header)
	buf.WriteString("Note\n")
	for buf.Len() < 1<<20 {
		buf.Write(rows)
	}
	data := buf.Bytes()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		s := &importertest.CountSink{}
		if err := New().Import(context.Background(), &importers.Input{Name: "in.csv", R: bytes.NewReader(data), Size: int64(len(data)), Options: utc}, s); err != nil {
			b.Fatal(err)
		}
		if s.Failed != 0 || s.N == 0 {
			b.Fatalf("%d records, %d fails", s.N, s.Failed)
		}
	}
}
