package server

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/phr-project/phr/pkg/kv"
	"github.com/phr-project/phr/pkg/server/api"
	"github.com/phr-project/phr/pkg/sharestore"
	"github.com/phr-project/phr/pkg/shlhost"
)

// TestShareErrors: the public share routes and the owner's share API
// answer through the one error table (errorStatus): each error of the
// share host and store gets its status, code and message there, the
// passcode's 401 the body the SHL specification prescribes, and anything
// unexpected the generic "Internal error.".
func TestShareErrors(t *testing.T) {
	ts := newTestServer(t, nil)
	alice := ts.signup("alice")
	exp := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	var created api.ShareCreated
	r := alice.do("POST", "/api/v1/shares", `{"select":{"summary":true},"expires_at":"`+exp+`","passcode":"1234"}`)
	want(t, r, http.StatusCreated)
	r.decode(t, &created)
	anon := ts.client()
	shl := "/shl/" + created.ID
	notFound := `{"error":{"code":"not_found","message":"` + shlhost.NotFoundMessage + `"}}` + "\n"
	for _, tt := range []struct {
		name         string
		c            *client
		method, path string
		ct           string
		body         string
		status       int
		wantBody     string // exact, if set
		code         string
		msgPart      string
	}{
		{"unknown link", anon, "POST", "/shl/" + strings.Repeat("A", 43), "application/json", `{"recipient":"x"}`, 404, notFound, "", ""},
		{"malformed id", anon, "POST", "/shl/short", "application/json", `{"recipient":"x"}`, 404, notFound, "", ""},
		{"wrong passcode", anon, "POST", shl, "application/json", `{"recipient":"x","passcode":"0000"}`, 401, `{"remainingAttempts":9}` + "\n", "", ""},
		{"no passcode", anon, "POST", shl, "application/json", `{"recipient":"x"}`, 401, `{"remainingAttempts":9}` + "\n", "", ""},
		{"not json", anon, "POST", shl, "text/plain", `{"recipient":"x"}`, 415, "", api.CodeUnsupportedType, "application/json"},
		{"bad body", anon, "POST", shl, "application/json", `{"recipient":1}`, 400, "", api.CodeBadRequest, `"recipient" must be a string`},
		{"no recipient", anon, "GET", shl, "", "", 400, "", api.CodeBadRequest, "recipient"},
		{"bad token", anon, "GET", shl + "/f/" + strings.Repeat("A", 76), "", "", 404, notFound, "", ""},
		{"owner: unknown share", alice, "DELETE", "/api/v1/shares/" + strings.Repeat("B", 43), "", "", 404, notFound, "", ""},
		{"owner: invalid files", alice, "PUT", "/api/v1/shares/" + created.ID + "/files", "application/json", `{"files":[{"content_type":"application/fhir+json","jwe":"x.y.z"}]}`, 400, "", api.CodeBadRequest, "files[0]"},
		{"owner: not long-term", alice, "PUT", "/api/v1/shares/" + created.ID + "/files", "application/json", `{"files":[]}`, 400, "", api.CodeBadRequest, "files"},
		{"owner: select and files", alice, "POST", "/api/v1/shares", "application/json", `{"select":{"summary":true},"files":[{"content_type":"a","jwe":"b"}],"expires_at":"` + exp + `"}`, 400, "", api.CodeBadRequest, "not both"},
		{"owner: no expiry", alice, "POST", "/api/v1/shares", "application/json", `{"select":{"summary":true}}`, 400, "", api.CodeBadRequest, "expires_at is required"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, ts.url+tt.path, strings.NewReader(tt.body))
			if tt.ct != "" {
				req.Header.Set("Content-Type", tt.ct)
			}
			if tt.c.token != "" {
				req.Header.Set("Authorization", "Bearer "+tt.c.token)
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			rr := &resp{status: res.StatusCode, header: res.Header, body: body}
			if rr.status != tt.status {
				t.Fatalf("status %d, want %d: %s", rr.status, tt.status, body)
			}
			if tt.wantBody != "" && string(body) != tt.wantBody {
				t.Fatalf("body %s, want %s", body, tt.wantBody)
			}
			if tt.code != "" && (rr.errCode() != tt.code || !strings.Contains(rr.errMsg(), tt.msgPart) || strings.Contains(rr.errMsg(), "shlhost") || strings.Contains(rr.errMsg(), "sharestore")) {
				t.Fatalf("error %s, want code %s and a message with %q (and no package names)", body, tt.code, tt.msgPart)
			}
		})
	}
	// A body over the manifest limit: 413, and the connection is closed.
	r = anon.do("POST", shl, bytes.NewReader(bytes.Repeat([]byte(" "), 64<<10)), "Content-Type", "application/json")
	if r.status != http.StatusRequestEntityTooLarge || r.errCode() != api.CodeTooLarge {
		t.Fatalf("large manifest request: %d %s", r.status, r.body)
	}
}

// TestErrorTable: the share errors map as the protocol says, and what the
// table does not know is a 500 with the generic message.
func TestErrorTable(t *testing.T) {
	for _, tt := range []struct {
		err        error
		status     int
		code       string
		retryAfter bool
	}{
		{sharestore.ErrNotFound, 404, api.CodeNotFound, false},
		{&sharestore.UnavailableError{Reason: sharestore.OutcomeLocked}, 404, api.CodeNotFound, false},
		{fmt.Errorf("wrapped: %w", &shlhost.RequestError{Msg: "label too long"}), 400, api.CodeBadRequest, false},
		{shlhost.ErrUnsupportedMedia, 415, api.CodeUnsupportedType, false},
		{sharestore.ErrBusy, 429, api.CodeRateLimited, true},
		{errBusy, 503, api.CodeUnavailable, true},
		{shlhost.ErrBaseURL, 503, api.CodeUnavailable, false},
		{fmt.Errorf("list shares: %w", kv.ErrUnavailable), 503, api.CodeUnavailable, true},
		{&sharestore.PasscodeError{Remaining: 3}, 401, "", false},
		{errors.New("disk on fire at /var/lib/secret-name"), 500, api.CodeInternal, false},
	} {
		e, known := errorStatus(tt.err)
		if e.status != tt.status || e.code != tt.code || (e.retryAfter > 0) != tt.retryAfter {
			t.Errorf("%v: %d %s retry %v, want %d %s retry %v", tt.err, e.status, e.code, e.retryAfter, tt.status, tt.code, tt.retryAfter)
		}
		if tt.status == 500 && (known || e.msg != "Internal error.") {
			t.Errorf("unexpected error: known %v, message %q", known, e.msg)
		}
	}
}
