// Package datacopy checks what a copy of phrd's data directory reveals to
// someone who also knows the usernames: nothing of who the patients share
// with (share ids, labels, recipients), because the share store's secret
// lives in a key file outside the data directory.
package datacopy

import (
	"context"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/phr-project/phr/pkg/server"
	"github.com/phr-project/phr/pkg/server/api"
	"github.com/phr-project/phr/pkg/share"
	"github.com/phr-project/phr/pkg/sharestore"
	"github.com/phr-project/phr/pkg/vault"
	"github.com/phr-project/phr/test/security/internal/e2e"
	"github.com/phr-project/phr/test/security/internal/phrdtest"
)

func TestMain(m *testing.M) {
	vault.ScryptWorkFactor = 10
	restore := share.SetPasscodeCostForTesting(4)
	code := m.Run()
	restore()
	os.Exit(code)
}

// postJSON posts body and returns the answer's status.
func postJSON(url, body string) (int, error) {
	res, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode, nil
}

// copyDir copies the tree src to dst, as a backup of the data directory
// would.
func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o700)
		}
		in, err := os.Open(p)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.OpenFile(filepath.Join(dst, rel), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return err
		}
		_, err = io.Copy(out, in)
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestDataCopyRevealsNoShares: alice and bob share records with labels,
// and providers open the links under their names. Someone then holds a
// copy of phrd's data directory (server.key, the vaults, shares.db) and
// knows the usernames. They can tell which vault file is whose (that is
// what server.key is for), but:
//
//   - the share store does not open with any secret the copy yields (the
//     derivation older phrd used, from server.key: it opened, and gave
//     every share id, label, recipient and count of an account);
//   - no file of the copy holds a share id, a label or a recipient, in
//     any encoding e2e.Forms knows, nor the share key file's secret.
//
// Positive control: with the key file (kept outside the data directory),
// the same copy gives all of them back, so they are in it, sealed.
func TestDataCopyRevealsNoShares(t *testing.T) {
	root := t.TempDir()
	data := filepath.Join(root, "data")
	keyFile := filepath.Join(root, "keys", "phrd-share.key")
	p := phrdtest.Serve(t, server.Config{DataDir: data, ShareKeyFile: keyFile, VaultNoSync: true, Logger: slog.New(slog.DiscardHandler)})
	base, shutdown := p.Base, p.Shutdown
	ctx := context.Background()
	type made struct{ user, id, label, recipient string }
	var shares []made
	for _, u := range []struct{ user, label, recipient string }{
		{"alice", "Quorbulent cardiology referral", "Dr. Xylophant Brimbleworth"},
		{"alice", "Snargle allergy list for camp", "Camp Wobblefen nurse"},
		{"bob", "Plinthwick second opinion", "Dr. Ozymandra Fettuccine"},
	} {
		c := &api.Client{BaseURL: base}
		if _, err := c.CreateAccount(ctx, u.user, "a long passphrase for "+u.user); err != nil && !strings.Contains(err.Error(), "taken") {
			t.Fatal(err)
		}
		if _, err := c.Login(ctx, api.SessionRequest{Username: u.user, Passphrase: "a long passphrase for " + u.user}); err != nil {
			t.Fatal(err)
		}
		cr, err := c.CreateShare(ctx, api.CreateShareRequest{Select: &api.ShareSelect{Summary: true}, ExpiresAt: time.Now().Add(time.Hour), Label: u.label, Passcode: "4711"})
		if err != nil {
			t.Fatal(err)
		}
		for _, pc := range []string{"0000", "4711"} {
			res, err := postJSON(base+"/shl/"+cr.ID, `{"recipient":"`+u.recipient+`","passcode":"`+pc+`"}`)
			if err != nil || (pc == "4711") != (res == 200) {
				t.Fatalf("manifest request: %d %v", res, err)
			}
		}
		shares = append(shares, made{u.user, cr.ID, u.label, u.recipient})
	}
	shutdown()

	stolen := filepath.Join(t.TempDir(), "stolen")
	copyDir(t, data, stolen)

	// What the copy and the usernames give: the account ids.
	hexKey, err := os.ReadFile(filepath.Join(stolen, "server.key"))
	if err != nil {
		t.Fatal(err)
	}
	serverKey, err := hex.DecodeString(strings.TrimSpace(string(hexKey)))
	if err != nil {
		t.Fatal(err)
	}
	accountID := func(user string) string { // as pkg/server names vault files
		m := hmac.New(sha256.New, serverKey)
		m.Write([]byte("phrd account v1\x00" + user))
		return hex.EncodeToString(m.Sum(nil))
	}
	for _, u := range []string{"alice", "bob"} {
		if _, err := os.Stat(filepath.Join(stolen, "vaults", accountID(u)+".phr")); err != nil {
			t.Fatalf("the copy does not map %s to a vault file (the attack model is wrong): %v", u, err)
		}
	}
	// The secret older phrd derived from server.key no longer opens the
	// share store; nor do server.key's bytes themselves.
	legacy, err := hkdf.Key(sha256.New, serverKey, nil, "phrd share store v1", 32)
	if err != nil {
		t.Fatal(err)
	}
	for name, secret := range map[string][]byte{"hkdf(server.key)": legacy, "server.key": serverKey} {
		st, err := sharestore.Open(filepath.Join(stolen, "shares.db"), &sharestore.Options{Secret: secret, LockTimeout: time.Second})
		if err == nil {
			list, _ := st.List(accountID("alice"))
			st.Close()
			t.Fatalf("%s opens the copied share store: alice's shares %+v", name, list)
		}
		if !errors.Is(err, sharestore.ErrWrongSecret) {
			t.Fatalf("%s: %v", name, err)
		}
	}
	// No file of the copy holds an id, label, recipient or the key.
	key, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	var needles []string
	for _, s := range shares {
		needles = append(needles, s.id, s.label, s.recipient)
	}
	needles = append(needles, strings.TrimSpace(string(key)))
	keyRaw, _ := hex.DecodeString(strings.TrimSpace(string(key)))
	files, err := e2e.Files(stolen)
	if err != nil {
		t.Fatal(err)
	}
	searched := 0
	for _, p := range files {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		hs, err := e2e.Expand(p, data)
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range hs {
			searched += h.Len()
			for _, n := range needles {
				if f, off, found := h.Find(e2e.Forms(n)); found {
					t.Errorf("%q in %s as %s at byte %d", n, h.Name, f.Name, off)
				}
			}
			if h.Contains(string(keyRaw)) {
				t.Errorf("the share key's bytes are in %s", h.Name)
			}
		}
	}
	t.Logf("searched %d files of the copied data directory (%d bytes) for %d strings", len(files), searched, len(needles))

	// Positive control: with the key file the copy gives everything back.
	secret, _, err := sharestore.LoadOrCreateSecret(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	st, err := sharestore.Open(filepath.Join(stolen, "shares.db"), &sharestore.Options{Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, s := range shares {
		list, err := st.List(accountID(s.user))
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, sh := range list {
			if sh.ID == s.id && sh.Label == s.label {
				log, _ := st.Log(accountID(s.user), s.id)
				found = len(log) == 2 && log[0].Recipient == s.recipient
			}
		}
		if !found {
			t.Errorf("with the key file, %s's share %q is not in the copy: the search above proves nothing", s.user, s.label)
		}
	}
}
