package shlhost

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"
	"github.com/phr-project/phr/pkg/share"
)

// FHIRVersion is the fhirVersion the manifest gives application/fhir+json
// files: phr shares FHIR R4 (pkg/fhirdoc builds R4 Bundles, for phrd and
// for the CLI, which uploads them encrypted).
const FHIRVersion = "4.0.1"

// handleManifest answers POST /shl/:id. Each file entry carries its
// status (STU1 puts it on the file, not the manifest): "can-change" for
// L links, whose owner may replace the files, else "finalized"; and
// fhirVersion for FHIR files.
func (h *Host) handleManifest(c echo.Context) error {
	id := c.Param("id")
	if !share.ValidManifestID(id) {
		return ErrNotFound
	}
	if mt, _, err := mime.ParseMediaType(c.Request().Header.Get("Content-Type")); err != nil || mt != "application/json" {
		return ErrUnsupportedMedia
	}
	body, err := io.ReadAll(io.LimitReader(c.Request().Body, h.opts.MaxBody+1))
	var mbe *http.MaxBytesError // a limit of the server in front
	switch {
	case int64(len(body)) > h.opts.MaxBody || errors.As(err, &mbe):
		return &http.MaxBytesError{Limit: h.opts.MaxBody}
	case err != nil:
		return invalidf("cannot read the request body")
	}
	req, err := parseManifestRequest(body)
	if err != nil {
		return &RequestError{Msg: err.Error()}
	}
	now := h.now()
	sh, err := h.store.Access(c.Request().Context(), id, req.Recipient, req.Passcode, now)
	if err != nil {
		return err
	}
	limit := h.opts.EmbedMax
	if req.EmbeddedLengthMax >= 0 {
		limit = req.EmbeddedLengthMax
	}
	m := share.Manifest{Files: make([]share.ManifestFile, 0, len(sh.Files))}
	status := share.StatusFinalized
	if sh.HasFlag(share.FlagLongTerm) {
		status = share.StatusCanChange // the owner may replace the files
	}
	for _, f := range sh.Files {
		mf := share.ManifestFile{ContentType: f.ContentType, Status: status}
		if mt, _, err := mime.ParseMediaType(f.ContentType); err == nil && mt == share.ContentTypeFHIR {
			mf.FHIRVersion = FHIRVersion
		}
		if f.Length <= limit {
			if mf.Embedded, err = h.store.ReadFile(id, f.ID); err != nil {
				return err
			}
		} else {
			tok, err := h.store.LocationToken(id, f.ID, now, h.opts.LocationLifetime)
			if err != nil {
				return err
			}
			mf.Location = h.base + PathPrefix + "/" + id + "/f/" + tok
		}
		m.Files = append(m.Files, mf)
	}
	return c.JSON(http.StatusOK, m)
}

// handleDirect answers GET /shl/:id?recipient=... for U-flag links.
func (h *Host) handleDirect(c echo.Context) error {
	id := c.Param("id")
	recipient := c.QueryParam(share.RecipientParam)
	switch {
	case strings.TrimSpace(recipient) == "":
		return invalidf("the recipient query parameter is required")
	case len(recipient) > maxRecipientBytes:
		return invalidf("the recipient must be at most %d bytes", maxRecipientBytes)
	case !share.ValidManifestID(id):
		return ErrNotFound
	}
	sh, err := h.store.AccessDirect(id, recipient, h.now())
	if err != nil {
		return err
	}
	jwe, err := h.store.ReadFile(id, sh.Files[0].ID)
	if err != nil {
		return err
	}
	return c.Blob(http.StatusOK, share.ContentTypeJOSE, []byte(jwe))
}

// handleFile answers GET /shl/:id/f/:token, a files[].location URL.
func (h *Host) handleFile(c echo.Context) error {
	id := c.Param("id")
	if !share.ValidManifestID(id) {
		return ErrNotFound
	}
	_, jwe, err := h.store.FileByToken(id, c.Param("token"), h.now())
	if err != nil {
		return err
	}
	return c.Blob(http.StatusOK, share.ContentTypeJOSE, []byte(jwe))
}

// manifestRequest is a parsed manifest request body.
type manifestRequest struct {
	Recipient         string // trimmed, not empty
	Passcode          string // "" when absent
	EmbeddedLengthMax int    // -1 when absent
}

// parseManifestRequest reads a manifest request body strictly: exactly one
// JSON object; "recipient" a non-empty string (at most 1024 bytes);
// "passcode" a string (at most 1024 bytes) or absent; "embeddedLengthMax"
// a non-negative integer or absent (null counts as absent); no member
// twice; nothing after the object. Unknown members are ignored, as for
// link payloads, so that receivers following a later version of the
// specification still work.
func parseManifestRequest(body []byte) (manifestRequest, error) {
	req := manifestRequest{EmbeddedLengthMax: -1}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return req, errors.New("the body must be a JSON object")
	}
	seen := map[string]bool{}
	hasRecipient := false
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return req, errors.New("the body is not valid JSON")
		}
		key, _ := tok.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return req, errors.New("the body is not valid JSON")
		}
		switch key {
		case "recipient", "passcode", "embeddedLengthMax":
		default:
			continue
		}
		if seen[key] {
			return req, fmt.Errorf("%q appears more than once", key)
		}
		seen[key] = true
		if string(raw) == "null" {
			continue
		}
		switch key {
		case "recipient":
			if err := json.Unmarshal(raw, &req.Recipient); err != nil {
				return req, errors.New(`"recipient" must be a string`)
			}
			hasRecipient = true
		case "passcode":
			if err := json.Unmarshal(raw, &req.Passcode); err != nil {
				return req, errors.New(`"passcode" must be a string`)
			}
		case "embeddedLengthMax":
			n, err := strconv.ParseInt(string(raw), 10, 64)
			if err != nil || n < 0 {
				return req, errors.New(`"embeddedLengthMax" must be a non-negative integer`)
			}
			req.EmbeddedLengthMax = int(min(n, math.MaxInt32))
		}
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('}') {
		return req, errors.New("the body is not valid JSON")
	}
	if _, err := dec.Token(); err != io.EOF {
		return req, errors.New("the body must hold one JSON object and nothing after it")
	}
	req.Recipient = strings.TrimSpace(req.Recipient)
	switch {
	case !hasRecipient || req.Recipient == "":
		return req, errors.New(`"recipient" is required`)
	case len(req.Recipient) > maxRecipientBytes:
		return req, fmt.Errorf(`"recipient" must be at most %d bytes`, maxRecipientBytes)
	case len(req.Passcode) > maxPasscodeBytes:
		return req, fmt.Errorf(`"passcode" must be at most %d bytes`, maxPasscodeBytes)
	}
	return req, nil
}
