package shlhost

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/phr-project/phr/pkg/server/api"
	"github.com/phr-project/phr/pkg/share"
	"github.com/phr-project/phr/pkg/sharestore"
)

// createReq is a share request as the tests write it: the API's body plus
// the plaintext a hosted vault would give (Content).
type createReq struct {
	Files       []api.ShareFile
	Content     []byte
	ExpiresAt   time.Time
	Passcode    string
	Label       string
	MaxUses     int
	MaxAttempts int
	Direct      bool
	LongTerm    bool
}

func createShare(h *Host, owner string, r createReq) (api.ShareCreated, error) {
	return h.CreateShare(context.Background(), owner, api.CreateShareRequest{
		Files: r.Files, ExpiresAt: r.ExpiresAt, Passcode: r.Passcode, Label: r.Label,
		MaxUses: r.MaxUses, MaxAttempts: r.MaxAttempts, Direct: r.Direct, LongTerm: r.LongTerm,
	}, r.Content)
}

// notFoundBody is the one 404 every refusal of a link gets.
var notFoundBody = []byte(`{"error":{"code":"not_found","message":"` + NotFoundMessage + `"}}` + "\n")

// installErrors gives e the answers phrd's one error table (pkg/server,
// errorStatus) gives the host's errors, so that the host's routes can be
// tested on a bare echo. It stands in for that table here only; the
// server's tests (TestShareEnumeration, TestSharesFromHostedVault,
// TestShareErrors) hold the real one to the same answers.
func installErrors(e *echo.Echo) {
	e.HTTPErrorHandler = func(err error, c echo.Context) {
		var pe *sharestore.PasscodeError
		var re *RequestError
		var mbe *http.MaxBytesError
		status, code, msg := http.StatusInternalServerError, api.CodeInternal, "Internal error."
		switch {
		case errors.As(err, &pe):
			c.JSON(http.StatusUnauthorized, share.InvalidPasscodeResponse{RemainingAttempts: pe.Remaining})
			return
		case errors.Is(err, ErrNotFound):
			status, code, msg = http.StatusNotFound, api.CodeNotFound, NotFoundMessage
		case errors.As(err, &re):
			status, code, msg = http.StatusBadRequest, api.CodeBadRequest, re.Msg
		case errors.Is(err, ErrUnsupportedMedia):
			status, code, msg = http.StatusUnsupportedMediaType, api.CodeUnsupportedType, err.Error()
		case errors.As(err, &mbe):
			status, code, msg = http.StatusRequestEntityTooLarge, api.CodeTooLarge, "too large"
			c.Response().Header().Set("Connection", "close")
		case errors.Is(err, ErrBusy):
			status, code, msg = http.StatusTooManyRequests, api.CodeRateLimited, "busy"
			c.Response().Header().Set("Retry-After", "1")
		}
		c.JSON(status, api.ErrorBody{Error: api.Error{Code: code, Message: msg}})
	}
}
