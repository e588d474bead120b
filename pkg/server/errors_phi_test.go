package server

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/phr-project/phr/pkg/server/api"
)

// TestErrorsQuoteNoPHI: a request refused for bad input gets an error
// that names the field, never one that quotes the values it was sent
// (docs/security.md, "The server as an attacker sees it"): the answer of
// each bad request below, carrying PHI in its body, path or query, holds
// none of that PHI. An error that quoted it would put it in the client's
// logs and screens, and in any proxy's. (Record IDs the client sent are
// not PHI: "select: no record ID" names the ID it did not find.)
func TestErrorsQuoteNoPHI(t *testing.T) {
	const (
		patient   = "Zyxwqv Plorkington"
		note      = "Snorfblat rash after the Glimmerwick dinner"
		condition = "Vexillary Dyscrasia"
		device    = "Zyxwqv's Jellyphone"
	)
	phi := []string{"Zyxwqv", "Plorkington", "Snorfblat", "Glimmerwick", "Vexillary", "Dyscrasia", "Jellyphone"}
	ts := newTestServer(t, nil)
	c := ts.signup("alice")
	med, _ := c.post(map[string]any{"log": "med", "name": "Metformin"})
	medID := med["id"].(string)
	exp := time.Now().Add(time.Hour)
	tests := []struct {
		method, path string
		body         any
	}{
		{"POST", "/api/v1/records", map[string]any{"log": "vital", "kind": "bp", "value": "999/1 " + patient}},
		{"POST", "/api/v1/records", map[string]any{"log": "vital", "kind": patient, "value": "120/80"}},
		{"POST", "/api/v1/records", map[string]any{"log": "symptom", "name": condition, "severity": "Plorkington"}},
		{"POST", "/api/v1/records", map[string]any{"log": "med", "name": condition, "date": "Plorkington 2020"}},
		{"POST", "/api/v1/records", map[string]any{"log": patient, "name": condition}},
		{"POST", "/api/v1/records", `{"resourceType":"Condition","code":{"text":"` + condition + `"}`},
		{"PUT", "/api/v1/records/" + medID, map[string]any{"resourceType": "Condition", "code": map[string]any{"text": condition}}},
		{"POST", "/api/v1/ingest", api.IngestRequest{Device: device, Readings: []api.Reading{{ID: patient, Type: "Plorkington", At: note}}}},
		{"POST", "/api/v1/ingest", api.IngestRequest{Device: device, Readings: []api.Reading{{ID: "r1", Type: "heart_rate", At: "2026-01-01T00:00:00Z", Unit: "Plorkington"}}}},
		{"GET", "/api/v1/records/Plorkington", nil},
		{"GET", "/api/v1/records?since=" + url.QueryEscape(note), nil},
		{"POST", "/api/v1/shares", map[string]any{"select": map[string]any{"types": []string{condition}}, "expires_at": exp}},
		{"POST", "/api/v1/shares", map[string]any{"select": map[string]any{"summary": true}, "label": patient + strings.Repeat("!", 80), "expires_at": exp}},
		{"POST", "/api/v1/backup", BackupRequest{Passphrase: testPass, Recipients: []string{patient}}},
	}
	for _, tc := range tests {
		r := c.do(tc.method, tc.path, tc.body)
		if r.status < 400 || r.status >= 500 {
			t.Errorf("%s %s: %d %s; want a 4xx", tc.method, tc.path, r.status, r.body)
			continue
		}
		for _, s := range phi {
			if strings.Contains(string(r.body), s) {
				t.Errorf("%s %s: %d quotes %q: %s", tc.method, tc.path, r.status, s, r.body)
			}
		}
	}
}
