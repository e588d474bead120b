package vault

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/phr-project/phr/pkg/kv"
	"github.com/phr-project/phr/pkg/record"
)

// fileSHA is the SHA-256 of a made-up file name, as an import's
// provenance carries it.
func fileSHA(name string) string {
	s := sha256.Sum256([]byte(name))
	return hex.EncodeToString(s[:])
}

// importRecs makes n distinct imported records of file sha.
func importRecs(t testing.TB, sha string, from, n int) []record.Record {
	t.Helper()
	out := make([]record.Record, n)
	for i := range out {
		id := fmt.Sprintf("%s-%d", sha[:8], from+i)
		out[i] = must(t)(record.New([]byte(`{"resourceType":"Observation","id":"`+id+`","code":{"text":"Glucose"},"valueString":"`+id+`"}`),
			record.Provenance{Method: record.MethodImported, Importer: "fhir", System: "Clinic", OriginalID: id, FileSHA256: sha}))
	}
	return out
}

// countOf counts the live records whose provenance names file sha.
func countOf(t testing.TB, v *Vault, sha string) int {
	t.Helper()
	recs, err := v.List(Query{})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, r := range recs {
		if r.Provenance.FileSHA256 == sha {
			n++
		}
	}
	return n
}

// markers returns the names of the import markers in the file.
func markers(t testing.TB, v *Vault) []string {
	t.Helper()
	var out []string
	v.db.View(func(tx kv.Tx) error {
		return tx.Bucket([]byte{bucketSettings}).ForEach(func(k, _ []byte) error {
			if strings.HasPrefix(string(k), importMarkPrefix) {
				out = append(out, string(k))
			}
			return nil
		})
	})
	return out
}

func TestImportCommit(t *testing.T) {
	tv := newTestVault(t)
	sha := fileSHA("a")
	im, err := tv.BeginImport(sha)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if _, err := im.Add(importRecs(t, sha, i*10, 10)); err != nil {
			t.Fatal(err)
		}
		if m := markers(t, tv.Vault); len(m) != 1 {
			t.Fatalf("batch %d: %d markers, want 1", i, len(m))
		}
	}
	// A running import is no problem and nothing to roll back.
	if n, err := tv.InterruptedImports(); n != 0 || err != nil {
		t.Fatalf("InterruptedImports during the import = %d, %v", n, err)
	}
	if rep, err := tv.Check(false); err != nil || !rep.OK() {
		t.Fatalf("Check during the import: %v %+v", err, rep)
	}
	res, err := im.Commit(importRecs(t, sha, 15, 10)) // 5 duplicates
	if err != nil {
		t.Fatal(err)
	}
	dups := 0
	for _, r := range res {
		if r.Duplicate {
			dups++
		}
	}
	if dups != 5 {
		t.Errorf("last batch: %d duplicates, want 5", dups)
	}
	if m := markers(t, tv.Vault); len(m) != 0 {
		t.Fatalf("%d markers after Commit", len(m))
	}
	if n := countOf(t, tv.Vault, sha); n != 25 {
		t.Fatalf("%d records after Commit, want 25", n)
	}
	if _, err := im.Commit(nil); !errors.Is(err, errImportDone) {
		t.Errorf("second Commit = %v", err)
	}
	if _, err := im.Abort(); !errors.Is(err, errImportDone) {
		t.Errorf("Abort after Commit = %v", err)
	}
	tv.Close()
	v, err := Open(tv.path, Identities(tv.identity), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	if rb := v.RolledBack(); len(rb) != 0 || countOf(t, v, sha) != 25 {
		t.Fatalf("a committed import was rolled back: %+v", rb)
	}
}

func TestImportOneTransaction(t *testing.T) {
	tv := newTestVault(t)
	sha := fileSHA("small")
	before, _ := tv.LastSeq()
	im, _ := tv.BeginImport(sha)
	if res, err := im.Commit(nil); err != nil || res != nil {
		t.Fatalf("empty Commit = %v, %v", res, err)
	}
	if after, _ := tv.LastSeq(); after != before {
		t.Fatal("an empty import wrote")
	}
	im, _ = tv.BeginImport(sha)
	if _, err := im.Commit(importRecs(t, sha, 0, 7)); err != nil {
		t.Fatal(err)
	}
	if countOf(t, tv.Vault, sha) != 7 || len(markers(t, tv.Vault)) != 0 {
		t.Fatal("one-transaction import")
	}
	for _, bad := range []string{"", "ab", strings.ToUpper(sha), sha[:63] + "g"} {
		if _, err := tv.BeginImport(bad); err == nil {
			t.Errorf("BeginImport(%q) accepted", bad)
		}
	}
}

