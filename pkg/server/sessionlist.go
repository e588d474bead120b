package server

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/phr-project/phr/pkg/vault"
)

// An account's sessions, listed and ended one by one: what a phone app
// shows under "signed in on". A session is named by an ID derived from
// its token's hash, which opens nothing.

// SessionListItem is one session of GET /api/v1/sessions.
type SessionListItem struct {
	ID       string    `json:"id"`
	Method   string    `json:"method"`          // passphrase | device | passkey
	Label    string    `json:"label,omitempty"` // the device credential's or passkey's label
	Created  time.Time `json:"created_at"`
	LastUsed time.Time `json:"last_used_at"`
	Expires  time.Time `json:"expires_at"` // the absolute end
	IdleEnd  time.Time `json:"idle_expires_at"`
	Current  bool      `json:"current"`
}

// sessionID names a session without revealing anything that opens it.
func sessionID(s *session) string {
	h := sha256.New()
	h.Write([]byte("phrd session id v1\x00"))
	h.Write(s.hash[:])
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil)[:12])
}

// deviceLabels maps the recipients of the account's device slots (device
// credentials and passkeys) to their labels.
func deviceLabels(v *vault.Vault) map[string]string {
	out := map[string]string{}
	slots, err := v.Slots()
	if err != nil {
		return out
	}
	for _, sl := range slots {
		if sl.Kind != vault.SlotDevice {
			continue
		}
		if rcpt, err := v.Setting(deviceSetting(sl.ID)); err == nil {
			out[string(rcpt)] = sl.Label
		}
	}
	return out
}

func (s *Server) listSessions(c echo.Context) error {
	me := sessionOf(c)
	all, err := s.sess.accountSessions(me.acct)
	if err != nil {
		return err
	}
	labels := deviceLabels(me.acct.v)
	out := []SessionListItem{}
	for _, o := range all {
		it := SessionListItem{ID: sessionID(o), Method: o.method, Created: o.created.UTC(), LastUsed: o.lastUsed.UTC(),
			Expires: o.expiresAt.UTC(), IdleEnd: s.sess.idleEnd(o).UTC(), Current: o.hash == me.hash}
		if o.device != "" {
			it.Label = labels[o.device]
		}
		out = append(out, it)
	}
	return c.JSON(http.StatusOK, map[string]any{"sessions": out})
}

// deleteOtherSession ends one session of the account by its ID (the
// caller's own too: that is a logout), on every node.
func (s *Server) deleteOtherSession(c echo.Context) error {
	me := sessionOf(c)
	want := c.Param("id")
	all, err := s.sess.accountSessions(me.acct)
	if err != nil {
		return err
	}
	for _, o := range all {
		if subtle.ConstantTimeCompare([]byte(sessionID(o)), []byte(want)) == 1 {
			if err := s.sess.end(o); err != nil {
				return err
			}
			s.audit(me.acct.id, me.acct.v, vault.AuditEntry{Event: AuditLogout, Success: true, Method: o.method, Ref: sessionID(o)})
			return c.NoContent(http.StatusNoContent)
		}
	}
	return vault.ErrNotFound
}
