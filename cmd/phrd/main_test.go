package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/phr-project/phr/internal/syncbuf"
	"github.com/phr-project/phr/pkg/importers"
	"github.com/phr-project/phr/pkg/record"
	"github.com/phr-project/phr/pkg/server/api"
	"github.com/phr-project/phr/pkg/vault"
)

func init() { vault.ScryptWorkFactor = 10 }

// syncBuffer collects phrd's log while a test reads it.
type syncBuffer = syncbuf.Buffer

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

// startMain runs phrd on 127.0.0.1:0 over dir, configured by environment.
func startMain(t *testing.T, dir string, extra ...string) (*Main, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	m := NewMain()
	m.Stderr = logs
	m.Getenv = env(map[string]string{"PHRD_DATA": dir, "PHRD_ADDR": "127.0.0.1:0"})
	if err := m.ParseFlags(context.Background(), extra); err != nil {
		t.Fatal(err)
	}
	m.Config.VaultNoSync = true
	if err := m.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m, logs
}

func call(t *testing.T, method, url, token string, body any, hdr ...string) (int, []byte, http.Header) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		if r, ok := body.(io.Reader); ok {
			rd = r
		} else {
			data, _ := json.Marshal(body)
			rd = bytes.NewReader(data)
		}
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(res.Body)
	return res.StatusCode, data, res.Header
}

func login(t *testing.T, base, user, pass string) string {
	t.Helper()
	st, body, _ := call(t, "POST", base+"/api/v1/sessions", "", api.SessionRequest{Username: user, Passphrase: pass})
	if st != http.StatusCreated {
		t.Fatalf("login: %d %s", st, body)
	}
	var s api.Session
	json.Unmarshal(body, &s)
	return s.Token
}

const pass = "correct horse battery"

