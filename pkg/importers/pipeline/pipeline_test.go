package pipeline_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"
	"github.com/phr-project/phr/pkg/importers"
	"github.com/phr-project/phr/pkg/importers/pipeline"
	"github.com/phr-project/phr/pkg/record"
	"github.com/phr-project/phr/pkg/vault"
)

// lines is a test importer: each line "Type name" becomes a resource,
// "skip" is skipped, "bad" fails, "fatal" stops the file.
type lines struct{}

func (lines) Name() string            { return "lines" }
func (lines) Detect(head []byte) bool { return bytes.HasPrefix(head, []byte("#lines")) }
func (lines) Import(ctx context.Context, in *importers.Input, sink importers.Sink) error {
	buf := new(bytes.Buffer)
	buf.ReadFrom(in.R)
	for i, l := range strings.Split(buf.String(), "\n") {
		f := strings.Fields(l)
		if len(f) == 0 || strings.HasPrefix(l, "#") {
			continue
		}
		switch f[0] {
		case "skip":
			sink.Skip("Condition", "negated")
		case "bad":
			sink.Fail(&importers.ItemError{File: in.Name, Line: i + 1, Err: errors.New("bad line")})
		case "fatal":
			return &importers.ParseError{ItemError: importers.ItemError{File: in.Name, Line: i + 1, Err: errors.New("unreadable")}}
		default:
			r, err := record.New([]byte(fmt.Sprintf(`{"resourceType":%q,"id":%q,"code":{"text":%q}}`, f[0], f[1], f[1])),
				record.Provenance{Method: record.MethodImported, Importer: "lines", System: "Test Clinic", OriginalID: f[1], FileSHA256: in.SHA256})
			if err != nil {
				return err
			}
			if err := sink.Record(r); err != nil {
				return err
			}
		}
	}
	return nil
}

const sha = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

func testVault(t *testing.T) *vault.Vault {
	id, _ := age.GenerateX25519Identity()
	v, err := vault.Create(filepath.Join(t.TempDir(), "v.phr"), []vault.SlotSpec{{Kind: vault.SlotDevice, Recipients: []age.Recipient{id.Recipient()}}}, &vault.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	return v
}

func count(t *testing.T, v *vault.Vault) int {
	n, _, err := v.Count()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestImportPipeline(t *testing.T) {
	reg := &importers.Registry{}
	reg.Register(lines{})
	good := "#lines\nCondition a\nCondition b\nskip\nObservation c\n"
	tests := []struct {
		name        string
		content     string
		opts        pipeline.Options
		wantErr     bool
		wantAdded   int
		wantInVault int
	}{
		{"good", good, pipeline.Options{}, false, 3, 3},
		{"dry run", good, pipeline.Options{DryRun: true}, false, 3, 0},
		{"item failure fails the file", "#lines\nCondition a\nbad\nCondition b\n", pipeline.Options{}, true, 2, 0},
		{"partial keeps the rest", "#lines\nCondition a\nbad\nCondition b\n", pipeline.Options{Partial: true}, false, 2, 2},
		{"fatal error writes nothing", "#lines\nCondition a\nfatal\n", pipeline.Options{Partial: true}, true, 0, 0},
		{"unknown format", "hello", pipeline.Options{}, true, 0, 0},
		{"forced format", "Condition z\n", pipeline.Options{Format: "lines"}, false, 1, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := testVault(t)
			rep, err := pipeline.Import(context.Background(), reg, v, &importers.Input{Name: "f.txt", R: strings.NewReader(tt.content), SHA256: sha}, tt.opts)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v", err)
			}
			if err != nil && rep.Error == "" {
				t.Error("failed report has no error")
			}
			if err == nil && rep.Added != tt.wantAdded {
				t.Errorf("added = %d, want %d", rep.Added, tt.wantAdded)
			}
			if n := count(t, v); n != tt.wantInVault {
				t.Errorf("vault has %d records, want %d", n, tt.wantInVault)
			}
		})
	}
}

