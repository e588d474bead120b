package server

import (
	"errors"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"filippo.io/age"
	"github.com/labstack/echo/v4"
	"github.com/phr-project/phr/pkg/record"
	"github.com/phr-project/phr/pkg/server/api"
	"github.com/phr-project/phr/pkg/vault"
	"golang.org/x/crypto/scrypt"
)

// Key management of the account's vault: the same operations as `phr
// key` and `phr passwd`, over the API. Each one checks the passphrase
// (scrypt) holding a slot of the server's KDF gate, like a login.

// KeySlot is a key slot as GET /api/v1/keys lists it: never a secret.
type KeySlot struct {
	ID      string    `json:"id"`
	Kind    string    `json:"kind"`
	Label   string    `json:"label"`
	Created time.Time `json:"created"`
}

func (s *Server) listKeys(c echo.Context) error {
	slots, err := vaultOf(c).Slots()
	if err != nil {
		return err
	}
	out := make([]KeySlot, len(slots))
	for i, sl := range slots {
		out[i] = KeySlot{ID: sl.ID, Kind: string(sl.Kind), Label: sl.Label, Created: sl.Created}
	}
	return c.JSON(http.StatusOK, map[string]any{"keys": out})
}

// Audit events of key changes and recovery (the other events are in
// audit.go). Each has Counts["sessions_ended"] and
// Counts["devices_removed"]: a change of secret ends every other session
// of the account and removes every device credential but the caller's.
const (
	AuditKeyPassphrase  = "key.passphrase"
	AuditKeyRecovery    = "key.recovery"
	AuditKeyRotate      = "key.rotate"
	AuditAccountRecover = "account.recover" // also Client; Success false for a wrong recovery code
	AuditBackup         = "backup"          // Counts["recipients"]
)

// withPassphrase runs fn, holding a slot of the KDF gate, once passphrase
// has been checked against the session's vault: key changes need the
// passphrase, so that a stolen session token alone cannot make them. The
// check counts against the account's passphrase limit, like a login, so
// that the holder of a stolen token cannot guess the passphrase here
// faster than at the login.
func (s *Server) withPassphrase(c echo.Context, passphrase string, fn func(v *vault.Vault) error) error {
	acct := sessionOf(c).acct.id
	if ok, wait := s.acctLimit.allow(acct); !ok {
		return s.rateLimited(wait)
	}
	if err := s.kdf.acquire(c.Request().Context()); err != nil {
		s.acctLimit.refund(acct)
		return err
	}
	defer s.kdf.release()
	v := vaultOf(c)
	if len(passphrase) > maxPassphrase {
		return errUnauthorized
	}
	if ok, err := v.Opens(vault.Passphrase(passphrase)); err != nil || !ok {
		return errUnauthorized
	}
	s.acctLimit.refund(acct) // only failures count
	return fn(v)
}

// callerDevice splits the account's device slots into the caller's (the
// one its session logged in with, if it did with a device credential)
// and the others.
func callerDevice(v *vault.Vault, sess *session) (mine, others []string, err error) {
	slots, err := v.Slots()
	if err != nil {
		return nil, nil, err
	}
	for _, sl := range slots {
		if sl.Kind != vault.SlotDevice {
			continue
		}
		if sess != nil && sess.device != "" {
			if rcpt, err := v.Setting(deviceSetting(sl.ID)); err == nil && string(rcpt) == sess.device {
				mine = append(mine, sl.ID)
				continue
			}
		}
		others = append(others, sl.ID)
	}
	return mine, others, nil
}

// revoked finishes a change that revoked a secret (its transaction
// removed the device slots in removed): it forgets their recipients,
// ends every session of the account but keep (nil: all of them), and
// writes the audit entry.
func (s *Server) revoked(a *account, keep *session, v *vault.Vault, removed []string, entry vault.AuditEntry) {
	for _, id := range removed {
		if err := v.DeleteSetting(deviceSetting(id)); err != nil {
			s.log.Warn("forgetting device recipient failed", acctAttr(a.id), "kind", errKind(err))
		}
		s.forgetPasskey(a.id, v, id)
	}
	ended, err := s.sess.endOthers(a, keep)
	if err != nil {
		// The change is made; the sessions' wrapped keys still open
		// the vault unless it was a rotation. Say so loudly.
		s.log.Error("ending the account's other sessions failed", acctAttr(a.id), "kind", errKind(err))
	}
	entry.Success = true
	entry.Counts = map[string]int{"sessions_ended": ended, "devices_removed": len(removed)}
	s.audit(a.id, v, entry)
}

// keepSession wraps the vault key again for the request's session, which
// comes in by slot, after a change that left the key it wrapped opening
// nothing. Should that fail, the session still works on this node while
// the vault stays open here; elsewhere it ends (logged).
func (s *Server) keepSession(c echo.Context, v *vault.Vault, slot string) {
	sess := sessionOf(c)
	if err := s.sess.rewrap(sess, sessionKeyOf(c), v, slot); err != nil {
		s.log.Error("wrapping the vault key again for the session failed", acctAttr(sess.acct.id), "kind", errKind(err))
	}
}

