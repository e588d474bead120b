package app

import (
	"bytes"
	"encoding/json"
	"image/png"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/phr-project/phr/pkg/record"
	"github.com/phr-project/phr/pkg/viewer"
)

func get(t *testing.T, method, path string) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	Handler().ServeHTTP(rec, httptest.NewRequest(method, "http://phr.test"+path, nil))
	return rec
}

// TestHandlerServesAssetsWithSecurityHeaders: every route and every
// answer, errors included, carries the policy and the other headers.
func TestHandlerServesAssetsWithSecurityHeaders(t *testing.T) {
	paths := append(Routes(), ModuleDir+"main.mjs", ModuleDir+"nope.mjs", "/app/nope", "/app")
	for _, p := range paths {
		rec := get(t, http.MethodGet, p)
		h := rec.Header()
		for k, v := range map[string]string{
			"Content-Security-Policy": ContentSecurityPolicy, "X-Content-Type-Options": "nosniff",
			"Referrer-Policy": "no-referrer", "Cache-Control": "no-store",
		} {
			if h.Get(k) != v {
				t.Errorf("%s: %s = %q, want %q", p, k, h.Get(k), v)
			}
		}
		switch {
		case p == "/app":
			if rec.Code != http.StatusMovedPermanently || h.Get("Location") != Path {
				t.Errorf("/app: %d to %q, want a redirect to %s", rec.Code, h.Get("Location"), Path)
			}
		case strings.Contains(p, "nope"):
			if rec.Code != http.StatusNotFound {
				t.Errorf("%s: %d, want 404", p, rec.Code)
			}
		default:
			if rec.Code != http.StatusOK || rec.Body.Len() == 0 {
				t.Errorf("%s: %d, %d bytes", p, rec.Code, rec.Body.Len())
			}
		}
	}
	for p, want := range map[string]string{
		Path: "text/html", Path + "app.css": "text/css", Path + "sw.js": "text/javascript", ModuleDir + "main.mjs": "text/javascript",
		Path + "manifest.webmanifest": "application/manifest+json", Path + "icon-192.png": "image/png", Path + "vitals.json": "application/json",
	} {
		if ct := get(t, http.MethodGet, p).Header().Get("Content-Type"); !strings.HasPrefix(ct, want) {
			t.Errorf("%s: Content-Type %q, want %s", p, ct, want)
		}
	}
	if rec := get(t, http.MethodPost, Path); rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Allow") != "GET, HEAD" {
		t.Errorf("POST: %d", rec.Code)
	}
	if rec := get(t, http.MethodHead, Path); rec.Code != http.StatusOK || rec.Body.Len() != 0 {
		t.Errorf("HEAD: %d, %d bytes", rec.Code, rec.Body.Len())
	}
}

// TestCSPDirectives pins the policy's important parts.
func TestCSPDirectives(t *testing.T) {
	for _, d := range []string{
		"default-src 'none'", "script-src 'self'", "style-src 'self'", "connect-src 'self'", "worker-src 'self'",
		"manifest-src 'self'", "base-uri 'none'", "form-action 'none'", "frame-ancestors 'none'",
	} {
		if !strings.Contains(ContentSecurityPolicy, d) {
			t.Errorf("CSP lacks %q", d)
		}
	}
	if strings.Contains(ContentSecurityPolicy, "unsafe") || strings.Contains(ContentSecurityPolicy, "*") || strings.Contains(ContentSecurityPolicy, "http") {
		t.Errorf("CSP allows too much: %s", ContentSecurityPolicy)
	}
}

// storageModules may keep something in the browser: the session token
// for the tab (main, sign-in, account), the username and the last unit of
// each vital (sign-in, today).
var storageModules = map[string]bool{"main.mjs": true, "signin.mjs": true, "account.mjs": true, "today.mjs": true}

