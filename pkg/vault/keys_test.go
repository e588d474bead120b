package vault

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/phr-project/phr/pkg/kv"
	"github.com/phr-project/phr/pkg/record"
)

func fill(t *testing.T, v *Vault, n int) []record.Record {
	t.Helper()
	var recs []record.Record
	for i := 0; i < n; i++ {
		switch i % 3 {
		case 0:
			recs = append(recs, must(t)(record.NewSymptom(record.Common{}, record.Symptom{Name: fmt.Sprint("cough ", i), Severity: i % 11, At: time.Unix(int64(i)*3600, 0)})))
		case 1:
			recs = append(recs, must(t)(record.New([]byte(fmt.Sprintf(`{"resourceType":"Condition","id":"c%d","code":{"text":"Condition %d"}}`, i, i)),
				record.Provenance{Method: record.MethodImported, Importer: "fhir", System: "Clinic", OriginalID: fmt.Sprint("c", i)})))
		default:
			recs = append(recs, must(t)(record.NewNote(record.Common{}, fmt.Sprint("note ", i), time.Unix(int64(i)*3600, 0))))
		}
	}
	if _, err := v.Add(recs); err != nil {
		t.Fatal(err)
	}
	return recs
}

func TestRotate(t *testing.T) {
	tv := newTestVault(t)
	recs := fill(t, tv.Vault, 60)
	tv.Delete(recs[0].ID, 0)
	tv.SetSetting("patient", []byte("p1"))
	before, _ := tv.List(Query{IncludeDeleted: true})
	newCode := NewRecoveryCode()
	if err := tv.Rotate(RotateOptions{}); err == nil {
		t.Fatal("rotate without the passphrase succeeded")
	}
	if err := tv.Rotate(RotateOptions{Passphrase: "correct horse", RecoveryCode: newCode}); err != nil {
		t.Fatal(err)
	}
	after, _ := tv.List(Query{IncludeDeleted: true})
	if !reflect.DeepEqual(before, after) {
		t.Fatal("records changed across rotation")
	}
	if r, _ := tv.Check(false); !r.OK() {
		t.Fatalf("check after rotate: %+v", r.Problems)
	}
	// Dedup still works under the new fingerprint key.
	dup := recs[1]
	dup.ID = ""
	if res, _ := tv.Put(dup); !res.Duplicate {
		t.Fatal("dedup lost by rotation")
	}
	tv.Close()
	for _, s := range []struct {
		name string
		sec  Secret
		want error
	}{
		{"device", Identities(tv.identity), nil},
		{"passphrase", Passphrase("correct horse"), nil},
		{"new recovery", RecoveryCode(newCode), nil},
		{"old recovery", RecoveryCode(tv.code), ErrWrongKey},
	} {
		v, err := Open(tv.path, s.sec, nil)
		if !errors.Is(err, s.want) {
			t.Fatalf("%s: %v", s.name, err)
		}
		if err == nil {
			if s, _ := v.Setting("patient"); string(s) != "p1" {
				t.Fatalf("setting after rotate: %q", s)
			}
			v.Close()
		}
	}
}

func TestRotateInterrupted(t *testing.T) {
	for _, at := range []int{1, 17, 59} {
		t.Run(fmt.Sprint(at), func(t *testing.T) {
			tv := newTestVault(t)
			fill(t, tv.Vault, 60)
			before, _ := tv.List(Query{})
			err := tv.Rotate(RotateOptions{Passphrase: "correct horse", RecoveryCode: NewRecoveryCode(), failAfter: at})
			if !errors.Is(err, errInjected) {
				t.Fatalf("Rotate = %v", err)
			}
			after, err := tv.List(Query{})
			if err != nil || !reflect.DeepEqual(before, after) {
				t.Fatalf("vault changed by a failed rotation: %v", err)
			}
			tv.Close()
			v, err := Open(tv.path, RecoveryCode(tv.code), nil)
			if err != nil {
				t.Fatalf("old key no longer opens: %v", err)
			}
			v.Close()
		})
	}
}

