import { test } from 'node:test';
import assert from 'node:assert/strict';
import { defaultWindow, timeTicks, trendSeries, windowOptions } from '../assets/js/charts.mjs';
import { vitalKind } from '../assets/js/vitals.mjs';
import { DAY_MS } from '../assets/js/dates.mjs';
import { readJSON } from './helpers.mjs';

const LOINC = 'http://loinc.org';

function bp(id, when, sys, dia) {
  return {
    resourceType: 'Observation', id, status: 'final',
    category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'vital-signs' }] }],
    code: { coding: [{ system: LOINC, code: '85354-9' }] }, effectiveDateTime: when,
    component: [
      { code: { coding: [{ system: LOINC, code: '8480-6' }] }, valueQuantity: { value: sys, unit: 'mm[Hg]', code: 'mm[Hg]' } },
      { code: { coding: [{ system: LOINC, code: '8462-4' }] }, valueQuantity: { value: dia, unit: 'mm[Hg]', code: 'mm[Hg]' } },
    ],
  };
}

// A reading from 2013 and nine from one week (issue 19's example).
function readings() {
  const out = [bp('old', '2013-03-03T10:00:00', 150, 95)];
  for (let i = 0; i < 9; i++) out.push(bp('w' + i, '2026-11-' + String(10 + Math.floor(i / 2) + (i % 2 ? 0 : 0)).padStart(2, '0') + 'T' + (i % 2 ? '19' : '08') + ':00:00-05:00', 120 + i, 78 + (i % 3)));
  return out;
}

test('trendSeries draws blood pressure as two lines with their normal bands', () => {
  const [s] = trendSeries(readings());
  assert.equal(s.id, 'bp');
  assert.equal(s.unit, 'mmHg'); // never "mm[Hg]"
  assert.deepEqual(s.lines.map((l) => [l.name, l.points.length]), [['Systolic', 10], ['Diastolic', 10]]);
  assert.deepEqual(s.bands, [{ name: 'Systolic', low: 90, high: 120 }, { name: 'Diastolic', low: 60, high: 80 }]);
  assert.equal(s.lines[0].points[0].when, '2013-03-03T10:00:00');
});

test('the default window is recent and states what it leaves out', () => {
  const [s] = trendSeries(readings());
  const opts = windowOptions(s.lines[0].points.map((p) => p.t));
  assert.deepEqual(opts.map((o) => [o.id, o.count]), [['3m', 9], ['all', 10]]); // "1y" shows no more than "3m"
  assert.equal(defaultWindow(opts).id, '3m');
  // All readings in the last three months: one window, all of them.
  assert.deepEqual(windowOptions([0, DAY_MS, 2 * DAY_MS]).map((o) => [o.id, o.count]), [['all', 3]]);
  // One reading lately, others last year: the default widens until a line can be drawn.
  const t = [0, 100 * DAY_MS, 300 * DAY_MS, 400 * DAY_MS];
  const o = windowOptions(t);
  assert.deepEqual(o.map((x) => [x.id, x.count]), [['3m', 1], ['1y', 3], ['all', 4]]);
  assert.equal(defaultWindow(o).id, '1y');
});

test('timeTicks labels the axis with dates at round steps', () => {
  const d = (y, m, day, hh) => Date.UTC(y, m - 1, day, hh || 0);
  const week = timeTicks(d(2026, 11, 10, 8), d(2026, 11, 14, 19), 5);
  assert.deepEqual(week.map((k) => k.label), ['11 Nov', '12 Nov', '13 Nov', '14 Nov']);
  const fortnight = timeTicks(d(2026, 6, 1), d(2026, 6, 14), 5);
  assert.ok(fortnight.length >= 2 && fortnight.length <= 5, fortnight.map((k) => k.label).join());
  const years = timeTicks(d(2013, 3, 3), d(2026, 11, 18), 5);
  assert.deepEqual(years.map((k) => k.label), ['2015', '2020', '2025']);
  const months = timeTicks(d(2026, 1, 15), d(2026, 6, 1), 5);
  assert.deepEqual(months.map((k) => k.label), ['Feb 2026', 'Mar 2026', 'Apr 2026', 'May 2026', 'Jun 2026']);
  const hours = timeTicks(d(2026, 11, 18, 7), d(2026, 11, 18, 19), 5);
  assert.deepEqual(hours.map((k) => k.label), ['09:00', '12:00', '15:00', '18:00']);
  assert.deepEqual(timeTicks(d(2026, 11, 18), d(2026, 11, 18), 5).map((k) => k.label), ['18 Nov 2026']);
  // Across midnight, the midnight tick names its day.
  assert.deepEqual(timeTicks(d(2026, 6, 12, 7), d(2026, 6, 13, 7), 5).map((k) => k.label), ['12:00', '18:00', '13 Jun', '06:00']);
  for (const k of [...week, ...years, ...months]) assert.ok(k.t >= d(2013, 1, 1));
});

test('vital kinds and their bands come from the Go table', () => {
  const hr = (id, when, v) => ({ resourceType: 'Observation', id, code: { coding: [{ system: LOINC, code: '8867-4' }] }, effectiveDateTime: when, valueQuantity: { value: v, unit: 'beats/min', code: '/min' } });
  const [s] = trendSeries([hr('a', '2026-01-01', 70), hr('b', '2026-01-02', 72)]);
  const table = vitalKind('hr');
  assert.equal(s.title, table.name);
  assert.equal(s.title, 'Heart rate');
  assert.equal(s.unit, 'bpm');
  assert.deepEqual(s.bands, [{ name: 'Heart rate', low: table.units[0].normal.low, high: table.units[0].normal.high }]);
  assert.deepEqual(s.bands, [{ name: 'Heart rate', low: 60, high: 100 }]);
});

test('US Core vitals and Synthea labs make series', () => {
  const usc = (n) => readJSON('fhir/us-core-examples/' + n);
  const t1 = usc('temperature.json');
  const t2 = { ...usc('temperature.json'), id: 't2', effectiveDateTime: '1999-07-03', valueQuantity: { value: 37.9, unit: 'Cel', code: 'Cel' } };
  const [temp] = trendSeries([t1, t2]);
  assert.equal(temp.unit, '°C');
  assert.deepEqual(temp.bands, [{ name: 'Body temperature', low: 36.1, high: 37.2 }]);
  // A Synthea bundle: its numeric labs with three or more results chart too.
  const synthea = readJSON('fhir/synthea-r4/Jorge_Brekke_ac7921e0-c949-4b42-97f2-fad5d171cd01.json');
  const obs = synthea.entry.map((e) => e.resource).filter((r) => r.resourceType === 'Observation');
  const series = trendSeries(obs);
  assert.ok(series.some((s) => s.id === 'bp'));
  for (const s of series) assert.ok(!/\[|\]/.test(s.unit), s.title + ' unit ' + s.unit);
});
