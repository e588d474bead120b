package pdfdoc

import (
	"slices"

	"github.com/phr-project/phr/pkg/record"
)

// vitalKind is one kind of vital sign: the LOINC codes that say it, its
// name, and how many decimals its readings need.
type vitalKind struct {
	key, name string
	codes     []string
	decimals  int
	// labOK: the code is also a lab test (glucose); it counts as a vital
	// sign only in an Observation of category vital-signs.
	labOK bool
}

// LOINC codes of the vital signs the viewer's table (vitals.mjs) knows
// beyond those phr records itself (record.Loinc*).
const (
	loincBPPanelOld   = "55284-4" // Blood pressure systolic and diastolic
	loincRespRate     = "9279-1"
	loincHeight       = "8302-2"
	loincBMI          = "39156-5"
	loincHeadCircumf  = "9843-4"
	loincBPPanelVital = "35094-2" // Blood pressure panel
)

var vitalKinds = []vitalKind{
	{key: "bp", name: "Blood pressure", codes: []string{record.LoincBP, loincBPPanelOld, loincBPPanelVital}},
	{key: "hr", name: "Heart rate", codes: []string{record.LoincHeartRate}},
	{key: "rr", name: "Respiratory rate", codes: []string{loincRespRate}},
	{key: "spo2", name: "Oxygen saturation", codes: []string{record.LoincSpO2, record.LoincSpO2Base}},
	{key: "temp", name: "Body temperature", codes: []string{record.LoincTemperature}, decimals: 1},
	{key: "weight", name: "Body weight", codes: []string{record.LoincWeight}, decimals: 1},
	{key: "height", name: "Body height", codes: []string{loincHeight}, decimals: 1},
	{key: "bmi", name: "Body mass index", codes: []string{loincBMI}, decimals: 1},
	{key: "head", name: "Head circumference", codes: []string{loincHeadCircumf}, decimals: 1},
	{key: "glucose", name: "Glucose", codes: []string{record.LoincGlucoseMass, record.LoincGlucoseMol}, decimals: 1, labOK: true},
}

// vitalOf returns the vital kind of an Observation, or nil.
func vitalOf(r record.Resource) *vitalKind {
	vitalCat := r.HasCoding("category", record.ObsCategory, "vital-signs")
	for i := range vitalKinds {
		k := &vitalKinds[i]
		for _, c := range k.codes {
			if r.HasCoding("code", record.LOINC, c) && (!k.labOK || vitalCat) {
				return k
			}
		}
	}
	return nil
}

// reading is one vital-sign reading.
type reading struct {
	when   record.When
	v, v2  float64 // v2: diastolic
	hasV2  bool
	text   string // as people write it: "128/82 mmHg", "72 /min"
	source string
}

// series is the readings of one kind, oldest first.
type series struct {
	kind     *vitalKind
	readings []reading
}

// vitalSeries sorts vital-sign observations into series, in the order of
// vitalKinds. Systolic and diastolic observations written apart (8480-6,
// 8462-4) at the same time as written make one blood pressure reading.
func vitalSeries(items []*item) []series {
	byKey := map[string]*series{}
	type half struct {
		v    float64
		text string
		src  string
		when record.When
	}
	sys, dia := map[string]half{}, map[string]half{}
	for _, it := range items {
		r := it.res
		if r.Type() != "Observation" || it.neg != "" {
			continue
		}
		k := vitalOf(r)
		if k == nil {
			for _, part := range []struct {
				code string
				to   map[string]half
			}{{record.LoincSystolic, sys}, {record.LoincDiastolic, dia}} {
				if r.HasCoding("code", record.LOINC, part.code) {
					if v, ok := numberValue(r.Get("valueQuantity.value")); ok && !it.when.IsZero() {
						part.to[it.when.Raw] = half{v: v, text: numberText(r.Get("valueQuantity.value"), 0), src: it.source, when: it.when}
					}
				}
			}
			continue
		}
		if it.when.IsZero() {
			continue
		}
		rd := reading{when: it.when, source: it.source}
		if k.key == "bp" {
			s, d, ok := bpComponents(r)
			if !ok {
				continue
			}
			rd.v, rd.v2, rd.hasV2 = s, d, true
			rd.text = numberText(s, 0) + "/" + numberText(d, 0) + " mmHg"
		} else {
			v, ok := numberValue(r.Get("valueQuantity.value"))
			if !ok {
				continue
			}
			rd.v = v
			rd.text = quantityText(r.Get("valueQuantity"), k.decimals)
		}
		s := byKey[k.key]
		if s == nil {
			s = &series{kind: k}
			byKey[k.key] = s
		}
		s.readings = append(s.readings, rd)
	}
	for raw, s := range sys {
		d, ok := dia[raw]
		if !ok {
			continue
		}
		ser := byKey["bp"]
		if ser == nil {
			ser = &series{kind: &vitalKinds[0]}
			byKey["bp"] = ser
		}
		ser.readings = append(ser.readings, reading{when: s.when, v: s.v, v2: d.v, hasV2: true, text: s.text + "/" + d.text + " mmHg", source: s.src})
	}
	var out []series
	for i := range vitalKinds {
		if s := byKey[vitalKinds[i].key]; s != nil {
			slices.SortStableFunc(s.readings, func(a, b reading) int { return compareWhen(a.when, b.when) })
			out = append(out, *s)
		}
	}
	return out
}

// bpComponents reads systolic and diastolic from a blood pressure panel.
func bpComponents(r record.Resource) (sys, dia float64, ok bool) {
	var hs, hd bool
	for _, c := range r.List("component") {
		cm, isMap := c.(map[string]any)
		if !isMap {
			continue
		}
		cr := record.Resource(cm)
		v, vok := numberValue(cr.Get("valueQuantity.value"))
		switch {
		case !vok:
		case cr.HasCoding("code", record.LOINC, record.LoincSystolic):
			sys, hs = v, true
		case cr.HasCoding("code", record.LOINC, record.LoincDiastolic):
			dia, hd = v, true
		}
	}
	return sys, dia, hs && hd
}
