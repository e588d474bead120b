package applehealth

import (
	"encoding/json"
	"errors"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/phr-project/phr/pkg/record"
)

// Per-item errors. They name what is wrong, never the value.
var (
	errNoType    = errors.New("missing type")
	errNoValue   = errors.New("missing value")
	errNotNumber = errors.New("value is not a number (or beyond ±1e15)")
	errBadDate   = errors.New("not a date (want YYYY-MM-DD hh:mm:ss ±hhmm, or YYYYMMDDhhmmss±hhmm)")
	errEndBefore = errors.New("endDate is before startDate")
)

// Skip reasons.
const (
	skipInPanel   = "blood pressure sample imported as part of its panel"
	skipRoute     = "workout route (GPS locations) not imported"
	skipSummary   = "activity summary (daily ring totals and goals) is derived from the samples"
	skipNoPatient = "no date of birth or biological sex in the export"
)

func (p *parser) item(n *node, line int) error {
	switch n.name {
	case "Record":
		return p.record(n, line)
	case "Correlation":
		return p.correlation(n, line)
	case "Workout":
		return p.workout(n, line)
	case "Me":
		return p.me(n, line)
	case "ExportDate":
	case "ActivitySummary":
		p.sink.Skip("Observation", skipSummary)
	case "ClinicalRecord":
		return p.clinicalRecord(n, line)
	default:
		p.sink.Skip("", "unsupported Apple Health element <"+clip(n.name)+">")
	}
	return nil
}

func (p *parser) record(n *node, line int) error {
	typ := n.attr("type")
	if typ == "" {
		p.fail(line, "Record/@type", errNoType)
		return nil
	}
	if (typ == hkSystolic || typ == hkDiastolic) && p.bp.topLevel(p, n, line) {
		return nil
	}
	return p.sample(n, line)
}

// times reads startDate and endDate (endDate defaults to startDate).
func (p *parser) times(n *node, line int) (start, end string, st, et time.Time, ok bool) {
	start, st, ok = fhirTime(n.attr("startDate"))
	if !ok {
		p.fail(line, n.name+"/@startDate", errBadDate)
		return
	}
	if !n.has("endDate") {
		return start, start, st, st, true
	}
	end, et, ok = fhirTime(n.attr("endDate"))
	if !ok {
		p.fail(line, n.name+"/@endDate", errBadDate)
		return
	}
	if et.Before(st) {
		p.fail(line, n.name+"/@endDate", errEndBefore)
		return "", "", st, et, false
	}
	return start, end, st, et, true
}

// sample maps one Record (a quantity or category sample).
func (p *parser) sample(n *node, line int) error {
	typ := n.attr("type")
	start, end, st, et, ok := p.times(n, line)
	if !ok {
		return nil
	}
	switch {
	case typ == hkSleep:
		return p.sleep(n, line, start, end, et.Sub(st))
	case strings.HasPrefix(typ, categoryPrefix):
		return p.categorySample(n, line, typ, start, end, et.Sub(st))
	}
	spec := quantityTypes[typ]
	raw := n.attr("value")
	if raw == "" {
		p.fail(line, "Record/@value", errNoValue)
		return nil
	}
	val, f, ok := number(raw)
	if !ok {
		if strings.HasPrefix(typ, quantityPrefix) {
			p.fail(line, "Record/@value", errNotNumber)
			return nil
		}
		// Other identifiers (HKDataType...) may carry text.
		o := p.base(n, typ, spec, start, end)
		o.ValueString = clipText(raw, 1000)
		return p.emit(o)
	}
	q, f := p.quantity(val, f, n.attr("unit"), spec)
	if p.daily && spec.agg != aggNone {
		return p.agg.add(p, typ, spec, n, start, q, f, line)
	}
	o := p.base(n, typ, spec, start, end)
	if typ == hkBloodGlucose {
		if code, disp := glucoseCode(q.Code); code != "" {
			o.Code.Coding = append([]record.Coding{{System: record.LOINC, Code: code, Display: disp}}, o.Code.Coding...)
		}
	}
	o.ValueQuantity = &q
	return p.emit(o)
}

// quantity builds a FHIR Quantity from a value and an export unit.
// Percentages, which HealthKit stores as fractions, are scaled to 0-100.
func (p *parser) quantity(val json.Number, f float64, unit string, spec typeSpec) (record.DecimalQuantity, float64) {
	q := record.DecimalQuantity{Value: val}
	if unit == "%" {
		q.Value = times100(val, f)
		f *= 100
	}
	us, known := ucumUnit(unit)
	if spec.ucum != "" && (unit == "" || known && (us.ucum == "{count}" || us.ucum == spec.ucum)) {
		us, known = unitSpec{display: spec.unit, ucum: spec.ucum}, true
	}
	switch {
	case known:
		q.Unit, q.System, q.Code = us.display, record.UCUM, us.ucum
	case unit != "":
		q.Unit = clipText(unit, 64)
	}
	return q, f
}

