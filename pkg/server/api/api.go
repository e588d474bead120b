// Package api holds the request and response bodies of phrd's JSON API
// (docs/api/openapi.yaml), so that Go clients (the phr CLI's remote
// commands, tests, load generators) share them with the server without
// importing the server and its HTTP framework.
//
// Field names are snake_case, except inside records, which keep the
// envelope's names (record.Record, record.Summary) and the FHIR resource
// as stored.
package api

import (
	"encoding/json"
	"time"

	"github.com/phr-project/phr/pkg/record"
)

// Prefix is the path prefix of every API route.
const Prefix = "/api/v1"

// ErrorBody is the body of every error response.
type ErrorBody struct {
	Error Error `json:"error"`
}

// Error is a machine-readable code and a message for people. The message
// never holds internals; the code is one of the Code* constants.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Error codes.
const (
	CodeBadRequest         = "bad_request"           // 400: malformed or invalid input; the message names the field
	CodeUnauthorized       = "unauthorized"          // 401: no, expired or revoked session; wrong credentials
	CodeForbidden          = "forbidden"             // 403: e.g. registration is closed
	CodeNotFound           = "not_found"             // 404: no such route or record (in this account)
	CodeMethodNotAllowed   = "method_not_allowed"    // 405
	CodeConflict           = "conflict"              // 409: the account exists; the last key slot
	CodeTimeout            = "timeout"               // 408: the request body did not arrive in time
	CodeGone               = "gone"                  // 410: the record was deleted
	CodePreconditionFailed = "precondition_failed"   // 412: If-Match names an older version
	CodeTooLarge           = "too_large"             // 413: request body over the limit
	CodeUnsupportedType    = "unsupported_media"     // 415: wrong Content-Type
	CodeImportFailed       = "import_failed"         // 422: the uploaded file could not be imported
	CodePatientMismatch    = "patient_mismatch"      // 409: the uploaded file is about another person (send accept_patient_mismatch=true to import it anyway)
	CodePreconditionNeeded = "precondition_required" // 428: PUT without If-Match
	CodeRateLimited        = "rate_limited"          // 429: see Retry-After
	CodeInternal           = "internal"              // 500
	CodeUnavailable        = "unavailable"           // 503: busy (see Retry-After) or the vault is locked
)

// CreateAccountRequest is the body of POST /api/v1/accounts.
type CreateAccountRequest struct {
	Username   string `json:"username"`
	Passphrase string `json:"passphrase"`
}

// CreateAccountResponse answers it. The recovery code is shown only here.
type CreateAccountResponse struct {
	Username     string `json:"username"`
	RecoveryCode string `json:"recovery_code"`
	PatientID    string `json:"patient_id"`
}

// SessionRequest is the body of POST /api/v1/sessions: a username with
// either its passphrase or a device credential.
type SessionRequest struct {
	Username         string `json:"username"`
	Passphrase       string `json:"passphrase,omitempty"`
	DeviceCredential string `json:"device_credential,omitempty"`
}

// Session answers it: a bearer token for the Authorization header.
type Session struct {
	Token string `json:"token"`
	// ExpiresAt is the session's absolute end.
	ExpiresAt time.Time `json:"expires_at"`
	// IdleTimeout is how many seconds of inactivity end the session.
	IdleTimeout int `json:"idle_timeout"`
	// Account is an opaque handle of the account the session opens: the
	// same for every session of one account, another for another
	// account, and not the username. A client that signs in again (an
	// ended session) compares it, so that nothing typed for one account
	// is sent as another.
	Account string `json:"account"`
}

// SessionInfo is GET /api/v1/sessions/current.
type SessionInfo struct {
	Method        string    `json:"method"` // passphrase or device
	CreatedAt     time.Time `json:"created_at"`
	ExpiresAt     time.Time `json:"expires_at"`
	IdleExpiresAt time.Time `json:"idle_expires_at"`
	// Account is the account's handle, as Session gives it.
	Account string `json:"account"`
}

// DeviceRequest is the body of POST /api/v1/devices. Passphrase is the
// account's: a session token alone does not make a device credential.
type DeviceRequest struct {
	Label      string `json:"label"`
	Passphrase string `json:"passphrase"`
}

