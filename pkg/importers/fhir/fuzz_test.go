package fhir

import (
	"bytes"
	"encoding/json"
	"errors"
	"path/filepath"
	"slices"
	"testing"

	"github.com/phr-project/phr/internal/jsondepth"
	"github.com/phr-project/phr/pkg/importers"
	"github.com/phr-project/phr/pkg/importers/importertest"
	"github.com/phr-project/phr/pkg/record"
)

// checkImport runs imp twice over data and checks the properties every
// import must have, whatever the input: no panic, a *ParseError or nil,
// records that are resources with provenance, the same result twice.
func checkImport(t *testing.T, imp importers.Importer, data []byte) {
	imp.Detect(importertest.Head(data))
	a, errA := run(imp, "fuzz.json", data)
	b, errB := run(imp, "fuzz.json", data)
	if (errA == nil) != (errB == nil) {
		t.Fatalf("errors differ: %v / %v", errA, errB)
	}
	if errA != nil {
		if _, ok := errA.(*importers.ParseError); !ok {
			t.Fatalf("error %T: %v", errA, errA)
		}
	}
	for _, r := range a.Records {
		if _, err := record.Parse(r.Resource); err != nil {
			t.Fatalf("record is not a resource: %v", err)
		}
		if r.Provenance.Importer != imp.Name() || r.Provenance.File != "fuzz.json" {
			t.Fatalf("provenance %+v", r.Provenance)
		}
	}
	if !slices.Equal(a.Fingerprints(), b.Fingerprints()) {
		t.Fatal("two imports differ")
	}
	for _, f := range a.Fails {
		if f.Err == nil || f.File != "fuzz.json" {
			t.Fatalf("fail %+v", f)
		}
	}
}

