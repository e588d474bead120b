// The Records timeline: its filters as the API's query, and the listing
// grouped by day as written. Pure functions, tested with node.

import { S } from './strings.mjs';
import { fmtDayOf, parseDate } from '/view/js/dates.mjs';

// KINDS are the record kinds the filter offers (the API's `type` names).
export const KINDS = ['medication', 'dose', 'symptom', 'vital', 'condition', 'allergy', 'immunization', 'lab', 'procedure', 'encounter', 'note', 'document'];

export const PAGE = 50;

// listQuery writes the filters as GET /api/v1/records's query string.
// filters: {types: [], since: 'YYYY-MM-DD', until: 'YYYY-MM-DD' (the day
// itself included), source, q}; cursor continues a listing.
export function listQuery(filters, cursor) {
  const p = new URLSearchParams();
  const types = (filters.types || []).filter((t) => KINDS.includes(t));
  if (types.length) p.set('type', types.join(','));
  if (isDay(filters.since)) p.set('since', filters.since);
  if (isDay(filters.until)) p.set('until', nextDay(filters.until));
  if (filters.source) p.set('source', filters.source);
  if (filters.q) p.set('q', filters.q);
  p.set('limit', String(PAGE));
  if (cursor) p.set('cursor', cursor);
  return p.toString();
}

function isDay(s) {
  const d = parseDate(s);
  return !!d && d.precision === 'day';
}

// nextDay is the day after a YYYY-MM-DD (the API's until is exclusive).
export function nextDay(s) {
  const [y, m, d] = s.split('-').map(Number);
  const t = new Date(Date.UTC(y, m - 1, d + 1));
  return t.toISOString().slice(0, 10);
}

// dayOf is the day a record's date names, as written ("2026-11-24"), or
// "" for a record without a date.
export function dayOf(date) {
  const p = parseDate(date);
  if (!p) return '';
  return date.trim().slice(0, p.precision === 'year' ? 4 : p.precision === 'month' ? 7 : 10);
}

// groupByDay keeps the listing's order (newest first) and starts a group
// at each new day: [{day, label, items}]. Records without a date come
// last, under "No date".
export function groupByDay(items) {
  const groups = [];
  for (const it of items) {
    const day = dayOf(it.date);
    let g = groups[groups.length - 1];
    if (!g || g.day !== day) {
      g = { day, label: day ? fmtDayOf(day) : S.records.noDate, items: [] };
      groups.push(g);
    }
    g.items.push(it);
  }
  return groups;
}

// kindText names a record kind ("dose" → "Dose taken").
export function kindText(kind) {
  return S.kinds[kind] || S.kinds.other;
}

// negationText says what a record does not state: "Not taken", "Not
// given", "Ruled out", "None known", "Entered in error".
export function negationText(neg) {
  return neg ? S.negation[neg] || S.negation.other : '';
}

// sources lists the distinct sources of a listing, for the source filter.
export function sources(items) {
  const seen = new Set();
  for (const it of items) if (it.source) seen.add(it.source);
  return [...seen].sort();
}
