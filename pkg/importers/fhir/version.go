package fhir

import "strings"

// removedTypes are resource types of FHIR DSTU2 or STU3 that R4 no longer
// has (R4 renamed or replaced them).
var removedTypes = map[string]bool{
	// DSTU2
	"Conformance": true, "MedicationOrder": true, "DiagnosticOrder": true,
	"DeviceUseRequest": true, "Order": true, "OrderResponse": true,
	// STU3
	"ProcedureRequest": true, "ReferralRequest": true, "ProcessRequest": true,
	"ProcessResponse": true, "EligibilityRequest": true, "EligibilityResponse": true,
	"DataElement": true, "ServiceDefinition": true, "BodySite": true,
	"ImagingManifest": true, "DeviceComponent": true, "Sequence": true,
}

// stu3Elements are elements that a resource type had in STU3 (or DSTU2)
// and no longer has in R4: finding one marks the resource as pre-R4.
var stu3Elements = map[string][]string{
	"AllergyIntolerance":   {"assertedDate"},
	"Claim":                {"organization", "information"},
	"Condition":            {"assertedDate", "abatementBoolean"},
	"Coverage":             {"grouping"},
	"DiagnosticReport":     {"codedDiagnosis", "image"},
	"DocumentReference":    {"indexed", "created"},
	"ExplanationOfBenefit": {"organization", "information", "totalCost"},
	"Immunization":         {"notGiven", "date", "vaccinationProtocol"},
	"MedicationStatement":  {"taken"},
	"Observation":          {"comment"},
	"Patient":              {"animal"},
	"Procedure":            {"notDone"},
}

// preR4 returns why a resource looks like FHIR STU3 or DSTU2 rather than
// R4, or "" when nothing says so. It looks only at facts that R4 cannot
// have: types R4 removed, top-level elements R4 removed, a JSON shape R4
// changed, and a CapabilityStatement's fhirVersion. A resource with none
// of these (most Patients, for example) is read as R4; STU3 and R4 agree
// on most of their elements.
func preR4(info *resInfo) string {
	if removedTypes[info.typ] {
		return "resource type " + info.typ + " is not in R4"
	}
	if info.typ == "CapabilityStatement" && info.fhirVersion != "" && !strings.HasPrefix(info.fhirVersion, "4.") {
		v := info.fhirVersion
		if len(v) > 12 || strings.Trim(v, "0123456789.-abcdefghijklmnopqrstuvwxyz") != "" {
			return "fhirVersion is not 4.x"
		}
		return "fhirVersion " + v
	}
	for _, el := range stu3Elements[info.typ] {
		if _, ok := info.has(el); ok {
			return info.typ + "." + el + " is an STU3 element"
		}
	}
	if info.typ == "ExplanationOfBenefit" {
		if k, ok := info.has("insurance"); ok && k == '{' {
			return "ExplanationOfBenefit.insurance is an object, as in STU3"
		}
	}
	return ""
}
