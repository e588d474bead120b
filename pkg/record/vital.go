package record

import (
	"slices"
	"strconv"
	"strings"
)

// LOINC codes of the vital signs phr records.
const (
	LoincBP          = "85354-9" // Blood pressure panel with all children optional
	LoincSystolic    = "8480-6"
	LoincDiastolic   = "8462-4"
	LoincHeartRate   = "8867-4"
	LoincWeight      = "29463-7"
	LoincTemperature = "8310-5"
	LoincGlucoseMass = "2339-0"  // Glucose [Mass/volume] in Blood
	LoincGlucoseMol  = "15074-8" // Glucose [Moles/volume] in Blood
	LoincSpO2        = "59408-5" // Oxygen saturation in Arterial blood by Pulse oximetry
	LoincSpO2Base    = "2708-6"  // Oxygen saturation in Arterial blood
)

// Vital kinds accepted by ParseVital.
var VitalKinds = []string{"bp", "hr", "weight", "temp", "glucose", "spo2"}

// Vital is a parsed vital-sign reading.
type Vital struct {
	Kind    string  // one of VitalKinds
	Value   float64 // the reading (systolic for bp)
	Value2  float64 // diastolic for bp
	Unit    string  // UCUM code: mm[Hg], /min, kg, [lb_av], Cel, [degF], mg/dL, mmol/L, %
	Display string  // unit as shown to people
	Text    string  // the reading as shown to people, "120/80 mmHg"
}

type unitSpec struct {
	ucum, display string
	min, max      float64
}

// vitalUnits lists, per kind, the units a patient may type (lower case,
// without spaces) and their plausible ranges.
var vitalUnits = map[string]map[string]unitSpec{
	"hr": {
		"": {"/min", "bpm", 20, 300}, "bpm": {"/min", "bpm", 20, 300}, "/min": {"/min", "bpm", 20, 300},
	},
	"weight": {
		"kg": {"kg", "kg", 0.2, 700}, "kgs": {"kg", "kg", 0.2, 700},
		"lb": {"[lb_av]", "lb", 0.5, 1500}, "lbs": {"[lb_av]", "lb", 0.5, 1500},
	},
	"temp": {
		"c": {"Cel", "°C", 25, 45}, "°c": {"Cel", "°C", 25, 45},
		"f": {"[degF]", "°F", 77, 113}, "°f": {"[degF]", "°F", 77, 113},
	},
	"glucose": {
		"mmol/l": {"mmol/L", "mmol/L", 0.5, 60}, "mg/dl": {"mg/dL", "mg/dL", 10, 1100},
	},
	"spo2": {
		"": {"%", "%", 50, 100}, "%": {"%", "%", 50, 100},
	},
}

// ParseVital parses a reading such as ("bp", "120/80"), ("weight", "154lb"),
// ("temp", "37.2C"), ("glucose", "5.4mmol/L"), ("spo2", "97%"). Units are
// required where the number alone is ambiguous, and values outside
// physiologically plausible ranges are refused.
func ParseVital(kind, value string) (Vital, error) {
	kind = strings.ToLower(strings.TrimSpace(kind))
	v := strings.ToLower(strings.ReplaceAll(strings.TrimSpace(value), " ", ""))
	if v == "" {
		return Vital{}, inputErr("value", "empty reading")
	}
	if kind == "bp" {
		return parseBP(v)
	}
	units, ok := vitalUnits[kind]
	if !ok {
		return Vital{}, inputErr("kind", "unknown vital %q (use one of %s)", kind, strings.Join(VitalKinds, ", "))
	}
	i := 0
	for i < len(v) && (v[i] >= '0' && v[i] <= '9' || v[i] == '.') {
		i++
	}
	if i == 0 {
		return Vital{}, inputErr("value", "%s reading must start with a number", kind)
	}
	n, err := strconv.ParseFloat(v[:i], 64)
	if err != nil {
		return Vital{}, inputErr("value", "%s reading is not a number", kind)
	}
	u, ok := units[v[i:]]
	if !ok {
		var names []string
		for k := range units {
			if k != "" {
				names = append(names, k)
			}
		}
		if v[i:] == "" {
			return Vital{}, inputErr("value", "%s needs a unit (%s)", kind, strings.Join(sorted(names), ", "))
		}
		return Vital{}, inputErr("value", "unknown %s unit %q (use %s)", kind, v[i:], strings.Join(sorted(names), ", "))
	}
	if n < u.min || n > u.max {
		return Vital{}, inputErr("value", "%s of %s %s is outside the plausible range %s-%s", kind, fmtNum(n), u.display, fmtNum(u.min), fmtNum(u.max))
	}
	return Vital{Kind: kind, Value: n, Unit: u.ucum, Display: u.display, Text: fmtNum(n) + " " + u.display}, nil
}

func parseBP(v string) (Vital, error) {
	v = strings.TrimSuffix(strings.TrimSuffix(v, "mmhg"), "mm[hg]")
	s, d, ok := strings.Cut(v, "/")
	if !ok {
		return Vital{}, inputErr("value", "blood pressure must be systolic/diastolic, e.g. 120/80")
	}
	sys, err1 := strconv.ParseFloat(s, 64)
	dia, err2 := strconv.ParseFloat(d, 64)
	if err1 != nil || err2 != nil {
		return Vital{}, inputErr("value", "blood pressure must be systolic/diastolic, e.g. 120/80")
	}
	if sys < 40 || sys > 300 || dia < 20 || dia > 200 || dia >= sys {
		return Vital{}, inputErr("value", "blood pressure %s/%s is not plausible (systolic 40-300, diastolic 20-200, systolic above diastolic)", fmtNum(sys), fmtNum(dia))
	}
	return Vital{Kind: "bp", Value: sys, Value2: dia, Unit: "mm[Hg]", Display: "mmHg", Text: fmtNum(sys) + "/" + fmtNum(dia) + " mmHg"}, nil
}

func fmtNum(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

func sorted(s []string) []string { slices.Sort(s); return s }
