package server

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/labstack/echo/v4"
	"github.com/phr-project/phr/pkg/record"
	"github.com/phr-project/phr/pkg/server/api"
	"github.com/phr-project/phr/pkg/vault"
)

const (
	defaultLimit = 100
	maxLimit     = 1000
)

func parseLimit(c echo.Context) (int, error) {
	q := c.QueryParam("limit")
	if q == "" {
		return defaultLimit, nil
	}
	n, err := strconv.Atoi(q)
	if err != nil || n < 1 || n > maxLimit {
		return 0, badRequest("limit: must be a whole number from 1 to %d", maxLimit)
	}
	return n, nil
}

// A records cursor names where the next page starts: the vault's sealed
// cursor of the last record given ("c:" + it), which shows nothing of
// the record and costs nothing to resume from, however deep the page;
// or, as servers before it gave out, the page's offset ("o:" + n),
// still taken. Either is base64url-encoded, so that clients treat it as
// opaque.
func encodeCursor(vaultCursor string) string {
	return base64.RawURLEncoding.EncodeToString([]byte("c:" + vaultCursor))
}

func decodeCursor(s string) (off int, vaultCursor string, err error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err == nil {
		if rest, ok := strings.CutPrefix(string(b), "o:"); ok {
			if n, err := strconv.Atoi(rest); err == nil && n >= 0 {
				return n, "", nil
			}
		}
		if rest, ok := strings.CutPrefix(string(b), "c:"); ok && rest != "" {
			return 0, rest, nil
		}
	}
	return 0, "", badRequest("cursor: not a cursor this server gave out")
}

func (s *Server) parseWhen(field, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	t, err := record.ParseWhen(v, s.cfg.Now())
	if err != nil {
		return time.Time{}, &record.InputError{Field: field, Msg: strings.TrimPrefix(err.Error(), ": ")}
	}
	return t, nil
}

func (s *Server) listRecords(c echo.Context) error {
	var q vault.Query
	var err error
	if t := c.QueryParam("type"); t != "" {
		for _, k := range strings.Split(t, ",") {
			if k = record.NormalizeKind(k); k != "" {
				q.Kinds = append(q.Kinds, k)
			}
		}
	}
	if q.Since, err = s.parseWhen("since", c.QueryParam("since")); err != nil {
		return err
	}
	if q.Until, err = s.parseWhen("until", c.QueryParam("until")); err != nil {
		return err
	}
	q.Text = c.QueryParam("q")
	q.Source = c.QueryParam("source")
	limit, err := parseLimit(c)
	if err != nil {
		return err
	}
	off, after := 0, ""
	if cur := c.QueryParam("cursor"); cur != "" {
		if off, after, err = decodeCursor(cur); err != nil {
			return err
		}
	}
	// The page and one more record, to know whether there is a next
	// page; records stream from the listing index, none held but the
	// page's.
	q.Limit = off + limit + 1
	page := make([]record.Record, 0, limit+1)
	skip := off
	v := vaultOf(c)
	_, err = v.EachAfter(q, after, func(r record.Record) error {
		if skip > 0 {
			skip--
			return nil
		}
		page = append(page, r)
		return nil
	})
	if errors.Is(err, vault.ErrCursor) {
		return badRequest("cursor: not a cursor this server gave out")
	}
	if err != nil {
		return err
	}
	next := ""
	if len(page) > limit {
		page = page[:limit]
		next = encodeCursor(v.Cursor(&page[limit-1])) // resume after the page's last record
	}
	return c.JSONBlob(http.StatusOK, encodeRecordList(page, next))
}

// encodeRecordList writes the api.RecordList JSON of page by hand: the
// resources go in as stored (the vault keeps only JSON that parsed), so
// that the encoder does not re-validate and re-compact every resource,
// which was most of the cost of a listing.
func encodeRecordList(page []record.Record, next string) []byte {
	n := 32
	for i := range page {
		n += len(page[i].Resource) + 256
	}
	b := bytes.NewBuffer(make([]byte, 0, n))
	b.WriteString(`{"records":[`)
	for i := range page {
		if i > 0 {
			b.WriteByte(',')
		}
		appendSummary(b, page[i].Summarize())
		b.WriteString(`,"resource":`)
		if len(page[i].Resource) == 0 {
			b.WriteString("null")
		} else {
			b.Write(page[i].Resource)
		}
		b.WriteByte('}')
	}
	b.WriteByte(']')
	if next != "" {
		nj, _ := json.Marshal(next)
		b.WriteString(`,"next_cursor":`)
		b.Write(nj)
	}
	b.WriteString("}\n")
	return b.Bytes()
}

