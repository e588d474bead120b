package sharestore

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestRekey: after Rekey every share opens by the same manifest id under
// the new secret, with its label, owner, counters, files and log; a share
// of an owner not given is left out; the old secret opens nothing in the
// file any more, and no byte of the old file's sealed values or keys is in
// the new one.
func TestRekey(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "shares.db")
	oldSecret, newSecret := bytes.Repeat([]byte{1}, SecretSize), bytes.Repeat([]byte{2}, SecretSize)
	s, err := Open(path, &Options{Secret: oldSecret, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	a := create(t, s, func(sp *ShareSpec) { sp.Label = "LABEL-A"; sp.Passcode = "1234" })
	b := create(t, s, func(sp *ShareSpec) { sp.Label = "LABEL-B" })
	gone := create(t, s, func(sp *ShareSpec) { sp.Owner = "owner-gone"; sp.Label = "LABEL-GONE" })
	if _, err := s.Access(ctx, a.ID, "RECIPIENT-A", "0000", t0); err == nil {
		t.Fatal("wrong passcode granted")
	}
	if _, err := s.Access(ctx, b.ID, "RECIPIENT-B", "", t0); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Revoke("owner-a", b.ID, t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	jweA, _ := s.ReadFile(a.ID, a.Files[0].ID)
	s.Close()
	oldFile, _ := os.ReadFile(path)

	// A stale temporary file of an interrupted run is replaced.
	os.WriteFile(path+".rekey", []byte("half-written"), 0o600)
	res, err := Rekey(path, oldSecret, newSecret, []string{"owner-a", "owner-b"}, &Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Shares != 2 || res.Dropped != 1 {
		t.Fatalf("result %+v", res)
	}
	if _, err := os.Stat(path + ".rekey"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("temporary file left: %v", err)
	}
	if _, err := Open(path, &Options{Secret: oldSecret}); !errors.Is(err, ErrWrongSecret) {
		t.Fatalf("the old secret opens the rekeyed file: %v", err)
	}
	s, err = Open(path, &Options{Secret: newSecret, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Check(); err != nil {
		t.Fatal(err)
	}
	list, err := s.List("owner-a")
	if err != nil || len(list) != 2 {
		t.Fatalf("list after rekey: %+v %v", list, err)
	}
	byLabel := map[string]Share{}
	for _, sh := range list {
		byLabel[sh.Label] = sh
	}
	if ga, gb := byLabel["LABEL-A"], byLabel["LABEL-B"]; ga.ID != a.ID || gb.ID != b.ID || ga.RemainingAttempts != DefaultMaxAttempts-1 || gb.RevokedAt.IsZero() || gb.Uses != 1 {
		t.Fatalf("shares after rekey: %+v", list)
	}
	if _, err := s.Get(gone.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a share of an unknown owner: %v", err)
	}
	if got, err := s.ReadFile(a.ID, a.Files[0].ID); err != nil || got != jweA {
		t.Fatalf("file after rekey: %v", err)
	}
	if _, err := s.Access(ctx, a.ID, "Dr. After", "1234", t0.Add(2*time.Minute)); err != nil {
		t.Fatalf("the link after rekey: %v", err)
	}
	log, err := s.Log("owner-a", a.ID)
	if err != nil || len(log) != 2 || log[0].Recipient != "RECIPIENT-A" || log[0].Outcome != OutcomeWrongPasscode || log[1].Recipient != "Dr. After" {
		t.Fatalf("log after rekey: %+v %v", log, err)
	}
	// Nothing of the old file's keys came along: its lookup keys and owner
	// tag, found in the old file, are not in the new one.
	newFile, _ := os.ReadFile(path)
	oldStore := &Store{}
	oldStore.k, _ = deriveKeys(oldSecret)
	for _, k := range [][]byte{oldStore.lookupKey(a.ID), oldStore.lookupKey(b.ID), oldStore.ownerTag("owner-a")} {
		if !bytes.Contains(oldFile, k) {
			t.Fatal("the old file lacks its own keys: the check proves nothing")
		}
		if bytes.Contains(newFile, k) {
			t.Errorf("an old lookup key or owner tag is in the rekeyed file")
		}
	}
	// The same secret twice is refused.
	if _, err := Rekey(path, newSecret, newSecret, nil, nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("rekey to the same secret: %v", err)
	}
}
