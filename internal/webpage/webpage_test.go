package webpage

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/fstest"
)

func TestServe(t *testing.T) {
	serve := func(w http.ResponseWriter, r *http.Request) {
		Headers(w.Header(), "default-src 'none'")
		if GetOrHead(w, r) {
			Write(w, r, File{Body: []byte("hello"), ContentType: "text/plain"})
		}
	}
	for _, c := range []struct {
		method, body, allow string
		status              int
	}{
		{http.MethodGet, "hello", "", http.StatusOK},
		{http.MethodHead, "", "", http.StatusOK},
		{http.MethodPost, "method not allowed\n", "GET, HEAD", http.StatusMethodNotAllowed},
		{http.MethodDelete, "method not allowed\n", "GET, HEAD", http.StatusMethodNotAllowed},
	} {
		rec := httptest.NewRecorder()
		serve(rec, httptest.NewRequest(c.method, "/x", nil))
		h := rec.Header()
		if rec.Code != c.status || rec.Body.String() != c.body || h.Get("Allow") != c.allow {
			t.Errorf("%s: %d %q Allow %q, want %d %q Allow %q", c.method, rec.Code, rec.Body, h.Get("Allow"), c.status, c.body, c.allow)
		}
		// Every answer, refusals included, carries the page's headers.
		for k, v := range map[string]string{
			"Content-Security-Policy": "default-src 'none'", "X-Content-Type-Options": "nosniff",
			"Referrer-Policy": "no-referrer", "Cache-Control": "no-store",
		} {
			if h.Get(k) != v {
				t.Errorf("%s: %s = %q, want %q", c.method, k, h.Get(k), v)
			}
		}
		if c.status == http.StatusOK && h.Get("Content-Type") != "text/plain" {
			t.Errorf("%s: Content-Type %q", c.method, h.Get("Content-Type"))
		}
	}
}

func TestMustRead(t *testing.T) {
	fsys := fstest.MapFS{"assets/a.css": {Data: []byte("b{}")}}
	if f := MustRead(fsys, "assets/a.css", "text/css"); string(f.Body) != "b{}" || f.ContentType != "text/css" {
		t.Errorf("%+v", f)
	}
	defer func() {
		if r := recover(); r == nil || !strings.Contains(fmt.Sprint(r), "assets/missing.css") {
			t.Errorf("a missing file: panic %v, want one naming it", r)
		}
	}()
	MustRead(fsys, "assets/missing.css", "text/css")
}