// code builds the CodeableConcept of a type: its LOINC code where known,
// then the HealthKit identifier.
func (p *parser) code(typ string, spec typeSpec) record.CodeableConcept {
	c := record.CodeableConcept{Text: spec.text}
	if c.Text == "" {
		c.Text = p.human(typ)
	}
	if spec.loinc != "" {
		c.Coding = append(c.Coding, record.Coding{System: record.LOINC, Code: spec.loinc, Display: spec.loincDisplay})
	}
	c.Coding = append(c.Coding, spec.extra...)
	c.Coding = append(c.Coding, record.Coding{System: HealthKitSystem, Code: clipText(typ, 200)})
	return c
}

// base fills what every sample Observation has.
func (p *parser) base(n *node, typ string, spec typeSpec, start, end string) observation {
	o := observation{
		ResourceType: "Observation",
		Status:       "final",
		Category:     category(spec.category),
		Code:         p.code(typ, spec),
	}
	if start == end {
		o.EffectiveDateTime = start
	} else {
		o.EffectivePeriod = &record.Period{Start: start, End: end}
	}
	if c, _, ok := fhirTime(n.attr("creationDate")); ok {
		o.Issued = c
	}
	if d := deviceText(sourceOf(n), n.attr("device")); d != "" {
		o.Device = &reference{Display: d}
	}
	o.Note = metadataNote(n)
	return o
}

// metadataNote keeps an item's MetadataEntry pairs as one note.
func metadataNote(n *node) []record.Annotation {
	var b strings.Builder
	count := 0
	for _, k := range n.kids {
		if k.name != "MetadataEntry" {
			continue
		}
		key := k.attr("key")
		if key == "" {
			continue
		}
		if count == 32 {
			b.WriteString("; …")
			break
		}
		if count > 0 {
			b.WriteString("; ")
		}
		b.WriteString(clipText(key, 100))
		b.WriteString(" = ")
		b.WriteString(clipText(k.attr("value"), 200))
		count++
	}
	if count == 0 {
		return nil
	}
	return []record.Annotation{{Text: "HealthKit metadata: " + b.String()}}
}

// clipText shortens s to at most n bytes on a rune boundary.
func clipText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// minutes renders a duration in minutes, to two decimals.
func minutes(d time.Duration) record.DecimalQuantity {
	return record.DecimalQuantity{Value: json.Number(record.FormatDecimal(round(d.Minutes(), 2))), Unit: "min", System: record.UCUM, Code: "min"}
}

type sleepStage struct{ id, text, loinc, display string }

var sleepStages = func() map[string]sleepStage {
	const v = categoryValuePfx + "SleepAnalysis"
	stages := []sleepStage{
		{v + "InBed", "in bed", "", ""},
		{v + "Asleep", "asleep", "", ""},
		{v + "Awake", "awake", "", ""},
		{v + "AsleepCore", "core", "93830-8", "Light sleep duration"},
		{v + "AsleepDeep", "deep", "93831-6", "Deep sleep duration"},
		{v + "AsleepREM", "REM", "93829-0", "REM sleep duration"},
	}
	m := map[string]sleepStage{}
	for i, s := range stages {
		m[s.id] = s
		m[string(rune('0'+i))] = s // older exports write the raw enum value
	}
	m[v+"AsleepUnspecified"] = stages[1]
	return m
}()

// sleep maps a SleepAnalysis sample: LOINC 93832-4 Sleep duration (plus
// the stage's own code where LOINC has one), the duration in minutes as
// the value and the stage as a component.
func (p *parser) sleep(n *node, line int, start, end string, d time.Duration) error {
	value := n.attr("value")
	stage, ok := sleepStages[value]
	if !ok {
		if value == "" {
			p.fail(line, "Record/@value", errNoValue)
			return nil
		}
		stage = sleepStage{id: clipText(value, 200), text: strings.ToLower(categoryValueText(hkSleep, value))}
	}
	o := p.base(n, hkSleep, typeSpec{}, start, end)
	o.Code = record.CodeableConcept{Coding: []record.Coding{{System: record.LOINC, Code: "93832-4", Display: "Sleep duration"}}, Text: "Sleep (" + stage.text + ")"}
	if stage.loinc != "" {
		o.Code.Coding = append(o.Code.Coding, record.Coding{System: record.LOINC, Code: stage.loinc, Display: stage.display})
	}
	o.Code.Coding = append(o.Code.Coding, record.Coding{System: HealthKitSystem, Code: hkSleep})
	q := minutes(d)
	o.ValueQuantity = &q
	o.Component = []component{{
		Code:                 record.CodeableConcept{Coding: []record.Coding{{System: HealthKitSystem, Code: hkSleep}}, Text: "Sleep stage"},
		ValueCodeableConcept: &record.CodeableConcept{Coding: []record.Coding{{System: HealthKitSystem, Code: stage.id}}, Text: stage.text},
	}}
	return p.emit(o)
}

