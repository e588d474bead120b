package server

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"path"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/labstack/echo/v4"
	"github.com/phr-project/phr/pkg/importers/pipeline"
	"github.com/phr-project/phr/pkg/importers/qrimage"
	"github.com/phr-project/phr/pkg/importers/shlink"
	"github.com/phr-project/phr/pkg/record"
	"github.com/phr-project/phr/pkg/server/api"
	"github.com/phr-project/phr/pkg/share"
	"github.com/phr-project/phr/pkg/vault"
)

// maxFormField bounds the small form fields of an upload.
const maxFormField = 256

// createImport takes a multipart upload (field "file", and optional
// "format", "partial", "dry_run"), spools the file to DATA/tmp (0600,
// under a random name: the client's file name is never a path; sealed
// under a key held in memory only: see spool), and runs it through the
// importers like `phr import`. Instead of a file, the field "link" may
// hold a SMART Health Link (with "passcode" and "recipient" when needed):
// phrd fetches it, from public addresses only (see linkClient), and
// imports each of its files; so it does with a link in an uploaded QR
// code image.
func (s *Server) createImport(c echo.Context) error {
	req := c.Request()
	mt, _, _ := mime.ParseMediaType(req.Header.Get("Content-Type"))
	if mt != "multipart/form-data" {
		return newError(http.StatusUnsupportedMediaType, api.CodeUnsupportedType, "send the file as multipart/form-data in the field \"file\"")
	}
	// Uploads may take longer than the server's default timeouts: the
	// upload gets ImportTimeout to arrive, and the answer the usual write
	// timeout after that (so that a too slow upload still hears 408).
	rc := http.NewResponseController(c.Response())
	deadline := time.Now().Add(s.cfg.ImportTimeout)
	_ = rc.SetReadDeadline(deadline)
	_ = rc.SetWriteDeadline(deadline.Add(s.cfg.WriteTimeout))
	// limitBody cut the body at MaxImportBytes.
	mr, err := req.MultipartReader()
	if err != nil {
		return badRequest("not a multipart body")
	}
	var (
		tmp      *spool
		name     string
		opts     pipeline.Options
		gotFile  bool
		spoolErr error
		link     linkFields
	)
	defer func() {
		if tmp != nil {
			tmp.Close()
		}
	}()
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) || errors.Is(err, os.ErrDeadlineExceeded) {
				return err
			}
			return badRequest("malformed multipart body")
		}
		switch field := p.FormName(); field {
		case "file":
			if gotFile {
				return badRequest("file: send one file per request")
			}
			gotFile = true
			name = uploadName(p.FileName())
			if tmp, err = newSpool(s.data.tmp); err != nil {
				return err
			}
			if _, err := io.Copy(tmp, p); err != nil {
				spoolErr = err
			}
		case "link", "passcode", "recipient":
			if err := link.read(field, p); err != nil {
				return err
			}
		case "format", "partial", "dry_run", "accept_patient_mismatch":
			b, err := io.ReadAll(io.LimitReader(p, maxFormField+1))
			if err != nil {
				return err
			}
			if len(b) > maxFormField {
				return badRequest("%s: too long", field)
			}
			val := strings.TrimSpace(string(b))
			switch field {
			case "format":
				opts.Format = val
			case "partial":
				if opts.Partial, err = strconv.ParseBool(val); err != nil {
					return badRequest("partial: must be true or false")
				}
			case "dry_run":
				if opts.DryRun, err = strconv.ParseBool(val); err != nil {
					return badRequest("dry_run: must be true or false")
				}
			case "accept_patient_mismatch":
				if opts.AcceptPatientMismatch, err = strconv.ParseBool(val); err != nil {
					return badRequest("accept_patient_mismatch: must be true or false")
				}
			}
		default:
			return badRequest("unknown form field %q (file or link, format, partial, dry_run, accept_patient_mismatch, passcode, recipient)", truncate(field, 40))
		}
		p.Close()
		if spoolErr != nil {
			return spoolErr
		}
	}
	if gotFile && link.link != "" {
		return badRequest("send a file or a link, not both")
	}
	if link.link != "" {
		return s.importLinks(c, []string{link.link}, link, opts)
	}
	if !gotFile {
		return badRequest("file: missing (multipart field \"file\", or \"link\")")
	}
	if opts.Format != "" && opts.Format != "auto" {
		if _, ok := s.cfg.Importers.Lookup(opts.Format); !ok {
			return badRequest("format: unknown (formats: %s)", strings.Join(s.cfg.Importers.Names(), ", "))
		}
	}
	if err := tmp.finish(); err != nil {
		return err
	}
	in := tmp.input(name)
	sess := sessionOf(c)
	rep, err := pipeline.Import(req.Context(), s.cfg.Importers, sess.acct.v, in, opts)
	if le := (*qrimage.LinkError)(nil); errors.As(err, &le) {
		return s.importLinks(c, le.Links, link, opts)
	}
	entry := vault.AuditEntry{Event: AuditImport, Success: err == nil, Format: rep.Format,
		Counts: map[string]int{"added": rep.Added, "updated": rep.Updated, "duplicates": rep.Duplicates, "skipped": rep.Skipped, "failed": rep.Failed}}
	if opts.DryRun {
		entry.Label = "dry-run"
	}
	s.audit(sess.acct.id, sess.acct.v, entry)
	if err != nil {
		if errors.Is(err, req.Context().Err()) && req.Context().Err() != nil {
			return err
		}
		// The report says why (its error may quote the file: it goes to
		// the owner only, never to the log).
		msg := rep.Error
		if msg == "" {
			msg = "the file could not be imported"
		}
		if errors.Is(err, pipeline.ErrPatientMismatch) {
			// Another person's file: 409, and the client may send it
			// again with accept_patient_mismatch=true.
			return c.JSON(http.StatusConflict, api.ImportResult{Files: []*api.ImportReport{importReport(rep)}, Error: &api.Error{Code: api.CodePatientMismatch, Message: msg}})
		}
		return c.JSON(http.StatusUnprocessableEntity, api.ImportResult{Files: []*api.ImportReport{importReport(rep)}, Error: &api.Error{Code: api.CodeImportFailed, Message: msg}})
	}
	status := http.StatusCreated
	if opts.DryRun {
		status = http.StatusOK
	}
	return c.JSON(status, api.ImportResult{Files: []*api.ImportReport{importReport(rep)}})
}

