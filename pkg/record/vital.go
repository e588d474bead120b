package record

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// The vital-sign table (vitalTable) is phr's one definition of the vital
// signs: their kinds and names, LOINC codes (those phr writes and those it
// recognizes from other sources), UCUM units with the symbols people read
// and the spellings they type, plausible ranges, display precision, typical
// adult ranges with their sources, and whether FHIR counts each as a vital
// sign. Parsing, building, `phr edit`, phrd's ingest, CSV, Apple Health,
// the CLI's display and the provider's viewer (through the generated
// pkg/viewer/assets/js/vitals.json) all read it; adding a vital is one row
// and its test, then `go generate ./pkg/viewer`.

// LOINC codes of the vital signs phr records. They are the codes of the
// vital-sign table below (vitalTable); other packages use these names
// rather than the literal codes.
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
	LoincHeight      = "8302-2"  // Body height
	LoincBMI         = "39156-5" // Body mass index (BMI) [Ratio]
	LoincRespRate    = "9279-1"  // Respiratory rate
	LoincPain        = "72514-3" // Pain severity - 0-10 verbal numeric rating [Score] - Reported
	LoincHeadCirc    = "9843-4"  // Head Occipital-frontal circumference
)

// VitalSign is one row of the vital-sign table: everything phr knows about
// one vital sign. See vitalTable.
type VitalSign struct {
	// Kind is the short name `phr log vital` takes: "bp", "hr".
	Kind string `json:"kind"`
	// Aliases are other names people write for it ("pulse", "heart
	// rate"), compared in lower case with "_" and "-" read as spaces.
	Aliases []string `json:"aliases,omitempty"`
	// Name is the text of the Observation's code: "Heart rate".
	Name string `json:"name"`
	// Codes are the LOINC codings of the Observation's code, the vital's
	// own code first; a unit with Codes of its own replaces them.
	Codes []Coding `json:"codes"`
	// OtherCodes are LOINC codes other sources use for the same
	// measurement (an oral temperature, a blood pressure panel coded
	// 55284-4, a glucose in serum). They identify the kind when the viewer
	// reads a record written elsewhere; phr never writes them, and
	// VitalOf does not match them, because `phr edit --value` and the
	// CSV export would then rewrite such a record's code as Codes.
	OtherCodes []string `json:"otherCodes,omitempty"`
	// VitalSign says an Observation with one of these codes is a vital
	// sign even without the vital-signs category: FHIR R4's vital-signs
	// profiles list it. Blood glucose (also a laboratory result) and pain
	// are recorded like vital signs but are not on that list.
	VitalSign bool `json:"vitalSign"`
	// Units are the units it is recorded in, the default first.
	Units []VitalUnit `json:"units"`
	// Components are the parts of a panel (blood pressure: systolic and
	// diastolic), each with its own code and range; the reading then has
	// one value per component, written "120/80".
	Components []VitalComponent `json:"components,omitempty"`
}

// VitalUnit is a unit a vital sign may be recorded in.
type VitalUnit struct {
	// UCUM is the unit's UCUM code, stored in valueQuantity.code.
	UCUM string `json:"ucum"`
	// Symbol is the unit as shown to people (valueQuantity.unit): "mmHg".
	Symbol string `json:"symbol"`
	// Aliases are what people type for it, lower case without spaces,
	// the symbol among them; "" marks the unit assumed when none is
	// given.
	Aliases []string `json:"aliases"`
	// Min and Max bound a plausible reading (inclusive); values outside
	// are typing mistakes and refused.
	Min float64 `json:"min"`
	Max float64 `json:"max"`
	// Decimals is the precision a value is shown with when the source
	// wrote binary-float noise (81.69998963820044 kg shows as 81.7 kg).
	Decimals int `json:"decimals"`
	// Whole says only whole numbers are readings (a 0-10 score).
	Whole bool `json:"whole,omitempty"`
	// Codes, when set, replace the vital's codes for readings in this
	// unit (blood glucose in mmol/L has a LOINC code of its own).
	Codes []Coding `json:"codes,omitempty"`
	// Normal is the typical resting range of an adult in this unit, drawn
	// behind the viewer's trend charts; zero when there is none to draw.
	Normal VitalRange `json:"normal,omitzero"`
}

