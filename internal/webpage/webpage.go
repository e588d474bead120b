// Package webpage is what the handlers of phr's browser pages (the
// patient's app, the provider's viewer) share: the headers every response
// carries, errors included, the methods a page answers, and writing one
// embedded file.
package webpage

import "net/http"

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

// Write answers 200 with contentType and, for a GET, body.
func Write(w http.ResponseWriter, r *http.Request, contentType string, body []byte) {
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		w.Write(body) // an error means the client went away; nothing to do
	}
}
