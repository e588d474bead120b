package server

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"filippo.io/age"
	"github.com/phr-project/phr/pkg/server/api"
)

// softAuthenticator is a WebAuthn authenticator in software for the
// tests: an ES256 key, "none" attestation, user presence and
// verification, and the user handle kept with the credential, as a
// discoverable credential (a passkey) keeps it. The browser's own
// authenticator is tested in pkg/app (TestAppInBrowser, Chromium's
// virtual authenticator).
type softAuthenticator struct {
	t      *testing.T
	key    *ecdsa.PrivateKey
	credID []byte
	rpID   string
	origin string
	handle []byte
	count  uint32
}

func newSoftAuthenticator(t *testing.T, publicURL string) *softAuthenticator {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id := make([]byte, 32)
	rand.Read(id)
	u, _ := url.Parse(publicURL)
	return &softAuthenticator{t: t, key: key, credID: id, rpID: "localhost", origin: "http://localhost:" + u.Port()}
}

var b64u = base64.RawURLEncoding

// cborHead writes a CBOR item head (RFC 8949): major type and argument.
func cborHead(b *bytes.Buffer, major byte, n uint64) {
	switch {
	case n < 24:
		b.WriteByte(major<<5 | byte(n))
	case n < 256:
		b.WriteByte(major<<5 | 24)
		b.WriteByte(byte(n))
	default:
		b.WriteByte(major<<5 | 25)
		binary.Write(b, binary.BigEndian, uint16(n))
	}
}

func cborInt(b *bytes.Buffer, v int) {
	if v >= 0 {
		cborHead(b, 0, uint64(v))
	} else {
		cborHead(b, 1, uint64(-1-v))
	}
}

func cborBytes(b *bytes.Buffer, p []byte) { cborHead(b, 2, uint64(len(p))); b.Write(p) }
func cborText(b *bytes.Buffer, s string)  { cborHead(b, 3, uint64(len(s))); b.WriteString(s) }

// coseKey is the credential's public key as a COSE EC2 key (ES256).
func (a *softAuthenticator) coseKey() []byte {
	var b bytes.Buffer
	pub, err := a.key.PublicKey.Bytes() // 0x04 || X || Y
	if err != nil {
		a.t.Fatal(err)
	}
	x, y := pub[1:33], pub[33:65]
	cborHead(&b, 5, 5)
	cborInt(&b, 1)
	cborInt(&b, 2) // kty: EC2
	cborInt(&b, 3)
	cborInt(&b, -7) // alg: ES256
	cborInt(&b, -1)
	cborInt(&b, 1) // crv: P-256
	cborInt(&b, -2)
	cborBytes(&b, x)
	cborInt(&b, -3)
	cborBytes(&b, y)
	return b.Bytes()
}

func (a *softAuthenticator) authData(flags byte, attested bool) []byte {
	rp := sha256.Sum256([]byte(a.rpID))
	var b bytes.Buffer
	b.Write(rp[:])
	b.WriteByte(flags)
	binary.Write(&b, binary.BigEndian, a.count)
	if attested {
		b.Write(make([]byte, 16)) // AAGUID
		binary.Write(&b, binary.BigEndian, uint16(len(a.credID)))
		b.Write(a.credID)
		b.Write(a.coseKey())
	}
	return b.Bytes()
}

func (a *softAuthenticator) clientData(typ, challenge string) []byte {
	cd, _ := json.Marshal(map[string]any{"type": typ, "challenge": challenge, "origin": a.origin, "crossOrigin": false})
	return cd
}

// options reads the publicKey options of a begin answer.
func beginOptions(t *testing.T, r *resp) (ceremony string, pk map[string]any) {
	t.Helper()
	var begin struct {
		Ceremony string `json:"ceremony"`
		Options  struct {
			PublicKey map[string]any `json:"publicKey"`
		} `json:"options"`
	}
	r.decode(t, &begin)
	if begin.Ceremony == "" || begin.Options.PublicKey == nil {
		t.Fatalf("begin answered %s", r.body)
	}
	return begin.Ceremony, begin.Options.PublicKey
}

