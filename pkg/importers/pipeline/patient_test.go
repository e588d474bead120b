package pipeline_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/phr-project/phr/pkg/importers"
	"github.com/phr-project/phr/pkg/importers/all"
	"github.com/phr-project/phr/pkg/importers/pipeline"
	"github.com/phr-project/phr/pkg/record"
	"github.com/phr-project/phr/pkg/vault"
)

// withOwner gives v an owner's Patient record.
func withOwner(t *testing.T, v *vault.Vault, name, birth string) {
	t.Helper()
	var b time.Time
	if birth != "" {
		var err error
		if b, err = record.ParseWhen(birth, record.Day(2026, 1, 1)); err != nil {
			t.Fatal(err)
		}
	}
	bd, err := record.NewPatient(record.Common{}, name, b)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Put(bd); err != nil {
		t.Fatal(err)
	}
	if err := v.SetPatient(bd.ID); err != nil {
		t.Fatal(err)
	}
}

func importShared(t *testing.T, v *vault.Vault, rel string, opts pipeline.Options) (*pipeline.Report, error) {
	t.Helper()
	path := "../../../../shared/testdata/" + rel
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	in := &importers.Input{Name: path, R: strings.NewReader(string(data)), Size: int64(len(data)), SHA256: hex.EncodeToString(sum[:])}
	return pipeline.Import(context.Background(), all.Default(), v, in, opts)
}

// Every import compares the file's Patient with the vault's owner: a file
// about someone else is refused whole, naming the file and what differs
// and never a value; asked to, the import takes it and says so in every
// record's provenance.
func TestPatientIdentity(t *testing.T) {
	const (
		jorge = "fhir/synthea-r4/Jorge_Brekke_ac7921e0-c949-4b42-97f2-fad5d171cd01.json"
		ccd   = "ccda/hl7-c-cda-examples/Documents/CCD/CCD 2/CCD.xml"
	)
	tests := []struct {
		name, file  string
		owner, born string
		accept      bool
		refused     bool
		differs     string
	}{
		{"another person's FHIR bundle", jorge, "Alice Example", "1980-04-02", false, true, "birth date and name"},
		{"another person's C-CDA", ccd, "Alice Example", "1980-04-02", false, true, "birth date and name"},
		{"only the name known: another name", ccd, "Alice Example", "", false, true, "name"},
		{"accepted when asked", jorge, "Alice Example", "1980-04-02", true, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := testVault(t)
			withOwner(t, v, tt.owner, tt.born)
			before := count(t, v)
			rep, err := importShared(t, v, tt.file, pipeline.Options{AcceptPatientMismatch: tt.accept})
			if !tt.refused {
				if err != nil || !rep.PatientMismatch || rep.Added == 0 {
					t.Fatalf("accepted import: %v %+v", err, rep)
				}
				recs, _ := v.List(vault.Query{})
				marked := 0
				for _, r := range recs {
					if r.Provenance.PatientMismatch {
						marked++
					}
				}
				if marked != rep.Added {
					t.Fatalf("%d of %d records marked as another person's", marked, rep.Added)
				}
				return
			}
			var pm *pipeline.PatientMismatchError
			if !errors.As(err, &pm) || !errors.Is(err, pipeline.ErrPatientMismatch) {
				t.Fatalf("err = %v, want a patient mismatch", err)
			}
			if !strings.Contains(err.Error(), "its patient's "+tt.differs+" differ") || !strings.Contains(err.Error(), pm.File) {
				t.Errorf("error %q does not name the file and %q", err, tt.differs)
			}
			// The file's name is the patient's to give; the rest quotes
			// nothing of the file.
			rest := strings.ReplaceAll(err.Error(), pm.File, "")
			for _, phi := range []string{"Jorge", "Brekke", "Isabella", "Jones", "19", "male"} {
				if strings.Contains(rest, phi) {
					t.Errorf("error quotes the file's %q", phi)
				}
			}
			if got := count(t, v); got != before {
				t.Fatalf("a refused file wrote %d records", got-before)
			}
		})
	}
}

// An owner without a name or birth date takes them from the first file
// that has them, and the next file about someone else is refused.
func TestOwnerFilledFromFirstImport(t *testing.T) {
	v := testVault(t)
	withOwner(t, v, "", "")
	rep, err := importShared(t, v, "ccda/hl7-c-cda-examples/Documents/CCD/CCD 2/CCD.xml", pipeline.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if record.JoinFacts(rep.OwnerFilled) != "name, birth date and sex" {
		t.Fatalf("owner filled with %v", rep.OwnerFilled)
	}
	owner, err := v.Patient()
	if err != nil {
		t.Fatal(err)
	}
	res, _ := record.Parse(owner.Resource)
	if res.Str("birthDate") == "" || len(res.List("name")) == 0 {
		t.Fatalf("owner after the import: %s", owner.Resource)
	}
	if _, err := importShared(t, v, "fhir/synthea-r4/Jorge_Brekke_ac7921e0-c949-4b42-97f2-fad5d171cd01.json", pipeline.Options{}); !errors.Is(err, pipeline.ErrPatientMismatch) {
		t.Fatalf("the next person's file: %v", err)
	}
	// The same person's file again fills nothing.
	rep, err = importShared(t, v, "ccda/hl7-c-cda-examples/Documents/CCD/CCD 2/CCD.xml", pipeline.Options{})
	if err != nil || len(rep.OwnerFilled) != 0 || rep.Added != 0 {
		t.Fatalf("again: %v %+v", err, rep)
	}
}

func TestComparePatients(t *testing.T) {
	p := func(js string) record.Resource {
		if js != "" {
			js = "," + js
		}
		r, err := record.Parse([]byte(`{"resourceType":"Patient"` + js + `}`))
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	owner := p(`"name":[{"family":"Ramírez","given":["José","Luis"]}],"birthDate":"1980-04-02","gender":"male","identifier":[{"system":"urn:mrn","value":"42"}]`)
	tests := []struct {
		name, other, want string
	}{
		{"same person, accents and case aside", `"name":[{"family":"RAMIREZ","given":["Jose"]}],"birthDate":"1980-04-02"`, ""},
		{"name as text", `"name":[{"text":"José Ramírez"}]`, ""},
		{"birth year only, same year", `"birthDate":"1980"`, ""},
		{"other birth date", `"name":[{"family":"Ramírez","given":["José"]}],"birthDate":"1981-04-02"`, "birth date"},
		{"other name", `"name":[{"family":"Smith","given":["Anna"]}]`, "name"},
		{"other name, shared identifier (a married name)", `"name":[{"family":"Smith","given":["José"]}],"identifier":[{"system":"urn:mrn","value":"42"}]`, ""},
		{"other name and sex", `"name":[{"family":"Smith","given":["Anna"]}],"gender":"female"`, "name and sex"},
		{"other sex alone is not another person", `"gender":"female"`, ""},
		{"nothing to compare", ``, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := record.JoinFacts(record.ComparePatients(owner, p(tt.other))); got != tt.want {
				t.Errorf("differs: %q, want %q", got, tt.want)
			}
		})
	}
}
