package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/phr-project/phr/pkg/kv"
	"github.com/phr-project/phr/pkg/record"
	"github.com/phr-project/phr/pkg/server/api"
	"github.com/phr-project/phr/pkg/share"
	"github.com/phr-project/phr/pkg/sharestore"
	"github.com/phr-project/phr/pkg/shlhost"
	"github.com/phr-project/phr/pkg/vault"
)

// httpError is an error with its HTTP status and API code. Handlers return
// it for what they decide themselves; everything else goes through
// errorStatus.
type httpError struct {
	status     int
	code       string
	msg        string
	retryAfter time.Duration
	// body, if set, is the whole answer instead of {"error": ...}: the
	// share passcode's 401, whose body the SHL specification prescribes.
	body any
}

func (e *httpError) Error() string { return e.msg }

func newError(status int, code, format string, args ...any) *httpError {
	return &httpError{status: status, code: code, msg: fmt.Sprintf(format, args...)}
}

func badRequest(format string, args ...any) *httpError {
	return newError(http.StatusBadRequest, api.CodeBadRequest, format, args...)
}

// errUnauthorized is the one answer to a wrong username, passphrase or
// device credential, and to a missing or expired token.
var errUnauthorized = newError(http.StatusUnauthorized, api.CodeUnauthorized, "not logged in, or wrong username or credentials")

// errorStatus is the one table from errors to HTTP answers, for the API
// and the public share routes alike. Anything it does not know is a 500
// "Internal error.", and the caller logs it.
func errorStatus(err error) (e *httpError, known bool) {
	var he *httpError
	var ie *record.InputError
	var mbe *http.MaxBytesError
	var ee *echo.HTTPError
	var pe *sharestore.PasscodeError
	var re *shlhost.RequestError
	var se *vault.SelectionError
	switch {
	case errors.As(err, &he):
		return he, true
	case errors.As(err, &se):
		return newError(http.StatusBadRequest, api.CodeBadRequest, "select: %s", se.Msg), true
	// Shares (pkg/shlhost, pkg/sharestore). Every refusal of a link
	// is the same 404, whatever the reason (docs/share-protocol.md).
	case errors.As(err, &pe):
		return &httpError{status: http.StatusUnauthorized, body: share.InvalidPasscodeResponse{RemainingAttempts: pe.Remaining}}, true
	case errors.Is(err, shlhost.ErrNotFound):
		return newError(http.StatusNotFound, api.CodeNotFound, "%s", shlhost.NotFoundMessage), true
	case errors.As(err, &re):
		return newError(http.StatusBadRequest, api.CodeBadRequest, "%s", re.Msg), true
	case errors.Is(err, shlhost.ErrUnsupportedMedia):
		return newError(http.StatusUnsupportedMediaType, api.CodeUnsupportedType, "the manifest request must be application/json"), true
	case errors.Is(err, shlhost.ErrBusy):
		e := newError(http.StatusTooManyRequests, api.CodeRateLimited, "too many requests for this link at once; try again shortly")
		e.retryAfter = time.Second
		return e, true
	case errors.Is(err, shlhost.ErrBaseURL):
		return newError(http.StatusServiceUnavailable, api.CodeUnavailable, "sharing is not set up on this server: its public URL (--public-url) must be https"), true
	case errors.As(err, &mbe):
		return newError(http.StatusRequestEntityTooLarge, api.CodeTooLarge, "request body is larger than %d bytes", mbe.Limit), true
	case errors.Is(err, os.ErrDeadlineExceeded): // the read deadline, reading a body
		return errReadTimeout, true
	case errors.As(err, &ie):
		return newError(http.StatusBadRequest, api.CodeBadRequest, "%s", ie.Error()), true
	case errors.Is(err, record.ErrNotResource):
		return newError(http.StatusBadRequest, api.CodeBadRequest, "not a FHIR resource: a JSON object with a resourceType"), true
	case errors.Is(err, vault.ErrNotFound):
		return newError(http.StatusNotFound, api.CodeNotFound, "not found"), true
	case errors.Is(err, vault.ErrDeleted):
		return newError(http.StatusGone, api.CodeGone, "the record was deleted"), true
	case errors.Is(err, vault.ErrConflict):
		return newError(http.StatusPreconditionFailed, api.CodePreconditionFailed, "the record changed since that version; get it again"), true
	case errors.Is(err, vault.ErrLastSlot):
		return newError(http.StatusConflict, api.CodeConflict, "this is the last key of the vault; add another first"), true
	case errors.Is(err, errAccountExists):
		return newError(http.StatusConflict, api.CodeConflict, "that username is taken"), true
	case errors.Is(err, vault.ErrStale):
		// Before ErrWrongKey, which a stale key matches too: the session
		// is fine, this node's open vault is not (requireSession drops it).
		e := newError(http.StatusServiceUnavailable, api.CodeUnavailable, "the account's vault changed on another node; try again")
		e.retryAfter = time.Second
		return e, true
	case errors.Is(err, vault.ErrWrongKey), errors.Is(err, errNoSession):
		return errUnauthorized, true
	case errors.Is(err, errBusy), errors.Is(err, errTooMany):
		e := newError(http.StatusServiceUnavailable, api.CodeUnavailable, "the server is busy; try again shortly")
		e.retryAfter = time.Second
		return e, true
	case errors.Is(err, kv.ErrUnavailable):
		// PostgreSQL is down or did not answer in time: the transaction
		// was rolled back, nothing of the request was written.
		e := newError(http.StatusServiceUnavailable, api.CodeUnavailable, "the server's storage is unavailable; try again shortly")
		e.retryAfter = 5 * time.Second
		return e, true
	case errors.Is(err, vault.ErrLocked), errors.Is(err, errShutdown):
		e := newError(http.StatusServiceUnavailable, api.CodeUnavailable, "the account is busy; try again shortly")
		e.retryAfter = 5 * time.Second
		return e, true
	case errors.As(err, &ee):
		switch ee.Code {
		case http.StatusNotFound:
			return newError(http.StatusNotFound, api.CodeNotFound, "no such route"), true
		case http.StatusMethodNotAllowed:
			return newError(http.StatusMethodNotAllowed, api.CodeMethodNotAllowed, "method not allowed on this route"), true
		case http.StatusRequestEntityTooLarge:
			return newError(http.StatusRequestEntityTooLarge, api.CodeTooLarge, "request body too large"), true
		case http.StatusUnsupportedMediaType:
			return newError(http.StatusUnsupportedMediaType, api.CodeUnsupportedType, "unsupported content type"), true
		}
		if ee.Code >= 400 && ee.Code < 500 {
			return newError(ee.Code, api.CodeBadRequest, "%s", http.StatusText(ee.Code)), true
		}
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return newError(http.StatusServiceUnavailable, api.CodeUnavailable, "the request was cancelled or took too long"), true
	}
	return newError(http.StatusInternalServerError, api.CodeInternal, "Internal error."), false
}