// create answers navigator.credentials.create.
func (a *softAuthenticator) create(pk map[string]any) json.RawMessage {
	a.t.Helper()
	user := pk["user"].(map[string]any)
	handle, err := b64u.DecodeString(user["id"].(string))
	if err != nil {
		a.t.Fatal(err)
	}
	a.handle = handle
	if rp := pk["rp"].(map[string]any)["id"]; rp != a.rpID {
		a.t.Fatalf("relying party %v, want %s", rp, a.rpID)
	}
	var att bytes.Buffer
	cborHead(&att, 5, 3)
	cborText(&att, "fmt")
	cborText(&att, "none")
	cborText(&att, "attStmt")
	cborHead(&att, 5, 0)
	cborText(&att, "authData")
	cborBytes(&att, a.authData(0x01|0x04|0x40, true))
	out, _ := json.Marshal(map[string]any{
		"id": b64u.EncodeToString(a.credID), "rawId": b64u.EncodeToString(a.credID), "type": "public-key",
		"response": map[string]any{
			"clientDataJSON":    b64u.EncodeToString(a.clientData("webauthn.create", pk["challenge"].(string))),
			"attestationObject": b64u.EncodeToString(att.Bytes()),
		},
		"clientExtensionResults": map[string]any{},
	})
	return out
}

// get answers navigator.credentials.get with handle as the user handle.
func (a *softAuthenticator) get(pk map[string]any, handle []byte) json.RawMessage {
	a.t.Helper()
	a.count++
	ad := a.authData(0x01|0x04, false)
	cd := a.clientData("webauthn.get", pk["challenge"].(string))
	h := sha256.Sum256(cd)
	digest := sha256.Sum256(append(append([]byte(nil), ad...), h[:]...))
	sig, err := ecdsa.SignASN1(rand.Reader, a.key, digest[:])
	if err != nil {
		a.t.Fatal(err)
	}
	out, _ := json.Marshal(map[string]any{
		"id": b64u.EncodeToString(a.credID), "rawId": b64u.EncodeToString(a.credID), "type": "public-key",
		"response": map[string]any{
			"clientDataJSON":    b64u.EncodeToString(cd),
			"authenticatorData": b64u.EncodeToString(ad),
			"signature":         b64u.EncodeToString(sig),
			"userHandle":        b64u.EncodeToString(handle),
		},
		"clientExtensionResults": map[string]any{},
	})
	return out
}

// registerPasskey adds a passkey to c's account with a.
func registerPasskey(t *testing.T, c *client, a *softAuthenticator, user, label string) PasskeyInfo {
	t.Helper()
	r := c.do("POST", "/api/v1/passkeys/register/begin", PasskeyRegisterRequest{Passphrase: testPass, Username: user, Label: label})
	want(t, r, http.StatusOK)
	cer, pk := beginOptions(t, r)
	r = c.do("POST", "/api/v1/passkeys/register/finish", PasskeyFinishRequest{Ceremony: cer, Credential: a.create(pk)})
	want(t, r, http.StatusCreated)
	var info PasskeyInfo
	r.decode(t, &info)
	return info
}

// passkeyLogin signs in with a; handle replaces the stored user handle
// when set. It returns the answer.
func passkeyLogin(t *testing.T, ts *testServer, a *softAuthenticator, handle []byte, tamper func(json.RawMessage) json.RawMessage) *resp {
	t.Helper()
	c := ts.client()
	r := c.do("POST", "/api/v1/passkeys/login/begin", map[string]any{})
	want(t, r, http.StatusOK)
	cer, pk := beginOptions(t, r)
	if pk["userVerification"] != "required" {
		t.Errorf("login asks userVerification %v, want required", pk["userVerification"])
	}
	if handle == nil {
		handle = a.handle
	}
	cred := a.get(pk, handle)
	if tamper != nil {
		cred = tamper(cred)
	}
	return c.do("POST", "/api/v1/passkeys/login/finish", PasskeyFinishRequest{Ceremony: cer, Credential: cred})
}

func sessionToken(t *testing.T, r *resp) string {
	t.Helper()
	var s api.Session
	r.decode(t, &s)
	if s.Token == "" {
		t.Fatalf("no token in %s", r.body)
	}
	return s.Token
}

