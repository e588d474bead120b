// Package webpage is what the handlers of phr's browser pages (the
// patient's app, the provider's viewer) share: their embedded files, the
// headers every response carries, errors included, the methods a page
// answers, and writing one file.
package webpage

import (
	"io/fs"
	"net/http"
)

// File is one file a page's handler serves, and its media type.
type File struct {
	Body        []byte
	ContentType string
}

// MustRead reads the file name of fsys (the page's embedded files). A
// missing file is a build mistake, which every test of the page catches:
// it panics.
func MustRead(fsys fs.FS, name, contentType string) File {
	b, err := fs.ReadFile(fsys, name)
	if err != nil {
		panic("webpage: missing embedded file " + name)
	}
	return File{Body: b, ContentType: contentType}
}

// Headers sets on h what every response of a page carries: the page's
// Content-Security-Policy csp, X-Content-Type-Options: nosniff,
// Referrer-Policy: no-referrer and Cache-Control: no-store.
func Headers(h http.Header, csp string) {
	h.Set("Content-Security-Policy", csp)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
}

// GetOrHead reports whether r is a GET or a HEAD; for any other method it
// answers 405 with Allow: GET, HEAD and returns false.
func GetOrHead(w http.ResponseWriter, r *http.Request) bool {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return true
	}
	w.Header().Set("Allow", "GET, HEAD")
	http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	return false
}

// Write answers 200 with f's media type and, for a GET, its body.
func Write(w http.ResponseWriter, r *http.Request, f File) {
	w.Header().Set("Content-Type", f.ContentType)
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		w.Write(f.Body) // an error means the client went away; nothing to do
	}
}
