package csvimport

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/phr-project/phr/pkg/record"
)

// maxText bounds text fields (name, note), as for patient-entered data.
const maxText = 4000

// rowError is a problem with one column of a row.
type rowError struct {
	col string
	err error
}

func bad(col, format string, args ...any) *rowError {
	return &rowError{col: col, err: fmt.Errorf(format, args...)}
}

// cells holds one row's fields by column name, trimmed.
type cells map[string]string

// row maps one row and sends its record, or reports why it cannot.
func (ru *run) row(fields []string, line int) error {
	if allEmpty(fields) {
		return nil
	}
	n := len(ru.cols)
	if len(fields) < n || len(fields) > n && !allEmpty(fields[n:]) {
		ru.fail(line, "row", fmt.Errorf("has %d fields, the header has %d", len(fields), n))
		return nil
	}
	c := cells{}
	for col, i := range ru.cols {
		c[col] = strings.TrimSpace(fields[i])
	}
	for col, v := range c {
		if !utf8.ValidString(v) {
			ru.fail(line, col, errors.New("is not valid UTF-8 (save the file as UTF-8)"))
			return nil
		}
		if len(v) > maxText {
			ru.fail(line, col, fmt.Errorf("is longer than %d bytes", maxText))
			return nil
		}
	}
	var res any
	var rerr *rowError
	switch kind := strings.ToLower(c[colType]); kind {
	case "medication", "medications", "med", "meds", "medicine":
		res, rerr = ru.medication(c)
	case "lab", "labs", "laboratory", "result", "results":
		res, rerr = ru.lab(c)
	case "vital", "vitals", "vital-sign", "vital sign", "vital-signs", "vital signs", "vital_sign":
		res, rerr = ru.vital(c)
	case "":
		rerr = bad(colType, "is empty (use medication, lab or vital)")
	default:
		rerr = bad(colType, "is not one of medication, lab or vital")
	}
	if rerr != nil {
		ru.fail(line, rerr.col, rerr.err)
		return nil
	}
	data, err := withID(res)
	if err != nil {
		ru.fail(line, "row", err)
		return nil
	}
	rec, err := record.New(data, ru.prov)
	if err != nil {
		ru.fail(line, "row", err)
		return nil
	}
	return ru.sink.Record(rec)
}

func allEmpty(fields []string) bool {
	for _, f := range fields {
		if strings.TrimSpace(f) != "" {
			return false
		}
	}
	return true
}

// FHIR shapes. Struct field order fixes the key order of the JSON.

type doseAndRate struct {
	DoseQuantity *record.DecimalQuantity `json:"doseQuantity,omitempty"`
}

type dosage struct {
	Text        string        `json:"text,omitempty"`
	DoseAndRate []doseAndRate `json:"doseAndRate,omitempty"`
}

type medicationStatement struct {
	ResourceType              string                 `json:"resourceType"`
	ID                        string                 `json:"id,omitempty"`
	Status                    string                 `json:"status"`
	MedicationCodeableConcept record.CodeableConcept `json:"medicationCodeableConcept"`
	EffectiveDateTime         string                 `json:"effectiveDateTime,omitempty"`
	EffectivePeriod           *record.Period         `json:"effectivePeriod,omitempty"`
	Dosage                    []dosage               `json:"dosage,omitempty"`
	Note                      []record.Annotation    `json:"note,omitempty"`
}

type observation struct {
	ResourceType      string                   `json:"resourceType"`
	ID                string                   `json:"id,omitempty"`
	Status            string                   `json:"status"`
	Category          []record.CodeableConcept `json:"category"`
	Code              record.CodeableConcept   `json:"code"`
	EffectiveDateTime string                   `json:"effectiveDateTime,omitempty"`
	EffectivePeriod   *record.Period           `json:"effectivePeriod,omitempty"`
	ValueQuantity     *record.DecimalQuantity  `json:"valueQuantity,omitempty"`
	ValueString       string                   `json:"valueString,omitempty"`
	Note              []record.Annotation      `json:"note,omitempty"`
}

