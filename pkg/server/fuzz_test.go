package server

import (
	"encoding/base64"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/phr-project/phr/pkg/record"
	"github.com/phr-project/phr/pkg/server/api"
)

// FuzzReading: any reading either builds a valid Observation or fails
// with an InputError naming a field; nothing panics.
func FuzzReading(f *testing.F) {
	f.Add("r1", "bp", 120.0, 80.0, "mm[Hg]", "2026-05-01T08:00:00Z", "")
	f.Add("r2", "steps", 4200.0, 0.0, "", "2026-05-01T00:00:00Z", "2026-05-01T12:00:00Z")
	f.Add("r3", "glucose", 5.4, 0.0, "mmol/L", "2026-05-01T08:00:00+02:00", "")
	f.Add("", "weight", -1.0, 0.0, "stone", "yesterday", "x")
	f.Fuzz(func(t *testing.T, id, typ string, v, v2 float64, unit, at, end string) {
		rd := api.Reading{ID: id, Type: typ, Value: &v, Unit: unit, At: at, End: end}
		if v2 != 0 {
			rd.Value2 = &v2
		}
		r, err := buildReading(record.Common{Subject: "Patient/x"}, rd)
		if err != nil {
			var ie *record.InputError
			if !errors.As(err, &ie) || ie.Field == "" {
				t.Fatalf("error without a field: %v", err)
			}
			return
		}
		if r.ResourceType != "Observation" || r.Date.IsZero() || !record.ValidID(r.ID) {
			t.Fatalf("bad record %+v", r)
		}
		if math.IsNaN(v) {
			t.Fatal("NaN accepted")
		}
	})
}

// FuzzETagCursor: the If-Match and cursor parsers take anything.
func FuzzETagCursor(f *testing.F) {
	f.Add(`"v1"`)
	f.Add(`W/"v12"`)
	f.Add(base64.RawURLEncoding.EncodeToString([]byte("o:100")))
	f.Add(encodeCursor("c2VhbGVk"))
	f.Fuzz(func(t *testing.T, s string) {
		if n, err := parseETag(s); err == nil && strings.TrimSpace(s) != "*" && etagOf(n) != trimWeak(s) {
			t.Fatalf("%q parsed as %d", s, n)
		}
		if off, vc, err := decodeCursor(s); err == nil && (off < 0 || (off > 0 && vc != "")) {
			t.Fatalf("%q: offset %d, cursor %q", s, off, vc)
		}
	})
}

func etagOf(n uint64) string { return etag(record.Record{Version: n}) }

func trimWeak(s string) string {
	return strings.TrimPrefix(strings.TrimSpace(s), "W/")
}
