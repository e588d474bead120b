// Package tamper checks, with the real phr binary and an in-process phrd
// on 127.0.0.1, what docs/security.md promises about a hostile copy of a
// vault file: someone who can write the file but has no key edits it
// with bbolt directly (as any tool could), and phr must not be steered or
// rolled back by it; and after a secret is revoked, the file must hold
// nothing the old secret opens.
package tamper

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/phr-project/phr/pkg/server"
	"github.com/phr-project/phr/pkg/server/api"
	"github.com/phr-project/phr/pkg/share"
	"github.com/phr-project/phr/pkg/vault"
	"github.com/phr-project/phr/test/security/internal/e2e"
	"github.com/phr-project/phr/test/security/internal/phrdtest"
	bolt "go.etcd.io/bbolt"
)

var phrBin string

func TestMain(m *testing.M) {
	// phrd runs in-process, with the test cost of passphrase slots; the
	// phr binary keeps production costs, so the tests open its vaults
	// with the device identity and use a passphrase only where a command
	// needs one.
	vault.ScryptWorkFactor = 10
	share.SetPasscodeCostForTesting(4)
	e2e.Main(m, "github.com/phr-project/phr/cmd/phr", &phrBin)
}

// newCLI makes a phr with its own home, config and vault.
func newCLI(t *testing.T) *e2e.CLI { return e2e.NewCLI(phrBin, t.TempDir()) }

// keyOf is the bbolt key of a record ID (docs/format.md: the ID rotated
// by 8 characters): what anyone who saw an ID in a share can compute.
func keyOf(id string) []byte { return []byte(id[8:] + id[:8]) }

// rawEdit changes the vault file at path with bbolt alone: no key.
func rawEdit(t *testing.T, path string, fn func(tx *bolt.Tx) error) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(fn); err != nil {
		t.Fatal(err)
	}
}

func rawGet(t *testing.T, path string, bucket byte, key []byte) []byte {
	t.Helper()
	var out []byte
	rawEdit(t, path, func(tx *bolt.Tx) error {
		out = bytes.Clone(tx.Bucket([]byte{bucket}).Get(key))
		return nil
	})
	if out == nil {
		t.Fatalf("no value %c/%x", bucket, key)
	}
	return out
}

// steer is what a raw edit can do to select records by type in a vault
// of format 4, which has no kind index: the listing index's sealed
// values (its tree nodes and delta segments) are moved between their
// keys, here by swapping the first two.
func steer(t *testing.T, path string) {
	t.Helper()
	rawEdit(t, path, func(tx *bolt.Tx) error {
		lb := tx.Bucket([]byte{'l'})
		if lb == nil {
			return fmt.Errorf("no listing index")
		}
		var keys, vals [][]byte
		lb.ForEach(func(k, v []byte) error {
			if v != nil && len(keys) < 2 {
				keys, vals = append(keys, bytes.Clone(k)), append(vals, bytes.Clone(v))
			}
			return nil
		})
		if len(keys) < 2 {
			return fmt.Errorf("the listing index holds %d values", len(keys))
		}
		if err := lb.Put(keys[0], vals[1]); err != nil {
			return err
		}
		return lb.Put(keys[1], vals[0])
	})
}

// refusedAsTampered reports whether phr refused the file as changed
// outside phr, with the exit code that goes with the message: it does
// not match its authenticated head (vault.ErrTampered, exit 5), or a
// value in it does not open where it is (vault.ErrCorrupt, exit 1).
func refusedAsTampered(r e2e.Result) bool {
	return r.Code == 5 && strings.Contains(r.Stderr, "does not match its authenticated head") ||
		r.Code == 1 && strings.Contains(r.Stderr, "damaged or was tampered with")
}

// steered checks one command's result on a steered vault: it refuses the
// file as changed outside phr (refusedAsTampered), or prints what it
// selects and no record of another type.
func steered(t *testing.T, what string, r e2e.Result, want, never string) {
	t.Helper()
	switch {
	case refusedAsTampered(r) && !strings.Contains(r.Stdout, never):
	case r.Code == 0 && strings.Contains(r.Stdout, want) && !strings.Contains(r.Stdout, never):
	default:
		t.Fatalf("%s: %d\nstdout %s\nstderr %s", what, r.Code, r.Stdout, r.Stderr)
	}
}

func startPHRD(t *testing.T) *phrdtest.PHRD {
	return phrdtest.Serve(t, server.Config{VaultNoSync: true})
}