// TestNoInlineCodeAndTextOnly checks the static files against the CSP and
// the text-only rule (the browser test checks the same at run time), and
// that modules import only the app's own modules and the viewer's.
func TestNoInlineCodeAndTextOnly(t *testing.T) {
	html := string(routes[Path].Body)
	if m := regexp.MustCompile(`(?i)<script(?:\s[^>]*)?>`).FindAllString(html, -1); len(m) != 1 || m[0] != `<script type="module" src="/app/js/main.mjs">` {
		t.Errorf("page scripts = %q, want only the module /app/js/main.mjs", m)
	}
	for _, bad := range []*regexp.Regexp{
		regexp.MustCompile(`(?i)<style`), regexp.MustCompile(`(?i)\sstyle=`), regexp.MustCompile(`(?i)\son[a-z]+=`),
		regexp.MustCompile(`(?i)javascript:`), regexp.MustCompile(`(?i)https?://`),
	} {
		if bad.MatchString(html) {
			t.Errorf("index.html matches %s", bad)
		}
	}
	importRE := regexp.MustCompile(`(?m)^\s*(?:import|export)\s[^;]*?\sfrom\s+'([^']+)'|\bimport\(`)
	modules := 0
	for p, a := range routes {
		if !strings.HasPrefix(p, ModuleDir) {
			continue
		}
		modules++
		name := strings.TrimPrefix(p, ModuleDir)
		js := string(a.Body)
		for _, bad := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function", "setAttribute('on", ".style.", "indexedDB", "document.cookie"} {
			if strings.Contains(js, bad) {
				t.Errorf("%s uses %s", p, bad)
			}
		}
		if !storageModules[name] && (strings.Contains(js, "localStorage") || strings.Contains(js, "sessionStorage")) {
			t.Errorf("%s keeps something in the browser's storage", p)
		}
		for _, m := range importRE.FindAllStringSubmatch(js, -1) {
			switch {
			case m[1] == "":
				t.Errorf("%s imports dynamically", p)
			case strings.HasPrefix(m[1], "./"):
				if _, ok := routes[ModuleDir+strings.TrimPrefix(m[1], "./")]; !ok {
					t.Errorf("%s imports %q, which is not one of the app's modules", p, m[1])
				}
			case strings.HasPrefix(m[1], viewer.ModuleDir):
				if _, ok := viewerFile(m[1]); !ok {
					t.Errorf("%s imports %q, which the viewer does not serve", p, m[1])
				}
			default:
				t.Errorf("%s imports %q", p, m[1])
			}
		}
		// Every import is one the shell follows (imports() finds it).
		if n := len(importRE.FindAllStringSubmatch(js, -1)); n != len(imports(p, a.Body)) {
			t.Errorf("%s: %d imports, of which the shell follows %d (keep each import on its own lines, ending in ';')", p, n, len(imports(p, a.Body)))
		}
	}
	if modules < 10 {
		t.Errorf("%d modules", modules)
	}
	if regexp.MustCompile(`(?i)url\(|@import`).Match(routes[Path+"app.css"].Body) {
		t.Error("app.css loads other resources")
	}
}

// TestShell: the service worker's list is the app's files and the viewer
// modules they import, never an API path; sw.js is served with it.
func TestShell(t *testing.T) {
	shell := Shell()
	for _, p := range shell {
		if !strings.HasPrefix(p, Path) && !strings.HasPrefix(p, viewer.ModuleDir) {
			t.Errorf("shell holds %s", p)
		}
		if p == Path+"sw.js" {
			t.Error("the worker caches itself")
		}
	}
	for _, want := range []string{Path, Path + "app.css", Path + "manifest.webmanifest", ModuleDir + "main.mjs", ModuleDir + "qr.mjs",
		viewer.ModuleDir + "dates.mjs", viewer.ModuleDir + "strings.mjs", viewer.ModuleDir + "fhir.mjs", viewer.ModuleDir + "vitals.mjs"} {
		if !slices.Contains(shell, want) {
			t.Errorf("shell lacks %s", want)
		}
	}
	for _, not := range []string{viewer.ModuleDir + "main.mjs", viewer.ModuleDir + "jwe.mjs"} {
		if slices.Contains(shell, not) {
			t.Errorf("shell holds %s, which the app does not import", not)
		}
	}
	sw := string(routes[Path+"sw.js"].Body)
	list, _ := json.Marshal(shell)
	if !strings.Contains(sw, "const SHELL = "+string(list)+";") || strings.Contains(sw, "__SHELL") {
		t.Error("sw.js is not served with the shell's list and version")
	}
	if !regexp.MustCompile(`const VERSION = '[0-9a-f]{16}';`).MatchString(sw) {
		t.Error("sw.js has no version")
	}
}