// VitalComponent is one part of a panel, such as systolic pressure.
type VitalComponent struct {
	// Kind names the part in messages and to the viewer: "systolic".
	Kind string `json:"kind"`
	// Name is the text of the component's code: "Systolic blood pressure".
	Name string `json:"name"`
	// Label is the part's name beside the panel's other parts, as a
	// chart's line: "Systolic".
	Label string  `json:"label"`
	Code  Coding  `json:"code"`
	Min   float64 `json:"min"`
	Max   float64 `json:"max"`
	// Normal is the part's typical adult range, by the UCUM code of the
	// panel's unit.
	Normal map[string]VitalRange `json:"normal,omitempty"`
}

// VitalRange is a typical adult range, [Low, High], and where it comes
// from.
type VitalRange struct {
	Low    float64 `json:"low"`
	High   float64 `json:"high"`
	Source string  `json:"source"`
}

func loinc(code, display string) Coding { return Coding{System: LOINC, Code: code, Display: display} }

// Sources of the typical ranges (VitalRange.Source).
const (
	srcBP    = "AHA/ACC 2017 guideline (normal: below 120/80 mmHg); MedlinePlus, Vital Signs (low: below 90/60)"
	srcHR    = "American Heart Association (resting adult heart rate 60-100 bpm)"
	srcRR    = "usual clinical reference for an adult at rest (12-20/min)"
	srcSpO2  = "Cleveland Clinic, Blood Oxygen Level (normal pulse oximeter reading 95-100 %)"
	srcTemp  = "MedlinePlus, Body temperature norms (97-99 °F, 36.1-37.2 °C)"
	srcBMI   = "WHO (normal weight: BMI 18.5-24.9)"
	ucumMmHg = "mm[Hg]"
)

