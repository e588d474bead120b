package fhir

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/phr-project/phr/pkg/importers"
	"github.com/phr-project/phr/pkg/importers/importertest"
	"github.com/phr-project/phr/pkg/record"
)

func TestImportBulkNDJSON(t *testing.T) {
	total := 0
	for _, path := range glob(t, bulkDir+"/*.000.ndjson") {
		typ := strings.TrimSuffix(filepath.Base(path), ".000.ndjson")
		t.Run(typ, func(t *testing.T) {
			data := importertest.ReadFile(t, path)
			lines := 0
			for _, l := range bytes.Split(data, []byte("\n")) {
				if len(bytes.TrimSpace(l)) > 0 {
					lines++
				}
			}
			s := mustRun(t, NewNDJSON(), path)
			if len(s.Fails) > 0 || len(s.Skips) > 0 {
				t.Fatalf("fails %v skips %v", s.Fails, s.Skips)
			}
			if got := s.Counts(); len(got) != 1 || got[typ] != lines {
				t.Errorf("counts %v, want %d %s", got, lines, typ)
			}
			for _, r := range s.Records {
				p := r.Provenance
				if p.Importer != "ndjson" || p.File != filepath.Base(path) || p.OriginalID == "" || p.Method != record.MethodImported {
					t.Fatalf("provenance %+v", p)
				}
			}
			total += len(s.Records)
		})
	}
	if total < 7000 {
		t.Errorf("%d records in the bulk export", total)
	}

	s := mustRun(t, NewNDJSON(), bulkDir+"/Patient.000.ndjson")
	if s.Records[0].Provenance.OriginalID != "129c6ac7-8d06-89de-ad63-0204a93e76c3" || s.Records[0].Kind != record.KindPatient {
		t.Errorf("first patient %+v", s.Records[0].Provenance)
	}
	s = mustRun(t, NewNDJSON(), bulkDir+"/Immunization.000.ndjson")
	imm, _ := record.Parse(s.Records[0].Resource)
	if imm.Str("vaccineCode.coding.0.system") != record.CVX || s.Records[0].Date.IsZero() || s.Records[0].Kind != record.KindImmunization {
		t.Errorf("immunization %v %v", imm.Codings("vaccineCode"), s.Records[0].Date)
	}

	s = mustRun(t, NewNDJSON(), bulkDir+"/log.ndjson")
	if len(s.Records) != 0 || len(s.Skips) != 4 || len(s.Fails) != 0 {
		t.Errorf("log.ndjson: %d records, skips %v, fails %v", len(s.Records), s.Skips, s.Fails)
	}
	for _, sk := range s.Skips {
		if !strings.Contains(sk.Reason, "log entry") {
			t.Errorf("skip reason %q", sk.Reason)
		}
	}
}

func TestNDJSONBadLines(t *testing.T) {
	in := strings.Join([]string{
		`{"resourceType":"Patient","id":"p1"}`,
		`{"resourceType":"Observation","id":"o1","status":`, // 2: truncated
		``,
		`42`,                          // 4: not an object
		`{"id":"no-type","name":"x"}`, // 5: no resourceType
		`{"exportId":"e","eventId":"kickoff","eventDetail":{}}`,                                                                   // 6: a log line
		`{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Condition"}},{"resource":{"resourceType":"Procedure"}}]}`, // 7
		`{"resourceType":"OperationOutcome","issue":[]}`,                                                                          // 8
		`{"resourceType":"Patient","id":"p2","name":[{"family":"Secret"}],}`,                                                      // 9: syntax error
		"\t{\"resourceType\":\"Patient\",\"id\":\"p3\"}\r",                                                                        // 10
	}, "\n")
	s, err := run(NewNDJSON(), "x/mixed.ndjson", []byte("\xef\xbb\xbf"+in))
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Counts(); got["Patient"] != 2 || got["Condition"] != 1 || got["Procedure"] != 1 || len(s.Records) != 4 {
		t.Errorf("counts %v", got)
	}
	wantLines := []int{2, 4, 5, 9}
	if len(s.Fails) != len(wantLines) {
		t.Fatalf("fails %v", s.Fails)
	}
	for i, f := range s.Fails {
		if f.Line != wantLines[i] || f.File != "mixed.ndjson" {
			t.Errorf("fail %d at %s:%d, want line %d", i, f.File, f.Line, wantLines[i])
		}
		if strings.Contains(f.Error(), "Secret") || strings.Contains(f.Error(), "no-type") {
			t.Errorf("error quotes the file: %v", f)
		}
	}
	if !errors.Is(s.Fails[0], ErrTruncated) && !errors.Is(s.Fails[0], ErrInvalidJSON) {
		t.Errorf("line 2: %v", s.Fails[0])
	}
	if !errors.Is(s.Fails[2], ErrNotResource) {
		t.Errorf("line 5: %v", s.Fails[2])
	}
	if len(s.Skips) != 2 {
		t.Errorf("skips %v", s.Skips)
	}
}

func TestNDJSONGarbage(t *testing.T) {
	garbage := bytes.Repeat([]byte("\x00\x01 not json at all\n"), maxFailures+10)
	_, err := run(NewNDJSON(), "g.ndjson", garbage)
	var pe *importers.ParseError
	if !errors.As(err, &pe) || !errors.Is(err, ErrTooManyFailures) || pe.Line != maxFailures {
		t.Errorf("err = %v", err)
	}
	s, err := run(NewNDJSON(), "empty.ndjson", []byte("\n\n  \n"))
	if err != nil || len(s.Records)+len(s.Fails)+len(s.Skips) != 0 {
		t.Errorf("blank file: %v %v", err, s)
	}
}

func TestReadLine(t *testing.T) {
	in := "short\n" + strings.Repeat("x", 49) + "\r\n" + strings.Repeat("y", 51) + "\nafter\nlast"
	br := bufio.NewReaderSize(strings.NewReader(in), 16)
	var got []string
	for {
		line, long, err := readLine(br, nil, 50)
		if long {
			got = append(got, "LONG")
			break
		}
		got = append(got, string(line))
		if err != nil {
			break
		}
	}
	// A line of exactly max bytes (its \r included) is read; a longer one
	// stops reading.
	want := []string{"short", strings.Repeat("x", 49) + "\r", "LONG"}
	if len(got) != 3 || got[0] != want[0] || got[2] != want[2] || got[1] != want[1] {
		t.Errorf("lines %q", got)
	}
	rest, _ := io.ReadAll(br)
	if len(rest) == 0 || len(rest) > len("yy\nafter\nlast")+16 {
		t.Errorf("after a long line, %d bytes left unread", len(rest))
	}
}
