package server

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/phr-project/phr/pkg/record"
	"github.com/phr-project/phr/pkg/server/api"
)

// LoincSteps is the LOINC code of a step count (Number of steps in 24
// hour Measured), used for the count over a reading's period.
const LoincSteps = "41950-7"

// maxSteps bounds one step reading.
const maxSteps = 1_000_000

// buildReading turns one device reading into an Observation with LOINC
// codes and UCUM units. Vital signs go through record.ParseVital (so the
// same plausibility ranges apply as to `phr log vital`) and
// record.NewVital. Errors name the reading's field; the caller adds the
// index. The caller sets the device provenance.
func buildReading(c record.Common, rd api.Reading) (record.Record, error) {
	bad := func(field, msg string) (record.Record, error) {
		return record.Record{}, &record.InputError{Field: field, Msg: msg}
	}
	if rd.ID == "" || len(rd.ID) > 200 || !utf8.ValidString(rd.ID) {
		return bad("id", "must be the reading's ID (1-200 bytes)")
	}
	if rd.Value == nil {
		return bad("value", "is required")
	}
	if math.IsNaN(*rd.Value) || math.IsInf(*rd.Value, 0) {
		return bad("value", "must be a number")
	}
	if strings.TrimSpace(rd.At) == "" {
		return bad("at", "is required (RFC 3339)")
	}
	at, err := time.Parse(time.RFC3339, rd.At)
	if err != nil {
		return bad("at", "must be an RFC 3339 time, e.g. 2026-05-01T08:30:00Z")
	}
	if at.Year() < record.MinYear || at.Year() > 9999 {
		return bad("at", fmt.Sprintf("is out of range (from year %d)", record.MinYear))
	}
	var end time.Time
	if rd.End != "" {
		if rd.Type != api.ReadingSteps {
			return bad("end", "applies to steps only")
		}
		if end, err = time.Parse(time.RFC3339, rd.End); err != nil {
			return bad("end", "must be an RFC 3339 time")
		}
		if end.Before(at) {
			return bad("end", "is before at")
		}
	}
	if rd.Value2 != nil && rd.Type != api.ReadingBP {
		return bad("value2", "applies to bp only")
	}
	num := strconv.FormatFloat(*rd.Value, 'f', -1, 64)
	unit := strings.ToLower(strings.TrimSpace(rd.Unit))
	vital := func(kind, value string) (record.Record, error) {
		v, err := record.ParseVital(kind, value)
		if err != nil {
			return record.Record{}, err
		}
		return record.NewVital(c, v, at)
	}
	switch rd.Type {
	case api.ReadingHeartRate:
		switch unit {
		case "", "/min", "bpm", "beats/min", "{beats}/min":
		default:
			return bad("unit", "heart rate is in /min")
		}
		return vital("hr", num)
	case api.ReadingWeight:
		switch unit {
		case "kg":
		case "lb", "lbs", "[lb_av]":
			unit = "lb"
		default:
			return bad("unit", "weight is in kg or lb")
		}
		return vital("weight", num+unit)
	case api.ReadingGlucose:
		switch unit {
		case "mg/dl", "mmol/l":
		default:
			return bad("unit", "glucose is in mg/dL or mmol/L")
		}
		return vital("glucose", num+unit)
	case api.ReadingSpO2:
		switch unit {
		case "", "%":
		default:
			return bad("unit", "SpO2 is in %")
		}
		return vital("spo2", num+"%")
	case api.ReadingBP:
		if rd.Value2 == nil {
			return bad("value2", "is required for bp (the diastolic pressure)")
		}
		switch unit {
		case "", "mmhg", "mm[hg]":
		default:
			return bad("unit", "blood pressure is in mm[Hg]")
		}
		return vital("bp", num+"/"+strconv.FormatFloat(*rd.Value2, 'f', -1, 64))
	case api.ReadingSteps:
		switch unit {
		case "", "steps", "{steps}", "1", "/{tot}":
		default:
			return bad("unit", "steps are a count")
		}
		n := *rd.Value
		if n < 0 || n > maxSteps || n != math.Trunc(n) {
			return bad("value", "steps must be a whole number from 0 to 1000000")
		}
		return steps(c, int64(n), at, end)
	case "":
		return bad("type", "is required")
	}
	return bad("type", "must be one of heart_rate, steps, glucose, bp, weight, spo2")
}

func steps(c record.Common, n int64, at, end time.Time) (record.Record, error) {
	id := c.NewID()
	res := map[string]any{
		"resourceType": "Observation",
		"id":           id,
		"status":       "final",
		"category": []any{map[string]any{"coding": []any{map[string]any{
			"system": record.ObsCategory, "code": "activity", "display": "Activity"}}}},
		"code": map[string]any{"coding": []any{map[string]any{
			"system": record.LOINC, "code": LoincSteps, "display": "Number of steps in 24 hour Measured"}}, "text": "Steps"},
		"valueQuantity": map[string]any{"value": n, "unit": "steps", "system": record.UCUM, "code": "{steps}"},
	}
	if c.Subject != "" {
		res["subject"] = map[string]any{"reference": c.Subject}
	}
	if end.IsZero() {
		res["effectiveDateTime"] = at.Format(time.RFC3339)
	} else {
		res["effectivePeriod"] = map[string]any{"start": at.Format(time.RFC3339), "end": end.Format(time.RFC3339)}
	}
	data, err := json.Marshal(res)
	if err != nil {
		return record.Record{}, err
	}
	r, err := record.New(data, record.Provenance{Method: record.MethodDevice, Author: c.Author})
	if err != nil {
		return record.Record{}, err
	}
	r.ID = id
	return r, nil
}
