// Package shlink imports SMART Health Links that others made: a clinic's
// visit record, a lab's results, another phr's share. Receive fetches the
// link's files as its recipient (share.Retrieve), decrypts every one of
// them, and imports each through the usual pipeline (pipeline.Import):
// SMART Health Cards with the shc importer (signatures verified when
// issuer keys are given), FHIR resources and Bundles with the fhir
// importer, so deduplication, the patient identity check and provenance
// work as for a file.
//
// The package guarantees:
//   - nothing is imported unless every file of the link was fetched and
//     decrypted: a link with one tampered, missing or oversized file adds
//     nothing; each file is then imported whole or not at all, like a file
//     of a folder, and has its own report;
//   - a file's provenance names the link: Provenance.File is the link's
//     label and host ("Visit of 2 March (ehr.example.org)", with "file 2
//     of 3" when the link has several), Provenance.FileSHA256 the SHA-256
//     of the decrypted file, and Provenance.System, when the file itself
//     names no source (meta.source, a card's issuer), the link's host;
//   - links are https, except on loopback hosts; expired links and P
//     links without a passcode are refused before any request; the
//     passcode is asked for (Options.Passcode) only for P links;
//   - what is read is bounded (share.Retrieve's limits, MaxFileSize and
//     MaxTotalSize), and errors never contain the link, its key, its
//     label or the passcode.
//
// SMART API access files (application/smart-api-access) are reported as
// skipped: phr does not call FHIR APIs; so are files the manifest marks
// "no-longer-valid".
package shlink

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/phr-project/phr/pkg/importers"
	"github.com/phr-project/phr/pkg/importers/fhir"
	"github.com/phr-project/phr/pkg/importers/pipeline"
	"github.com/phr-project/phr/pkg/importers/shc"
	"github.com/phr-project/phr/pkg/record"
	"github.com/phr-project/phr/pkg/share"
)

// Limits on a link's files (docs/formats/shl.md).
const (
	// MaxFileSize is the largest decrypted file: 64 MiB, as
	// share.DefaultMaxPlaintext.
	MaxFileSize = share.DefaultMaxPlaintext
	// MaxTotalSize is the most all files of a link may hold together,
	// decrypted: 128 MiB. Every file is decrypted before any is imported.
	MaxTotalSize = share.DefaultMaxRetrieved
)

// DefaultRecipient is the recipient a manifest request names when
// neither Options.Recipient nor the vault's owner gives a name.
const DefaultRecipient = "phr user"

// Options control Receive.
type Options struct {
	// Recipient names who asks (the link's owner sees it). Empty: the
	// vault owner's name, else DefaultRecipient.
	Recipient string
	// Passcode returns the passcode of a P link; it is called only for
	// those. Nil, a P link fails with share.ErrPasscodeRequired.
	Passcode func() (string, error)
	// Client makes the requests; nil means share.NewReceiverClient(false).
	Client *http.Client
	// EmbeddedLengthMax, when positive, asks for longer files by location.
	EmbeddedLengthMax int
	// MaxFileSize and MaxTotalSize lower the limits (tests); 0 means
	// the package's.
	MaxFileSize, MaxTotalSize int64
	// Import are the options of each file's import (dry run, partial,
	// group, patient mismatch, Importer options such as issuer keys).
	// Its Format is ignored: the file's content type decides.
	Import pipeline.Options
	// Now replaces time.Now (tests).
	Now func() time.Time
}

// Format is the name reports give a link that failed before any of its
// files was read.
const Format = "shlink"

// IsLink reports whether s is meant as a SMART Health Link rather than a
// file name: a bare "shlink:/..." or a viewer URL whose fragment holds
// one. It does not validate the link (share.Decode does).
func IsLink(s string) bool { return share.IsLink(s) }

// Name is how reports and provenance name a link: its label (or "SMART
// Health Link") and its host, never its path or key. A "/" in the label
// becomes "-" (provenance keeps a base name).
func Name(p share.Payload) string {
	label := p.Label
	if label == "" {
		label = "SMART Health Link"
	}
	return strings.NewReplacer("/", "-", "\\", "-").Replace(label) + " (" + host(p) + ")"
}

func host(p share.Payload) string {
	u, err := url.Parse(p.URL)
	if err != nil {
		return "?"
	}
	return u.Host
}

