package vault

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/phr-project/phr/pkg/kv"
	"github.com/phr-project/phr/pkg/record"
	bolt "go.etcd.io/bbolt"
)

// slotBytes returns the stored value of every slot of a kind, and the
// age file each holds (the vault key wrapped for that secret).
func slotBytes(t *testing.T, v *Vault, kind SlotKind) (stored, wrapped [][]byte) {
	t.Helper()
	v.db.View(func(tx kv.Tx) error {
		return tx.Bucket([]byte{bucketSlots}).ForEach(func(k, val []byte) error {
			var st storedSlot
			if err := json.Unmarshal(val, &st); err != nil {
				t.Fatal(err)
			}
			if st.Kind == kind {
				stored = append(stored, bytes.Clone(val))
				wrapped = append(wrapped, bytes.Clone(st.Age))
			}
			return nil
		})
	})
	return stored, wrapped
}

// recordValues returns every sealed record as stored.
func recordValues(t *testing.T, v *Vault) [][]byte {
	t.Helper()
	var out [][]byte
	v.db.View(func(tx kv.Tx) error {
		return tx.Bucket([]byte{bucketRecords}).ForEach(func(_, val []byte) error {
			out = append(out, bytes.Clone(val))
			return nil
		})
	})
	return out
}

// pieces returns the parts of a secret's traces worth searching for: the
// whole value, and windows of it (a page boundary may split a value).
func pieces(b []byte) [][]byte {
	out := [][]byte{b}
	const w = 48
	for i := 0; i+w <= len(b); i += w {
		out = append(out, b[i:i+w])
	}
	return out
}

// freePageBytes returns the bytes of the file's free and pending pages,
// as bbolt lists them.
func freePageBytes(t *testing.T, path string) []byte {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var out []byte
	ps := db.Info().PageSize
	db.View(func(tx *bolt.Tx) error {
		for id := 2; int64(id) < int64(tx.Size())/int64(ps); id++ {
			if p, err := tx.Page(id); err == nil && p != nil && (p.Type == "free" || p.Type == "freelist") {
				out = append(out, raw[id*ps:(id+1)*ps]...)
			}
		}
		return nil
	})
	return out
}