// vitalTable is the one place vital signs are defined: it drives parsing
// (ParseVital), building (NewVital), `phr edit --value`, phrd's device
// ingest, CSV rows, the Apple Health mapping, the display of values, and
// the provider's viewer, which reads it as pkg/viewer/assets/js/vitals.json
// (generated from VitalSigns by `go generate ./pkg/viewer`; a test there
// fails when the file is out of date). Adding a vital is adding a row here
// (and its test), then regenerating that file.
//
// Min and Max are what a living person can show (and a device can
// measure), not normal ranges: they catch typing mistakes (720 for 72),
// never a worrying reading. Normal ranges (VitalRange, with their
// sources) are typical resting ranges of adults, drawn as bands behind the
// viewer's charts. Glucose has none: its range depends on fasting, which a
// reading rarely states; weight, height and head circumference have none
// either. The order is the order the viewer charts them in.
var vitalTable = []VitalSign{
	{
		Kind: "bp", Aliases: []string{"blood pressure", "bloodpressure"}, Name: "Blood pressure", VitalSign: true,
		Codes:      []Coding{loinc(LoincBP, "Blood pressure panel with all children optional")},
		OtherCodes: []string{"55284-4", "35094-2"}, // Blood pressure systolic and diastolic; Blood pressure panel
		Units:      []VitalUnit{{UCUM: ucumMmHg, Symbol: "mmHg", Aliases: []string{"", "mmhg", "mm[hg]"}, Min: 20, Max: 300, Decimals: 0}},
		Components: []VitalComponent{
			{Kind: "systolic", Name: "Systolic blood pressure", Label: "Systolic", Code: loinc(LoincSystolic, "Systolic blood pressure"), Min: 40, Max: 300,
				Normal: map[string]VitalRange{ucumMmHg: {90, 120, srcBP}}},
			{Kind: "diastolic", Name: "Diastolic blood pressure", Label: "Diastolic", Code: loinc(LoincDiastolic, "Diastolic blood pressure"), Min: 20, Max: 200,
				Normal: map[string]VitalRange{ucumMmHg: {60, 80, srcBP}}},
		},
	},
	{
		Kind: "hr", Aliases: []string{"heart rate", "heartrate", "pulse", "pulse rate"}, Name: "Heart rate", VitalSign: true,
		Codes: []Coding{loinc(LoincHeartRate, "Heart rate")},
		Units: []VitalUnit{{UCUM: "/min", Symbol: "bpm", Aliases: []string{"", "bpm", "/min", "beats/min", "{beats}/min", "beatsperminute"}, Min: 20, Max: 300, Decimals: 0,
			Normal: VitalRange{60, 100, srcHR}}},
	},
	{
		Kind: "rr", Aliases: []string{"respiratory rate", "respiration rate", "breathing rate", "resp rate"}, Name: "Respiratory rate", VitalSign: true,
		Codes: []Coding{loinc(LoincRespRate, "Respiratory rate")},
		Units: []VitalUnit{{UCUM: "/min", Symbol: "breaths/min", Aliases: []string{"", "/min", "breaths/min", "br/min", "{breaths}/min", "breathsperminute"}, Min: 2, Max: 100, Decimals: 0,
			Normal: VitalRange{12, 20, srcRR}}},
	},
	{
		Kind: "spo2", Aliases: []string{"oxygen saturation", "o2 sat", "sao2", "sp02"}, Name: "Oxygen saturation", VitalSign: true,
		Codes: []Coding{loinc(LoincSpO2, "Oxygen saturation in Arterial blood by Pulse oximetry"),
			loinc(LoincSpO2Base, "Oxygen saturation in Arterial blood")},
		Units: []VitalUnit{{UCUM: "%", Symbol: "%", Aliases: []string{"", "%", "%o2"}, Min: 50, Max: 100, Decimals: 0,
			Normal: VitalRange{95, 100, srcSpO2}}},
	},
	{
		Kind: "temp", Aliases: []string{"temperature", "body temperature"}, Name: "Body temperature", VitalSign: true,
		Codes:      []Coding{loinc(LoincTemperature, "Body temperature")},
		OtherCodes: []string{"8331-1"}, // Oral temperature
		Units: []VitalUnit{
			{UCUM: "Cel", Symbol: "°C", Aliases: []string{"c", "°c", "cel", "degc", "celsius"}, Min: 25, Max: 45, Decimals: 1,
				Normal: VitalRange{36.1, 37.2, srcTemp}},
			{UCUM: "[degF]", Symbol: "°F", Aliases: []string{"f", "°f", "[degf]", "degf", "fahrenheit"}, Min: 77, Max: 113, Decimals: 1,
				Normal: VitalRange{97, 99, srcTemp}},
		},
	},
	{
		Kind: "weight", Aliases: []string{"body weight", "wt"}, Name: "Body weight", VitalSign: true,
		Codes:      []Coding{loinc(LoincWeight, "Body weight")},
		OtherCodes: []string{"3141-9"}, // Body weight Measured
		Units: []VitalUnit{
			{UCUM: "kg", Symbol: "kg", Aliases: []string{"kg", "kgs", "kilogram", "kilograms"}, Min: 0.2, Max: 700, Decimals: 1},
			{UCUM: "[lb_av]", Symbol: "lb", Aliases: []string{"lb", "lbs", "[lb_av]", "pound", "pounds"}, Min: 0.5, Max: 1500, Decimals: 1},
		},
	},
	{
		Kind: "height", Aliases: []string{"body height", "ht"}, Name: "Body height", VitalSign: true,
		Codes:      []Coding{loinc(LoincHeight, "Body height")},
		OtherCodes: []string{"8306-3"}, // Body height --lying (an infant's length)
		Units: []VitalUnit{
			{UCUM: "cm", Symbol: "cm", Aliases: []string{"cm"}, Min: 20, Max: 280, Decimals: 1},
			{UCUM: "m", Symbol: "m", Aliases: []string{"m"}, Min: 0.2, Max: 2.8, Decimals: 2},
			{UCUM: "[in_i]", Symbol: "in", Aliases: []string{"in", "inch", "inches", "[in_i]"}, Min: 8, Max: 110, Decimals: 1},
		},
	},
	{
		Kind: "bmi", Aliases: []string{"body mass index"}, Name: "Body mass index", VitalSign: true,
		Codes: []Coding{loinc(LoincBMI, "Body mass index (BMI) [Ratio]")},
		Units: []VitalUnit{{UCUM: "kg/m2", Symbol: "kg/m²", Aliases: []string{"", "kg/m2", "kg/m²"}, Min: 5, Max: 150, Decimals: 1,
			Normal: VitalRange{18.5, 24.9, srcBMI}}},
	},
	{
		Kind: "head", Aliases: []string{"head circumference", "head circ", "hc", "ofc"}, Name: "Head circumference", VitalSign: true,
		Codes:      []Coding{loinc(LoincHeadCirc, "Head Occipital-frontal circumference")},
		OtherCodes: []string{"8287-5"}, // Head Occipital-frontal circumference by Tape measure
		Units: []VitalUnit{
			{UCUM: "cm", Symbol: "cm", Aliases: []string{"cm"}, Min: 15, Max: 90, Decimals: 1},
			{UCUM: "[in_i]", Symbol: "in", Aliases: []string{"in", "inch", "inches", "[in_i]"}, Min: 6, Max: 36, Decimals: 1},
		},
	},
	{
		Kind: "glucose", Aliases: []string{"blood glucose", "blood sugar"}, Name: "Blood glucose",
		Codes: []Coding{loinc(LoincGlucoseMass, "Glucose [Mass/volume] in Blood")},
		// Glucose in serum or plasma and in capillary blood, by meter or
		// test strip, fasting or not, by mass and by moles.
		OtherCodes: []string{"2345-7", "41653-7", "14749-6", "14743-9", "2340-8", "1558-6", "41604-0", "2341-6", "74774-1", "1547-9", "14770-2"},
		Units: []VitalUnit{
			{UCUM: "mg/dL", Symbol: "mg/dL", Aliases: []string{"mg/dl"}, Min: 10, Max: 1100, Decimals: 0},
			{UCUM: "mmol/L", Symbol: "mmol/L", Aliases: []string{"mmol/l"}, Min: 0.5, Max: 60, Decimals: 1,
				Codes: []Coding{loinc(LoincGlucoseMol, "Glucose [Moles/volume] in Blood")}},
		},
	},
	{
		Kind: "pain", Aliases: []string{"pain score", "pain severity"}, Name: "Pain severity",
		Codes: []Coding{loinc(LoincPain, "Pain severity - 0-10 verbal numeric rating [Score] - Reported")},
		Units: []VitalUnit{{UCUM: "{score}", Symbol: "/10", Aliases: []string{"", "/10", "{score}"}, Min: 0, Max: 10, Decimals: 0, Whole: true}},
	},
}

