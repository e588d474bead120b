package vault

import (
	"bytes"
	"crypto/rand"
	"errors"
	"testing"
)

func sessionKey(t *testing.T) []byte {
	t.Helper()
	k := make([]byte, SessionKeySize)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return k
}

// slotOf returns the ID of tv's slot of kind.
func slotOf(t *testing.T, v *Vault, kind SlotKind) string {
	t.Helper()
	slots, err := v.Slots()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range slots {
		if s.Kind == kind {
			return s.ID
		}
	}
	t.Fatalf("no %s slot", kind)
	return ""
}

// TestSessionSecret: a vault key wrapped for a session opens the vault
// again (in Open and in Opens of an open vault) with the key it was
// wrapped under, and with nothing else: not another key, not another
// vault's wrapped key, not a damaged one, not after its slot is removed,
// not after the vault key is rotated.
func TestSessionSecret(t *testing.T) {
	tv := newTestVault(t)
	other := newTestVault(t)
	k := sessionKey(t)
	pass := slotOf(t, tv.Vault, SlotPassphrase)
	dev := slotOf(t, tv.Vault, SlotDevice)
	wrapped, err := tv.WrapForSession(k, pass)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(wrapped, tv.vaultKey) || bytes.Contains(wrapped, k) {
		t.Fatal("the wrapped key holds the vault key or the session key")
	}
	devWrapped, err := tv.WrapForSession(k, dev)
	if err != nil {
		t.Fatal(err)
	}
	otherWrapped, err := other.WrapForSession(k, slotOf(t, other.Vault, SlotPassphrase))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tv.WrapForSession(k, "nosuchslot"); !errors.Is(err, ErrNotFound) {
		t.Errorf("wrapping for a slot the vault does not have: %v", err)
	}
	if _, err := tv.WrapForSession(k[:16], pass); err == nil {
		t.Error("wrapping under a short key succeeded")
	}
	flipped := bytes.Clone(wrapped)
	flipped[len(flipped)-1] ^= 1
	renamed := bytes.Clone(devWrapped)
	copy(renamed[2:], pass) // the passphrase slot's name on the device slot's key (slot IDs have one length)
	cases := []struct {
		name    string
		secret  Secret
		opens   bool
		slotIDs []string
	}{
		{"right key", SessionSecret(wrapped, k), true, []string{pass}},
		{"device slot's", SessionSecret(devWrapped, k), true, []string{dev}},
		{"wrong key", SessionSecret(wrapped, sessionKey(t)), false, nil},
		{"short key", SessionSecret(wrapped, k[:31]), false, nil},
		{"another vault's", SessionSecret(otherWrapped, k), false, nil},
		{"flipped bit", SessionSecret(flipped, k), false, nil},
		{"slot name swapped", SessionSecret(renamed, k), false, nil},
		{"truncated", SessionSecret(wrapped[:len(wrapped)-1], k), false, nil},
		{"empty", SessionSecret(nil, k), false, nil},
	}
	for _, tc := range cases {
		t.Run("Opens/"+tc.name, func(t *testing.T) {
			ok, err := tv.Opens(tc.secret)
			if err != nil || ok != tc.opens {
				t.Errorf("Opens = %v, %v; want %v", ok, err, tc.opens)
			}
		})
	}
	// The same against the file, closed and opened again.
	if err := tv.Close(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range cases {
		t.Run("Open/"+tc.name, func(t *testing.T) {
			v, err := Open(tv.path, tc.secret, &Options{NoSync: true})
			if !tc.opens {
				if !errors.Is(err, ErrWrongKey) {
					t.Errorf("Open = %v, want ErrWrongKey", err)
				}
				if v != nil {
					v.Close()
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer v.Close()
			if v.UnlockedBy() != tc.slotIDs[0] {
				t.Errorf("unlocked by %q, want %q", v.UnlockedBy(), tc.slotIDs[0])
			}
		})
	}

	// Removing the slot a session came in by ends what its key opens.
	v, err := Open(tv.path, Passphrase("correct horse"), &Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := v.RemoveSlot(dev); err != nil && !errors.Is(err, ErrNotCompacted) {
		t.Fatal(err)
	}
	if ok, err := v.Opens(SessionSecret(devWrapped, k)); ok || err != nil {
		t.Errorf("a removed slot's session key opens the vault: %v, %v", ok, err)
	}
	// Rotating the vault key ends every key wrapped before: the slot
	// keeps its ID, the key it holds is another.
	if err := v.Rotate(RotateOptions{Passphrase: "correct horse", RecoveryCode: NewRecoveryCode()}); err != nil {
		t.Fatal(err)
	}
	if ok, err := v.Opens(SessionSecret(wrapped, k)); ok || err != nil {
		t.Errorf("a key wrapped before the rotation opens the open vault: %v, %v", ok, err)
	}
	rewrapped, err := v.WrapForSession(k, pass)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(tv.path, SessionSecret(wrapped, k), &Options{NoSync: true}); !errors.Is(err, ErrWrongKey) {
		t.Errorf("a key wrapped before the rotation: Open = %v, want ErrWrongKey", err)
	}
	v, err = Open(tv.path, SessionSecret(rewrapped, k), &Options{NoSync: true})
	if err != nil {
		t.Fatalf("the key wrapped after the rotation: %v", err)
	}
	v.Close()
}
