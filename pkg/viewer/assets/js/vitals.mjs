// The vital-sign table, read from phr's one definition of it: vitals.json
// is generated from the Go table (pkg/record/vital.go, record.VitalSigns)
// by `go generate ./pkg/viewer`, and a Go test fails when it is out of
// date. This module only reads it: which LOINC codes make each kind of
// measurement (the codes phr writes and the other codes sources use), its
// name, its units (the symbol people read, the spellings sources write),
// the precision a reading is shown with when its source wrote noise, the
// typical adult range drawn behind its trend chart (with its source), and
// whether FHIR counts it as a vital sign.

import table from './vitals.json' with { type: 'json' };
import { unitText } from './units.mjs';

const KINDS = table.vitalSigns;

// byCode maps a LOINC code to its kind and, for a panel's component such
// as systolic pressure, the component.
const byCode = new Map();
for (const k of KINDS) {
  const codes = [...k.codes.map((c) => c.code), ...k.units.flatMap((u) => (u.codes || []).map((c) => c.code)), ...(k.otherCodes || [])];
  for (const c of codes) byCode.set(c, { kind: k, part: null });
  for (const p of k.components || []) byCode.set(p.code.code, { kind: k, part: p });
}

// vitalSigns lists the kinds in the table's order (the order of the
// charts).
export function vitalSigns() {
  return KINDS;
}

// vitalByCode finds the kind (and, for a component such as systolic, the
// part) a LOINC code belongs to.
export function vitalByCode(code) {
  return byCode.get(code) || null;
}

export function vitalKind(kind) {
  return KINDS.find((k) => k.kind === kind) || null;
}

// vitalUnit finds the unit entry of a kind for a UCUM code or a written
// unit, or null. A written unit is compared as the Go table compares what
// people type: in lower case, spaces ignored ("mm Hg", "beats per
// minute"); the symbol is one of the aliases.
export function vitalUnit(kind, written) {
  const k = typeof kind === 'string' ? vitalKind(kind) : kind;
  if (!k || typeof written !== 'string') return null;
  const w = written.trim();
  if (!w) return null;
  const typed = w.toLowerCase().replace(/\s/g, '');
  return k.units.find((u) => u.ucum === w) || k.units.find((u) => u.aliases.includes(typed)) || null;
}

// unitShown is a unit of the table as the page shows it: its symbol,
// written as people read it ("kg/m2" as "kg/m²").
export function unitShown(u) {
  return unitText(u.symbol);
}

// normalRange is the typical adult range of a kind (or of its part, such
// as "systolic") in a unit entry of that kind, as {low, high, source}, or
// null.
export function normalRange(kind, part, unit) {
  const k = typeof kind === 'string' ? vitalKind(kind) : kind;
  if (!k || !unit) return null;
  if (part) {
    const p = (k.components || []).find((x) => x.kind === part);
    return (p && p.normal && p.normal[unit.ucum]) || null;
  }
  return unit.normal || null;
}
