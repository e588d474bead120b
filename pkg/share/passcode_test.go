package share

import (
	"strings"
	"testing"
)

// lowCost makes passcode hashing cheap for one test.
func lowCost(t *testing.T) {
	t.Cleanup(SetPasscodeCostForTesting(4))
}

func TestPasscodeHashCheck(t *testing.T) {
	lowCost(t)
	h, err := HashPasscode("1234")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$scrypt$ln=4,r=8,p=1$") || strings.Contains(h, "1234$") {
		t.Errorf("hash = %q", h)
	}
	for _, tc := range []struct {
		passcode string
		want     bool
	}{
		{"1234", true},
		{"12345", false},
		{"123", false},
		{"", false},
		{"1234 ", false},
	} {
		if got := CheckPasscode(h, tc.passcode); got != tc.want {
			t.Errorf("CheckPasscode(h, %q) = %v, want %v", tc.passcode, got, tc.want)
		}
	}
	h2, _ := HashPasscode("1234")
	if h2 == h {
		t.Error("two hashes of one passcode are equal: salt not random")
	}
	if !CheckPasscode(h2, "1234") {
		t.Error("second hash does not verify")
	}
	if _, err := HashPasscode(""); err == nil {
		t.Error("HashPasscode(\"\") succeeded")
	}
}

func TestPasscodeMalformedHash(t *testing.T) {
	lowCost(t)
	good, _ := HashPasscode("pw")
	parts := strings.Split(good, "$") // "", scrypt, params, salt, hash
	join := func(p ...string) string { return strings.Join(p, "$") }
	for _, tc := range []struct{ name, hash string }{
		{"empty", ""},
		{"plain text", "pw"},
		{"other scheme", join("", "argon2id", parts[2], parts[3], parts[4])},
		{"missing part", join("", "scrypt", parts[2], parts[3])},
		{"extra part", good + "$x"},
		{"no leading $", strings.TrimPrefix(good, "$")},
		{"params order", join("", "scrypt", "r=8,ln=4,p=1", parts[3], parts[4])},
		{"ln zero", join("", "scrypt", "ln=0,r=8,p=1", parts[3], parts[4])},
		{"ln huge", join("", "scrypt", "ln=40,r=8,p=1", parts[3], parts[4])},
		{"r huge", join("", "scrypt", "ln=4,r=100000,p=1", parts[3], parts[4])},
		{"p zero", join("", "scrypt", "ln=4,r=8,p=0", parts[3], parts[4])},
		{"ln not number", join("", "scrypt", "ln=x,r=8,p=1", parts[3], parts[4])},
		{"salt bad base64", join("", "scrypt", parts[2], "!!!", parts[4])},
		{"salt short", join("", "scrypt", parts[2], "AAAA", parts[4])},
		{"hash bad base64", join("", "scrypt", parts[2], parts[3], "***")},
		{"hash short", join("", "scrypt", parts[2], parts[3], "AAAA")},
		{"other params", join("", "scrypt", "ln=5,r=8,p=1", parts[3], parts[4])},
	} {
		if CheckPasscode(tc.hash, "pw") {
			t.Errorf("%s: CheckPasscode(%q, right passcode) = true", tc.name, tc.hash)
		}
	}
	if !CheckPasscode(good, "pw") {
		t.Error("good hash does not verify")
	}
}

func TestPasscodeDefaultCost(t *testing.T) {
	if testing.Short() {
		t.Skip("default scrypt cost is slow")
	}
	h, err := HashPasscode("correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$scrypt$ln=15,r=8,p=1$") {
		t.Errorf("default hash = %q, want ln=15", h)
	}
	if !CheckPasscode(h, "correct horse") || CheckPasscode(h, "wrong horse") {
		t.Error("default-cost hash does not check correctly")
	}
}

func TestSetPasscodeCostRestores(t *testing.T) {
	restore := SetPasscodeCostForTesting(5)
	if got := passcodeLogN.Load(); got != 5 {
		t.Errorf("logN = %d, want 5", got)
	}
	restore()
	if got := passcodeLogN.Load(); got != defaultLogN {
		t.Errorf("after restore logN = %d, want %d", got, defaultLogN)
	}
}
