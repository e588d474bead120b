package viewer

import (
	"embed"
	"net/http"
)

// Path is where phrd serves the page; viewer links have the form
// "https://HOST" + Path + "#shlink:/...".
const Path = "/view"

// ContentSecurityPolicy is the Content-Security-Policy header of every
// response Handler writes. connect-src is "*" because a link's manifest
// and files may live on any host (links from other SMART Health Link
// issuers open too); everything else is limited to the page's own files.
const ContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src *; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

//go:embed assets/viewer.html assets/viewer.js assets/viewer.css
var assets embed.FS

// asset is one embedded file and its media type.
type asset struct {
	body        []byte
	contentType string
}

// routes maps request paths to embedded files. The page refers to its
// script and stylesheet by absolute path, so it works at "/view" and
// "/view/" alike.
var routes = map[string]asset{
	Path:                 mustAsset("assets/viewer.html", "text/html; charset=utf-8"),
	Path + "/":           mustAsset("assets/viewer.html", "text/html; charset=utf-8"),
	Path + "/viewer.js":  mustAsset("assets/viewer.js", "text/javascript; charset=utf-8"),
	Path + "/viewer.css": mustAsset("assets/viewer.css", "text/css; charset=utf-8"),
}

func mustAsset(name, contentType string) asset {
	b, err := assets.ReadFile(name)
	if err != nil {
		panic("viewer: missing embedded file " + name) // a build mistake, caught by every test
	}
	return asset{body: b, contentType: contentType}
}

// Handler returns the handler for Path ("/view", also "/view/"),
// Path+"/viewer.js" and Path+"/viewer.css". Mount it for Path and
// Path+"/"; other paths under it get 404, methods other than GET and HEAD
// get 405. Every response, errors included, carries ContentSecurityPolicy,
// X-Content-Type-Options: nosniff, Referrer-Policy: no-referrer and
// Cache-Control: no-store.
func Handler() http.Handler {
	return http.HandlerFunc(serve)
}

func serve(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", ContentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")

	a, ok := routes[r.URL.Path]
	if !ok {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		h.Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	h.Set("Content-Type", a.contentType)
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		w.Write(a.body) // an error means the client went away; nothing to do
	}
}