func TestImportTwiceAddsNothing(t *testing.T) {
	reg := &importers.Registry{}
	reg.Register(lines{})
	v := testVault(t)
	content := "#lines\nCondition a\nCondition b\nskip\n"
	rep1, err := pipeline.Import(context.Background(), reg, v, &importers.Input{Name: "f", R: strings.NewReader(content), SHA256: sha}, pipeline.Options{})
	if err != nil {
		t.Fatal(err)
	}
	rep2, err := pipeline.Import(context.Background(), reg, v, &importers.Input{Name: "f", R: strings.NewReader(content), SHA256: sha}, pipeline.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if rep1.Added != 2 || rep2.Added != 0 || rep2.Duplicates != 2 || rep2.Skipped != 1 {
		t.Fatalf("first %+v, second %+v", rep1, rep2)
	}
	if rep2.ByType["Condition"].Duplicates != 2 || len(rep2.Skips) != 1 || rep2.Skips[0].Reason != "negated" {
		t.Fatalf("second report %+v", rep2)
	}
}

func TestImportLargeFileUndone(t *testing.T) {
	// Past the in-memory buffer the pipeline writes in batches; a failure
	// at the end must still leave the vault as it was.
	defer pipeline.SetMaxBuffered(2000)()
	reg := &importers.Registry{}
	reg.Register(lines{})
	v := testVault(t)
	var b strings.Builder
	b.WriteString("#lines\n")
	for i := 0; i < 2000+2_500; i++ {
		fmt.Fprintf(&b, "Observation o%d\n", i)
	}
	b.WriteString("fatal\n")
	_, err := pipeline.Import(context.Background(), reg, v, &importers.Input{Name: "big", R: strings.NewReader(b.String()), SHA256: sha}, pipeline.Options{})
	if err == nil {
		t.Fatal("no error")
	}
	if n := count(t, v); n != 0 {
		t.Fatalf("%d records left after a failed large import", n)
	}
}

// pausing is a test importer that reads like lines but stops at the line
// "pause" until released, so that a test can look at the vault file while
// an import is half written.
type pausing struct {
	lines
	paused, release chan struct{}
}

func (p pausing) Import(ctx context.Context, in *importers.Input, sink importers.Sink) error {
	buf := new(bytes.Buffer)
	buf.ReadFrom(in.R)
	before, after, _ := strings.Cut(buf.String(), "pause\n")
	if err := (lines{}).Import(ctx, &importers.Input{Name: in.Name, R: strings.NewReader(before), SHA256: in.SHA256}, sink); err != nil {
		return err
	}
	p.paused <- struct{}{}
	<-p.release
	return (lines{}).Import(ctx, &importers.Input{Name: in.Name, R: strings.NewReader(after), SHA256: in.SHA256}, sink)
}

// TestImportLargeFileCrashImage copies the vault file while a large import
// is half written (what a crash would leave on disk) and opens the copy:
// the half-written file is rolled back, all or nothing.
func TestImportLargeFileCrashImage(t *testing.T) {
	defer pipeline.SetMaxBuffered(300)()
	p := pausing{paused: make(chan struct{}), release: make(chan struct{})}
	reg := &importers.Registry{}
	reg.Register(p)
	id, _ := age.GenerateX25519Identity()
	dir := t.TempDir()
	v, err := vault.Create(filepath.Join(dir, "v.phr"), []vault.SlotSpec{{Kind: vault.SlotDevice, Recipients: []age.Recipient{id.Recipient()}}}, &vault.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	var b strings.Builder
	b.WriteString("#lines\n")
	for i := 0; i < 1000; i++ {
		if i == 700 {
			b.WriteString("pause\n")
		}
		fmt.Fprintf(&b, "Observation o%d\n", i)
	}
	done := make(chan error, 1)
	go func() {
		rep, err := pipeline.Import(context.Background(), reg, v, &importers.Input{Name: "big", R: strings.NewReader(b.String()), SHA256: sha}, pipeline.Options{})
		if err == nil && rep.Added != 1000 {
			err = fmt.Errorf("added %d", rep.Added)
		}
		done <- err
	}()
	<-p.paused
	written := count(t, v)
	if written == 0 || written == 1000 {
		t.Fatalf("%d records written at the pause: the test needs a half-written file", written)
	}
	image, err := os.ReadFile(filepath.Join(dir, "v.phr"))
	if err != nil {
		t.Fatal(err)
	}
	close(p.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := count(t, v); n != 1000 {
		t.Fatalf("the finished import has %d records", n)
	}
	crashed := filepath.Join(dir, "crashed.phr")
	if err := os.WriteFile(crashed, image, 0o600); err != nil {
		t.Fatal(err)
	}
	cv, err := vault.Open(crashed, vault.Identities(id), &vault.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer cv.Close()
	if rb := cv.RolledBack(); len(rb) != 1 || rb[0].Records != written || rb[0].FileSHA256 != sha {
		t.Fatalf("RolledBack = %+v, want %d records", rb, written)
	}
	if n := count(t, cv); n != 0 {
		t.Fatalf("%d records of the interrupted import left", n)
	}
	if rep, err := cv.Check(false); err != nil || !rep.OK() {
		t.Fatalf("check: %v %+v", err, rep)
	}
}

func TestWalk(t *testing.T) {
	files, err := pipeline.Walk([]string{"../../../../shared/testdata/fhir/bulk-ndjson-10-patients"})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 14 {
		t.Fatalf("Walk found %d files", len(files))
	}
}

// TestGroup: small files share a transaction and keep their own counts;
// a large file writes what waits first; a failed commit fails every file
// in it and writes none of them.
func TestGroup(t *testing.T) {
	defer pipeline.SetMaxBuffered(50)()
	reg := &importers.Registry{}
	reg.Register(lines{})
	ctx := context.Background()
	file := func(name string, n int, prefix string) *importers.Input {
		var b strings.Builder
		b.WriteString("#lines\n")
		for i := 0; i < n; i++ {
			fmt.Fprintf(&b, "Observation %s%d\n", prefix, i)
		}
		sum := fmt.Sprintf("%064x", len(name)*1000+n)
		return &importers.Input{Name: name, R: strings.NewReader(b.String()), SHA256: sum}
	}

	t.Run("counts", func(t *testing.T) {
		v := testVault(t)
		g := pipeline.NewGroup(v)
		opts := pipeline.Options{Group: g}
		a, err := pipeline.Import(ctx, reg, v, file("a", 10, "x"), opts)
		if err != nil {
			t.Fatal(err)
		}
		if n := count(t, v); n != 0 {
			t.Fatalf("%d records written before the group's commit", n)
		}
		// b repeats a's ten records and adds five.
		b, err := pipeline.Import(ctx, reg, v, file("bb", 15, "x"), opts)
		if err != nil {
			t.Fatal(err)
		}
		if failed, err := g.Flush(); err != nil || failed != nil {
			t.Fatal(failed, err)
		}
		if a.Added != 10 || a.Duplicates != 0 || b.Added != 5 || b.Duplicates != 10 || b.ByType["Observation"].Duplicates != 10 {
			t.Fatalf("a %d+%d, b %d+%d", a.Added, a.Duplicates, b.Added, b.Duplicates)
		}
		if n := count(t, v); n != 15 {
			t.Fatalf("%d records", n)
		}
	})

	t.Run("fills up", func(t *testing.T) {
		v := testVault(t)
		g := pipeline.NewGroup(v)
		for i := range 4 {
			if _, err := pipeline.Import(ctx, reg, v, file(strings.Repeat("f", i+1), 20, fmt.Sprint(i, "-")), pipeline.Options{Group: g}); err != nil {
				t.Fatal(err)
			}
		}
		// 20+20+20 reached 50: three files written, the fourth waits.
		if n := count(t, v); n != 60 {
			t.Fatalf("%d records before Flush, want 60", n)
		}
		g.Flush()
		if n := count(t, v); n != 80 {
			t.Fatalf("%d records after Flush, want 80", n)
		}
	})

	t.Run("large file after small", func(t *testing.T) {
		v := testVault(t)
		g := pipeline.NewGroup(v)
		if _, err := pipeline.Import(ctx, reg, v, file("small", 5, "s"), pipeline.Options{Group: g}); err != nil {
			t.Fatal(err)
		}
		big := file("big", 120, "b")
		big.R = io.MultiReader(big.R, strings.NewReader("fatal\n"))
		if _, err := pipeline.Import(ctx, reg, v, big, pipeline.Options{Group: g}); err == nil {
			t.Fatal("no error")
		}
		// The small file went in before the large one's first batch;
		// the large one was undone.
		if n := count(t, v); n != 5 {
			t.Fatalf("%d records, want the small file's 5", n)
		}
	})

	t.Run("failed commit", func(t *testing.T) {
		v := testVault(t)
		g := pipeline.NewGroup(v)
		a, _ := pipeline.Import(ctx, reg, v, file("a", 3, "a"), pipeline.Options{Group: g})
		b, _ := pipeline.Import(ctx, reg, v, file("bb", 3, "b"), pipeline.Options{Group: g})
		v.Close()
		failed, err := g.Flush()
		if err == nil || len(failed) != 2 || a.Error == "" || b.Error == "" || a.Added != 0 {
			t.Fatalf("Flush on a closed vault: %v, %d failed, errors %q %q", err, len(failed), a.Error, b.Error)
		}
	})

	t.Run("dry run", func(t *testing.T) {
		v := testVault(t)
		g := pipeline.NewGroup(v)
		rep, err := pipeline.Import(ctx, reg, v, file("a", 3, "a"), pipeline.Options{Group: g, DryRun: true})
		if err != nil || rep.Added != 3 {
			t.Fatalf("%v, %d", err, rep.Added)
		}
		g.Flush()
		if n := count(t, v); n != 0 {
			t.Fatalf("dry run wrote %d", n)
		}
	})
}
