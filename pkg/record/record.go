package record

import (
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"
)

// Record is the envelope around one FHIR R4 resource.
//
// ID is phr's own identifier; the resource keeps its original "id" when it
// was imported. Kind, Date and Display are derived from Resource by Derive
// and stored so that listing does not have to parse every resource.
type Record struct {
	ID           string          `json:"id"`
	Kind         string          `json:"type"`
	ResourceType string          `json:"resourceType"`
	Date         time.Time       `json:"date,omitzero"`
	Display      string          `json:"display"`
	Provenance   Provenance      `json:"provenance"`
	CreatedAt    time.Time       `json:"createdAt,omitzero"`
	UpdatedAt    time.Time       `json:"updatedAt,omitzero"`
	Version      uint64          `json:"version"`
	Seq          uint64          `json:"seq,omitempty"`
	Deleted      bool            `json:"deleted,omitempty"`
	Resource     json.RawMessage `json:"resource,omitempty"`

	// fp, fpCluster and fpIDs cache Fingerprint and Identities, computed
	// by Derive from the resource it has just parsed, for the provenance
	// in fpFor.
	fp, fpCluster []byte
	fpIDs         [][]byte
	fpFor         Provenance
}

// Provenance says who wrote a record and from where.
type Provenance struct {
	// Method is how the record entered the vault: one of the Method*
	// constants.
	Method string `json:"method"`
	// Author is who entered it: "patient" for self-entered data, or a
	// device or account name.
	Author string `json:"author,omitempty"`
	// Importer names the importer ("fhir", "ccda", ...) for imported data.
	Importer string `json:"importer,omitempty"`
	// File is the base name of the imported file. It lives only inside the
	// sealed envelope.
	File string `json:"file,omitempty"`
	// FileSHA256 is the hex SHA-256 of the imported file's bytes.
	FileSHA256 string `json:"fileSha256,omitempty"`
	// System is the source system or organization (a FHIR server base URL,
	// a C-CDA custodian, an SHC issuer, "Apple Health").
	System string `json:"system,omitempty"`
	// OriginalID is the resource's id in the source system.
	OriginalID string `json:"originalId,omitempty"`
	// Verified reports whether a signature on the source was checked (SMART
	// Health Cards). It is meaningful only when Importer says so.
	Verified bool `json:"verified,omitempty"`
	// PatientMismatch is true when the record came from a file about
	// another person than the vault's owner, imported because the patient
	// asked for it (phr import --accept-patient-mismatch).
	PatientMismatch bool `json:"patientMismatch,omitempty"`
}

// Methods of entry.
const (
	MethodSelf     = "self-entered"
	MethodImported = "imported"
	MethodDevice   = "device"
)

// Source is the short name a record's origin goes by in lists and in the
// --source filter: the source system if known, else the importer, else
// "self".
func (p Provenance) Source() string {
	switch {
	case p.System != "":
		return p.System
	case p.Importer != "":
		return p.Importer
	case p.Method == MethodDevice && p.Author != "":
		return p.Author
	}
	return "self"
}

// NewID returns a fresh random record ID: 16 characters of lower-case
// base32, 80 random bits, valid as a FHIR id. No part of it is shared
// with any other ID: IDs reach providers in shares, and phrd writes many
// patients' vaults from one process, so a part shared by IDs made one
// after another would link records of different patients.
//
// A vault gives the records it stores without an ID (and imported ones)
// IDs of its own IDRun instead, for the locality described there.
func NewID() string {
	var b [10]byte
	mustRand(b[:])
	return strings.ToLower(idEncoding.EncodeToString(b[:]))
}

// IDRun makes record IDs whose last 40 bits are shared by runs of up to
// idRun consecutive IDs; the first 40 bits are fresh each time. A vault
// stores a record under its ID rotated (shared part first), so IDs made
// together (an import, a batch) are neighbours in its B+tree and writing
// a batch touches a few pages instead of rewriting pages all over the
// file. The shared part is random, so it says nothing about time; it only
// tells which records were made together, which the file's page layout
// shows anyway. People see the fresh part first, so short prefixes
// identify records.
//
// Each writer of one vault has its own IDRun (the vault keeps one), so
// that no run spans two vaults. The zero IDRun is ready to use; it is
// safe for concurrent use.
type IDRun struct {
	mu     sync.Mutex
	prefix [5]byte
	left   int
}