// TestRotateKilled kills a process in the middle of rotations: the vault
// must open afterwards with the old key or the new one.
func TestRotateKilled(t *testing.T) {
	if os.Getenv("PHR_ROTATE_CHILD") != "" {
		id, _ := age.ParseX25519Identity(os.Getenv("PHR_ROTATE_IDENTITY"))
		v, err := Open(os.Getenv("PHR_ROTATE_CHILD"), Identities(id), nil)
		if err != nil {
			os.Exit(3)
		}
		for {
			if err := v.Rotate(RotateOptions{Passphrase: "correct horse", RecoveryCode: NewRecoveryCode()}); err != nil {
				os.Exit(4)
			}
		}
	}
	if testing.Short() {
		t.Skip("slow")
	}
	tv := newTestVault(t)
	fill(t, tv.Vault, 3000)
	want, _ := tv.List(Query{})
	tv.Close()
	for i := 0; i < 5; i++ {
		cmd := exec.Command(os.Args[0], "-test.run=^TestRotateKilled$")
		cmd.Env = append(os.Environ(), "PHR_ROTATE_CHILD="+tv.path, "PHR_ROTATE_IDENTITY="+tv.identity.String())
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(150+i*97) * time.Millisecond)
		cmd.Process.Kill()
		cmd.Wait()
		v, err := Open(tv.path, Identities(tv.identity), nil)
		if err != nil {
			t.Fatalf("kill %d: vault does not open: %v", i, err)
		}
		got, err := v.List(Query{})
		if err != nil || !reflect.DeepEqual(want, got) {
			t.Fatalf("kill %d: records differ: %v", i, err)
		}
		if r, _ := v.Check(false); !r.OK() {
			t.Fatalf("kill %d: check: %+v", i, r.Problems)
		}
		v.Close()
	}
}

func TestCheckAndRepair(t *testing.T) {
	tv := newTestVault(t)
	recs := fill(t, tv.Vault, 30)
	if r, err := tv.Check(false); err != nil || !r.OK() || r.Records != 30 {
		t.Fatalf("clean vault: %+v %v", r, err)
	}
	// Damage the indexes as a bug would (sealed and counted in the
	// head, so no tampering): drop a record's listing entry, list a
	// record as a medication, drop a fingerprint and a change entry.
	err := tv.update(func(tx kv.Tx) error {
		tv.listPut(&recs[0], nil)
		steered := recs[2]
		steered.Kind = record.KindMedication
		tv.listPut(&recs[2], &steered)
		fb, cb := tx.Bucket([]byte{bucketFinger}), tx.Bucket([]byte{bucketChanges})
		c := fb.Cursor()
		k, _ := c.First()
		fb.Delete(k)
		return cb.Delete(seqKey(5))
	})
	if err != nil {
		t.Fatal(err)
	}
	path := tv.path
	before, _ := os.ReadFile(path)
	if r, err := tv.Check(false); err != nil || r.OK() || len(r.Problems) < 3 {
		t.Fatalf("damaged vault: %+v %v", r, err)
	}
	if got, _ := tv.List(Query{Kinds: []string{record.KindMedication}}); len(got) != 0 {
		t.Fatal("a listing entry of another kind selected a record")
	}
	// Only a deep check sees that a fingerprint is missing.
	r, err := tv.CheckDeep(false)
	if err != nil || r.OK() || len(r.Problems) < 4 {
		t.Fatalf("damaged vault: %+v %v", r, err)
	}
	for _, p := range r.Problems {
		for _, rec := range recs {
			if strings.Contains(p.What, rec.Display) {
				t.Fatalf("problem text leaks content: %q", p.What)
			}
		}
	}
	after, _ := os.ReadFile(path)
	if !bytes.Equal(before, after) {
		t.Fatal("check without repair modified the file")
	}
	if r, err := tv.Check(true); err != nil || !r.Repaired {
		t.Fatalf("repair: %+v %v", r, err)
	}
	if r, _ := tv.Check(false); !r.OK() {
		t.Fatalf("after repair: %+v", r.Problems)
	}
	if got, _ := tv.List(Query{Kinds: []string{record.KindMedication}}); len(got) != 0 {
		t.Fatal("stray index entry survived repair")
	}
	if got, _ := tv.List(Query{}); len(got) != 30 {
		t.Fatalf("after repair: %d records listed", len(got))
	}
	// A record that fails to open is reported and kept.
	rawWrites.Store(tv.Vault, true)
	tv.db.Update(func(tx kv.Tx) error {
		return tx.Bucket([]byte{bucketRecords}).Put(keyOf(recs[3].ID), []byte("garbage sealed value that is long enough to pass the length check"))
	})
	r, _ = tv.Check(true)
	found := false
	for _, p := range r.Problems {
		if p.ID == recs[3].ID && strings.Contains(p.What, "does not open") {
			found = true
		}
	}
	if !found {
		t.Fatalf("unreadable record not reported: %+v", r.Problems)
	}
}

