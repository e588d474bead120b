package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/phr-project/phr/pkg/importers"
	"github.com/phr-project/phr/pkg/importers/all"
	"github.com/phr-project/phr/pkg/importers/applehealth"
	"github.com/phr-project/phr/pkg/importers/pipeline"
	"github.com/phr-project/phr/pkg/importers/qrimage"
	"github.com/phr-project/phr/pkg/importers/shlink"
	"github.com/phr-project/phr/pkg/record"
	"github.com/phr-project/phr/pkg/vault"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

// importMemoryLimit is the soft heap limit during imports. The live heap
// of a streaming import is 8-15 MB, plus bbolt's freelist bookkeeping of
// about 10 bytes per record written, which the vault drops every 500,000
// records by reopening the database. A limit close to the live heap makes
// the garbage collector run without pause: at 28 MB, before the vault
// reopened, a 1 GB Apple Health export imported at a third of the speed
// over its second half.
const importMemoryLimit = 48 << 20

type importOptions struct {
	format     string
	dryRun     bool
	partial    bool
	issuerKeys string
	aggregate  string
	source     string
	// acceptMismatch imports files about another person.
	acceptMismatch bool
	// SMART Health Links: who asks, and where the passcode is.
	recipient    string
	passcodeFile string
}

func init() { moreCommands = append(moreCommands, newImportCommand) }

