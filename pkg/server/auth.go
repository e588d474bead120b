package server

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/netip"
	"strings"
	"time"
	"unicode/utf8"

	"filippo.io/age"
	"github.com/labstack/echo/v4"
	"github.com/phr-project/phr/pkg/record"
	"github.com/phr-project/phr/pkg/server/api"
	"github.com/phr-project/phr/pkg/vault"
)

// Login methods.
const (
	methodPassphrase = "passphrase"
	methodDevice     = "device"
)

// rateLimited is the 429 answer.
func (s *Server) rateLimited(wait time.Duration) error {
	s.metrics.rateLimited.Add(1)
	e := newError(http.StatusTooManyRequests, api.CodeRateLimited, "too many attempts; try again later")
	e.retryAfter = max(wait, time.Second)
	return e
}

// kdfSlot waits for a free passphrase-unlock slot.
func (s *Server) kdfSlot(c echo.Context) error {
	if err := s.kdf.acquire(c.Request().Context()); err != nil {
		if errors.Is(err, errBusy) {
			s.metrics.kdfRejected.Add(1)
		}
		return err
	}
	return nil
}

func (s *Server) createAccount(c echo.Context) error {
	if s.cfg.Registration == RegistrationClosed { // loopback: see registrationGate
		return newError(http.StatusForbidden, api.CodeForbidden, "registration is closed; ask the operator for an account")
	}
	var req api.CreateAccountRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	u, err := NormalizeUsername(req.Username)
	if err != nil {
		return err
	}
	if err := checkPassphrase(req.Passphrase); err != nil {
		return err
	}
	addr := clientAddr(c)
	if ok, wait := s.clientLimit.allow(clientKey(addr)); !ok {
		return s.rateLimited(wait)
	}
	id := s.data.accountID(u)
	// 409 for a taken name is what registration inherently reveals; the
	// per-client limit above bounds how fast anyone can ask.
	if ok, err := s.data.exists(id); err != nil {
		return err
	} else if ok {
		return errAccountExists
	}
	if err := s.kdfSlot(c); err != nil {
		s.clientLimit.refund(clientKey(addr))
		return err
	}
	res, err := s.data.createAccount(u, req.Passphrase, clientNet(addr), s.vaultOpts)
	s.kdf.release()
	if err != nil {
		return err
	}
	c.Set(ctxAcct, id)
	s.log.Info("account created", acctAttr(id))
	return c.JSON(http.StatusCreated, res)
}

