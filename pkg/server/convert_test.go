package server

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/phr-project/phr/pkg/importers/pipeline"
	"github.com/phr-project/phr/pkg/vault"
)

// The API's own report and audit types have the JSON of the pipeline's
// and the vault's: a field added to one and not the other fails here.
func TestWireTypesMatch(t *testing.T) {
	rep := &pipeline.Report{File: "f", Format: "fhir", SHA256: "ab", Added: 1, Updated: 2, Duplicates: 3, Skipped: 4, Failed: 5,
		ByType: map[string]*pipeline.Counts{"Condition": {Added: 1, Updated: 2, Duplicates: 3, Skipped: 4, Failed: 5}},
		Skips:  []pipeline.SkipNote{{ResourceType: "Condition", Reason: "negated", Count: 1}}, Failures: []string{"x"},
		Error: "e", DryRun: true, PatientMismatch: true, OwnerFilled: []string{"name"}, Warning: "w"}
	same(t, rep, importReport(rep))
	e := vault.AuditEntry{Seq: 1, Time: time.Unix(5, 0).UTC(), Event: "login", Success: true, Method: "device", Client: "10.0.0.0/24",
		Ref: "r", Label: "l", Format: "fhir", Counts: map[string]int{"added": 1}}
	same(t, e, auditEntries([]vault.AuditEntry{e})[0])
}

func same(t *testing.T, a, b any) {
	t.Helper()
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	var ma, mb map[string]any
	json.Unmarshal(ja, &ma)
	json.Unmarshal(jb, &mb)
	if len(ma) == 0 || string(ja) != string(jb) {
		t.Errorf("JSON differs:\n%s\n%s", ja, jb)
	}
}
