package share

import (
	"encoding/json"
	"fmt"
	"mime"
	"time"
)

// Content types of shared files (a manifest entry's contentType and the
// JWE "cty" header).
const (
	// ContentTypeSHC is a .smart-health-card file: a JSON object with a
	// verifiableCredential array of SMART Health Card JWS strings.
	ContentTypeSHC = "application/smart-health-card"
	// ContentTypeFHIR is any FHIR resource as JSON, such as a Bundle. The
	// specification allows a fhirVersion parameter
	// ("application/fhir+json;fhirVersion=4.0.1").
	ContentTypeFHIR = "application/fhir+json"
	// ContentTypeSMARTAPIAccess is a SMART access token response with "aud"
	// (and optionally "query").
	ContentTypeSMARTAPIAccess = "application/smart-api-access"
)

// ContentTypeJOSE is the HTTP Content-Type of a response that carries a
// single JWE: a files[].location download or a U-flag direct GET.
const ContentTypeJOSE = "application/jose"

// RecipientParam is the query parameter that carries the recipient in a
// U-flag direct GET of the link's url.
const RecipientParam = "recipient"

// MaxLocationLifetime is the longest a files[].location URL may stay valid
// after the manifest that lists it was served.
const MaxLocationLifetime = time.Hour

// Manifest status values (Manifest.Status).
const (
	StatusFinalized     = "finalized"
	StatusCanChange     = "can-change"
	StatusNoLongerValid = "no-longer-valid"
)

// ManifestRequest is the JSON body a receiver POSTs to a link's url (when
// the link has no U flag).
type ManifestRequest struct {
	// Recipient describes who is asking, for display to the sharer.
	// Required.
	Recipient string `json:"recipient"`
	// Passcode is the user-supplied passcode; required when the link has
	// the P flag. Never log it.
	Passcode string `json:"passcode,omitempty"`
	// EmbeddedLengthMax, when positive, is the longest embedded JWE the
	// receiver wants; longer files must be given by location.
	EmbeddedLengthMax int `json:"embeddedLengthMax,omitempty"`
}

// Validate checks that the recipient is present and embeddedLengthMax is
// not negative. Errors are *FieldError values wrapping ErrInvalidManifest.
func (r ManifestRequest) Validate() error {
	if r.Recipient == "" {
		return fieldErr(ErrInvalidManifest, "recipient", "is required")
	}
	if r.EmbeddedLengthMax < 0 {
		return fieldErr(ErrInvalidManifest, "embeddedLengthMax", "must not be negative")
	}
	return nil
}

// String describes the request without its passcode, so that printing or
// logging a request cannot leak the passcode.
func (r ManifestRequest) String() string {
	pc := "none"
	if r.Passcode != "" {
		pc = "[redacted]"
	}
	return fmt.Sprintf("ManifestRequest{Recipient: %q, Passcode: %s, EmbeddedLengthMax: %d}", r.Recipient, pc, r.EmbeddedLengthMax)
}

// GoString is String, for %#v.
func (r ManifestRequest) GoString() string { return r.String() }

// Manifest is the JSON object a server returns for a valid manifest request
// (HTTP 200, Content-Type application/json).
type Manifest struct {
	// Status optionally says whether the files may change: one of
	// StatusFinalized, StatusCanChange, StatusNoLongerValid.
	Status string `json:"status,omitempty"`
	// List optionally holds a FHIR List resource with metadata about the
	// files; it is kept as raw JSON.
	List json.RawMessage `json:"list,omitempty"`
	// Files has one entry per shared file; at least one.
	Files []ManifestFile `json:"files"`
}

// Validate checks the status value and every file entry, and that there is
// at least one file. Errors are *FieldError values wrapping
// ErrInvalidManifest, naming the entry (e.g. "files[2].location").
func (m Manifest) Validate() error {
	switch m.Status {
	case "", StatusFinalized, StatusCanChange, StatusNoLongerValid:
	default:
		return fieldErr(ErrInvalidManifest, "status", "must be %q, %q or %q", StatusFinalized, StatusCanChange, StatusNoLongerValid)
	}
	if len(m.List) > 0 && !json.Valid(m.List) {
		return fieldErr(ErrInvalidManifest, "list", "is not valid JSON")
	}
	if len(m.Files) == 0 {
		return fieldErr(ErrInvalidManifest, "files", "must have at least one entry")
	}
	for i, f := range m.Files {
		if err := f.Validate(); err != nil {
			if fe, ok := err.(*FieldError); ok {
				return &FieldError{Field: fmt.Sprintf("files[%d].%s", i, fe.Field), Reason: fe.Reason, Err: fe.Err}
			}
			return err
		}
	}
	return nil
}

// ManifestFile is one entry of Manifest.Files. Exactly one of Embedded and
// Location is set.
type ManifestFile struct {
	// ContentType is ContentTypeSHC, ContentTypeFHIR (optionally with a
	// fhirVersion parameter) or ContentTypeSMARTAPIAccess.
	ContentType string `json:"contentType"`
	// Embedded is the file itself as a compact JWE (see EncryptFile).
	Embedded string `json:"embedded,omitempty"`
	// Location is a short-lived (at most MaxLocationLifetime), possibly
	// single-use URL from which a GET returns the JWE with Content-Type
	// application/jose.
	Location string `json:"location,omitempty"`
	// LastUpdated optionally gives when the file last changed, as an ISO
	// 8601 timestamp (RFC 3339 when this package's users write it).
	LastUpdated string `json:"lastUpdated,omitempty"`
}

// Validate checks the content type (one of the three, media-type parameters
// allowed), that exactly one of embedded and location is set, and that
// location is an https URL (http only for loopback hosts). It does not
// decrypt Embedded. Errors are *FieldError values wrapping
// ErrInvalidManifest.
func (f ManifestFile) Validate() error {
	if f.ContentType == "" {
		return fieldErr(ErrInvalidManifest, "contentType", "is required")
	}
	mt, _, err := mime.ParseMediaType(f.ContentType)
	if err != nil {
		return fieldErr(ErrInvalidManifest, "contentType", "is not a valid media type")
	}
	switch mt {
	case ContentTypeSHC, ContentTypeFHIR, ContentTypeSMARTAPIAccess:
	default:
		return fieldErr(ErrInvalidManifest, "contentType", "must be %q, %q or %q (got %s)", ContentTypeSHC, ContentTypeFHIR, ContentTypeSMARTAPIAccess, quoteShort(mt))
	}
	switch {
	case f.Embedded == "" && f.Location == "":
		return fieldErr(ErrInvalidManifest, "embedded", "or location is required")
	case f.Embedded != "" && f.Location != "":
		return fieldErr(ErrInvalidManifest, "embedded", "and location must not both be set")
	case f.Location != "":
		if err := validateURL("location", f.Location); err != nil {
			return fieldErr(ErrInvalidManifest, "location", "%s", err.(*FieldError).Reason)
		}
	}
	return nil
}

// InvalidPasscodeResponse is the JSON body of the HTTP 401 response to a
// manifest request with a wrong passcode.
type InvalidPasscodeResponse struct {
	// RemainingAttempts is how many more wrong passcodes the link accepts
	// over its whole lifetime before it is disabled.
	RemainingAttempts int `json:"remainingAttempts"`
}
