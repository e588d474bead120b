package fhir

import (
	"strings"
	"testing"

	"github.com/phr-project/phr/pkg/importers/importertest"
)

// TestKit runs the importer conformance checks (importertest.Run) on the
// fhir and ndjson importers.
func TestKit(t *testing.T) {
	t.Run("fhir", func(t *testing.T) {
		importertest.Run(t, New(), importertest.Corpus{
			Files: []importertest.Sample{
				{Path: "fhir/synthea-r4/Reyna_Ziemann_08f8bfce-34cf-4b5a-a398-8e49650c6e3c.json"},
				{Path: "fhir/us-core-examples/bundle-docref-example2.json"},
				{Path: "fhir/us-core-examples/allergyintolerance-example.json"},
				{Path: "shc/input/images/example-02-a-fhirBundle.json"},
				{Name: "bare entry", Data: []byte(bareEntryFile)},
			},
			Bad: []importertest.Bad{
				{Name: "truncated.json", Data: []byte(`{"resourceType":"Patient","name":[{"family":"Secretname`), Secrets: []string{"Secretname"}, Is: ErrTruncated},
				{Name: "syntax.json", Data: []byte("{\n\"resourceType\": \"Patient\",\n\"name\": [{\"family\": \"Secretname\"}],\n\"id\": x\n}"), Secrets: []string{"Secretname"}, Is: ErrInvalidJSON},
				{Name: "trailing.json", Data: []byte("{\"resourceType\":\"Patient\",\"id\":\"Secretid\"}\n{\"resourceType\":\"Patient\"}"), Secrets: []string{"Secretid"}, Is: ErrTrailingData},
				{Name: "entry.json", Data: []byte(`{"resourceType":"Bundle","entry":[{"resource":{"id":"Secretid","name":"Secretname"}}]}`), Secrets: []string{"Secretid", "Secretname"}, Is: ErrNotResource},
				{Name: "noresourcetype.json", Data: []byte("\n  {\"id\":\"Secretid\"}"), Secrets: []string{"Secretid"}, Is: ErrNotResource},
				{Name: "wrongtype.json", Data: []byte(`{"resourceType":"Bundle","entry":[{"fullUrl":5,"resource":{"resourceType":"Patient","id":"Secretid"}}]}`), Secrets: []string{"Secretid"}, Is: ErrWrongType},
			},
			Limits: []importertest.Limit{
				{Name: "nested too deep", Is: ErrTooDeep, MaxRead: 1 << 20, Input: func() *importertest.LazyReader {
					return importertest.Lazy(importertest.Once(`{"resourceType":"Basic","x":`), importertest.Fill("[", MaxJSONDepth+10), importertest.Fill("]", MaxJSONDepth+10), importertest.Once("}"))
				}},
			},
		})
	})
	t.Run("ndjson", func(t *testing.T) {
		importertest.Run(t, NewNDJSON(), importertest.Corpus{
			Files: []importertest.Sample{
				{Path: "fhir/bulk-ndjson-10-patients/Immunization.000.ndjson"},
				{Path: "fhir/bulk-ndjson-10-patients/Patient.000.ndjson"},
			},
			Bad: []importertest.Bad{
				{Name: "lines.ndjson", Data: []byte("{\"resourceType\":\"Patient\"}\n{\"resourceType\":\"Patient\",\"name\":\"Secretname\"\n{\"id\":\"Secretid\"}\n"), Secrets: []string{"Secretname", "Secretid"}},
			},
			Limits: []importertest.Limit{
				{Name: "no line is JSON", Is: ErrTooManyFailures, MaxRead: 64 << 10, Input: func() *importertest.LazyReader {
					return importertest.Lazy(importertest.Once("{\"resourceType\":\"Patient\"\n"), importertest.Fill("{x\n", 3*2000))
				}},
			},
		})
	})
}

// bareEntry is a file holding one bundle entry, as some tools save a
// single entry of a search result. No shared file has this shape; this is
// the smallest that shows it.
var bareEntryFile = strings.TrimSpace(`
{
  "fullUrl": "urn:uuid:5b2e3c4d-0000-4000-8000-000000000001",
  "resource": {
    "resourceType": "AllergyIntolerance",
    "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical", "code": "active"}]},
    "code": {"coding": [{"system": "http://snomed.info/sct", "code": "91936005", "display": "Allergy to penicillin"}]},
    "patient": {"reference": "urn:uuid:5b2e3c4d-0000-4000-8000-000000000002"}
  },
  "search": {"mode": "match"}
}`)

// TestExpectations checks the real documents of testdata/expect against
// what a person read in them (importertest.Expectations).
func TestExpectations(t *testing.T) {
	importertest.CheckExpectations(t, "testdata/expect", New(), NewNDJSON())
}