func TestBackupRestore(t *testing.T) {
	tv := newTestVault(t)
	recs := fill(t, tv.Vault, 90)
	tv.Delete(recs[0].ID, 0)
	tv.SetSetting("patient", []byte("p1"))
	backupID, _ := age.GenerateX25519Identity()
	var buf bytes.Buffer
	n, err := tv.Backup(&buf, []age.Recipient{backupID.Recipient()}, true)
	if err != nil || n != 90 {
		t.Fatalf("Backup = %d, %v", n, err)
	}
	if bytes.Contains(buf.Bytes(), []byte("cough")) {
		t.Fatal("backup contains plaintext")
	}
	if _, err := VerifyBackup(bytes.NewReader(buf.Bytes()), backupID); err != nil {
		t.Fatal(err)
	}
	dest := filepath.Join(t.TempDir(), "restored.phr")
	newID, _ := age.GenerateX25519Identity()
	slots := []SlotSpec{{Kind: SlotDevice, Recipients: []age.Recipient{newID.Recipient()}}}
	if _, n, err := Restore(bytes.NewReader(buf.Bytes()), []age.Identity{backupID}, dest, slots, false); err != nil || n != 90 {
		t.Fatalf("Restore = %d, %v", n, err)
	}
	v, err := Open(dest, Identities(newID), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	checkRestored(t, v, tv.Vault)

	// Bad backups: other key, truncated, tampered, not a backup. Nothing is
	// left behind, and an existing vault is untouched.
	other, _ := age.GenerateX25519Identity()
	good := buf.Bytes()
	tampered := append([]byte(nil), good...)
	tampered[len(tampered)-40] ^= 1
	existingBefore, _ := os.ReadFile(dest)
	for _, tc := range []struct {
		name string
		data []byte
		id   age.Identity
	}{
		{"other key", good, other},
		{"truncated", good[:len(good)/2], backupID},
		{"tampered", tampered, backupID},
		{"garbage", []byte("not an age file"), backupID},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := VerifyBackup(bytes.NewReader(tc.data), tc.id); !errors.Is(err, ErrBackup) {
				t.Errorf("verify = %v", err)
			}
			dir := t.TempDir()
			if _, _, err := Restore(bytes.NewReader(tc.data), []age.Identity{tc.id}, filepath.Join(dir, "x.phr"), slots, false); err == nil {
				t.Fatal("restore succeeded")
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 0 {
				t.Fatalf("restore left %d files", len(entries))
			}
			if _, _, err := Restore(bytes.NewReader(tc.data), []age.Identity{tc.id}, dest, slots, true); err == nil {
				t.Fatal("restore over existing succeeded")
			}
		})
	}
	v.Close()
	if now, _ := os.ReadFile(dest); !bytes.Equal(now, existingBefore) {
		t.Fatal("failed restore modified the existing vault")
	}
	if _, _, err := Restore(bytes.NewReader(good), []age.Identity{backupID}, dest, slots, false); !errors.Is(err, ErrExists) {
		t.Fatalf("restore over existing without replace = %v", err)
	}
	kept, _, err := Restore(bytes.NewReader(good), []age.Identity{backupID}, dest, slots, true)
	if err != nil || kept == "" {
		t.Fatalf("replace = %q, %v", kept, err)
	}
	if old, _ := os.ReadFile(kept); !bytes.Equal(old, existingBefore) {
		t.Fatal("the replaced vault was not kept aside intact")
	}
}

func TestReplaceSlots(t *testing.T) {
	tv := newTestVault(t)
	code := NewRecoveryCode()
	if _, err := tv.ReplaceSlots(SlotSpec{Kind: SlotRecovery, RecoveryCode: code}); err != nil {
		t.Fatal(err)
	}
	if _, err := tv.ReplaceSlots(SlotSpec{Kind: SlotPassphrase, Passphrase: "new words here"}); err != nil {
		t.Fatal(err)
	}
	slots, _ := tv.Slots()
	if len(slots) != 3 {
		t.Fatalf("%d slots", len(slots))
	}
	tv.Close()
	for _, s := range []struct {
		sec  Secret
		want error
	}{
		{RecoveryCode(tv.code), ErrWrongKey},
		{RecoveryCode(code), nil},
		{Passphrase("correct horse"), ErrWrongKey},
		{Passphrase("new words here"), nil},
	} {
		v, err := Open(tv.path, s.sec, nil)
		if !errors.Is(err, s.want) {
			t.Fatalf("open = %v, want %v", err, s.want)
		}
		if err == nil {
			v.Close()
		}
	}
}