// TestRestart: Close closes the vaults cleanly (the file opens with
// vault.Open), and a new server over the same data keeps the data and
// the sessions (DATA/sessions.db): a token from before the restart works.
func TestRestart(t *testing.T) {
	dir := t.TempDir()
	m, logs := startMain(t, dir)
	base := m.URL()
	st, body, _ := call(t, "POST", base+"/api/v1/accounts", "", api.CreateAccountRequest{Username: "alice", Passphrase: pass})
	if st != http.StatusCreated {
		t.Fatalf("create: %d %s", st, body)
	}
	tok := login(t, base, "alice", pass)
	st, body, _ = call(t, "POST", base+"/api/v1/records", tok, map[string]any{"log": "symptom", "name": "migraine", "severity": 7})
	if st != http.StatusCreated {
		t.Fatalf("post: %d %s", st, body)
	}
	var rec record.Record
	json.Unmarshal(body, &rec)
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	paths, _ := filepath.Glob(filepath.Join(dir, "vaults", "*.phr"))
	if len(paths) != 1 {
		t.Fatalf("vault files %v", paths)
	}
	v, err := vault.Open(paths[0], vault.Passphrase(pass), &vault.Options{LockTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatalf("vault after shutdown: %v", err)
	}
	if got, err := v.Get(rec.ID); err != nil || got.Display != rec.Display {
		t.Fatalf("record after shutdown: %v %v", got, err)
	}
	if entries, err := v.Audit(0); err != nil || len(entries) == 0 || entries[0].Event != "login" {
		t.Fatalf("audit: %v %v", entries, err)
	}
	v.Close()

	m2, _ := startMain(t, dir)
	base = m2.URL()
	st, body, _ = call(t, "GET", base+"/api/v1/records/"+rec.ID, tok, nil)
	if st != http.StatusOK || !strings.Contains(string(body), "migraine") {
		t.Fatalf("record after restart: %d %s", st, body)
	}
	if l := logs.String(); !strings.Contains(l, `"msg":"listening"`) || strings.Contains(l, "migraine") || strings.Contains(l, pass) || strings.Contains(l, "alice") {
		t.Errorf("logs:\n%s", l)
	}
}

// slowImporter blocks until its input ends: an import in flight.
type slowImporter struct{}

func (slowImporter) Name() string            { return "slow" }
func (slowImporter) Detect(head []byte) bool { return bytes.HasPrefix(head, []byte("#slow")) }
func (slowImporter) Import(ctx context.Context, in *importers.Input, sink importers.Sink) error {
	data, err := io.ReadAll(in.R)
	if err != nil {
		return err
	}
	for _, l := range strings.Fields(string(data))[1:] {
		r, err := record.New([]byte(fmt.Sprintf(`{"resourceType":"Condition","code":{"text":%q}}`, l)),
			record.Provenance{Method: record.MethodImported, Importer: "slow", System: "Test", OriginalID: l})
		if err != nil {
			return err
		}
		if err := sink.Record(r); err != nil {
			return err
		}
	}
	return nil
}

// TestGracefulShutdown: a request in flight when shutdown starts finishes,
// and the vault is closed after it.
func TestGracefulShutdown(t *testing.T) {
	old := Importers
	Importers = func() *importers.Registry { r := &importers.Registry{}; r.Register(slowImporter{}); return r }
	t.Cleanup(func() { Importers = old })
	dir := t.TempDir()
	m, _ := startMain(t, dir)
	base := m.URL()
	call(t, "POST", base+"/api/v1/accounts", "", api.CreateAccountRequest{Username: "alice", Passphrase: pass})
	tok := login(t, base, "alice", pass)

	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	type result struct {
		status int
		body   []byte
	}
	done := make(chan result, 1)
	go func() {
		req, _ := http.NewRequest("POST", base+"/api/v1/imports", pr)
		req.Header.Set("Content-Type", mw.FormDataContentType())
		req.Header.Set("Authorization", "Bearer "+tok)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			done <- result{0, []byte(err.Error())}
			return
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		done <- result{res.StatusCode, b}
	}()
	fw, _ := mw.CreateFormFile("file", "x.txt")
	io.WriteString(fw, "#slow asthma ")
	// The request is in the handler once it spools the upload to tmp/.
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if files, _ := os.ReadDir(filepath.Join(dir, "tmp")); len(files) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the upload never reached the handler")
		}
	}

	closed := make(chan error, 1)
	go func() { closed <- m.Close() }()
	time.Sleep(100 * time.Millisecond)
	select {
	case err := <-closed:
		t.Fatalf("Close returned with a request in flight: %v", err)
	default:
	}
	io.WriteString(fw, "eczema")
	mw.Close()
	pw.Close()
	r := <-done
	if r.status != http.StatusCreated || !strings.Contains(string(r.body), `"added":2`) {
		t.Fatalf("in-flight import: %d %s", r.status, r.body)
	}
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	paths, _ := filepath.Glob(filepath.Join(dir, "vaults", "*.phr"))
	v, err := vault.Open(paths[0], vault.Passphrase(pass), &vault.Options{LockTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatalf("vault after shutdown: %v", err)
	}
	defer v.Close()
	if live, _, _ := v.Count(); live != 3 {
		t.Fatalf("%d records", live)
	}
}

