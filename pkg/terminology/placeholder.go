package terminology

import "strings"

// nullFlavors are the codes of HL7 v3 NullFlavor: "no information",
// "unknown", "not applicable", "asked but unknown", ...
var nullFlavors = map[string]bool{
	"NI": true, "INV": true, "DER": true, "OTH": true, "NINF": true, "PINF": true,
	"UNC": true, "MSK": true, "NA": true, "UNK": true, "ASKU": true, "NAV": true,
	"NASK": true, "NAVU": true, "QS": true, "TRC": true, "NP": true,
}

// IsPlaceholder reports whether a coding stands for "no code": an empty
// code; any code of the NullFlavor or data-absent-reason systems; "UNK",
// "UNKNOWN", "Unknown" (any case) in any system; and the other null flavor
// codes ("NI", "NA", "ASKU", ...) where the system is empty or a standard
// terminology whose codes never look like that (LOINC, SNOMED CT, RxNorm,
// CVX, UCUM, ICD, NDC). In a local code system "NA" may be a real code
// (sodium), so there it is kept.
func IsPlaceholder(system, code string) bool {
	code = strings.TrimSpace(code)
	if code == "" {
		return true
	}
	switch system {
	case NullFlavor, DataAbsentReason, "2.16.840.1.113883.5.1008", "urn:oid:2.16.840.1.113883.5.1008":
		return true
	}
	if strings.EqualFold(code, "UNK") || strings.EqualFold(code, "unknown") {
		return true
	}
	if len(code) > 4 || !nullFlavors[strings.ToUpper(code)] {
		return false // most codes: decided without the name table
	}
	switch System(system) {
	case "", LOINC, SNOMED, RxNorm, CVX, UCUMSystem,
		"http://hl7.org/fhir/sid/icd-10", "http://hl7.org/fhir/sid/icd-10-cm",
		"http://hl7.org/fhir/sid/icd-9-cm", "http://hl7.org/fhir/sid/ndc":
		return true
	}
	return false
}
