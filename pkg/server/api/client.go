package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/phr-project/phr/pkg/record"
)

// Client is a small client of the API, for `phr remote` and tests. It is
// safe for concurrent use once logged in (Token set).
type Client struct {
	// BaseURL is the server's URL, without /api/v1.
	BaseURL string
	// Token is the session's bearer token (set by Login).
	Token string
	// HTTP is the client to use; http.DefaultClient if nil.
	HTTP *http.Client
}

// StatusError is an error answer from the server.
type StatusError struct {
	Status int
	Err    Error
	// RetryAfter is the Retry-After header, in seconds (429, 503).
	RetryAfter int
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("phrd: %d %s: %s", e.Status, e.Err.Code, e.Err.Message)
}

// Do sends a request with a JSON body (if body is not nil) and decodes a
// JSON answer into out (if not nil). Error answers become *StatusError.
func (c *Client) Do(ctx context.Context, method, path string, body, out any, header ...string) (http.Header, error) {
	var rd io.Reader
	ct := ""
	switch b := body.(type) {
	case nil:
	case *multipartBody:
		rd, ct = b.buf, b.contentType
	default:
		data, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd, ct = bytes.NewReader(data), "application/json"
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(c.BaseURL, "/")+path, rd)
	if err != nil {
		return nil, err
	}
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	res, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	if res.StatusCode >= 400 {
		se := &StatusError{Status: res.StatusCode}
		var eb ErrorBody
		if err := json.NewDecoder(io.LimitReader(res.Body, 1<<20)).Decode(&eb); err == nil {
			se.Err = eb.Error
		} else {
			se.Err = Error{Code: "http_" + strconv.Itoa(res.StatusCode), Message: http.StatusText(res.StatusCode)}
		}
		se.RetryAfter, _ = strconv.Atoi(res.Header.Get("Retry-After"))
		return res.Header, se
	}
	if out != nil && res.StatusCode != http.StatusNoContent {
		if err := json.NewDecoder(res.Body).Decode(out); err != nil {
			return res.Header, fmt.Errorf("phrd: decoding the answer: %w", err)
		}
	}
	return res.Header, nil
}

// CreateAccount creates an account (open registration).
func (c *Client) CreateAccount(ctx context.Context, username, passphrase string) (CreateAccountResponse, error) {
	var out CreateAccountResponse
	_, err := c.Do(ctx, "POST", Prefix+"/accounts", CreateAccountRequest{Username: username, Passphrase: passphrase}, &out)
	return out, err
}

// Login logs in (with a passphrase or a device credential in req) and
// keeps the token.
func (c *Client) Login(ctx context.Context, req SessionRequest) (Session, error) {
	var out Session
	_, err := c.Do(ctx, "POST", Prefix+"/sessions", req, &out)
	if err == nil {
		c.Token = out.Token
	}
	return out, err
}

// Logout ends the session.
func (c *Client) Logout(ctx context.Context) error {
	_, err := c.Do(ctx, "DELETE", Prefix+"/sessions/current", nil, nil)
	if err == nil {
		c.Token = ""
	}
	return err
}

// CreateDevice makes a device credential.
func (c *Client) CreateDevice(ctx context.Context, label, passphrase string) (DeviceCreated, error) {
	var out DeviceCreated
	_, err := c.Do(ctx, "POST", Prefix+"/devices", DeviceRequest{Label: label, Passphrase: passphrase}, &out)
	return out, err
}

// Devices lists the device credentials.
func (c *Client) Devices(ctx context.Context) ([]Device, error) {
	var out DeviceList
	_, err := c.Do(ctx, "GET", Prefix+"/devices", nil, &out)
	return out.Devices, err
}

// RemoveDevice revokes a device credential.
func (c *Client) RemoveDevice(ctx context.Context, id string) error {
	_, err := c.Do(ctx, "DELETE", Prefix+"/devices/"+url.PathEscape(id), nil, nil)
	return err
}

// Records lists one page of records; q holds the query parameters (type,
// since, until, q, source, limit, cursor).
func (c *Client) Records(ctx context.Context, q url.Values) (RecordList, error) {
	var out RecordList
	path := Prefix + "/records"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	_, err := c.Do(ctx, "GET", path, nil, &out)
	return out, err
}

// Record gets one record.
func (c *Client) Record(ctx context.Context, id string) (record.Record, error) {
	var out record.Record
	_, err := c.Do(ctx, "GET", Prefix+"/records/"+url.PathEscape(id), nil, &out)
	return out, err
}

// AddRecord adds a FHIR resource (json.RawMessage or a map) or a LogEntry.
func (c *Client) AddRecord(ctx context.Context, body any) (record.Record, error) {
	var out record.Record
	_, err := c.Do(ctx, "POST", Prefix+"/records", body, &out)
	return out, err
}

// UpdateRecord replaces the resource of the record at version.
func (c *Client) UpdateRecord(ctx context.Context, id string, version uint64, resource json.RawMessage) (record.Record, error) {
	var out record.Record
	_, err := c.Do(ctx, "PUT", Prefix+"/records/"+url.PathEscape(id), resource, &out, "If-Match", ETag(version))
	return out, err
}