// linkFields are the form fields of a link import.
type linkFields struct{ link, passcode, recipient string }

// read reads one of them, within its bound.
func (l *linkFields) read(field string, p io.Reader) error {
	limit := map[string]int{"link": share.MaxLinkLength, "passcode": share.MaxPasscodeLength, "recipient": 1024}[field]
	b, err := io.ReadAll(io.LimitReader(p, int64(limit)+1))
	if err != nil {
		return err
	}
	if len(b) > limit {
		return badRequest("%s: at most %d bytes", field, limit)
	}
	switch v := string(b); field {
	case "link":
		l.link = strings.TrimSpace(v)
		if !shlink.IsLink(l.link) {
			return badRequest("link: not a SMART Health Link (shlink:/... or a viewer URL ending in #shlink:/...)")
		}
	case "passcode":
		l.passcode = v
	case "recipient":
		l.recipient = strings.TrimSpace(v)
	}
	return nil
}

// linkClient is the client phrd fetches links with: public addresses
// only, unless Config.AllowPrivateLinks (tests) says otherwise. A link
// comes from a user, and must not make phrd request its own network.
func (s *Server) linkClient() *http.Client {
	return share.NewReceiverClient(!s.cfg.AllowPrivateLinks)
}

// importLinks fetches links and imports their files, answering as
// createImport does: 201 (200 for a dry run) with a report per file, 409
// for a file about another person, 422 when anything failed.
func (s *Server) importLinks(c echo.Context, links []string, f linkFields, opts pipeline.Options) error {
	ctx := c.Request().Context()
	sess := sessionOf(c)
	var reports []*pipeline.Report
	var first error
	for _, l := range links {
		reps, err := shlink.Receive(ctx, sess.acct.v, l, shlink.Options{
			Recipient: f.recipient,
			Passcode:  func() (string, error) { return f.passcode, nil },
			Client:    s.linkClient(),
			Import:    opts,
		})
		reports = append(reports, reps...)
		if err != nil && first == nil {
			first = err
		}
	}
	entry := vault.AuditEntry{Event: AuditImport, Success: first == nil, Format: shlink.Format, Counts: map[string]int{}}
	for _, r := range reports {
		for k, n := range map[string]int{"added": r.Added, "updated": r.Updated, "duplicates": r.Duplicates, "skipped": r.Skipped, "failed": r.Failed} {
			entry.Counts[k] += n
		}
	}
	if opts.DryRun {
		entry.Label = "dry-run"
	}
	s.audit(sess.acct.id, sess.acct.v, entry)
	if first != nil {
		if errors.Is(first, ctx.Err()) && ctx.Err() != nil {
			return first
		}
		// The reports say why; they go to the owner only, never to the log.
		msg := first.Error()
		for _, r := range reports {
			if r.Error != "" {
				msg = r.Error
				break
			}
		}
		if errors.Is(first, pipeline.ErrPatientMismatch) {
			return c.JSON(http.StatusConflict, api.ImportResult{Files: importReports(reports), Error: &api.Error{Code: api.CodePatientMismatch, Message: msg}})
		}
		return c.JSON(http.StatusUnprocessableEntity, api.ImportResult{Files: importReports(reports), Error: &api.Error{Code: api.CodeImportFailed, Message: msg}})
	}
	status := http.StatusCreated
	if opts.DryRun {
		status = http.StatusOK
	}
	return c.JSON(status, api.ImportResult{Files: importReports(reports)})
}

