package record

import (
	"encoding/json"
	"strconv"
)

// The FHIR R4 datatypes as the importers write them (with Coding): the
// struct field order fixes the key order of the JSON, so the same input
// always gives the same bytes.

// CodeableConcept is a FHIR CodeableConcept.
type CodeableConcept struct {
	Coding []Coding `json:"coding,omitempty"`
	Text   string   `json:"text,omitempty"`
}

// DecimalQuantity is a FHIR Quantity whose value keeps the decimal as the
// source wrote it (see IsDecimal).
type DecimalQuantity struct {
	Value      json.Number `json:"value"`
	Comparator string      `json:"comparator,omitempty"`
	Unit       string      `json:"unit,omitempty"`
	System     string      `json:"system,omitempty"`
	Code       string      `json:"code,omitempty"`
}

// Period is a FHIR Period.
type Period struct {
	Start string `json:"start,omitempty"`
	End   string `json:"end,omitempty"`
}

// Annotation is a FHIR Annotation (a note) with its text only.
type Annotation struct {
	Text string `json:"text"`
}

// IsDecimal reports whether s is a number in JSON's grammar (and so a FHIR
// decimal) of at most 64 characters: a value an importer keeps as written,
// with its precision, instead of a float's round trip.
func IsDecimal(s string) bool {
	// digits returns where the run of digits from i ends.
	digits := func(i int) int {
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		return i
	}
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case i < len(s) && s[i] >= '1' && s[i] <= '9':
		i = digits(i)
	default:
		return false
	}
	if i < len(s) && s[i] == '.' {
		j := digits(i + 1)
		if j == i+1 {
			return false
		}
		i = j
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		j := digits(i)
		if j == i {
			return false
		}
		i = j
	}
	return i == len(s) && len(s) <= 64
}

// FormatDecimal writes f as a decimal without an exponent, in the fewest
// digits that read back as f; zero (also -0) is "0".
func FormatDecimal(f float64) string {
	if f == 0 {
		return "0"
	}
	return strconv.FormatFloat(f, 'f', -1, 64)
}
