package server

// Passkeys (WebAuthn) as a way into an account, the everyday one on a
// phone. A passkey is a device key slot like a device credential's; what
// differs is where its secret lives.
//
// Registering one (from a session, with the passphrase) makes 32 random
// bytes K. The passkey's user handle, which the authenticator keeps with
// the credential and hands back with every assertion, is the account ID
// (32 bytes) followed by K. K, read as an age X25519 identity, opens a
// new device slot of the vault; the server stores the slot, the
// identity's public recipient (as for device credentials, so that
// revoking the slot ends its sessions) and the credential's public key,
// sealed in the vault, and forgets K. Signing in with the passkey
// (discoverable: no username asked) returns the user handle: the server
// finds the account by its ID, opens the vault with K, reads the
// credential's public key from the vault and checks the assertion's
// signature with it before it makes a session. Neither the vault file nor
// the server's disk holds K: the vault opens only with what the
// authenticator releases after its own user verification.
//
// The relying party is the host of the server's public URL (a loopback
// address becomes "localhost": an IP address cannot be a relying party
// ID), and its origin the only origin accepted.

import (
	"bytes"
	"cmp"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"filippo.io/age"
	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"
	"github.com/labstack/echo/v4"
	"github.com/phr-project/phr/internal/seal"
	"github.com/phr-project/phr/pkg/record"
	"github.com/phr-project/phr/pkg/server/api"
	"github.com/phr-project/phr/pkg/vault"
)

// methodPasskey is the login method of a passkey session.
const methodPasskey = "passkey"

// passkeySetting names the vault setting that holds a passkey slot's
// credential (public key, sign count, label).
func passkeySetting(slotID string) string { return "phrd.passkey." + slotID }

// Ceremony bounds: a ceremony (the challenge between begin and finish)
// lives in the session store for ceremonyTTL, so that any node may finish
// it, and is used once.
const (
	ceremonyTTL   = 5 * time.Minute
	maxCeremonies = 10_000
	passkeyKeyLen = 32
	// userHandleLen is the account ID (32 bytes) and K (32 bytes): the
	// largest user handle WebAuthn allows.
	userHandleLen = 64
)

// passkeyRecord is what the vault keeps of a passkey, under
// passkeySetting(slot ID).
type passkeyRecord struct {
	Label      string              `json:"label"`
	Created    time.Time           `json:"created"`
	LastUsed   time.Time           `json:"last_used,omitzero"`
	Credential webauthn.Credential `json:"credential"`
}

// PasskeyInfo is a passkey as GET /api/v1/passkeys lists it.
type PasskeyInfo struct {
	ID       string     `json:"id"` // the device slot's ID: DELETE /api/v1/devices/{id} removes it
	Label    string     `json:"label"`
	Created  time.Time  `json:"created"`
	LastUsed *time.Time `json:"last_used,omitempty"`
}

// PasskeyRegisterRequest is the body of POST /api/v1/passkeys/register/begin.
type PasskeyRegisterRequest struct {
	Passphrase string `json:"passphrase"`
	// Username is shown by the authenticator's passkey list; it must be
	// this account's.
	Username string `json:"username"`
	Label    string `json:"label,omitempty"`
}

// PasskeyBegin answers a begin: the ceremony's ID, to send back with the
// credential, and the options for navigator.credentials.create or get
// (`{"publicKey": {...}}`, binary members base64url).
type PasskeyBegin struct {
	Ceremony string `json:"ceremony"`
	Options  any    `json:"options"`
}

// PasskeyFinishRequest is the body of the finish routes: the ceremony and
// the PublicKeyCredential as JSON (binary members base64url).
type PasskeyFinishRequest struct {
	Ceremony   string          `json:"ceremony"`
	Credential json.RawMessage `json:"credential"`
}

// ceremony is one begun registration or login, as the session store
// keeps it.
type ceremony struct {
	Data webauthn.SessionData `json:"data"`
	// Registration only: the hash of the session that began it, K and
	// the label. A registration is sealed under a key derived from the
	// session's token (registrationKey), so that K, which will open the
	// vault, is never in the store under a key the server keeps.
	Session []byte `json:"session,omitempty"`
	Key     []byte `json:"key,omitempty"`
	Label   string `json:"label,omitempty"`
}

