package pdfdoc

import (
	"encoding/json"
	"github.com/phr-project/phr/pkg/record"
	"math"
	"strconv"
	"strings"
)

// unitText writes a UCUM code or a source's unit label for people, from
// phr's one unit table (record.UnitText).
func unitText(u string) string { return record.UnitText(u) }

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
