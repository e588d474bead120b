package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/phr-project/phr/pkg/server/api"
	"github.com/phr-project/phr/pkg/share"
	"github.com/phr-project/phr/pkg/sharestore"
)

// TestShareKeyFile: the share store's secret is in a key file outside the
// data directory (by default DATA.share.key beside it), made 0600 on the
// first start; a key file inside the data directory is refused, and so is
// one that does not belong to the store.
func TestShareKeyFile(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	ts := newTestServer(t, func(c *Config) { c.DataDir = data })
	keyFile := filepath.Join(dir, "data.share.key")
	if ts.cfg.ShareKeyFile != keyFile {
		t.Fatalf("default key file %s", ts.cfg.ShareKeyFile)
	}
	st, err := os.Stat(keyFile)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", st, err)
	}
	key, _ := os.ReadFile(keyFile)
	filepath.Walk(data, func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			if b, _ := os.ReadFile(p); bytes.Contains(b, bytes.TrimSpace(key)) {
				t.Errorf("%s holds the share key", p)
			}
		}
		return nil
	})
	for _, inside := range []string{filepath.Join(data, "share.key"), filepath.Join(data, "sub", "k"), data} {
		if _, err := New(Config{DataDir: data, ShareKeyFile: inside}); err == nil || !strings.Contains(err.Error(), "outside the data directory") {
			t.Errorf("key file %s: %v", inside, err)
		}
	}
	// Through a symbolic link into the data directory: refused too.
	link := filepath.Join(dir, "link")
	os.Symlink(data, link)
	if _, err := New(Config{DataDir: data, ShareKeyFile: filepath.Join(link, "k")}); err == nil {
		t.Error("a key file inside the data directory through a link was accepted")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := ts.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	// An existing key file of another store: refused.
	other := filepath.Join(dir, "other.key")
	if _, _, err := sharestore.LoadOrCreateSecret(other); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Config{DataDir: data, ShareKeyFile: other}); err == nil || !strings.Contains(err.Error(), "does not belong") {
		t.Fatalf("another key file: %v", err)
	}
	// A data directory restored without its key file: its shares cannot
	// be opened again; the old store is kept aside, a new one begun.
	restored := filepath.Join(dir, "restored")
	if err := os.CopyFS(restored, os.DirFS(data)); err != nil {
		t.Fatal(err)
	}
	ts2 := newTestServer(t, func(c *Config) { c.DataDir = restored })
	if !strings.Contains(ts2.logs.String(), "moved aside") {
		t.Fatalf("no warning:\n%s", ts2.logs.String())
	}
	if aside, _ := filepath.Glob(filepath.Join(restored, sharesFile+".orphaned-*")); len(aside) != 1 {
		t.Fatalf("the old store was not kept: %v", aside)
	}
	c := ts2.signup("carol")
	exp := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	want(t, c.do("POST", "/api/v1/shares", `{"select":{"summary":true},"expires_at":"`+exp+`"}`), http.StatusCreated)
}

