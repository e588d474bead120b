package all_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/phr-project/phr/internal/racedetect"
	"github.com/phr-project/phr/internal/vaulttest"
	"github.com/phr-project/phr/pkg/importers"
	"github.com/phr-project/phr/pkg/importers/all"
	"github.com/phr-project/phr/pkg/importers/pipeline"
	"github.com/phr-project/phr/pkg/record"
	"github.com/phr-project/phr/pkg/vault"
)

// sharedFiles lists every file of the shared test data that some importer
// reads (documentation and images aside).
func sharedFiles(t *testing.T) []string {
	t.Helper()
	files, err := pipeline.Walk([]string{shared})
	if err != nil {
		t.Fatalf("the shared test data is needed: %v", err)
	}
	reg := all.Default()
	var out []string
	for _, f := range files {
		head := make([]byte, importers.DetectSize)
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		n, _ := fh.Read(head)
		fh.Close()
		if _, err := reg.Detect(head[:n]); err == nil {
			out = append(out, f)
		}
	}
	if len(out) < 200 {
		t.Fatalf("only %d importable shared files", len(out))
	}
	return out
}

// facts is what a vault states: how many live records and earlier
// versions have each fingerprint (source and content), and the number of
// live records.
type facts struct {
	seen map[string]int
	live int
	what map[string]string // key -> type and file, for messages
}

func factsOf(t *testing.T, v *vault.Vault) facts {
	t.Helper()
	recs, err := v.List(vault.Query{})
	if err != nil {
		t.Fatal(err)
	}
	f := facts{seen: map[string]int{}, what: map[string]string{}}
	key := func(r *record.Record) string {
		in := record.FingerprintInput(r)
		if in == nil {
			s := sha256.Sum256(r.Resource)
			in = s[:]
		}
		// Which file's copy of a fact stays depends on the order; the
		// fact (source and content) does not.
		return hex.EncodeToString(in)
	}
	for i := range recs {
		r := &recs[i]
		if r.Provenance.Method != record.MethodImported {
			continue
		}
		f.live++
		f.seen[key(r)]++
		f.what[key(r)] = r.ResourceType + " in " + r.Provenance.File + " (live)"
		hist, err := v.History(r.ID)
		if err != nil {
			t.Fatal(err)
		}
		for j := range hist {
			f.seen[key(&hist[j])]++
			f.what[key(&hist[j])] = hist[j].ResourceType + " in " + hist[j].Provenance.File + " (history)"
		}
	}
	return f
}

// Every shared file imported twice, and in both orders: no fact lost, no
// fact doubled. The second pass adds nothing; the vault imported in
// reverse order states the same facts (the latest version of a record
// depends on the order, its history holds the rest).
func TestEveryFileTwiceBothOrders(t *testing.T) {
	if testing.Short() || racedetect.Enabled {
		// scripts/test.sh runs it without the race detector: under it,
		// four imports of every shared file take over ten minutes.
		t.Skip("imports every shared file four times")
	}
	files := sharedFiles(t)
	reverse := slices.Clone(files)
	slices.Reverse(reverse)
	var got [2]facts
	for i, order := range [][]string{files, reverse} {
		v := vaulttest.New(t)
		// The files are about some forty people: none of them is the
		// owner, so every file is imported as another person's, whose
		// records are never versions of each other (a template's entry
		// ids recur across the EMERGE patients).
		vaulttest.SetOwner(t, v, "Nobody Of These", record.Day(1901, 1, 1))
		for pass := range 2 {
			for _, f := range order {
				in, fh, err := pipeline.OpenFile(f)
				if err != nil {
					t.Fatal(err)
				}
				rep, err := pipeline.Import(context.Background(), all.Default(), v, in, pipeline.Options{AcceptPatientMismatch: true})
				fh.Close()
				if err != nil {
					// Files that are refused are refused in every order and
					// pass (a SMART Health Card chunk alone, a bad sample).
					if rep.Added+rep.Updated != 0 || errors.Is(err, context.Canceled) {
						t.Fatalf("%s: %v", f, err)
					}
					continue
				}
				if pass == 1 && (rep.Added != 0 || rep.Updated != 0) {
					t.Errorf("%s imported again: added %d, updated %d", filepath.Base(f), rep.Added, rep.Updated)
				}
			}
		}
		got[i] = factsOf(t, v)
		if rep, err := v.Check(false); err != nil || !rep.OK() {
			t.Fatalf("check: %v %+v", err, rep)
		}
	}
	if got[0].live != got[1].live {
		t.Errorf("%d records in one order, %d in the other", got[0].live, got[1].live)
	}
	lost, doubled := 0, 0
	for k, n := range got[0].seen {
		switch m := got[1].seen[k]; {
		case m == 0:
			lost++
			if lost <= 10 {
				t.Logf("only in file order: %s", got[0].what[k])
			}
		case m != n:
			doubled++
		}
	}
	for k := range got[1].seen {
		if got[0].seen[k] == 0 {
			lost++
			if lost <= 20 {
				t.Logf("only in reverse order: %s", got[1].what[k])
			}
		}
	}
	if lost != 0 || doubled != 0 {
		t.Errorf("across orders: %d facts in one vault only, %d counted differently (of %d)", lost, doubled, len(got[0].seen))
	}
	t.Logf("%d files, %d records, %d facts with history", len(files), got[0].live, len(got[0].seen))
}

// Three documents about one patient from one vendor (Allscripts Sunrise,
// Kari Kidd): in either order the vault states the same facts, the owner
// taking her name from the first; a record the later document changed is
// its new version, the earlier one in its history.
func TestOnePatientsDocumentsBothOrders(t *testing.T) {
	dir := shared + "ccda/chb-sample_ccdas/Allscripts Samples/Sunrise Clinical Manager/"
	files := []string{
		dir + "C-CDA_101693_20130617091427_Kidd_Kari CCDA.xml",
		dir + "C-CDA_101693_20130617120344_Kidd_Kari CCDA_TOCAMB.xml",
		dir + "C-CDA_101693_20130617120425_Kidd_Kari CCDA_TOCINPT.xml",
	}
	reverse := slices.Clone(files)
	slices.Reverse(reverse)
	var got [2]facts
	for i, order := range [][]string{files, reverse} {
		v := vaulttest.New(t)
		vaulttest.SetOwner(t, v, "", time.Time{})
		for _, f := range order {
			in, fh, err := pipeline.OpenFile(f)
			if err != nil {
				t.Fatal(err)
			}
			rep, err := pipeline.Import(context.Background(), all.Default(), v, in, pipeline.Options{})
			fh.Close()
			if err != nil {
				t.Fatalf("%s: %v", filepath.Base(f), err)
			}
			t.Logf("order %d: %s added %d, updated %d, duplicates %d", i, filepath.Base(f), rep.Added, rep.Updated, rep.Duplicates)
		}
		got[i] = factsOf(t, v)
	}
	if got[0].live != got[1].live {
		t.Errorf("%d records in one order, %d in the other", got[0].live, got[1].live)
	}
	for k, n := range got[0].seen {
		if got[1].seen[k] != n {
			t.Errorf("%s: %d in file order, %d in reverse", got[0].what[k], n, got[1].seen[k])
		}
	}
	for k := range got[1].seen {
		if got[0].seen[k] == 0 {
			t.Errorf("%s: only in reverse order", got[1].what[k])
		}
	}
}