// uploadName is the name reports and provenance show for an upload: the
// base name the client gave, cleaned, or "upload". It is never used as a
// path.
func uploadName(n string) string {
	n = strings.ReplaceAll(n, "\\", "/")
	n = path.Base(n)
	if n == "." || n == "/" || n == ".." || !utf8.ValidString(n) {
		return "upload"
	}
	n = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, n)
	return truncate(n, 200)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// ingest stores a batch of device readings as Observations, in one
// transaction: all of them, or none if any reading is invalid.
func (s *Server) ingest(c echo.Context) error {
	var req api.IngestRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	dev := strings.TrimSpace(req.Device)
	if dev == "" || len(dev) > 200 || !utf8.ValidString(dev) {
		return &record.InputError{Field: "device", Msg: "must name the device (1-200 bytes)"}
	}
	if len(req.Readings) == 0 {
		return &record.InputError{Field: "readings", Msg: "must not be empty"}
	}
	if len(req.Readings) > s.cfg.MaxIngestReadings {
		return &record.InputError{Field: "readings", Msg: fmt.Sprintf("at most %d per request", s.cfg.MaxIngestReadings)}
	}
	v := vaultOf(c)
	cm := record.Common{Now: s.cfg.Now(), Author: dev, IDs: v.IDs()}
	if pat, err := v.Patient(); err == nil {
		cm.Subject = "Patient/" + pat.ID
	}
	recs := make([]record.Record, len(req.Readings))
	for i, rd := range req.Readings {
		r, err := buildReading(cm, rd)
		if err != nil {
			var ie *record.InputError
			if errors.As(err, &ie) {
				return &record.InputError{Field: fmt.Sprintf("readings[%d].%s", i, ie.Field), Msg: ie.Msg}
			}
			return err
		}
		r.Provenance = record.Provenance{Method: record.MethodDevice, Author: dev, System: dev, OriginalID: rd.ID}
		recs[i] = r
	}
	res, err := v.Add(recs)
	if err != nil {
		return err
	}
	out := api.IngestResult{Results: make([]api.ReadingResult, len(res))}
	for i, r := range res {
		out.Results[i] = api.ReadingResult{ID: req.Readings[i].ID, RecordID: r.ID, Duplicate: r.Duplicate, Updated: r.Updated}
		switch {
		case r.Duplicate:
			out.Duplicates++
		case r.Updated:
			out.Updated++
		default:
			out.Added++
		}
	}
	return c.JSON(http.StatusOK, out)
}
