package fhir

import (
	"errors"
	"testing"

	"github.com/phr-project/phr/pkg/importers/importertest"
	"github.com/phr-project/phr/pkg/record"
)

// TestBareEntry imports files holding one Bundle entry on their own
// ({"fullUrl": ..., "resource": {...}}). No shared file has this shape; the
// inputs are the smallest that show each case.
func TestBareEntry(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		detect   bool
		records  []string // resourceType/id
		skips    int
		failPath string
		fatal    error
	}{
		{"entry with fullUrl", bareEntryFile, true, []string{"AllergyIntolerance/5b2e3c4d-0000-4000-8000-000000000001"}, 0, "", nil},
		{"entry with an id of its own", `{"resource":{"resourceType":"Patient","id":"p1","birthDate":"1970-01-01"},"fullUrl":"https://ehr.example/fhir/Patient/p1"}`, true, []string{"Patient/p1"}, 0, "", nil},
		{"search outcome", `{"resource":{"resourceType":"OperationOutcome","issue":[]},"search":{"mode":"outcome"}}`, true, nil, 1, "", nil},
		{"fullUrl not a string", `{"fullUrl":5,"resource":{"resourceType":"Patient","id":"p1"}}`, true, nil, 0, "entry.fullUrl", nil},
		{"resource without resourceType", `{"fullUrl":"urn:uuid:x","resource":{"id":"p1"}}`, true, nil, 0, "entry.resource", nil},
		{"not an entry: other members", `{"resource":{"resourceType":"Patient"},"foo":1}`, false, nil, 0, "", ErrNotResource},
		{"not an entry: no resource", `{"fullUrl":"urn:uuid:x"}`, false, nil, 0, "", ErrNotResource},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := New().Detect([]byte(tt.in)); got != tt.detect {
				t.Errorf("fhir.Detect = %v", got)
			}
			if NewNDJSON().Detect([]byte(tt.in + "\n")) {
				t.Error("ndjson.Detect claims a bare entry")
			}
			s, err := run(New(), "entry.json", []byte(tt.in))
			if tt.fatal != nil {
				if !errors.Is(err, tt.fatal) {
					t.Fatalf("err = %v, want %v", err, tt.fatal)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, r := range s.Records {
				res, _ := record.Parse(r.Resource)
				got = append(got, res.Type()+"/"+res.ID())
				if r.Provenance.OriginalID != res.ID() {
					t.Errorf("OriginalID %q", r.Provenance.OriginalID)
				}
			}
			if len(got) != len(tt.records) || len(got) > 0 && got[0] != tt.records[0] {
				t.Errorf("records %v, want %v", got, tt.records)
			}
			if len(s.Skips) != tt.skips {
				t.Errorf("skips %v", s.Skips)
			}
			if tt.failPath != "" && (len(s.Fails) != 1 || s.Fails[0].Path != tt.failPath) {
				t.Errorf("fails %v, want one at %s", s.Fails, tt.failPath)
			}
		})
	}
}

// TestPatientFirst checks that a bundle's Patient is emitted before its
// clinical records, wherever the bundle has it. The bundle is the smallest
// that shows it; the shared bundles have the Patient first already.
func TestPatientFirst(t *testing.T) {
	in := `{"resourceType":"Bundle","type":"collection","entry":[
	  {"fullUrl":"urn:uuid:00000000-0000-4000-8000-00000000000b","resource":{"resourceType":"Observation","status":"final","code":{"text":"x"},"subject":{"reference":"urn:uuid:00000000-0000-4000-8000-00000000000a"}}},
	  {"fullUrl":"urn:uuid:00000000-0000-4000-8000-00000000000a","resource":{"resourceType":"Patient","birthDate":"1970-01-01"}},
	  {"fullUrl":"urn:uuid:00000000-0000-4000-8000-00000000000c","resource":{"resourceType":"Condition","subject":{"reference":"urn:uuid:00000000-0000-4000-8000-00000000000a"}}}
	]}`
	s, err := run(New(), "b.json", []byte(in))
	if err != nil || len(s.Fails) > 0 {
		t.Fatal(err, s.Fails)
	}
	var got []string
	for _, r := range s.Records {
		got = append(got, r.ResourceType)
	}
	if len(got) != 3 || got[0] != "Patient" || got[1] != "Observation" || got[2] != "Condition" {
		t.Fatalf("order %v", got)
	}
	obs := s.Resources(t, "Observation")[0]
	if obs.Str("subject.reference") != "Patient/00000000-0000-4000-8000-00000000000a" {
		t.Errorf("subject %q", obs.Str("subject.reference"))
	}
	// Every shared Synthea bundle, and the NDJSON Patient file, give the
	// Patient first.
	for _, p := range []string{syntheaDir + "/Jorge_Brekke_ac7921e0-c949-4b42-97f2-fad5d171cd01.json", syntheaDir + "/Liz_Conn_27c911c6-f045-4ffa-af5d-6eba57ac94b2.json"} {
		if s := mustRun(t, New(), p); s.Records[0].ResourceType != "Patient" {
			t.Errorf("%s: first record %s", p, s.Records[0].ResourceType)
		}
	}
	if s := importertest.MustImport(t, NewNDJSON(), "Patient.000.ndjson", importertest.ReadFile(t, bulkDir+"/Patient.000.ndjson"), nil); s.Counts()["Patient"] != len(s.Records) {
		t.Errorf("ndjson Patient file: %v", s.Counts())
	}
}