// Next returns the next ID of the run, starting a new run when the
// current one is used up.
func (g *IDRun) Next() string {
	var b [10]byte
	g.mu.Lock()
	if g.left == 0 {
		mustRand(g.prefix[:])
		g.left = idRun
	}
	g.left--
	copy(b[5:], g.prefix[:])
	g.mu.Unlock()
	mustRand(b[:5])
	return strings.ToLower(idEncoding.EncodeToString(b[:]))
}

// idRun is short on purpose: within a run the fresh part orders keys at
// random, so a run written over several transactions would have each of
// them rewrite pages all over the run's stretch of the tree. A run about
// the size of one import transaction (512 records, see pkg/importers)
// lands in one; shorter runs would each leave a page of the vault half
// empty where they start.
const idRun = 512

func mustRand(b []byte) {
	if _, err := rand.Read(b); err != nil {
		panic("record: no randomness: " + err.Error())
	}
}

var idEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// ValidID reports whether s has the shape of an ID made by NewID.
func ValidID(s string) bool {
	if len(s) != 16 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '2' && c <= '7') {
			return false
		}
	}
	return true
}

// New wraps a FHIR resource in a Record with a fresh ID and derived fields.
// The resource must be a JSON object with a resourceType. Imported and
// device resources are normalized first (see Normalize); the resource is
// re-encoded only when that changed something.
func New(resource []byte, prov Provenance) (Record, error) {
	res, err := Parse(resource)
	if err != nil {
		return Record{}, err
	}
	return NewParsed(resource, res, prov)
}

// NewParsed is New for a caller that built the resource itself and holds
// it parsed as well: res must be what Parse(resource) returns (objects as
// map[string]any, arrays as []any, numbers as json.Number). It saves
// decoding the JSON again, which for a document with an embedded file is
// most of the cost of New. Like New it normalizes imported and device
// resources, changing res in place.
func NewParsed(resource []byte, res Resource, prov Provenance) (Record, error) {
	if res.Type() == "" {
		return Record{}, fmt.Errorf("%w: no resourceType", ErrNotResource)
	}
	if normalizes(prov) && Normalize(res) {
		var err error
		if resource, err = marshalResource(res); err != nil {
			return Record{}, err
		}
	}
	r := Record{ID: NewID(), Provenance: prov, Resource: json.RawMessage(resource)}
	r.derive(res)
	return r, nil
}

// Derive parses r.Resource and sets ResourceType, Kind, Date and Display.
func (r *Record) Derive() error {
	res, err := Parse(r.Resource)
	if err != nil {
		return err
	}
	r.derive(res)
	return nil
}

func (r *Record) derive(res Resource) {
	r.ResourceType = res.Type()
	r.Kind = KindOf(res)
	r.Date = DateOf(res)
	r.Display = DisplayOf(res)
	r.fp, r.fpCluster = fingerprintInput(r, res)
	r.fpIDs = identities(r, res)
	r.fpFor = r.Provenance
}

// Summary is the JSON shape of a record in listings: the fields scripts
// rely on (id, type, resourceType, date, display, source).
type Summary struct {
	ID           string `json:"id"`
	Kind         string `json:"type"`
	ResourceType string `json:"resourceType"`
	Date         string `json:"date"`
	Display      string `json:"display"`
	Source       string `json:"source"`
	Version      uint64 `json:"version"`
	// Negation is set when the record does not state that something
	// happened or holds: "not-done", "not-taken", "refuted",
	// "entered-in-error" or "none-known" (see NegationOf). Scripts that
	// count events or facts skip records that have it.
	Negation string `json:"negation,omitempty"`
}

// Summarize returns r's listing shape. The date is the FHIR value as the
// source wrote it ("2026-06-01", "2013-08-15T10:30:00-05:00"), with its
// precision and offset (see When), or empty.
func (r *Record) Summarize() Summary {
	s := Summary{ID: r.ID, Kind: r.Kind, ResourceType: r.ResourceType, Display: r.Display, Source: r.Provenance.Source(), Version: r.Version}
	s.Date = r.When().Raw
	s.Negation = r.Negation()
	return s
}

// InputError reports bad input to a builder or parser, naming the field.
type InputError struct {
	Field string
	Msg   string
}

func (e *InputError) Error() string {
	if e.Field == "" {
		return e.Msg
	}
	return e.Field + ": " + e.Msg
}

func inputErr(field, format string, args ...any) error {
	return &InputError{Field: field, Msg: fmt.Sprintf(format, args...)}
}