// Ceremony kinds.
const (
	ceremonyLogin    = "login"
	ceremonyRegister = "register"
)

var errTooManyCeremonies = newError(http.StatusServiceUnavailable, api.CodeUnavailable, "too many passkey sign-ins at once; try again shortly")

func errTooManyCeremoniesRetry() error {
	e := *errTooManyCeremonies
	e.retryAfter = 5 * time.Second
	return &e
}

// registrationKey is the AEAD that seals the registration ceremonies of
// the request's session: keyed from its bearer token.
func registrationKey(c echo.Context) cipher.AEAD {
	k, err := hkdf.Key(sha256.New, []byte(c.Get(ctxToken).(string)), nil, "phrd passkey registration v1", seal.KeySize)
	if err == nil {
		var aead cipher.AEAD
		if aead, err = seal.New(k); err == nil {
			return aead
		}
	}
	panic("phrd: registration key: " + err.Error())
}

// putCeremony stores a begun ceremony sealed under aead and returns its
// ID.
func (p *passkeys) putCeremony(kind string, aead cipher.AEAD, c *ceremony) (string, error) {
	var b [18]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	id := base64.RawURLEncoding.EncodeToString(b[:])
	plain, err := json.Marshal(c)
	if err != nil {
		return "", err
	}
	now := p.s.cfg.Now()
	if err := p.s.sess.store.putCeremony(kind, id, aead, plain, now, now.Add(ceremonyTTL), maxCeremonies); err != nil {
		return "", err
	}
	return id, nil
}

// takeCeremony removes and returns a live ceremony (nil: unknown, used,
// expired, or not sealed under aead).
func (p *passkeys) takeCeremony(kind, id string, aead cipher.AEAD) (*ceremony, error) {
	plain, err := p.s.sess.store.takeCeremony(kind, id, aead, p.s.cfg.Now())
	if err != nil || plain == nil {
		return nil, err
	}
	var c ceremony
	if err := json.Unmarshal(plain, &c); err != nil {
		return nil, nil
	}
	return &c, nil
}

// passkeys serves the WebAuthn routes.
type passkeys struct {
	s      *Server
	wa     *webauthn.WebAuthn // nil: passkeys are off (offErr says why)
	offErr error
}

// relyingParty derives the WebAuthn relying party from the server's
// public URL: the host is the relying party ID, the URL's origin the one
// origin accepted. A loopback address becomes localhost (an IP address
// cannot be a relying party ID; the app must then be opened at
// http://localhost:PORT). Plain http is accepted for localhost only, as
// browsers offer WebAuthn only in secure contexts.
func relyingParty(publicURL string) (id, origin string, err error) {
	u, err := url.Parse(strings.TrimRight(publicURL, "/"))
	if err != nil || u.Hostname() == "" {
		return "", "", errors.New("passkeys need the server's public URL (--public-url) to name its host")
	}
	host := strings.ToLower(u.Hostname())
	if ip := net.ParseIP(host); ip != nil {
		if !ip.IsLoopback() {
			return "", "", errors.New("passkeys need a host name, not an IP address, in the server's public URL (--public-url https://phr.example.org)")
		}
		host = "localhost"
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && host == "localhost":
	default:
		return "", "", errors.New("passkeys need an https public URL (--public-url), or http on localhost")
	}
	origin = u.Scheme + "://" + host
	if p := u.Port(); p != "" {
		origin += ":" + p
	}
	return host, origin, nil
}