// TestPasskeys: a passkey added from a passphrase session signs in without
// the passphrase, as method "passkey"; the vault opens only with the user
// handle's key and a signature of the registered credential; every way a
// sign-in can be wrong is the same 401; removing the passkey, or changing
// the passphrase, ends it.
func TestPasskeys(t *testing.T) {
	ts := newTestServer(t, nil)
	alice := ts.signup("alice")
	ts.signup("bob")
	auth := newSoftAuthenticator(t, ts.url)

	// Registering needs the passphrase and the account's own username.
	for _, tc := range []struct {
		name   string
		req    PasskeyRegisterRequest
		status int
	}{
		{"wrong passphrase", PasskeyRegisterRequest{Passphrase: "not the passphrase", Username: "alice"}, http.StatusUnauthorized},
		{"another account's username", PasskeyRegisterRequest{Passphrase: testPass, Username: "bob"}, http.StatusBadRequest},
		{"no username", PasskeyRegisterRequest{Passphrase: testPass}, http.StatusBadRequest},
		{"label too long", PasskeyRegisterRequest{Passphrase: testPass, Username: "alice", Label: strings.Repeat("x", 101)}, http.StatusBadRequest},
	} {
		if r := alice.do("POST", "/api/v1/passkeys/register/begin", tc.req); r.status != tc.status {
			t.Errorf("%s: status %d, want %d: %s", tc.name, r.status, tc.status, r.body)
		}
	}
	// Without a session there is no registering.
	if r := ts.client().do("POST", "/api/v1/passkeys/register/begin", PasskeyRegisterRequest{Passphrase: testPass, Username: "alice"}); r.status != http.StatusUnauthorized {
		t.Errorf("register without a session: %d", r.status)
	}

	info := registerPasskey(t, alice, auth, "alice", "Pixel")
	if info.Label != "Pixel" || info.ID == "" {
		t.Fatalf("registered %+v", info)
	}
	if len(auth.handle) != userHandleLen {
		t.Fatalf("user handle of %d bytes, want %d", len(auth.handle), userHandleLen)
	}
	var list struct{ Passkeys []PasskeyInfo }
	alice.do("GET", "/api/v1/passkeys", nil).decode(t, &list)
	if len(list.Passkeys) != 1 || list.Passkeys[0].ID != info.ID || list.Passkeys[0].LastUsed != nil {
		t.Fatalf("passkeys: %+v", list.Passkeys)
	}
	// A second registration on the same authenticator is excluded.
	r := alice.do("POST", "/api/v1/passkeys/register/begin", PasskeyRegisterRequest{Passphrase: testPass, Username: "alice"})
	want(t, r, http.StatusOK)
	_, pk := beginOptions(t, r)
	if ex, _ := pk["excludeCredentials"].([]any); len(ex) != 1 {
		t.Errorf("excludeCredentials %v, want the registered passkey", pk["excludeCredentials"])
	}

	// Signing in.
	r = passkeyLogin(t, ts, auth, nil, nil)
	want(t, r, http.StatusCreated)
	pkClient := &client{t: t, base: ts.url, token: sessionToken(t, r)}
	var cur api.SessionInfo
	pkClient.do("GET", "/api/v1/sessions/current", nil).decode(t, &cur)
	if cur.Method != methodPasskey {
		t.Errorf("session method %q, want passkey", cur.Method)
	}
	alice.do("GET", "/api/v1/passkeys", nil).decode(t, &list)
	if list.Passkeys[0].LastUsed == nil {
		t.Error("last use not recorded")
	}
	var audit api.Audit
	alice.do("GET", "/api/v1/audit", nil).decode(t, &audit)
	if e := audit.Entries[0]; e.Event != AuditLogin || e.Method != methodPasskey || !e.Success {
		t.Errorf("newest audit entry %+v, want a passkey login", e)
	}

	// Wrong sign-ins: all 401, none makes a session.
	otherKey := make([]byte, 32)
	rand.Read(otherKey)
	unknownAcct := append(bytes.Repeat([]byte{7}, 32), auth.handle[32:]...)
	wrongKey := append(append([]byte(nil), auth.handle[:32]...), otherKey...)
	flipSig := func(cred json.RawMessage) json.RawMessage {
		var m map[string]any
		json.Unmarshal(cred, &m)
		resp := m["response"].(map[string]any)
		sig, _ := b64u.DecodeString(resp["signature"].(string))
		sig[len(sig)-1] ^= 1
		resp["signature"] = b64u.EncodeToString(sig)
		out, _ := json.Marshal(m)
		return out
	}
	for _, tc := range []struct {
		name   string
		a      *softAuthenticator
		handle []byte
		tamper func(json.RawMessage) json.RawMessage
	}{
		{"a signature that does not verify", auth, nil, flipSig},
		{"another key in the user handle", auth, wrongKey, nil},
		{"an account that does not exist", auth, unknownAcct, nil},
		{"a short user handle", auth, auth.handle[:40], nil},
		{"another authenticator with a copied user handle", func() *softAuthenticator {
			o := newSoftAuthenticator(t, ts.url)
			o.handle = auth.handle
			return o
		}(), nil, nil},
		{"another origin", func() *softAuthenticator {
			o := *auth
			o.origin = "http://evil.example"
			return &o
		}(), nil, nil},
	} {
		r := passkeyLogin(t, ts, tc.a, tc.handle, tc.tamper)
		if r.status != http.StatusUnauthorized || r.errCode() != api.CodeUnauthorized {
			t.Errorf("%s: status %d %s, want 401", tc.name, r.status, r.body)
		}
	}

	// A ceremony is used once.
	c := ts.client()
	r = c.do("POST", "/api/v1/passkeys/login/begin", map[string]any{})
	cer, pk := beginOptions(t, r)
	cred := auth.get(pk, auth.handle)
	want(t, c.do("POST", "/api/v1/passkeys/login/finish", PasskeyFinishRequest{Ceremony: cer, Credential: cred}), http.StatusCreated)
	if r := c.do("POST", "/api/v1/passkeys/login/finish", PasskeyFinishRequest{Ceremony: cer, Credential: cred}); r.status != http.StatusBadRequest {
		t.Errorf("ceremony used twice: %d %s", r.status, r.body)
	}
	// A registration ceremony is the session's own.
	r = alice.do("POST", "/api/v1/passkeys/register/begin", PasskeyRegisterRequest{Passphrase: testPass, Username: "alice"})
	cer, pk = beginOptions(t, r)
	other := newSoftAuthenticator(t, ts.url)
	if r := pkClient.do("POST", "/api/v1/passkeys/register/finish", PasskeyFinishRequest{Ceremony: cer, Credential: other.create(pk)}); r.status != http.StatusBadRequest {
		t.Errorf("another session finished a registration: %d", r.status)
	}

	// Removing the passkey ends its sessions and its sign-ins; its record
	// goes with the slot.
	want(t, alice.do("DELETE", "/api/v1/devices/"+info.ID, nil), http.StatusNoContent)
	if r := pkClient.do("GET", "/api/v1/sessions/current", nil); r.status != http.StatusUnauthorized {
		t.Errorf("a removed passkey's session lives on: %d", r.status)
	}
	if r := passkeyLogin(t, ts, auth, nil, nil); r.status != http.StatusUnauthorized {
		t.Errorf("removed passkey signs in: %d %s", r.status, r.body)
	}
	alice.do("GET", "/api/v1/passkeys", nil).decode(t, &list)
	if len(list.Passkeys) != 0 {
		t.Errorf("passkeys after removal: %+v", list.Passkeys)
	}
	sess := alice.do("GET", "/api/v1/sessions/current", nil)
	want(t, sess, http.StatusOK)
	a := ts.sess.sessionsOf(mustSession(t, ts, alice.token).acct)[0].acct
	if _, err := a.v.Setting(passkeySetting(info.ID)); err == nil {
		t.Error("the removed passkey's record is still in the vault")
	}

	// A passphrase change (from a passphrase session) removes every
	// passkey, as every other device credential.
	auth2 := newSoftAuthenticator(t, ts.url)
	registerPasskey(t, alice, auth2, "alice", "Phone")
	want(t, passkeyLogin(t, ts, auth2, nil, nil), http.StatusCreated)
	want(t, alice.do("POST", "/api/v1/keys/passphrase", map[string]string{"passphrase": testPass, "new_passphrase": testPass + " 2"}), http.StatusNoContent)
	if r := passkeyLogin(t, ts, auth2, nil, nil); r.status != http.StatusUnauthorized {
		t.Errorf("passkey signs in after a passphrase change: %d", r.status)
	}
}