// changed reports the outcome of a vault change that revokes a secret: a
// failure to compact the file afterwards is logged, not answered (the
// change itself was made; the next one compacts).
func (s *Server) changed(acct string, err error) error {
	if errors.Is(err, vault.ErrNotCompacted) {
		s.log.Error("vault not compacted after a key change", acctAttr(acct), "kind", errKind(err))
		return nil
	}
	return err
}

// keyChange runs fn, a change of the account's keys, once the caller's
// passphrase has opened the vault, with the device credentials: the
// caller's own (mine) and the others', which a key change removes.
func (s *Server) keyChange(c echo.Context, passphrase string, fn func(v *vault.Vault, sess *session, mine, others []string) error) error {
	sess := sessionOf(c)
	return s.withPassphrase(c, passphrase, func(v *vault.Vault) error {
		mine, others, err := callerDevice(v, sess)
		if err != nil {
			return err
		}
		return fn(v, sess, mine, others)
	})
}

// changePassphrase replaces every passphrase slot with one new passphrase,
// ends the account's other sessions and removes the other device
// credentials.
func (s *Server) changePassphrase(c echo.Context) error {
	var req struct {
		Passphrase    string `json:"passphrase"`
		NewPassphrase string `json:"new_passphrase"`
	}
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if len([]rune(req.NewPassphrase)) < 10 {
		return newError(http.StatusBadRequest, api.CodeBadRequest, "new_passphrase: at least 10 characters")
	}
	return s.keyChange(c, req.Passphrase, func(v *vault.Vault, sess *session, mine, others []string) error {
		added, err := v.ReplaceSlotsOf([]vault.SlotKind{vault.SlotPassphrase, vault.SlotDevice}, mine,
			vault.SlotSpec{Kind: vault.SlotPassphrase, Label: "passphrase", Passphrase: req.NewPassphrase})
		if err := s.changed(sess.acct.id, err); err != nil {
			return err
		}
		// A passphrase session came in by a slot that is gone: it comes
		// in by the new one now (a device's slot stays).
		if sess.method == methodPassphrase && len(added) == 1 {
			s.keepSession(c, v, added[0].ID)
		}
		s.revoked(sess.acct, sess, v, others, vault.AuditEntry{Event: AuditKeyPassphrase, Method: sess.method})
		return c.NoContent(http.StatusNoContent)
	})
}

// newRecovery replaces the recovery code (the old one stops working),
// ends the account's other sessions and removes the other device
// credentials.
func (s *Server) newRecovery(c echo.Context) error {
	var req struct {
		Passphrase string `json:"passphrase"`
	}
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	return s.keyChange(c, req.Passphrase, func(v *vault.Vault, sess *session, mine, others []string) error {
		code := vault.NewRecoveryCode()
		_, err := v.ReplaceSlotsOf([]vault.SlotKind{vault.SlotRecovery, vault.SlotDevice}, mine,
			vault.SlotSpec{Kind: vault.SlotRecovery, Label: "recovery code", RecoveryCode: code})
		if err := s.changed(sess.acct.id, err); err != nil {
			return err
		}
		s.revoked(sess.acct, sess, v, others, vault.AuditEntry{Event: AuditKeyRecovery, Method: sess.method})
		return c.JSON(http.StatusOK, map[string]string{"recovery_code": code})
	})
}

// rotateKey makes a new vault key (see vault.Rotate): every record
// resealed, every slot rewrapped, a new recovery code; the account's
// other sessions end and the other device credentials are removed in the
// same transaction.
func (s *Server) rotateKey(c echo.Context) error {
	var req struct {
		Passphrase string `json:"passphrase"`
	}
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	return s.keyChange(c, req.Passphrase, func(v *vault.Vault, sess *session, _, others []string) error {
		code := vault.NewRecoveryCode()
		err := v.Rotate(vault.RotateOptions{Passphrase: req.Passphrase, RecoveryCode: code, Remove: others})
		if err := s.changed(sess.acct.id, err); err != nil {
			if errors.Is(err, vault.ErrCorrupt) {
				return err
			}
			return newError(http.StatusConflict, api.CodeConflict, "the vault key could not be rotated; nothing changed")
		}
		// The key the session wrapped is the old one: wrap the new.
		s.keepSession(c, v, s.sess.slotOf(sess))
		s.revoked(sess.acct, sess, v, others, vault.AuditEntry{Event: AuditKeyRotate, Method: sess.method})
		return c.JSON(http.StatusOK, map[string]string{"recovery_code": code})
	})
}

// RecoverRequest is the body of POST /api/v1/accounts/recover.
type RecoverRequest struct {
	Username      string `json:"username"`
	RecoveryCode  string `json:"recovery_code"`
	NewPassphrase string `json:"new_passphrase"`
	// DeviceLabel, if set, makes a device credential for the caller.
	DeviceLabel string `json:"device_label,omitempty"`
}

