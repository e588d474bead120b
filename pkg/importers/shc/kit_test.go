package shc

import (
	"testing"

	"github.com/phr-project/phr/pkg/importers/importertest"
)

// TestKit runs the importer conformance checks (importertest.Run).
func TestKit(t *testing.T) {
	importertest.Run(t, New(), importertest.Corpus{
		Files: []importertest.Sample{
			{Path: "shc/input/images/example-00-e-file.smart-health-card"},
			{Path: "shc/input/images/example-02-e-file.smart-health-card", Options: withKeys},
			{Path: "shc/input/images/example-00-d-jws.txt"},
			{Path: "shc/input/images/example-00-f-qr-code-numeric-value-0.txt"},
			{Name: "example-02 QR chunks", Data: qrText(t, "02")},
			{Path: "shc/input/images/example-01-b-jws-payload-expanded.json"},
		},
		Bad: []importertest.Bad{
			{Name: "bad.smart-health-card", Data: []byte(`{"verifiableCredential":["Secretheader.Secretpayload.Secretsig"]}`), Secrets: []string{"Secretheader", "Secretpayload", "Secretsig"}, Is: ErrMalformed},
			{Name: "qr.txt", Data: []byte("shc:/2/3/5676290952432060346029243740\nshc:/1/3/5676290952432060346029243740\n"), Is: ErrQRChunks},
		},
		Limits: []importertest.Limit{
			{Name: "a file over MaxFileSize", Is: ErrTooLarge, MaxRead: MaxFileSize + 1<<20, Input: func() *importertest.LazyReader {
				return importertest.Lazy(importertest.Once("shc:/"), importertest.Fill("56", MaxFileSize+10))
			}},
		},
	})
}

// TestExpectations checks the real cards of testdata/expect against what a
// person read in them (importertest.Expectations).
func TestExpectations(t *testing.T) {
	importertest.CheckExpectations(t, "testdata/expect", New())
}
