package fhirdoc

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strings"
	"time"

	"github.com/phr-project/phr/pkg/pdfdoc"
	"github.com/phr-project/phr/pkg/record"
	"github.com/phr-project/phr/pkg/share"
)

// The CMS "Kill the Clipboard" profile of SMART Health Links:
// "Patient-Shared Health Documents via SMART Health Links" (draft for July
// 2026, version 0.10.2). A link of the profile has flag U and an exp; its
// one file is a PatientSharedBundle.
const (
	// ProfileKTC names the profile in the CLI and phrd's share API.
	ProfileKTC = "ktc"
	// KTCCategorySystem is the code system of the category every
	// PatientSharedDocumentReference carries.
	KTCCategorySystem = "https://cms.gov/fhir/CodeSystem/patient-shared-category"
	// KTCCategory is the one code of KTCCategorySystem.
	KTCCategory = "patient-shared"
	// SecurityPATAST is the v3 ObservationValue code "patient asserted",
	// the security label of patient-authored documents.
	SecurityPATAST = "PATAST"
	// SecuritySystem is where PATAST comes from.
	SecuritySystem = "http://terminology.hl7.org/CodeSystem/v3-ObservationValue"
	// LOINCPatientNote is the type of the Patient Story PDF (the rendered
	// summary's is LOINCPatientSummary).
	LOINCPatientNote = record.PatientNoteType
)

// ErrKTC means a link or bundle breaks a rule of the Kill-the-Clipboard
// profile.
var ErrKTC = errors.New("share: not a Kill-the-Clipboard patient-shared link")

// ErrKTCNoPatient means a patient-shared bundle was asked of a vault that
// names no patient: the profile requires the Patient.
var ErrKTCNoPatient = errors.New("share: a patient-shared bundle needs the patient (the vault names none: phr init --name, or import a record that names you)")

// KTCOptions are the parts of a patient-shared bundle besides the records.
type KTCOptions struct {
	// Now is when the bundle is assembled: its timestamp, and the date of
	// its documents. Required.
	Now time.Time
	// Story, when not blank, is a note in the patient's own words; it
	// goes in as a Patient Story PDF (LOINC 51855-5).
	Story string
}

// BuildKTC returns the one file of a Kill-the-Clipboard link
// (ContentTypeFHIR): a PatientSharedBundle, a FHIR R4 Bundle of type
// "collection" with a timestamp, holding
//
//   - the Patient, once (ErrKTCNoPatient when there is none);
//   - the resources of recs, with references resolved as in BuildBundle,
//     normalized, and without meta.profile (the profile asks senders to
//     leave it out; everything else is kept as stored), except that a
//     MedicationStatement becomes the US Core MedicationRequest of a
//     reported medication (US Core has no MedicationStatement profile;
//     see usCoreMedication);
//   - a PatientSharedDocumentReference of type LOINC 60591-5 (Patient
//     summary Document) carrying the FHIR-Rendered PDF: pdfdoc.Summary of
//     the same records with Complete set, so that every other resource of
//     the bundle reads in it;
//   - with o.Story, a second one of type LOINC 51855-5 (Patient Note)
//     carrying pdfdoc.Story.
//
// Each document has status current, category patient-shared, the PATAST
// security label, the patient as subject and author, date o.Now, and its
// PDF base64 in content[0].attachment.data.
func BuildKTC(patient record.Record, recs []record.Record, o KTCOptions) ([]byte, error) {
	if o.Now.IsZero() {
		return nil, errors.New("share: BuildKTC needs the time")
	}
	b, err := newBundleBuilder(patient, recs)
	if err != nil {
		return nil, err
	}
	if b.patient == nil {
		return nil, ErrKTCNoPatient
	}
	b.include(b.pool)
	b.resolve()
	patRec := patient
	if len(patRec.Resource) == 0 && b.patient.rec != nil {
		patRec = *b.patient.rec
	}
	summary, err := pdfdoc.Summary(patRec, recs, pdfdoc.Options{Now: o.Now, Title: "Patient-shared health summary", Complete: true})
	if err != nil {
		return nil, err
	}
	docs := []*bundleEntry{ktcDocument(b.patient.fullURL, LOINCPatientSummary, "Patient summary Document",
		"Patient-shared health summary: a rendering of every other resource of this bundle", summary, o.Now)}
	if strings.TrimSpace(o.Story) != "" {
		story, err := pdfdoc.Story(patRec, o.Story, o.Now)
		if err != nil {
			return nil, err
		}
		docs = append(docs, ktcDocument(b.patient.fullURL, LOINCPatientNote, "Patient Note",
			"The patient's story, in their own words", story, o.Now))
	}
	entries := []*bundleEntry{b.patient}
	entries = append(entries, b.included...)
	entries = append(entries, docs...)
	for _, e := range entries {
		dropProfiles(e.res)
		if e.typ() == "MedicationStatement" {
			usCoreMedication(e.res, b.patient.fullURL)
		}
	}
	return marshalBundle(bundleHeader{Type: "collection", Timestamp: o.Now.Format(time.RFC3339)}, entries)
}