func (s *Server) createSession(c echo.Context) error {
	var req api.SessionRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	u, err := NormalizeUsername(req.Username)
	if err != nil {
		return err
	}
	var method string
	var secret vault.Secret
	var identity *age.X25519Identity
	switch {
	case req.Passphrase != "" && req.DeviceCredential != "":
		return badRequest("give a passphrase or a device_credential, not both")
	case req.Passphrase != "":
		if len(req.Passphrase) > maxPassphrase {
			return &record.InputError{Field: "passphrase", Msg: "is too long"}
		}
		method, secret = methodPassphrase, vault.Passphrase(req.Passphrase)
	case req.DeviceCredential != "":
		method = methodDevice
		// A malformed credential is a wrong one: the same 401, later.
		if id, err := age.ParseX25519Identity(strings.TrimSpace(req.DeviceCredential)); err == nil {
			identity = id
			secret = vault.Identities(id)
		}
	default:
		return badRequest("give a passphrase or a device_credential")
	}

	addr := clientAddr(c)
	ck := clientKey(addr)
	if ok, wait := s.clientLimit.allow(ck); !ok {
		return s.rateLimited(wait)
	}
	id := s.data.accountID(u)
	// Passphrase guesses are limited per account too. Device logins are
	// not (a 256-bit credential cannot be guessed), so that someone
	// hammering a username cannot lock out the owner's phone.
	if method == methodPassphrase {
		if ok, wait := s.acctLimit.allow(id); !ok {
			return s.rateLimited(wait)
		}
		if err := s.kdfSlot(c); err != nil {
			s.acctLimit.refund(id)
			s.clientLimit.refund(ck)
			return err
		}
		defer s.kdf.release()
	}

	fail := func() error {
		s.metrics.loginFailures.Add(1)
		return errUnauthorized
	}
	exists, err := s.data.exists(id)
	if err != nil {
		return err
	}
	if !exists {
		// The same work as a wrong secret, and the same answer.
		if method == methodPassphrase {
			s.dummy.passphrase(req.Passphrase)
		} else if identity != nil {
			s.dummy.identities(identity)
		}
		return fail()
	}
	if method == methodDevice && identity == nil {
		s.dummy.identities()
		s.failed(id, vault.AuditEntry{Time: s.cfg.Now().UTC(), Event: AuditLogin, Method: method, Client: clientNet(addr)})
		return fail()
	}
	// A login that fails for another reason than a wrong secret (the
	// vault is held by the CLI, the server is shutting down) was no
	// guess: it gives its tokens back, or a busy vault would lock the
	// owner out.
	notAGuess := func(err error) error {
		if method == methodPassphrase {
			s.acctLimit.refund(id)
		}
		s.clientLimit.refund(ck)
		return err
	}
	a, opened, slot, err := s.sess.pinUnlocked(id, secret, false)
	if err != nil {
		if errors.Is(err, vault.ErrWrongKey) && !errors.Is(err, vault.ErrStale) {
			s.failed(id, vault.AuditEntry{Time: s.cfg.Now().UTC(), Event: AuditLogin, Method: method, Client: clientNet(addr)})
			return fail()
		}
		return notAGuess(err)
	}
	defer s.sess.unpin(a)
	if method == methodPassphrase {
		s.acctLimit.refund(id) // only failures count against the account
	}
	device := ""
	if identity != nil {
		device = identity.Recipient().String()
	}
	return s.startSession(c, a, id, method, device, slot, opened, addr)
}

// startSession makes the session of a successful login (passphrase,
// device credential or passkey) of the pinned, unlocked account a by the
// key slot slot, writes the audit log (with the failures that waited for
// it) and answers 201.
func (s *Server) startSession(c echo.Context, a *account, id, method, device, slot string, opened bool, addr netip.Addr) error {
	tok, sess, err := s.sess.create(a, method, device, slot)
	if err != nil {
		return err
	}
	s.metrics.loginSuccess.Add(1)
	entries := append(s.takeFailures(id), vault.AuditEntry{Time: sess.created.UTC(), Event: AuditLogin, Success: true, Method: method, Client: clientNet(addr)})
	if opened {
		// Opening the vault rolled back the imports a crash of phrd
		// interrupted: the owner sees in the audit log that they are gone.
		for _, rb := range a.v.RolledBack() {
			entries = append(entries, vault.AuditEntry{Time: sess.created.UTC(), Event: AuditImportRollback, Success: true, Ref: rb.FileSHA256, Counts: map[string]int{"records": rb.Records}})
		}
	}
	s.audit(id, a.v, entries...)
	c.Set(ctxAcct, id)
	return c.JSON(http.StatusCreated, api.Session{Token: tok, ExpiresAt: sess.expiresAt.UTC(), IdleTimeout: int(s.cfg.IdleTimeout / time.Second), Account: accountHandle(id)})
}

func (s *Server) getSession(c echo.Context) error {
	sess := sessionOf(c)
	return c.JSON(http.StatusOK, api.SessionInfo{Method: sess.method, CreatedAt: sess.created.UTC(), ExpiresAt: sess.expiresAt.UTC(), IdleExpiresAt: s.sess.idleEnd(sess).UTC(), Account: accountHandle(sess.acct.id)})
}

// accountHandle is the handle of the account with ID id that sessions
// show their client (api.Session.Account): a hash of the ID, which is
// itself a keyed hash of the username, so it tells nothing of the
// username and differs between servers.
func accountHandle(id string) string {
	sum := sha256.Sum256([]byte("phrd account handle\x00" + id))
	return hex.EncodeToString(sum[:8])
}