func etag(r record.Record) string { return `"v` + strconv.FormatUint(r.Version, 10) + `"` }

// parseETag reads an If-Match value: "v<version>" (or W/"v<version>"), or
// "*" for any version (returned as 0).
func parseETag(h string) (uint64, error) {
	h = strings.TrimSpace(h)
	if h == "*" {
		return 0, nil
	}
	h = strings.TrimPrefix(h, "W/")
	if len(h) > 3 && h[0] == '"' && h[1] == 'v' && h[len(h)-1] == '"' {
		digits := h[2 : len(h)-1]
		if n, err := strconv.ParseUint(digits, 10, 64); err == nil && n > 0 && strconv.FormatUint(n, 10) == digits {
			return n, nil
		}
	}
	return 0, newError(http.StatusPreconditionFailed, api.CodePreconditionFailed, `If-Match: not an ETag of this API ("v<version>")`)
}

// recordID reads the :id parameter. Anything not shaped like an ID is
// simply not found.
func recordID(c echo.Context) (string, error) {
	id := c.Param("id")
	if !record.ValidID(id) {
		return "", vault.ErrNotFound
	}
	return id, nil
}

func sendRecord(c echo.Context, status int, r record.Record) error {
	c.Response().Header().Set("ETag", etag(r))
	return c.JSON(status, r)
}

func (s *Server) getRecord(c echo.Context) error {
	id, err := recordID(c)
	if err != nil {
		return err
	}
	r, err := vaultOf(c).Get(id)
	if err != nil {
		return err
	}
	if r.Deleted {
		return vault.ErrDeleted
	}
	if inm := c.Request().Header.Get("If-None-Match"); inm != "" && strings.TrimPrefix(strings.TrimSpace(inm), "W/") == etag(r) {
		c.Response().Header().Set("ETag", etag(r))
		return c.NoContent(http.StatusNotModified)
	}
	return sendRecord(c, http.StatusOK, r)
}

func (s *Server) createRecord(c echo.Context) error {
	body, err := readJSON(c)
	if err != nil {
		return err
	}
	if len(body) == 0 || body[0] != '{' {
		return badRequest("the body must be a JSON object: a FHIR resource or a log entry")
	}
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(body, &keys); err != nil {
		return badRequest("the body must be a JSON object")
	}
	_, isFHIR := keys["resourceType"]
	_, isLog := keys["log"]
	v := vaultOf(c)
	var r record.Record
	switch {
	case isFHIR && isLog:
		return badRequest("give a FHIR resource (resourceType) or a log entry (log), not both")
	case isFHIR:
		res, err := record.Parse(body)
		if err != nil {
			return err
		}
		if err := record.CheckDates(res); err != nil {
			return err
		}
		if r, err = record.NewParsed(body, res, record.Provenance{Method: record.MethodSelf, Author: "app"}); err != nil {
			return err
		}
	case isLog:
		if r, err = s.buildLogEntry(v, body, keys); err != nil {
			return err
		}
	default:
		return badRequest("give a FHIR resource (with resourceType) or a log entry (with log)")
	}
	res, err := v.Put(r)
	if err != nil {
		return err
	}
	stored, err := v.Get(res.ID)
	if err != nil {
		return err
	}
	c.Response().Header().Set("Location", "/api/v1/records/"+stored.ID)
	return sendRecord(c, http.StatusCreated, stored)
}

// logFields are the fields each shorthand takes (besides "log").
var logFields = map[string][]string{
	"med":          {"name", "dose", "frequency", "start", "stop", "reason", "note"},
	"dose":         {"name", "amount", "at", "note"},
	"symptom":      {"name", "severity", "at", "note"},
	"vital":        {"kind", "value", "at"},
	"condition":    {"name", "onset", "note"},
	"allergy":      {"substance", "reaction", "severity", "criticality", "note"},
	"immunization": {"vaccine", "date", "note"},
	"note":         {"text", "at"},
}

