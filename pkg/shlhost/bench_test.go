package shlhost

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/phr-project/phr/pkg/fhirdoc"
	"github.com/phr-project/phr/pkg/record"
	"github.com/phr-project/phr/pkg/server/api"
	"github.com/phr-project/phr/pkg/share"
	"github.com/phr-project/phr/pkg/sharestore"
)

func benchHost(b *testing.B) (*Host, *echo.Echo) {
	st, err := sharestore.Open(filepath.Join(b.TempDir(), "shares.db"), &sharestore.Options{Secret: bytes.Repeat([]byte{5}, 32), NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	h := New(st, "https://phr.example.org", Options{})
	e := echo.New()
	installErrors(e)
	h.Register(e)
	return h, e
}

func benchCreate(b *testing.B, h *Host, n int) []string {
	key := share.NewKey()
	j, _ := share.EncryptFile(key, share.ContentTypeFHIR, []byte(`{"resourceType":"Bundle","type":"collection"}`), true)
	ids := make([]string, n)
	for i := range ids {
		resp, err := createShare(h, fmt.Sprint("acct", i%100), createReq{Files: []api.ShareFile{{ContentType: share.ContentTypeFHIR, JWE: j}}, ExpiresAt: time.Now().Add(time.Hour)})
		if err != nil {
			b.Fatal(err)
		}
		ids[i] = resp.ID
	}
	return ids
}

// BenchmarkManifest is a manifest request (no passcode) answered through
// echo in-process, for a store holding one share and one holding 10,000,
// and the bare echo handler that only decodes the same body and answers a
// fixed JSON: the yardstick for the protocol's own cost.
func BenchmarkManifest(b *testing.B) {
	body := []byte(`{"recipient":"bench"}`)
	serve := func(b *testing.B, e *echo.Echo, path string) {
		for b.Loop() {
			req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			rec := httptest.NewRecorder()
			e.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK {
				b.Fatalf("HTTP %d", rec.Code)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
	}
	b.Run("bare-echo", func(b *testing.B) {
		e := echo.New()
		e.POST("/shl/:id", func(c echo.Context) error {
			var req struct {
				Recipient string `json:"recipient"`
			}
			if err := c.Bind(&req); err != nil {
				return err
			}
			return c.JSON(http.StatusOK, map[string]any{"files": []map[string]string{{"contentType": share.ContentTypeFHIR, "embedded": "x"}}})
		})
		serve(b, e, "/shl/"+share.NewManifestID())
	})
	for _, n := range []int{1, 10_000} {
		b.Run(fmt.Sprintf("shares=%d", n), func(b *testing.B) {
			h, e := benchHost(b)
			ids := benchCreate(b, h, n)
			serve(b, e, "/shl/"+ids[len(ids)/2])
		})
	}
}

// BenchmarkCreateShare builds, encrypts and stores a share of 10, 1,000
// and 10,000 records: what `phr share create` and POST /api/v1/shares do.
func BenchmarkCreateShare(b *testing.B) {
	for _, n := range []int{10, 1_000, 10_000} {
		b.Run(fmt.Sprintf("records=%d", n), func(b *testing.B) {
			h, _ := benchHost(b)
			pat, _ := record.NewPatient(record.Common{}, "Bench Patient", time.Time{})
			c := record.Common{Subject: "Patient/" + pat.ID}
			recs := make([]record.Record, n)
			for i := range recs {
				v, _ := record.ParseVital("hr", fmt.Sprint(50+i%80))
				recs[i], _ = record.NewVital(c, v, time.Unix(int64(i)*3600, 0))
			}
			for b.Loop() {
				bundle, err := fhirdoc.BuildBundle(pat, recs)
				if err != nil {
					b.Fatal(err)
				}
				key := share.NewKey()
				j, err := share.EncryptFile(key, share.ContentTypeFHIR, bundle, true)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := createShare(h, "acct", createReq{Files: []api.ShareFile{{ContentType: share.ContentTypeFHIR, JWE: j}}, ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkQR renders a viewer link as a QR code: PNG and terminal.
func BenchmarkQR(b *testing.B) {
	p := share.Payload{URL: "https://phr.example.org/shl/" + share.NewManifestID(), Key: share.EncodeKey(share.NewKey()), Exp: time.Now().Unix(), Flag: "P", Label: "For Dr. Rivera", V: 1}
	link, err := share.ViewerLink("https://phr.example.org/view", p)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("png", func(b *testing.B) {
		for b.Loop() {
			if _, err := share.QRPNG(link, 512); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("terminal", func(b *testing.B) {
		for b.Loop() {
			if _, err := share.QRTerminal(link); err != nil {
				b.Fatal(err)
			}
		}
	})
}