// mustSession finds the live session of a token.
func mustSession(t *testing.T, ts *testServer, token string) *session {
	t.Helper()
	s, err := ts.sess.lookup(token)
	if err != nil {
		t.Fatal(err)
	}
	ts.sess.unpin(s.acct)
	return s
}

// TestPasskeyKeepsCallersPasskey: changing the passphrase from a passkey
// session keeps that passkey (as for the caller's device credential).
func TestPasskeyKeepsCallersPasskey(t *testing.T) {
	ts := newTestServer(t, nil)
	alice := ts.signup("alice")
	auth := newSoftAuthenticator(t, ts.url)
	registerPasskey(t, alice, auth, "alice", "Phone")
	r := passkeyLogin(t, ts, auth, nil, nil)
	want(t, r, http.StatusCreated)
	pkc := &client{t: t, base: ts.url, token: sessionToken(t, r)}
	want(t, pkc.do("POST", "/api/v1/keys/passphrase", map[string]string{"passphrase": testPass, "new_passphrase": testPass + " 2"}), http.StatusNoContent)
	if r := alice.do("GET", "/api/v1/sessions/current", nil); r.status != http.StatusUnauthorized {
		t.Errorf("the passphrase session outlived the change: %d", r.status)
	}
	want(t, passkeyLogin(t, ts, auth, nil, nil), http.StatusCreated)
}