func notes(c cells) []record.Annotation {
	if c[colNote] == "" {
		return nil
	}
	return []record.Annotation{{Text: c[colNote]}}
}

var medStatuses = []string{"active", "completed", "entered-in-error", "intended", "stopped", "on-hold", "unknown", "not-taken"}
var obsStatuses = []string{"registered", "preliminary", "final", "amended", "corrected", "cancelled", "entered-in-error", "unknown"}

func status(c cells, allowed []string, def string) (string, *rowError) {
	s := strings.ToLower(c[colStatus])
	if s == "" {
		return def, nil
	}
	for _, a := range allowed {
		if s == a {
			return s, nil
		}
	}
	return "", bad(colStatus, "is not one of %s", strings.Join(allowed, ", "))
}

// dates reads date and end_date as FHIR dateTimes.
func (ru *run) dates(c cells, required bool, kind string) (start, end string, rerr *rowError) {
	var st, et time.Time
	var err error
	if c[colDate] == "" {
		if required {
			return "", "", bad(colDate, "is required for %s rows", kind)
		}
	} else if start, st, err = ru.parseDate(c[colDate]); err != nil {
		return "", "", &rowError{colDate, err}
	}
	if c[colEndDate] != "" {
		if end, et, err = ru.parseDate(c[colEndDate]); err != nil {
			return "", "", &rowError{colEndDate, err}
		}
		if start != "" && et.Before(st) {
			return "", "", bad(colEndDate, "is before date")
		}
	}
	return start, end, nil
}

var errDate = errors.New("is not a date (use 2024-03-01, 2024-03-01T08:30 or 2024-03-01T08:30:00+01:00)")

// parseDate accepts a day, a local date and time, or RFC 3339. A day stays
// a FHIR date; a time without offset is read in ru.loc, or kept without
// an offset when no zone was given.
func (ru *run) parseDate(s string) (string, time.Time, error) {
	if t, err := time.Parse("2006-01-02", s); err == nil {
		return s, t, nil
	}
	if t, err := time.Parse(time.RFC3339, strings.ToUpper(s)); err == nil {
		return t.Format(time.RFC3339), t, nil
	}
	for _, l := range []string{"2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02 15:04:05", "2006-01-02 15:04"} {
		if ru.loc == nil {
			// No zone given: the time as written, without an offset
			// (its instant, for comparisons, is read as UTC).
			if t, err := time.Parse(l, s); err == nil {
				return t.Format("2006-01-02T15:04:05"), t, nil
			}
			continue
		}
		if t, err := time.ParseInLocation(l, s, ru.loc); err == nil {
			return t.Format(time.RFC3339), t, nil
		}
	}
	return "", time.Time{}, errDate
}

// codeSystem resolves code_system, defaulting by row type.
func codeSystem(c cells, def string) (string, *rowError) {
	s := c[colCodeSystem]
	switch strings.ToLower(strings.ReplaceAll(s, " ", "")) {
	case "":
		return def, nil
	case "loinc", record.LOINC:
		return record.LOINC, nil
	case "rxnorm", record.RxNorm:
		return record.RxNorm, nil
	case "snomed", "snomedct", "sct", record.SNOMED:
		return record.SNOMED, nil
	case "cvx", record.CVX:
		return record.CVX, nil
	}
	if (strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://") || strings.HasPrefix(s, "urn:")) && !strings.ContainsAny(s, " \t") && len(s) <= 200 {
		return s, nil
	}
	return "", bad(colCodeSystem, "is not loinc, rxnorm, snomed or a code system URI")
}

// checkCode validates a code for its system.
func checkCode(system, code string) *rowError {
	if strings.ContainsAny(code, " \t\r\n") || len(code) > 100 {
		return bad(colCode, "must be one code without spaces")
	}
	switch system {
	case record.LOINC:
		if !ValidLOINC(code) {
			return bad(colCode, "is not a valid LOINC code (digits, a hyphen and a check digit, e.g. 4548-4)")
		}
	case record.RxNorm:
		if !digits(code, 1, 10) {
			return bad(colCode, "is not an RxNorm code (1 to 10 digits)")
		}
	case record.SNOMED:
		if !digits(code, 6, 18) {
			return bad(colCode, "is not a SNOMED CT code (6 to 18 digits)")
		}
	}
	return nil
}

