package vault

import (
	"bytes"
	"os"
	"testing"
	"time"
)

func TestAudit(t *testing.T) {
	v := newTestVault(t)
	if got, err := v.Audit(0); err != nil || len(got) != 0 {
		t.Fatalf("empty log: %v, %v", got, err)
	}
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	if err := v.AppendAudit(
		AuditEntry{Event: "login", Method: "passphrase", Client: "192.0.2.0/24", Time: at},
		AuditEntry{Event: "import", Success: true, Format: "fhir", Counts: map[string]int{"added": 3}},
	); err != nil {
		t.Fatal(err)
	}
	if err := v.AppendAudit(AuditEntry{Event: "device.add", Success: true, Ref: "abcd", Label: "phone"}); err != nil {
		t.Fatal(err)
	}
	got, err := v.Audit(0)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0].Seq != 3 || got[0].Event != "device.add" || got[2].Seq != 1 || !got[2].Time.Equal(at) ||
		got[1].Counts["added"] != 3 || got[1].Time.IsZero() {
		t.Fatalf("audit = %+v", got)
	}
	if got, _ := v.Audit(2); len(got) != 2 || got[1].Seq != 2 {
		t.Fatalf("limit 2: %+v", got)
	}
	// Sealed: the event names and labels are not in the file.
	raw, err := os.ReadFile(v.path)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"device.add", "phone", "192.0.2.0", "fhir"} {
		if bytes.Contains(raw, []byte(s)) {
			t.Errorf("vault file contains %q", s)
		}
	}
}

func TestAuditWindow(t *testing.T) {
	old := MaxAuditEntries
	MaxAuditEntries = 5
	t.Cleanup(func() { MaxAuditEntries = old })
	v := newTestVault(t)
	for i := 0; i < 12; i++ {
		if err := v.AppendAudit(AuditEntry{Event: "login", Success: true}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := v.Audit(0)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 5 || got[0].Seq != 12 || got[4].Seq != 8 {
		t.Fatalf("window: %+v", got)
	}
	// The log survives a rotation of the vault key.
	if err := v.Rotate(RotateOptions{Passphrase: "correct horse", RecoveryCode: NewRecoveryCode()}); err != nil {
		t.Fatal(err)
	}
	got, err = v.Audit(1)
	if err != nil || len(got) != 1 || got[0].Seq != 12 {
		t.Fatalf("after rotate: %+v, %v", got, err)
	}
}
