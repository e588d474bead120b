package record

import "testing"

func TestIsDecimal(t *testing.T) {
	for _, c := range []struct {
		in   string
		want bool
	}{
		{"0", true}, {"-0", true}, {"5", true}, {"97.5", true}, {"0.97", true}, {"-12.50", true},
		{"1e3", true}, {"1.5E-7", true}, {"2e+10", true},
		{"", false}, {"-", false}, {"+5", false}, {".5", false}, {"5.", false}, {"05", false},
		{"1e", false}, {"1e+", false}, {"0x10", false}, {"NaN", false}, {"Inf", false}, {"1,5", false}, {" 1", false},
		{"12345678901234567890123456789012345678901234567890123456789012345", false}, // 65 characters
		{"1234567890123456789012345678901234567890123456789012345678901234", true},   // 64
	} {
		if got := IsDecimal(c.in); got != c.want {
			t.Errorf("IsDecimal(%q) = %v, want %v", c.in, got, c.want)
		}
	}
}

func TestFormatDecimal(t *testing.T) {
	for _, c := range []struct {
		in   float64
		want string
	}{
		{0, "0"}, {negZero(), "0"}, {5, "5"}, {0.5, "0.5"}, {-97.25, "-97.25"}, {1e21, "1000000000000000000000"}, {1.5e-7, "0.00000015"},
	} {
		if got := FormatDecimal(c.in); got != c.want {
			t.Errorf("FormatDecimal(%v) = %q, want %q", c.in, got, c.want)
		}
	}
}

func negZero() float64 {
	z := 0.0
	return -z
}