func newImportCommand(g *globals) *cobra.Command {
	var o importOptions
	reg := all.Default()
	cmd := &cobra.Command{
		Use:   "import FILE|DIR|LINK...",
		Short: "Import provider exports: FHIR, NDJSON, C-CDA, SMART Health Cards, Apple Health, CSV",
		Long: `import reads the files (and folders, recursively) and adds their records to
the vault. The format is detected from the content, not the file name.
Importing the same file again adds nothing. A file with an unreadable part
adds nothing unless --partial is given; other files are not affected.

A file whose patient is not you (another birth date, or another name
without an identifier you share) is refused, unless you pass
--accept-patient-mismatch; its records then say so. If your vault has no
name or birth date yet, the first file that has them gives them.

A SMART Health Link (shlink:/..., or a viewer URL ending in #shlink:/...)
is fetched as its recipient (your name, or --recipient) and each of its
files imported; so is a link in a QR code image. PNG and JPEG images of
SMART Health Card QR codes are read too; give every image of a card split
into several codes in one command. A link's passcode comes from
--passcode-file, PHR_SHARE_PASSCODE, or a prompt.`,
		Example: `  phr import ~/Downloads/ccd.xml
  phr import export.zip --aggregate daily
  phr import card.smart-health-card --issuer-keys issuer-jwks.json
  phr import records/ --dry-run
  phr import 'shlink:/eyJ1cmwiOi...' --passcode-file code.txt
  phr import card-1.png card-2.png card-3.png`,
		Args: args(cobra.MinimumNArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error { return runImport(cmd.Context(), g, reg, o, a) },
	}
	f := cmd.Flags()
	f.StringVar(&o.format, "format", "auto", "auto, or one of: "+strings.Join(reg.Names(), ", "))
	f.BoolVar(&o.dryRun, "dry-run", false, "read and report, write nothing")
	f.BoolVar(&o.partial, "partial", false, "keep what could be read from a file with unreadable items")
	f.StringVar(&o.issuerKeys, "issuer-keys", "", "SMART Health Cards: the issuer's JWKS file, to verify signatures")
	f.StringVar(&o.aggregate, "aggregate", "", "Apple Health: 'daily' combines high-frequency samples into one per day")
	f.StringVar(&o.source, "source", "", "CSV: the source name to record (a clinic, a device)")
	f.BoolVar(&o.acceptMismatch, "accept-patient-mismatch", false, "import files about another person than the vault's owner (their records say so)")
	f.StringVar(&o.recipient, "recipient", "", "SMART Health Links: who asks, as the link's owner sees it (default: your name)")
	f.StringVar(&o.passcodeFile, "passcode-file", "", "SMART Health Links: read the passcode from the first line of this file (- for standard input)")
	return cmd
}

func runImport(ctx context.Context, g *globals, reg *importers.Registry, o importOptions, paths []string) error {
	if o.format != "auto" {
		if _, ok := reg.Lookup(o.format); !ok {
			return usagef("--format: unknown format %q (use auto, %s)", o.format, strings.Join(reg.Names(), ", "))
		}
	}
	if o.aggregate != "" && o.aggregate != "daily" {
		return usagef("--aggregate: only 'daily' is supported")
	}
	var links, filePaths []string
	for _, p := range paths {
		if shlink.IsLink(p) {
			links = append(links, p)
		} else {
			filePaths = append(filePaths, p)
		}
	}
	files, err := pipeline.Walk(filePaths)
	if err != nil {
		return err
	}
	if len(files)+len(links) == 0 {
		return usagef("no files to import")
	}
	// The chunks of a split card, in several images, become one input.
	files, joined := qrimage.Gather(files)
	opts := map[string]string{}
	if o.issuerKeys != "" {
		if _, err := os.Stat(o.issuerKeys); err != nil {
			return usagef("--issuer-keys: %v", err)
		}
		opts["issuer-keys"] = o.issuerKeys
	}
	if o.aggregate != "" {
		opts["aggregate"] = o.aggregate
	}
	if o.source != "" {
		opts["source"] = o.source
	}
	// An unpacked Apple Health export: its export.xml names the clinical
	// records in the folder beside it, which the import reads as part of
	// it (with the provider as their source), so the folder walk leaves
	// them out.
	opts[applehealth.OptionClinicalRecords] = "beside"
	files = withoutClinicalRecords(files, paths)
	if g.env("GOMEMLIMIT") == "" {
		// Imports stream: a soft limit keeps the garbage collector from
		// letting the heap grow with the file (an Apple Health export can
		// be gigabytes).
		debug.SetMemoryLimit(importMemoryLimit)
	}
	v, err := g.openVault(false)
	if err != nil {
		return err
	}
	defer v.Close()
	rolledBack := v.RolledBack()
	if !g.json {
		printRollbacks(g.stderr, rolledBack)
	}
	showProgress := !g.json && isTerminal(g.stderr)
	explicit := map[string]bool{}
	for _, p := range paths {
		explicit[p] = true
	}
	var reports []*pipeline.Report
	var notRecognized []string
	// Small files share transactions (one sync to disk for many files);
	// each is still whole or absent.
	group := pipeline.NewGroup(v)
	for _, in := range joined {
		rep, _ := pipeline.Import(ctx, reg, v, in, pipeline.Options{DryRun: o.dryRun, Partial: o.partial, Importer: opts, Group: group, AcceptPatientMismatch: o.acceptMismatch})
		reports = append(reports, rep)
	}
	for _, path := range files {
		in, f, err := pipeline.OpenFile(path)
		if err != nil {
			reports = append(reports, &pipeline.Report{File: path, Error: err.Error(), ByType: map[string]*pipeline.Counts{}})
			continue
		}
		io := pipeline.Options{Format: o.format, DryRun: o.dryRun, Partial: o.partial, Importer: opts, Group: group, AcceptPatientMismatch: o.acceptMismatch}
		var bar *progress
		if showProgress {
			bar = &progress{w: g.stderr, name: path, total: in.Size}
			io.Progress = bar.update
		}
		rep, err := pipeline.Import(ctx, reg, v, in, io)
		f.Close()
		if bar != nil {
			bar.done()
		}
		if err != nil && !explicit[path] && errors.Is(err, importers.ErrUnknownFormat) {
			// Found in a folder and not a health record: not a failure.
			notRecognized = append(notRecognized, path)
			continue
		}
		if le := (*qrimage.LinkError)(nil); errors.As(err, &le) {
			links = append(links, le.Links...) // fetched below
			continue
		}
		reports = append(reports, rep)
		if errors.Is(err, context.Canceled) {
			break
		}
	}
	for _, link := range links {
		if ctx.Err() != nil {
			break
		}
		reps, _ := shlink.Receive(ctx, v, link, shlink.Options{
			Recipient: o.recipient,
			Passcode:  func() (string, error) { return g.linkPasscode(o.passcodeFile) },
			Import:    pipeline.Options{DryRun: o.dryRun, Partial: o.partial, Importer: opts, Group: group, AcceptPatientMismatch: o.acceptMismatch},
		})
		reports = append(reports, reps...)
	}
	// The files read before an interruption are kept, as they would be
	// had each been written on its own. A failed commit sets the error of
	// every file in it.
	group.Flush()
	failed, mismatched := 0, 0
	for _, r := range reports {
		if r.Error != "" {
			failed++
		}
		if r.Error != "" && strings.Contains(r.Error, pipeline.ErrPatientMismatch.Error()) {
			mismatched++
		}
	}
	out := map[string]any{"files": reports}
	if len(rolledBack) > 0 {
		out["rolledBack"] = rolledBack
	}
	if len(notRecognized) > 0 {
		out["notRecognized"] = notRecognized
	}
	err = g.print(out, func(w io.Writer) error {
		printImportReports(w, reports)
		if n := len(notRecognized); n > 0 {
			fmt.Fprintf(w, "\nIgnored %d file(s) in the folders that are not in a health record format (first: %s)\n", n, notRecognized[0])
		}
		if mismatched > 0 {
			fmt.Fprintln(g.stderr, "hint: if the file is yours after all, or you keep a relative's records here, import it with --accept-patient-mismatch")
		}
		return nil
	})
	if err != nil {
		return err
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d file(s) failed; nothing of those was imported", failed, len(reports))
	}
	return nil
}

// linkPasscode is the passcode of a P link: from --passcode-file, else
// PHR_SHARE_PASSCODE, else a prompt. Never from the command line.
func (g *globals) linkPasscode(file string) (string, error) {
	pc, err := g.sharePasscode(shareOptions{passcodeFile: file}, false)
	if err != nil || pc != "" {
		return pc, err
	}
	if pc, err = g.prompt("Passcode for the link: "); err != nil {
		return "", usagef("the link needs a passcode: give --passcode-file or PHR_SHARE_PASSCODE, or run phr on a terminal")
	}
	if pc == "" {
		return "", usagef("the passcode must not be empty")
	}
	return pc, nil
}

func printImportReports(w io.Writer, reports []*pipeline.Report) {
	for i, r := range reports {
		if i > 0 {
			fmt.Fprintln(w)
		}
		verb, upd := "added", "updated"
		if r.DryRun {
			verb, upd = "would add", "would update"
		}
		format := r.Format
		if format == "" {
			format = "?"
		}
		if r.Error != "" {
			fmt.Fprintf(w, "%s (%s): FAILED: %s\n", r.File, format, r.Error)
			if strings.Contains(r.Error, pipeline.ErrPatientMismatch.Error()) {
				continue // what it held does not matter: it is not yours
			}
		} else {
			fmt.Fprintf(w, "%s (%s): %s %d, %s %d, duplicates %d, skipped %d, failed %d\n", r.File, format, verb, r.Added, upd, r.Updated, r.Duplicates, r.Skipped, r.Failed)
		}
		if len(r.ByType) > 0 {
			types := make([]string, 0, len(r.ByType))
			for t := range r.ByType {
				types = append(types, t)
			}
			sort.Strings(types)
			tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
			fmt.Fprintln(tw, "  type\tadded\tupdated\tduplicates\tskipped\tfailed\t")
			for _, t := range types {
				c := r.ByType[t]
				fmt.Fprintf(tw, "  %s\t%d\t%d\t%d\t%d\t%d\t\n", t, c.Added, c.Updated, c.Duplicates, c.Skipped, c.Failed)
			}
			tw.Flush()
		}
		for _, s := range r.Skips {
			fmt.Fprintf(w, "  skipped %d %s: %s\n", s.Count, s.ResourceType, s.Reason)
		}
		for _, f := range r.Failures {
			fmt.Fprintf(w, "  failed: %s\n", f)
		}
		if r.PatientMismatch {
			fmt.Fprintln(w, "  imported although its patient is not you (as asked); its records say so")
		}
		if len(r.OwnerFilled) > 0 {
			fmt.Fprintf(w, "  took your %s from this file, which your vault did not have (phr edit patient changes them)\n", record.JoinFacts(r.OwnerFilled))
		}
		if r.Warning != "" {
			fmt.Fprintf(w, "  warning: %s\n", r.Warning)
		}
	}
}

// withoutClinicalRecords leaves out the files found in a folder walk that
// are an unpacked Apple Health export's clinical records: the
// clinical-records folder beside an export.xml of the same walk.
func withoutClinicalRecords(files, explicit []string) []string {
	named := map[string]bool{}
	for _, p := range explicit {
		named[p] = true
	}
	exports := map[string]bool{}
	for _, f := range files {
		if filepath.Base(f) == "export.xml" {
			exports[filepath.Dir(f)] = true
		}
	}
	out := files[:0:0]
	for _, f := range files {
		dir := filepath.Dir(f)
		if !named[f] && filepath.Base(dir) == "clinical-records" && exports[filepath.Dir(dir)] {
			continue
		}
		out = append(out, f)
	}
	return out
}

func isTerminal(w any) bool {
	if t, ok := w.(*termSafe); ok {
		w = t.w
	}
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// progress draws one line on a terminal: the file, a bar, and bytes read.
type progress struct {
	w     io.Writer
	name  string
	total int64
	last  int
}

func (p *progress) update(read int64) {
	pct := 100
	if p.total > 0 {
		pct = int(read * 100 / p.total)
	}
	if pct == p.last {
		return
	}
	p.last = pct
	const width = 30
	filled := pct * width / 100
	fmt.Fprintf(p.w, "\r%-32s [%s%s] %3d%% %s", clip(p.name, 32), strings.Repeat("#", filled), strings.Repeat(" ", width-filled), pct, humanBytes(p.total))
}

func (p *progress) done() { fmt.Fprint(p.w, "\r\033[K") }

// printRollbacks tells of the interrupted imports that opening the vault
// rolled back. It names the file by the start of its SHA-256 only.
func printRollbacks(w io.Writer, rbs []vault.Rollback) {
	for _, rb := range rbs {
		fmt.Fprintf(w, "Rolled back an interrupted import: %d records removed (file sha256 %s...); import the file again.\n", rb.Records, rb.FileSHA256[:min(12, len(rb.FileSHA256))])
	}
}
