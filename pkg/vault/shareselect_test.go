package vault

import (
	"errors"
	"testing"

	"github.com/phr-project/phr/pkg/record"
)

// The one share selection phr and phrd use: Patient records never among
// the records (the owner is the subject), a kind filter, IDs or prefixes,
// and refusals as SelectionErrors.
func TestSelectForShare(t *testing.T) {
	tv := newTestVault(t)
	owner := must(t)(record.NewPatient(record.Common{}, "Alice Example", record.Day(1980, 4, 2)))
	if _, err := tv.Put(owner); err != nil {
		t.Fatal(err)
	}
	if err := tv.SetPatient(owner.ID); err != nil {
		t.Fatal(err)
	}
	med := must(t)(record.NewMedication(record.Common{}, record.Medication{Name: "Metformin"}))
	cond := must(t)(record.NewCondition(record.Common{}, "Asthma", record.Day(2012, 9, 15), ""))
	other := must(t)(record.New([]byte(`{"resourceType":"Patient","name":[{"text":"Alice Example"}]}`), record.Provenance{Method: record.MethodImported, Importer: "ccda", System: "Clinic"}))
	if _, err := tv.Add([]record.Record{med, cond, other}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		sel  Selection
		want int
		bad  bool
	}{
		{"everything but Patients", Selection{}, 2, false},
		{"one kind", Selection{Kinds: []string{"medication"}}, 1, false},
		{"by ID prefix", Selection{IDs: []string{cond.ID[:6]}}, 1, false},
		{"IDs and kinds", Selection{IDs: []string{cond.ID}, Kinds: []string{"condition"}}, 0, true},
		{"nothing matches", Selection{Kinds: []string{"immunization"}}, 0, true},
		{"a summary may hold nothing", Selection{Kinds: []string{"immunization"}, Summary: true}, 0, false},
		{"unknown ID", Selection{IDs: []string{"zzzzzzzz"}}, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, recs, err := tv.SelectForShare(tt.sel)
			var se *SelectionError
			if tt.bad != errors.As(err, &se) || (!tt.bad && err != nil) {
				t.Fatalf("err = %v", err)
			}
			if p.ID != owner.ID || len(recs) != tt.want {
				t.Fatalf("patient %s, %d records; want %d", p.ID, len(recs), tt.want)
			}
			for _, r := range recs {
				if r.ResourceType == "Patient" {
					t.Error("a Patient among the shared records")
				}
			}
		})
	}
}