// TestRevokedSecretsLeaveNoTrace changes or removes a secret and then
// searches the raw file, free pages and all, for what the old secret
// opened: the old slots (the vault key wrapped for it) and, after a
// rotation, every record sealed under the old key. bbolt frees pages
// without clearing them, so before compaction all of it was there.
func TestRevokedSecretsLeaveNoTrace(t *testing.T) {
	tests := []struct {
		name   string
		kind   SlotKind
		change func(t *testing.T, tv *testVault) (oldSecret Secret)
		rotate bool
	}{
		{"passwd", SlotPassphrase, func(t *testing.T, tv *testVault) Secret {
			if _, err := tv.ReplaceSlots(SlotSpec{Kind: SlotPassphrase, Passphrase: "a new passphrase"}); err != nil {
				t.Fatal(err)
			}
			return Passphrase("correct horse")
		}, false},
		{"new recovery code", SlotRecovery, func(t *testing.T, tv *testVault) Secret {
			if _, err := tv.ReplaceSlots(SlotSpec{Kind: SlotRecovery, RecoveryCode: NewRecoveryCode()}); err != nil {
				t.Fatal(err)
			}
			return RecoveryCode(tv.code)
		}, false},
		{"device removed", SlotDevice, func(t *testing.T, tv *testVault) Secret {
			slots, _ := tv.Slots()
			for _, s := range slots {
				if s.Kind == SlotDevice {
					if err := tv.RemoveSlot(s.ID); err != nil {
						t.Fatal(err)
					}
				}
			}
			return Identities(tv.identity)
		}, false},
		{"rotate", SlotRecovery, func(t *testing.T, tv *testVault) Secret {
			if err := tv.Rotate(RotateOptions{Passphrase: "correct horse", RecoveryCode: NewRecoveryCode()}); err != nil {
				t.Fatal(err)
			}
			return RecoveryCode(tv.code)
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tv := newTestVault(t)
			fill(t, tv.Vault, 300)
			// Several writes, so that old pages pile up as they do.
			for i := range 5 {
				fill(t, tv.Vault, 20+i)
			}
			stored, wrapped := slotBytes(t, tv.Vault, tt.kind)
			var secrets [][]byte
			for i := range stored {
				// The whole stored slot, and windows of what follows
				// its first 64 bytes (JSON and the age header's
				// fixed text, the same in every slot): the scrypt
				// salt, the wrapped key and the MACs, unique to it.
				secrets = append(secrets, stored[i])
				secrets = append(secrets, pieces(stored[i][64:])[1:]...)
				if len(wrapped[i]) == 0 {
					t.Fatal("no age file in the slot")
				}
			}
			before, err := tv.Check(false)
			if err != nil || !before.OK() {
				t.Fatalf("before: %v %+v", err, before)
			}
			var oldRecords [][]byte
			if tt.rotate {
				oldRecords = recordValues(t, tv.Vault)
			}
			oldSecret := tt.change(t, tv)
			tv.Close()
			raw, err := os.ReadFile(tv.path)
			if err != nil {
				t.Fatal(err)
			}
			free := freePageBytes(t, tv.path)
			for _, s := range secrets {
				if bytes.Contains(raw, s) {
					t.Fatalf("the old %s slot is still in the file (%d bytes of it)", tt.kind, len(s))
				}
			}
			for _, r := range oldRecords {
				// The nonce and tag of each record sealed under the
				// old key: unique to that value.
				if bytes.Contains(raw, r[13:sealHeaderV2]) || bytes.Contains(raw, r[len(r)-16:]) {
					t.Fatal("a record sealed under the old key is still in the file")
				}
			}
			if len(free) > 0 && bytes.Count(free, []byte{0}) != len(free) {
				// Free pages may exist in a fresh file (bbolt's own
				// bookkeeping) but hold nothing of the old state.
				for _, s := range secrets {
					if bytes.Contains(free, s) {
						t.Fatal("old slot in a free page")
					}
				}
			}
			// Every key slot anywhere in the bytes (live or in a free
			// page): none opens with the old secret.
			if n := slotsOpenedIn(t, raw, oldSecret); n != 0 {
				t.Fatalf("%d key slots in the file open with the old secret", n)
			}
			if _, err := Open(tv.path, oldSecret, nil); !errors.Is(err, ErrWrongKey) {
				t.Fatalf("the old secret: %v", err)
			}
			v, err := Open(tv.path, Identities(tv.identity), nil)
			if tt.kind == SlotDevice {
				v, err = Open(tv.path, Passphrase("correct horse"), nil)
			}
			if err != nil {
				t.Fatal(err)
			}
			defer v.Close()
			if rep, err := v.Check(false); err != nil || !rep.OK() || rep.Records != before.Records {
				t.Fatalf("after compaction: %v %+v", err, rep)
			}
		})
	}
}

// TestCompactInterrupted: a compaction that stops before its rename
// leaves the old file as it was, and the next open for writing removes
// the partial new file; one that stops after it leaves the new file.
func TestCompactInterrupted(t *testing.T) {
	for _, step := range []string{"copied", "renamed"} {
		t.Run(step, func(t *testing.T) {
			tv := newTestVault(t)
			fill(t, tv.Vault, 50)
			compactHook = func(s string) error {
				if s == step {
					return errors.New("injected")
				}
				return nil
			}
			defer func() { compactHook = nil }()
			_, err := tv.ReplaceSlots(SlotSpec{Kind: SlotPassphrase, Passphrase: "a new passphrase"})
			if !errors.Is(err, ErrNotCompacted) {
				t.Fatalf("ReplaceSlots = %v", err)
			}
			tv.Close()
			compactHook = nil
			left, _ := filepath.Glob(filepath.Join(filepath.Dir(tv.path), ".*"+compactSuffix+"*"))
			if step == "copied" && len(left) != 0 {
				t.Fatalf("left behind: %v", left)
			}
			// The change itself was committed in either case.
			v, err := Open(tv.path, Passphrase("a new passphrase"), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer v.Close()
			if rep, _ := v.Check(false); !rep.OK() || rep.Records != 50 {
				t.Fatalf("check: %+v", rep)
			}
		})
	}
	// A partial new file from a crash is removed by the next open for
	// writing.
	tv := newTestVault(t)
	tv.Close()
	junk := filepath.Join(filepath.Dir(tv.path), "."+filepath.Base(tv.path)+compactSuffix+"0123456789abcdef")
	if err := os.WriteFile(junk, []byte("partial"), 0o600); err != nil {
		t.Fatal(err)
	}
	v, err := Open(tv.path, Identities(tv.identity), nil)
	if err != nil {
		t.Fatal(err)
	}
	v.Close()
	if _, err := os.Stat(junk); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("partial compaction left: %v", err)
	}
}

