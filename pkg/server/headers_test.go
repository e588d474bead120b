package server

import (
	"crypto/tls"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/phr-project/phr/pkg/app"
	"github.com/phr-project/phr/pkg/shlhost"
	"github.com/phr-project/phr/pkg/viewer"
)

// routeCase is a route of the router with its parameters filled in.
type routeCase struct {
	method, template, path string
}

// routeCases lists every route of ts's router (e.Routes(), so that a new
// route cannot be left out), with parameters filled in: record-shaped ids
// for the API, a well-formed unknown manifest id for /shl.
func (ts *testServer) routeCases(t *testing.T) []routeCase {
	t.Helper()
	var out []routeCase
	seen := map[string]bool{}
	shareID := randomShareID()
	for _, r := range ts.e.Routes() {
		if seen[r.Method+r.Path] {
			continue
		}
		seen[r.Method+r.Path] = true
		p := strings.NewReplacer(":id", "aaaaaaaaaaaaaaaa", ":token", "bbbbbbbb").Replace(r.Path)
		if strings.HasPrefix(r.Path, shlhost.PathPrefix+"/") {
			p = strings.Replace(p, "aaaaaaaaaaaaaaaa", shareID, 1)
		}
		out = append(out, routeCase{r.Method, r.Path, p})
	}
	// Ending the session goes last: the other routes use it.
	slices.SortStableFunc(out, func(a, b routeCase) int {
		last := func(c routeCase) bool { return c.method == "DELETE" && c.template == "/api/v1/sessions/current" }
		switch {
		case last(a) && !last(b):
			return 1
		case last(b) && !last(a):
			return -1
		}
		return strings.Compare(a.template+a.method, b.template+b.method)
	})
	if len(out) < 25 {
		t.Fatalf("only %d routes: %v", len(out), out)
	}
	return out
}

// isSHL reports whether a path is one of the public share routes, the only
// ones with CORS.
func isSHL(path string) bool { return strings.HasPrefix(path, shlhost.PathPrefix+"/") }

// TestCORSOnlyOnShl: the public share routes answer any origin, for
// preflights and requests alike, and never with credentials; no other
// route (the API, the viewer, operations) sends any Access-Control header,
// to a preflight or to a request with an Origin, so browsers refuse
// cross-origin calls to them.
func TestCORSOnlyOnShl(t *testing.T) {
	ts := newTestServer(t, nil)
	alice := ts.signup("alice")
	const origin = "https://evil.example"
	checked := 0
	for _, rc := range ts.routeCases(t) {
		if rc.method == http.MethodOptions {
			continue // the preflight routes are sent below, for their route
		}
		pre := alice.do("OPTIONS", rc.path, nil, "Origin", origin, "Access-Control-Request-Method", rc.method,
			"Access-Control-Request-Headers", "authorization, content-type")
		var body any
		if rc.method == "POST" || rc.method == "PUT" {
			body = "{}"
		}
		req := alice.do(rc.method, rc.path, body, "Origin", origin)
		what := rc.method + " " + rc.template
		if isSHL(rc.template) {
			if pre.status != http.StatusNoContent || pre.header.Get("Access-Control-Allow-Origin") != "*" ||
				!strings.Contains(pre.header.Get("Access-Control-Allow-Methods"), rc.method) {
				t.Errorf("%s: preflight %d %v", what, pre.status, pre.header)
			}
			if h := strings.ToLower(pre.header.Get("Access-Control-Allow-Headers")); strings.Contains(h, "authorization") || strings.Contains(h, "*") {
				t.Errorf("%s: preflight allows headers %q", what, h)
			}
			if req.header.Get("Access-Control-Allow-Origin") != "*" {
				t.Errorf("%s: no CORS on the answer (%d)", what, req.status)
			}
			for _, r := range []*resp{pre, req} {
				if r.header.Get("Access-Control-Allow-Credentials") != "" {
					t.Errorf("%s: credentials allowed", what)
				}
			}
			checked++
			continue
		}
		for _, r := range []*resp{pre, req} {
			for h := range r.header {
				if strings.HasPrefix(strings.ToLower(h), "access-control-") {
					t.Errorf("%s (%d): %s: %s", what, r.status, h, r.header.Get(h))
				}
			}
		}
		// echo answers OPTIONS on any routed path with 204 and Allow;
		// without Access-Control-Allow-Origin a browser's preflight
		// fails all the same.
		if pre.status >= 500 {
			t.Errorf("%s: preflight answered %d", what, pre.status)
		}
		checked++
	}
	t.Logf("%d routes checked", checked)
}

