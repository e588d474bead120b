package pdfdoc

import (
	"encoding/json"
	"math"
	"regexp"
	"strconv"
	"strings"
)

// unitWritten maps UCUM codes to the way people write them. It holds the
// same entries as the viewer's units.mjs (UNIT_TEXT); a unit it does not
// know is shown as its source wrote it.
var unitWritten = map[string]string{
	"mm[Hg]": "mmHg", "Cel": "°C", "[degF]": "°F", "[lb_av]": "lb", "[oz_av]": "oz",
	"[in_i]": "in", "[ft_i]": "ft", "{beats}/min": "beats/min", "{breaths}/min": "breaths/min",
	"kg/m2": "kg/m²", "m2": "m²", "ug": "µg", "ug/L": "µg/L", "ug/dL": "µg/dL", "ug/mL": "µg/mL",
	"uL": "µL", "umol": "µmol", "umol/L": "µmol/L", "meq/L": "mEq/L",
	"[iU]": "IU", "[IU]": "IU", "[iU]/L": "IU/L", "[IU]/L": "IU/L", "[iU]/mL": "IU/mL",
	"10*3/uL": "×10³/µL", "10*6/uL": "×10⁶/µL", "10*9/L": "×10⁹/L", "10*12/L": "×10¹²/L",
	"10*3/mm3": "×10³/mm³", "[pH]": "pH", "[ppm]": "ppm",
}

var annotation = regexp.MustCompile(`\{([^{}]*)\}`)

// unitText writes a UCUM code or a source's unit label for people: a unit
// that is only an annotation ("{score}") or "1" is dropped, annotations in
// others are unwrapped ("{cells}/uL" → "cells/uL").
func unitText(u string) string {
	s := strings.TrimSpace(u)
	if s == "" || s == "1" {
		return ""
	}
	if w, ok := unitWritten[s]; ok {
		return w
	}
	if strings.HasPrefix(s, "{") && strings.HasSuffix(s, "}") && strings.Count(s, "{") == 1 {
		return ""
	}
	return annotation.ReplaceAllString(s, "$1")
}

// quantityUnit is the unit of a FHIR Quantity as people write it: its
// label, else its code.
func quantityUnit(q map[string]any) string {
	if u, _ := q["unit"].(string); strings.TrimSpace(u) != "" {
		return unitText(u)
	}
	c, _ := q["code"].(string)
	return unitText(c)
}

// numberText writes a FHIR decimal as written when it has at most three
// decimals; more is noise from a unit conversion (120.00000000000001),
// rounded to decimals when decimals >= 0, else to four significant
// digits.
func numberText(v any, decimals int) string {
	var s string
	switch n := v.(type) {
	case json.Number:
		s = n.String()
	case float64:
		s = strconv.FormatFloat(n, 'f', -1, 64)
	case string:
		s = n
	default:
		return ""
	}
	dot := strings.IndexByte(s, '.')
	if dot < 0 || len(s)-dot-1 <= 3 || strings.ContainsAny(s, "eE") {
		return s
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return s
	}
	if decimals >= 0 {
		return strconv.FormatFloat(f, 'f', decimals, 64)
	}
	if f == 0 {
		return "0"
	}
	mag := int(math.Floor(math.Log10(math.Abs(f))))
	return strconv.FormatFloat(f, 'f', max(0, 3-mag), 64)
}

// numberValue reads a FHIR decimal.
func numberValue(v any) (float64, bool) {
	switch n := v.(type) {
	case json.Number:
		f, err := n.Float64()
		return f, err == nil
	case float64:
		return n, true
	}
	return 0, false
}

// quantityText is a Quantity as people write it: "<5.2 mmol/L".
func quantityText(v any, decimals int) string {
	q, ok := v.(map[string]any)
	if !ok {
		return ""
	}
	n := numberText(q["value"], decimals)
	if n == "" {
		return ""
	}
	if c, _ := q["comparator"].(string); c != "" {
		n = c + n
	}
	if u := quantityUnit(q); u != "" {
		if u == "%" {
			return n + u
		}
		return n + " " + u
	}
	return n
}