func TestFlags(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		args    []string
		wantErr string
		check   func(*Main) string
	}{
		{"env", map[string]string{"PHRD_DATA": "/d", "PHRD_ADDR": ":9", "PHRD_REGISTRATION": "closed", "PHRD_IDLE_TIMEOUT": "5m"}, nil, "", func(m *Main) string {
			if m.Config.DataDir != "/d" || m.Addr != ":9" || m.Config.Registration != "closed" || m.Config.IdleTimeout != 5*time.Minute {
				return fmt.Sprintf("%+v", m.Config)
			}
			return ""
		}},
		{"flag wins", map[string]string{"PHRD_DATA": "/d", "PHRD_ADDR": ":9"}, []string{"--addr", ":10", "--data", "/e"}, "", func(m *Main) string {
			if m.Addr != ":10" || m.Config.DataDir != "/e" {
				return m.Addr + " " + m.Config.DataDir
			}
			return ""
		}},
		{"timeouts", map[string]string{"PHRD_DATA": "/d", "PHRD_READ_TIMEOUT": "7s"}, []string{"--read-header-timeout", "2s", "--write-timeout", "9s", "--conn-idle-timeout", "11s", "--max-header-bytes", "8192", "--import-timeout", "3m"}, "", func(m *Main) string {
			c := m.Config
			if c.ReadHeaderTimeout != 2*time.Second || c.ReadTimeout != 7*time.Second || c.WriteTimeout != 9*time.Second || c.ConnIdleTimeout != 11*time.Second || c.MaxHeaderBytes != 8192 || c.ImportTimeout != 3*time.Minute {
				return fmt.Sprintf("%+v", c)
			}
			return ""
		}},
		{"timeout defaults", map[string]string{"PHRD_DATA": "/d"}, nil, "", func(m *Main) string {
			c := m.Config
			if c.ReadHeaderTimeout != 10*time.Second || c.ReadTimeout != time.Minute || c.WriteTimeout != 2*time.Minute || c.ConnIdleTimeout != 2*time.Minute || c.MaxHeaderBytes != 64<<10 || c.ImportTimeout != 10*time.Minute {
				return fmt.Sprintf("%+v", c)
			}
			return ""
		}},
		{"public url from addr", map[string]string{"PHRD_DATA": "/d"}, []string{"--addr", ":8080"}, "", func(m *Main) string {
			if m.Config.PublicURL != "http://localhost:8080" {
				return m.Config.PublicURL
			}
			return ""
		}},
		{"public url from [::]", map[string]string{"PHRD_DATA": "/d"}, []string{"--addr", "[::]:8443", "--tls-cert", "c", "--tls-key", "k"}, "", func(m *Main) string {
			if m.Config.PublicURL != "https://localhost:8443" {
				return m.Config.PublicURL
			}
			return ""
		}},
		{"no data", nil, nil, "--data", nil},
		{"bad registration", map[string]string{"PHRD_DATA": "/d"}, []string{"--registration", "maybe"}, "registration", nil},
		{"half tls", map[string]string{"PHRD_DATA": "/d"}, []string{"--tls-cert", "c.pem"}, "tls", nil},
		{"bad env", map[string]string{"PHRD_DATA": "/d", "PHRD_IDLE_TIMEOUT": "soon"}, nil, "PHRD_IDLE_TIMEOUT", nil},
		{"extra arg", map[string]string{"PHRD_DATA": "/d"}, []string{"now"}, "unexpected", nil},
		{"defaults", map[string]string{"PHRD_DATA": "/d"}, nil, "", func(m *Main) string {
			if m.Config.Registration != "loopback" || len(m.Config.TrustedProxies) != 0 || m.MetricsAddr != "" || m.Config.ShareKeyFile != "" {
				return fmt.Sprintf("%+v %q", m.Config, m.MetricsAddr)
			}
			return ""
		}},
		{"trust-proxy alone", map[string]string{"PHRD_DATA": "/d"}, []string{"--trust-proxy"}, "", func(m *Main) string {
			if len(m.Config.TrustedProxies) != 8 || m.Config.TrustedProxies[0].String() != "127.0.0.0/8" {
				return fmt.Sprint(m.Config.TrustedProxies)
			}
			return ""
		}},
		{"trust-proxy list", map[string]string{"PHRD_DATA": "/d"}, []string{"--trust-proxy=10.0.0.5,fd00::/64"}, "", func(m *Main) string {
			if fmt.Sprint(m.Config.TrustedProxies) != "[10.0.0.5/32 fd00::/64]" {
				return fmt.Sprint(m.Config.TrustedProxies)
			}
			return ""
		}},
		{"trust-proxy env (older phrd's boolean)", map[string]string{"PHRD_DATA": "/d", "PHRD_TRUST_PROXY": "true"}, nil, "", func(m *Main) string {
			if len(m.Config.TrustedProxies) != 8 {
				return fmt.Sprint(m.Config.TrustedProxies)
			}
			return ""
		}},
		{"trust-proxy without =", map[string]string{"PHRD_DATA": "/d"}, []string{"--trust-proxy", "10.0.0.5"}, "--trust-proxy=10.0.0.5", nil},
		{"bad trust-proxy", map[string]string{"PHRD_DATA": "/d"}, []string{"--trust-proxy=proxy.example"}, "neither", nil},
		{"share key and metrics", map[string]string{"PHRD_DATA": "/d", "PHRD_SHARE_KEY": "/k/share.key"}, []string{"--metrics-addr", "127.0.0.1:9100"}, "", func(m *Main) string {
			if m.Config.ShareKeyFile != "/k/share.key" || m.MetricsAddr != "127.0.0.1:9100" {
				return m.Config.ShareKeyFile + " " + m.MetricsAddr
			}
			return ""
		}},
		{"database url from env, password and all", map[string]string{"PHRD_DATA": "/d", "PHRD_DATABASE_URL": "postgres://phrd:s3cret@db.internal/phr"}, nil, "", func(m *Main) string {
			if m.Config.DatabaseURL != "postgres://phrd:s3cret@db.internal/phr" {
				return m.Config.DatabaseURL
			}
			return ""
		}},
		{"database url flag without password", map[string]string{"PHRD_DATA": "/d", "PHRD_DATABASE_URL": "postgres://other/x"}, []string{"--database-url", "postgres://phrd@db.internal/phr?sslmode=verify-full"}, "", func(m *Main) string {
			if m.Config.DatabaseURL != "postgres://phrd@db.internal/phr?sslmode=verify-full" {
				return m.Config.DatabaseURL
			}
			return ""
		}},
		{"database url flag with password", map[string]string{"PHRD_DATA": "/d"}, []string{"--database-url", "postgres://phrd:s3cret@db.internal/phr"}, "process list", nil},
		{"database url flag with password parameter", map[string]string{"PHRD_DATA": "/d"}, []string{"--database-url=host=db.internal user=phrd password=s3cret"}, "process list", nil},
		{"flags and env in any order", map[string]string{"PHRD_ADDR": ":9"}, []string{"--log-format", "text", "--data", "/d", "--registration=open"}, "", func(m *Main) string {
			if m.Config.DataDir != "/d" || m.Addr != ":9" || m.LogFormat != "text" || m.Config.Registration != "open" {
				return fmt.Sprintf("%+v", m)
			}
			return ""
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := NewMain()
			m.Stderr, m.Getenv = io.Discard, env(tt.env)
			err := m.ParseFlags(context.Background(), tt.args)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if msg := tt.check(m); msg != "" {
				t.Error(msg)
			}
		})
	}
}

