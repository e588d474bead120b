package crash

import (
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// importLane is one series of `phr import` runs killed at random moments.
type importLane struct {
	name string
	// big imports the generated file of more than 5,000 records (written
	// in many transactions) instead of the small files.
	big bool
	// folder imports all files with one `phr import DIR`, which reports
	// nothing until its end, instead of one process per file.
	folder bool
	// rerun runs the import again to its end after each kill; without
	// it, the next run of the same import may be killed too.
	rerun bool
	kills int
	// The kill comes at a random moment from..to, in fractions of how
	// long the import last took; with afterWrite, after its first write
	// reached the vault file, in fractions of the time until then.
	from, to   float64
	afterWrite bool
}

// runImportLane kills imports until it has killed l.kills of them. After
// each kill it checks the vault (afterKill). Whenever every file is in,
// it compares the vault with the reference and starts again from a vault
// without them.
func (f *fixture) runImportLane(t *testing.T, l importLane, rng *rand.Rand, st *stats) {
	files := f.small
	if l.big {
		files = []string{f.big}
	}
	// The reference is built meanwhile; the first run after a write
	// needs no estimate of its length.
	waitRef := f.startReference(files)
	var ref *reference
	took := map[string]time.Duration{}
	getRef := func() *reference {
		if ref == nil {
			ref = waitRef(t)
			// How long each job took when it was last let finish: the
			// first estimate of a folder import (the sum of its
			// files') is too long.
			for i, file := range files {
				took[file] = ref.took[i]
				took[f.corpus] += ref.took[i]
			}
		}
		return ref
	}
	path := filepath.Join(t.TempDir(), "vault.phr")
	f.freshVault(t, path)
	acked := make([]bool, len(files))
	ack := func(job []int) {
		for _, i := range job {
			if !acked[i] {
				acked[i] = true
				st.acked.Add(int64(getRef().st.count(getRef().shas[i])))
			}
		}
	}
	kills, runs := 0, 0
	for kills < l.kills {
		if runs > 4*l.kills+8 {
			t.Fatalf("%d kills in %d runs: the imports end before the kill timer", kills, runs)
		}
		next := slices.Index(acked, false)
		if next < 0 {
			f.checkExact(t, path, getRef())
			f.freshVault(t, path)
			clear(acked)
			next = 0
		}
		target, job := files[next], []int{next}
		if l.folder {
			target, job = f.corpus, nil
			for i := range files {
				job = append(job, i)
			}
		}
		frac := l.from + rng.Float64()*(l.to-l.from)
		plan := &killPlan{watch: path, ofStart: frac}
		if !l.afterWrite {
			getRef()
			plan = &killPlan{delay: time.Duration(frac * float64(took[target]))}
		}
		res, err := run(bins.phr, f.phrEnv(path), plan, "import", "--accept-patient-mismatch", target)
		if err != nil {
			t.Fatal(err)
		}
		st.runs.Add(1)
		runs++
		if !res.killed {
			if res.code != 0 {
				t.Fatalf("phr import failed: %s", res.stderr)
			}
			took[target] = res.took
			ack(job)
			continue
		}
		kills++
		st.kills.Add(1)
		if !f.afterKill(t, path, getRef(), acked, st) {
			t.Fatalf("kill %d (plan %+v) left the vault wrong; see above", kills, *plan)
		}
		if l.rerun {
			res, err = run(bins.phr, f.phrEnv(path), nil, "import", "--accept-patient-mismatch", target)
			if err != nil || res.code != 0 {
				t.Fatalf("re-running the import after kill %d: %v %s", kills, err, res.stderr)
			}
			ack(job)
		}
	}
	// The same imports again, to their end: exactly the reference.
	for i := range files {
		if !acked[i] {
			res, err := run(bins.phr, f.phrEnv(path), nil, "import", "--accept-patient-mismatch", files[i])
			if err != nil || res.code != 0 {
				t.Fatalf("import: %v %s", err, res.stderr)
			}
			ack([]int{i})
		}
	}
	f.checkExact(t, path, getRef())
	t.Logf("%d kills in %d runs", kills, runs)
}

// afterKill checks a vault that a killed import left: before the
// rollback, any partly written file has a marker; `phr check` rolls it
// back, says so, and passes; then every acknowledged file is whole and
// the files present are the first ones.
func (f *fixture) afterKill(t *testing.T, path string, ref *reference, acked []bool, st *stats) bool {
	t.Helper()
	ok := true
	fail := func(format string, args ...any) {
		t.Helper()
		t.Errorf(format, args...)
		ok = false
	}
	before, err := readState(path, f.ids, false)
	if err != nil {
		fail("after the kill: %v", err)
		return false
	}
	partial := 0
	for _, sha := range ref.shas {
		if n := before.count(sha); n != 0 && !sameFile(before, ref.st, sha) {
			partial++
		}
	}
	st.partial.Add(int64(partial))
	if partial > 0 && before.interrupted == 0 {
		fail("%d file(s) partly written and no import marker", partial)
	}
	res, err := run(bins.phr, f.phrEnv(path), nil, "check")
	if err != nil {
		t.Fatal(err)
	}
	if res.code != 0 {
		fail("phr check after the kill: exit %d: %s%s", res.code, res.stdout, res.stderr)
	}
	rolled := strings.Count(res.stdout, "Rolled back an interrupted import")
	st.rolledBack.Add(int64(rolled))
	if rolled != before.interrupted {
		fail("phr check rolled back %d import(s), the vault had %d interrupted: %s", rolled, before.interrupted, res.stdout)
	}
	if !strings.Contains(res.stdout, " 0 problems") {
		fail("phr check: %s", res.stdout)
	}
	// phr check checked the file; what is left is to count.
	after, err := readState(path, f.ids, false)
	if err != nil {
		fail("after phr check: %v", err)
		return false
	}
	if after.interrupted != 0 {
		fail("after phr check: %d interrupted imports left", after.interrupted)
	}
	return f.checkPrefix(t, after, ref, acked, st) && ok
}

// checkPrefix checks that every file is whole or absent, that the files
// present are the first ones (the order of the imports), that every
// acknowledged file is present, and that nothing is stored twice.
func (f *fixture) checkPrefix(t *testing.T, s *state, ref *reference, acked []bool, st *stats) bool {
	t.Helper()
	ok := true
	gap := -1
	for i, sha := range ref.shas {
		n, want := s.count(sha), ref.st.count(sha)
		switch {
		case n == 0:
			if acked[i] {
				st.losses.Add(int64(want))
				t.Errorf("file %d was reported imported and is gone (%d records)", i+1, want)
				ok = false
			}
			if gap < 0 {
				gap = i
			}
		case sameFile(s, ref.st, sha):
			if gap >= 0 {
				t.Errorf("file %d is in the vault but file %d, imported before it, is not", i+1, gap+1)
				ok = false
			}
			if acked[i] {
				st.ackChecks.Add(int64(want))
			}
		default:
			t.Errorf("file %d is partly in the vault: %d of %d records", i+1, n, want)
			ok = false
			if acked[i] {
				st.losses.Add(int64(max(want-n, 0)))
			}
		}
	}
	for _, sha := range sortedKeys(s.bySHA) {
		if sha != "" && !slices.Contains(ref.shas, sha) {
			t.Errorf("records of an unknown file (sha256 %.12s...)", sha)
			ok = false
		}
	}
	if !sameFile(s, ref.st, "") {
		t.Errorf("the records not imported from a file changed: %v, want %v", s.bySHA[""], ref.st.bySHA[""])
		ok = false
	}
	if d := s.duplicates(); d > 0 {
		st.duplicates.Add(int64(d))
		t.Errorf("%d records stored twice", d)
		ok = false
	}
	return ok
}

// checkExact checks that the vault holds exactly the reference's records.
func (f *fixture) checkExact(t *testing.T, path string, ref *reference) {
	t.Helper()
	s, err := readState(path, f.ids, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.problems) > 0 || s.interrupted > 0 {
		t.Fatalf("final vault: %s", problemList(s.problems))
	}
	if d := diffKeys(s, ref.st); d != "" {
		t.Fatalf("final vault differs from the reference: %s", d)
	}
	for _, sha := range ref.shas {
		if !sameFile(s, ref.st, sha) {
			t.Fatalf("final vault: a file's records by type %v, want %v", s.bySHA[sha], ref.st.bySHA[sha])
		}
	}
}