// categoryValueText words a category value: the type's own name is
// dropped ("HKCategoryValueAppleStandHourStood" -> "Stood").
func categoryValueText(typ, value string) string {
	v := strings.TrimPrefix(value, categoryValuePfx)
	if s, ok := strings.CutPrefix(v, strings.TrimPrefix(typ, categoryPrefix)); ok && s != "" {
		v = s
	}
	return humanize(v)
}

// categorySample maps other category samples: the value as a coded
// concept, or, for value-less events (mindful minutes), the duration.
func (p *parser) categorySample(n *node, line int, typ, start, end string, d time.Duration) error {
	o := p.base(n, typ, typeSpec{}, start, end)
	switch value := n.attr("value"); {
	case value == "" || value == categoryValuePfx+"NotApplicable":
		if d > 0 {
			q := minutes(d)
			o.ValueQuantity = &q
		}
	case strings.HasPrefix(value, categoryValuePfx):
		o.ValueCodeableConcept = &record.CodeableConcept{Coding: []record.Coding{{System: HealthKitSystem, Code: clipText(value, 200)}}, Text: categoryValueText(typ, value)}
	default:
		o.ValueString = clipText(value, 1000)
	}
	return p.emit(o)
}

// correlation maps a blood pressure correlation to one panel. Other
// correlations (food) only group samples that Apple also writes as
// top-level records, so they are skipped.
func (p *parser) correlation(n *node, line int) error {
	typ := n.attr("type")
	if typ != hkBloodPressure {
		p.sink.Skip("Observation", "correlation ("+p.human(typ)+"): its samples are imported as top-level records")
		return nil
	}
	start, end, _, _, ok := p.times(n, line)
	if !ok {
		return nil
	}
	o := p.base(n, typ, typeSpec{category: "vital-signs"}, start, end)
	bp := mustVital("bp")
	o.Code = record.CodeableConcept{Coding: []record.Coding{record.Coding(bp.Codes[0]), {System: HealthKitSystem, Code: hkBloodPressure}}, Text: bp.Name}
	var members []*node
	for _, want := range []string{hkSystolic, hkDiastolic} {
		for _, k := range n.kids {
			if k.name != "Record" || k.attr("type") != want {
				continue
			}
			spec := quantityTypes[want]
			val, f, ok := number(k.attr("value"))
			if !ok {
				p.fail(line, "Correlation/Record/@value", errNotNumber)
				return nil
			}
			q, _ := p.quantity(val, f, k.attr("unit"), spec)
			o.Component = append(o.Component, component{
				Code:          record.CodeableConcept{Coding: []record.Coding{{System: record.LOINC, Code: spec.loinc, Display: spec.loincDisplay}}, Text: spec.text},
				ValueQuantity: &q,
			})
			members = append(members, k)
			break
		}
	}
	if len(members) == 0 {
		p.fail(line, "Correlation", errors.New("blood pressure correlation without a systolic or diastolic sample"))
		return nil
	}
	for _, m := range members {
		p.bp.member(p, m)
	}
	return p.emit(o)
}