// TestManifest: an installable manifest whose icons are served and are
// PNGs of the sizes they claim.
func TestManifest(t *testing.T) {
	var m struct {
		Name, ShortName, StartURL, Scope, Display, ID string
		Icons                                         []struct{ Src, Sizes, Type, Purpose string }
	}
	raw := routes[Path+"manifest.webmanifest"].Body
	var generic map[string]any
	if err := json.Unmarshal(raw, &generic); err != nil {
		t.Fatal(err)
	}
	m.Name, _ = generic["name"].(string)
	m.ShortName, _ = generic["short_name"].(string)
	m.StartURL, _ = generic["start_url"].(string)
	m.Scope, _ = generic["scope"].(string)
	m.Display, _ = generic["display"].(string)
	if err := json.Unmarshal(raw, &struct {
		Icons *[]struct{ Src, Sizes, Type, Purpose string } `json:"icons"`
	}{&m.Icons}); err != nil {
		t.Fatal(err)
	}
	if m.Name == "" || m.ShortName == "" || m.Display != "standalone" || m.Scope != Path || !strings.HasPrefix(m.StartURL, Path) {
		t.Errorf("manifest: %+v", m)
	}
	sizes := map[string]bool{}
	for _, ic := range m.Icons {
		a, ok := routes[ic.Src]
		if !ok {
			t.Errorf("icon %s is not served", ic.Src)
			continue
		}
		if ic.Type != "image/png" {
			continue
		}
		img, err := png.Decode(bytes.NewReader(a.Body))
		if err != nil {
			t.Errorf("%s: %v", ic.Src, err)
			continue
		}
		b := img.Bounds()
		if got := strings.Join([]string{itoa(b.Dx()), itoa(b.Dy())}, "x"); got != ic.Sizes {
			t.Errorf("%s is %s, claims %s", ic.Src, got, ic.Sizes)
		}
		sizes[ic.Sizes+" "+ic.Purpose] = true
	}
	for _, want := range []string{"192x192 any", "512x512 any", "512x512 maskable"} {
		if !sizes[want] {
			t.Errorf("no %s icon", want)
		}
	}
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// TestVitalsJSON: the form's kinds and units are pkg/record's table, and
// every unit it offers is one record.ParseVital takes and stores as that
// UCUM unit.
func TestVitalsJSON(t *testing.T) {
	var v struct {
		Kinds []VitalKind `json:"kinds"`
	}
	if err := json.Unmarshal(routes[Path+"vitals.json"].Body, &v); err != nil {
		t.Fatal(err)
	}
	table := record.VitalSigns()
	if len(v.Kinds) != len(table) {
		t.Fatalf("%d kinds, want %d", len(v.Kinds), len(table))
	}
	for i, k := range v.Kinds {
		vs := table[i]
		if k.Kind != vs.Kind || len(k.Units) != len(vs.Units) {
			t.Errorf("kind %d: %+v", i, k)
			continue
		}
		for j, u := range k.Units {
			value := strconv.FormatFloat((vs.Units[j].Min+vs.Units[j].Max)/2, 'f', 0, 64)
			if len(vs.Components) > 0 {
				value = "120/80"
			}
			got, err := record.ParseVital(k.Kind, value+u.Typed)
			if err != nil || got.Unit != u.UCUM {
				t.Errorf("%s %q: %v, stored %q, offered %q", k.Kind, value+u.Typed, err, got.Unit, u.UCUM)
			}
		}
	}
}

// TestJavaScriptUnits runs the node tests of the app's pure modules
// (jstest/*.test.mjs: errors in words, passkey encoding, times and
// readings, the timeline, a record in words, shares, the QR encoder's
// tables, the strings table, the service worker's rule) once per time
// zone: times must read the same in each.
func TestJavaScriptUnits(t *testing.T) {
	node := nodePath(t)
	files, err := filepath.Glob(filepath.Join("jstest", "*.test.mjs"))
	if err != nil || len(files) < 8 {
		t.Fatalf("JavaScript tests missing: %d found (%v)", len(files), err)
	}
	for _, tz := range []string{"UTC", "America/Los_Angeles", "Pacific/Kiritimati"} {
		t.Run(tz, func(t *testing.T) {
			cmd := exec.Command(node, "--import", "./jstest/register.mjs", "--test", "--test-reporter=spec", filepath.Join("jstest", "all.mjs"))
			cmd.Env = append(cmd.Environ(), "TZ="+tz, "NO_COLOR=1", "FORCE_COLOR=0")
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("node --test with TZ=%s: %v\n%s", tz, err, out)
			}
			if strings.Count(string(out), "✔") < 30 {
				t.Fatalf("node ran fewer tests than expected:\n%s", out)
			}
		})
	}
}
