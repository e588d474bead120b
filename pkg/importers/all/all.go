// Package all assembles the registry of every importer phr has, in the
// order formats are detected.
package all

import (
	"github.com/phr-project/phr/pkg/importers"
	"github.com/phr-project/phr/pkg/importers/applehealth"
	"github.com/phr-project/phr/pkg/importers/ccda"
	"github.com/phr-project/phr/pkg/importers/csvimport"
	"github.com/phr-project/phr/pkg/importers/fhir"
	"github.com/phr-project/phr/pkg/importers/qrimage"
	"github.com/phr-project/phr/pkg/importers/shc"
)

// Default returns a registry of all importers. Detection tries the most
// specific formats first: PNG and JPEG images of QR codes (by their magic
// bytes), SMART Health Cards (JSON or JWS or shc:/ text)
// before FHIR JSON, NDJSON before single-resource FHIR, the XML formats by
// their root element, and CSV last.
func Default() *importers.Registry {
	r := &importers.Registry{}
	r.Register(qrimage.New())
	r.Register(shc.New())
	r.Register(ccda.New())
	r.Register(applehealth.New())
	r.Register(fhir.NewNDJSON())
	r.Register(fhir.New())
	r.Register(csvimport.New())
	return r
}