func (s *Server) deleteSession(c echo.Context) error {
	sess := sessionOf(c)
	if err := s.sess.end(sess); err != nil {
		return err
	}
	s.audit(sess.acct.id, sess.acct.v, vault.AuditEntry{Event: AuditLogout, Success: true, Method: sess.method})
	return c.NoContent(http.StatusNoContent)
}

// deviceSetting names the vault setting that remembers a device slot's
// recipient, so that revoking the slot ends the sessions it opened.
func deviceSetting(slotID string) string { return "phrd.device." + slotID }

// createDevice makes a device credential. It needs the passphrase, not
// only the session's token: a stolen token must not become a credential
// that outlives the session.
func (s *Server) createDevice(c echo.Context) error {
	var req api.DeviceRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	label := strings.TrimSpace(req.Label)
	switch {
	case label == "":
		label = "device"
	case !utf8.ValidString(label) || len(label) > 100:
		return &record.InputError{Field: "label", Msg: "must be valid text of at most 100 bytes"}
	}
	return s.withPassphrase(c, req.Passphrase, func(v *vault.Vault) error {
		id, err := age.GenerateX25519Identity()
		if err != nil {
			return err
		}
		slot, err := v.AddSlot(vault.SlotSpec{Kind: vault.SlotDevice, Label: label, Recipients: []age.Recipient{id.Recipient()}})
		if err != nil {
			return err
		}
		if err := v.SetSetting(deviceSetting(slot.ID), []byte(id.Recipient().String())); err != nil {
			return err
		}
		created := slot.Created
		if all, err := v.Slots(); err == nil {
			for _, sl := range all {
				if sl.ID == slot.ID {
					created = sl.Created
				}
			}
		}
		acct := sessionOf(c).acct.id
		s.audit(acct, v, vault.AuditEntry{Event: AuditDeviceAdd, Success: true, Ref: slot.ID, Label: label})
		return c.JSON(http.StatusCreated, api.DeviceCreated{Device: api.Device{ID: slot.ID, Label: label, Created: created.UTC()}, Credential: id.String()})
	})
}

func (s *Server) listDevices(c echo.Context) error {
	slots, err := vaultOf(c).Slots()
	if err != nil {
		return err
	}
	out := api.DeviceList{Devices: []api.Device{}}
	for _, sl := range slots {
		if sl.Kind == vault.SlotDevice {
			out.Devices = append(out.Devices, api.Device{ID: sl.ID, Label: sl.Label, Created: sl.Created.UTC()})
		}
	}
	return c.JSON(http.StatusOK, out)
}

func (s *Server) deleteDevice(c echo.Context) error {
	sess := sessionOf(c)
	v := sess.acct.v
	slotID := c.Param("id")
	slots, err := v.Slots()
	if err != nil {
		return err
	}
	var found *vault.Slot
	for i := range slots {
		if slots[i].ID == slotID && slots[i].Kind == vault.SlotDevice {
			found = &slots[i]
		}
	}
	if found == nil {
		return vault.ErrNotFound
	}
	// The slot goes, and the file is rewritten without it (vault
	// compaction): the credential opens nothing in it any more.
	if err := s.changed(sess.acct.id, v.RemoveSlot(slotID)); err != nil {
		return err
	}
	ended := 0
	if rcpt, err := v.Setting(deviceSetting(slotID)); err == nil {
		// The slot is gone, so its sessions' wrapped keys open nothing
		// on any node; their rows go too.
		if ended, err = s.sess.endDevice(sess.acct, string(rcpt)); err != nil {
			s.log.Warn("ending a removed device's sessions failed", acctAttr(sess.acct.id), "kind", errKind(err))
		}
		if err := v.DeleteSetting(deviceSetting(slotID)); err != nil {
			s.log.Warn("forgetting device recipient failed", acctAttr(sess.acct.id), "kind", errKind(err))
		}
	}
	s.forgetPasskey(sess.acct.id, v, slotID)
	s.audit(sess.acct.id, v, vault.AuditEntry{Event: AuditDeviceRemove, Success: true, Ref: slotID, Label: found.Label, Counts: map[string]int{"sessions_ended": ended}})
	return c.NoContent(http.StatusNoContent)
}
