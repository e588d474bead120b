// Units as people write them, and numbers with sensible precision.

import table from './vitals.json' with { type: 'json' };

// UCUM codes and their usual written form; a unit the table does not know
// is shown as the source wrote it. The table as people write them comes from phr's one unit
// table (pkg/record, record.UnitSymbols), generated into vitals.json.
const UNIT_TEXT = table.units;

// unitText writes a UCUM code or a source's unit label for people, as
// record.UnitText does: the table's symbol ("mm[Hg]" → "mmHg", "Cel" →
// "°C"); nothing for "1"; an annotation alone is a count of what it names
// ("{tablet}" → "tablet", "{score}" → ""); annotations in other units are
// unwrapped ("{cells}/uL" → "cells/uL").
export function unitText(u) {
  if (typeof u !== 'string') return '';
  const s = u.trim();
  if (!s || s === '1') return '';
  if (Object.prototype.hasOwnProperty.call(UNIT_TEXT, s)) return UNIT_TEXT[s];
  return s.replace(/[{}]/g, '');
}

// quantityUnit is the unit of a FHIR Quantity as people write it: its
// unit label, else its code.
export function quantityUnit(q) {
  if (!q || typeof q !== 'object') return '';
  const label = typeof q.unit === 'string' ? q.unit.trim() : '';
  if (label) return unitText(label);
  return unitText(typeof q.code === 'string' ? q.code : '');
}

// fmtNum writes a number as a person would. A value with up to three
// decimals is shown as written; more decimals are noise from a unit
// conversion or a float (81.69998963820044), so it is rounded to
// `decimals` places when given, else to four significant digits.
export function fmtNum(v, decimals) {
  if (typeof v !== 'number' || !isFinite(v)) return '';
  const s = String(v);
  if (!/e/i.test(s) && (s.split('.')[1] || '').length <= 3) return s;
  let d = decimals;
  if (typeof d !== 'number' || d < 0) {
    d = v === 0 ? 0 : Math.max(0, 3 - Math.floor(Math.log10(Math.abs(v))));
  }
  const r = Number(v.toFixed(Math.min(d, 20)));
  if (r === 0 && v !== 0) return v.toPrecision(2);
  return String(Object.is(r, -0) ? 0 : r);
}

// withUnit writes a number and its unit: "7.5%", "128 mmHg", "37.2 °C",
// and "7/10" for a unit that starts with a slash (a pain score).
export function withUnit(text, unit) {
  if (!unit || !text) return text || '';
  return unit === '%' || unit.startsWith('/') ? text + unit : text + ' ' + unit;
}
