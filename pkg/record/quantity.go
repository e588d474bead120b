package record

import (
	"maps"
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

// unitSymbols maps UCUM codes to the units people write: UCUM codes are
// never shown to people. Vital signs have their own symbols in the
// vital-sign table (heart rate in /min shows as bpm).
// It is the one such table: the viewer reads it from the JSON the viewer
// package generates (UnitSymbols), and the PDF rendering through UnitText.
var unitSymbols = map[string]string{
	"mm[Hg]": "mmHg", "cm[H2O]": "cmH2O", "[in_i'Hg]": "inHg",
	"[lb_av]": "lb", "[oz_av]": "oz", "[stone_av]": "st", "ug": "µg",
	"Cel": "°C", "[degF]": "°F",
	"/min": "/min", "{beats}/min": "beats/min", "{breaths}/min": "breaths/min",
	"[in_i]": "in", "[ft_i]": "ft", "[yd_i]": "yd", "[mi_i]": "mi", "[mi_i]/h": "mph", "um": "µm",
	"uL": "µL", "[foz_us]": "fl oz", "[foz_br]": "fl oz (imp)", "[cup_us]": "cup", "[drp]": "drop",
	"[iU]": "IU", "[IU]": "IU", "[iU]/L": "IU/L", "[IU]/L": "IU/L", "[iU]/mL": "IU/mL", "m[iU]/L": "mIU/L", "m[IU]/mL": "mIU/mL", "u[iU]/mL": "µIU/mL",
	"10*3/uL": "×10³/µL", "10*6/uL": "×10⁶/µL", "10*3/mm3": "×10³/mm³", "10*9/L": "×10⁹/L", "10*12/L": "×10¹²/L",
	"umol": "µmol", "umol/L": "µmol/L", "ug/dL": "µg/dL", "ug/L": "µg/L", "ug/mL": "µg/mL", "uU/mL": "µU/mL",
	"meq/L": "mEq/L", "kg/m2": "kg/m²", "m2": "m²", "[ppm]": "ppm",
	"mL/(kg.min)": "mL/(kg·min)", "kcal/(h.kg)": "kcal/(h·kg)", "mL/min/{1.73_m2}": "mL/min/1.73 m²",
	"dB[SPL]": "dB", "[pH]": "pH", "{score}": "",
}

// UnitSymbols returns a copy of the table of units as people write them,
// by UCUM code (see UnitText for the rules around it).
func UnitSymbols() map[string]string { return maps.Clone(unitSymbols) }

// UnitText writes a UCUM code or a source's unit label for people: the
// table's symbol ("mm[Hg]" -> "mmHg"); nothing for "1"; an annotation
// alone is a count of what it names ("{tablet}" -> "tablet"; "{score}"
// -> ""); annotations in other units are unwrapped ("{cells}/uL" ->
// "cells/uL"); anything else as written.
func UnitText(u string) string {
	s := strings.TrimSpace(u)
	if s == "" || s == "1" {
		return ""
	}
	if sym, ok := UnitSymbol(s); ok {
		return sym
	}
	if !strings.Contains(s, "{") {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if r != '{' && r != '}' {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// UnitSymbol returns the unit people write for a UCUM code ("mm[Hg]" ->
// "mmHg", "Cel" -> "°C", "{tablet}" -> "tablet"), and whether it differs
// from the code; codes people read as they are ("mg/dL", "%") return false.
func UnitSymbol(code string) (string, bool) {
	if s, ok := unitSymbols[code]; ok {
		return s, true
	}
	// An annotation alone ("{tablet}", "{steps}") is a count of what it
	// names.
	if len(code) > 2 && code[0] == '{' && code[len(code)-1] == '}' && !strings.ContainsAny(code[1:len(code)-1], "{}") {
		return code[1 : len(code)-1], true
	}
	return code, false
}