// VitalKinds are the kinds ParseVital accepts, in the table's order.
var VitalKinds = func() []string {
	out := make([]string, len(vitalTable))
	for i, v := range vitalTable {
		out[i] = v.Kind
	}
	return out
}()

// Indexes over vitalTable, built once.
var (
	vitalByName = map[string]*VitalSign{} // kind and aliases, normalized
	vitalByCode = map[string]*VitalSign{} // LOINC codes of the vital itself
	// vitalPartByCode maps a LOINC code of a vital or of a panel's
	// component to the vital it belongs to (8480-6 -> bp).
	vitalPartByCode = map[string]*VitalSign{}
)

func init() {
	for i := range vitalTable {
		v := &vitalTable[i]
		for _, n := range append([]string{v.Kind}, v.Aliases...) {
			vitalByName[vitalName(n)] = v
		}
		for _, c := range v.codes() {
			vitalByCode[c.Code] = v
			vitalPartByCode[c.Code] = v
		}
		for _, c := range v.Components {
			vitalPartByCode[c.Code.Code] = v
		}
	}
}

// vitalName normalizes a vital's name for lookup: lower case, "_" and "-"
// read as spaces, runs of spaces folded.
func vitalName(s string) string {
	s = strings.Map(func(r rune) rune {
		if r == '_' || r == '-' {
			return ' '
		}
		return r
	}, strings.ToLower(s))
	return strings.Join(strings.Fields(s), " ")
}

// codes lists every LOINC code of the vital (its own and its units').
func (v *VitalSign) codes() []Coding {
	out := slices.Clone(v.Codes)
	for _, u := range v.Units {
		out = append(out, u.Codes...)
	}
	return out
}

// VitalSigns returns a copy of the vital-sign table, in a form that
// encodes to JSON as it is (for the viewer and other readers).
func VitalSigns() []VitalSign {
	out := make([]VitalSign, len(vitalTable))
	for i, v := range vitalTable {
		v.Aliases = slices.Clone(v.Aliases)
		v.Codes = slices.Clone(v.Codes)
		v.OtherCodes = slices.Clone(v.OtherCodes)
		v.Components = slices.Clone(v.Components)
		for j := range v.Components {
			v.Components[j].Normal = maps.Clone(v.Components[j].Normal)
		}
		v.Units = slices.Clone(v.Units)
		for j := range v.Units {
			v.Units[j].Aliases = slices.Clone(v.Units[j].Aliases)
			v.Units[j].Codes = slices.Clone(v.Units[j].Codes)
		}
		out[i] = v
	}
	return out
}

// LookupVital finds a vital sign by its kind or one of its aliases
// ("hr", "Heart rate", "pulse", "heart_rate"). The result is read-only.
func LookupVital(name string) (*VitalSign, bool) {
	v, ok := vitalByName[vitalName(name)]
	return v, ok
}

