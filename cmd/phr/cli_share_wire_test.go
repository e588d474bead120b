package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/phr-project/phr/pkg/server/api"
	"github.com/phr-project/phr/pkg/share"
)

// wireRequest is one request the CLI sent to phrd, as the proxy saw it.
type wireRequest struct {
	method, uri string
	header      http.Header
	body        []byte
}

// recordingProxy forwards to target and keeps every request.
func recordingProxy(t *testing.T, target string) (string, func() []wireRequest) {
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	var mu sync.Mutex
	var seen []wireRequest
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		mu.Lock()
		seen = append(seen, wireRequest{r.Method, r.RequestURI, r.Header.Clone(), body})
		mu.Unlock()
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, func() []wireRequest {
		mu.Lock()
		defer mu.Unlock()
		return append([]wireRequest(nil), seen...)
	}
}

// TestCLISharesReachPHRDEncrypted: shares made by the CLI are encrypted
// before they reach phrd, which never sees their content nor their key
// (docs/security.md, "What phrd can see"). Every request `phr share
// create` (one-time and long-term) and `phr share update` send through a
// recording proxy in front of phrd is searched, in its URL, headers and
// body, for the shared records' text and for each link's key (base64url,
// base64, hex): none holds any. The positive controls: the proxy saw the
// shares' files go by, and each link opens to a bundle with the text.
func TestCLISharesReachPHRDEncrypted(t *testing.T) {
	base, _ := startPHRD(t, nil)
	proxy, seen := recordingProxy(t, base)
	if _, err := (&api.Client{BaseURL: base}).CreateAccount(context.Background(), "alice", "alice's long passphrase"); err != nil {
		t.Fatal(err)
	}
	c := newCLI(t)
	c.initVault()
	c.env["PHR_PASSPHRASE"] = "alice's long passphrase"
	c.ok("remote", "login", proxy, "--user", "alice")
	delete(c.env, "PHR_PASSPHRASE")
	texts := []string{"Zorblaxine", "Quimbleforth rash", "Snarfwick clinic"}
	c.ok("log", "med", "Zorblaxine", "--dose", "5 mg", "--note", "from Snarfwick clinic")
	c.ok("log", "condition", "Quimbleforth rash")
	before := len(seen())

	type made struct{ ID, Link string }
	var links []made
	for _, args := range [][]string{
		{"share", "create", "medication", "condition", "--expires", "30m", "--passcode", "4711", "--json"},
		{"share", "create", "medication", "condition", "--expires", "7d", "--long-term", "--json"},
	} {
		var m made
		if err := json.Unmarshal([]byte(c.ok(args...)), &m); err != nil {
			t.Fatal(err)
		}
		links = append(links, m)
	}
	c.ok("log", "symptom", "Quimbleforth rash flare", "--severity", "3")
	c.ok("share", "update", "--", links[1].ID)

	secrets := map[string]string{}
	for _, s := range texts {
		secrets[s] = "record text"
	}
	for i, l := range links {
		p, err := share.Decode(l.Link)
		if err != nil {
			t.Fatal(err)
		}
		key, err := p.KeyBytes()
		if err != nil {
			t.Fatal(err)
		}
		secrets[p.Key] = "link key (base64url)"
		secrets[base64.StdEncoding.EncodeToString(key)] = "link key (base64)"
		secrets[hex.EncodeToString(key)] = "link key (hex)"
		// The positive control: the link opens to the records.
		passcode := ""
		if i == 0 {
			passcode = `,"passcode":"4711"`
		}
		status, body := manifest(t, p, `{"recipient":"Dr. Rivera"`+passcode+`}`)
		if status != http.StatusOK {
			t.Fatalf("manifest: %d %s", status, body)
		}
		var m share.Manifest
		if err := json.Unmarshal(body, &m); err != nil || len(m.Files) == 0 {
			t.Fatalf("manifest %s: %v", body, err)
		}
		_, plain, err := share.DecryptFile(key, m.Files[0].Embedded)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range texts {
			if !bytes.Contains(plain, []byte(s)) {
				t.Errorf("share %d lacks %q: its absence on the wire proves nothing", i, s)
			}
		}
	}

	reqs := seen()[before:]
	files := 0
	for _, r := range reqs {
		if r.method != http.MethodGet && strings.HasPrefix(r.uri, api.Prefix+"/shares") && bytes.Contains(r.body, []byte(`"jwe"`)) {
			files++
		}
		var hdr strings.Builder
		r.header.Write(&hdr)
		for s, what := range secrets {
			for where, data := range map[string]string{"URL": r.uri, "headers": hdr.String(), "body": string(r.body)} {
				if strings.Contains(strings.ToLower(data), strings.ToLower(s)) {
					t.Errorf("%s %s: the %s holds the %s %q", r.method, r.uri, where, what, s)
				}
			}
		}
	}
	if files < 3 {
		t.Fatalf("the proxy saw %d requests carrying share files (of %d), want 3 (two creates, one update): the search proves nothing", files, len(reqs))
	}
	t.Logf("%d requests to phrd searched for %d strings", len(reqs), len(secrets))
}