// RecoverResponse answers it: a new recovery code (the old one no
// longer works) and, if asked, a device credential. Both are shown only
// here.
type RecoverResponse struct {
	RecoveryCode string             `json:"recovery_code"`
	Device       *api.DeviceCreated `json:"device,omitempty"`
}

// recoverAccount opens an account with its recovery code, as `phr key
// recover` does a vault: every passphrase replaced by the new one, every
// device credential removed (one made for the caller, if asked), a new
// recovery code; every session of the account ends. It is limited like a
// login (per client and per account) and costs the same work for an
// account that does not exist.
func (s *Server) recoverAccount(c echo.Context) error {
	var req RecoverRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	u, err := NormalizeUsername(req.Username)
	if err != nil {
		return err
	}
	if err := checkPassphrase(req.NewPassphrase); err != nil {
		return &record.InputError{Field: "new_passphrase", Msg: strings.TrimPrefix(err.Error(), "passphrase: ")}
	}
	label := strings.TrimSpace(req.DeviceLabel)
	if !utf8.ValidString(label) || len(label) > 100 {
		return &record.InputError{Field: "device_label", Msg: "must be valid text of at most 100 bytes"}
	}
	addr := clientAddr(c)
	ck := clientKey(addr)
	if ok, wait := s.clientLimit.allow(ck); !ok {
		return s.rateLimited(wait)
	}
	id := s.data.accountID(u)
	if ok, wait := s.acctLimit.allow(id); !ok {
		return s.rateLimited(wait)
	}
	if err := s.kdfSlot(c); err != nil {
		s.acctLimit.refund(id)
		s.clientLimit.refund(ck)
		return err
	}
	defer s.kdf.release()
	secret := vault.RecoveryCode(req.RecoveryCode)
	exists, err := s.data.exists(id)
	if err != nil {
		return err
	}
	if !exists || !vault.IsRecoveryCode(req.RecoveryCode) {
		// The work of a wrong code (a recovery slot's scrypt), and the
		// same answer.
		var salt [16]byte
		scrypt.Key([]byte(req.RecoveryCode), salt[:], 1<<vault.RecoveryWorkFactor, 8, 1, 32)
		s.metrics.loginFailures.Add(1)
		return errUnauthorized
	}
	a, _, _, err := s.sess.pinUnlocked(id, secret, false)
	if err != nil {
		if errors.Is(err, vault.ErrWrongKey) && !errors.Is(err, vault.ErrStale) {
			s.failed(id, vault.AuditEntry{Time: s.cfg.Now().UTC(), Event: AuditAccountRecover, Client: clientNet(addr)})
			s.metrics.loginFailures.Add(1)
			return errUnauthorized
		}
		s.acctLimit.refund(id)
		s.clientLimit.refund(ck)
		return err
	}
	defer s.sess.unpin(a)
	s.acctLimit.refund(id)
	v := a.v
	_, removed, err := callerDevice(v, nil)
	if err != nil {
		return err
	}
	code := vault.NewRecoveryCode()
	specs := []vault.SlotSpec{
		{Kind: vault.SlotPassphrase, Label: "passphrase", Passphrase: req.NewPassphrase},
		{Kind: vault.SlotRecovery, Label: "recovery code", RecoveryCode: code},
	}
	var ident *age.X25519Identity
	if label != "" {
		if ident, err = age.GenerateX25519Identity(); err != nil {
			return err
		}
		specs = append(specs, vault.SlotSpec{Kind: vault.SlotDevice, Label: label, Recipients: []age.Recipient{ident.Recipient()}})
	}
	slots, err := v.ReplaceSlotsOf([]vault.SlotKind{vault.SlotPassphrase, vault.SlotRecovery, vault.SlotDevice}, nil, specs...)
	if err := s.changed(id, err); err != nil {
		return err
	}
	out := RecoverResponse{RecoveryCode: code}
	entries := append(s.takeFailures(id), vault.AuditEntry{Event: AuditAccountRecover, Client: clientNet(addr)})
	s.revoked(a, nil, v, removed, entries[len(entries)-1])
	if len(entries) > 1 {
		s.audit(id, v, entries[:len(entries)-1]...)
	}
	if ident != nil {
		dev := slots[2]
		if err := v.SetSetting(deviceSetting(dev.ID), []byte(ident.Recipient().String())); err != nil {
			return err
		}
		created := s.cfg.Now().UTC()
		if all, err := v.Slots(); err == nil {
			for _, sl := range all {
				if sl.ID == dev.ID {
					created = sl.Created.UTC()
				}
			}
		}
		out.Device = &api.DeviceCreated{Device: api.Device{ID: dev.ID, Label: label, Created: created}, Credential: ident.String()}
		s.audit(id, v, vault.AuditEntry{Event: AuditDeviceAdd, Success: true, Ref: dev.ID, Label: label})
	}
	c.Set(ctxAcct, id)
	return c.JSON(http.StatusOK, out)
}
