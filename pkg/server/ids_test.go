package server

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/phr-project/phr/pkg/server/api"
)

// TestRecordIDsPerAccount: phrd writes many accounts' vaults from one
// process, and record IDs reach providers in shares, so no part of an ID
// may be shared between accounts. Two accounts write in turns (readings,
// records); within an account a batch of readings still shares its ID
// run (the vault's locality, docs/format.md).
func TestRecordIDsPerAccount(t *testing.T) {
	ts := newTestServer(t, nil)
	users := []string{"alice", "bob"}
	clients := map[string]*client{}
	for _, u := range users {
		clients[u] = ts.signup(u)
	}
	runs := map[string]map[string]int{"alice": {}, "bob": {}}
	at := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
	for round := range 4 {
		for _, u := range users {
			var readings []api.Reading
			for i := range 10 {
				v := float64(60 + i)
				readings = append(readings, api.Reading{ID: fmt.Sprint(u, round, i), Type: api.ReadingHeartRate, Value: &v, Unit: "/min",
					At: at.Add(time.Duration(round*10+i) * time.Minute).Format(time.RFC3339)})
			}
			r := clients[u].do("POST", "/api/v1/ingest", api.IngestRequest{Device: "watch", Readings: readings})
			want(t, r, http.StatusOK)
			var res api.IngestResult
			r.decode(t, &res)
			for _, x := range res.Results {
				runs[u][x.RecordID[8:]]++
			}
			rec, _ := clients[u].post(map[string]any{"log": "note", "text": fmt.Sprint("round ", round)})
			runs[u][rec["id"].(string)[8:]]++
		}
	}
	for run, n := range runs["alice"] {
		if runs["bob"][run] > 0 {
			t.Fatalf("alice and bob share the ID part %s", run)
		}
		if n > 10 {
			t.Logf("alice's run %s: %d records", run, n)
		}
	}
	// 40 readings in batches of 10: a few runs, not 40.
	if len(runs["alice"]) > 4+4+1 {
		t.Fatalf("alice's %d IDs use %d runs", 44, len(runs["alice"]))
	}
}
