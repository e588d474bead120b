package shlhost

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/phr-project/phr/pkg/server/api"
	"github.com/phr-project/phr/pkg/share"
	"github.com/phr-project/phr/pkg/sharestore"
)

// FuzzManifestRequest: the parser never panics; what it accepts is valid
// JSON with a usable recipient; and a parsed request, written back as
// JSON, parses to the same request.
func FuzzManifestRequest(f *testing.F) {
	for _, s := range []string{
		`{"recipient":"Dr. A"}`,
		`{"recipient":"x","passcode":"1234","embeddedLengthMax":1000}`,
		`{"recipient":"x","passcode":null,"embeddedLengthMax":null}`,
		`{"recipient":"x","extra":[1,{"a":"b"}]}`,
		`{"recipient":"x","recipient":"y"}`,
		`{"recipient":"x"} {}`,
		`{"recipient":"\u0000\ud800"}`,
		`{"embeddedLengthMax":1e3,"recipient":"x"}`,
		`[]`, `null`, `{`, ``, `{"recipient":5}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := parseManifestRequest(body)
		if err != nil {
			return
		}
		if !json.Valid(body) {
			t.Fatalf("accepted invalid JSON %q", body)
		}
		if req.Recipient == "" || req.Recipient != strings.TrimSpace(req.Recipient) || len(req.Recipient) > maxRecipientBytes {
			t.Fatalf("bad recipient %q", req.Recipient)
		}
		if len(req.Passcode) > maxPasscodeBytes || req.EmbeddedLengthMax < -1 {
			t.Fatalf("bad request %+v", req)
		}
		out := map[string]any{"recipient": req.Recipient}
		if req.Passcode != "" {
			out["passcode"] = req.Passcode
		}
		if req.EmbeddedLengthMax >= 0 {
			out["embeddedLengthMax"] = req.EmbeddedLengthMax
		}
		b, err := json.Marshal(out)
		if err != nil {
			t.Fatal(err)
		}
		again, err := parseManifestRequest(b)
		if err != nil || again != req {
			t.Fatalf("round trip of %q: %+v, %v; want %+v", body, again, err, req)
		}
	})
}

// BenchmarkManifestUnknownVsExpired compares the refusal of an unknown id
// with that of a known but expired one, through the echo handler: both
// take the same lookup path, so the two figures should be close. (A
// benchmark rather than a timing assertion: timings on shared machines
// are too noisy to assert on.)
func BenchmarkManifestUnknownVsExpired(b *testing.B) {
	st, err := sharestore.Open(filepath.Join(b.TempDir(), "shares.db"), &sharestore.Options{Secret: bytes.Repeat([]byte{3}, 32), NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	clk := &clock{t: time.Date(2030, 5, 1, 12, 0, 0, 0, time.UTC)}
	h := New(st, "https://phr.example.org", Options{Now: clk.Now})
	e := echo.New()
	installErrors(e)
	h.Register(e)
	key := share.NewKey()
	j, _ := share.EncryptFile(key, share.ContentTypeFHIR, []byte(`{"resourceType":"Bundle"}`), true)
	resp, err := createShare(h, "acct", createReq{Files: []api.ShareFile{{ContentType: share.ContentTypeFHIR, JWE: j}}, ExpiresAt: clk.Now().Add(time.Hour)})
	if err != nil {
		b.Fatal(err)
	}
	clk.Advance(2 * time.Hour)
	body := []byte(`{"recipient":"bench"}`)
	run := func(b *testing.B, id string) {
		for b.Loop() {
			req := httptest.NewRequest(http.MethodPost, "/shl/"+id, bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			rec := httptest.NewRecorder()
			e.ServeHTTP(rec, req)
			if rec.Code != http.StatusNotFound {
				b.Fatalf("HTTP %d", rec.Code)
			}
		}
	}
	b.Run("unknown", func(b *testing.B) { run(b, share.NewManifestID()) })
	b.Run("expired", func(b *testing.B) { run(b, resp.ID) })
}
