package server

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"testing"

	"filippo.io/age"
	"github.com/phr-project/phr/pkg/server/api"
	"github.com/phr-project/phr/pkg/vault"
)

// deviceLogin logs a device credential in and returns its client.
func (ts *testServer) deviceLogin(user, credential string) *client {
	ts.t.Helper()
	c := ts.client()
	r := c.do("POST", "/api/v1/sessions", api.SessionRequest{Username: user, DeviceCredential: credential})
	want(ts.t, r, http.StatusCreated)
	var s api.Session
	r.decode(ts.t, &s)
	c.token = s.Token
	return c
}

func (c *client) newDevice(label, pass string) api.DeviceCreated {
	c.t.Helper()
	r := c.do("POST", "/api/v1/devices", api.DeviceRequest{Label: label, Passphrase: pass})
	want(c.t, r, http.StatusCreated)
	var d api.DeviceCreated
	r.decode(c.t, &d)
	return d
}

// auditEvents returns the account's audit entries of one event, newest
// first.
func (c *client) auditEvents(event string) []api.AuditEntry {
	c.t.Helper()
	r := c.do("GET", "/api/v1/audit", nil)
	want(c.t, r, http.StatusOK)
	var a api.Audit
	r.decode(c.t, &a)
	var out []api.AuditEntry
	for _, e := range a.Entries {
		if e.Event == event {
			out = append(out, e)
		}
	}
	return out
}

