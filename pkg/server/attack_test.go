package server

// Tests of the server as an attacker sees it: hostile paths and names,
// oversized and overshaped bodies, against a real server on 127.0.0.1.
// The rest is in guessing_test.go (tokens, passcodes, share ids) and
// headers_test.go (CORS, security headers).

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/phr-project/phr/pkg/importers"
	"github.com/phr-project/phr/pkg/server/api"
	"github.com/phr-project/phr/pkg/shlhost"
)

// rawTimeout bounds every raw exchange: an answer that has not come by
// then is a failure (the server waits for something it should not).
const rawTimeout = 20 * time.Second

func (ts *testServer) addr() string { return strings.TrimPrefix(ts.url, "http://") }

// rawExchange sends head (request line and header fields, each ending in
// CRLF, without the empty line) and body exactly as given, on a new
// connection, and reads the answer.
func rawExchange(t *testing.T, addr, head string, body []byte) (*http.Response, []byte) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(rawTimeout))
	if _, err := io.WriteString(conn, head+"\r\n"); err != nil {
		t.Fatal(err)
	}
	if len(body) > 0 {
		if _, err := conn.Write(body); err != nil {
			t.Fatal(err)
		}
	}
	return readAnswer(t, conn)
}

func readAnswer(t *testing.T, conn net.Conn) (*http.Response, []byte) {
	t.Helper()
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(res.Body)
	return res, data
}

// randomShareID is a well-formed manifest id that no share has.
func randomShareID() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// jsonErrorBody checks that body is {"error":{"code","message"}}.
func jsonErrorBody(t *testing.T, what string, body []byte) api.Error {
	t.Helper()
	var e api.ErrorBody
	if err := json.Unmarshal(body, &e); err != nil || e.Error.Code == "" || e.Error.Message == "" {
		t.Errorf("%s: not a JSON error: %q", what, truncate(string(body), 200))
	}
	return e.Error
}

