package pipeline

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/phr-project/phr/pkg/importers"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/phr-project/phr/pkg/record"
	"github.com/phr-project/phr/pkg/vault"
)

// Store is where imported records go: a *vault.Vault.
type Store interface {
	DryAdd(recs []record.Record) ([]vault.AddResult, error)
	// BeginImportContext starts a file's import; ctx bounds how long it
	// waits while another import of the same file runs (on this node or,
	// for a vault in a database, on another).
	BeginImportContext(ctx context.Context, fileSHA256 string) (*vault.Import, error)
	// Patient returns the vault owner's Patient record, or
	// vault.ErrNoPatient.
	Patient() (record.Record, error)
	Update(r record.Record, ifVersion uint64) (record.Record, error)
}

var _ Store = (*vault.Vault)(nil)

// Options control one import.
type Options struct {
	// Format is an importer name, or "" / "auto" to detect by content.
	Format string
	// DryRun reads and maps everything but writes nothing.
	DryRun bool
	// Partial keeps what could be read from a file with failed items. By
	// default one failure fails the whole file and nothing of it is kept.
	Partial bool
	// Importer holds format-specific options (see importers.Input.Options).
	Importer map[string]string
	// Progress, if set, is called with the bytes read so far.
	Progress func(read int64)
	// Group, if set, lets this file share a transaction with others of
	// the group (see Group). Ignored in a dry run.
	Group *Group
	// AcceptPatientMismatch imports a file whose Patient is not the
	// vault's owner (see PatientMismatchError) instead of refusing it;
	// its records say so in their provenance (PatientMismatch).
	AcceptPatientMismatch bool
}

// ErrPatientMismatch is what a PatientMismatchError is: the file is about
// another person than the vault's owner.
var ErrPatientMismatch = errors.New("the file is about another person")

// PatientMismatchError refuses a file whose Patient differs from the
// vault's owner in birth date, or in name without a shared identifier
// (record.ComparePatients). It names the file and which facts differ,
// never their values.
type PatientMismatchError struct {
	File    string
	Differs record.Mismatch
}

func (e *PatientMismatchError) Error() string {
	verb := "differs"
	if len(e.Differs) > 1 {
		verb = "differ"
	}
	return fmt.Sprintf("%s: the file is about another person: its patient's %s %s from yours; nothing was imported", e.File, record.JoinFacts(e.Differs), verb)
}

// Is makes errors.Is(err, ErrPatientMismatch) true.
func (e *PatientMismatchError) Is(target error) bool { return target == ErrPatientMismatch }

// A Group lets the small files of one import command share transactions.
// Every commit syncs the vault file to disk, twice, and for a folder of
// portal downloads of 100 KB each that is most of the time an import
// takes. A file small enough to be written in one transaction (fewer than
// maxBuffered records) waits in the group once it has been read and
// mapped without error; the group writes what waits in one transaction
// when it holds maxBuffered records, before a large file writes its first
// batch (so that files land in the order they were imported), and at
// Flush. Each file is still whole or absent: if a commit fails, every
// file waiting in it fails, and none of it is written.
//
// The report of a waiting file has its added and duplicate counts only
// after the commit. Use a Group from one goroutine.
type Group struct {
	store   Store
	waiting []waiting
	records int
}

type waiting struct {
	rep  *Report
	recs []record.Record
}

// NewGroup returns an empty group writing to store.
func NewGroup(store Store) *Group { return &Group{store: store} }

func (g *Group) add(rep *Report, recs []record.Record) error {
	g.waiting = append(g.waiting, waiting{rep, recs})
	g.records += len(recs)
	if g.records >= maxBuffered {
		return g.commit()
	}
	return nil
}

// Flush writes the files waiting in the group. It returns the reports of
// the files that failed, with their errors set, and the commit's error.
func (g *Group) Flush() ([]*Report, error) {
	if len(g.waiting) == 0 {
		return nil, nil
	}
	w := g.waiting
	err := g.commit()
	if err == nil {
		return nil, nil
	}
	failed := make([]*Report, len(w))
	for i := range w {
		failed[i] = w[i].rep
	}
	return failed, err
}

// commit writes every waiting file in one transaction and fills in their
// counts; on failure it sets each one's error.
func (g *Group) commit() error {
	w := g.waiting
	g.waiting, g.records = nil, 0
	if len(w) == 0 {
		return nil
	}
	var all []record.Record
	for _, f := range w {
		all = append(all, f.recs...)
	}
	res, err := func() ([]vault.AddResult, error) {
		im, err := g.store.BeginImportContext(context.Background(), w[0].rep.SHA256)
		if err != nil {
			return nil, err
		}
		return im.Commit(all)
	}()
	if err != nil {
		for _, f := range w {
			f.rep.Error = fmt.Sprintf("writing to the vault: %v", err)
		}
		return err
	}
	for _, f := range w {
		countResults(f.rep, f.recs, res[:len(f.recs)])
		res = res[len(f.recs):]
	}
	return nil
}

