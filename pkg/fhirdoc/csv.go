package fhirdoc

import (
	"encoding/csv"
	"io"
	"strconv"
	"time"

	"github.com/phr-project/phr/pkg/record"
)

// CSVColumns is the header of the CSV template of docs/formats/csv.md.
var CSVColumns = []string{"type", "name", "value", "unit", "date", "end_date", "code", "code_system", "status", "note"}

// WriteCSV writes the CSV template of docs/formats/csv.md: the header,
// then, as each gives them, the records the template can hold
// (medications, lab results, vital signs), one row each. It returns how
// many it wrote and how many it left out.
func WriteCSV(w io.Writer, each Each) (n, skipped int, err error) {
	cw := csv.NewWriter(w)
	if err := cw.Write(CSVColumns); err != nil {
		return 0, 0, err
	}
	err = each(func(r record.Record) error {
		row, ok := csvRow(r)
		if !ok {
			skipped++
			return nil
		}
		n++
		return cw.Write(row)
	})
	if err != nil {
		return n, skipped, err
	}
	cw.Flush()
	return n, skipped, cw.Error()
}

func csvDate(s string) string {
	if s == "" {
		return ""
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.Format(time.RFC3339)
	}
	return s // a FHIR date: 2024, 2024-03, 2024-03-01
}

func firstNote(res record.Resource) string { return res.Str("note.text") }

func codeOf(res record.Resource, path string) (code, system string) {
	for _, c := range res.Codings(path) {
		switch c.System {
		case record.RxNorm:
			return c.Code, "rxnorm"
		case record.LOINC:
			return c.Code, "loinc"
		case record.SNOMED:
			return c.Code, "snomed"
		}
	}
	return "", ""
}

func num(v any) string {
	switch n := v.(type) {
	case string:
		return n
	case float64:
		return strconv.FormatFloat(n, 'f', -1, 64)
	}
	if s, ok := v.(interface{ String() string }); ok {
		return s.String()
	}
	return ""
}

// csvRow maps one record to a template row.
func csvRow(r record.Record) ([]string, bool) {
	res, err := record.Parse(r.Resource)
	if err != nil || r.Deleted {
		return nil, false
	}
	switch {
	case r.ResourceType == "MedicationStatement":
		name := res.ConceptText("medicationCodeableConcept")
		if name == "" {
			return nil, false
		}
		code, sys := codeOf(res, "medicationCodeableConcept")
		value, unit := num(res.Get("dosage.doseAndRate.doseQuantity.value")), res.Str("dosage.doseAndRate.doseQuantity.unit")
		start := res.Str("effectivePeriod.start")
		if start == "" {
			start = res.Str("effectiveDateTime")
		}
		return []string{"medication", name, value, unit, csvDate(start), csvDate(res.Str("effectivePeriod.end")), code, sys, res.Str("status"), firstNote(res)}, true
	case r.Kind == record.KindVital:
		vs := record.VitalOf(res)
		if vs == nil {
			return nil, false
		}
		kind := vs.Kind
		at := csvDate(res.Str("effectiveDateTime"))
		if kind == "bp" {
			var sys, dia, unit string
			for _, c := range res.List("component") {
				cm, _ := c.(map[string]any)
				cr := record.Resource(cm)
				switch {
				case cr.HasCoding("code", record.LOINC, record.LoincSystolic):
					sys, unit = num(cr.Get("valueQuantity.value")), cr.Str("valueQuantity.unit")
				case cr.HasCoding("code", record.LOINC, record.LoincDiastolic):
					dia = num(cr.Get("valueQuantity.value"))
				}
			}
			if sys == "" || dia == "" {
				return nil, false
			}
			return []string{"vital", "bp", sys + "/" + dia, unit, at, "", "", "", "", firstNote(res)}, true
		}
		value := num(res.Get("valueQuantity.value"))
		unit := res.Str("valueQuantity.unit")
		if value == "" {
			return nil, false
		}
		return []string{"vital", kind, value, unit, at, "", "", "", "", firstNote(res)}, true
	case r.Kind == record.KindLab && r.ResourceType == "Observation":
		name := res.ConceptText("code")
		value := num(res.Get("valueQuantity.value"))
		if c := res.Str("valueQuantity.comparator"); c != "" {
			value = c + value
		}
		unit := res.Str("valueQuantity.unit")
		if value == "" {
			value = res.Str("valueString")
		}
		if value == "" {
			value = res.ConceptText("valueCodeableConcept")
		}
		if name == "" || value == "" {
			return nil, false
		}
		code, sys := codeOf(res, "code")
		at := res.Str("effectiveDateTime")
		if at == "" {
			at = res.Str("effectivePeriod.start")
		}
		return []string{"lab", name, value, unit, csvDate(at), csvDate(res.Str("effectivePeriod.end")), code, sys, res.Str("status"), firstNote(res)}, true
	}
	return nil, false
}