// openShare fetches a link's manifest and decrypts its files.
func openShare(t *testing.T, link string) []byte {
	t.Helper()
	return phrdtest.OpenShare(t, link, "Dr. Test", "")
}

// TestIndexSteering moves the sealed values of the listing index (the
// only index that selects records by type in format 4) between their
// keys, in the CLI's vault and in a phrd account's. Every selection of
// medications (phr list, phr export, phr share create, phrd's shares)
// refuses the file or leaves the Condition out, and phr check reports
// the damage.
func TestIndexSteering(t *testing.T) {
	d := startPHRD(t)
	c := newCLI(t)
	c.OK(t, "init", "--no-passphrase", "--name", "Tamper Test")
	c.ID(t, "log", "med", "Warfarin", "--dose", "5 mg")
	c.ID(t, "log", "condition", "Quillfeather syndrome")
	// A share made by the CLI goes through phrd: log in before the
	// damage.
	const user, pass = "tamper@example.org", "tamper test passphrase"
	if _, err := (&api.Client{BaseURL: d.Base}).CreateAccount(t.Context(), user, pass); err != nil {
		t.Fatal(err)
	}
	c.OKEnv(t, map[string]string{"PHR_PASSPHRASE": pass}, "remote", "login", d.Base, "--user", user)
	path := c.Env["PHR_VAULT"]
	steer(t, path)

	steered(t, "phr list medication", c.Run(t, "list", "medication"), "Warfarin", "Quillfeather")
	steered(t, "phr export medication", c.Run(t, "export", "--format", "ndjson", "medication"), "Warfarin", "Quillfeather")
	r := c.Run(t, "share", "create", "medication", "--expires", "1h", "--json")
	steered(t, "phr share create medication", r, "shlink:/", "Quillfeather")
	if r.Code == 0 {
		var created struct{ Link string }
		if err := json.Unmarshal([]byte(r.Stdout), &created); err != nil {
			t.Fatal(err)
		}
		if plain := openShare(t, created.Link); bytes.Contains(plain, []byte("Quillfeather")) || !bytes.Contains(plain, []byte("Warfarin")) {
			t.Fatalf("the CLI's share of medications: %s", plain)
		}
	}
	if r := c.Run(t, "check"); r.Code == 0 {
		t.Fatalf("phr check: %d %s %s", r.Code, r.Stdout, r.Stderr)
	}

	// phrd's own share selection, over the account's vault file.
	a := &api.Client{BaseURL: d.Base}
	if _, err := a.Login(t.Context(), api.SessionRequest{Username: user, Passphrase: pass}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.AddRecord(t.Context(), api.LogEntry{Log: "med", Name: "Metformin", Dose: "500 mg"}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.AddRecord(t.Context(), api.LogEntry{Log: "condition", Name: "Quillfeather syndrome"}); err != nil {
		t.Fatal(err)
	}
	a.Logout(t.Context()) // the vault closes with the last session
	vaults, _ := filepath.Glob(filepath.Join(d.Data, "vaults", "*.phr"))
	if len(vaults) != 1 {
		t.Fatalf("vaults: %v", vaults)
	}
	steer(t, vaults[0])
	if _, err := a.Login(t.Context(), api.SessionRequest{Username: user, Passphrase: pass}); err != nil {
		// Refused at sign-in: the account's vault does not open.
		return
	}
	var sh struct{ Link string }
	req := map[string]any{"select": map[string]any{"types": []string{"medication"}}, "expires_at": time.Now().Add(time.Hour).UTC()}
	if _, err := a.Do(t.Context(), "POST", api.Prefix+"/shares", req, &sh); err != nil {
		return // refused: the selection found the damage
	}
	if plain := openShare(t, sh.Link); bytes.Contains(plain, []byte("Quillfeather")) || !bytes.Contains(plain, []byte("Metformin")) {
		t.Fatalf("phrd's share of medications: %s", plain)
	}
}

// TestReplay puts an older sealed value back in place, with the changes
// feed and the kind index made to agree: a deleted allergy returns, an
// edited dose reverts. phr list, phr check and phr share create report
// it instead of showing or sharing the old value.
func TestReplay(t *testing.T) {
	tests := []struct {
		name  string
		kind  string
		make  func(t *testing.T, c *e2e.CLI) string
		undo  func(t *testing.T, c *e2e.CLI, id string)
		known *regexp.Regexp // what the old value says
	}{
		{"a deleted allergy returns", "allergy",
			func(t *testing.T, c *e2e.CLI) string {
				return c.ID(t, "log", "allergy", "Penicillin", "--reaction", "hives")
			},
			func(t *testing.T, c *e2e.CLI, id string) { c.OK(t, "rm", id) },
			regexp.MustCompile("Penicillin")},
		{"an edited dose reverts", "medication",
			func(t *testing.T, c *e2e.CLI) string { return c.ID(t, "log", "med", "Warfarin", "--dose", "5 mg") },
			func(t *testing.T, c *e2e.CLI, id string) {
				var r struct{ Resource json.RawMessage }
				if err := json.Unmarshal([]byte(c.OK(t, "show", id, "--json")), &r); err != nil {
					t.Fatal(err)
				}
				f := filepath.Join(t.TempDir(), "edited.json")
				os.WriteFile(f, bytes.Replace(r.Resource, []byte("5 mg"), []byte("2.5 mg"), 1), 0o600)
				c.OK(t, "edit", id, "--fhir", f)
			},
			regexp.MustCompile(`(^|[^.0-9])5 mg`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCLI(t)
			c.OK(t, "init", "--no-passphrase")
			id := tt.make(t, c)
			path := c.Env["PHR_VAULT"]
			old := rawGet(t, path, 'r', keyOf(id))
			var oldSeq []byte
			var index []byte
			rawEdit(t, path, func(tx *bolt.Tx) error {
				tx.Bucket([]byte{'c'}).ForEach(func(k, v []byte) error {
					if bytes.Equal(v, keyOf(id)) {
						oldSeq = bytes.Clone(k)
					}
					return nil
				})
				if xb := tx.Bucket([]byte{'x'}); xb != nil { // before format 4
					xb.ForEach(func(k, _ []byte) error {
						if bytes.Equal(k[8:], keyOf(id)) {
							index = bytes.Clone(k)
						}
						return nil
					})
				}
				return nil
			})
			tt.undo(t, c, id)
			rawEdit(t, path, func(tx *bolt.Tx) error {
				cb := tx.Bucket([]byte{'c'})
				var now []byte
				cb.ForEach(func(k, v []byte) error {
					if bytes.Equal(v, keyOf(id)) {
						now = bytes.Clone(k)
					}
					return nil
				})
				cb.Delete(now)
				cb.Put(oldSeq, keyOf(id))
				if index != nil {
					tx.Bucket([]byte{'x'}).Put(index, nil)
				}
				return tx.Bucket([]byte{'r'}).Put(keyOf(id), old)
			})
			// A command that unseals the record refuses the file; a
			// listing or an export may print what the listing index (authenticated
			// through the head) says instead, which is never the old
			// value.
			for _, args := range [][]string{{"list"}, {"list", tt.kind}, {"export", "--format", "ndjson"}, {"show", id}} {
				r := c.Run(t, args...)
				refused := r.Code == 5 && strings.Contains(r.Stderr, "does not match its authenticated head")
				listed := r.Code == 0 && args[0] != "show"
				if !(refused || listed) || tt.known.MatchString(r.Stdout) {
					t.Fatalf("phr %v: %d\nstdout %s\nstderr %s", args, r.Code, r.Stdout, r.Stderr)
				}
			}
			r := c.Run(t, "check")
			if r.Code != 1 || !strings.Contains(r.Stdout, "records do not match the head") {
				t.Fatalf("phr check: %d %s %s", r.Code, r.Stdout, r.Stderr)
			}
		})
	}
}

// TestWholeFileRollback copies an old vault file back: it is a valid vault
// in itself, but the device that saw a newer one says so on the next
// open, until the owner accepts the copy.
func TestWholeFileRollback(t *testing.T) {
	c := newCLI(t)
	c.OK(t, "init", "--no-passphrase")
	c.ID(t, "log", "condition", "Asthma")
	path := c.Env["PHR_VAULT"]
	old, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	allergy := c.ID(t, "log", "allergy", "Penicillin")
	c.OK(t, "rm", allergy)
	if err := os.WriteFile(path, old, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"list"}, {"show", allergy}, {"log", "condition", "Gout"}} {
		r := c.Run(t, args...)
		if r.Code != 5 || !strings.Contains(r.Stderr, "older than the one this device last saw") || !strings.Contains(r.Stderr, "phr check --accept-rollback") {
			t.Fatalf("phr %v: %d %s", args, r.Code, r.Stderr)
		}
	}
	c.OK(t, "check", "--accept-rollback")
	c.OK(t, "list")
}

// slotsIn returns every key slot found in a vault file's bytes (live or
// in free pages), as stored.
func slotsIn(t *testing.T, path string) [][]byte {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for i := 0; ; i++ {
		j := bytes.Index(raw[i:], []byte(`{"v":1,"kind":"`))
		if j < 0 {
			return out
		}
		i += j
		var m json.RawMessage
		if json.NewDecoder(bytes.NewReader(raw[i:])).Decode(&m) == nil {
			out = append(out, bytes.Clone(m))
		}
	}
}

// TestRevokedSecretsGone runs each command that revokes a secret and then
// searches the whole vault file, free pages included, for the slots it
// replaced or removed (and, after a rotation, for the records sealed
// under the old key): none may be left.
func TestRevokedSecretsGone(t *testing.T) {
	c := newCLI(t)
	c.OKEnv(t, map[string]string{"PHR_PASSPHRASE": "first passphrase here"}, "init", "--name", "Revoke Test")
	for i := range 40 {
		c.ID(t, "log", "symptom", fmt.Sprint("cough ", i), "--severity", "3")
	}
	path := c.Env["PHR_VAULT"]
	other := filepath.Join(t.TempDir(), "other.txt")
	c.OK(t, "key", "add-device", "--label", "other", "--out", other)
	var slots []struct{ ID, Kind, Label string }
	json.Unmarshal([]byte(c.OK(t, "key", "list", "--json")), &slots)
	otherSlot := slots[slices.IndexFunc(slots, func(s struct{ ID, Kind, Label string }) bool { return s.Label == "other" })].ID

	steps := []struct {
		name string
		run  func()
	}{
		{"passwd", func() { c.OKEnv(t, map[string]string{"PHR_NEW_PASSPHRASE": "second passphrase here"}, "passwd") }},
		{"key recovery", func() { c.OK(t, "key", "recovery") }},
		{"key remove", func() { c.OK(t, "key", "remove", otherSlot) }},
		{"key rotate", func() { c.OKEnv(t, map[string]string{"PHR_PASSPHRASE": "second passphrase here"}, "key", "rotate") }},
		{"key recover", func() {
			var code string
			json.Unmarshal([]byte(c.OKEnv(t, map[string]string{"PHR_PASSPHRASE": "second passphrase here"}, "key", "recovery", "--json")), &struct{ RecoveryCode *string }{&code})
			c.OKEnv(t, map[string]string{"PHR_RECOVERY_CODE": code, "PHR_NEW_PASSPHRASE": "third passphrase here"}, "key", "recover")
		}},
	}
	for _, st := range steps {
		before := slotsIn(t, path)
		var records [][]byte
		rawEdit(t, path, func(tx *bolt.Tx) error {
			return tx.Bucket([]byte{'r'}).ForEach(func(_, v []byte) error {
				records = append(records, bytes.Clone(v[len(v)-16:])) // each value's tag
				return nil
			})
		})
		st.run()
		after := slotsIn(t, path)
		raw, _ := os.ReadFile(path)
		gone := 0
		for _, b := range before {
			if !slices.ContainsFunc(after, func(a []byte) bool { return bytes.Equal(a, b) }) {
				gone++
				if bytes.Contains(raw, b) {
					t.Fatalf("%s: a revoked slot is still in the file", st.name)
				}
			}
		}
		if gone == 0 {
			t.Fatalf("%s: no slot changed (the search does not work)", st.name)
		}
		if st.name == "key rotate" {
			for _, tag := range records {
				if bytes.Contains(raw, tag) {
					t.Fatal("key rotate: a record sealed under the old key is still in the file")
				}
			}
		}
		c.OK(t, "check")
	}
	// The old secrets open nothing in a copy of the file.
	cp := filepath.Join(t.TempDir(), "copy.phr")
	raw, _ := os.ReadFile(path)
	os.WriteFile(cp, raw, 0o600)
	for _, p := range []string{"first passphrase here", "second passphrase here"} {
		if _, err := vault.Open(cp, vault.Passphrase(p), &vault.Options{ReadOnly: true}); err != vault.ErrWrongKey {
			t.Fatalf("old passphrase: %v", err)
		}
	}
	if v, err := vault.Open(cp, vault.Passphrase("third passphrase here"), &vault.Options{ReadOnly: true}); err != nil {
		t.Fatal(err)
	} else {
		v.Close()
	}
}
