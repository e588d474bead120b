package csvimport

import (
	"testing"

	"github.com/phr-project/phr/pkg/importers/importertest"
)

// TestKit runs the importer conformance checks (importertest.Run).
func TestKit(t *testing.T) {
	importertest.Run(t, New(), importertest.Corpus{
		Files: []importertest.Sample{
			{Name: "good.csv", Data: importertest.ReadFile(t, "testdata/good.csv")},
			{Name: "good.csv in Berlin", Data: importertest.ReadFile(t, "testdata/good.csv"), Options: map[string]string{OptionTimezone: "Europe/Berlin"}},
			{Name: "bom.csv", Data: importertest.ReadFile(t, "testdata/bom.csv")},
		},
		Bad: []importertest.Bad{
			{Name: "rows.csv", Data: []byte("type,name,value,unit,date\nlab,Secretname,Secretvalue,mg/dL,2024-01-01\nvital,hr,7200,,2024-01-01\nlab,x,1,,Secretdate\n"), Secrets: []string{"Secretvalue", "7200", "Secretdate"}},
			{Name: "header.csv", Data: []byte("type,name,Secretcolumn\nlab,x,1\n")},
			{Name: "truncated.csv", Data: []byte("type,name,note\nlab,x,\"Secretnote")},
		},
		Limits: []importertest.Limit{
			{Name: "a 2 GiB line", Is: ErrRowTooLong, MaxRead: MaxRowBytes + 256<<10, Input: func() *importertest.LazyReader {
				return importertest.Lazy(importertest.Once("type,name,value,unit,date\nlab,"), importertest.Fill("x", 2<<30))
			}},
		},
	})
}