// mountPasskeys adds the passkey routes (and the account's session list).
func (s *Server) mountPasskeys(a *echo.Group, auth echo.MiddlewareFunc) {
	p := &passkeys{s: s}
	if id, origin, err := relyingParty(s.cfg.PublicURL); err != nil {
		p.offErr = err
	} else if p.wa, err = webauthn.New(&webauthn.Config{
		RPID: id, RPDisplayName: "phr", RPOrigins: []string{origin},
		AttestationPreference: protocol.PreferNoAttestation,
		Timeouts: webauthn.TimeoutsConfig{
			Login:        webauthn.TimeoutConfig{Timeout: ceremonyTTL, TimeoutUVD: ceremonyTTL},
			Registration: webauthn.TimeoutConfig{Timeout: ceremonyTTL, TimeoutUVD: ceremonyTTL},
		},
	}); err != nil {
		p.offErr = err
	}
	if p.offErr != nil {
		s.log.Info("passkeys are off", "reason", p.offErr.Error())
	}
	a.GET("/passkeys", p.list, auth)
	a.POST("/passkeys/register/begin", p.registerBegin, auth)
	a.POST("/passkeys/register/finish", p.registerFinish, auth)
	a.POST("/passkeys/login/begin", p.loginBegin)
	a.POST("/passkeys/login/finish", p.loginFinish)
	a.GET("/sessions", s.listSessions, auth)
	a.DELETE("/sessions/:id", s.deleteOtherSession, auth)
}

// off is the answer of every ceremony route when passkeys are off.
func (p *passkeys) off() error {
	return newError(http.StatusServiceUnavailable, api.CodeUnavailable, "passkeys are off on this server: %s", p.offErr.Error())
}

// passkeyIdentity is the age X25519 identity whose scalar is key.
func passkeyIdentity(key []byte) (*age.X25519Identity, error) {
	return age.ParseX25519Identity(strings.ToUpper(bech32Encode("age-secret-key-", key)))
}

// bech32Encode writes data in bech32 (BIP 173) under hrp, without its
// length limit, as age does for its keys.
func bech32Encode(hrp string, data []byte) string {
	const charset = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
	// 8-bit bytes to 5-bit groups, padded.
	var five []byte
	acc, bits := 0, 0
	for _, b := range data {
		acc = acc<<8 | int(b)
		bits += 8
		for bits >= 5 {
			bits -= 5
			five = append(five, byte(acc>>bits)&31)
		}
	}
	if bits > 0 {
		five = append(five, byte(acc<<(5-bits))&31)
	}
	values := make([]byte, 0, 2*len(hrp)+1+len(five)+6)
	for i := 0; i < len(hrp); i++ {
		values = append(values, hrp[i]>>5)
	}
	values = append(values, 0)
	for i := 0; i < len(hrp); i++ {
		values = append(values, hrp[i]&31)
	}
	values = append(values, five...)
	values = append(values, 0, 0, 0, 0, 0, 0)
	gen := [5]uint32{0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3}
	chk := uint32(1)
	for _, v := range values {
		top := chk >> 25
		chk = (chk&0x1ffffff)<<5 ^ uint32(v)
		for i := range 5 {
			if top>>i&1 == 1 {
				chk ^= gen[i]
			}
		}
	}
	chk ^= 1
	var sb strings.Builder
	sb.WriteString(hrp)
	sb.WriteByte('1')
	for _, v := range five {
		sb.WriteByte(charset[v])
	}
	for i := range 6 {
		sb.WriteByte(charset[chk>>(5*(5-i))&31])
	}
	return sb.String()
}

// passkeyUser is the webauthn.User of one ceremony.
type passkeyUser struct {
	handle []byte
	name   string
	creds  []webauthn.Credential
}

func (u *passkeyUser) WebAuthnID() []byte                         { return u.handle }
func (u *passkeyUser) WebAuthnName() string                       { return u.name }
func (u *passkeyUser) WebAuthnDisplayName() string                { return u.name }
func (u *passkeyUser) WebAuthnCredentials() []webauthn.Credential { return u.creds }

var _ webauthn.User = (*passkeyUser)(nil)

