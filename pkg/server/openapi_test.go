package server

import (
	"bufio"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// specRoutes extracts "METHOD /path" pairs from docs/api/openapi.yaml
// without a YAML library: under `paths:`, a path is a key at two spaces of
// indentation and a method one at four (the spec keeps this layout).
func specRoutes(t *testing.T) []string {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "..", "docs", "api", "openapi.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	pathRe := regexp.MustCompile(`^  (/[^:\s]*):\s*$`)
	methodRe := regexp.MustCompile(`^    (get|put|post|delete|patch|head|options):\s*$`)
	var out []string
	in, path := false, ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := sc.Text()
		if !strings.HasPrefix(l, " ") && strings.TrimSpace(l) != "" {
			in = l == "paths:"
			continue
		}
		if !in {
			continue
		}
		if m := pathRe.FindStringSubmatch(l); m != nil {
			path = m[1]
		} else if m := methodRe.FindStringSubmatch(l); m != nil && path != "" {
			out = append(out, strings.ToUpper(m[1])+" "+path)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(out) < 10 {
		t.Fatalf("found only %d routes in the spec: %v", len(out), out)
	}
	return out
}

// TestOpenAPICoverage: every documented route is served, and every served
// route is documented.
func TestOpenAPICoverage(t *testing.T) {
	ts := newTestServer(t, nil)
	documented := specRoutes(t)
	param := regexp.MustCompile(`\{(\w+)\}`)

	var served []string
	for _, r := range ts.e.Routes() {
		switch r.Method {
		case "GET", "PUT", "POST", "DELETE", "PATCH", "HEAD", "OPTIONS":
			served = append(served, r.Method+" "+r.Path)
		}
	}
	for _, d := range documented {
		echoForm := param.ReplaceAllString(d, ":$1")
		if !slices.Contains(served, echoForm) {
			t.Errorf("documented but not routed: %s", d)
		}
		// A request without a session reaches the route: never 404 or
		// 405 (protected routes answer 401, public ones 200 or 400).
		method, path, _ := strings.Cut(d, " ")
		if strings.HasPrefix(path, "/shl/") || strings.HasPrefix(path, "/view/js/") || strings.HasPrefix(path, "/app/js/") {
			continue // unknown share ids and module names are 404 by design; routed is checked above
		}
		path = param.ReplaceAllString(path, "aaaaaaaaaaaaaaaa")
		r := ts.client().do(method, path, nil)
		if r.status == http.StatusNotFound || r.status == http.StatusMethodNotAllowed {
			t.Errorf("%s: status %d", d, r.status)
		}
	}
	for _, s := range served {
		method, path, _ := strings.Cut(s, " ")
		docForm := method + " " + regexp.MustCompile(`:(\w+)`).ReplaceAllString(path, "{$1}")
		if !slices.Contains(documented, docForm) {
			t.Errorf("routed but not documented: %s", docForm)
		}
	}
}