// statementToRequest maps MedicationStatement statuses to MedicationRequest
// ones. not-taken has none: such a statement stays what it is.
var statementToRequest = map[string]string{
	"active": "active", "completed": "completed", "stopped": "stopped", "on-hold": "on-hold",
	"intended": "draft", "unknown": "unknown", "entered-in-error": "entered-in-error",
}

// usCoreMedication rewrites a MedicationStatement as US Core shapes a
// medication the patient reports: a MedicationRequest with intent "plan",
// reportedBoolean true, the statement's status (intended → draft), its
// medication, subject, reasons, notes, identifiers and status reason;
// authoredOn from dateAsserted (else the start of its effective time);
// requester the statement's information source, else the patient; its
// dosage as dosageInstruction, and its effective period as the
// instructions' bounds (so a stop date is kept). A statement of a
// medication not taken stays a MedicationStatement.
func usCoreMedication(res map[string]any, patientURL string) {
	status, _ := res["status"].(string)
	to, ok := statementToRequest[status]
	if !ok {
		return
	}
	r := record.Resource(res)
	out := map[string]any{"resourceType": "MedicationRequest", "status": to, "intent": "plan", "reportedBoolean": true}
	for _, k := range []string{"id", "meta", "identifier", "medicationCodeableConcept", "medicationReference", "subject", "reasonCode", "reasonReference", "note", "contained", "extension"} {
		if v, ok := res[k]; ok {
			out[k] = v
		}
	}
	if sr := r.List("statusReason"); len(sr) > 0 {
		out["statusReason"] = sr[0]
	}
	for _, p := range []string{"dateAsserted", "effectiveDateTime", "effectivePeriod.start"} {
		if d := r.Str(p); d != "" {
			out["authoredOn"] = d
			break
		}
	}
	if src, ok := res["informationSource"].(map[string]any); ok {
		out["requester"] = src
	} else {
		out["requester"] = map[string]any{"reference": patientURL}
	}
	dosage := r.List("dosage")
	if period, ok := res["effectivePeriod"].(map[string]any); ok {
		if len(dosage) == 0 {
			dosage = []any{map[string]any{}}
		}
		for _, d := range dosage {
			dm, ok := d.(map[string]any)
			if !ok {
				continue
			}
			timing, _ := dm["timing"].(map[string]any)
			if timing == nil {
				timing = map[string]any{}
				dm["timing"] = timing
			}
			repeat, _ := timing["repeat"].(map[string]any)
			if repeat == nil {
				repeat = map[string]any{}
				timing["repeat"] = repeat
			}
			if repeat["boundsPeriod"] == nil && repeat["boundsDuration"] == nil && repeat["boundsRange"] == nil {
				repeat["boundsPeriod"] = period
			}
		}
	}
	if len(dosage) > 0 {
		out["dosageInstruction"] = dosage
	}
	clear(res)
	maps.Copy(res, out)
}

// dropProfiles removes meta.profile (and meta when nothing else is left).
func dropProfiles(res map[string]any) {
	meta, ok := res["meta"].(map[string]any)
	if !ok {
		return
	}
	delete(meta, "profile")
	if len(meta) == 0 {
		delete(res, "meta")
	}
}

// ktcDocument is a PatientSharedDocumentReference holding pdf.
func ktcDocument(patientURL, loinc, display, description string, pdf []byte, now time.Time) *bundleEntry {
	return &bundleEntry{fullURL: newUUIDURN(), res: map[string]any{
		"resourceType": "DocumentReference",
		"meta": map[string]any{"security": []any{map[string]any{
			"system": SecuritySystem, "code": SecurityPATAST, "display": "patient asserted",
		}}},
		"status":      "current",
		"type":        map[string]any{"coding": []any{map[string]any{"system": record.LOINC, "code": loinc, "display": display}}},
		"category":    []any{map[string]any{"coding": []any{map[string]any{"system": KTCCategorySystem, "code": KTCCategory, "display": "Patient-Shared"}}}},
		"subject":     map[string]any{"reference": patientURL},
		"author":      []any{map[string]any{"reference": patientURL}},
		"date":        now.Format(time.RFC3339),
		"description": description,
		"content": []any{map[string]any{"attachment": map[string]any{
			"contentType": "application/pdf",
			"data":        base64.StdEncoding.EncodeToString(pdf),
			"title":       display + ".pdf",
			"creation":    now.Format(time.RFC3339),
		}}},
	}}
}