// TestRelyingParty: the relying party comes from the public URL.
func TestRelyingParty(t *testing.T) {
	for _, tc := range []struct {
		url, id, origin string
		ok              bool
	}{
		{"https://phr.example.org", "phr.example.org", "https://phr.example.org", true},
		{"https://phr.example.org:8443/", "phr.example.org", "https://phr.example.org:8443", true},
		{"https://PHR.Example.org", "phr.example.org", "https://phr.example.org", true},
		{"http://localhost:8080", "localhost", "http://localhost:8080", true},
		{"http://127.0.0.1:8080", "localhost", "http://localhost:8080", true},
		{"http://[::1]:8080", "localhost", "http://localhost:8080", true},
		{"http://phr.example.org", "", "", false}, // http off localhost: no secure context
		{"https://192.0.2.7", "", "", false},      // an IP address cannot be a relying party
		{"http://192.0.2.7:8080", "", "", false},
		{"", "", "", false},
	} {
		id, origin, err := relyingParty(tc.url)
		if (err == nil) != tc.ok || id != tc.id || origin != tc.origin {
			t.Errorf("%q: (%q, %q, %v), want (%q, %q, ok %v)", tc.url, id, origin, err, tc.id, tc.origin, tc.ok)
		}
	}
}

// TestPasskeysOff: without a public URL a passkey can belong to, the
// passkey routes say so (503) and the rest of the server works.
func TestPasskeysOff(t *testing.T) {
	ts := newTestServer(t, func(c *Config) { c.PublicURL = "https://192.0.2.7" })
	c := ts.signup("alice")
	for _, p := range []string{"/api/v1/passkeys/login/begin", "/api/v1/passkeys/login/finish"} {
		r := ts.client().do("POST", p, map[string]any{})
		if r.status != http.StatusServiceUnavailable || !strings.Contains(r.errMsg(), "passkeys are off") {
			t.Errorf("%s: %d %s", p, r.status, r.body)
		}
	}
	r := c.do("POST", "/api/v1/passkeys/register/begin", PasskeyRegisterRequest{Passphrase: testPass, Username: "alice"})
	if r.status != http.StatusServiceUnavailable {
		t.Errorf("register: %d", r.status)
	}
	want(t, c.do("GET", "/api/v1/passkeys", nil), http.StatusOK)
}