// Device is a device key slot of the account's vault.
type Device struct {
	ID      string    `json:"id"`
	Label   string    `json:"label"`
	Created time.Time `json:"created"`
}

// DeviceCreated answers POST /api/v1/devices. Credential (an age X25519
// identity, "AGE-SECRET-KEY-1...") is shown only here; it logs in as
// SessionRequest.DeviceCredential.
type DeviceCreated struct {
	Device
	Credential string `json:"credential"`
}

// DeviceList is GET /api/v1/devices.
type DeviceList struct {
	Devices []Device `json:"devices"`
}

// RecordItem is one record in a listing: the summary `phr list --json`
// prints, plus the FHIR resource.
type RecordItem struct {
	record.Summary
	Resource json.RawMessage `json:"resource"`
}

// RecordList is GET /api/v1/records. NextCursor, when set, fetches the
// next page.
type RecordList struct {
	Records    []RecordItem `json:"records"`
	NextCursor string       `json:"next_cursor,omitempty"`
}

// LogEntry is the shorthand body of POST /api/v1/records, mirroring
// `phr log`: Log says what it is (med, dose, symptom, vital, condition,
// allergy, immunization, note) and decides which other fields apply:
//
//	med:          name, dose, frequency, start, stop, reason, note
//	dose:         name, amount, at, note
//	symptom:      name, severity (0-10), at, note
//	vital:        kind (a kind or other name of the vital-sign table: bp, hr, weight, temp, glucose, spo2, height, bmi, rr, pain, head, ...), value ("120/80", "70kg"), at
//	condition:    name, onset, note
//	allergy:      substance, reaction, severity (mild|moderate|severe), criticality (low|high|unable-to-assess), note
//	immunization: vaccine, date, note
//	note:         text, at
//
// Dates take what `phr log` takes: RFC 3339, 2026-11-24, "2h ago", ...
type LogEntry struct {
	Log       string          `json:"log"`
	Name      string          `json:"name,omitempty"`
	Dose      string          `json:"dose,omitempty"`
	Frequency string          `json:"frequency,omitempty"`
	Start     string          `json:"start,omitempty"`
	Stop      string          `json:"stop,omitempty"`
	Reason    string          `json:"reason,omitempty"`
	Note      string          `json:"note,omitempty"`
	Amount    string          `json:"amount,omitempty"`
	At        string          `json:"at,omitempty"`
	Severity  json.RawMessage `json:"severity,omitempty"`
	Kind      string          `json:"kind,omitempty"`
	Value     string          `json:"value,omitempty"`
	Onset     string          `json:"onset,omitempty"`
	Substance string          `json:"substance,omitempty"`
	Reaction  string          `json:"reaction,omitempty"`
	// Criticality is an allergy's risk of a life-threatening reaction:
	// low, high or unable-to-assess (default high for anaphylaxis).
	Criticality string `json:"criticality,omitempty"`
	Vaccine     string `json:"vaccine,omitempty"`
	Date        string `json:"date,omitempty"`
	Text        string `json:"text,omitempty"`
}

// Change is one entry of the changes feed. Record is absent for a
// deletion.
type Change struct {
	Seq     uint64         `json:"seq"`
	ID      string         `json:"id"`
	Deleted bool           `json:"deleted"`
	Record  *record.Record `json:"record,omitempty"`
}

// Changes is GET /api/v1/changes. Ask again with since=Next while More.
type Changes struct {
	Changes []Change `json:"changes"`
	Next    uint64   `json:"next"`
	More    bool     `json:"more"`
}

// ImportResult is POST /api/v1/imports: the report `phr import --json`
// prints, for the one uploaded file.
type ImportResult struct {
	Files []*ImportReport `json:"files"`
	// Error is set (with status 422) when the file was not imported.
	Error *Error `json:"error,omitempty"`
}