var logAliases = map[string]string{"medication": "med", "vaccine": "immunization"}

func (s *Server) buildLogEntry(v *vault.Vault, body []byte, keys map[string]json.RawMessage) (record.Record, error) {
	var e api.LogEntry
	d := json.NewDecoder(bytes.NewReader(body))
	d.DisallowUnknownFields()
	if err := d.Decode(&e); err != nil {
		return record.Record{}, jsonError(err)
	}
	kind := strings.ToLower(strings.TrimSpace(e.Log))
	if a, ok := logAliases[kind]; ok {
		kind = a
	}
	allowed, ok := logFields[kind]
	if !ok {
		return record.Record{}, &record.InputError{Field: "log", Msg: "must be one of med, dose, symptom, vital, condition, allergy, immunization, note"}
	}
	for k := range keys {
		if k != "log" && !contains(allowed, k) {
			return record.Record{}, &record.InputError{Field: k, Msg: "does not apply to log " + kind + " (it takes " + strings.Join(allowed, ", ") + ")"}
		}
	}
	c := record.Common{Now: s.cfg.Now()}
	if pat, err := v.Patient(); err == nil {
		c.Subject = "Patient/" + pat.ID
	}
	var err error
	when := func(field, val string) time.Time {
		if err != nil {
			return time.Time{}
		}
		var t time.Time
		t, err = s.parseWhen(field, val)
		return t
	}
	switch kind {
	case "med":
		m := record.Medication{Name: e.Name, Dose: e.Dose, Frequency: e.Frequency, Reason: e.Reason, Note: e.Note,
			Start: when("start", e.Start), Stop: when("stop", e.Stop)}
		if err != nil {
			return record.Record{}, err
		}
		return record.NewMedication(c, m)
	case "dose":
		d := record.Dose{Name: e.Name, Amount: e.Amount, Note: e.Note, At: when("at", e.At)}
		if err != nil {
			return record.Record{}, err
		}
		return record.NewDose(c, d)
	case "symptom":
		sy := record.Symptom{Name: e.Name, Note: e.Note, Severity: -1, At: when("at", e.At)}
		if err != nil {
			return record.Record{}, err
		}
		if len(e.Severity) > 0 && string(e.Severity) != "null" {
			n, perr := strconv.Atoi(strings.Trim(string(e.Severity), `"`))
			if perr != nil || n < 0 || n > 10 {
				return record.Record{}, &record.InputError{Field: "severity", Msg: "must be a whole number from 0 to 10"}
			}
			sy.Severity = n
		}
		return record.NewSymptom(c, sy)
	case "vital":
		at := when("at", e.At)
		if err != nil {
			return record.Record{}, err
		}
		if strings.TrimSpace(e.Kind) == "" {
			return record.Record{}, &record.InputError{Field: "kind", Msg: "must be one of " + strings.Join(record.VitalKinds, ", ")}
		}
		vt, err := record.ParseVital(e.Kind, e.Value)
		if err != nil {
			return record.Record{}, err
		}
		return record.NewVital(c, vt, at)
	case "condition":
		onset := when("onset", e.Onset)
		if err != nil {
			return record.Record{}, err
		}
		return record.NewCondition(c, e.Name, onset, e.Note)
	case "allergy":
		al := record.Allergy{Substance: e.Substance, Reaction: e.Reaction, Criticality: e.Criticality, Note: e.Note}
		if len(e.Severity) > 0 && string(e.Severity) != "null" {
			if err := json.Unmarshal(e.Severity, &al.Severity); err != nil {
				return record.Record{}, &record.InputError{Field: "severity", Msg: "must be mild, moderate or severe"}
			}
		}
		return record.NewAllergy(c, al)
	case "immunization":
		date := when("date", e.Date)
		if err != nil {
			return record.Record{}, err
		}
		return record.NewImmunization(c, e.Vaccine, date, e.Note)
	default: // note
		at := when("at", e.At)
		if err != nil {
			return record.Record{}, err
		}
		return record.NewNote(c, e.Text, at)
	}
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

func (s *Server) putRecord(c echo.Context) error {
	id, err := recordID(c)
	if err != nil {
		return err
	}
	im := c.Request().Header.Get("If-Match")
	if im == "" {
		return newError(http.StatusPreconditionRequired, api.CodePreconditionNeeded, `If-Match is required: send the ETag ("v<version>") of the version you edited`)
	}
	ver, err := parseETag(im)
	if err != nil {
		return err
	}
	body, err := readJSON(c)
	if err != nil {
		return err
	}
	res, err := record.Parse(body)
	if err != nil {
		return err
	}
	v := vaultOf(c)
	old, err := v.Get(id)
	if err != nil {
		return err
	}
	if old.Deleted {
		return vault.ErrDeleted
	}
	if res.Type() != old.ResourceType {
		return &record.InputError{Field: "resourceType", Msg: "must stay " + old.ResourceType}
	}
	if err := record.CheckDates(res); err != nil {
		return err
	}
	old.Resource = body
	updated, err := v.Update(old, ver)
	if err != nil {
		return err
	}
	return sendRecord(c, http.StatusOK, updated)
}

func (s *Server) deleteRecord(c echo.Context) error {
	id, err := recordID(c)
	if err != nil {
		return err
	}
	var ver uint64
	if im := c.Request().Header.Get("If-Match"); im != "" {
		if ver, err = parseETag(im); err != nil {
			return err
		}
	}
	if err := vaultOf(c).Delete(id, ver); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (s *Server) listChanges(c echo.Context) error {
	var since uint64
	if q := c.QueryParam("since"); q != "" {
		n, err := strconv.ParseUint(q, 10, 64)
		if err != nil {
			return badRequest("since: must be a change sequence number (0 or more)")
		}
		since = n
	}
	limit, err := parseLimit(c)
	if err != nil {
		return err
	}
	changes, _, err := vaultOf(c).Changes(since, limit+1)
	if err != nil {
		return err
	}
	out := api.Changes{Changes: []api.Change{}, Next: since}
	if len(changes) > limit {
		changes, out.More = changes[:limit], true
	}
	for i := range changes {
		ch := api.Change{Seq: changes[i].Seq, ID: changes[i].Record.ID, Deleted: changes[i].Record.Deleted}
		if !ch.Deleted {
			ch.Record = &changes[i].Record
		}
		out.Changes = append(out.Changes, ch)
		out.Next = ch.Seq
	}
	return c.JSON(http.StatusOK, out)
}

// appendSummary writes the JSON of a record.Summary without its closing
// brace, the way encoding/json would (same keys, same escaping).
func appendSummary(b *bytes.Buffer, s record.Summary) {
	field := func(name, v string, first bool) {
		if !first {
			b.WriteByte(',')
		}
		b.WriteByte('"')
		b.WriteString(name)
		b.WriteString(`":`)
		appendJSONString(b, v)
	}
	b.WriteByte('{')
	field("id", s.ID, true)
	field("type", s.Kind, false)
	field("resourceType", s.ResourceType, false)
	field("date", s.Date, false)
	field("display", s.Display, false)
	field("source", s.Source, false)
	b.WriteString(`,"version":`)
	b.WriteString(strconv.FormatUint(s.Version, 10))
	if s.Negation != "" {
		field("negation", s.Negation, false)
	}
}

// appendJSONString writes s as a JSON string, escaping as encoding/json
// does by default (quotes, backslashes, control characters with their
// short forms where JSON has one, <, >, &, U+2028, U+2029, and invalid
// UTF-8 as U+FFFD). A fuzz test holds it to encoding/json.
func appendJSONString(b *bytes.Buffer, s string) {
	const hex = "0123456789abcdef"
	b.WriteByte('"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b.WriteByte('\\')
				b.WriteByte(c)
			case c == '\n':
				b.WriteString(`\n`)
			case c == '\r':
				b.WriteString(`\r`)
			case c == '\t':
				b.WriteString(`\t`)
			case c == '\b':
				b.WriteString(`\b`)
			case c == '\f':
				b.WriteString(`\f`)
			case c < 0x20 || c == '<' || c == '>' || c == '&':
				b.WriteString(`\u00`)
				b.WriteByte(hex[c>>4])
				b.WriteByte(hex[c&0xF])
			default:
				b.WriteByte(c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b.WriteString(`\ufffd`)
		case r == '\u2028':
			b.WriteString(`\u2028`)
		case r == '\u2029':
			b.WriteString(`\u2029`)
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	b.WriteByte('"')
}
