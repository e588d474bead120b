package fhirdoc

import (
	"errors"
	"testing"

	"github.com/phr-project/phr/pkg/record"
)

// BuildShare makes the document each kind of share asks for, with the
// entries the builder of that document gives it, and passes their errors
// on.
func TestBuildShare(t *testing.T) {
	patient, core := ktcPatient(t), ktcCore(t)
	ips, err := BuildIPS(patient, core, ktcNow)
	if err != nil {
		t.Fatal(err)
	}
	bundle, err := BuildBundle(patient, core)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name     string
		patient  record.Record
		doc      ShareDoc
		want     []byte // the builder's document: as many entries
		typ      string
		checkKTC bool
		err      error
	}{
		{"summary", patient, ShareDoc{Summary: true, Now: ktcNow}, ips, "document", false, nil},
		{"plain", patient, ShareDoc{Now: ktcNow}, bundle, "collection", false, nil},
		{"ktc", patient, ShareDoc{Profile: ProfileKTC, Story: "My own words.", Now: ktcNow}, nil, "collection", true, nil},
		{"ktc without the patient", record.Record{}, ShareDoc{Profile: ProfileKTC, Now: ktcNow}, nil, "", false, ErrKTCNoPatient},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := BuildShare(tt.patient, core, tt.doc)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("err %v, want %v", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.want != nil && entriesOf(t, got) != entriesOf(t, tt.want) {
				t.Fatalf("%d entries, the builder makes %d", entriesOf(t, got), entriesOf(t, tt.want))
			}
			if b := parseBundle(t, got); b.Type != tt.typ {
				t.Fatalf("type %q, want %q", b.Type, tt.typ)
			}
			if tt.checkKTC {
				if err := CheckKTCBundle(got); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}