func TestAccountCreateCommand(t *testing.T) {
	dir := t.TempDir()
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"account", "create", "--data", dir, "Bob"}, strings.NewReader(""), &out, &errb, env(map[string]string{"PHRD_PASSPHRASE": pass}))
	if code != 0 || !strings.Contains(out.String(), "Created account bob") || !strings.Contains(out.String(), "-") {
		t.Fatalf("exit %d: %s %s", code, out.String(), errb.String())
	}
	for _, tt := range []struct {
		args []string
		env  map[string]string
		code int
	}{
		{[]string{"account", "create", "--data", dir, "bob"}, map[string]string{"PHRD_PASSPHRASE": pass}, exitError},
		{[]string{"account", "create", "--data", dir, "carol"}, map[string]string{"PHRD_PASSPHRASE": "short"}, exitError},
		{[]string{"account", "create", "--data", dir, "carol"}, nil, exitError}, // no terminal
		{[]string{"account", "create", "carol"}, map[string]string{"PHRD_PASSPHRASE": pass}, exitUsage},
		{[]string{"account", "delete", "carol"}, nil, exitUsage},
	} {
		if c := run(context.Background(), tt.args, strings.NewReader(""), io.Discard, io.Discard, env(tt.env)); c != tt.code {
			t.Errorf("%v: exit %d, want %d", tt.args, c, tt.code)
		}
	}
	// The account logs in on a server with closed registration.
	m, _ := startMain(t, dir, "--registration", "closed")
	login(t, m.URL(), "bob", pass)
	if st, _, _ := call(t, "POST", m.URL()+"/api/v1/accounts", "", api.CreateAccountRequest{Username: "carol", Passphrase: pass}); st != http.StatusForbidden {
		t.Fatalf("open registration on a closed server: %d", st)
	}
}