// passkeysOf returns the account's passkeys: its device slots that have a
// passkey record.
func passkeysOf(v *vault.Vault) (map[string]passkeyRecord, error) {
	slots, err := v.Slots()
	if err != nil {
		return nil, err
	}
	out := map[string]passkeyRecord{}
	for _, sl := range slots {
		if sl.Kind != vault.SlotDevice {
			continue
		}
		data, err := v.Setting(passkeySetting(sl.ID))
		if errors.Is(err, vault.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		var rec passkeyRecord
		if err := json.Unmarshal(data, &rec); err != nil {
			return nil, fmt.Errorf("%w: passkey record", vault.ErrCorrupt)
		}
		rec.Label = sl.Label
		out[sl.ID] = rec
	}
	return out, nil
}

// forgetPasskey removes the passkey record of a device slot that was
// removed (nothing when the slot was no passkey).
func (s *Server) forgetPasskey(acct string, v *vault.Vault, slotID string) {
	if err := v.DeleteSetting(passkeySetting(slotID)); err != nil {
		s.log.Warn("forgetting passkey failed", acctAttr(acct), "kind", errKind(err))
	}
}

func (p *passkeys) list(c echo.Context) error {
	recs, err := passkeysOf(vaultOf(c))
	if err != nil {
		return err
	}
	out := []PasskeyInfo{}
	for id, r := range recs {
		pi := PasskeyInfo{ID: id, Label: r.Label, Created: r.Created.UTC()}
		if !r.LastUsed.IsZero() {
			t := r.LastUsed.UTC()
			pi.LastUsed = &t
		}
		out = append(out, pi)
	}
	slices.SortFunc(out, func(x, y PasskeyInfo) int {
		return cmp.Or(x.Created.Compare(y.Created), strings.Compare(x.ID, y.ID))
	})
	return c.JSON(http.StatusOK, map[string]any{"passkeys": out})
}

// registerBegin starts adding a passkey. Like a device credential, it
// needs the passphrase: a stolen session token must not become a way in
// that outlives the session. The passphrase is checked here, before the
// authenticator makes a credential, so that a wrong one leaves no orphan
// passkey on the phone.
func (p *passkeys) registerBegin(c echo.Context) error {
	if p.wa == nil {
		return p.off()
	}
	var req PasskeyRegisterRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	label := strings.TrimSpace(req.Label)
	switch {
	case label == "":
		label = "passkey"
	case !utf8.ValidString(label) || len(label) > 100:
		return &record.InputError{Field: "label", Msg: "must be valid text of at most 100 bytes"}
	}
	sess := sessionOf(c)
	u, err := NormalizeUsername(req.Username)
	if err != nil {
		return err
	}
	if p.s.data.accountID(u) != sess.acct.id {
		return &record.InputError{Field: "username", Msg: "is not this account's"}
	}
	return p.s.withPassphrase(c, req.Passphrase, func(v *vault.Vault) error {
		existing, err := passkeysOf(v)
		if err != nil {
			return err
		}
		var exclude []protocol.CredentialDescriptor
		for _, r := range existing {
			exclude = append(exclude, r.Credential.Descriptor())
		}
		acct, err := hex.DecodeString(sess.acct.id)
		if err != nil || len(acct) != 32 {
			return errors.New("account ID is not 32 bytes of hex")
		}
		key := make([]byte, passkeyKeyLen)
		if _, err := rand.Read(key); err != nil {
			return err
		}
		user := &passkeyUser{handle: append(acct, key...), name: u}
		opts := []webauthn.RegistrationOption{
			webauthn.WithAuthenticatorSelection(protocol.AuthenticatorSelection{
				ResidentKey:      protocol.ResidentKeyRequirementRequired,
				UserVerification: protocol.VerificationRequired,
			}),
			webauthn.WithConveyancePreference(protocol.PreferNoAttestation),
		}
		if len(exclude) > 0 {
			opts = append(opts, webauthn.WithExclusions(exclude))
		}
		creation, data, err := p.wa.BeginRegistration(user, opts...)
		if err != nil {
			return err
		}
		id, err := p.putCeremony(ceremonyRegister, registrationKey(c), &ceremony{Data: *data, Session: sess.hash[:], Key: key, Label: label})
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, PasskeyBegin{Ceremony: id, Options: creation})
	})
}

// errCeremony answers a finish whose ceremony is unknown, used or expired.
var errCeremony = newError(http.StatusBadRequest, api.CodeBadRequest, "ceremony: unknown or expired; begin again")