// VitalOf returns the vital sign an Observation records, by the LOINC codes
// of its code, or nil. A lone component (a systolic pressure on its own) is
// not its panel's vital.
func VitalOf(r Resource) *VitalSign {
	return loincLookup(r, vitalByCode)
}

// loincLookup returns the vital that index gives for the first LOINC code
// of r's code that it has, or nil. It reads the maps directly: it runs for
// every Observation imported.
func loincLookup(r Resource, index map[string]*VitalSign) *VitalSign {
	code, _ := r["code"].(map[string]any)
	codings, _ := code["coding"].([]any)
	for _, c := range codings {
		m, _ := c.(map[string]any)
		if s, _ := m["system"].(string); s != LOINC {
			continue
		}
		if s, _ := m["code"].(string); s != "" {
			if v, ok := index[s]; ok {
				return v
			}
		}
	}
	return nil
}

// Unit finds the unit a person typed (any case, spaces ignored; "" for the
// default unit).
func (v *VitalSign) Unit(typed string) (*VitalUnit, bool) {
	typed = strings.ToLower(strings.ReplaceAll(strings.TrimSpace(typed), " ", ""))
	for i := range v.Units {
		if slices.Contains(v.Units[i].Aliases, typed) {
			return &v.Units[i], true
		}
	}
	return nil, false
}

// CodesFor returns the codings of the vital's code for a reading in the
// unit with this UCUM code (blood glucose in mmol/L has a code of its
// own), and false when the vital has no such unit.
func (v *VitalSign) CodesFor(ucum string) ([]Coding, bool) {
	u := v.unitByUCUM(ucum)
	if u == nil {
		return nil, false
	}
	if len(u.Codes) > 0 {
		return u.Codes, true
	}
	return v.Codes, true
}

// unitByUCUM finds a unit by its UCUM code.
func (v *VitalSign) unitByUCUM(code string) *VitalUnit {
	for i := range v.Units {
		if v.Units[i].UCUM == code {
			return &v.Units[i]
		}
	}
	return nil
}

// Expect says in words what a reading looks like, for error messages:
// "weight in kg (0.2-700) or lb (0.5-1500)".
func (v *VitalSign) Expect() string {
	name := strings.ToLower(v.Name)
	if len(v.Components) > 0 {
		return fmt.Sprintf("%s as %s in %s, e.g. 120/80; %s", name, v.componentWords(), v.Units[0].Symbol, v.panelRanges())
	}
	units := make([]string, len(v.Units))
	for i, u := range v.Units {
		units[i] = u.Symbol + " (" + fmtNum(u.Min) + "-" + fmtNum(u.Max) + ")"
	}
	s := name + " in " + strings.Join(units, " or ")
	if v.Units[0].Whole {
		s += ", a whole number"
	}
	return s
}

// panelRanges is "systolic 40-300, diastolic 20-200, systolic above
// diastolic" for blood pressure.
func (v *VitalSign) panelRanges() string {
	parts := make([]string, 0, len(v.Components)+1)
	for _, c := range v.Components {
		parts = append(parts, c.Kind+" "+fmtNum(c.Min)+"-"+fmtNum(c.Max))
	}
	for i := 1; i < len(v.Components); i++ {
		parts = append(parts, v.Components[i-1].Kind+" above "+v.Components[i].Kind)
	}
	return strings.Join(parts, ", ")
}

// componentWords is "systolic/diastolic" for blood pressure.
func (v *VitalSign) componentWords() string {
	parts := make([]string, len(v.Components))
	for i, c := range v.Components {
		parts[i] = c.Kind
	}
	return strings.Join(parts, "/")
}

