package fhir

import (
	"path/filepath"
	"testing"

	"github.com/phr-project/phr/pkg/importers"
	"github.com/phr-project/phr/pkg/importers/importertest"
)

// testdata is the shared test data (importertest.Path).
var testdata = importertest.Path()

// run imports data with imp and returns what the sink saw and the error.
func run(imp importers.Importer, name string, data []byte) (*importertest.Sink, error) {
	return importertest.Import(imp, name, data, nil)
}

// mustRun imports the file at path.
func mustRun(t *testing.T, imp importers.Importer, path string) *importertest.Sink {
	t.Helper()
	s, err := run(imp, path, importertest.ReadFile(t, path))
	if err != nil {
		t.Fatalf("%s: %v", filepath.Base(path), err)
	}
	return s
}