// countResults adds the outcome of writing recs to rep's counts.
func countResults(rep *Report, recs []record.Record, res []vault.AddResult) {
	for i, r := range res {
		c := rep.counts(recs[i].ResourceType)
		switch {
		case r.Duplicate:
			rep.Duplicates++
			c.Duplicates++
		case r.Updated:
			rep.Updated++
			c.Updated++
		default:
			rep.Added++
			c.Added++
		}
	}
}

// maxBuffered is how many records an import holds before it starts
// writing. A file with fewer records is written in one transaction, all or
// nothing. Larger files are written as they are read, batchSize records
// per transaction, through a vault.Import: undone (Abort) if they then
// fail, and rolled back when the vault is next opened if the process dies
// first. Either way a file is in the vault whole or not at all.
var maxBuffered = 5_000

// batchSize is the number of records per transaction. It is small on
// purpose: committing a transaction reads the header of every page it
// replaces through the vault's memory map, and Linux maps the 64 KiB
// around each such fault, so the resident set of a writer grows with the
// pages a transaction dirties. 128 records kept that to about 10-20 MB on a
// multi-gigabyte vault of format 3; format 4 compresses records about
// four times, so 512 dirty about as many pages, and each commit's pages
// of the indexes and the head are shared by four times as many records
// (docs/performance.md: bytes written by an import).
const batchSize = 512

// Counts are the outcome counts of one resource type.
type Counts struct {
	Added int `json:"added"`
	// Updated counts records that were new versions of records in the
	// vault: named alike by their source, saying something else, from
	// another file (see vault.AddResult).
	Updated    int `json:"updated"`
	Duplicates int `json:"duplicates"`
	Skipped    int `json:"skipped"`
	Failed     int `json:"failed"`
}

// Report is what happened to one file. Its JSON is the per-file object of
// `phr import --json`.
type Report struct {
	File       string             `json:"file"`
	Format     string             `json:"format"`
	SHA256     string             `json:"sha256,omitempty"`
	Added      int                `json:"added"`
	Updated    int                `json:"updated"`
	Duplicates int                `json:"duplicates"`
	Skipped    int                `json:"skipped"`
	Failed     int                `json:"failed"`
	ByType     map[string]*Counts `json:"byType"`
	// Skips says why items were skipped, with how many of each.
	Skips []SkipNote `json:"skips,omitempty"`
	// Failures locate failed items (file, line or path, and why).
	Failures []string `json:"failures,omitempty"`
	// Error is why the whole file failed, if it did.
	Error  string `json:"error,omitempty"`
	DryRun bool   `json:"dryRun,omitempty"`
	// PatientMismatch is true when the file's Patient was not the vault's
	// owner and the import was asked to accept it.
	PatientMismatch bool `json:"patientMismatch,omitempty"`
	// OwnerFilled names the facts about the owner (name, birth date,
	// sex) that the vault did not have and took from this file's Patient.
	OwnerFilled []string `json:"ownerFilled,omitempty"`
	// Warning says what went wrong after the file was in, if anything.
	Warning string `json:"warning,omitempty"`
}

// SkipNote counts skipped items of one type and reason.
type SkipNote struct {
	ResourceType string `json:"resourceType"`
	Reason       string `json:"reason"`
	Count        int    `json:"count"`
}

const maxFailuresListed = 100

func (r *Report) counts(rt string) *Counts {
	c, ok := r.ByType[rt]
	if !ok {
		c = &Counts{}
		r.ByType[rt] = c
	}
	return c
}

// pipeSink buffers records and writes them to the store in batches.
type pipeSink struct {
	ctx     context.Context
	store   Store
	opts    Options
	rep     *Report
	buf     []record.Record
	im      *vault.Import // the file's import; nil in a dry run
	written bool          // a batch has been written
	skips   map[[2]string]int
	failed  bool

	// owner is the vault owner's Patient (nil: the vault names none);
	// filePatient the first Patient of the file that is the owner.
	owner       record.Resource
	filePatient record.Resource
}

func (s *pipeSink) Record(r record.Record) error {
	if err := s.ctx.Err(); err != nil {
		return err
	}
	if r.Kind == "" || r.ResourceType == "" {
		if err := r.Derive(); err != nil {
			s.Fail(&importers.ItemError{File: s.rep.File, Err: err})
			return nil
		}
	}
	if r.ResourceType == "Patient" && s.owner != nil {
		if err := s.checkPatient(&r); err != nil {
			return err
		}
	}
	if s.rep.PatientMismatch {
		r.Provenance.PatientMismatch = true
	}
	s.buf = append(s.buf, r)
	if len(s.buf) >= maxBuffered || (s.written && len(s.buf) >= batchSize) {
		return s.flush(false)
	}
	return nil
}

