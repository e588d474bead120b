package server

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/phr-project/phr/pkg/record"
)

func checkSummaryEncoding(t *testing.T, s record.Summary) {
	t.Helper()
	want, _ := json.Marshal(s)
	var b bytes.Buffer
	appendSummary(&b, s)
	b.WriteByte('}')
	if !bytes.Equal(b.Bytes(), want) {
		t.Fatalf("appendSummary = %s, encoding/json = %s", b.Bytes(), want)
	}
}

func TestAppendSummaryMatchesEncodingJSON(t *testing.T) {
	for _, d := range []string{"", "plain", `quote " backslash \ `, "<script>&</script>", "tab\tnl\ncr\r", "\x00\x01\x1f", "ünïcødé ✓", "line\u2028sep\u2029", "bad \xff utf8", "—"} {
		checkSummaryEncoding(t, record.Summary{ID: "abcd", Kind: "vital", ResourceType: "Observation", Date: "2026-01-01T00:00:00Z", Display: d, Source: d, Version: 7})
	}
	checkSummaryEncoding(t, record.Summary{ID: "abcd", Kind: "immunization", ResourceType: "Immunization", Display: "Flu — not given", Version: 1, Negation: record.NegNotDone})
}

func FuzzAppendSummary(f *testing.F) {
	f.Add("x", "y")
	f.Add("<\u2028\xff", "\"\\")
	f.Fuzz(func(t *testing.T, display, source string) {
		checkSummaryEncoding(t, record.Summary{ID: "i", Display: display, Source: source, Version: 1})
	})
}
