package applehealth

import (
	"strings"
	"time"
	"unicode"

	"github.com/phr-project/phr/pkg/record"
)

// Prefixes of HealthKit identifiers.
const (
	quantityPrefix    = "HKQuantityTypeIdentifier"
	categoryPrefix    = "HKCategoryTypeIdentifier"
	correlationPrefix = "HKCorrelationTypeIdentifier"
	workoutPrefix     = "HKWorkoutActivityType"
	categoryValuePfx  = "HKCategoryValue"
)

// Identifiers with a mapping of their own.
const (
	hkHeartRate     = quantityPrefix + "HeartRate"
	hkSystolic      = quantityPrefix + "BloodPressureSystolic"
	hkDiastolic     = quantityPrefix + "BloodPressureDiastolic"
	hkBloodGlucose  = quantityPrefix + "BloodGlucose"
	hkSleep         = categoryPrefix + "SleepAnalysis"
	hkBloodPressure = correlationPrefix + "BloodPressure"
	hkActiveEnergy  = quantityPrefix + "ActiveEnergyBurned"
)

// aggregation says how daily aggregation combines a type's samples.
type aggregation int

const (
	aggNone  aggregation = iota // every sample stays a record
	aggSum                      // cumulative: one daily total
	aggStats                    // discrete: daily mean, minimum and maximum
)

// typeSpec is how one HealthKit quantity type maps to an Observation.
type typeSpec struct {
	loinc, loincDisplay string // LOINC code, if there is one
	extra               []record.Coding
	daily, dailyDisplay string // LOINC code for the daily aggregate, if different
	text                string // code.text; the humanized identifier when empty
	category            string // observation-category code
	unit, ucum          string // unit display and UCUM code overriding the export's
	agg                 aggregation
}

