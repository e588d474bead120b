package viewer

import (
	"embed"
	"io/fs"
	"net/http"
	"path"
	"sort"
	"strings"

	"github.com/phr-project/phr/internal/webpage"
)

// Path is where phrd serves the page; viewer links have the form
// "https://HOST" + Path + "#shlink:/...".
const Path = "/view"

// ContentSecurityPolicy is the Content-Security-Policy header of every
// response Handler writes. connect-src is "*" because a link's manifest
// and files may live on any host (links from other SMART Health Link
// issuers open too); everything else is limited to the page's own files.
const ContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src *; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// assets/js/vitals.json is phr's vital-sign table, generated from
// pkg/record (record.VitalSigns); vitals.mjs imports it as a JSON module.
//go:generate go run ./internal/genvitals assets/js/vitals.json

// assets/js/cvx.mjs is phr's table of CVX vaccine names, generated from
// pkg/terminology (terminology.Names); fhir.mjs imports it.
//go:generate go run ./internal/gencvx assets/js/cvx.mjs

//go:embed assets/viewer.html assets/viewer.css assets/js/*.mjs assets/js/*.json
var assets embed.FS

// routes maps request paths to embedded files: the page at Path and
// Path+"/", its stylesheet, and its ES modules (and the JSON modules they
// import, served as application/json, which a browser requires of a JSON
// module) under ModuleDir. The page refers to them by absolute path, so it
// works at "/view" and "/view/" alike.
var routes = buildRoutes()

func buildRoutes() map[string]webpage.File {
	r := map[string]webpage.File{
		Path:                 webpage.MustRead(assets, "assets/viewer.html", "text/html; charset=utf-8"),
		Path + "/":           webpage.MustRead(assets, "assets/viewer.html", "text/html; charset=utf-8"),
		Path + "/viewer.css": webpage.MustRead(assets, "assets/viewer.css", "text/css; charset=utf-8"),
	}
	modules, err := fs.Glob(assets, "assets/js/*.mjs")
	if err != nil || len(modules) == 0 {
		panic("viewer: no embedded modules") // a build mistake, caught by every test
	}
	for _, m := range modules {
		r[ModuleDir+path.Base(m)] = webpage.MustRead(assets, m, "text/javascript; charset=utf-8")
	}
	data, _ := fs.Glob(assets, "assets/js/*.json")
	for _, m := range data {
		r[ModuleDir+path.Base(m)] = webpage.MustRead(assets, m, "application/json")
	}
	return r
}

// ModuleDir is where the page's ES modules are served: ModuleDir+NAME.
const ModuleDir = Path + "/js/"

// Routes lists the fixed paths Handler serves: Path, Path+"/" and the
// stylesheet. A server mounts Handler at each, and at ModuleDir plus any
// one path segment for the modules (their names are Handler's business:
// an unknown one is 404).
func Routes() []string {
	return []string{Path, Path + "/", Path + "/viewer.css"}
}

// modules lists the module paths Handler serves, sorted.
func modules() []string {
	var out []string
	for p := range routes {
		if strings.HasPrefix(p, ModuleDir) {
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out
}

// Handler returns the handler for Path ("/view", also "/view/"),
// Path+"/viewer.css" and the page's modules, ModuleDir+"NAME.mjs" (and
// the vital-sign table they import, ModuleDir+"vitals.json"). Mount it at
// each of Routes() and for ModuleDir; other paths get 404, methods
// other than GET and HEAD get 405. Every response, errors included, carries
// ContentSecurityPolicy, X-Content-Type-Options: nosniff,
// Referrer-Policy: no-referrer and Cache-Control: no-store.
func Handler() http.Handler {
	return http.HandlerFunc(serve)
}

func serve(w http.ResponseWriter, r *http.Request) {
	webpage.Headers(w.Header(), ContentSecurityPolicy)
	a, ok := routes[r.URL.Path]
	if !ok {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	if webpage.GetOrHead(w, r) {
		webpage.Write(w, r, a)
	}
}
