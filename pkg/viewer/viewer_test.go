package viewer

import (
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

func TestHandlerServesAssetsWithSecurityHeaders(t *testing.T) {
	srv := httptest.NewServer(Handler())
	defer srv.Close()

	for _, tc := range []struct {
		path, contentType, contains string
	}{
		{"/view", "text/html; charset=utf-8", "<title>"},
		{"/view/", "text/html; charset=utf-8", "<title>"},
		{"/view/js/main.mjs", "text/javascript; charset=utf-8", "history.replaceState"},
		{"/view/js/jwe.mjs", "text/javascript; charset=utf-8", "crypto.subtle.decrypt"},
		{"/view/viewer.css", "text/css; charset=utf-8", "@media print"},
		// A JSON module must be served as JSON, or the browser refuses it.
		{"/view/js/vitals.json", "application/json", `"vitalSigns"`},
	} {
		resp, err := http.Get(srv.URL + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: status %d", tc.path, resp.StatusCode)
		}
		if got := resp.Header.Get("Content-Type"); got != tc.contentType {
			t.Errorf("GET %s: Content-Type %q, want %q", tc.path, got, tc.contentType)
		}
		if !strings.Contains(string(body), tc.contains) {
			t.Errorf("GET %s: body lacks %q", tc.path, tc.contains)
		}
		checkSecurityHeaders(t, tc.path, resp.Header)
	}
}

// TestRoutes: every path a server mounts, and every module, is served
// with the headers.
func TestRoutes(t *testing.T) {
	h := Handler()
	mods := modules()
	if len(mods) < 13 {
		t.Fatalf("modules() = %q", mods)
	}
	for _, p := range append(Routes(), mods...) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "http://phr.test"+p, nil))
		if rec.Code != http.StatusOK || rec.Body.Len() == 0 {
			t.Errorf("GET %s: status %d, %d bytes", p, rec.Code, rec.Body.Len())
		}
		checkSecurityHeaders(t, p, rec.Header())
	}
}

func checkSecurityHeaders(t *testing.T, what string, h http.Header) {
	t.Helper()
	want := map[string]string{
		"Content-Security-Policy": ContentSecurityPolicy,
		"X-Content-Type-Options":  "nosniff",
		"Referrer-Policy":         "no-referrer",
		"Cache-Control":           "no-store",
	}
	for k, v := range want {
		if got := h.Get(k); got != v {
			t.Errorf("%s: %s = %q, want %q", what, k, got, v)
		}
	}
}

func TestHandlerErrors(t *testing.T) {
	h := Handler()
	for _, tc := range []struct {
		method, path string
		status       int
	}{
		{http.MethodGet, "/view/other.js", http.StatusNotFound},
		{http.MethodGet, "/view/../etc/passwd", http.StatusNotFound},
		{http.MethodGet, "/viewer", http.StatusNotFound},
		{http.MethodPost, "/view", http.StatusMethodNotAllowed},
		{http.MethodGet, "/view/viewer.js", http.StatusNotFound},
		{http.MethodGet, "/view/js/", http.StatusNotFound},
		{http.MethodGet, "/view/js/strings.test.mjs", http.StatusNotFound},
		{http.MethodDelete, "/view/js/main.mjs", http.StatusMethodNotAllowed},
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(tc.method, "http://phr.test"+tc.path, nil))
		if rec.Code != tc.status {
			t.Errorf("%s %s: status %d, want %d", tc.method, tc.path, rec.Code, tc.status)
		}
		checkSecurityHeaders(t, tc.method+" "+tc.path, rec.Header())
	}

	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodHead, "http://phr.test/view", nil))
	if rec.Code != http.StatusOK || rec.Body.Len() != 0 {
		t.Errorf("HEAD /view: status %d, %d body bytes", rec.Code, rec.Body.Len())
	}
}

// TestCSPDirectives pins the policy's important parts, so that a change to
// the constant is a deliberate one.
func TestCSPDirectives(t *testing.T) {
	for _, d := range []string{
		"default-src 'none'", "script-src 'self'", "style-src 'self'", "connect-src *",
		"base-uri 'none'", "form-action 'none'", "frame-ancestors 'none'",
	} {
		if !strings.Contains(ContentSecurityPolicy, d) {
			t.Errorf("CSP lacks %q", d)
		}
	}
	if strings.Contains(ContentSecurityPolicy, "unsafe") {
		t.Errorf("CSP allows something unsafe: %s", ContentSecurityPolicy)
	}
}

// TestPageHasNoInlineCode checks the static files against the CSP and the
// text-only rule; the browser tests check the same at run time.
func TestPageHasNoInlineCode(t *testing.T) {
	html := string(routes[Path].Body)
	if m := regexp.MustCompile(`(?i)<script(?:\s[^>]*)?>`).FindAllString(html, -1); len(m) != 1 || m[0] != `<script type="module" src="/view/js/main.mjs">` {
		t.Errorf("page scripts = %q, want only the module /view/js/main.mjs", m)
	}
	for _, bad := range []*regexp.Regexp{
		regexp.MustCompile(`(?i)<style`),
		regexp.MustCompile(`(?i)\sstyle=`),
		regexp.MustCompile(`(?i)\son[a-z]+=`),
		regexp.MustCompile(`(?i)javascript:`),
		regexp.MustCompile(`(?i)https?://`),
	} {
		if bad.MatchString(html) {
			t.Errorf("viewer.html matches %s", bad)
		}
	}
	modules := 0
	importRE := regexp.MustCompile(`(?m)^\s*(?:import|export)\s[^;]*?\sfrom\s+'([^']+)'|\bimport\(`)
	for p, a := range routes {
		if !strings.HasPrefix(p, ModuleDir) {
			continue
		}
		modules++
		js := string(a.Body)
		for _, bad := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function", "setAttribute('on", ".style.", "localStorage", "sessionStorage", "indexedDB", "document.cookie"} {
			if strings.Contains(js, bad) {
				t.Errorf("%s uses %s", p, bad)
			}
		}
		// Modules import only each other, statically: no other host, no
		// package, nothing loaded later.
		for _, m := range importRE.FindAllStringSubmatch(js, -1) {
			if m[1] == "" {
				t.Errorf("%s imports dynamically", p)
				continue
			}
			if _, ok := routes[ModuleDir+strings.TrimPrefix(m[1], "./")]; !ok || !strings.HasPrefix(m[1], "./") {
				t.Errorf("%s imports %q, which is not one of the page's modules", p, m[1])
			}
		}
	}
	if modules < 10 {
		t.Errorf("%d modules served, want the viewer's modules", modules)
	}
	css := string(routes[Path+"/viewer.css"].Body)
	if regexp.MustCompile(`(?i)url\(|@import`).MatchString(css) {
		t.Error("viewer.css loads other resources")
	}
}
