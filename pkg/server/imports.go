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
	"github.com/phr-project/phr/pkg/importers"
	"github.com/phr-project/phr/pkg/record"
	"github.com/phr-project/phr/pkg/server/api"
	"github.com/phr-project/phr/pkg/vault"
)

// maxFormField bounds the small form fields of an upload.
const maxFormField = 256

// createImport takes a multipart upload (field "file", and optional
// "format", "partial", "dry_run"), spools the file to DATA/tmp (0600,
// under a random name: the client's file name is never a path), and runs
// it through the importers like `phr import`.
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
		tmp      *os.File
		name     string
		opts     importers.Options
		gotFile  bool
		spoolErr error
	)
	defer func() {
		if tmp != nil {
			tmp.Close()
			os.Remove(tmp.Name())
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
			if tmp, err = os.CreateTemp(s.data.tmp, "upload-*"); err != nil {
				return err
			}
			if _, err := io.Copy(tmp, p); err != nil {
				spoolErr = err
			}
		case "format", "partial", "dry_run":
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
			}
		default:
			return badRequest("unknown form field %q (file, format, partial, dry_run)", truncate(field, 40))
		}
		p.Close()
		if spoolErr != nil {
			return spoolErr
		}
	}
	if !gotFile {
		return badRequest("file: missing (multipart field \"file\")")
	}
	if opts.Format != "" && opts.Format != "auto" {
		if _, ok := s.cfg.Importers.Lookup(opts.Format); !ok {
			return badRequest("format: unknown (formats: %s)", strings.Join(s.cfg.Importers.Names(), ", "))
		}
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	in, f, err := importers.OpenFile(tmp.Name())
	if err != nil {
		return err
	}
	defer f.Close()
	in.Name = name
	sess := sessionOf(c)
	rep, err := importers.Import(req.Context(), s.cfg.Importers, sess.acct.v, in, opts)
	entry := vault.AuditEntry{Event: AuditImport, Success: err == nil, Format: rep.Format,
		Counts: map[string]int{"added": rep.Added, "duplicates": rep.Duplicates, "skipped": rep.Skipped, "failed": rep.Failed}}
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
		return c.JSON(http.StatusUnprocessableEntity, api.ImportResult{Files: []*importers.Report{rep}, Error: &api.Error{Code: api.CodeImportFailed, Message: msg}})
	}
	status := http.StatusCreated
	if opts.DryRun {
		status = http.StatusOK
	}
	return c.JSON(status, api.ImportResult{Files: []*importers.Report{rep}})
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
	if id, err := v.Setting(settingPatient); err == nil && len(id) > 0 {
		cm.Subject = "Patient/" + string(id)
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
		out.Results[i] = api.ReadingResult{ID: req.Readings[i].ID, RecordID: r.ID, Duplicate: r.Duplicate}
		if r.Duplicate {
			out.Duplicates++
		} else {
			out.Added++
		}
	}
	return c.JSON(http.StatusOK, out)
}