// Receive fetches the link's files and imports each into store. It
// returns one report per file; when the link itself fails (refused,
// expired, unreachable, a file that does not decrypt), one report named
// after the link, with the error. The error is the first failure.
func Receive(ctx context.Context, store pipeline.Store, link string, o Options) ([]*pipeline.Report, error) {
	p, err := share.Decode(link)
	if err != nil {
		return failed("SMART Health Link", err)
	}
	name := Name(p)
	files, err := retrieve(ctx, store, p, o)
	if err != nil {
		return failed(name, err)
	}
	var reports []*pipeline.Report
	var first error
	for i, f := range files.Files {
		fname := name
		if len(files.Files) > 1 {
			fname = fmt.Sprintf("%s, file %d of %d", name, i+1, len(files.Files))
		}
		rep, err := importFile(ctx, store, f, fname, host(p), o.Import)
		reports = append(reports, rep)
		if err != nil && first == nil {
			first = err
		}
		if errors.Is(err, context.Canceled) {
			break
		}
	}
	return reports, first
}

func failed(name string, err error) ([]*pipeline.Report, error) {
	return []*pipeline.Report{{File: name, Format: Format, Error: err.Error(), ByType: map[string]*pipeline.Counts{}}}, err
}

// retrieve asks for the passcode if the link needs one and fetches the
// files.
func retrieve(ctx context.Context, store pipeline.Store, p share.Payload, o Options) (*share.Retrieved, error) {
	ro := share.RetrieveOptions{
		Recipient:         o.Recipient,
		Client:            o.Client,
		EmbeddedLengthMax: o.EmbeddedLengthMax,
		MaxFileSize:       o.MaxFileSize,
		MaxTotalSize:      o.MaxTotalSize,
		Now:               o.Now,
	}
	if ro.Recipient == "" {
		ro.Recipient = DefaultRecipient
		if owner, err := store.Patient(); err == nil && strings.TrimSpace(owner.Display) != "" {
			ro.Recipient = owner.Display
		}
	}
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}
	// Ask for a passcode only when it can be used: not for an expired
	// link (Retrieve says so without a request).
	if p.HasFlag(share.FlagPasscode) && o.Passcode != nil && (p.Exp == 0 || now().Unix() < p.Exp) {
		pc, err := o.Passcode()
		if err != nil {
			return nil, err
		}
		ro.Passcode = pc
	}
	return share.Retrieve(ctx, p, ro)
}

// importFile imports one decrypted file through the pipeline.
func importFile(ctx context.Context, store pipeline.Store, f share.RetrievedFile, name, system string, opts pipeline.Options) (*pipeline.Report, error) {
	sum := sha256.Sum256(f.Data)
	in := &importers.Input{Name: name, R: bytes.NewReader(f.Data), ReaderAt: bytes.NewReader(f.Data), Size: int64(len(f.Data)), SHA256: hex.EncodeToString(sum[:])}
	if f.Status == share.StatusNoLongerValid {
		// The sender withdrew the file ("no-longer-valid", a manifest
		// file's status in STU1): its records are not imported as if
		// they held.
		return &pipeline.Report{File: name, Format: f.ContentType, SHA256: in.SHA256, Skipped: 1,
			ByType: map[string]*pipeline.Counts{}, DryRun: opts.DryRun,
			Skips: []pipeline.SkipNote{{ResourceType: "(file)", Reason: "the sender marked this file no longer valid", Count: 1}}}, nil
	}
	reg := &importers.Registry{}
	switch f.ContentType {
	case share.ContentTypeSHC:
		reg.Register(withSystem{shc.New(), system})
	case share.ContentTypeFHIR:
		reg.Register(withSystem{fhir.New(), system})
	case "":
		// A U link's file without cty: its content decides.
		reg.Register(withSystem{shc.New(), system})
		reg.Register(withSystem{fhir.New(), system})
	default:
		// application/smart-api-access: an access token to a FHIR API.
		return &pipeline.Report{File: name, Format: f.ContentType, SHA256: in.SHA256, Skipped: 1,
			ByType: map[string]*pipeline.Counts{}, DryRun: opts.DryRun,
			Skips: []pipeline.SkipNote{{ResourceType: "(file)", Reason: "a SMART API access token: phr does not call FHIR APIs", Count: 1}}}, nil
	}
	opts.Format = ""
	opts.Progress = nil
	return pipeline.Import(ctx, reg, store, in, opts)
}

// withSystem names the link's host as the source of records whose file
// names none.
type withSystem struct {
	importers.Importer
	system string
}

func (w withSystem) Import(ctx context.Context, in *importers.Input, sink importers.Sink) error {
	return w.Importer.Import(ctx, in, systemSink{sink, w.system})
}

type systemSink struct {
	importers.Sink
	system string
}

func (s systemSink) Record(r record.Record) error {
	if r.Provenance.System == "" {
		r.Provenance.System = s.system
	}
	return s.Sink.Record(r)
}
