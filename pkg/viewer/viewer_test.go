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
		{"/view/viewer.js", "text/javascript; charset=utf-8", "crypto.subtle.decrypt"},
		{"/view/viewer.css", "text/css; charset=utf-8", "@media print"},
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
		{http.MethodDelete, "/view/viewer.js", http.StatusMethodNotAllowed},
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
	html := string(routes[Path].body)
	if m := regexp.MustCompile(`(?i)<script(?:\s[^>]*)?>`).FindAllString(html, -1); len(m) != 1 || !strings.Contains(m[0], `src="/view/viewer.js"`) {
		t.Errorf("page scripts = %q, want only the external viewer.js", m)
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
	js := string(routes[Path+"/viewer.js"].body)
	for _, bad := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function", "setAttribute('on", ".style."} {
		if strings.Contains(js, bad) {
			t.Errorf("viewer.js uses %s", bad)
		}
	}
	css := string(routes[Path+"/viewer.css"].body)
	if regexp.MustCompile(`(?i)url\(|@import`).MatchString(css) {
		t.Error("viewer.css loads other resources")
	}
}