// registerFinish checks the authenticator's new credential and adds the
// passkey's slot.
func (p *passkeys) registerFinish(c echo.Context) error {
	if p.wa == nil {
		return p.off()
	}
	var req PasskeyFinishRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	sess := sessionOf(c)
	cer, err := p.takeCeremony(ceremonyRegister, req.Ceremony, registrationKey(c))
	if err != nil {
		return err
	}
	if cer == nil || subtle.ConstantTimeCompare(cer.Session, sess.hash[:]) != 1 || len(cer.Key) != passkeyKeyLen {
		return errCeremony
	}
	parsed, err := protocol.ParseCredentialCreationResponseBytes(req.Credential)
	if err != nil {
		return badRequest("credential: not a WebAuthn registration response")
	}
	acct, _ := hex.DecodeString(sess.acct.id)
	user := &passkeyUser{handle: append(acct, cer.Key...)}
	cred, err := p.wa.CreateCredential(user, cer.Data, parsed)
	if err != nil {
		return badRequest("credential: refused (%s)", webauthnReason(err))
	}
	ident, err := passkeyIdentity(cer.Key)
	if err != nil {
		return err
	}
	v := sess.acct.v
	slot, err := v.AddSlot(vault.SlotSpec{Kind: vault.SlotDevice, Label: cer.Label, Recipients: []age.Recipient{ident.Recipient()}})
	if err != nil {
		return err
	}
	created := p.s.cfg.Now().UTC()
	rec, err := json.Marshal(passkeyRecord{Label: cer.Label, Created: created, Credential: *cred})
	if err == nil {
		err = v.SetSetting(deviceSetting(slot.ID), []byte(ident.Recipient().String()))
	}
	if err == nil {
		err = v.SetSetting(passkeySetting(slot.ID), rec)
	}
	if err != nil {
		// Without its records the slot would be a way in the owner
		// cannot see as a passkey: take it out again.
		if rerr := v.RemoveSlot(slot.ID); rerr != nil && !errors.Is(rerr, vault.ErrNotCompacted) {
			p.s.log.Error("removing a half-added passkey slot failed", acctAttr(sess.acct.id), "kind", errKind(rerr))
		}
		return err
	}
	p.s.audit(sess.acct.id, v, vault.AuditEntry{Event: AuditDeviceAdd, Success: true, Method: methodPasskey, Ref: slot.ID, Label: cer.Label})
	return c.JSON(http.StatusCreated, PasskeyInfo{ID: slot.ID, Label: cer.Label, Created: created})
}

// loginBegin starts a discoverable passkey sign-in: no username, the
// authenticator offers this site's passkeys. It counts against the
// per-client login limit.
func (p *passkeys) loginBegin(c echo.Context) error {
	if p.wa == nil {
		return p.off()
	}
	var empty struct{}
	if err := decodeJSON(c, &empty); err != nil {
		return err
	}
	if ok, wait := p.s.clientLimit.allow(clientKey(clientAddr(c))); !ok {
		return p.s.rateLimited(wait)
	}
	assertion, data, err := p.wa.BeginDiscoverableLogin(webauthn.WithUserVerification(protocol.VerificationRequired))
	if err != nil {
		return err
	}
	id, err := p.putCeremony(ceremonyLogin, p.s.sess.store.rows, &ceremony{Data: *data})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, PasskeyBegin{Ceremony: id, Options: assertion})
}

