package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestTermSafe(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain text\n\tindented", "plain text\n\tindented"},
		{"\x1b[2J\x1b]52;c;aGk=\x07cleared", `\u001b[2J\u001b]52;c;aGk=\u0007cleared`},
		{"del\x7f", `del\u007f`},
		{"c1 \u009b31m csi", `c1 \u009b31m csi`},
		{"bidi \u202eevil\u202c", `bidi \u202eevil\u202c`},
		{"café, 日本, 120/80 mmHg", "café, 日本, 120/80 mmHg"},
		{"carriage\rreturn", `carriage\u000dreturn`},
	}
	for _, tt := range tests {
		var b bytes.Buffer
		w := &termSafe{w: &b}
		// Byte by byte: runes split across writes are kept whole.
		for i := range len(tt.in) {
			w.Write([]byte{tt.in[i]})
		}
		if b.String() != tt.want {
			t.Errorf("%q: got %q, want %q", tt.in, b.String(), tt.want)
		}
	}
	// JSON stays JSON.
	var b bytes.Buffer
	enc := json.NewEncoder(&termSafe{w: &b})
	enc.SetEscapeHTML(false)
	enc.Encode(map[string]string{"display": "x\x1b[31m\u009b\u202e\x7fy"})
	var back map[string]string
	if err := json.Unmarshal(b.Bytes(), &back); err != nil || strings.ContainsAny(b.String(), "\x1b\x7f\u009b\u202e") {
		t.Fatalf("json through termSafe: %q, %v", b.String(), err)
	}
}

// A record whose text holds terminal escapes (an imported code.text)
// prints them escaped in every printer.
func TestPrintersEscapeControls(t *testing.T) {
	c := newCLI(t)
	c.initVault()
	evil := "asthma\x1b[2J\x1b]52;c;ZXZpbA==\x07\u009b0m\u202e"
	c.ok("log", "condition", evil, "--note", "note\x1b[31m")
	for _, args := range [][]string{{"list"}, {"list", "--json"}, {"timeline"}, {"search", "asthma"}, {"list", "--group"}} {
		out := c.ok(args...)
		if strings.ContainsAny(out, "\x1b\x07\u009b\u202e") {
			t.Errorf("%v printed a raw control: %q", args, out)
		}
		if !strings.Contains(out, `\u001b`) {
			t.Errorf("%v: escape not shown: %q", args, out)
		}
	}
	id := c.list("list")[0]["id"].(string)
	for _, args := range [][]string{{"show", id}, {"show", id, "--fhir"}, {"show", id, "--json"}} {
		if out := c.ok(args...); strings.ContainsAny(out, "\x1b\x07\u009b\u202e") {
			t.Errorf("%v printed a raw control: %q", args, out)
		}
	}
}
