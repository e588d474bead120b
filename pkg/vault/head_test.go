package vault

import (
	"strings"
	"testing"
)

// FuzzParseHead: what a device remembers of a vault is read back from a
// file in its config directory. ParseHead accepts what Head.String wrote
// (and round-trips it) and refuses anything else without panicking.
func FuzzParseHead(f *testing.F) {
	f.Add("17:00112233445566778899aabbccddeeff")
	f.Add("17:00112233445566778899aabbccddeeff\n")
	f.Add("0:")
	f.Add(":00112233445566778899aabbccddeeff")
	f.Add("18446744073709551616:00112233445566778899aabbccddeeff")
	f.Add("1:0011223344556677889")
	f.Add("017:00112233445566778899AABBCCDDEEFF")
	f.Fuzz(func(t *testing.T, s string) {
		h, err := ParseHead(s)
		if err != nil {
			return
		}
		again, err := ParseHead(h.String())
		if err != nil || again != h {
			t.Fatalf("%q -> %v -> %q: %v", s, h, h.String(), err)
		}
		if strings.TrimSpace(s) != h.String() {
			t.Fatalf("%q parsed as %q", s, h.String())
		}
	})
}

func TestHeadString(t *testing.T) {
	tests := []struct {
		in   string
		want error
	}{
		{"3:000102030405060708090a0b0c0d0e0f", nil},
		{"3:000102030405060708090a0b0c0d0e", errHead},
		{"x:000102030405060708090a0b0c0d0e0f", errHead},
		{"3-000102030405060708090a0b0c0d0e0f", errHead},
		{"", errHead},
	}
	for _, tt := range tests {
		_, err := ParseHead(tt.in)
		if (err == nil) != (tt.want == nil) {
			t.Errorf("ParseHead(%q) = %v", tt.in, err)
		}
	}
}
