package record

import (
	"strconv"
	"strings"
)

// Quantity is an amount with a UCUM unit.
type Quantity struct {
	Value float64
	Unit  string // as shown to people
	Code  string // UCUM code; empty when the unit has none
}

func (q Quantity) fhir() map[string]any {
	m := map[string]any{"value": q.Value}
	if q.Unit != "" {
		m["unit"] = q.Unit
	}
	if q.Code != "" {
		m["system"] = UCUM
		m["code"] = q.Code
	}
	return m
}

// doseUnits maps what patients type to UCUM codes.
var doseUnits = map[string]string{
	"mg": "mg", "g": "g", "mcg": "ug", "µg": "ug", "ug": "ug", "ng": "ng",
	"ml": "mL", "l": "L", "iu": "[iU]", "u": "U", "unit": "U", "units": "U",
	"tablet": "{tablet}", "tablets": "{tablet}", "tab": "{tablet}", "tabs": "{tablet}",
	"capsule": "{capsule}", "capsules": "{capsule}", "cap": "{capsule}", "caps": "{capsule}",
	"puff": "{puff}", "puffs": "{puff}", "drop": "[drp]", "drops": "[drp]",
	"patch": "{patch}", "spray": "{spray}", "sprays": "{spray}", "mmol": "mmol", "meq": "meq",
	"%": "%",
}

// ParseQuantity parses "500 mg", "2 tablets", "10mL", "1". Units phr does
// not know are kept as text without a UCUM code; a missing or negative
// number is an error.
func ParseQuantity(s string) (Quantity, error) {
	s = strings.TrimSpace(s)
	i := 0
	for i < len(s) && (s[i] >= '0' && s[i] <= '9' || s[i] == '.') {
		i++
	}
	if i == 0 {
		return Quantity{}, &InputError{Field: "quantity", Msg: "must start with a number, e.g. 500 mg"}
	}
	n, err := strconv.ParseFloat(s[:i], 64)
	if err != nil || n <= 0 || n > 1e6 {
		return Quantity{}, &InputError{Field: "quantity", Msg: "must be a positive number, e.g. 500 mg"}
	}
	unit := strings.TrimSpace(s[i:])
	q := Quantity{Value: n, Unit: unit}
	if code, ok := doseUnits[strings.ToLower(unit)]; ok {
		q.Code = code
	}
	return q, nil
}
