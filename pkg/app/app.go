package app

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"regexp"
	"sort"
	"strings"

	"github.com/phr-project/phr/internal/webpage"
	"github.com/phr-project/phr/pkg/record"
	"github.com/phr-project/phr/pkg/viewer"
)

// Path is where phrd serves the app; phrd redirects "/" here.
const Path = "/app/"

// ModuleDir is where the app's own ES modules are served: ModuleDir+NAME.
// The viewer's pure modules (dates, units, FHIR text, the DOM builder)
// are imported from the viewer's own directory, /view/js/: one copy of
// each, served once.
const ModuleDir = Path + "js/"

// ContentSecurityPolicy is the Content-Security-Policy header of every
// response Handler writes: only the app's own scripts (the viewer's
// modules are on the same origin), stylesheet, images, manifest and
// service worker; requests only to phrd itself; no inline script or
// style, no plugins, no framing, no form submission.
const ContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; manifest-src 'self'; worker-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

//go:embed assets/index.html assets/app.css assets/manifest.webmanifest assets/sw.js assets/icons/* assets/js/*.mjs
var assets embed.FS

// sw.js is served with these marks replaced: the list of the shell's
// paths (Shell) and a hash of their contents, which names the service
// worker's cache, so that any change of the app replaces the cache.
const (
	shellFilesMark   = "__SHELL_FILES__"
	shellVersionMark = "__SHELL_VERSION__"
)

var routes, shell = buildRoutes()

func buildRoutes() (map[string]webpage.File, []string) {
	r := map[string]webpage.File{
		Path:                           webpage.MustRead(assets, "assets/index.html", "text/html; charset=utf-8"),
		Path + "app.css":               webpage.MustRead(assets, "assets/app.css", "text/css; charset=utf-8"),
		Path + "manifest.webmanifest":  webpage.MustRead(assets, "assets/manifest.webmanifest", "application/manifest+json"),
		Path + "icon.svg":              webpage.MustRead(assets, "assets/icons/icon.svg", "image/svg+xml"),
		Path + "icon-192.png":          webpage.MustRead(assets, "assets/icons/icon-192.png", "image/png"),
		Path + "icon-512.png":          webpage.MustRead(assets, "assets/icons/icon-512.png", "image/png"),
		Path + "icon-maskable-512.png": webpage.MustRead(assets, "assets/icons/icon-maskable-512.png", "image/png"),
		Path + "vitals.json":           {Body: vitalsJSON(), ContentType: "application/json"},
	}
	modules, err := fs.Glob(assets, "assets/js/*.mjs")
	if err != nil || len(modules) == 0 {
		panic("app: no embedded modules") // a build mistake, caught by every test
	}
	for _, m := range modules {
		r[ModuleDir+path.Base(m)] = webpage.MustRead(assets, m, "text/javascript; charset=utf-8")
	}
	// The shell: the app's files and the viewer modules they import,
	// followed through the viewer's own imports.
	bodies := map[string][]byte{}
	var todo []string
	for p, a := range r {
		bodies[p] = a.Body
		if strings.HasPrefix(p, ModuleDir) {
			todo = append(todo, p)
		}
	}
	for len(todo) > 0 {
		p := todo[len(todo)-1]
		todo = todo[:len(todo)-1]
		for _, dep := range imports(p, bodies[p]) {
			if _, done := bodies[dep]; done {
				continue
			}
			b, ok := viewerFile(dep)
			if !ok {
				panic("app: " + p + " imports " + dep + ", which neither the app nor the viewer serves")
			}
			bodies[dep] = b
			todo = append(todo, dep)
		}
	}
	list := make([]string, 0, len(bodies))
	for p := range bodies {
		list = append(list, p)
	}
	sort.Strings(list)
	h := sha256.New()
	for _, p := range list {
		h.Write([]byte(p))
		h.Write([]byte{0})
		h.Write(bodies[p])
	}
	version := hex.EncodeToString(h.Sum(nil))[:16]
	files, err := json.Marshal(list)
	if err != nil {
		panic(err)
	}
	sw := webpage.MustRead(assets, "assets/sw.js", "text/javascript; charset=utf-8")
	if !bytes.Contains(sw.Body, []byte(shellVersionMark)) || !bytes.Contains(sw.Body, []byte(shellFilesMark)) {
		panic("app: sw.js lacks its marks")
	}
	sw.Body = bytes.ReplaceAll(sw.Body, []byte(shellVersionMark), []byte(version))
	sw.Body = bytes.ReplaceAll(sw.Body, []byte(shellFilesMark), files)
	r[Path+"sw.js"] = sw
	return r, list
}