// phrd account import: a CLI vault's backup, encrypted to a passphrase
// as `phr backup --passphrase` writes it, becomes an account that logs in
// and lists the vault's records.
func TestAccountImportCommand(t *testing.T) {
	dir := t.TempDir()
	v, err := vault.Create(filepath.Join(t.TempDir(), "cli.phr"), []vault.SlotSpec{{Kind: vault.SlotPassphrase, Passphrase: pass}}, &vault.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	note, err := record.NewNote(record.Common{}, "A note from the CLI", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Put(note); err != nil {
		t.Fatal(err)
	}
	r, err := age.NewScryptRecipient("the backup passphrase")
	if err != nil {
		t.Fatal(err)
	}
	r.SetWorkFactor(10)
	var backup bytes.Buffer
	if _, err := v.Backup(&backup, []age.Recipient{r}, false); err != nil {
		t.Fatal(err)
	}
	v.Close()
	file := filepath.Join(t.TempDir(), "backup.age")
	if err := os.WriteFile(file, backup.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		args   []string
		env    map[string]string
		code   int
		stderr string
	}{
		{[]string{"account", "import", "bob", file, "--data", dir}, map[string]string{"PHRD_PASSPHRASE": pass, "PHRD_BACKUP_PASSPHRASE": "not the one"}, exitError, "backup"},
		{[]string{"account", "import", "bob", file, "--data", dir}, map[string]string{"PHRD_PASSPHRASE": pass}, exitError, "no backup key"},
		{[]string{"account", "import", "bob", filepath.Join(dir, "missing.age"), "--data", dir}, map[string]string{"PHRD_PASSPHRASE": pass, "PHRD_BACKUP_PASSPHRASE": "x"}, exitError, "missing.age"},
		{[]string{"account", "import", "bob", "--data", dir}, nil, exitUsage, "accepts 2 arg"},
	} {
		var errb bytes.Buffer
		if c := run(context.Background(), tt.args, strings.NewReader(""), io.Discard, &errb, env(tt.env)); c != tt.code || !strings.Contains(errb.String(), tt.stderr) {
			t.Errorf("%v: exit %d, want %d; %s", tt.args, c, tt.code, errb.String())
		}
	}
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"account", "import", "Bob", file, "--data", dir}, strings.NewReader(""), &out, &errb, env(map[string]string{"PHRD_PASSPHRASE": pass, "PHRD_BACKUP_PASSPHRASE": "the backup passphrase"}))
	if code != 0 || !strings.Contains(out.String(), "Created account bob with 1 records") {
		t.Fatalf("exit %d: %s %s", code, out.String(), errb.String())
	}
	m, _ := startMain(t, dir, "--registration", "closed")
	tok := login(t, m.URL(), "bob", pass)
	st, body, _ := call(t, "GET", m.URL()+"/api/v1/records", tok, nil)
	if st != http.StatusOK || !strings.Contains(string(body), note.ID) {
		t.Fatalf("records: %d %s", st, body)
	}
}