// handleError is echo's error handler: every error response is
// {"error": {"code", "message"}}.
func (s *Server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	e, known := errorStatus(err)
	if !known {
		// The error's text may quote stored data: log its type and the
		// vault sentinel it wraps, if any, never the text.
		s.log.Error("internal error", "route", routeOf(c), "method", c.Request().Method, "err_type", fmt.Sprintf("%T", err), "kind", errKind(err))
	}
	if e.status == http.StatusRequestEntityTooLarge || e.status == http.StatusRequestTimeout {
		// Do not read the rest of the body to keep the connection:
		// close it after the answer.
		c.Response().Header().Set("Connection", "close")
	}
	if e.retryAfter > 0 {
		c.Response().Header().Set("Retry-After", strconv.Itoa(int(max(1, (e.retryAfter+time.Second-1)/time.Second))))
	}
	if c.Request().Method == http.MethodHead {
		c.NoContent(e.status)
		return
	}
	if e.body != nil {
		c.JSON(e.status, e.body)
		return
	}
	c.JSON(e.status, api.ErrorBody{Error: api.Error{Code: e.code, Message: e.msg}})
}

// errKind names the sentinel an unexpected error wraps, for logs.
func errKind(err error) string {
	for _, k := range []struct {
		err  error
		name string
	}{
		{vault.ErrCorrupt, "vault corrupt"}, {vault.ErrReadOnly, "vault read-only"}, {vault.ErrNewerVersion, "vault newer version"},
		{vault.ErrNotVault, "not a vault"}, {context.Canceled, "canceled"},
	} {
		if errors.Is(err, k.err) {
			return k.name
		}
	}
	return "other"
}

// logAttrs is a helper for log lines about an account: its ID, shortened.
// The ID is an HMAC of the username, never the username.
func acctAttr(id string) slog.Attr {
	if len(id) > 12 {
		id = id[:12]
	}
	return slog.String("acct", id)
}
