package server

import (
	"net/http"
	"strings"
	"time"

	"filippo.io/age"
	"github.com/labstack/echo/v4"
	"github.com/phr-project/phr/pkg/server/api"
)

// getBackup streams a portable, age-encrypted backup of the account's
// vault (docs/backup.md) to the recipients named in the query (age
// recipients are public keys, so the query string holds nothing secret).
// The snapshot is consistent: one read transaction.
func (s *Server) getBackup(c echo.Context) error {
	rs := c.QueryParams()["recipient"]
	if len(rs) == 0 || len(rs) > 16 {
		return newError(http.StatusBadRequest, api.CodeBadRequest, "recipient: give 1 to 16 age recipients (age1...)")
	}
	recipients, err := age.ParseRecipients(strings.NewReader(strings.Join(rs, "\n")))
	if err != nil {
		return newError(http.StatusBadRequest, api.CodeBadRequest, "recipient: not an age recipient")
	}
	tombstones := c.QueryParam("tombstones") == "true"
	// A big vault over a slow link may take longer than the server's
	// write timeout: a backup gets as long as an upload.
	_ = http.NewResponseController(c.Response()).SetWriteDeadline(time.Now().Add(s.cfg.ImportTimeout))
	h := c.Response().Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Disposition", `attachment; filename="phr-backup.age"`)
	c.Response().WriteHeader(http.StatusOK)
	// Once the body has started, an error can only cut the stream short;
	// the backup's trailer then fails to verify, which is the point of it.
	if _, err := vaultOf(c).Backup(c.Response(), recipients, tombstones); err != nil {
		s.log.Error("backup stream failed", "route", routeOf(c))
	}
	return nil
}