// TestHeadersOnEveryRoute: every route of the router, answering with
// success or error, over HTTP and HTTPS, sends nosniff, no-referrer, DENY
// framing and a CSP with frame-ancestors 'none', Cache-Control: no-store,
// and HSTS exactly under TLS; HTML answers (the viewer) carry the
// viewer's strict CSP, without anything unsafe. Unrouted paths and wrong
// methods too.
func TestHeadersOnEveryRoute(t *testing.T) {
	certFile, keyFile, pool := selfSigned(t)
	for _, tlsOn := range []bool{false, true} {
		name := "http"
		if tlsOn {
			name = "https"
		}
		t.Run(name, func(t *testing.T) {
			ts := newTestServer(t, func(c *Config) {
				if tlsOn {
					c.TLSCert, c.TLSKey = certFile, keyFile
				}
			})
			hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
			defer hc.CloseIdleConnections()
			base := ts.url
			if tlsOn {
				base = "https" + strings.TrimPrefix(ts.url, "http")
			}
			token := ts.signupToken(hc, base, "alice")
			cases := ts.routeCases(t)
			cases = append(cases, routeCase{"GET", "(unrouted)", "/nope"}, routeCase{"GET", "(unrouted)", "/api/v1/nope"},
				routeCase{"PATCH", "(wrong method)", "/api/v1/records"}, routeCase{"GET", "(unrouted)", "/view/nope.js"},
				routeCase{"POST", "(wrong method)", viewer.Path}, routeCase{"HEAD", "(head)", "/healthz"})
			html := 0
			for _, rc := range cases {
				var body io.Reader
				if rc.method == "POST" || rc.method == "PUT" {
					body = strings.NewReader("{}")
				}
				req, err := http.NewRequest(rc.method, base+rc.path, body)
				if err != nil {
					t.Fatal(err)
				}
				req.Header.Set("Authorization", "Bearer "+token)
				req.Header.Set("Content-Type", "application/json")
				res, err := hc.Do(req)
				if err != nil {
					t.Fatalf("%s %s: %v", rc.method, rc.path, err)
				}
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
				what := rc.method + " " + rc.template + " (" + res.Status + ")"
				h := res.Header
				for k, v := range map[string]string{
					"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY", "Cache-Control": "no-store",
				} {
					if got := h.Get(k); got != v {
						t.Errorf("%s: %s = %q, want %q", what, k, got, v)
					}
				}
				csp := h.Get("Content-Security-Policy")
				if !strings.Contains(csp, "frame-ancestors 'none'") || !strings.Contains(csp, "default-src 'none'") || strings.Contains(csp, "unsafe") {
					t.Errorf("%s: CSP %q", what, csp)
				}
				if got := h.Get("Strict-Transport-Security"); (got != "") != tlsOn || (tlsOn && !strings.Contains(got, "max-age=")) {
					t.Errorf("%s: HSTS %q under TLS %v", what, got, tlsOn)
				}
				if strings.HasPrefix(h.Get("Content-Type"), "text/html") {
					html++
					wantCSP := viewer.ContentSecurityPolicy
					if rc.path == "/" || strings.HasPrefix(rc.path, "/app") {
						wantCSP = app.ContentSecurityPolicy // the patient's app (/ redirects there)
					}
					if csp != wantCSP {
						t.Errorf("%s: HTML with CSP %q", what, csp)
					}
				}
			}
			if html < 2 {
				t.Errorf("%d HTML answers: the viewer was not checked", html)
			}
			t.Logf("%d answers checked, %d of them HTML", len(cases), html)
		})
	}
}

// signupToken creates an account through hc and returns a session token.
func (ts *testServer) signupToken(hc *http.Client, base, user string) string {
	ts.t.Helper()
	c := &client{t: ts.t, base: base, hc: hc}
	want(ts.t, c.do("POST", "/api/v1/accounts", map[string]string{"username": user, "passphrase": testPass}), http.StatusCreated)
	c.login(user, testPass)
	return c.token
}