func digits(s string, lo, hi int) bool {
	if len(s) < lo || len(s) > hi {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// ValidLOINC checks a LOINC code's form and its mod-10 check digit.
func ValidLOINC(code string) bool {
	num, check, ok := strings.Cut(code, "-")
	if !ok || !digits(num, 1, 7) || !digits(check, 1, 1) {
		return false
	}
	sum := 0
	for i := len(num) - 1; i >= 0; i-- {
		d := int(num[i] - '0')
		if (len(num)-1-i)%2 == 0 { // rightmost digit and every other one are doubled
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
	}
	return (10-sum%10)%10 == int(check[0]-'0')
}

func (ru *run) medication(c cells) (any, *rowError) {
	if c[colName] == "" {
		return nil, bad(colName, "is empty (the medication's name)")
	}
	start, end, rerr := ru.dates(c, false, "medication")
	if rerr != nil {
		return nil, rerr
	}
	def := "active"
	if end != "" {
		def = "completed"
	}
	st, rerr := status(c, medStatuses, def)
	if rerr != nil {
		return nil, rerr
	}
	m := medicationStatement{ResourceType: "MedicationStatement", Status: st, Note: notes(c)}
	m.MedicationCodeableConcept.Text = c[colName]
	if code := c[colCode]; code != "" {
		sys, rerr := codeSystem(c, record.RxNorm)
		if rerr != nil {
			return nil, rerr
		}
		if rerr := checkCode(sys, code); rerr != nil {
			return nil, rerr
		}
		m.MedicationCodeableConcept.Coding = []record.Coding{{System: sys, Code: code}}
	} else if c[colCodeSystem] != "" {
		return nil, bad(colCodeSystem, "is set but code is empty")
	}
	if start != "" || end != "" {
		m.EffectivePeriod = &record.Period{Start: start, End: end}
	}
	if dose := strings.TrimSpace(c[colValue] + " " + c[colUnit]); dose != "" {
		if c[colValue] == "" {
			return nil, bad(colValue, "is empty but unit is set (the dose amount, e.g. 500 with unit mg)")
		}
		q, err := record.ParseQuantity(dose)
		if err != nil {
			return nil, bad(colValue, "is not a dose (a positive number, e.g. 500, with the unit in unit)")
		}
		fq := &record.DecimalQuantity{Value: json.Number(record.FormatDecimal(q.Value)), Unit: q.Unit}
		if q.Code != "" {
			fq.System, fq.Code = record.UCUM, q.Code
		}
		m.Dosage = []dosage{{Text: dose, DoseAndRate: []doseAndRate{{DoseQuantity: fq}}}}
	}
	return m, nil
}

var labCategory = []record.CodeableConcept{{Coding: []record.Coding{{System: record.ObsCategory, Code: "laboratory", Display: "Laboratory"}}}}

// labUnits corrects common spellings of lab units to UCUM.
var labUnits = map[string]string{
	"mg/dl": "mg/dL", "g/dl": "g/dL", "g/l": "g/L", "mg/l": "mg/L", "ug/dl": "ug/dL", "µg/dl": "ug/dL", "mcg/dl": "ug/dL",
	"ng/ml": "ng/mL", "pg/ml": "pg/mL", "ug/ml": "ug/mL", "µg/ml": "ug/mL", "mcg/ml": "ug/mL", "ng/dl": "ng/dL",
	"mmol/l": "mmol/L", "umol/l": "umol/L", "µmol/l": "umol/L", "nmol/l": "nmol/L", "pmol/l": "pmol/L", "mol/l": "mol/L",
	"meq/l": "meq/L", "iu/l": "[IU]/L", "u/l": "U/L", "miu/l": "m[IU]/L", "miu/ml": "m[IU]/mL", "uiu/ml": "u[IU]/mL", "µiu/ml": "u[IU]/mL",
	"iu/ml": "[IU]/mL", "u/ml": "U/mL", "%": "%", "fl": "fL", "pg": "pg", "mm/h": "mm/h", "mm/hr": "mm/h", "s": "s", "sec": "s",
	"k/ul": "10*3/uL", "k/µl": "10*3/uL", "10^3/ul": "10*3/uL", "10*3/ul": "10*3/uL", "x10^3/ul": "10*3/uL", "thou/ul": "10*3/uL",
	"m/ul": "10*6/uL", "10^6/ul": "10*6/uL", "10*6/ul": "10*6/uL", "x10^6/ul": "10*6/uL", "mill/ul": "10*6/uL",
	"10^9/l": "10*9/L", "10*9/l": "10*9/L", "x10^9/l": "10*9/L", "10^12/l": "10*12/L", "10*12/l": "10*12/L", "x10^12/l": "10*12/L",
	"ml/min/1.73m2": "mL/min/{1.73_m2}", "ml/min/1.73 m2": "mL/min/{1.73_m2}", "ml/min/{1.73_m2}": "mL/min/{1.73_m2}",
	"ratio": "{ratio}", "mmhg": "mm[Hg]", "cells/ul": "/uL", "/ul": "/uL", "/hpf": "/[HPF]", "/lpf": "/[LPF]",
}

// labUnit returns the unit as shown and its UCUM code, or no code for a
// unit written with characters UCUM does not use.
func labUnit(u string) (unit, code string) {
	if code, ok := labUnits[strings.ToLower(u)]; ok {
		return u, code
	}
	for i := 0; i < len(u); i++ {
		if u[i] <= ' ' || u[i] > '~' || u[i] == '"' {
			return u, ""
		}
	}
	return u, u
}

// labValue parses "6.1", "<0.5", ">= 60". ok is false for text.
func labValue(s string) (record.DecimalQuantity, bool) {
	var q record.DecimalQuantity
	for _, cmp := range []string{"<=", ">=", "<", ">"} {
		if rest, ok := strings.CutPrefix(s, cmp); ok {
			q.Comparator, s = cmp, strings.TrimSpace(rest)
			break
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) || strings.ContainsAny(s, "xXpP_nNiI") {
		return record.DecimalQuantity{}, false
	}
	q.Value = json.Number(record.FormatDecimal(f))
	if record.IsDecimal(s) && !strings.ContainsAny(s, "eE") { // a plain decimal: kept as written
		q.Value = json.Number(s)
	}
	return q, true
}

func (ru *run) lab(c cells) (any, *rowError) {
	if c[colName] == "" {
		return nil, bad(colName, "is empty (the test's name)")
	}
	start, end, rerr := ru.dates(c, true, "lab")
	if rerr != nil {
		return nil, rerr
	}
	st, rerr := status(c, obsStatuses, "final")
	if rerr != nil {
		return nil, rerr
	}
	o := observation{ResourceType: "Observation", Status: st, Category: labCategory, Code: record.CodeableConcept{Text: c[colName]}, Note: notes(c)}
	if code := c[colCode]; code != "" {
		sys, rerr := codeSystem(c, record.LOINC)
		if rerr != nil {
			return nil, rerr
		}
		if rerr := checkCode(sys, code); rerr != nil {
			return nil, rerr
		}
		o.Code.Coding = []record.Coding{{System: sys, Code: code}}
	} else if c[colCodeSystem] != "" {
		return nil, bad(colCodeSystem, "is set but code is empty")
	}
	effective(&o, start, end)
	v := c[colValue]
	if v == "" {
		return nil, bad(colValue, "is required for lab rows (the result)")
	}
	if q, ok := labValue(v); ok {
		if u := c[colUnit]; u != "" {
			q.Unit, q.Code = labUnit(u)
			if q.Code != "" {
				q.System = record.UCUM
			}
		}
		o.ValueQuantity = &q
	} else {
		if strings.ContainsAny(v[:1], "<>0123456789.-+") {
			return nil, bad(colValue, "is not a number (write 6.1, <0.5 or >=60; text results such as negative are kept as text)")
		}
		if c[colUnit] != "" {
			return nil, bad(colUnit, "is set but value is text, not a number")
		}
		o.ValueString = v
	}
	return o, nil
}

func effective(o *observation, start, end string) {
	if end == "" || end == start {
		o.EffectiveDateTime = start
	} else {
		o.EffectivePeriod = &record.Period{Start: start, End: end}
	}
}

// vital reads a vital row: name, value and unit as record's vital-sign
// table knows them (record.LookupVital, record.ParseVital).
func (ru *run) vital(c cells) (any, *rowError) {
	vs, ok := record.LookupVital(c[colName])
	if !ok {
		if c[colName] == "" {
			return nil, bad(colName, "is empty (use one of %s)", strings.Join(record.VitalKinds, ", "))
		}
		return nil, bad(colName, "is not a vital phr knows (use one of %s)", strings.Join(record.VitalKinds, ", "))
	}
	if c[colValue] == "" {
		return nil, bad(colValue, "is required for vital rows (the reading)")
	}
	start, end, rerr := ru.dates(c, true, "vital")
	if rerr != nil {
		return nil, rerr
	}
	st, rerr := status(c, obsStatuses, "final")
	if rerr != nil {
		return nil, rerr
	}
	v, err := record.ParseVital(vs.Kind, c[colValue]+c[colUnit])
	if err != nil {
		col := colValue
		if c[colUnit] != "" {
			col = colValue + "," + colUnit
		}
		return nil, bad(col, "is not a plausible reading (want %s)", vs.Expect())
	}
	at, _, _ := ru.parseDateTime(c[colDate])
	built, err := record.NewVital(record.Common{Now: at}, v, at)
	if err != nil {
		return nil, bad(colValue, "cannot be recorded")
	}
	res, err := record.Parse(built.Resource)
	if err != nil {
		return nil, bad(colValue, "cannot be recorded")
	}
	if code := c[colCode]; code != "" {
		if sys, _ := codeSystem(c, record.LOINC); !res.HasCoding("code", sys, code) {
			return nil, bad(colCode, "does not match the vital named in name (leave code empty for vital rows)")
		}
	} else if c[colCodeSystem] != "" {
		return nil, bad(colCodeSystem, "is set but code is empty")
	}
	// NewVital's resource carries a random id and the time as an instant:
	// drop the id (withID adds a content hash) and write the dates as given.
	delete(res, "id")
	delete(res, "effectiveDateTime")
	if end == "" || end == start {
		res["effectiveDateTime"] = start
	} else {
		res["effectivePeriod"] = map[string]any{"start": start, "end": end}
	}
	res["status"] = st
	if n := c[colNote]; n != "" {
		res["note"] = []any{map[string]any{"text": n}}
	}
	return map[string]any(res), nil
}

// parseDateTime is parseDate for callers that need the instant only.
func (ru *run) parseDateTime(s string) (time.Time, string, error) {
	str, t, err := ru.parseDate(s)
	return t, str, err
}

// withID marshals a resource and adds a deterministic id: "csv-" and the
// first 128 bits of the SHA-256 of the bytes without it, in hex. The id goes
// after resourceType when that comes first (structs), else first (maps,
// whose keys marshal sorted).
func withID(res any) ([]byte, error) {
	if m, ok := res.(map[string]any); ok {
		delete(m, "id")
	}
	data, err := json.Marshal(res)
	if err != nil {
		return nil, err
	}
	if len(data) < 2 || data[0] != '{' {
		return nil, errors.New("internal error: resource is not an object")
	}
	sum := sha256.Sum256(data)
	id := `"id":"csv-` + hex.EncodeToString(sum[:16]) + `"`
	at, sep := 1, ","
	if strings.HasPrefix(string(data), `{"resourceType":`) {
		at = 1 + strings.IndexByte(string(data[1:]), ',')
		if at == 0 {
			at = len(data) - 1
		}
		id, sep = ","+id, ""
	}
	out := make([]byte, 0, len(data)+len(id)+1)
	out = append(out, data[:at]...)
	out = append(out, id...)
	out = append(out, sep...)
	return append(out, data[at:]...), nil
}