func FuzzImportFHIR(f *testing.F) {
	// Small seeds: the fuzzer minimizes every new input, which takes long
	// for inputs of many kilobytes.
	for _, p := range []string{
		usCoreDir + "/uscore-med1.json",
		usCoreDir + "/goal-1.json",
	} {
		f.Add(importertest.ReadFile(f, p))
	}
	f.Add(compact(f, importertest.ReadFile(f, shcDir+"/example-00-a-fhirBundle.json")))
	f.Add([]byte(refBundle))
	f.Add([]byte(`{"entry":[{"resource":{"resourceType":"Patient"}}],"resourceType":"Bundle"}`))
	f.Add([]byte(`{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Bundle","entry":[{"fullUrl":"urn:uuid:a","resource":{"resourceType":"X","r":{"reference":"urn:uuid:a"}}}]}}]}`))
	// One bare bundle entry, and a Patient after the record that refers to
	// it (Patients are emitted first).
	f.Add([]byte(bareEntryFile))
	f.Add([]byte(`{"fullUrl":"urn:uuid:a","resource":{"resourceType":"Observation","subject":{"reference":"urn:uuid:a"}},"search":{"mode":"match"}}`))
	f.Add([]byte(`{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Observation","subject":{"reference":"urn:uuid:p"}}},{"fullUrl":"urn:uuid:p","resource":{"resourceType":"Patient"}}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		checkImport(t, New(), data)
	})
}

func compact(f *testing.F, b []byte) []byte {
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		f.Fatal(err)
	}
	return buf.Bytes()
}

func FuzzImportNDJSON(f *testing.F) {
	data := importertest.ReadFile(f, bulkDir+"/AllergyIntolerance.000.ndjson")
	f.Add(data[:bytes.IndexByte(data, '\n')+1])
	f.Add(compact(f, importertest.ReadFile(f, usCoreDir+"/uscore-med2.json")))
	f.Add(importertest.ReadFile(f, bulkDir+"/log.ndjson"))
	f.Add([]byte("{\"resourceType\":\"Patient\",\"id\":\"a\"}\n\n{\"resourceType\":\"Bundle\",\"entry\":[{\"fullUrl\":\"urn:uuid:b\",\"resource\":{\"resourceType\":\"Basic\"}}]}\n42\n{\"a\":1}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		checkImport(t, NewNDJSON(), data)
	})
}

// FuzzScanResource checks the one-pass scanner that every resource goes
// through: it never panics or reads out of bounds on any bytes, and on
// compact JSON objects it agrees with encoding/json about resourceType, id
// and the reference spans, and with depthExceeds about nesting.
func FuzzScanResource(f *testing.F) {
	f.Add(compact(f, importertest.ReadFile(f, usCoreDir+"/uscore-med1.json")))
	f.Add([]byte(`{"resourceType":"Observation","id":"a","meta":{"source":"s#1"},"subject":{"reference":"urn:uuid:x"}}`))
	f.Add([]byte(`{"resourceType":"Basic","x":` + nest(MaxJSONDepth, "1") + `}`))
	f.Add([]byte(`{"resourceType":"B\u0061sic","reference":"\"q\""}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		info, err := scanResource(data)
		var buf bytes.Buffer
		if json.Compact(&buf, data) != nil || !bytes.Equal(buf.Bytes(), data) || len(data) == 0 || data[0] != '{' {
			return // not compact JSON: only "no panic" holds
		}
		if errors.Is(err, ErrTooDeep) != jsondepth.Exceeds(data, MaxJSONDepth) {
			t.Fatalf("scanResource %v, depthExceeds %v", err, jsondepth.Exceeds(data, MaxJSONDepth))
		}
		if err != nil {
			return
		}
		var top struct {
			ResourceType any `json:"resourceType"`
			ID           any `json:"id"`
		}
		if json.Unmarshal(data, &top) != nil {
			t.Fatal("scanResource accepted what encoding/json refuses")
		}
		// With duplicate members encoding/json keeps the last; the scanner
		// may keep another, so compare only when each appears once.
		if bytes.Count(data, []byte(`"resourceType":`)) == 1 {
			if rt, _ := top.ResourceType.(string); rt != info.typ {
				t.Fatalf("resourceType %q, scanner %q", rt, info.typ)
			}
		}
		for _, r := range info.refs {
			var v string
			if r.start < 0 || r.end > len(data) || r.start >= r.end || json.Unmarshal(data[r.start:r.end], &v) != nil || v != r.val {
				t.Fatalf("reference span %d:%d %q does not hold its value", r.start, r.end, r.val)
			}
		}
	})
}

// compactJSON does what json.Compact does to any valid JSON.
func FuzzCompactJSON(f *testing.F) {
	f.Add(importertest.ReadFile(f, usCoreDir+"/uscore-med1.json"))
	f.Add([]byte(` { "a" : [ 1 , "b \" c\\" , {"\t":"\u00e9 x"} ] ,"d":null } `))
	f.Add([]byte("\"\\\\\" "))
	f.Fuzz(func(t *testing.T, data []byte) {
		if !json.Valid(data) {
			return // never given to compactJSON
		}
		var want bytes.Buffer
		if err := json.Compact(&want, data); err != nil {
			t.Fatal(err)
		}
		if got := compactJSON(nil, data); !bytes.Equal(got, want.Bytes()) {
			t.Fatalf("compactJSON\n%q\njson.Compact\n%q", got, want.Bytes())
		}
	})
}

// Every JSON file of the shared test data compacts as json.Compact does.
func TestCompactJSONCorpus(t *testing.T) {
	paths, _ := filepath.Glob(testdata + "/fhir/*/*.json")
	if len(paths) < 50 {
		t.Fatalf("%d JSON files in the shared test data", len(paths))
	}
	for _, p := range paths {
		data := importertest.ReadFile(t, p)
		var want bytes.Buffer
		if json.Compact(&want, data) != nil {
			continue
		}
		if got := compactJSON(nil, data); !bytes.Equal(got, want.Bytes()) {
			t.Errorf("%s: compactJSON differs from json.Compact", filepath.Base(p))
		}
	}
}
