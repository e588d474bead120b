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
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	if i >= len(s) {
		return false
	}
	if s[i] == '0' {
		i++
	} else if s[i] >= '1' && s[i] <= '9' {
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
	} else {
		return false
	}
	if i < len(s) && s[i] == '.' {
		i++
		j := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == j {
			return false
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		j := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == j {
			return false
		}
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