// checkPatient compares a Patient of the file with the vault's owner.
func (s *pipeSink) checkPatient(r *record.Record) error {
	res, err := record.Parse(r.Resource)
	if err != nil {
		return nil // Derive parsed it; cannot happen
	}
	m := record.ComparePatients(s.owner, res)
	if len(m) == 0 {
		if s.filePatient == nil {
			s.filePatient = res
		}
		return nil
	}
	if !s.opts.AcceptPatientMismatch {
		return &PatientMismatchError{File: filepath.Base(s.rep.File), Differs: m}
	}
	if !s.rep.PatientMismatch {
		s.rep.PatientMismatch = true
		for i := range s.buf {
			s.buf[i].Provenance.PatientMismatch = true
		}
	}
	return nil
}

// fillOwner gives the vault's owner the name, birth date and sex it lacks
// from the file's Patient, once the file is in.
func (s *pipeSink) fillOwner(owner record.Record) error {
	if s.filePatient == nil || s.rep.PatientMismatch || s.opts.DryRun {
		return nil
	}
	res, err := record.Parse(owner.Resource)
	if err != nil {
		return err
	}
	filled := record.FillPatient(res, s.filePatient)
	if len(filled) == 0 {
		return nil
	}
	data, err := json.Marshal(map[string]any(res))
	if err != nil {
		return err
	}
	owner.Resource = data
	if _, err := s.store.Update(owner, owner.Version); err != nil {
		return fmt.Errorf("taking your %s from the file: %w", record.JoinFacts(filled), err)
	}
	s.rep.OwnerFilled = filled
	return nil
}

func (s *pipeSink) Skip(resourceType, reason string) {
	s.skips[[2]string{resourceType, reason}]++
	s.rep.Skipped++
	s.rep.counts(resourceType).Skipped++
}

func (s *pipeSink) Fail(err *importers.ItemError) {
	s.failed = true
	s.rep.Failed++
	s.rep.counts("(unreadable)").Failed++
	if len(s.rep.Failures) < maxFailuresListed {
		s.rep.Failures = append(s.rep.Failures, err.Error())
	}
}

// flush writes the buffered records, unless this is a dry run. The last
// flush (the file was read to its end) commits the import: a small file
// in one transaction, a large one with its last batch.
func (s *pipeSink) flush(last bool) error {
	// Medications that name their drug by a Medication resource of the
	// file show the drug's name (in the reference's display).
	if err := record.ResolveMedicationRefs(s.buf); err != nil {
		return err
	}
	if g := s.opts.Group; g != nil && !s.opts.DryRun && !s.written {
		if last && len(s.buf) < maxBuffered {
			// A small file: it waits for the group's transaction.
			recs := s.buf
			s.buf = nil
			return g.add(s.rep, recs)
		}
		// A large file's first batch: what waits goes first.
		if err := g.commit(); err != nil {
			return fmt.Errorf("writing the files before this one: %w", err)
		}
	}
	if !s.opts.DryRun && s.im == nil {
		im, err := s.store.BeginImportContext(s.ctx, s.rep.SHA256)
		if err != nil {
			return err
		}
		s.im = im
	}
	if last && len(s.buf) == 0 && s.written {
		_, err := s.im.Commit(nil)
		return err
	}
	for start := 0; start < len(s.buf); start += batchSize {
		batch := s.buf[start:min(start+batchSize, len(s.buf))]
		if len(s.buf) < maxBuffered && !s.written {
			batch = s.buf // a small file: all of it in one transaction
			start = len(s.buf)
		}
		var res []vault.AddResult
		var err error
		switch {
		case s.opts.DryRun:
			res, err = s.store.DryAdd(batch)
		case last && start+batchSize >= len(s.buf):
			res, err = s.im.Commit(batch)
		default:
			res, err = s.im.Add(batch)
		}
		if err != nil {
			return err
		}
		s.written = !s.opts.DryRun
		countResults(s.rep, batch, res)
	}
	s.buf = s.buf[:0]
	return nil
}

// undo removes what this import wrote.
func (s *pipeSink) undo() error {
	if s.im == nil || !s.written {
		return nil
	}
	_, err := s.im.Abort()
	s.written = false
	return err
}

