package ccda

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/phr-project/phr/pkg/importers"
	"github.com/phr-project/phr/pkg/record"
)

// testdata is the shared corpus of real files (read only).
const testdata = "../../../../shared/testdata/ccda"

// memSink collects what an importer sends.
type memSink struct {
	recs  []record.Record
	skips map[string]int // "Type: reason" -> count
	fails []*importers.ItemError
}

func newSink() *memSink { return &memSink{skips: map[string]int{}} }

func (s *memSink) Record(r record.Record) error  { s.recs = append(s.recs, r); return nil }
func (s *memSink) Skip(rt, reason string)        { s.skips[rt+": "+reason]++ }
func (s *memSink) Fail(err *importers.ItemError) { s.fails = append(s.fails, err) }

// count returns the number of records per resource type.
func (s *memSink) count() map[string]int {
	m := map[string]int{}
	for _, r := range s.recs {
		m[r.ResourceType]++
	}
	return m
}

// ofType returns the parsed resources of one type, in order.
func (s *memSink) ofType(rt string) []record.Resource {
	var out []record.Resource
	for _, r := range s.recs {
		if r.ResourceType == rt {
			res, err := record.Parse(r.Resource)
			if err != nil {
				panic(err)
			}
			out = append(out, res)
		}
	}
	return out
}

func (s *memSink) summary() string {
	c := s.count()
	var keys []string
	for k := range c {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%d ", k, c[k])
	}
	return b.String()
}

func importData(t testing.TB, name string, data []byte, opts map[string]string) (*memSink, error) {
	t.Helper()
	sum := sha256.Sum256(data)
	in := &importers.Input{Name: name, R: bytes.NewReader(data), Size: int64(len(data)), SHA256: hex.EncodeToString(sum[:]), Options: opts}
	s := newSink()
	err := New().Import(context.Background(), in, s)
	return s, err
}

func importFile(t testing.TB, path string) *memSink {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s, err := importData(t, path, data, nil)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	for _, f := range s.fails {
		t.Errorf("%s: item failed: %v", path, f)
	}
	return s
}

// fragmentDoc wraps a C-CDA fragment (a section, a section's component, an
// entry, a recordTarget...) in a minimal ClinicalDocument, as the HL7
// examples publish most edge cases as fragments.
func fragmentDoc(t testing.TB, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	frag := string(bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")))
	if strings.HasPrefix(strings.TrimSpace(frag), "<?xml") {
		frag = frag[strings.Index(frag, "?>")+2:]
	}
	shell, err := os.ReadFile(filepath.Join("testdata", "shell.xml"))
	if err != nil {
		t.Fatal(err)
	}
	root := rootName(frag)
	doc := string(shell)
	switch root {
	case "recordTarget":
		doc = strings.Replace(doc, "<!--RECORDTARGET-->", frag, 1)
		doc = cutBetween(doc, "<!--PATIENT-->", "<!--/PATIENT-->")
	case "section":
		doc = strings.Replace(doc, "<!--BODY-->", "<component>"+frag+"</component>", 1)
	case "component":
		doc = strings.Replace(doc, "<!--BODY-->", frag, 1)
	case "entry":
		doc = strings.Replace(doc, "<!--BODY-->", "<component><section>"+frag+"</section></component>", 1)
	default:
		doc = strings.Replace(doc, "<!--BODY-->", "<component><section><entry>"+frag+"</entry></section></component>", 1)
	}
	return []byte(doc)
}

func cutBetween(s, a, b string) string {
	i, j := strings.Index(s, a), strings.Index(s, b)
	if i < 0 || j < 0 {
		return s
	}
	return s[:i] + s[j+len(b):]
}

// rootName returns the first element name in an XML fragment.
func rootName(s string) string {
	for {
		i := strings.IndexByte(s, '<')
		if i < 0 {
			return ""
		}
		s = s[i+1:]
		switch {
		case strings.HasPrefix(s, "!--"):
			j := strings.Index(s, "-->")
			if j < 0 {
				return ""
			}
			s = s[j+3:]
		case strings.HasPrefix(s, "?"), strings.HasPrefix(s, "!"):
		default:
			j := strings.IndexAny(s, " \t\r\n/>")
			if j < 0 {
				return ""
			}
			return s[:j]
		}
	}
}