// viewerFile reads one of the viewer's modules from its handler.
func viewerFile(p string) ([]byte, bool) {
	if !strings.HasPrefix(p, viewer.ModuleDir) {
		return nil, false
	}
	rec := &memResponse{header: http.Header{}}
	viewer.Handler().ServeHTTP(rec, &http.Request{Method: http.MethodGet, URL: &url.URL{Path: p}, Header: http.Header{}})
	return rec.body.Bytes(), rec.status == http.StatusOK
}

// memResponse records a response in memory.
type memResponse struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (m *memResponse) Header() http.Header { return m.header }
func (m *memResponse) WriteHeader(s int) {
	if m.status == 0 {
		m.status = s
	}
}
func (m *memResponse) Write(b []byte) (int, error) {
	m.WriteHeader(http.StatusOK)
	return m.body.Write(b)
}

// VitalKind is one kind of vital sign the app's form offers, with its
// units: pkg/record's vital-sign table (record.VitalSigns), the one source
// of these facts, served as /app/vitals.json.
type VitalKind struct {
	Kind  string      `json:"kind"`
	Name  string      `json:"name"`
	Units []VitalUnit `json:"units"`
}

// VitalUnit is a unit the form offers for a kind.
type VitalUnit struct {
	Typed   string `json:"typed"`   // what record.ParseVital takes after the number ("kg"); "" for the default
	UCUM    string `json:"ucum"`    // the UCUM code stored ("kg", "Cel")
	Display string `json:"display"` // as people write it ("kg", "°C")
}

func vitalKinds() []VitalKind {
	var kinds []VitalKind
	for _, v := range record.VitalSigns() {
		k := VitalKind{Kind: v.Kind, Name: v.Name}
		for _, u := range v.Units {
			typed := u.Symbol
			if len(u.Aliases) > 0 {
				typed = u.Aliases[0]
			}
			k.Units = append(k.Units, VitalUnit{Typed: typed, UCUM: u.UCUM, Display: u.Symbol})
		}
		kinds = append(kinds, k)
	}
	return kinds
}

func vitalsJSON() []byte {
	kinds := vitalKinds()
	b, err := json.Marshal(map[string]any{"kinds": kinds})
	if err != nil {
		panic(err)
	}
	return b
}

// Routes lists the fixed paths Handler serves: "/app" (a redirect to
// Path), Path and the shell's files. A server mounts Handler at each, and
// at ModuleDir plus one path segment for the modules (an unknown name is
// 404).
func Routes() []string {
	out := []string{strings.TrimSuffix(Path, "/")}
	for p := range routes {
		if !strings.HasPrefix(p, ModuleDir) {
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out
}

// Shell lists what the service worker caches, sorted: every path of the
// app's own files but sw.js (page, stylesheet, manifest, icons,
// vitals.json, modules) and the viewer modules the app imports. Never a
// record or an API answer.
func Shell() []string { return append([]string(nil), shell...) }

// moduleImport finds the static imports of a module.
var moduleImport = regexp.MustCompile(`(?m)^import [^'"]*['"]([^'"]+)['"](?:\s+with\s*\{[^}]*\})?\s*;`)

// imports returns the module paths body imports, resolved against the
// module's own path.
func imports(from string, body []byte) []string {
	var out []string
	for _, m := range moduleImport.FindAllSubmatch(body, -1) {
		spec := string(m[1])
		if strings.HasPrefix(spec, "./") {
			spec = path.Join(path.Dir(from), spec)
		}
		out = append(out, spec)
	}
	return out
}

// Handler serves the app: Path (the page), "/app" (redirected to Path),
// the shell's files and ModuleDir+"NAME.mjs". Other paths are 404,
// methods other than GET and HEAD 405. Every response carries
// ContentSecurityPolicy, X-Content-Type-Options: nosniff,
// Referrer-Policy: no-referrer and Cache-Control: no-store (the service
// worker keeps the shell; no HTTP cache keeps anything).
func Handler() http.Handler {
	return http.HandlerFunc(serve)
}

func serve(w http.ResponseWriter, r *http.Request) {
	webpage.Headers(w.Header(), ContentSecurityPolicy)
	if !webpage.GetOrHead(w, r) {
		return
	}
	if r.URL.Path == strings.TrimSuffix(Path, "/") {
		http.Redirect(w, r, Path, http.StatusMovedPermanently)
		return
	}
	a, ok := routes[r.URL.Path]
	if !ok {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	webpage.Write(w, r, a)
}