// bech32Decode is the inverse of bech32Encode, for the test: it returns
// the 8-bit data of a valid string.
func bech32Decode(t *testing.T, s string) (string, []byte) {
	t.Helper()
	const charset = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
	s = strings.ToLower(s)
	i := strings.LastIndexByte(s, '1')
	hrp, data := s[:i], s[i+1:]
	if bech32Encode(hrp, nil) == "" {
		t.Fatal("empty")
	}
	var five []byte
	for _, c := range data[:len(data)-6] {
		five = append(five, byte(strings.IndexRune(charset, c)))
	}
	var out []byte
	acc, bits := 0, 0
	for _, v := range five {
		acc = acc<<5 | int(v)
		bits += 5
		if bits >= 8 {
			bits -= 8
			out = append(out, byte(acc>>bits))
		}
	}
	return hrp, out
}

// TestPasskeyIdentity: the key in a passkey's user handle is read as the
// age X25519 identity whose scalar it is: age parses what bech32Encode
// writes, and the encoding of age's own identities round-trips.
func TestPasskeyIdentity(t *testing.T) {
	for range 20 {
		id, err := age.GenerateX25519Identity()
		if err != nil {
			t.Fatal(err)
		}
		hrp, scalar := bech32Decode(t, id.String())
		if hrp != "age-secret-key-" || len(scalar) != 32 {
			t.Fatalf("decoded %q, %d bytes", hrp, len(scalar))
		}
		if got := strings.ToUpper(bech32Encode(hrp, scalar)); got != id.String() {
			t.Fatalf("re-encoded %s, want %s", got, id.String())
		}
		mine, err := passkeyIdentity(scalar)
		if err != nil {
			t.Fatal(err)
		}
		if mine.Recipient().String() != id.Recipient().String() {
			t.Fatal("the identity of a scalar has another recipient")
		}
	}
	if _, err := passkeyIdentity(make([]byte, 31)); err == nil {
		t.Error("a 31-byte key made an identity")
	}
}

// TestSessionList: an account's sessions are listed (never their tokens)
// and each can be ended; another account's are neither listed nor ended.
func TestSessionList(t *testing.T) {
	ts := newTestServer(t, nil)
	a1 := ts.signup("alice")
	a2 := ts.client()
	a2.login("alice", testPass)
	bob := ts.signup("bob")

	var list struct{ Sessions []SessionListItem }
	a1.do("GET", "/api/v1/sessions", nil).decode(t, &list)
	if len(list.Sessions) != 2 {
		t.Fatalf("%d sessions, want 2: %+v", len(list.Sessions), list.Sessions)
	}
	var mine, other SessionListItem
	for _, s := range list.Sessions {
		if s.Method != methodPassphrase || s.ID == "" || s.Created.IsZero() || s.Expires.IsZero() {
			t.Errorf("session %+v", s)
		}
		if s.Current {
			mine = s
		} else {
			other = s
		}
	}
	if mine.ID == "" || other.ID == "" {
		t.Fatalf("no current or no other session: %+v", list.Sessions)
	}
	raw := string(a1.do("GET", "/api/v1/sessions", nil).body)
	if strings.Contains(raw, a1.token) || strings.Contains(raw, a2.token) {
		t.Fatal("the listing holds a token")
	}
	// Bob can neither see nor end Alice's sessions.
	if r := bob.do("DELETE", "/api/v1/sessions/"+other.ID, nil); r.status != http.StatusNotFound {
		t.Errorf("bob ended alice's session: %d", r.status)
	}
	want(t, a1.do("DELETE", "/api/v1/sessions/"+other.ID, nil), http.StatusNoContent)
	if r := a2.do("GET", "/api/v1/records", nil); r.status != http.StatusUnauthorized {
		t.Errorf("the ended session still works: %d", r.status)
	}
	if r := a1.do("DELETE", "/api/v1/sessions/"+other.ID, nil); r.status != http.StatusNotFound {
		t.Errorf("ending it again: %d", r.status)
	}
	a1.do("GET", "/api/v1/sessions", nil).decode(t, &list)
	if len(list.Sessions) != 1 || !list.Sessions[0].Current {
		t.Errorf("after ending one: %+v", list.Sessions)
	}
	// Ending one's own session by its ID is a logout.
	want(t, a1.do("DELETE", "/api/v1/sessions/"+mine.ID, nil), http.StatusNoContent)
	if r := a1.do("GET", "/api/v1/sessions", nil); r.status != http.StatusUnauthorized {
		t.Errorf("after ending its own session: %d", r.status)
	}
}