func TestImportAbort(t *testing.T) {
	tv := newTestVault(t)
	sha := fileSHA("b")
	kept := importRecs(t, sha, 0, 3) // imported before: not undone
	if _, err := tv.Add(kept); err != nil {
		t.Fatal(err)
	}
	im, _ := tv.BeginImport(sha)
	if _, err := im.Add(importRecs(t, sha, 0, 20)); err != nil {
		t.Fatal(err)
	}
	n, err := im.Abort()
	if err != nil || n != 17 {
		t.Fatalf("Abort = %d, %v; want 17", n, err)
	}
	if c := countOf(t, tv.Vault, sha); c != 3 {
		t.Fatalf("%d records after Abort, want 3", c)
	}
	if m := markers(t, tv.Vault); len(m) != 0 {
		t.Fatalf("%d markers after Abort", len(m))
	}
	if rep, _ := tv.Check(false); !rep.OK() {
		t.Fatalf("check after Abort: %+v", rep.Problems)
	}
}

// TestImportInterrupted leaves an import unfinished, as a process that
// died between two batches would, and opens the vault again.
func TestImportInterrupted(t *testing.T) {
	tv := newTestVault(t)
	sha, other := fileSHA("c"), fileSHA("d")
	if _, err := tv.Add(importRecs(t, sha, 0, 4)); err != nil { // an earlier import of the same file
		t.Fatal(err)
	}
	im, _ := tv.BeginImport(sha)
	if _, err := im.Add(importRecs(t, sha, 0, 30)); err != nil {
		t.Fatal(err)
	}
	if _, err := tv.Add(importRecs(t, other, 0, 5)); err != nil { // another writer meanwhile
		t.Fatal(err)
	}
	if _, err := im.Add(importRecs(t, sha, 30, 30)); err != nil {
		t.Fatal(err)
	}
	tv.Close() // the process ends here: no Commit, no Abort

	ro, err := Open(tv.path, Identities(tv.identity), &Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := ro.InterruptedImports(); n != 1 || err != nil {
		t.Fatalf("read-only InterruptedImports = %d, %v", n, err)
	}
	rep, err := ro.Check(false)
	if err != nil || len(rep.Problems) != 1 || !rep.Problems[0].Repairable || !strings.Contains(rep.Problems[0].What, "interrupted import of 56 records") {
		t.Fatalf("read-only Check: %v %+v", err, rep)
	}
	if len(ro.RolledBack()) != 0 || countOf(t, ro, sha) != 60 {
		t.Fatal("a read-only open rolled back")
	}
	ro.Close()

	v, err := Open(tv.path, Identities(tv.identity), nil)
	if err != nil {
		t.Fatal(err)
	}
	rb := v.RolledBack()
	if len(rb) != 1 || rb[0].FileSHA256 != sha || rb[0].Records != 56 {
		t.Fatalf("RolledBack = %+v", rb)
	}
	if c := countOf(t, v, sha); c != 4 {
		t.Fatalf("%d records of the file after the rollback, want the 4 from before", c)
	}
	if c := countOf(t, v, other); c != 5 {
		t.Fatalf("the rollback removed another file's records: %d left", c)
	}
	rep, err = v.Check(false)
	if err != nil || !rep.OK() || len(rep.RolledBack) != 1 {
		t.Fatalf("Check after the rollback: %v %+v", err, rep)
	}
	// The file imports again in full: the rollback removed the
	// fingerprints too.
	if res, err := v.Add(importRecs(t, sha, 0, 60)); err != nil || res[59].Duplicate {
		t.Fatalf("re-import: %v", err)
	}
	v.Close()
	v, err = Open(tv.path, Identities(tv.identity), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	if len(v.RolledBack()) != 0 || countOf(t, v, sha) != 60 {
		t.Fatal("rolled back twice")
	}
}

func TestImportMark_Confidential(t *testing.T) {
	tv := newTestVault(t)
	sha := fileSHA("e")
	im, _ := tv.BeginImport(sha)
	if _, err := im.Add(importRecs(t, sha, 0, 2)); err != nil {
		t.Fatal(err)
	}
	tv.Close()
	raw, err := os.ReadFile(tv.path)
	if err != nil {
		t.Fatal(err)
	}
	sum, _ := hex.DecodeString(sha)
	if bytes.Contains(raw, []byte(sha)) || bytes.Contains(raw, sum) || bytes.Contains(raw, []byte(sha[:16])) {
		t.Fatal("the marker shows the file's SHA-256")
	}
}

func TestImportMark_MoveIntegrity(t *testing.T) {
	tv := newTestVault(t)
	sha := fileSHA("f")
	im, _ := tv.BeginImport(sha)
	if _, err := im.Add(importRecs(t, sha, 0, 2)); err != nil {
		t.Fatal(err)
	}
	name := markers(t, tv.Vault)[0]
	var sealed []byte
	tv.db.View(func(tx kv.Tx) error {
		sealed = append([]byte(nil), tx.Bucket([]byte{bucketSettings}).Get([]byte(name))...)
		return nil
	})
	putRaw(t, tv.Vault, bucketSettings, []byte(importMarkPrefix+"0000000000000000"), sealed)
	rep, err := tv.Check(false)
	if err != nil || len(rep.Problems) != 2 || rep.Problems[0].Repairable || !strings.Contains(rep.Problems[0].What, "settings do not match the head") ||
		!strings.Contains(rep.Problems[1].What, "does not open") {
		t.Fatalf("moved marker: %v %+v", err, rep)
	}
	tv.Close()
	// A settings bucket that does not match the head is refused...
	if _, err := Open(tv.path, Identities(tv.identity), nil); !errors.Is(err, ErrTampered) {
		t.Fatalf("Open = %v, want ErrTampered", err)
	}
	// ... and opened anyway (to look), it rolls nothing back: a marker
	// put there by someone else must not remove records.
	v, err := Open(tv.path, Identities(tv.identity), &Options{Unverified: true})
	if err != nil {
		t.Fatal(err)
	}
	if rb := v.RolledBack(); len(rb) != 0 {
		t.Fatalf("RolledBack = %+v", rb)
	}
	// The owner who accepts the file as it is gets the usual rollback
	// of the real marker, and the moved one is left alone.
	if err := v.AcceptHead(); err != nil {
		t.Fatal(err)
	}
	v.Close()
	v, err = Open(tv.path, Identities(tv.identity), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	if rb := v.RolledBack(); len(rb) != 1 || rb[0].Records != 2 {
		t.Fatalf("RolledBack = %+v", rb)
	}
	if m := markers(t, v); len(m) != 1 || m[0] != importMarkPrefix+"0000000000000000" {
		t.Fatalf("markers left: %v", m)
	}
}

func TestBackupLeavesOutUnfinishedImport(t *testing.T) {
	tv := newTestVault(t)
	fill(t, tv.Vault, 6)
	sha := fileSHA("g")
	im, _ := tv.BeginImport(sha)
	if _, err := im.Add(importRecs(t, sha, 0, 10)); err != nil {
		t.Fatal(err)
	}
	id, _ := age.GenerateX25519Identity()
	backup := func() (records, settings int) {
		var buf bytes.Buffer
		if _, err := tv.Backup(&buf, []age.Recipient{id.Recipient()}, false); err != nil {
			t.Fatal(err)
		}
		b, err := VerifyBackup(&buf, id)
		if err != nil {
			t.Fatal(err)
		}
		return b.Trailer.Records, b.Trailer.Settings
	}
	if r, s := backup(); r != 6 || s != 0 {
		t.Fatalf("backup during the import: %d records, %d settings; want 6, 0", r, s)
	}
	if _, err := im.Commit(nil); err != nil {
		t.Fatal(err)
	}
	if r, _ := backup(); r != 16 {
		t.Fatalf("backup after the import: %d records, want 16", r)
	}
}

// TestImportKilled kills a process that imports files in batches, at
// random moments, and checks that each file is in the vault whole or not
// at all once it is opened again.
func TestImportKilled(t *testing.T) {
	const files, batches, per = 40, 4, 50
	if path := os.Getenv("PHR_IMPORT_CHILD"); path != "" {
		id, _ := age.ParseX25519Identity(os.Getenv("PHR_IMPORT_IDENTITY"))
		v, err := Open(path, Identities(id), &Options{NoSync: true})
		if err != nil {
			os.Exit(3)
		}
		for f := 0; f < files; f++ {
			sha := fileSHA(strconv.Itoa(f))
			im, _ := v.BeginImport(sha)
			for b := 0; b < batches; b++ {
				recs := importRecs(t, sha, b*per, per)
				if b < batches-1 {
					_, err = im.Add(recs)
				} else {
					_, err = im.Commit(recs)
				}
				if err != nil {
					os.Exit(4)
				}
			}
		}
		os.Exit(0)
	}
	if testing.Short() {
		t.Skip("slow")
	}
	tv := newTestVault(t)
	tv.Close()
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	rolledBack := 0
	for kill := 0; kill < 3; kill++ {
		cmd := exec.Command(os.Args[0], "-test.run=^TestImportKilled$")
		cmd.Env = append(os.Environ(), "PHR_IMPORT_CHILD="+tv.path, "PHR_IMPORT_IDENTITY="+tv.identity.String())
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(100+rng.IntN(300)) * time.Millisecond)
		cmd.Process.Kill()
		cmd.Wait()
		v, err := Open(tv.path, Identities(tv.identity), nil)
		if err != nil {
			t.Fatalf("kill %d: vault does not open: %v", kill, err)
		}
		rolledBack += len(v.RolledBack())
		for f := 0; f < files; f++ {
			if n := countOf(t, v, fileSHA(strconv.Itoa(f))); n != 0 && n != batches*per {
				t.Fatalf("kill %d: file %d has %d of %d records", kill, f, n, batches*per)
			}
		}
		if rep, err := v.Check(false); err != nil || !rep.OK() {
			t.Fatalf("kill %d: check: %v %+v", kill, err, rep)
		}
		v.Close()
	}
	t.Logf("3 kills, %d interrupted imports rolled back", rolledBack)
}

// Two imports of the same file at once take turns, so that one's Abort
// removes nothing the other added or counted as a duplicate.
func TestImportsOfOneFileTakeTurns(t *testing.T) {
	tests := []struct {
		name       string
		abortFirst bool
		// wantSecond is how many of the second import's 30 records are
		// in the vault at the end: all of them, whatever the first did.
		wantSecond int
		wantDups   int // duplicates the second import reports
	}{
		{"first aborts", true, 30, 0},
		{"first commits", false, 30, 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tv := newTestVault(t)
			sha := fileSHA("same upload")
			first, _ := tv.BeginImport(sha)
			if _, err := first.Add(importRecs(t, sha, 0, 20)); err != nil {
				t.Fatal(err)
			}
			type outcome struct {
				res []AddResult
				err error
			}
			done := make(chan outcome, 1)
			go func() {
				second, _ := tv.BeginImport(sha)
				res, err := second.Commit(importRecs(t, sha, 0, 30)) // one transaction
				done <- outcome{res, err}
			}()
			select {
			case o := <-done:
				t.Fatalf("the second import did not wait for the first: %+v", o)
			case <-time.After(100 * time.Millisecond):
			}
			if tt.abortFirst {
				if _, err := first.Abort(); err != nil {
					t.Fatal(err)
				}
			} else if _, err := first.Commit(nil); err != nil {
				t.Fatal(err)
			}
			o := <-done
			if o.err != nil {
				t.Fatal(o.err)
			}
			dups := 0
			for _, r := range o.res {
				if r.Duplicate {
					dups++
				}
			}
			if dups != tt.wantDups {
				t.Errorf("second import: %d duplicates, want %d", dups, tt.wantDups)
			}
			if n := countOf(t, tv.Vault, sha); n != tt.wantSecond {
				t.Errorf("%d records of the file in the vault, want %d", n, tt.wantSecond)
			}
			// Turns are per file: another file's import does not wait.
			other, _ := tv.BeginImport(fileSHA("other"))
			if _, err := other.Add(importRecs(t, fileSHA("other"), 0, 1)); err != nil {
				t.Fatal(err)
			}
			third, _ := tv.BeginImport(sha)
			if _, err := third.Commit(importRecs(t, sha, 100, 1)); err != nil {
				t.Fatal(err)
			}
			if _, err := other.Commit(nil); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// A long import reopens the database now and then (to drop bbolt's
// bookkeeping); the import is whole afterwards, and an import that another
// process rolled back while the file was unlocked fails instead of
// leaving part of the file.
func TestImportReopens(t *testing.T) {
	defer func(n int) { reopenEvery = n }(reopenEvery)
	reopenEvery = 50

	tv := newTestVault(t)
	sha := fileSHA("long")
	im, _ := tv.BeginImport(sha)
	db := tv.db
	// Readers in other goroutines (phrd's requests) wait for a reopening.
	stop := make(chan struct{})
	readerDone := make(chan error)
	go func() {
		for {
			select {
			case <-stop:
				readerDone <- nil
				return
			default:
			}
			if _, err := tv.List(Query{Limit: 5}); err != nil {
				readerDone <- err
				return
			}
		}
	}()
	for i := 0; i < 10; i++ {
		if _, err := im.Add(importRecs(t, sha, i*20, 20)); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	if err := <-readerDone; err != nil {
		t.Fatalf("a reader during the import: %v", err)
	}
	if tv.db == db {
		t.Fatal("200 records written, reopenEvery 50: the database was not reopened")
	}
	if _, err := im.Commit(importRecs(t, sha, 200, 20)); err != nil {
		t.Fatal(err)
	}
	if n := countOf(t, tv.Vault, sha); n != 220 {
		t.Fatalf("%d records after the import, want 220", n)
	}
	if rep, err := tv.Check(false); err != nil || !rep.OK() {
		t.Fatalf("check: %v %+v", err, rep)
	}

	// Another process took the lock while the file was closed and rolled
	// the import back.
	sha2 := fileSHA("lost")
	im2, _ := tv.BeginImport(sha2)
	if _, err := im2.Add(importRecs(t, sha2, 0, 20)); err != nil {
		t.Fatal(err)
	}
	if _, err := tv.rollBack(im2.key, im2.since, sha2, false); err != nil {
		t.Fatal(err)
	}
	if _, err := im2.Add(importRecs(t, sha2, 20, 20)); !errors.Is(err, errImportLost) {
		t.Fatalf("Add after the marker went: %v, want errImportLost", err)
	}
	if _, err := im2.Abort(); err != nil {
		t.Fatal(err)
	}
	if n := countOf(t, tv.Vault, sha2); n != 0 {
		t.Fatalf("%d records of the rolled-back import remain", n)
	}
}

// countFingerprints counts the dedup index's entries.
func countFingerprints(t testing.TB, v *Vault) int {
	t.Helper()
	n := 0
	v.db.View(func(tx kv.Tx) error {
		n = countKeys(tx.Bucket([]byte{bucketFinger}))
		return nil
	})
	return n
}

// An import writes its records' fingerprints in bulk (pending.go): before
// they are written, a record repeated by a later batch of the import, or
// by another writer, is a duplicate all the same; they are all written by
// the time the import commits, and an aborted import leaves none.
func TestImportDefersFingerprints(t *testing.T) {
	defer func(n int) { fpFlushAt = n }(fpFlushAt)
	fpFlushAt = 25
	for _, end := range []string{"commit", "abort"} {
		t.Run(end, func(t *testing.T) {
			tv := newTestVault(t)
			sha := fileSHA("deferred")
			im, err := tv.BeginImport(sha)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := im.Add(importRecs(t, sha, 0, 10)); err != nil {
				t.Fatal(err)
			}
			if n := countFingerprints(t, tv.Vault); n != 0 {
				t.Fatalf("%d fingerprints written after the first batch", n)
			}
			// The import's next batch repeats a record of its first.
			res, err := im.Add(importRecs(t, sha, 5, 10))
			if err != nil || !res[0].Duplicate || res[9].Duplicate {
				t.Fatalf("second batch: %+v %v", res, err)
			}
			// Another writer repeats one.
			if res, err := tv.Add(importRecs(t, sha, 3, 1)); err != nil || !res[0].Duplicate {
				t.Fatalf("another writer: %+v %v", res, err)
			}
			// A third batch takes the pending fingerprints over the
			// threshold: they are written.
			if _, err := im.Add(importRecs(t, sha, 15, 10)); err != nil {
				t.Fatal(err)
			}
			if n := countFingerprints(t, tv.Vault); n != 25 {
				t.Fatalf("%d fingerprints written past the threshold, want 25", n)
			}
			if _, err := im.Add(importRecs(t, sha, 25, 5)); err != nil {
				t.Fatal(err)
			}
			switch end {
			case "commit":
				if _, err := im.Commit(importRecs(t, sha, 30, 5)); err != nil {
					t.Fatal(err)
				}
				if n := countFingerprints(t, tv.Vault); n != 35 {
					t.Fatalf("%d fingerprints after the commit, want 35", n)
				}
				if rep, err := tv.CheckDeep(false); err != nil || !rep.OK() || rep.Records != 35 {
					t.Fatalf("check: %v %+v", err, rep)
				}
			case "abort":
				if _, err := im.Abort(); err != nil {
					t.Fatal(err)
				}
				if n := countFingerprints(t, tv.Vault); n != 0 || len(tv.pending) != 0 {
					t.Fatalf("%d fingerprints, %d pending after the abort", n, len(tv.pending))
				}
				// What the import had added is not a duplicate any more.
				if res, err := tv.Add(importRecs(t, sha, 0, 1)); err != nil || res[0].Duplicate {
					t.Fatalf("after the abort: %+v %v", res, err)
				}
			}
		})
	}
}