// unitNames lists the typed names of a vital's units, for errors.
func (v *VitalSign) unitNames() string {
	var names []string
	for _, u := range v.Units {
		for _, a := range u.Aliases {
			if a != "" {
				names = append(names, a)
			}
		}
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

// Vital is a parsed vital-sign reading.
type Vital struct {
	Kind    string  // one of VitalKinds
	Value   float64 // the reading (the first component's for a panel: systolic)
	Value2  float64 // the second component's (diastolic)
	Unit    string  // UCUM code: mm[Hg], /min, kg, [lb_av], Cel, [degF], mg/dL, mmol/L, %, ...
	Display string  // unit as shown to people
	Text    string  // the reading as shown to people, "120/80 mmHg"
}

// ParseVital parses a reading of a vital sign named by its kind or an
// alias, such as ("bp", "120/80"), ("weight", "154lb"), ("temp", "37.2C"),
// ("glucose", "5.4mmol/L"), ("spo2", "97%"), ("pulse", "72"). Units are
// required where the number alone is ambiguous, and values outside
// physiologically plausible ranges are refused.
func ParseVital(kind, value string) (Vital, error) {
	vs, ok := LookupVital(kind)
	if !ok {
		return Vital{}, inputErr("kind", "unknown vital %q (use one of %s)", strings.ToLower(strings.TrimSpace(kind)), strings.Join(VitalKinds, ", "))
	}
	v := strings.ToLower(strings.ReplaceAll(strings.TrimSpace(value), " ", ""))
	if v == "" {
		return Vital{}, inputErr("value", "empty reading")
	}
	if len(vs.Components) > 0 {
		return parsePanel(vs, v)
	}
	i := 0
	for i < len(v) && (v[i] >= '0' && v[i] <= '9' || v[i] == '.') {
		i++
	}
	if i == 0 {
		return Vital{}, inputErr("value", "%s reading must start with a number", vs.Kind)
	}
	n, err := strconv.ParseFloat(v[:i], 64)
	if err != nil {
		return Vital{}, inputErr("value", "%s reading is not a number", vs.Kind)
	}
	u, ok := vs.Unit(v[i:])
	if !ok {
		if v[i:] == "" {
			return Vital{}, inputErr("value", "%s needs a unit (%s)", vs.Kind, vs.unitNames())
		}
		return Vital{}, inputErr("value", "unknown %s unit %q (use %s)", vs.Kind, v[i:], vs.unitNames())
	}
	if n < u.Min || n > u.Max {
		return Vital{}, inputErr("value", "%s of %s %s is outside the plausible range %s-%s", vs.Kind, fmtNum(n), u.Symbol, fmtNum(u.Min), fmtNum(u.Max))
	}
	if u.Whole && n != float64(int64(n)) {
		return Vital{}, inputErr("value", "%s is a whole number from %s to %s", vs.Kind, fmtNum(u.Min), fmtNum(u.Max))
	}
	return Vital{Kind: vs.Kind, Value: n, Unit: u.UCUM, Display: u.Symbol, Text: joinUnit(fmtNum(n), u.Symbol)}, nil
}

// parsePanel parses "120/80", with an optional unit after the last
// number.
func parsePanel(vs *VitalSign, v string) (Vital, error) {
	u := &vs.Units[0]
	for i := range vs.Units {
		for _, a := range vs.Units[i].Aliases {
			if a != "" && strings.HasSuffix(v, a) {
				u, v = &vs.Units[i], strings.TrimSuffix(v, a)
			}
		}
	}
	bad := inputErr("value", "%s must be %s, e.g. 120/80", strings.ToLower(vs.Name), vs.componentWords())
	parts := strings.Split(v, "/")
	if len(parts) != len(vs.Components) {
		return Vital{}, bad
	}
	vals := make([]float64, len(parts))
	for i, p := range parts {
		n, err := strconv.ParseFloat(p, 64)
		if err != nil || p == "" || p[0] == '+' || p[0] == '-' {
			return Vital{}, bad
		}
		vals[i] = n
	}
	words := make([]string, len(vals))
	plausible := true
	for i, c := range vs.Components {
		words[i] = fmtNum(vals[i])
		plausible = plausible && vals[i] >= c.Min && vals[i] <= c.Max && vals[i] >= u.Min && vals[i] <= u.Max
		if i > 0 && vals[i] >= vals[i-1] {
			plausible = false // systolic above diastolic
		}
	}
	if !plausible {
		return Vital{}, inputErr("value", "%s %s is not plausible (%s)", strings.ToLower(vs.Name), strings.Join(words, "/"), vs.panelRanges())
	}
	out := Vital{Kind: vs.Kind, Value: vals[0], Unit: u.UCUM, Display: u.Symbol}
	if len(vals) > 1 {
		out.Value2 = vals[1]
	}
	out.Text = joinUnit(strings.Join(words, "/"), u.Symbol)
	return out, nil
}

// joinUnit writes a number and a unit symbol as people read them:
// "72 bpm", "97 %", and "7/10" for a symbol that starts with a slash.
func joinUnit(n, symbol string) string {
	switch {
	case symbol == "":
		return n
	case strings.HasPrefix(symbol, "/"):
		return n + symbol
	}
	return n + " " + symbol
}

func fmtNum(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }
