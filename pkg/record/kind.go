package record

import (
	"strings"
	"time"
)

// Code systems used by the builders and by Kind.
const (
	LOINC           = "http://loinc.org"
	SNOMED          = "http://snomed.info/sct"
	UCUM            = "http://unitsofmeasure.org"
	RxNorm          = "http://www.nlm.nih.gov/research/umls/rxnorm"
	CVX             = "http://hl7.org/fhir/sid/cvx"
	ObsCategory     = "http://terminology.hl7.org/CodeSystem/observation-category"
	ConditionCat    = "http://terminology.hl7.org/CodeSystem/condition-category"
	ConditionClin   = "http://terminology.hl7.org/CodeSystem/condition-clinical"
	AllergyClin     = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"
	SymptomCategory = "418799008" // SNOMED CT: Finding reported by subject or history provider
	PatientNoteType = "51855-5"   // LOINC: Patient Note
)

// Kinds are the record types the CLI lists by ("phr list medication").
// Resource types without a kind of their own use their resourceType in
// lower case ("patient", "careplan", ...).
const (
	KindMedication   = "medication"
	KindDose         = "dose"
	KindSymptom      = "symptom"
	KindVital        = "vital"
	KindLab          = "lab"
	KindObservation  = "observation"
	KindCondition    = "condition"
	KindAllergy      = "allergy"
	KindImmunization = "immunization"
	KindProcedure    = "procedure"
	KindEncounter    = "encounter"
	KindDocument     = "document"
	KindNote         = "note"
	KindPatient      = "patient"
)

// Kinds lists the named kinds, in the order the CLI documents them.
var Kinds = []string{
	KindMedication, KindDose, KindSymptom, KindVital, KindCondition, KindAllergy,
	KindImmunization, KindLab, KindObservation, KindProcedure, KindEncounter,
	KindDocument, KindNote, KindPatient,
}

// NormalizeKind maps what a user may type ("meds", "vitals", "Observation")
// to a kind. Unknown words are lower-cased and returned as is, so that any
// resourceType works ("careplan").
func NormalizeKind(s string) string {
	k := strings.ToLower(strings.TrimSpace(s))
	switch k {
	case "med", "meds", "medications", "medicationstatement", "medicationrequest", "medication-statement":
		return KindMedication
	case "doses", "medicationadministration":
		return KindDose
	case "symptoms":
		return KindSymptom
	case "vitals", "vital-signs", "vitalsigns":
		return KindVital
	case "labs", "result", "results", "diagnosticreport", "laboratory":
		return KindLab
	case "observations":
		return KindObservation
	case "conditions", "problem", "problems":
		return KindCondition
	case "allergies", "allergyintolerance":
		return KindAllergy
	case "immunizations", "vaccine", "vaccines", "vaccination", "vaccinations":
		return KindImmunization
	case "procedures":
		return KindProcedure
	case "encounters", "visit", "visits":
		return KindEncounter
	case "documents", "documentreference", "doc", "docs":
		return KindDocument
	case "notes":
		return KindNote
	}
	return k
}

// KindOf classifies a resource.
func KindOf(r Resource) string {
	switch rt := r.Type(); rt {
	case "MedicationStatement", "MedicationRequest", "Medication", "MedicationDispense":
		return KindMedication
	case "MedicationAdministration":
		return KindDose
	case "Observation":
		switch {
		case r.HasCoding("category", SNOMED, SymptomCategory):
			return KindSymptom
		case r.HasCoding("category", ObsCategory, "vital-signs"):
			return KindVital
		case r.HasCoding("category", ObsCategory, "laboratory"):
			return KindLab
		}
		return KindObservation
	case "DiagnosticReport":
		return KindLab
	case "Condition":
		return KindCondition
	case "AllergyIntolerance":
		return KindAllergy
	case "Immunization":
		return KindImmunization
	case "Procedure":
		return KindProcedure
	case "Encounter":
		return KindEncounter
	case "DocumentReference":
		if r.HasCoding("type", LOINC, PatientNoteType) {
			return KindNote
		}
		return KindDocument
	case "Patient":
		return KindPatient
	default:
		return strings.ToLower(rt)
	}
}

// datePaths lists, per resource type, where the clinically relevant date
// lives, most relevant first.
var datePaths = map[string][]string{
	"Observation":              {"effectiveDateTime", "effectivePeriod.start", "effectiveInstant", "effectiveTiming.event.0", "issued"},
	"DiagnosticReport":         {"effectiveDateTime", "effectivePeriod.start", "issued"},
	"Condition":                {"onsetDateTime", "onsetPeriod.start", "recordedDate", "abatementDateTime"},
	"MedicationStatement":      {"effectiveDateTime", "effectivePeriod.start", "dateAsserted"},
	"MedicationRequest":        {"authoredOn", "dosageInstruction.timing.repeat.boundsPeriod.start"},
	"MedicationAdministration": {"effectiveDateTime", "effectivePeriod.start"},
	"MedicationDispense":       {"whenHandedOver", "whenPrepared"},
	"AllergyIntolerance":       {"onsetDateTime", "onsetPeriod.start", "recordedDate", "lastOccurrence"},
	"Immunization":             {"occurrenceDateTime", "recorded"},
	"Procedure":                {"performedDateTime", "performedPeriod.start"},
	"Encounter":                {"period.start"},
	"DocumentReference":        {"date", "content.0.attachment.creation", "context.period.start"}, // its own date, not the start of what it covers
	"Composition":              {"date"},
	"CarePlan":                 {"period.start", "created"},
	"CareTeam":                 {"period.start"},
	"Claim":                    {"billablePeriod.start", "created"},
	"ExplanationOfBenefit":     {"billablePeriod.start", "created"},
	"ImagingStudy":             {"started"},
	"Goal":                     {"startDate", "statusDate"},
	"ServiceRequest":           {"occurrenceDateTime", "authoredOn"},
	"Coverage":                 {"period.start"},
	"Device":                   {"manufactureDate"},
	"Provenance":               {"recorded"},
}

// datePathsOf returns where r's clinical date may be, most relevant first.
func datePathsOf(r Resource) []string {
	paths, ok := datePaths[r.Type()]
	if !ok {
		if r.Type() == "Patient" || r.Type() == "Organization" || r.Type() == "Practitioner" || r.Type() == "Location" {
			return nil
		}
		paths = genericDatePaths
	}
	return paths
}

// genericDatePaths are tried for types without an entry in datePaths.
var genericDatePaths = []string{
	"effectiveDateTime", "effectivePeriod.start", "occurrenceDateTime", "performedDateTime",
	"period.start", "authoredOn", "date", "created", "recorded", "issued",
}

// CheckDates refuses a resource whose date fields (those the record is
// dated and listed by) hold something that is not a FHIR date, dateTime
// or instant: for resources people and apps write, where a value that
// does not parse would leave the record silently undated. Imported
// documents are kept as their sources wrote them.
func CheckDates(r Resource) error {
	for _, p := range datePathsOf(r) {
		if s := r.Str(p); s != "" {
			if _, err := ParseDate(s); err != nil {
				return &InputError{Field: p, Msg: "is not a FHIR date (YYYY, YYYY-MM, YYYY-MM-DD or a dateTime such as 2024-05-01T10:30:00Z)"}
			}
		}
	}
	return nil
}

// DateOf returns the clinically relevant date of a resource, or the zero
// time if it has none (a Patient, an Organization).
func DateOf(r Resource) time.Time {
	for _, p := range datePathsOf(r) {
		if s := r.Str(p); s != "" {
			if t, err := ParseDate(s); err == nil {
				return t
			}
		}
	}
	return time.Time{}
}