func TestServeExitsOnSignal(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	logs := &syncBuffer{}
	go func() {
		done <- run(ctx, []string{"serve", "--addr", "127.0.0.1:0", "--data", t.TempDir()}, strings.NewReader(""), io.Discard, logs, env(nil))
	}()
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(logs.String(), "listening") {
		if time.Now().After(deadline) {
			t.Fatalf("not listening: %s", logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 || !strings.Contains(logs.String(), `"msg":"stopped"`) {
			t.Fatalf("exit %d: %s", code, logs.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no exit after the signal")
	}
}

// TestCommandLines runs phrd's command lines as a person types them:
// flags and arguments in any order (the README's `phrd account create
// alice --data DIR` included), help that helps (exit 0), and usage
// errors (exit 2) that say what to do.
func TestCommandLines(t *testing.T) {
	dir := t.TempDir()
	passEnv := map[string]string{"PHRD_PASSPHRASE": pass}
	for _, tt := range []struct {
		name   string
		args   []string
		env    map[string]string
		code   int
		stdout string
		stderr string
	}{
		{"README: name before --data", []string{"account", "create", "alice", "--data", dir}, passEnv, exitOK, "Created account alice", ""},
		{"--data before the name", []string{"account", "create", "--data", dir, "bob"}, passEnv, exitOK, "Created account bob", ""},
		{"--data=", []string{"account", "create", "--data=" + dir, "carol"}, passEnv, exitOK, "Created account carol", ""},
		{"PHRD_DATA", []string{"account", "create", "dave"}, map[string]string{"PHRD_PASSPHRASE": pass, "PHRD_DATA": dir}, exitOK, "Created account dave", ""},
		{"account --help", []string{"account", "--help"}, nil, exitOK, "create", ""},
		{"account", []string{"account"}, nil, exitOK, "create", ""},
		{"account create --help", []string{"account", "create", "--help"}, nil, exitOK, "PHRD_PASSPHRASE", ""},
		{"--help", []string{"--help"}, nil, exitOK, "--trust-proxy", ""},
		{"serve --help", []string{"serve", "--help"}, nil, exitOK, "--metrics-addr", ""},
		{"help", []string{"help"}, nil, exitOK, "account", ""},
		{"no name", []string{"account", "create", "--data", dir}, passEnv, exitUsage, "", "accepts 1 arg"},
		{"unknown account command", []string{"account", "delete", "carol"}, nil, exitUsage, "", `unknown command "delete"`},
		{"unknown command", []string{"bogus"}, nil, exitUsage, "", `unknown command "bogus"`},
		{"one dash", []string{"-addr", ":1", "--data", dir}, nil, exitUsage, "", "two dashes"},
		{"unknown flag", []string{"--nope", "--data", dir}, nil, exitUsage, "", "unknown flag: --nope"},
		{"bad registration", []string{"--data", dir, "--registration", "maybe"}, nil, exitUsage, "", "loopback, open or closed"},
		{"no data", []string{"serve"}, nil, exitUsage, "", "--data"},
		{"taken name", []string{"account", "create", "alice", "--data", dir}, passEnv, exitError, "", "exists"},
		{"migrate --help", []string{"migrate", "--help"}, nil, exitOK, "--from-data", ""},
		{"migrate without a database", []string{"migrate", "--from-data", dir}, nil, exitUsage, "", "--database-url"},
		{"migrate with a password on the command line", []string{"migrate", "--from-data", dir, "--database-url", "postgres://u:pw@h/db"}, nil, exitUsage, "", "process list"},
		{"migrate to no database", []string{"migrate", "--from-data", dir}, map[string]string{"PHRD_DATABASE_URL": "postgres://phr@127.0.0.1:1/x?connect_timeout=2"}, exitError, "", "storage unavailable"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(context.Background(), tt.args, strings.NewReader(""), &out, &errb, env(tt.env))
			if code != tt.code || !strings.Contains(out.String(), tt.stdout) || !strings.Contains(errb.String(), tt.stderr) {
				t.Fatalf("exit %d (want %d)\nstdout: %s\nstderr: %s", code, tt.code, out.String(), errb.String())
			}
		})
	}
}

// TestMetricsAddress: /metrics is off by default and never at the API's
// address; with --metrics-addr it is served there only.
func TestMetricsAddress(t *testing.T) {
	m, _ := startMain(t, t.TempDir())
	if m.MetricsURL() != "" {
		t.Fatal("metrics on by default")
	}
	if st, body, _ := call(t, "GET", m.URL()+"/metrics", "", nil); st != http.StatusNotFound || strings.Contains(string(body), "phrd_") {
		t.Fatalf("/metrics at the API's address: %d %s", st, body)
	}
	m, _ = startMain(t, t.TempDir(), "--metrics-addr", "127.0.0.1:0")
	call(t, "GET", m.URL()+"/healthz", "", nil)
	st, body, _ := call(t, "GET", m.MetricsURL(), "", nil)
	if st != http.StatusOK || !strings.Contains(string(body), `phrd_http_requests_total{route="/healthz",method="GET",status="200"} 1`) {
		t.Fatalf("metrics: %d %s", st, body)
	}
	if st, _, _ := call(t, "GET", m.URL()+"/metrics", "", nil); st != http.StatusNotFound {
		t.Fatalf("/metrics at the API's address too: %d", st)
	}
	if st, _, _ := call(t, "GET", strings.TrimSuffix(m.MetricsURL(), "/metrics")+"/api/v1/records", "", nil); st != http.StatusNotFound {
		t.Fatalf("the API at the metrics address: %d", st)
	}
}
