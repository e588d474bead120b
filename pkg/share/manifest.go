package share

import (
	"bytes"
	"encoding/json"
	"fmt"
	"mime"
	"time"

	"github.com/phr-project/phr/internal/jsondepth"
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

// Values of a manifest file's status (ManifestFile.Status): whether the
// file may change.
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
// (HTTP 200, Content-Type application/json). STU1 has no manifest-level
// status: each file has its own (ManifestFile.Status); a top-level
// "status", which phr's hosts sent before they followed STU1, is ignored
// like any unknown property.
type Manifest struct {
	// List optionally holds a FHIR List resource with metadata about the
	// files; it is kept as raw JSON.
	List json.RawMessage `json:"list,omitempty"`
	// Files has one entry per shared file; at least one.
	Files []ManifestFile `json:"files"`
}

// Validate checks every file entry, and that there is at least one file
// (the logical model ShlManifest has files 1..*). Errors are *FieldError
// values wrapping ErrInvalidManifest, naming the entry (e.g.
// "files[2].location").
func (m Manifest) Validate() error {
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
	// Status optionally says whether the file may change: one of
	// StatusFinalized, StatusCanChange, StatusNoLongerValid.
	Status string `json:"status,omitempty"`
	// FHIRVersion optionally gives the FHIR version of the file's content
	// ("4.0.1"); the specification says it SHOULD be there for FHIR
	// content, and that receivers may assume 4.0.1 when it is not.
	FHIRVersion string `json:"fhirVersion,omitempty"`
}

// Validate checks the content type (one of the three, media-type parameters
// allowed), the status (one of the three, or absent), that exactly one of
// embedded and location is set, and that
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
	switch f.Status {
	case "", StatusFinalized, StatusCanChange, StatusNoLongerValid:
	default:
		return fieldErr(ErrInvalidManifest, "status", "must be %q, %q or %q (got %s)", StatusFinalized, StatusCanChange, StatusNoLongerValid, quoteShort(f.Status))
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

// Limits on manifests ParseManifest reads.
const (
	// MaxManifestSize is the largest manifest, in bytes: 64 MiB, room for
	// embedded files up to DefaultMaxPlaintext. Receivers that want larger
	// files ask for them by location (a small embeddedLengthMax).
	MaxManifestSize = 64 << 20
	// MaxManifestFiles is the most entries a manifest's files may have:
	// 1000. phrd shares at most 16 files.
	MaxManifestFiles = 1000
)

// ParseManifest reads a manifest, the JSON body of the answer to a manifest
// request, and validates it (Manifest.Validate). Property names are
// matched exactly (case-sensitively); unknown properties are ignored, as
// the specification asks; null counts as absent. A body over
// MaxManifestSize bytes, a files list over MaxManifestFiles entries, or
// JSON nested more than MaxJSONDepth levels is refused before it is
// decoded further, so a hostile server cannot make a receiver allocate
// without bound. Errors are *FieldError values wrapping ErrInvalidManifest,
// naming the field ("files[2].embedded"); they never quote the manifest.
func ParseManifest(b []byte) (Manifest, error) {
	if len(b) > MaxManifestSize {
		return Manifest{}, fieldErr(ErrInvalidManifest, "manifest", "is over %d MiB", MaxManifestSize>>20)
	}
	if jsondepth.Exceeds(b, MaxJSONDepth) {
		return Manifest{}, fieldErr(ErrInvalidManifest, "manifest", "nests JSON more than %d levels", MaxJSONDepth)
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(b, &obj); err != nil || obj == nil {
		return Manifest{}, fieldErr(ErrInvalidManifest, "manifest", "is not a JSON object")
	}
	var m Manifest
	var err error
	if v, ok := obj["list"]; ok && !isNull(v) {
		if t := bytes.TrimSpace(v); len(t) == 0 || t[0] != '{' {
			return Manifest{}, fieldErr(ErrInvalidManifest, "list", "must be a JSON object (a FHIR List)")
		}
		m.List = v
	}
	files, ok := obj["files"]
	if !ok || isNull(files) {
		return Manifest{}, fieldErr(ErrInvalidManifest, "files", "is required")
	}
	// Count the entries before decoding them.
	dec := json.NewDecoder(bytes.NewReader(files))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('[') {
		return Manifest{}, fieldErr(ErrInvalidManifest, "files", "must be an array")
	}
	var entries []map[string]json.RawMessage
	for dec.More() {
		if len(entries) == MaxManifestFiles {
			return Manifest{}, fieldErr(ErrInvalidManifest, "files", "has more than %d entries", MaxManifestFiles)
		}
		var e map[string]json.RawMessage
		if err := dec.Decode(&e); err != nil || e == nil {
			return Manifest{}, fieldErr(ErrInvalidManifest, fmt.Sprintf("files[%d]", len(entries)), "must be a JSON object")
		}
		entries = append(entries, e)
	}
	m.Files = make([]ManifestFile, len(entries))
	for i, e := range entries {
		f := &m.Files[i]
		at := func(name string) string { return fmt.Sprintf("files[%d].%s", i, name) }
		for _, fld := range []struct {
			name string
			dst  *string
		}{
			{"contentType", &f.ContentType},
			{"embedded", &f.Embedded},
			{"location", &f.Location},
			{"lastUpdated", &f.LastUpdated},
			{"status", &f.Status},
			{"fhirVersion", &f.FHIRVersion},
		} {
			if *fld.dst, err = manifestString(e, fld.name, at(fld.name)); err != nil {
				return Manifest{}, err
			}
		}
	}
	if err := m.Validate(); err != nil {
		return Manifest{}, err
	}
	return m, nil
}

// manifestString returns obj[name] as a string; absent or null gives "".
func manifestString(obj map[string]json.RawMessage, name, field string) (string, error) {
	v, ok := obj[name]
	if !ok || isNull(v) {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		return "", fieldErr(ErrInvalidManifest, field, "must be a string")
	}
	return s, nil
}