// Import reads one input with the importer opts names (or the one that
// detects it) and adds its records to store. Without opts.Partial, a file
// with any failure adds nothing. A file is added whole or not at all, even
// if the process dies while writing it: the vault rolls back an import it
// finds interrupted when it is next opened for writing. The report is
// returned even on error.
func Import(ctx context.Context, reg *importers.Registry, store Store, in *importers.Input, opts Options) (*Report, error) {
	rep := &Report{File: in.Name, SHA256: in.SHA256, ByType: map[string]*Counts{}, DryRun: opts.DryRun}
	if !isSHA256Hex(in.SHA256) {
		// Provenance needs it, and undoing a failed import finds the
		// records it wrote by it.
		rep.Error = "the input has no SHA-256"
		return rep, fmt.Errorf("%s: the input has no SHA-256 (use OpenFile)", in.Name)
	}
	br := bufio.NewReaderSize(in.R, importers.DetectSize)
	head, err := br.Peek(importers.DetectSize)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, bufio.ErrBufferFull) {
		rep.Error = err.Error()
		return rep, fmt.Errorf("%s: %w", in.Name, err)
	}
	var imp importers.Importer
	if opts.Format == "" || opts.Format == "auto" {
		if imp, err = reg.Detect(head); err != nil {
			rep.Error = err.Error() + " (formats: " + strings.Join(reg.Names(), ", ") + ")"
			return rep, fmt.Errorf("%s: %w", in.Name, err)
		}
	} else {
		var ok bool
		if imp, ok = reg.Lookup(opts.Format); !ok {
			rep.Error = "unknown format " + opts.Format
			return rep, fmt.Errorf("unknown format %q (formats: %s)", opts.Format, strings.Join(reg.Names(), ", "))
		}
	}
	rep.Format = imp.Name()
	in2 := *in
	in2.R = br
	if opts.Progress != nil {
		in2.R = &progressReader{r: br, fn: opts.Progress}
	}
	if opts.Importer != nil {
		in2.Options = opts.Importer
	}
	sink := &pipeSink{ctx: ctx, store: store, opts: opts, rep: rep, skips: map[[2]string]int{}}
	owner, err := store.Patient()
	switch {
	case err == nil:
		if sink.owner, err = record.Parse(owner.Resource); err != nil {
			rep.Error = err.Error()
			return rep, fmt.Errorf("the vault owner's Patient record: %w", err)
		}
	case errors.Is(err, vault.ErrNoPatient):
	default:
		rep.Error = err.Error()
		return rep, err
	}
	err = imp.Import(ctx, &in2, sink)
	if err == nil && sink.failed && !opts.Partial {
		err = fmt.Errorf("%s: %d item(s) failed; nothing was imported (use --partial to keep the rest)", in.Name, rep.Failed)
	}
	if err == nil {
		err = sink.flush(true)
	}
	if err == nil && sink.owner != nil {
		// The file is in (or waits in its group): a failure to fill the
		// owner's facts does not undo it.
		if ferr := sink.fillOwner(owner); ferr != nil {
			rep.Warning = ferr.Error()
		}
	}
	for k, n := range sink.skips {
		rep.Skips = append(rep.Skips, SkipNote{ResourceType: k[0], Reason: k[1], Count: n})
	}
	sort.Slice(rep.Skips, func(i, j int) bool {
		a, b := rep.Skips[i], rep.Skips[j]
		return a.ResourceType < b.ResourceType || a.ResourceType == b.ResourceType && a.Reason < b.Reason
	})
	if err != nil {
		if uerr := sink.undo(); uerr != nil {
			err = fmt.Errorf("%w (and undoing the partial import failed: %v)", err, uerr)
		}
		// Nothing of the file stays: the counts say what was read.
		rep.Error = err.Error()
		return rep, err
	}
	return rep, nil
}

// isSHA256Hex reports whether s is a SHA-256 in lower-case hex, as
// OpenFile makes it.
func isSHA256Hex(s string) bool {
	b, err := hex.DecodeString(s)
	return err == nil && len(b) == sha256.Size && hex.EncodeToString(b) == s
}

type progressReader struct {
	r  io.Reader
	n  int64
	fn func(int64)
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.n += int64(n)
	p.fn(p.n)
	return n, err
}

// OpenFile prepares a file on disk as an importers.Input: it hashes the file first
// (provenance needs the SHA-256 of the whole file) and then reopens it.
// The caller closes the returned file.
func OpenFile(path string) (*importers.Input, *os.File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	if st.IsDir() {
		f.Close()
		return nil, nil, fmt.Errorf("%s is a directory", path)
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		f.Close()
		return nil, nil, err
	}
	return &importers.Input{Name: path, R: f, ReaderAt: f, Size: st.Size(), SHA256: hex.EncodeToString(h.Sum(nil))}, f, nil
}

// Walk lists the files to import for the paths given: files as they are,
// directories recursively (hidden files and folders skipped), in a stable
// order.
func Walk(paths []string) ([]string, error) {
	var out []string
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		if !st.IsDir() {
			out = append(out, p)
			continue
		}
		err = filepath.WalkDir(p, func(path string, d os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if path != p && strings.HasPrefix(d.Name(), ".") {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
			if d.Type().IsRegular() {
				out = append(out, path)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}