// quantityTypes lists the quantity types with a LOINC code, a category or
// a daily aggregation. Other quantity types are mapped generically.
var quantityTypes = map[string]typeSpec{
	hkHeartRate:                                 vital("hr", true, aggStats),
	quantityPrefix + "RestingHeartRate":         {loinc: "40443-4", loincDisplay: "Heart rate --resting", text: "Resting heart rate", category: "vital-signs", unit: "bpm", ucum: "/min"},
	quantityPrefix + "WalkingHeartRateAverage":  {text: "Walking heart rate average", category: "vital-signs", unit: "bpm", ucum: "/min"},
	quantityPrefix + "HeartRateVariabilitySDNN": {loinc: "80404-7", loincDisplay: "R-R interval.standard deviation (Heart rate variability)", text: "Heart rate variability (SDNN)", category: "vital-signs", agg: aggStats},
	quantityPrefix + "BodyMass":                 vital("weight", false, aggNone),
	quantityPrefix + "Height":                   vital("height", false, aggNone),
	quantityPrefix + "BodyMassIndex":            vital("bmi", true, aggNone),
	hkSystolic:                                  vitalPart("bp", 0),
	hkDiastolic:                                 vitalPart("bp", 1),
	hkBloodGlucose:                              glucose(), // code chosen by unit
	quantityPrefix + "OxygenSaturation":         vital("spo2", false, aggStats),
	quantityPrefix + "BodyTemperature":          vital("temp", false, aggNone),
	quantityPrefix + "RespiratoryRate":          vital("rr", true, aggStats),
	quantityPrefix + "BodyFatPercentage":        {loinc: "41982-0", loincDisplay: "Percentage of body fat Measured", text: "Body fat percentage", category: "vital-signs"},
	quantityPrefix + "WaistCircumference":       {loinc: "8280-0", loincDisplay: "Waist Circumference at umbilicus by Tape measure", text: "Waist circumference", category: "vital-signs"},
	quantityPrefix + "StepCount": {loinc: "55423-8", loincDisplay: "Number of steps in unspecified time Pedometer",
		daily: "41950-7", dailyDisplay: "Number of steps in 24 hour Measured",
		text: "Steps", category: "activity", unit: "steps", ucum: "{steps}", agg: aggSum},
	hkActiveEnergy:                                    {loinc: "41981-2", loincDisplay: "Calories burned", text: "Active energy burned", category: "activity", agg: aggSum},
	quantityPrefix + "BasalEnergyBurned":              {text: "Resting energy burned", category: "activity", agg: aggSum},
	quantityPrefix + "DistanceWalkingRunning":         {text: "Walking and running distance", category: "activity", agg: aggSum},
	quantityPrefix + "DistanceCycling":                {text: "Cycling distance", category: "activity", agg: aggSum},
	quantityPrefix + "DistanceSwimming":               {text: "Swimming distance", category: "activity", agg: aggSum},
	quantityPrefix + "DistanceWheelchair":             {text: "Wheelchair distance", category: "activity", agg: aggSum},
	quantityPrefix + "DistanceDownhillSnowSports":     {text: "Downhill snow sports distance", category: "activity", agg: aggSum},
	quantityPrefix + "FlightsClimbed":                 {text: "Flights climbed", category: "activity", unit: "flights", ucum: "{flights}", agg: aggSum},
	quantityPrefix + "PushCount":                      {text: "Wheelchair pushes", category: "activity", unit: "pushes", ucum: "{pushes}", agg: aggSum},
	quantityPrefix + "SwimmingStrokeCount":            {text: "Swimming strokes", category: "activity", unit: "strokes", ucum: "{strokes}", agg: aggSum},
	quantityPrefix + "NikeFuel":                       {text: "NikeFuel", category: "activity", agg: aggSum},
	quantityPrefix + "AppleExerciseTime":              {text: "Exercise time", category: "activity", agg: aggSum},
	quantityPrefix + "AppleStandTime":                 {text: "Stand time", category: "activity", agg: aggSum},
	quantityPrefix + "AppleMoveTime":                  {text: "Move time", category: "activity", agg: aggSum},
	quantityPrefix + "TimeInDaylight":                 {text: "Time in daylight", category: "activity", agg: aggSum},
	quantityPrefix + "PhysicalEffort":                 {text: "Physical effort", category: "activity", agg: aggStats},
	quantityPrefix + "WalkingSpeed":                   {text: "Walking speed", category: "activity", agg: aggStats},
	quantityPrefix + "WalkingStepLength":              {text: "Walking step length", category: "activity", agg: aggStats},
	quantityPrefix + "WalkingAsymmetryPercentage":     {text: "Walking asymmetry", category: "activity", agg: aggStats},
	quantityPrefix + "WalkingDoubleSupportPercentage": {text: "Walking double support time", category: "activity", agg: aggStats},
	quantityPrefix + "StairAscentSpeed":               {text: "Stair ascent speed", category: "activity", agg: aggStats},
	quantityPrefix + "StairDescentSpeed":              {text: "Stair descent speed", category: "activity", agg: aggStats},
	quantityPrefix + "RunningSpeed":                   {text: "Running speed", category: "activity", agg: aggStats},
	quantityPrefix + "RunningPower":                   {text: "Running power", category: "activity", agg: aggStats},
	quantityPrefix + "RunningStrideLength":            {text: "Running stride length", category: "activity", agg: aggStats},
	quantityPrefix + "RunningVerticalOscillation":     {text: "Running vertical oscillation", category: "activity", agg: aggStats},
	quantityPrefix + "RunningGroundContactTime":       {text: "Running ground contact time", category: "activity", agg: aggStats},
	quantityPrefix + "EnvironmentalAudioExposure":     {text: "Environmental sound level", agg: aggStats},
	quantityPrefix + "HeadphoneAudioExposure":         {text: "Headphone audio level", agg: aggStats},
	quantityPrefix + "VO2Max":                         {text: "Cardio fitness (VO2 max)", category: "activity"},
}

// vital maps a HealthKit type that is a vital sign of record's vital-sign
// table: its LOINC codes and name come from there, and so, with
// unitFromTable, does its unit (HealthKit writes count/min and count for
// them). Other vitals keep the unit of the export (kg or lb).
func vital(kind string, unitFromTable bool, agg aggregation) typeSpec {
	vs := mustVital(kind)
	spec := typeSpec{loinc: vs.Codes[0].Code, loincDisplay: vs.Codes[0].Display, text: vs.Name, category: "vital-signs", agg: agg}
	for _, c := range vs.Codes[1:] {
		spec.extra = append(spec.extra, record.Coding(c))
	}
	if unitFromTable {
		spec.unit, spec.ucum = vs.Units[0].Symbol, vs.Units[0].UCUM
	}
	return spec
}

// vitalPart maps a HealthKit type that is one component of a panel of the
// vital-sign table (systolic pressure of blood pressure).
func vitalPart(kind string, i int) typeSpec {
	vs := mustVital(kind)
	c := vs.Components[i]
	return typeSpec{loinc: c.Code.Code, loincDisplay: c.Code.Display, text: c.Name, category: "vital-signs",
		unit: vs.Units[0].Symbol, ucum: vs.Units[0].UCUM}
}

// glucose maps blood glucose, whose LOINC code depends on the unit
// (glucoseCode).
func glucose() typeSpec {
	vs := mustVital("glucose")
	return typeSpec{text: vs.Name, category: "vital-signs"}
}