// DeleteRecord deletes a record; version 0 deletes any version.
func (c *Client) DeleteRecord(ctx context.Context, id string, version uint64) error {
	var h []string
	if version > 0 {
		h = []string{"If-Match", ETag(version)}
	}
	_, err := c.Do(ctx, "DELETE", Prefix+"/records/"+url.PathEscape(id), nil, nil, h...)
	return err
}

// Changes fetches one page of the changes feed.
func (c *Client) Changes(ctx context.Context, since uint64, limit int) (Changes, error) {
	var out Changes
	path := fmt.Sprintf("%s/changes?since=%d", Prefix, since)
	if limit > 0 {
		path += "&limit=" + strconv.Itoa(limit)
	}
	_, err := c.Do(ctx, "GET", path, nil, &out)
	return out, err
}

// Ingest sends device readings.
func (c *Client) Ingest(ctx context.Context, req IngestRequest) (IngestResult, error) {
	var out IngestResult
	_, err := c.Do(ctx, "POST", Prefix+"/ingest", req, &out)
	return out, err
}

type multipartBody struct {
	buf         *bytes.Buffer
	contentType string
}

// Import uploads a file. format may be "" (detect); the file is read into
// memory first.
func (c *Client) Import(ctx context.Context, name string, r io.Reader, format string, partial, dryRun bool) (ImportResult, error) {
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	if format != "" {
		w.WriteField("format", format)
	}
	w.WriteField("partial", strconv.FormatBool(partial))
	w.WriteField("dry_run", strconv.FormatBool(dryRun))
	fw, err := w.CreateFormFile("file", name)
	if err != nil {
		return ImportResult{}, err
	}
	if _, err := io.Copy(fw, r); err != nil {
		return ImportResult{}, err
	}
	if err := w.Close(); err != nil {
		return ImportResult{}, err
	}
	var out ImportResult
	_, err = c.Do(ctx, "POST", Prefix+"/imports", &multipartBody{&buf, w.FormDataContentType()}, &out)
	return out, err
}

// Audit fetches a page of the account's own audit events, newest first;
// cursor is "" for the first page, then the page's NextCursor.
func (c *Client) Audit(ctx context.Context, limit int, cursor string) (Audit, error) {
	return c.audit(ctx, "/audit", limit, cursor)
}

// ShareAudit fetches a page of the accesses to the account's shares,
// newest first, as Audit does.
func (c *Client) ShareAudit(ctx context.Context, limit int, cursor string) (Audit, error) {
	return c.audit(ctx, "/audit/shares", limit, cursor)
}

func (c *Client) audit(ctx context.Context, path string, limit int, cursor string) (Audit, error) {
	q := url.Values{"limit": {strconv.Itoa(max(limit, 1))}}
	if cursor != "" {
		q.Set("cursor", cursor)
	}
	var out Audit
	_, err := c.Do(ctx, "GET", Prefix+path+"?"+q.Encode(), nil, &out)
	return out, err
}

// ETag is the ETag of a record version.
func ETag(version uint64) string { return `"v` + strconv.FormatUint(version, 10) + `"` }

// Session describes the current session.
func (c *Client) Session(ctx context.Context) (SessionInfo, error) {
	var out SessionInfo
	_, err := c.Do(ctx, "GET", Prefix+"/sessions/current", nil, &out)
	return out, err
}

// CreateShare makes a share: of files the client encrypted (req.Files) or
// of records phrd selects, builds and encrypts (req.Select).
func (c *Client) CreateShare(ctx context.Context, req CreateShareRequest) (ShareCreated, error) {
	var out ShareCreated
	_, err := c.Do(ctx, "POST", Prefix+"/shares", req, &out)
	return out, err
}

// Shares lists the account's shares, newest first.
func (c *Client) Shares(ctx context.Context) ([]ShareInfo, error) {
	var out ShareList
	_, err := c.Do(ctx, "GET", Prefix+"/shares", nil, &out)
	return out.Shares, err
}

// RevokeShare ends a share now.
func (c *Client) RevokeShare(ctx context.Context, id string) (ShareInfo, error) {
	var out ShareInfo
	_, err := c.Do(ctx, "DELETE", Prefix+"/shares/"+url.PathEscape(id), nil, &out)
	return out, err
}

// UpdateShare replaces the files of a long-term share with files the
// client encrypted under the link's key.
func (c *Client) UpdateShare(ctx context.Context, id string, files []ShareFile) (ShareInfo, error) {
	var out ShareInfo
	_, err := c.Do(ctx, "PUT", Prefix+"/shares/"+url.PathEscape(id)+"/files", UpdateShareRequest{Files: files}, &out)
	return out, err
}

// ShareLog returns who opened a share, oldest first.
func (c *Client) ShareLog(ctx context.Context, id string) ([]ShareLogEntry, error) {
	var out ShareLog
	_, err := c.Do(ctx, "GET", Prefix+"/shares/"+url.PathEscape(id)+"/log", nil, &out)
	return out.Log, err
}