// ImportReport is what happened to one imported file: the per-file object
// of `phr import --json` (pipeline.Report has the same JSON).
type ImportReport struct {
	File       string                   `json:"file"`
	Format     string                   `json:"format"`
	SHA256     string                   `json:"sha256,omitempty"`
	Added      int                      `json:"added"`
	Updated    int                      `json:"updated"`
	Duplicates int                      `json:"duplicates"`
	Skipped    int                      `json:"skipped"`
	Failed     int                      `json:"failed"`
	ByType     map[string]*ImportCounts `json:"byType"`
	// Skips say why items were skipped, with how many of each.
	Skips []ImportSkip `json:"skips,omitempty"`
	// Failures locate failed items (file, line or path, and why).
	Failures []string `json:"failures,omitempty"`
	// Error is why the whole file failed, if it did.
	Error  string `json:"error,omitempty"`
	DryRun bool   `json:"dryRun,omitempty"`
	// PatientMismatch: the file's Patient is another person, imported
	// because the client asked for it.
	PatientMismatch bool `json:"patientMismatch,omitempty"`
	// OwnerFilled names what the owner's Patient lacked and took from
	// this file (name, birth date, sex).
	OwnerFilled []string `json:"ownerFilled,omitempty"`
	Warning     string   `json:"warning,omitempty"`
}

// ImportCounts are the outcome counts of one resource type.
type ImportCounts struct {
	Added      int `json:"added"`
	Updated    int `json:"updated"`
	Duplicates int `json:"duplicates"`
	Skipped    int `json:"skipped"`
	Failed     int `json:"failed"`
}

// ImportSkip counts skipped items of one type and reason.
type ImportSkip struct {
	ResourceType string `json:"resourceType"`
	Reason       string `json:"reason"`
	Count        int    `json:"count"`
}

// IngestRequest is the body of POST /api/v1/ingest: readings from one
// device (a wearable, a meter, a phone's health store).
type IngestRequest struct {
	Device   string    `json:"device"`
	Readings []Reading `json:"readings"`
}

// Reading types.
const (
	ReadingHeartRate = "heart_rate" // unit /min (bpm)
	ReadingSteps     = "steps"      // a count over [at, end]
	ReadingGlucose   = "glucose"    // mg/dL or mmol/L
	ReadingBP        = "bp"         // value systolic, value2 diastolic, mm[Hg]
	ReadingWeight    = "weight"     // kg or lb
	ReadingSpO2      = "spo2"       // %
)

// Reading is one measurement. ID is the client's own stable ID for it:
// sending the same reading again adds nothing.
type Reading struct {
	ID     string   `json:"id"`
	Type   string   `json:"type"`
	Value  *float64 `json:"value"`
	Value2 *float64 `json:"value2,omitempty"`
	Unit   string   `json:"unit,omitempty"`
	At     string   `json:"at"`
	End    string   `json:"end,omitempty"`
}

// IngestResult answers an ingest: one result per reading, in order.
type IngestResult struct {
	Added int `json:"added"`
	// Updated counts readings that replaced an earlier value sent under
	// the same reading id.
	Updated    int             `json:"updated"`
	Duplicates int             `json:"duplicates"`
	Results    []ReadingResult `json:"results"`
}

// ReadingResult says what became of one reading.
type ReadingResult struct {
	ID        string `json:"id"`
	RecordID  string `json:"record_id"`
	Duplicate bool   `json:"duplicate"`
	Updated   bool   `json:"updated,omitempty"`
}

// Audit is a page of GET /api/v1/audit (the account's own events:
// logins, key and device changes, imports) or of GET
// /api/v1/audit/shares (accesses to its shares), newest first. Pass
// NextCursor back as cursor for the next page; it is absent on the last.
type Audit struct {
	Entries    []AuditEntry `json:"entries"`
	NextCursor string       `json:"next_cursor,omitempty"`
}

// AuditEntry is one event of an account's audit log, newest first in a
// page. It has the vault's audit entry's JSON.
type AuditEntry struct {
	Seq     uint64         `json:"seq"`
	Time    time.Time      `json:"time"`
	Event   string         `json:"event"`
	Success bool           `json:"success"`
	Method  string         `json:"method,omitempty"`
	Client  string         `json:"client,omitempty"`
	Ref     string         `json:"ref,omitempty"`
	Label   string         `json:"label,omitempty"`
	Format  string         `json:"format,omitempty"`
	Counts  map[string]int `json:"counts,omitempty"`
}
