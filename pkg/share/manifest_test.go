package share

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestManifestRequestJSON(t *testing.T) {
	for _, tc := range []struct {
		req  ManifestRequest
		want string
	}{
		{ManifestRequest{Recipient: "Dr. Who"}, `{"recipient":"Dr. Who"}`},
		{ManifestRequest{Recipient: "Dr. Who", Passcode: "1234", EmbeddedLengthMax: 10000},
			`{"recipient":"Dr. Who","passcode":"1234","embeddedLengthMax":10000}`},
	} {
		b, err := json.Marshal(tc.req)
		if err != nil || string(b) != tc.want {
			t.Errorf("Marshal = %s, %v; want %s", b, err, tc.want)
		}
		var back ManifestRequest
		if err := json.Unmarshal(b, &back); err != nil || back != tc.req {
			t.Errorf("Unmarshal = %+v, %v", back, err)
		}
		if err := tc.req.Validate(); err != nil {
			t.Errorf("Validate: %v", err)
		}
	}
	checkFieldErr(t, ManifestRequest{}.Validate(), ErrInvalidManifest, "recipient")
	checkFieldErr(t, ManifestRequest{Recipient: "x", EmbeddedLengthMax: -1}.Validate(), ErrInvalidManifest, "embeddedLengthMax")
}

func TestManifestRequestRedactsPasscode(t *testing.T) {
	r := ManifestRequest{Recipient: "Clinic", Passcode: "s3cret-pass"}
	for _, s := range []string{r.String(), fmt.Sprint(r), fmt.Sprintf("%v %+v %#v", r, r, r), fmt.Sprint(&r)} {
		if strings.Contains(s, "s3cret-pass") {
			t.Errorf("formatted request leaks passcode: %s", s)
		}
		if !strings.Contains(s, "Clinic") {
			t.Errorf("formatted request lacks recipient: %s", s)
		}
	}
}

// specManifest is the example manifest of the published STU1 guide
// ("Example SMART Health Link Manifest File", input/resources/
// shl-manifest-1.json of HL7/smart-health-cards-and-links @ a966d22), with
// the embedded JWE replaced by a real one. Status and fhirVersion are
// properties of a file, not of the manifest.
const specManifest = `{
  "files": [{
    "contentType": "application/smart-health-card",
    "location": "https://bucket.cloud.example.org/file1?sas=MFXK6jL3oL3SI_lRfi_-cEfzIs5oHs6rRWmrsCAFzvk"
  },
  {
    "contentType": "application/smart-health-card",
    "embedded": "EMBEDDED"
  },
  {
    "contentType": "application/fhir+json",
    "location": "https://bucket.cloud.example.org/file2?sas=T34xzj1XtqTYb2lzcgj59XCY4I6vLN3AwrTUIT9GuSc",
    "lastUpdated": "2025-03-09T15:29:46Z",
    "status": "finalized",
    "fhirVersion": "4.0.1"
  }]
}`

func TestManifestSpecExample(t *testing.T) {
	jwe := strings.TrimSpace(string(readShared(t, "shl/spec-example-jwe.txt")))
	in := []byte(strings.Replace(specManifest, "EMBEDDED", jwe, 1))
	var m Manifest
	if err := json.Unmarshal(in, &m); err != nil {
		t.Fatal(err)
	}
	parsed, err := ParseManifest(in)
	if err != nil {
		t.Fatalf("ParseManifest: %v", err)
	}
	for _, m := range []Manifest{m, parsed} {
		if err := m.Validate(); err != nil {
			t.Fatalf("Validate: %v", err)
		}
		want := ManifestFile{ContentType: ContentTypeFHIR, Location: "https://bucket.cloud.example.org/file2?sas=T34xzj1XtqTYb2lzcgj59XCY4I6vLN3AwrTUIT9GuSc",
			LastUpdated: "2025-03-09T15:29:46Z", Status: StatusFinalized, FHIRVersion: "4.0.1"}
		if len(m.Files) != 3 || m.Files[1].Embedded != jwe || m.Files[2] != want || m.Files[0].Status != "" {
			t.Errorf("parsed manifest = %+v", m)
		}
	}
	cty, _, err := DecryptFile(mustKey(t, specKey), m.Files[1].Embedded)
	if err != nil || cty != m.Files[1].ContentType {
		t.Errorf("embedded file: cty %q, %v", cty, err)
	}
}

func TestManifestJSONShape(t *testing.T) {
	m := Manifest{Files: []ManifestFile{
		{ContentType: ContentTypeFHIR, Embedded: "e"},
		{ContentType: ContentTypeSHC, Location: "https://phr.example.org/f/1"},
	}}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"files":[{"contentType":"application/fhir+json","embedded":"e"},{"contentType":"application/smart-health-card","location":"https://phr.example.org/f/1"}]}`
	if string(b) != want {
		t.Errorf("Marshal = %s\nwant      %s", b, want)
	}
	b, _ = json.Marshal(InvalidPasscodeResponse{RemainingAttempts: 0})
	if string(b) != `{"remainingAttempts":0}` {
		t.Errorf("InvalidPasscodeResponse = %s", b)
	}
}

func TestManifestValidateRejects(t *testing.T) {
	ok := ManifestFile{ContentType: ContentTypeFHIR, Embedded: "x"}
	for _, tc := range []struct {
		name  string
		m     Manifest
		field string
	}{
		{"no files", Manifest{}, "files"},
		{"bad status", Manifest{Files: []ManifestFile{ok, {ContentType: ContentTypeFHIR, Embedded: "x", Status: "final"}}}, "files[1].status"},
		{"bad list", Manifest{List: json.RawMessage(`{`), Files: []ManifestFile{ok}}, "list"},
		{"no content type", Manifest{Files: []ManifestFile{ok, {Embedded: "x"}}}, "files[1].contentType"},
		{"unknown content type", Manifest{Files: []ManifestFile{{ContentType: "text/html", Embedded: "x"}}}, "files[0].contentType"},
		{"bad media type", Manifest{Files: []ManifestFile{{ContentType: "application/fhir+json; a", Embedded: "x"}}}, "files[0].contentType"},
		{"neither", Manifest{Files: []ManifestFile{{ContentType: ContentTypeSHC}}}, "files[0].embedded"},
		{"both", Manifest{Files: []ManifestFile{{ContentType: ContentTypeSHC, Embedded: "x", Location: "https://a.example/f"}}}, "files[0].embedded"},
		{"http location", Manifest{Files: []ManifestFile{{ContentType: ContentTypeSHC, Location: "http://a.example/f"}}}, "files[0].location"},
		{"relative location", Manifest{Files: []ManifestFile{{ContentType: ContentTypeSHC, Location: "/f/1"}}}, "files[0].location"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkFieldErr(t, tc.m.Validate(), ErrInvalidManifest, tc.field)
		})
	}
	for _, f := range []ManifestFile{
		{ContentType: ContentTypeSMARTAPIAccess, Embedded: "x"},
		{ContentType: "application/fhir+json; fhirVersion=4.0.1", Location: "http://127.0.0.1:8080/f/1"},
	} {
		if err := f.Validate(); err != nil {
			t.Errorf("Validate(%+v) = %v", f, err)
		}
	}
	if err := (ManifestFile{}).Validate(); errors.Is(err, ErrInvalidLink) {
		t.Errorf("manifest errors must not be link errors: %v", err)
	}
}
