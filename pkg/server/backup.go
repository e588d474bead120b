package server

import (
	"net/http"
	"strings"
	"time"

	"filippo.io/age"
	"github.com/labstack/echo/v4"
	"github.com/phr-project/phr/pkg/server/api"
	"github.com/phr-project/phr/pkg/vault"
)

// BackupRequest is the body of POST /api/v1/backup.
type BackupRequest struct {
	// Passphrase is the account's: whoever names the recipients of a
	// backup gets every record, so a session token alone does not do.
	Passphrase string `json:"passphrase"`
	// Recipients are 1 to 16 age recipients (age1...) to encrypt to.
	Recipients []string `json:"recipients"`
	// Tombstones includes deleted records' tombstones.
	Tombstones bool `json:"tombstones"`
}

// postBackup streams a portable, age-encrypted backup of the account's
// vault (docs/backup.md) to the recipients the body names, once the
// passphrase has been checked. The snapshot is consistent: one read
// transaction. The audit log records it.
func (s *Server) postBackup(c echo.Context) error {
	var req BackupRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if len(req.Recipients) == 0 || len(req.Recipients) > 16 {
		return newError(http.StatusBadRequest, api.CodeBadRequest, "recipients: give 1 to 16 age recipients (age1...)")
	}
	recipients, err := age.ParseRecipients(strings.NewReader(strings.Join(req.Recipients, "\n")))
	if err != nil || len(recipients) != len(req.Recipients) {
		return newError(http.StatusBadRequest, api.CodeBadRequest, "recipients: not an age recipient")
	}
	// The passphrase check holds a slot of the KDF gate only while it
	// runs, not while the backup streams.
	if err := s.withPassphrase(c, req.Passphrase, func(*vault.Vault) error { return nil }); err != nil {
		return err
	}
	sess := sessionOf(c)
	v := vaultOf(c)
	s.audit(sess.acct.id, v, vault.AuditEntry{Event: AuditBackup, Success: true, Method: sess.method, Counts: map[string]int{"recipients": len(recipients)}})
	// A big vault over a slow link may take longer than the server's
	// write timeout: a backup gets as long as an upload.
	_ = http.NewResponseController(c.Response()).SetWriteDeadline(time.Now().Add(s.cfg.ImportTimeout))
	h := c.Response().Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Disposition", `attachment; filename="phr-backup.age"`)
	c.Response().WriteHeader(http.StatusOK)
	// Once the body has started, an error can only cut the stream short;
	// the backup's trailer then fails to verify, which is the point of it.
	if _, err := v.Backup(c.Response(), recipients, req.Tombstones); err != nil {
		s.log.Error("backup stream failed", "route", routeOf(c))
	}
	return nil
}