// CheckKTCPayload checks the profile's rules of a link: flag exactly U
// (a direct file: no passcode, no manifest, not long-term) and an exp. Errors are
// *share.FieldError values wrapping ErrKTC.
func CheckKTCPayload(p share.Payload) error {
	if p.Flag != share.FlagDirect {
		return ktcErr("flag", "must be exactly U (a direct file)")
	}
	if p.Exp <= 0 {
		return ktcErr("exp", "is required")
	}
	return nil
}

// CheckKTCBundle checks data against the PatientSharedBundle profile: a
// Bundle of type collection with a timestamp, at least two entries, each
// with a fullUrl and a resource, exactly one Patient; and every
// DocumentReference of category patient-shared a
// PatientSharedDocumentReference: status current, type 60591-5 or
// 51855-5, subject and an author the bundle's Patient, a date, and one
// content whose attachment is application/pdf data that is a PDF.
// Errors are *share.FieldError values wrapping ErrKTC, naming the entry.
func CheckKTCBundle(data []byte) error {
	var b struct {
		ResourceType string `json:"resourceType"`
		Type         string `json:"type"`
		Timestamp    string `json:"timestamp"`
		Entry        []struct {
			FullURL  string          `json:"fullUrl"`
			Resource json.RawMessage `json:"resource"`
		} `json:"entry"`
	}
	if err := json.Unmarshal(data, &b); err != nil {
		return ktcErr("bundle", "is not a JSON object")
	}
	switch {
	case b.ResourceType != "Bundle":
		return ktcErr("resourceType", "must be Bundle")
	case b.Type != "collection":
		return ktcErr("type", "must be collection")
	case b.Timestamp == "":
		return ktcErr("timestamp", "is required")
	case len(b.Entry) < 2:
		return ktcErr("entry", "must hold the Patient and at least one other entry")
	}
	if _, err := record.ParseDate(b.Timestamp); err != nil {
		return ktcErr("timestamp", "is not a FHIR instant")
	}
	patientURL := ""
	res := make([]record.Resource, len(b.Entry))
	for i, e := range b.Entry {
		field := fmt.Sprintf("entry[%d]", i)
		if e.FullURL == "" {
			return ktcErr(field+".fullUrl", "is required")
		}
		r, err := record.Parse(e.Resource)
		if err != nil || r.Type() == "" {
			return ktcErr(field+".resource", "is not a FHIR resource")
		}
		res[i] = r
		if r.Type() == "Patient" {
			if patientURL != "" {
				return ktcErr(field, "is a second Patient (the bundle holds exactly one)")
			}
			patientURL = e.FullURL
		}
	}
	if patientURL == "" {
		return ktcErr("entry", "holds no Patient")
	}
	for i, r := range res {
		if r.Type() != "DocumentReference" || !r.HasCoding("category", KTCCategorySystem, KTCCategory) {
			continue
		}
		if err := checkKTCDocument(r, patientURL); err != nil {
			var fe *share.FieldError
			if errors.As(err, &fe) {
				fe.Field = fmt.Sprintf("entry[%d].resource.%s", i, fe.Field)
			}
			return err
		}
	}
	return nil
}

func checkKTCDocument(r record.Resource, patientURL string) error {
	switch {
	case r.Str("status") != "current":
		return ktcErr("status", "must be current")
	case !r.HasCoding("type", record.LOINC, LOINCPatientSummary) && !r.HasCoding("type", record.LOINC, LOINCPatientNote):
		return ktcErr("type", "must be LOINC 60591-5 or 51855-5")
	case r.Str("subject.reference") != patientURL:
		return ktcErr("subject", "must be the bundle's Patient")
	case r.Str("date") == "":
		return ktcErr("date", "is required")
	case len(r.List("content")) != 1:
		return ktcErr("content", "must hold one attachment")
	case r.Str("content.0.attachment.contentType") != "application/pdf":
		return ktcErr("content[0].attachment.contentType", "must be application/pdf")
	}
	author := false
	for _, a := range r.List("author") {
		if m, ok := a.(map[string]any); ok && m["reference"] == patientURL {
			author = true
		}
	}
	if !author {
		return ktcErr("author", "must include the bundle's Patient")
	}
	pdf, err := base64.StdEncoding.DecodeString(r.Str("content.0.attachment.data"))
	if err != nil || !bytes.HasPrefix(pdf, []byte("%PDF-")) {
		return ktcErr("content[0].attachment.data", "must be a base64 PDF")
	}
	return nil
}

// ktcErr is a rule of the profile that field breaks: a *share.FieldError
// wrapping ErrKTC, as the protocol's own field errors are.
func ktcErr(field, reason string) error {
	return &share.FieldError{Field: field, Reason: reason, Err: ErrKTC}
}
