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
	num := strconv.FormatFloat(*rd.Value, 'f', -1, 64)
	switch rd.Type {
	case api.ReadingSteps:
		switch strings.ToLower(strings.TrimSpace(rd.Unit)) {
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
	// Every other type is a vital sign of record's table, by its kind or an
	// alias (heart_rate is hr).
	vs, ok := record.LookupVital(rd.Type)
	if !ok {
		return bad("type", "must be one of steps, "+strings.Join(readingTypes, ", "))
	}
	u, ok := vs.Unit(rd.Unit)
	if !ok {
		return bad("unit", strings.ToLower(vs.Name)+" is in "+unitList(vs))
	}
	if len(vs.Components) > 0 {
		if rd.Value2 == nil {
			return bad("value2", "is required for "+vs.Kind+" (the "+strings.ToLower(vs.Components[1].Name)+")")
		}
		num += "/" + strconv.FormatFloat(*rd.Value2, 'f', -1, 64)
	} else if rd.Value2 != nil {
		return bad("value2", "applies to bp only")
	}
	v, err := record.ParseVital(vs.Kind, num+u.Aliases[0])
	if err != nil {
		return record.Record{}, err
	}
	return record.NewVital(c, v, at)
}

// readingTypes are the vital-sign reading types: the kinds of record's
// vital-sign table, hr under the name the API has always used (heart_rate).
var readingTypes = func() []string {
	names := map[string]string{"hr": api.ReadingHeartRate}
	var out []string
	for _, k := range record.VitalKinds {
		if n, ok := names[k]; ok {
			k = n
		}
		out = append(out, k)
	}
	return out
}()

// unitList names a vital's units: "kg or lb".
func unitList(vs *record.VitalSign) string {
	names := make([]string, len(vs.Units))
	for i, u := range vs.Units {
		names[i] = u.UCUM
	}
	return strings.Join(names, " or ")
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