func mustVital(kind string) *record.VitalSign {
	vs, ok := record.LookupVital(kind)
	if !ok {
		panic("applehealth: no vital " + kind + " in record's table")
	}
	return vs
}

// glucoseCode picks the blood glucose LOINC code by UCUM unit, from the
// vital-sign table; "" for a unit it does not list.
func glucoseCode(ucum string) (code, display string) {
	codes, ok := mustVital("glucose").CodesFor(ucum)
	if !ok {
		return "", ""
	}
	return codes[0].Code, codes[0].Display
}

// unitSpec is a UCUM code and the unit as shown to people.
type unitSpec struct{ display, ucum string }

// units maps the unit strings of HealthKit exports to UCUM.
var units = map[string]unitSpec{
	"count": {"count", "{count}"}, "count/min": {"/min", "/min"}, "count/s": {"/s", "/s"},
	"%":  {"%", "%"},
	"kg": {"kg", "kg"}, "g": {"g", "g"}, "mg": {"mg", "mg"}, "mcg": {"µg", "ug"}, "ng": {"ng", "ng"},
	"lb": {"lb", "[lb_av]"}, "oz": {"oz", "[oz_av]"}, "st": {"st", "[stone_av]"},
	"km": {"km", "km"}, "m": {"m", "m"}, "cm": {"cm", "cm"}, "mm": {"mm", "mm"},
	"mi": {"mi", "[mi_i]"}, "ft": {"ft", "[ft_i]"}, "in": {"in", "[in_i]"}, "yd": {"yd", "[yd_i]"},
	"kcal": {"kcal", "kcal"}, "Cal": {"kcal", "kcal"}, "cal": {"cal", "cal"}, "kJ": {"kJ", "kJ"}, "J": {"J", "J"},
	"mg/dL": {"mg/dL", "mg/dL"}, "mmol/L": {"mmol/L", "mmol/L"}, "g/dL": {"g/dL", "g/dL"},
	"degC": {"°C", "Cel"}, "degF": {"°F", "[degF]"}, "K": {"K", "K"},
	"mmHg": {"mmHg", "mm[Hg]"}, "cmAq": {"cmH2O", "cm[H2O]"}, "inHg": {"inHg", "[in_i'Hg]"},
	"ms": {"ms", "ms"}, "s": {"s", "s"}, "min": {"min", "min"}, "hr": {"h", "h"}, "d": {"d", "d"},
	"mL": {"mL", "mL"}, "L": {"L", "L"}, "fl_oz_us": {"fl oz", "[foz_us]"}, "fl_oz_imp": {"fl oz (imp)", "[foz_br]"},
	"cup_us": {"cup", "[cup_us]"}, "L/min": {"L/min", "L/min"},
	"dBASPL": {"dB", "dB[SPL]"}, "dBSPL": {"dB", "dB[SPL]"},
	"mL/(kg*min)": {"mL/(kg·min)", "mL/(kg.min)"}, "mL/min·kg": {"mL/(kg·min)", "mL/(kg.min)"},
	"kcal/hr·kg": {"kcal/(h·kg)", "kcal/(h.kg)"}, "kcal/(kg*hr)": {"kcal/(h·kg)", "kcal/(h.kg)"},
	"m/s": {"m/s", "m/s"}, "km/hr": {"km/h", "km/h"}, "mi/hr": {"mph", "[mi_i]/h"},
	"IU": {"IU", "[iU]"}, "W": {"W", "W"}, "S": {"S", "S"}, "mcS": {"µS", "uS"}, "V": {"V", "V"}, "mV": {"mV", "mV"},
	"lx": {"lx", "lx"}, "Hz": {"Hz", "Hz"},
}

// ucumUnit maps an export unit. The molar-mass annotation of glucose
// ("mmol<180.1558800000541>/L") is dropped. ok is false for units without
// a UCUM equivalent here; they are kept as text.
func ucumUnit(u string) (unitSpec, bool) {
	if i := strings.IndexByte(u, '<'); i >= 0 {
		if j := strings.IndexByte(u[i:], '>'); j > 0 {
			u = u[:i] + u[i+j+1:]
		}
	}
	s, ok := units[u]
	return s, ok
}