// TestCompactKilled kills a process that changes the passphrase over and
// over (each change compacts the file): the vault always opens afterwards,
// with one of the two passphrases, whole.
func TestCompactKilled(t *testing.T) {
	if path := os.Getenv("PHR_COMPACT_CHILD"); path != "" {
		v, err := Open(path, Passphrase("passphrase 0"), nil)
		if err != nil {
			v, err = Open(path, Passphrase("passphrase 1"), nil)
		}
		if err != nil {
			os.Exit(3)
		}
		for i := 0; ; i++ {
			if _, err := v.ReplaceSlots(SlotSpec{Kind: SlotPassphrase, Passphrase: fmt.Sprint("passphrase ", i%2)}); err != nil {
				os.Exit(4)
			}
		}
	}
	if testing.Short() {
		t.Skip("slow")
	}
	tv := newTestVault(t)
	fill(t, tv.Vault, 2000)
	if _, err := tv.ReplaceSlots(SlotSpec{Kind: SlotPassphrase, Passphrase: "passphrase 0"}); err != nil {
		t.Fatal(err)
	}
	want, _ := tv.List(Query{})
	tv.Close()
	for i := 0; i < 6; i++ {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCompactKilled$")
		cmd.Env = append(os.Environ(), "PHR_COMPACT_CHILD="+tv.path)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(200+i*131) * time.Millisecond)
		cmd.Process.Kill()
		cmd.Wait()
		v, err := Open(tv.path, Passphrase("passphrase 0"), nil)
		if errors.Is(err, ErrWrongKey) {
			v, err = Open(tv.path, Passphrase("passphrase 1"), nil)
		}
		if err != nil {
			t.Fatalf("kill %d: vault does not open: %v", i, err)
		}
		got, err := v.List(Query{})
		if err != nil || len(got) != len(want) {
			t.Fatalf("kill %d: %d records, %v", i, len(got), err)
		}
		if r, _ := v.Check(false); !r.OK() {
			t.Fatalf("kill %d: check: %+v", i, r.Problems)
		}
		v.Close()
		if left, _ := filepath.Glob(filepath.Join(filepath.Dir(tv.path), ".*"+compactSuffix+"*")); len(left) != 0 {
			t.Fatalf("kill %d: left behind: %v", i, left)
		}
	}
}

// TestCompactWhileAnotherWaits: a process that opened the vault's file
// before a compaction and waits for its lock must not end up with the
// replaced file (a file without a name, whose writes would be lost).
func TestCompactWhileAnotherWaits(t *testing.T) {
	tv := newTestVault(t)
	fill(t, tv.Vault, 20)
	type result struct {
		v   *Vault
		err error
	}
	done := make(chan result, 1)
	go func() {
		v, err := Open(tv.path, Identities(tv.identity), &Options{LockTimeout: 10 * time.Second})
		done <- result{v, err}
	}()
	time.Sleep(200 * time.Millisecond) // it is waiting for the lock now
	slot, err := tv.AddSlot(SlotSpec{Kind: SlotPassphrase, Label: "second", Passphrase: "second passphrase"})
	if err != nil {
		t.Fatal(err)
	}
	if err := tv.RemoveSlot(slot.ID); err != nil { // compacts
		t.Fatal(err)
	}
	n := mustPut(t, tv.Vault)
	tv.Close()
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	defer r.v.Close()
	if _, err := r.v.Get(n); err != nil {
		t.Fatalf("the waiter opened the replaced file: %v", err)
	}
}

func mustPut(t *testing.T, v *Vault) string {
	t.Helper()
	res, err := v.Put(must(t)(record.NewNote(record.Common{}, "after compaction", time.Time{})))
	if err != nil {
		t.Fatal(err)
	}
	return res.ID
}

// slotsOpenedIn finds every stored key slot in raw bytes and counts those
// the secret unwraps.
func slotsOpenedIn(t *testing.T, raw []byte, secret Secret) int {
	t.Helper()
	n, found := 0, 0
	for i := 0; ; {
		j := bytes.Index(raw[i:], []byte(`{"v":1,"kind":"`))
		if j < 0 {
			break
		}
		i += j
		var st storedSlot
		if err := json.NewDecoder(bytes.NewReader(raw[i:])).Decode(&st); err == nil {
			found++
			if key, err := secret.unwrap(st); err == nil && key != nil {
				n++
			}
		}
		i++
	}
	if found == 0 {
		t.Fatal("no key slot found in the file: the search does not work")
	}
	return n
}