// listTree lists every path under root, relative, with a trailing / on
// directories.
func listTree(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if d.IsDir() {
			rel += "/"
		}
		out = append(out, rel)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestPathTraversal sends every client string that could become part of
// a file name or a lookup key (account names, upload names and formats,
// record, device and share ids, location tokens, viewer asset paths,
// backup recipients, list filters) as ../, absolute paths, encoded
// %2e%2e%2f, NUL bytes and backslashes. Every one is refused (or, for an
// upload name, cleaned), nothing outside the data directory is read, and
// nothing is created but the expected files inside it.
func TestPathTraversal(t *testing.T) {
	parent := t.TempDir()
	const sentinel = "SENTINEL-OUTSIDE-THE-DATA-DIR"
	for _, name := range []string{"secret.txt", "secret.phr", "viewer.js"} {
		if err := os.WriteFile(filepath.Join(parent, name), []byte(sentinel), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	dataDir := filepath.Join(parent, "data")
	reg := &importers.Registry{}
	reg.Register(lines{})
	ts := newTestServer(t, func(c *Config) { c.DataDir = dataDir; c.Importers = reg })
	alice := ts.signup("alice")
	before := listTree(t, parent)

	// The hostile forms of a path segment (as sent on the wire: the
	// request line carries them verbatim).
	segments := []string{
		"..", "../secret.txt", "..%2fsecret.txt", "%2e%2e%2fsecret.txt", "%2e%2e", "%2E%2E%2F%2E%2E%2Fsecret.txt",
		"..%5csecret.txt", `..\secret.txt`, "%2fetc%2fpasswd", "%00", "a%00b", "secret.txt%00.phr",
		"..%252fsecret.txt", "%c0%ae%c0%ae%c0%afsecret.txt", "....%2f%2fsecret.txt",
	}
	// Whole request targets, for what a segment cannot express.
	targets := []string{
		"/api/v1/records/../../../secret.txt", "/api/v1/records/..%2f..%2f..%2fsecret.txt",
		"/view/../../secret.txt", "/view/..%2f..%2fsecret.txt", "/view/%2e%2e/%2e%2e/secret.txt", "/view/viewer.js%00",
		"/view/..%5cviewer.js", "/view/./viewer.js/..", "//etc/passwd", "/shl/../../secret.txt",
		"/api/v1/records?cursor=" + base64.RawURLEncoding.EncodeToString([]byte("o:../../x")),
		"/api/v1/backup?recipient=../../secret.txt", "/api/v1/backup?recipient=%2fetc%2fpasswd",
		"/api/v1/audit?limit=../1",
	}
	shareID := randomShareID()
	for _, seg := range segments {
		targets = append(targets,
			"/api/v1/records/"+seg, "/api/v1/devices/"+seg, "/api/v1/shares/"+seg, "/api/v1/shares/"+seg+"/log",
			"/api/v1/shares/"+seg+"/files", "/shl/"+seg, "/shl/"+seg+"?recipient=x", "/shl/"+shareID+"/f/"+seg,
			"/shl/"+seg+"/f/"+seg, "/view/"+seg, "/"+seg,
		)
	}
	methods := map[string][]string{
		"/api/v1/records/": {"GET", "PUT", "DELETE"}, "/api/v1/devices/": {"DELETE"}, "/api/v1/shares/": {"DELETE", "GET", "PUT"},
		"/shl/": {"GET", "POST"},
	}
	// Filters are matched against stored values, never used as names:
	// they may succeed (with nothing found).
	filters := []string{"/api/v1/records?source=../../secret.txt&q=%00", "/api/v1/records?q=..%5c..%5csecret.txt&type=../x"}
	targets = append(targets, filters...)
	refused := 0
	for _, target := range targets {
		ms := []string{"GET"}
		for prefix, m := range methods {
			if strings.HasPrefix(target, prefix) {
				ms = m
			}
		}
		for _, method := range ms {
			head := fmt.Sprintf("%s %s HTTP/1.1\r\nHost: phr.test\r\nAuthorization: Bearer %s\r\nIf-Match: *\r\nConnection: close\r\n", method, target, alice.token)
			var body []byte
			if method == "POST" || method == "PUT" {
				body = []byte(`{"recipient":"x","files":[{"content_type":"application/fhir+json","jwe":"a.b.c.d.e"}],"resourceType":"Basic"}`)
				head += fmt.Sprintf("Content-Type: application/json\r\nContent-Length: %d\r\n", len(body))
			}
			res, data := rawExchange(t, ts.addr(), head, body)
			what := method + " " + target
			if slices.Contains(filters, target) && res.StatusCode == http.StatusOK {
				if bytes.Contains(data, []byte(sentinel)) {
					t.Errorf("%s: the answer holds a file from outside the data directory", target)
				}
				continue
			}
			if res.StatusCode < 400 || res.StatusCode >= 500 {
				t.Errorf("%s: status %d: %s", what, res.StatusCode, truncate(string(data), 200))
			}
			if bytes.Contains(data, []byte(sentinel)) {
				t.Errorf("%s: the answer holds a file from outside the data directory", what)
			}
			if res.StatusCode != http.StatusBadRequest || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/plain") {
				// Answers from phrd (not from net/http refusing the
				// request line) are JSON errors.
				jsonErrorBody(t, what, data)
			}
			refused++
		}
	}

	// Names inside bodies: usernames become vault file names (through
	// an HMAC), upload file names become report names (never paths).
	anon := ts.client()
	for _, u := range []string{
		"../../secret", "..", "...", "/etc/passwd", `..\..\secret`, "a\x00b", "%2e%2e%2fsecret", "alice/../bob",
		"../vaults/" + ts.data.accountID("alice"),
	} {
		r := anon.do("POST", "/api/v1/accounts", api.CreateAccountRequest{Username: u, Passphrase: testPass})
		if u == "..." { // dots are allowed: the name is hashed, never a path
			want(t, r, http.StatusCreated)
		} else if r.status != http.StatusBadRequest {
			t.Errorf("account %q: status %d: %s", u, r.status, r.body)
		}
		r = anon.do("POST", "/api/v1/sessions", api.SessionRequest{Username: u, Passphrase: testPass})
		if u != "..." && r.status != http.StatusBadRequest {
			t.Errorf("login %q: status %d: %s", u, r.status, r.body)
		}
	}
	outside := filepath.Join(os.TempDir(), "phr-traversal-"+randomShareID())
	for _, name := range []string{
		"../../../pwned.txt", "../../pwned.phr", "/" + filepath.Join(parent, "pwned-abs.txt"), outside,
		`..\..\..\pwned.txt`, "pwned\x00.txt", "%2e%2e%2fpwned.txt", "../tmp/../vaults/pwned.phr", "..", "/",
	} {
		r := alice.upload(name, "#lines\nCondition asthma\n")
		if r.status == http.StatusBadRequest { // a name multipart cannot carry
			continue
		}
		if r.status != http.StatusCreated {
			t.Errorf("upload %q: status %d: %s", name, r.status, r.body)
			continue
		}
		var res api.ImportResult
		r.decode(t, &res)
		got := res.Files[0].File
		if strings.ContainsAny(got, `/\`+"\x00") || got == ".." || got == "." {
			t.Errorf("upload %q: reported as %q", name, got)
		}
	}
	if _, err := os.Stat(outside); err == nil {
		os.Remove(outside)
		t.Errorf("an upload created %s", outside)
	}
	want(t, alice.upload("x.txt", "#lines\n", "format", "../../secret.txt"), http.StatusBadRequest)
	want(t, alice.do("POST", "/api/v1/shares", map[string]any{"select": map[string]any{"ids": []string{"../../secret.txt"}}, "expires_at": time.Now().Add(time.Hour)}), http.StatusBadRequest)

	// The tree: the sentinels, and the data directory's own files only.
	after := listTree(t, parent)
	vaultRe := regexp.MustCompile(`^data/vaults/[0-9a-f]{64}\.phr$`)
	for _, p := range after {
		switch {
		case slices.Contains(before, p), vaultRe.MatchString(p):
		default:
			t.Errorf("new file %s", p)
		}
	}
	if tmp, _ := os.ReadDir(filepath.Join(dataDir, "tmp")); len(tmp) != 0 {
		t.Errorf("uploads left in tmp/: %v", tmp)
	}
	t.Logf("%d hostile requests refused; %d paths in the tree", refused, len(after))
}

// uploadHead is the start of a multipart upload whose file part never
// ends.
const uploadBoundary = "phrBoundary0123456789"

var uploadHead = "--" + uploadBoundary + "\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.txt\"\r\nContent-Type: text/plain\r\n\r\n#lines\n"

// bodyRoute is a route that takes a body, ready to send.
type bodyRoute struct {
	method, template, path string
	rule                   bodyRule
	contentType            string
	hdr                    []string // extra header fields: name, value, ...
	prefix                 []byte   // what the body starts with
}

// header is br.hdr as header lines.
func (br bodyRoute) header() string {
	var b strings.Builder
	for i := 0; i+1 < len(br.hdr); i += 2 {
		b.WriteString(br.hdr[i] + ": " + br.hdr[i+1] + "\r\n")
	}
	return b.String()
}

// bodyRoutes lists every route of the router that takes a body, checking
// that each has a rule in the table.
func (ts *testServer) bodyRoutes(t *testing.T) []bodyRoute {
	t.Helper()
	rules := ts.bodyRules()
	var out []bodyRoute
	seen := map[string]bool{}
	for _, r := range ts.e.Routes() {
		key := r.Method + " " + r.Path
		if seen[key] {
			continue
		}
		seen[key] = true
		rule, ok := rules[key]
		switch r.Method {
		case http.MethodPost, http.MethodPut, http.MethodPatch:
			if !ok {
				t.Errorf("%s takes a body but has no rule in bodyRules", key)
				continue
			}
		default:
			if ok {
				t.Errorf("%s has a body rule but takes no body", key)
			}
			continue
		}
		br := bodyRoute{method: r.Method, template: r.Path, rule: rule, contentType: "application/json", prefix: []byte(`{"a":"`)}
		br.path = strings.NewReplacer(":id", "aaaaaaaaaaaaaaaa").Replace(r.Path)
		switch {
		case strings.HasPrefix(r.Path, shlhost.PathPrefix+"/"):
			br.path = shlhost.PathPrefix + "/" + randomShareID()
		case r.Path == "/api/v1/imports":
			br.contentType = "multipart/form-data; boundary=" + uploadBoundary
			br.prefix = []byte(uploadHead)
		case r.Path == "/api/v1/records/:id":
			br.hdr = []string{"If-Match", `"v1"`}
		}
		out = append(out, br)
	}
	if len(out) < 10 {
		t.Fatalf("only %d routes take a body: %v", len(out), out)
	}
	slices.SortFunc(out, func(a, b bodyRoute) int { return strings.Compare(a.template+a.method, b.template+b.method) })
	for key := range rules {
		if !seen[key] {
			t.Errorf("body rule for %s, which is not routed", key)
		}
	}
	return out
}

// TestBodyLimits: every route that takes a body has a limit, and a body
// over it is refused with 413 and a JSON error, closing the connection,
// without the server reading the rest: a declared length over the limit
// is refused before any byte of the body is sent, and a chunked body that
// never ends is refused once the limit is crossed.
func TestBodyLimits(t *testing.T) {
	ts := newTestServer(t, func(c *Config) {
		c.MaxImportBytes = 1 << 20 // the production 256 MiB works the same, slower
		c.Importers = &importers.Registry{}
		c.Importers.Register(lines{})
	})
	alice := ts.signup("alice")
	auth := "Authorization: Bearer " + alice.token + "\r\n"
	for _, br := range ts.bodyRoutes(t) {
		t.Run(strings.ReplaceAll(br.method+br.template, "/", "_"), func(t *testing.T) {
			t.Logf("%s %s: at most %d bytes, JSON depth %d, %d values", br.method, br.template, br.rule.max, br.rule.depth, br.rule.items)
			head := fmt.Sprintf("%s %s HTTP/1.1\r\nHost: phr.test\r\n%sContent-Type: %s\r\n%s", br.method, br.path, auth, br.contentType, br.header())
			check := func(how string, res *http.Response, data []byte) {
				t.Helper()
				if res.StatusCode != http.StatusRequestEntityTooLarge {
					t.Fatalf("%s: status %d: %s", how, res.StatusCode, truncate(string(data), 300))
				}
				if e := jsonErrorBody(t, how, data); e.Code != api.CodeTooLarge || !strings.Contains(e.Message, fmt.Sprint(br.rule.max)) {
					t.Errorf("%s: error %+v", how, e)
				}
				if !res.Close {
					t.Errorf("%s: the connection stays open", how)
				}
			}

			// A declared length one over the limit: no body byte sent.
			start := time.Now()
			res, data := rawExchange(t, ts.addr(), head+fmt.Sprintf("Content-Length: %d\r\n", br.rule.max+1), nil)
			check("Content-Length over the limit", res, data)
			t.Logf("declared length refused in %v", time.Since(start))

			// A chunked body that goes on forever.
			conn, err := net.Dial("tcp", ts.addr())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(rawTimeout))
			if _, err := io.WriteString(conn, head+"Transfer-Encoding: chunked\r\n\r\n"); err != nil {
				t.Fatal(err)
			}
			sent := make(chan int64, 1)
			go func() {
				n := int64(0)
				chunk := bytes.Repeat([]byte("a"), 32<<10)
				w := bufio.NewWriter(conn)
				fmt.Fprintf(w, "%x\r\n%s\r\n", len(br.prefix), br.prefix)
				for n < 4*br.rule.max+(1<<20) {
					fmt.Fprintf(w, "%x\r\n", len(chunk))
					w.Write(chunk)
					w.WriteString("\r\n")
					if w.Flush() != nil {
						break
					}
					n += int64(len(chunk))
				}
				sent <- n // never the last chunk: the body does not end
			}()
			start = time.Now()
			res, data = readAnswer(t, conn)
			check("endless chunked body", res, data)
			t.Logf("endless body refused in %v", time.Since(start))
			conn.Close()
			<-sent
		})
	}
}

// TestJSONShapeLimits: a body within the byte limit but nested too deep,
// or with too many values (a megabyte of tiny readings or of numbers), is
// refused with 400 after one scan, on every route that decodes JSON.
func TestJSONShapeLimits(t *testing.T) {
	ts := newTestServer(t, nil)
	alice := ts.signup("alice")
	for _, br := range ts.bodyRoutes(t) {
		if br.rule.depth == 0 {
			continue
		}
		deep := strings.Repeat("[", br.rule.depth) + strings.Repeat("]", br.rule.depth)
		wide := strings.Repeat("0,", br.rule.items) + "0"
		fits := func(s string) bool { return int64(len(s)) < br.rule.max-64 }
		for _, tt := range []struct {
			name, body, msg string
		}{
			{"deep", `{"a":` + deep + `}`, fmt.Sprintf("deeper than %d levels", br.rule.depth)},
			{"wide", `{"a":[` + wide + `]}`, fmt.Sprintf("more than %d JSON values", br.rule.items)},
			{"wide objects", `{"readings":[` + strings.Repeat("{},", br.rule.items) + `{}]}`, fmt.Sprintf("more than %d JSON values", br.rule.items)},
		} {
			if !fits(tt.body) {
				t.Fatalf("%s %s: the %s body (%d bytes) does not fit the byte limit %d: the shape limit is unreachable", br.method, br.template, tt.name, len(tt.body), br.rule.max)
			}
			r := alice.do(br.method, br.path, tt.body, br.hdr...)
			if r.status != http.StatusBadRequest || !strings.Contains(r.errMsg(), tt.msg) {
				t.Errorf("%s %s, %s body of %d bytes: %d %s", br.method, br.template, tt.name, len(tt.body), r.status, truncate(string(r.body), 200))
			}
		}
		// Just within the limits, the shape check lets the body through
		// (to whatever the handler then says of it).
		ok := `{"a":` + strings.Repeat("[", br.rule.depth-1) + strings.Repeat("]", br.rule.depth-1) + `}`
		r := alice.do(br.method, br.path, ok, br.hdr...)
		if strings.Contains(r.errMsg(), "deeper than") || strings.Contains(r.errMsg(), "JSON values") {
			t.Errorf("%s %s: depth %d refused: %s", br.method, br.template, br.rule.depth, r.body)
		}
	}
	// The production ingest limit: a megabyte of empty readings is
	// refused before decoding, not after allocating them.
	r := alice.do("POST", "/api/v1/ingest", `{"device":"w","readings":[`+strings.Repeat("{},", 350_000)+`{}]}`)
	want(t, r, http.StatusBadRequest)
	t.Logf("1 MiB of empty readings: %s", r.errMsg())
}

// TestCheckJSONShape pins the scanner on small cases.
func TestCheckJSONShape(t *testing.T) {
	for _, tt := range []struct {
		in           string
		depth, items int
	}{
		{`0`, 0, 0}, {`"[[[,,,"`, 0, 0}, {`[]`, 1, 0}, {`{}`, 1, 0}, {`[0]`, 1, 1}, {`[0,1,2]`, 1, 3},
		{`{"a":1,"b":[2,3]}`, 2, 4}, {`[[],[],[]]`, 2, 3}, {`[[[0]]]`, 3, 3}, {`{"a\"[":"\\",  "b" : { } }`, 2, 2},
		{` [ "]" , "[" ] `, 1, 2}, {`[{"a":[{}]}]`, 4, 3},
	} {
		if err := checkJSONShape([]byte(tt.in), max(tt.depth, 1), tt.items); err != nil {
			t.Errorf("%s within depth %d, %d items: %v", tt.in, tt.depth, tt.items, err)
		}
		if tt.depth > 1 {
			if err := checkJSONShape([]byte(tt.in), tt.depth-1, 1000); err == nil {
				t.Errorf("%s: depth %d not refused at %d", tt.in, tt.depth, tt.depth-1)
			}
		}
		if tt.items > 0 {
			if err := checkJSONShape([]byte(tt.in), 1000, tt.items-1); err == nil {
				t.Errorf("%s: %d items not refused at %d", tt.in, tt.items, tt.items-1)
			}
		}
	}
	var he *httpError
	if err := checkJSONShape([]byte(strings.Repeat("[", 101)), 100, 10); !errors.As(err, &he) || he.status != http.StatusBadRequest {
		t.Errorf("deep: %v", err)
	}
}

// TestStrictNames: JSON member names must be spelled exactly and given
// once (encoding/json alone matches them without regard to case and lets
// the last of a repeated member win, so two readers of one body could
// disagree about it).
func TestStrictNames(t *testing.T) {
	ts := newTestServer(t, nil)
	alice := ts.signup("alice")
	for _, tt := range []struct {
		path, body, msg string
	}{
		{"/api/v1/sessions", `{"username":"alice","Passphrase":"` + testPass + `"}`, `unknown field "Passphrase"`},
		{"/api/v1/sessions", `{"username":"alice","passphrase":"wrong guess","passphrase":"` + testPass + `"}`, `"passphrase" appears more than once`},
		{"/api/v1/accounts", `{"USERNAME":"bob","passphrase":"` + testPass + `"}`, `unknown field "USERNAME"`},
		{"/api/v1/ingest", `{"device":"w","readings":[{"id":"1","type":"heart_rate","value":60,"at":"2026-05-01T08:00:00Z"},{"ID":"2"}]}`, `unknown field "readings[1].ID"`},
		{"/api/v1/shares", `{"Select":{"summary":true},"expires_at":"2099-01-01T00:00:00Z"}`, `unknown field "Select"`},
		{"/api/v1/shares", `{"select":{"summary":true,"Summary":false},"expires_at":"2099-01-01T00:00:00Z"}`, `unknown field "select.Summary"`},
		{"/api/v1/keys/recovery", `{"passphrase":"x","passphrase":"y"}`, "appears more than once"},
	} {
		r := alice.do("POST", tt.path, tt.body)
		if r.status != http.StatusBadRequest || !strings.Contains(r.errMsg(), tt.msg) {
			t.Errorf("%s %s: %d %s", tt.path, tt.body, r.status, r.body)
		}
	}
	// The right spellings still work, embedded fields (expires_at) too.
	want(t, alice.do("POST", "/api/v1/shares", `{"select":{"summary":true},"expires_at":"`+time.Now().Add(time.Hour).Format(time.RFC3339)+`","label":"x"}`), http.StatusCreated)
	want(t, alice.do("POST", "/api/v1/ingest", `{"device":"w","readings":[{"id":"1","type":"bp","value":120,"value2":80,"unit":"mm[Hg]","at":"2026-05-01T08:00:00Z"}]}`), http.StatusOK)
}