// workout maps a Workout to an Observation "Exercise duration" (LOINC
// 55411-3) whose value is the duration, with the activity type, distance,
// energy and heart-rate statistics as components.
func (p *parser) workout(n *node, line int) error {
	act := n.attr("workoutActivityType")
	start, end, st, et, ok := p.times(n, line)
	if !ok {
		return nil
	}
	actText := "Workout"
	if act != "" {
		actText = p.human(act)
	}
	o := p.base(n, "", typeSpec{category: "activity"}, start, end)
	o.EffectiveDateTime, o.EffectivePeriod = "", &record.Period{Start: start, End: end}
	o.Code = record.CodeableConcept{Coding: []record.Coding{{System: record.LOINC, Code: "55411-3", Display: "Exercise duration"}}, Text: actText + " workout"}
	if v, f, ok := number(n.attr("duration")); ok {
		unit := n.attr("durationUnit")
		if unit == "" {
			unit = "min"
		}
		q, _ := p.quantity(v, f, unit, typeSpec{})
		o.ValueQuantity = &q
	} else if n.has("duration") {
		p.fail(line, "Workout/@duration", errNotNumber)
		return nil
	} else {
		q := minutes(et.Sub(st))
		o.ValueQuantity = &q
	}
	if act != "" {
		o.Component = append(o.Component, component{
			Code:                 record.CodeableConcept{Coding: []record.Coding{{System: record.LOINC, Code: "73985-4", Display: "Exercise activity"}}, Text: "Exercise activity"},
			ValueCodeableConcept: &record.CodeableConcept{Coding: []record.Coding{{System: HealthKitSystem, Code: clipText(act, 200)}}, Text: actText},
		})
	}
	distance, energy := false, false
	addQty := func(c record.CodeableConcept, value, unit string) bool {
		v, f, ok := number(value)
		if !ok {
			return false
		}
		q, _ := p.quantity(v, f, unit, typeSpec{})
		o.Component = append(o.Component, component{Code: c, ValueQuantity: &q})
		return true
	}
	distanceCode := record.CodeableConcept{Text: "Total distance"}
	energyCode := record.CodeableConcept{Coding: []record.Coding{{System: record.LOINC, Code: "41981-2", Display: "Calories burned"}}, Text: "Total energy burned"}
	if n.has("totalDistance") {
		distance = addQty(distanceCode, n.attr("totalDistance"), n.attr("totalDistanceUnit"))
	}
	if n.has("totalEnergyBurned") {
		energy = addQty(energyCode, n.attr("totalEnergyBurned"), n.attr("totalEnergyBurnedUnit"))
	}
	for _, k := range n.kids {
		switch k.name {
		case "WorkoutRoute":
			p.sink.Skip("", skipRoute)
		case "WorkoutStatistics":
			typ, unit := k.attr("type"), k.attr("unit")
			switch {
			case typ == hkActiveEnergy:
				if !energy {
					energy = addQty(energyCode, k.attr("sum"), unit)
				}
			case strings.HasPrefix(typ, quantityPrefix+"Distance"):
				if !distance {
					distance = addQty(distanceCode, k.attr("sum"), unit)
				}
			case typ == hkHeartRate:
				addQty(record.CodeableConcept{Text: "Average heart rate"}, k.attr("average"), unit)
				addQty(record.CodeableConcept{Text: "Minimum heart rate"}, k.attr("minimum"), unit)
				addQty(record.CodeableConcept{Text: "Maximum heart rate"}, k.attr("maximum"), unit)
			case typ != "" && len(o.Component) < 32:
				name := p.human(typ)
				if !addQty(record.CodeableConcept{Text: name + " (total)"}, k.attr("sum"), unit) {
					addQty(record.CodeableConcept{Text: name + " (average)"}, k.attr("average"), unit)
				}
			}
		}
	}
	return p.emit(o)
}

var bloodTypes = map[string]string{
	"HKBloodTypeAPositive": "A+", "HKBloodTypeANegative": "A-",
	"HKBloodTypeBPositive": "B+", "HKBloodTypeBNegative": "B-",
	"HKBloodTypeABPositive": "AB+", "HKBloodTypeABNegative": "AB-",
	"HKBloodTypeOPositive": "O+", "HKBloodTypeONegative": "O-",
}

// me maps the <Me> characteristics: date of birth and biological sex to a
// Patient, the blood type to an Observation (LOINC 882-1).
func (p *parser) me(n *node, line int) error {
	const pfx = "HKCharacteristicTypeIdentifier"
	pt := patient{ResourceType: "Patient"}
	if dob := strings.TrimSpace(n.attr(pfx + "DateOfBirth")); dob != "" {
		if d, ok := birthDate(dob); ok {
			pt.BirthDate = d
		} else {
			p.fail(line, "Me/@"+pfx+"DateOfBirth", errors.New("not a date (want YYYY-MM-DD)"))
		}
	}
	switch n.attr(pfx + "BiologicalSex") {
	case "HKBiologicalSexMale":
		pt.Gender = "male"
	case "HKBiologicalSexFemale":
		pt.Gender = "female"
	case "HKBiologicalSexOther":
		pt.Gender = "other"
	}
	if pt.BirthDate == "" && pt.Gender == "" {
		p.sink.Skip("Patient", skipNoPatient)
	} else if err := p.emit(pt); err != nil {
		return err
	}
	bt := n.attr(pfx + "BloodType")
	if text, ok := bloodTypes[bt]; ok {
		o := observation{
			ResourceType: "Observation",
			Status:       "final",
			Category:     category("laboratory"),
			Code:         record.CodeableConcept{Coding: []record.Coding{{System: record.LOINC, Code: "882-1", Display: "ABO and Rh group [Type] in Blood"}}, Text: "Blood type"},
			ValueCodeableConcept: &record.CodeableConcept{
				Coding: []record.Coding{{System: HealthKitSystem, Code: bt}},
				Text:   text,
			},
		}
		return p.emit(o)
	}
	return nil
}

// emit makes a record of a resource and hands it to the sink.
func (p *parser) emit(res any) error {
	data, err := withID(res)
	if err != nil {
		return err
	}
	rec, err := record.New(data, p.prov)
	if err != nil {
		return err
	}
	return p.sink.Record(rec)
}
