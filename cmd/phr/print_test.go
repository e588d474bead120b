package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// Every command's --json output is one JSON value on standard output,
// with nothing else around it; an empty list is [] (never null); and the
// text form of the same command is not JSON.
func TestJSONOutputs(t *testing.T) {
	c := newCLI(t)
	c.initVault()
	empty := c.ok("list", "medication", "--json")
	if strings.TrimSpace(empty) != "[]" {
		t.Fatalf("an empty listing: %q, want []", empty)
	}
	logged := c.ok("log", "med", "Metformin", "--dose", "500 mg", "--json")
	var rec struct{ ID, Type string }
	if err := json.Unmarshal([]byte(logged), &rec); err != nil || rec.ID == "" || rec.Type != "medication" {
		t.Fatalf("log --json: %q %v", logged, err)
	}
	tests := []struct {
		args []string
		want string // a key or value the JSON holds
	}{
		{[]string{"version"}, `"vaultFormat"`},
		{[]string{"list"}, rec.ID},
		{[]string{"list", "--group"}, rec.ID},
		{[]string{"timeline"}, rec.ID},
		{[]string{"search", "metformin"}, rec.ID},
		{[]string{"show", rec.ID}, `"provenance"`},
		{[]string{"edit", rec.ID, "--note", "with food"}, rec.ID},
		{[]string{"check"}, `"problems": []`},
		{[]string{"key", "list"}, `"thisDevice"`},
		{[]string{"rm", rec.ID}, `"deleted": true`},
		{[]string{"list"}, `[`},
	}
	for _, tt := range tests {
		out := c.ok(append(tt.args, "--json")...)
		var v any
		if err := json.Unmarshal([]byte(out), &v); err != nil {
			t.Errorf("phr %v --json is not one JSON value: %v\n%s", tt.args, err, out)
			continue
		}
		if v == nil || !strings.Contains(out, tt.want) {
			t.Errorf("phr %v --json: %s, want %s in it", tt.args, out, tt.want)
		}
	}
	for _, args := range [][]string{{"version"}, {"key", "list"}, {"check"}} {
		var v any
		if out := c.ok(args...); json.Unmarshal([]byte(out), &v) == nil {
			t.Errorf("phr %v without --json printed JSON: %s", args, out)
		}
	}
}