// humanize turns a HealthKit identifier into words: "DietaryFatTotal" ->
// "Dietary fat total", "VO2Max" -> "VO2 max", "HeartRateVariabilitySDNN"
// -> "Heart rate variability SDNN".
func humanize(id string) string {
	for _, p := range []string{quantityPrefix, categoryPrefix, correlationPrefix, workoutPrefix, categoryValuePfx, "HKDataType"} {
		if s, ok := strings.CutPrefix(id, p); ok && s != "" {
			id = s
			break
		}
	}
	rs := []rune(id)
	var words []string
	start := 0
	for i := 1; i < len(rs); i++ {
		prev, cur := rs[i-1], rs[i]
		split := false
		switch {
		case unicode.IsLower(prev) && unicode.IsUpper(cur):
			split = true
		case unicode.IsDigit(prev) && unicode.IsUpper(cur):
			split = true
		case unicode.IsUpper(prev) && unicode.IsUpper(cur) && i+1 < len(rs) && unicode.IsLower(rs[i+1]):
			split = true
		}
		if split {
			words = append(words, string(rs[start:i]))
			start = i
		}
	}
	words = append(words, string(rs[start:]))
	for i, w := range words {
		if len(w) < 2 || strings.ToUpper(w) != w { // keep acronyms: SDNN, VO2, UV
			w = strings.ToLower(w)
		}
		if i == 0 && w != "" {
			r := []rune(w)
			r[0] = unicode.ToUpper(r[0])
			w = string(r)
		}
		words[i] = w
	}
	return strings.Join(words, " ")
}

func (p *parser) human(id string) string {
	if s, ok := p.names[id]; ok {
		return s
	}
	s := humanize(id)
	if len(p.names) < 4096 && len(id) <= 128 { // known identifiers are short
		p.names[id] = s
	}
	return s
}

// exportTimes are the layouts of dates in export.xml: the one HealthKit
// writes today ("2019-06-11 15:00:00 -0700"), the compact one of the
// exports of iOS 8 ("20150616071820-0700", as in export_cda.xml), and RFC
// 3339, which tools that rewrite exports use. Every one has the offset.
var exportTimes = []string{"2006-01-02 15:04:05 -0700", "20060102150405-0700", time.RFC3339}

// fhirTime converts an export date to RFC 3339 ("2019-06-11T15:00:00-07:00"),
// keeping the offset.
func fhirTime(s string) (string, time.Time, bool) {
	for _, l := range exportTimes {
		if t, err := time.Parse(l, s); err == nil {
			return t.Format(time.RFC3339), t, true
		}
	}
	return "", time.Time{}, false
}

// birthDate reads a date of birth as <Me> writes it: "1990-02-02", or
// "19900202" in the compact form of the oldest exports.
func birthDate(s string) (string, bool) {
	for _, l := range []string{"2006-01-02", "20060102"} {
		if t, err := time.Parse(l, s); err == nil {
			return t.Format("2006-01-02"), true
		}
	}
	return "", false
}

// sourceOf is the app or device that wrote an item: sourceName, or source
// in the exports of iOS 8.
func sourceOf(n *node) string {
	if s := n.attr("sourceName"); s != "" {
		return s
	}
	return n.attr("source")
}

// deviceText renders the export's device attribute
// ("<<HKDevice: 0x282a45810>, name:Apple Watch, manufacturer:Apple,
// model:Watch, hardware:Watch2,4, software:4.3.1>") without the object
// address, which changes from one export to the next.
func deviceText(sourceName, dev string) string {
	name := strings.TrimSpace(sourceName)
	if len(name) > 200 {
		name = name[:200]
	}
	var parts []string
	if dev != "" {
		d := strings.TrimSuffix(strings.TrimSpace(dev), ">")
		if i := strings.Index(d, ">, "); i >= 0 && strings.HasPrefix(d, "<<HKDevice") {
			d = d[i+3:]
		} else {
			d = ""
		}
		var model, manufacturer, hardware, software, devName string
		for f := range strings.SplitSeq(d, ", ") {
			k, v, ok := strings.Cut(f, ":")
			if !ok {
				continue
			}
			v = strings.TrimSpace(v)
			if len(v) > 100 {
				v = v[:100]
			}
			switch k {
			case "name":
				devName = v
			case "manufacturer":
				manufacturer = v
			case "model":
				model = v
			case "hardware":
				hardware = v
			case "software":
				software = v
			}
		}
		if devName != "" && devName != name {
			parts = append(parts, devName)
		}
		if mm := strings.TrimSpace(manufacturer + " " + model); mm != "" && mm != name && mm != devName {
			parts = append(parts, mm)
		}
		if hardware != "" {
			parts = append(parts, hardware)
		}
		if software != "" {
			parts = append(parts, "software "+software)
		}
	}
	if len(parts) == 0 {
		return name
	}
	if name == "" {
		return strings.Join(parts, ", ")
	}
	return name + " (" + strings.Join(parts, ", ") + ")"
}