// A stolen session token is not a lasting way in: it cannot make a device
// credential or name a backup's recipient without the passphrase, and a
// change of passphrase, recovery code or vault key ends it and removes
// every device credential but the caller's.
func TestStolenSessionCannotPersist(t *testing.T) {
	ts := newTestServer(t, nil)
	owner := ts.signup("alice")
	thief := ts.client()
	thief.login("alice", testPass) // a session whose token leaked
	backupTo, _ := age.GenerateX25519Identity()

	for _, pass := range []string{"", "a wrong guess of it"} {
		want(t, thief.do("POST", "/api/v1/devices", api.DeviceRequest{Label: "mine now", Passphrase: pass}), http.StatusUnauthorized)
		want(t, thief.do("POST", "/api/v1/backup", BackupRequest{Passphrase: pass, Recipients: []string{backupTo.Recipient().String()}}), http.StatusUnauthorized)
	}
	r := thief.do("GET", "/api/v1/devices", nil)
	var list api.DeviceList
	r.decode(t, &list)
	if len(list.Devices) != 0 {
		t.Fatalf("devices made without the passphrase: %s", r.body)
	}

	want(t, thief.do("DELETE", "/api/v1/sessions/current", nil), http.StatusNoContent)

	tests := []struct {
		name  string
		event string
		do    func(c *client, pass string) (newPass string)
	}{
		{"passphrase", AuditKeyPassphrase, func(c *client, pass string) string {
			want(t, c.do("POST", "/api/v1/keys/passphrase", map[string]string{"passphrase": pass, "new_passphrase": pass + " changed"}), http.StatusNoContent)
			return pass + " changed"
		}},
		{"recovery code", AuditKeyRecovery, func(c *client, pass string) string {
			want(t, c.do("POST", "/api/v1/keys/recovery", map[string]string{"passphrase": pass}), http.StatusOK)
			return pass
		}},
		{"rotate", AuditKeyRotate, func(c *client, pass string) string {
			want(t, c.do("POST", "/api/v1/keys/rotate", map[string]string{"passphrase": pass}), http.StatusOK)
			return pass
		}},
	}
	pass := testPass
	for _, tt := range tests {
		for _, fromDevice := range []bool{false, true} {
			// The owner's phone and tablet, and a session whose token
			// leaked.
			phone := owner.newDevice("phone", pass)
			tablet := owner.newDevice("tablet", pass)
			phoneC := ts.deviceLogin("alice", phone.Credential)
			tabletC := ts.deviceLogin("alice", tablet.Credential)
			thief = ts.client()
			thief.login("alice", pass)
			caller := owner
			if fromDevice {
				caller = phoneC
			}
			pass = tt.do(caller, pass)
			// Every other session has ended.
			for name, c := range map[string]*client{"thief": thief, "tablet": tabletC, "phone": phoneC, "owner": owner} {
				got := c.do("GET", "/api/v1/records", nil).status
				if stays := c == caller; (got == http.StatusOK) != stays {
					t.Fatalf("%s (from device %v): %s's session: %d", tt.name, fromDevice, name, got)
				}
			}
			// Every device credential but the caller's is gone.
			wantLogin := func(cred string, status int) {
				t.Helper()
				want(t, ts.client().do("POST", "/api/v1/sessions", api.SessionRequest{Username: "alice", DeviceCredential: cred}), status)
			}
			wantLogin(tablet.Credential, http.StatusUnauthorized)
			if fromDevice {
				wantLogin(phone.Credential, http.StatusCreated)
			} else {
				wantLogin(phone.Credential, http.StatusUnauthorized)
			}
			if !fromDevice {
				owner = caller
			} else {
				owner = ts.client()
				owner.login("alice", pass)
			}
			ev := owner.auditEvents(tt.event)
			if len(ev) == 0 || !ev[0].Success || ev[0].Counts["sessions_ended"] != 3 {
				t.Fatalf("%s (from device %v): audit %+v", tt.name, fromDevice, ev)
			}
			wantRemoved := 2
			if fromDevice {
				wantRemoved = 1
			}
			if ev[0].Counts["devices_removed"] != wantRemoved {
				t.Fatalf("%s (from device %v): devices_removed %d", tt.name, fromDevice, ev[0].Counts["devices_removed"])
			}
			// Leave no device behind for the next round.
			r := owner.do("GET", "/api/v1/devices", nil)
			r.decode(t, &list)
			for _, d := range list.Devices {
				want(t, owner.do("DELETE", "/api/v1/devices/"+d.ID, nil), http.StatusNoContent)
			}
		}
	}
	// With the passphrase, a backup goes to the recipient named.
	r = owner.do("POST", "/api/v1/backup", BackupRequest{Passphrase: pass, Recipients: []string{backupTo.Recipient().String()}})
	want(t, r, http.StatusOK)
	if _, err := vault.VerifyBackup(bytes.NewReader(r.body), backupTo); err != nil {
		t.Fatal(err)
	}
	if ev := owner.auditEvents(AuditBackup); len(ev) != 1 || ev[0].Counts["recipients"] != 1 {
		t.Fatalf("backup audit: %+v", ev)
	}
}

// rawSlots returns the key slots found anywhere in a vault file's bytes
// (live, or left in free pages), as stored.
func rawSlots(t *testing.T, path string) [][]byte {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for i := 0; ; i++ {
		j := bytes.Index(raw[i:], []byte(`{"v":1,"kind":"`))
		if j < 0 {
			return out
		}
		i += j
		dec := json.NewDecoder(bytes.NewReader(raw[i:]))
		var m json.RawMessage
		if dec.Decode(&m) == nil {
			out = append(out, bytes.Clone(m))
		}
	}
}

