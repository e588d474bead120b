package shc

import (
	"strings"
	"testing"

	"github.com/phr-project/phr/pkg/importers"
	"github.com/phr-project/phr/pkg/record"
)

func FuzzImportSHC(f *testing.F) {
	f.Add(readFile(f, images+"/example-00-d-jws.txt"))
	f.Add(readFile(f, images+"/example-03-e-file.smart-health-card"))
	f.Add(readFile(f, images+"/example-01-f-qr-code-numeric-value-0.txt"))
	f.Add(readFile(f, images+"/example-00-c-jws-payload-minified.json"))
	f.Add([]byte("shc:/1/2/5676290952\nshc:/2/2/4320603460\n"))
	keyed := map[string]string{OptionIssuerJWKS: string(readFile(f, jwksPath))}
	f.Fuzz(func(t *testing.T, data []byte) {
		New().Detect(data)
		for _, opts := range []map[string]string{nil, keyed} {
			s, err := run("fuzz.txt", data, opts)
			if err != nil {
				pe, ok := err.(*importers.ParseError)
				if !ok || pe.File != "fuzz.txt" {
					t.Fatalf("error %T: %v", err, err)
				}
				if strings.Contains(err.Error(), "Anyperson") {
					t.Fatalf("error quotes the card: %v", err)
				}
				continue
			}
			for _, r := range s.recs {
				if _, err := record.Parse(r.Resource); err != nil {
					t.Fatal(err)
				}
				if r.Provenance.System == "" || r.Provenance.Importer != "shc" {
					t.Fatalf("provenance %+v", r.Provenance)
				}
			}
		}
	})
}
