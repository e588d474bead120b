package jsondepth

import (
	"strings"
	"testing"
)

func TestExceeds(t *testing.T) {
	tests := []struct {
		json string
		max  int
		want bool
	}{
		{`{}`, 1, false},
		{`{}`, 0, true},
		{`{"a":[1,{"b":2}]}`, 3, false},
		{`{"a":[1,{"b":2}]}`, 2, true},
		{`{"a":"[[[[{{{{"}`, 1, false},
		{`{"a":"\"[[[["}`, 1, false},
		{`[[],[],[]]`, 2, false},
		{strings.Repeat("[", 100) + strings.Repeat("]", 100), 99, true},
		{strings.Repeat("[", 100) + strings.Repeat("]", 100), 100, false},
		{`"unterminated [[[`, 0, false},
		{``, 0, false},
	}
	for _, tt := range tests {
		if got := Exceeds([]byte(tt.json), tt.max); got != tt.want {
			t.Errorf("Exceeds(%.30q, %d) = %v, want %v", tt.json, tt.max, got, tt.want)
		}
	}
}