// TestShareStoreMigration: a share store of an older phrd, keyed from
// server.key in the data directory, is rekeyed to the key file's secret on
// the first start: its links keep working with the same ids, the owner
// still lists them with labels and log, a share whose account is gone is
// dropped, and server.key no longer opens anything in shares.db.
func TestShareStoreMigration(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	if _, err := CreateAccount(data, "alice", testPass); err != nil {
		t.Fatal(err)
	}
	d, err := openDataDir(data)
	if err != nil {
		t.Fatal(err)
	}
	legacy, err := legacyShareSecret(d.secret)
	if err != nil {
		t.Fatal(err)
	}
	// The store as the older phrd left it.
	old, err := sharestore.Open(filepath.Join(data, sharesFile), &sharestore.Options{Secret: legacy, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	key := share.NewKey()
	jwe, err := share.EncryptFile(key, share.ContentTypeFHIR, []byte(`{"resourceType":"Bundle","type":"collection"}`), true)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	spec := sharestore.ShareSpec{Owner: d.accountID("alice"), Label: "For Dr. Before", Expires: time.Now().Add(time.Hour),
		Files: []sharestore.FileSpec{{ContentType: share.ContentTypeFHIR, JWE: jwe}}}
	sh, err := old.Create(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	spec.Owner = "an account since removed"
	gone, err := old.Create(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := old.Access(ctx, sh.ID, "Dr. Before", "", time.Now()); err != nil {
		t.Fatal(err)
	}
	old.Close()
	os.WriteFile(filepath.Join(data, sharesFile+".rekey"), []byte("left by a crash"), 0o600)

	ts := newTestServer(t, func(c *Config) { c.DataDir = data })
	if !strings.Contains(ts.logs.String(), "moved the share store") {
		t.Fatalf("no migration logged:\n%s", ts.logs.String())
	}
	alice := ts.client()
	alice.login("alice", testPass)
	var list api.ShareList
	alice.do("GET", "/api/v1/shares", nil).decode(t, &list)
	if len(list.Shares) != 1 || list.Shares[0].ID != sh.ID || list.Shares[0].Label != "For Dr. Before" || list.Shares[0].Uses != 1 {
		t.Fatalf("shares after the migration: %+v", list)
	}
	var log api.ShareLog
	alice.do("GET", "/api/v1/shares/"+sh.ID+"/log", nil).decode(t, &log)
	if len(log.Log) != 1 || log.Log[0].Recipient != "Dr. Before" {
		t.Fatalf("log after the migration: %+v", log)
	}
	r := ts.client().do("POST", "/shl/"+sh.ID, `{"recipient":"Dr. After"}`)
	want(t, r, http.StatusOK)
	var m share.Manifest
	r.decode(t, &m)
	if len(m.Files) != 1 || m.Files[0].Embedded != jwe {
		t.Fatalf("manifest after the migration: %s", r.body)
	}
	want(t, ts.client().do("POST", "/shl/"+gone.ID, `{"recipient":"x"}`), http.StatusNotFound)
	if _, err := os.Stat(filepath.Join(data, sharesFile+".rekey")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temporary file left: %v", err)
	}
	ctxT, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	ts.Shutdown(ctxT)
	if _, err := sharestore.Open(filepath.Join(data, sharesFile), &sharestore.Options{Secret: legacy}); !errors.Is(err, sharestore.ErrWrongSecret) {
		t.Fatalf("server.key still opens shares.db: %v", err)
	}
	// The next start has nothing to move.
	ts2 := newTestServer(t, func(c *Config) { c.DataDir = data })
	if strings.Contains(ts2.logs.String(), "moved the share store") {
		t.Fatal("migrated twice")
	}
}

// TestShareStoreLegacyFallback: when the default key file cannot be made,
// a store of an older phrd keeps working under its old secret and phrd
// warns at start; a new data directory without a key file does not start.
func TestShareStoreLegacyFallback(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	if _, err := CreateAccount(data, "alice", testPass); err != nil {
		t.Fatal(err)
	}
	d, _ := openDataDir(data)
	legacy, _ := legacyShareSecret(d.secret)
	old, err := sharestore.Open(filepath.Join(data, sharesFile), &sharestore.Options{Secret: legacy, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	old.Close()
	// A directory where the key file would go: it can be neither read
	// nor made (this test runs as root too, which permissions would not
	// stop).
	if err := os.Mkdir(DefaultShareKeyFile(data), 0o700); err != nil {
		t.Fatal(err)
	}
	ts := newTestServer(t, func(c *Config) { c.DataDir = data })
	var line struct{ Msg string }
	for _, l := range strings.Split(ts.logs.String(), "\n") {
		if json.Unmarshal([]byte(l), &line) == nil && strings.Contains(line.Msg, "derived from server.key") {
			break
		}
		line.Msg = ""
	}
	if line.Msg == "" {
		t.Fatalf("no warning:\n%s", ts.logs.String())
	}
	ts.signup("bob")

	fresh := filepath.Join(dir, "fresh")
	os.Mkdir(DefaultShareKeyFile(fresh), 0o700)
	if _, err := New(Config{DataDir: fresh}); err == nil || !strings.Contains(err.Error(), "share key") {
		t.Fatalf("a new data directory without a key file: %v", err)
	}
}
