package applehealth

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"strings"

	"github.com/phr-project/phr/pkg/record"
)

// HealthKitSystem is the code system used for HealthKit identifiers (type,
// category value and workout activity identifiers) that have no LOINC code,
// and alongside the LOINC code where there is one.
const HealthKitSystem = "http://developer.apple.com/documentation/healthkit"

// ObservationStatistics is the FHIR code system of statistics (minimum,
// maximum, ...), used for the components of daily aggregates.
const ObservationStatistics = "http://terminology.hl7.org/CodeSystem/observation-statistics"

// The JSON shapes below are the subset of FHIR R4 this importer writes.
// Struct field order fixes the key order, so the same item always gives the
// same bytes.

type reference struct {
	Display string `json:"display,omitempty"`
}

type component struct {
	Code                 record.CodeableConcept  `json:"code"`
	ValueQuantity        *record.DecimalQuantity `json:"valueQuantity,omitempty"`
	ValueCodeableConcept *record.CodeableConcept `json:"valueCodeableConcept,omitempty"`
	ValueString          string                  `json:"valueString,omitempty"`
}

type observation struct {
	ResourceType         string                   `json:"resourceType"`
	ID                   string                   `json:"id,omitempty"`
	Status               string                   `json:"status"`
	Category             []record.CodeableConcept `json:"category,omitempty"`
	Code                 record.CodeableConcept   `json:"code"`
	EffectiveDateTime    string                   `json:"effectiveDateTime,omitempty"`
	EffectivePeriod      *record.Period           `json:"effectivePeriod,omitempty"`
	Issued               string                   `json:"issued,omitempty"`
	ValueQuantity        *record.DecimalQuantity  `json:"valueQuantity,omitempty"`
	ValueCodeableConcept *record.CodeableConcept  `json:"valueCodeableConcept,omitempty"`
	ValueString          string                   `json:"valueString,omitempty"`
	Note                 []record.Annotation      `json:"note,omitempty"`
	Device               *reference               `json:"device,omitempty"`
	Component            []component              `json:"component,omitempty"`
}

type patient struct {
	ResourceType string `json:"resourceType"`
	ID           string `json:"id,omitempty"`
	Gender       string `json:"gender,omitempty"`
	BirthDate    string `json:"birthDate,omitempty"`
}

var categories = map[string]record.CodeableConcept{
	"vital-signs": {Coding: []record.Coding{{System: record.ObsCategory, Code: "vital-signs", Display: "Vital Signs"}}},
	"activity":    {Coding: []record.Coding{{System: record.ObsCategory, Code: "activity", Display: "Activity"}}},
	"laboratory":  {Coding: []record.Coding{{System: record.ObsCategory, Code: "laboratory", Display: "Laboratory"}}},
}

func category(name string) []record.CodeableConcept {
	c, ok := categories[name]
	if !ok {
		return nil
	}
	return []record.CodeableConcept{c}
}

// withID marshals a resource whose ID field is empty, and splices in a
// deterministic id: the first 128 bits of the SHA-256 of the bytes without
// it, in hex. The id is "ah-" + 32 hex digits, a valid FHIR id.
func withID(res any) ([]byte, error) {
	data, err := json.Marshal(res)
	if err != nil {
		return nil, err
	}
	// {"resourceType":"X",...: insert after the first member.
	i := bytes.IndexByte(data[1:], ',')
	if !bytes.HasPrefix(data, []byte(`{"resourceType":`)) || i < 0 {
		return nil, errors.New("internal error: unexpected resource shape")
	}
	i++
	sum := sha256.Sum256(data)
	var id [3 + 32]byte
	copy(id[:], "ah-")
	hex.Encode(id[3:], sum[:16])
	out := make([]byte, 0, len(data)+len(`,"id":""`)+len(id))
	out = append(out, data[:i]...)
	out = append(out, `,"id":"`...)
	out = append(out, id[:]...)
	out = append(out, '"')
	out = append(out, data[i:]...)
	return out, nil
}

// maxValue bounds the magnitude of values, so that daily sums stay finite.
const maxValue = 1e15

// number normalizes a decimal from the export: a JSON number is kept as
// written (no float round trip), other finite forms that ParseFloat takes
// ("+5", ".5", "5.") are rewritten. ok is false for anything else.
func number(s string) (json.Number, float64, bool) {
	s = strings.TrimSpace(s)
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f != f || f > maxValue || f < -maxValue {
		return "", 0, false
	}
	if strings.ContainsAny(s, "xXpP_iInN") { // hex floats, Inf, NaN
		return "", 0, false
	}
	if record.IsDecimal(s) {
		return json.Number(s), f, true
	}
	return json.Number(record.FormatDecimal(f)), f, true
}

// times100 multiplies a plain decimal by 100 by moving its point, so that
// 0.97 becomes exactly 97. Numbers with an exponent go through float64.
func times100(n json.Number, f float64) json.Number {
	s := string(n)
	if strings.ContainsAny(s, "eE") {
		return json.Number(record.FormatDecimal(round(f*100, 10)))
	}
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	ip, fp, _ := strings.Cut(s, ".")
	for len(fp) < 2 {
		fp += "0"
	}
	ip += fp[:2]
	fp = strings.TrimRight(fp[2:], "0")
	ip = strings.TrimLeft(ip, "0")
	if ip == "" {
		ip = "0"
	}
	out := ip
	if fp != "" {
		out += "." + fp
	}
	if neg && out != "0" {
		out = "-" + out
	}
	return json.Number(out)
}

// round rounds f to the given number of decimals.
func round(f float64, decimals int) float64 {
	p := math.Pow(10, float64(decimals))
	if math.Abs(f*p) > 1e15 {
		return f
	}
	return math.Round(f*p) / p
}
