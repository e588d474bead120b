package applehealth

import (
	"testing"

	"github.com/phr-project/phr/pkg/importers/importertest"
)

// td is the shared test data (importertest.Path), with a trailing slash.
var td = importertest.Path() + "/"

// importBytes imports data with the Apple Health importer.
func importBytes(t testing.TB, name string, data []byte, opts map[string]string) (*importertest.Sink, error) {
	t.Helper()
	return importertest.Import(New(), name, data, opts)
}
