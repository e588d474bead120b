package applehealth

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"

	"github.com/phr-project/phr/pkg/record"
)

// maxAggregates bounds the daily accumulators (types x days x sources x
// units) held until the end of the file: 1M is ~30 years of 100 series.
// maxAggregateBytes bounds the file's text their keys hold (source names
// and units, up to MaxAttrBytes each).
const (
	maxAggregates     = 1 << 20
	maxAggregateBytes = 64 << 20
)

// aggKey identifies one daily aggregate. Samples from different sources
// stay apart: an iPhone and a watch both count the same steps, and HealthKit
// resolves that overlap by source priority, which the export does not say.
type aggKey struct {
	typ, day, source, unit string
}

type aggAcc struct {
	spec          typeSpec
	q             record.DecimalQuantity // unit fields only
	n             int
	sum, min, max float64
}

type aggregator struct {
	m     map[aggKey]*aggAcc
	bytes int // source and unit text held by the keys
}

// add folds one sample into its day: the local calendar day of its start
// (RFC 3339, in the offset the export wrote).
func (a *aggregator) add(p *parser, typ string, spec typeSpec, n *node, start string, q record.DecimalQuantity, f float64, line int) error {
	unit := q.Code
	if unit == "" {
		unit = q.Unit
	}
	k := aggKey{typ: typ, day: start[:10], source: deviceText(sourceOf(n), ""), unit: unit}
	acc := a.m[k]
	if acc == nil {
		if a.m == nil {
			a.m = map[aggKey]*aggAcc{}
		}
		if len(a.m) >= maxAggregates {
			return parseErr(p.file, line, 0, "Record", fmt.Errorf("%w: more than %d daily aggregates", ErrTooLarge, maxAggregates))
		}
		a.bytes += len(k.source) + len(k.unit) // q's unit shares k.unit's bytes
		if a.bytes > maxAggregateBytes {
			return parseErr(p.file, line, 0, "Record", fmt.Errorf("%w: daily aggregates over %d MiB", ErrTooLarge, maxAggregateBytes>>20))
		}
		q.Value = ""
		acc = &aggAcc{spec: spec, q: q, min: f, max: f}
		a.m[k] = acc
	}
	acc.n++
	acc.sum += f
	acc.min = min(acc.min, f)
	acc.max = max(acc.max, f)
	return nil
}

// flush emits the aggregates sorted by type, day, source and unit.
func (a *aggregator) flush(p *parser) error {
	keys := make([]aggKey, 0, len(a.m))
	for k := range a.m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(x, y aggKey) int {
		return cmp.Or(cmp.Compare(x.typ, y.typ), cmp.Compare(x.day, y.day), cmp.Compare(x.source, y.source), cmp.Compare(x.unit, y.unit))
	})
	for _, k := range keys {
		if err := p.ctx.Err(); err != nil {
			return err
		}
		acc := a.m[k]
		if err := p.emit(acc.observation(p, k)); err != nil {
			return err
		}
	}
	a.m = nil
	return nil
}

func (acc *aggAcc) observation(p *parser, k aggKey) observation {
	spec := acc.spec
	o := observation{
		ResourceType:      "Observation",
		Status:            "final",
		Category:          category(spec.category),
		Code:              p.code(k.typ, spec),
		EffectiveDateTime: k.day,
	}
	if spec.daily != "" && spec.agg == aggSum {
		o.Code.Coding[0] = record.Coding{System: record.LOINC, Code: spec.daily, Display: spec.dailyDisplay}
	}
	if k.source != "" {
		o.Device = &reference{Display: k.source}
	}
	qty := func(f float64) *record.DecimalQuantity {
		q := acc.q
		q.Value = jsonNumberOf(round(f, 4))
		return &q
	}
	samples := strconv.Itoa(acc.n) + " sample"
	if acc.n != 1 {
		samples += "s"
	}
	switch spec.agg {
	case aggSum:
		o.Code.Text += " (daily total)"
		o.ValueQuantity = qty(acc.sum)
		o.Note = []record.Annotation{{Text: "Daily total of " + samples + "."}}
	default:
		o.Code.Text += " (daily mean)"
		o.ValueQuantity = qty(acc.sum / float64(acc.n))
		o.Component = []component{
			{Code: record.CodeableConcept{Coding: []record.Coding{{System: ObservationStatistics, Code: "minimum", Display: "Minimum"}}, Text: "Minimum"}, ValueQuantity: qty(acc.min)},
			{Code: record.CodeableConcept{Coding: []record.Coding{{System: ObservationStatistics, Code: "maximum", Display: "Maximum"}}, Text: "Maximum"}, ValueQuantity: qty(acc.max)},
		}
		o.Note = []record.Annotation{{Text: "Daily mean, minimum and maximum of " + samples + "."}}
	}
	return o
}

func jsonNumberOf(f float64) json.Number { return json.Number(record.FormatDecimal(f)) }