// POST /api/v1/accounts/recover: the recovery code opens the account, sets
// a new passphrase and recovery code, removes every device and ends
// every session; the old secrets open nothing in the file afterwards.
func TestRecoverAccount(t *testing.T) {
	ts := newTestServer(t, nil)
	c := ts.client()
	r := c.do("POST", "/api/v1/accounts", api.CreateAccountRequest{Username: "alice", Passphrase: testPass})
	want(t, r, http.StatusCreated)
	var acct api.CreateAccountResponse
	r.decode(t, &acct)
	c.login("alice", testPass)
	phone := c.newDevice("phone", testPass)
	phoneC := ts.deviceLogin("alice", phone.Credential)
	want(t, c.do("POST", "/api/v1/records", map[string]any{"log": "condition", "name": "Asthma"}), http.StatusCreated)
	path := ts.data.vaultPath(ts.data.accountID("alice"))
	before := rawSlots(t, path)
	if len(before) < 3 {
		t.Fatalf("found %d slots in the file", len(before))
	}

	recover := func(user, code string, label string) *resp {
		return ts.client().do("POST", "/api/v1/accounts/recover", RecoverRequest{Username: user, RecoveryCode: code, NewPassphrase: "after the recovery", DeviceLabel: label})
	}
	want(t, recover("alice", vault.NewRecoveryCode(), ""), http.StatusUnauthorized)
	want(t, recover("alice", "not a code", ""), http.StatusUnauthorized)
	want(t, recover("nobody", acct.RecoveryCode, ""), http.StatusUnauthorized)
	want(t, ts.client().do("POST", "/api/v1/accounts/recover", RecoverRequest{Username: "alice", RecoveryCode: acct.RecoveryCode, NewPassphrase: "short"}), http.StatusBadRequest)
	r = recover("alice", acct.RecoveryCode, "new phone")
	want(t, r, http.StatusOK)
	var rec RecoverResponse
	r.decode(t, &rec)
	if rec.RecoveryCode == "" || rec.RecoveryCode == acct.RecoveryCode || rec.Device == nil || rec.Device.Credential == "" {
		t.Fatalf("recover: %s", r.body)
	}
	// Sessions ended; old secrets refused; new ones work.
	want(t, c.do("GET", "/api/v1/records", nil), http.StatusUnauthorized)
	want(t, phoneC.do("GET", "/api/v1/records", nil), http.StatusUnauthorized)
	want(t, ts.client().do("POST", "/api/v1/sessions", api.SessionRequest{Username: "alice", Passphrase: testPass}), http.StatusUnauthorized)
	want(t, ts.client().do("POST", "/api/v1/sessions", api.SessionRequest{Username: "alice", DeviceCredential: phone.Credential}), http.StatusUnauthorized)
	want(t, recover("alice", acct.RecoveryCode, ""), http.StatusUnauthorized)
	newPhone := ts.deviceLogin("alice", rec.Device.Credential)
	want(t, newPhone.do("GET", "/api/v1/records", nil), http.StatusOK)
	owner := ts.client()
	owner.login("alice", "after the recovery")
	// The audit log: the recovery, and the two wrong codes given for the
	// account (one before, one after).
	ok, failed := 0, 0
	for _, e := range owner.auditEvents(AuditAccountRecover) {
		switch {
		case e.Success && e.Counts["devices_removed"] == 1 && e.Counts["sessions_ended"] == 2:
			ok++
		case !e.Success:
			failed++
		default:
			t.Fatalf("audit entry %+v", e)
		}
	}
	if ok != 1 || failed != 2 {
		t.Fatalf("audit: %d recoveries, %d failures", ok, failed)
	}
	// The file holds none of the old slots, and nothing in it opens with
	// the old passphrase, recovery code or device credential.
	after := rawSlots(t, path)
	for _, old := range before {
		for _, now := range after {
			if bytes.Equal(old, now) {
				t.Fatalf("an old slot is still in the file: %.60s...", old)
			}
		}
	}
	phoneID, _ := age.ParseX25519Identity(phone.Credential)
	copyPath := t.TempDir() + "/copy.phr"
	raw, _ := os.ReadFile(path)
	os.WriteFile(copyPath, raw, 0o600)
	for _, s := range []vault.Secret{vault.Passphrase(testPass), vault.RecoveryCode(acct.RecoveryCode), vault.Identities(phoneID)} {
		if _, err := vault.Open(copyPath, s, &vault.Options{ReadOnly: true}); err != vault.ErrWrongKey {
			t.Fatalf("an old secret: %v", err)
		}
	}
	if rec := recover("alice", rec.RecoveryCode, ""); rec.status != http.StatusOK {
		t.Fatalf("the new code: %d", rec.status)
	}
}