// loginFinish checks a passkey assertion and makes a session. A wrong,
// unknown or revoked passkey gets the same 401 as a wrong passphrase;
// like a device login, only the per-client limit applies (K has 256
// bits).
func (p *passkeys) loginFinish(c echo.Context) error {
	if p.wa == nil {
		return p.off()
	}
	var req PasskeyFinishRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	s := p.s
	addr := clientAddr(c)
	ck := clientKey(addr)
	if ok, wait := s.clientLimit.allow(ck); !ok {
		return s.rateLimited(wait)
	}
	cer, err := p.takeCeremony(ceremonyLogin, req.Ceremony, s.sess.store.rows)
	if err != nil {
		return err
	}
	if cer == nil {
		return errCeremony
	}
	parsed, err := protocol.ParseCredentialRequestResponseBytes(req.Credential)
	if err != nil {
		return badRequest("credential: not a WebAuthn assertion")
	}
	fail := func() error {
		s.metrics.loginFailures.Add(1)
		return errUnauthorized
	}

	// The user handle names the account and holds K. Everything the
	// handler learns it leaves here for after the signature check.
	var (
		a       *account
		acctID  string
		slotID  string
		rec     passkeyRecord
		ident   *age.X25519Identity
		opened  bool
		lookErr error // why the handler found no user
	)
	defer func() {
		if a != nil {
			s.sess.unpin(a)
		}
	}()
	handler := func(_, handle []byte) (webauthn.User, error) {
		lookErr = errWrongSecret
		if len(handle) != userHandleLen {
			return nil, lookErr
		}
		acctID = hex.EncodeToString(handle[:32])
		id, err := passkeyIdentity(handle[32:])
		if err != nil {
			return nil, lookErr
		}
		if ok, err := s.data.exists(acctID); err != nil {
			return nil, err
		} else if !ok {
			s.dummy.identities(id) // the work of a wrong key, and the same answer
			acctID = ""
			return nil, lookErr
		}
		secret := vault.Identities(id)
		if a, opened, _, err = s.sess.pinUnlocked(acctID, secret, false); err != nil {
			lookErr = err
			return nil, err
		}
		ids, err := a.v.SlotsOpenedBy(secret)
		if err != nil || len(ids) == 0 {
			lookErr = cmpErr(err, errWrongSecret)
			return nil, lookErr
		}
		data, err := a.v.Setting(passkeySetting(ids[0]))
		if err != nil {
			lookErr = cmpErr(err, errWrongSecret)
			if errors.Is(err, vault.ErrNotFound) {
				lookErr = errWrongSecret // a device slot, but no passkey's
			}
			return nil, lookErr
		}
		if err := json.Unmarshal(data, &rec); err != nil {
			lookErr = fmt.Errorf("%w: passkey record", vault.ErrCorrupt)
			return nil, lookErr
		}
		slotID, ident, lookErr = ids[0], id, nil
		return &passkeyUser{handle: bytes.Clone(handle), creds: []webauthn.Credential{rec.Credential}}, nil
	}
	_, cred, err := p.wa.ValidatePasskeyLogin(handler, cer.Data, parsed)
	if err == nil && cred.Authenticator.CloneWarning {
		// The signature counter went back: another copy of the
		// credential's private key is in use.
		s.log.Warn("passkey sign counter went back; login refused", acctAttr(acctID))
		err = errors.New("clone warning")
	}
	if err != nil {
		if lookErr != nil && !errors.Is(lookErr, errWrongSecret) && !errors.Is(lookErr, vault.ErrCorrupt) {
			// The vault is busy or the server shutting down: no guess.
			s.clientLimit.refund(ck)
			return lookErr
		}
		if acctID != "" {
			s.failed(acctID, vault.AuditEntry{Time: s.cfg.Now().UTC(), Event: AuditLogin, Method: methodPasskey, Client: clientNet(addr)})
		}
		return fail()
	}
	rec.Credential = *cred
	rec.LastUsed = s.cfg.Now().UTC()
	if data, err := json.Marshal(rec); err == nil {
		if err := a.v.SetSetting(passkeySetting(slotID), data); err != nil {
			s.log.Warn("updating a passkey's sign count failed", acctAttr(acctID), "kind", errKind(err))
		}
	}
	return s.startSession(c, a, acctID, methodPasskey, ident.Recipient().String(), slotID, opened, addr)
}

// cmpErr is err, or def when err is nil.
func cmpErr(err, def error) error {
	if err != nil {
		return err
	}
	return def
}

// webauthnReason is the library's short description of why it refused a
// ceremony (no input is quoted in it).
func webauthnReason(err error) string {
	var pe *protocol.Error
	if errors.As(err, &pe) && pe.Details != "" {
		return pe.Details
	}
	return "the credential does not verify"
}
