package server

import (
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/phr-project/phr/pkg/server/api"
	"github.com/phr-project/phr/pkg/share"
)

// TestShareKeyReturnedOnce: a share phrd builds from the hosted vault is
// encrypted under a fresh key that phrd returns once, in the answer that
// creates it (docs/security.md, "What phrd can see"): no later answer of
// the API (the share list, the share's log, the audit logs, the records)
// holds the key or the link, in base64url, base64 or hex, after the share
// was opened by a recipient. (That no file and no log line holds it is
// TestNothingReadableAtRest's.)
func TestShareKeyReturnedOnce(t *testing.T) {
	ts := newTestServer(t, nil)
	alice := ts.signup("alice")
	want(t, alice.do("POST", "/api/v1/records", map[string]any{"log": "med", "name": "Metformin", "dose": "500 mg"}), http.StatusCreated)
	exp := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	r := alice.do("POST", "/api/v1/shares", `{"select":{"types":["medication"]},"expires_at":"`+exp+`","label":"meds"}`)
	want(t, r, http.StatusCreated)
	var created api.ShareCreated
	r.decode(t, &created)
	p, err := share.Decode(created.Link)
	if err != nil {
		t.Fatal(err)
	}
	key, err := p.KeyBytes()
	if err != nil || len(key) != 32 {
		t.Fatalf("key %d bytes, %v", len(key), err)
	}
	// The positive control: the creating answer holds it (in the link's
	// payload).
	if !strings.Contains(string(r.body), created.Link) {
		t.Fatalf("the creating answer does not hold the link: the search below would prove nothing")
	}
	want(t, ts.client().do("POST", strings.TrimPrefix(p.URL, ts.url), map[string]any{"recipient": "Dr. X"}), http.StatusOK)

	forms := map[string]string{
		"the key (base64url)": p.Key,
		"the key (base64)":    base64.StdEncoding.EncodeToString(key),
		"the key (hex)":       hex.EncodeToString(key),
		"the link":            created.Link,
		"the shlink":          created.SHLink,
	}
	for _, path := range []string{
		"/api/v1/shares",
		"/api/v1/shares/" + created.ID + "/log",
		"/api/v1/audit",
		"/api/v1/audit/shares",
		"/api/v1/records",
		"/api/v1/changes?since=0",
	} {
		t.Run(strings.ReplaceAll(path, created.ID, ":id"), func(t *testing.T) {
			r := alice.do("GET", path, nil)
			want(t, r, http.StatusOK)
			body := string(r.body)
			for what, s := range forms {
				if s != "" && strings.Contains(strings.ToLower(body), strings.ToLower(s)) {
					t.Errorf("GET %s returns %s", path, what)
				}
			}
		})
	}
}
