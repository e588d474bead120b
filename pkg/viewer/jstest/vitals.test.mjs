// The vital-sign table as the viewer reads it: phr's Go table, generated
// into assets/js/vitals.json (pkg/record/vital.go; `go generate
// ./pkg/viewer`).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { normalRange, unitShown, vitalByCode, vitalKind, vitalSigns, vitalUnit } from '../assets/js/vitals.mjs';
import { isBP, isGlucose, isVital, obsName, obsValue, qty, vitalOf } from '../assets/js/fhir.mjs';
import { trendSeries } from '../assets/js/charts.mjs';
import { readJSON } from './helpers.mjs';

const LOINC = 'http://loinc.org';
const js = new URL('../assets/js/', import.meta.url);

function obs(code, value, unit, when, extra) {
  return {
    resourceType: 'Observation', status: 'final', code: { coding: [{ system: LOINC, code }] },
    effectiveDateTime: when, valueQuantity: { value, unit, system: 'http://unitsofmeasure.org', code: unit }, ...extra,
  };
}

test('the table is the generated vitals.json, and vitals.mjs holds no facts of its own', () => {
  const file = JSON.parse(readFileSync(new URL('vitals.json', js), 'utf8'));
  assert.deepEqual(vitalSigns(), file.vitalSigns);
  assert.match(file.about, /go generate/);
  const src = readFileSync(new URL('vitals.mjs', js), 'utf8').replace(/^\s*\/\/.*$/gm, '');
  assert.doesNotMatch(src, /\d+-\d\b/, 'a LOINC code in vitals.mjs');
  assert.doesNotMatch(src, /mmHg|bpm|°|kg|\bcm\b|mg\/dL/, 'a unit in vitals.mjs');
});

test('the codes phr writes and the codes other sources use identify a kind', () => {
  for (const [code, kind, part] of [
    ['85354-9', 'bp', null], ['55284-4', 'bp', null], ['35094-2', 'bp', null],
    ['8480-6', 'bp', 'systolic'], ['8462-4', 'bp', 'diastolic'],
    ['8867-4', 'hr', null], ['9279-1', 'rr', null], ['59408-5', 'spo2', null], ['2708-6', 'spo2', null],
    ['8310-5', 'temp', null], ['8331-1', 'temp', null], ['29463-7', 'weight', null], ['3141-9', 'weight', null],
    ['8302-2', 'height', null], ['8306-3', 'height', null], ['39156-5', 'bmi', null],
    ['9843-4', 'head', null], ['8287-5', 'head', null],
    ['2339-0', 'glucose', null], ['15074-8', 'glucose', null], ['2345-7', 'glucose', null], ['14749-6', 'glucose', null],
    ['41653-7', 'glucose', null], ['1558-6', 'glucose', null], ['72514-3', 'pain', null],
  ]) {
    const v = vitalByCode(code);
    assert.ok(v, code + ' is not recognised');
    assert.equal(v.kind.kind, kind, code);
    assert.equal(v.part ? v.part.kind : null, part, code);
  }
  assert.equal(vitalByCode('4548-4'), null); // HbA1c is a result, not a vital
});

test('a vital sign by its code: glucose and pain are not, head circumference is', () => {
  const none = { category: undefined };
  assert.ok(isVital(obs('9843-4', 45, 'cm', '2026-01-01', none)));
  assert.ok(isVital(obs('8331-1', 37, 'Cel', '2026-01-01', none)));
  assert.ok(!isVital(obs('2345-7', 90, 'mg/dL', '2026-01-01', none)));
  assert.ok(!isVital(obs('72514-3', 3, '{score}', '2026-01-01', none)));
  assert.ok(isBP({ resourceType: 'Observation', code: { coding: [{ system: LOINC, code: '35094-2' }] } }));
});

test('shared examples: head circumference, length, serum glucose, Synthea oral temperature and blood pressure', () => {
  const usc = (n) => readJSON('fhir/us-core-examples/' + n);
  const head = usc('head-circumference.json');
  assert.equal(vitalOf(head).kind.kind, 'head');
  assert.equal(obsName(head), 'Head circumference');
  assert.equal(obsValue(head), '51.2 cm');
  const length = usc('length.json'); // 8306-3 Body height --lying
  assert.equal(vitalOf(length).kind.kind, 'height');
  assert.equal(obsValue(length), '25 cm');
  const serum = usc('observation-serum-glucose.json');
  assert.ok(isGlucose(serum));
  assert.ok(!isVital(serum), 'a laboratory glucose is a result');
  assert.equal(obsValue(serum), '76 mg/dL');

  const synthea = readJSON('fhir/synthea-r4/Babara_Rice_1343812f-e993-4973-a849-e3dad63c3e74.json');
  const all = synthea.entry.map((e) => e.resource).filter((r) => r.resourceType === 'Observation');
  const oral = all.find((o) => o.code.coding[0].code === '8331-1');
  assert.equal(obsName(oral), 'Body temperature');
  assert.equal(obsValue(oral), '37.5 °C'); // 37.49308410671919 Cel
  const bp = all.filter((o) => o.code.coding[0].code === '55284-4');
  assert.ok(bp.length >= 2);
  assert.match(obsValue(bp[0]), /^\d+\/\d+ mmHg$/);
  const series = trendSeries(all);
  const bpSeries = series.find((s) => s.id === 'bp');
  assert.deepEqual(bpSeries.lines.map((l) => l.name), ['Systolic', 'Diastolic']);
  assert.equal(bpSeries.lines[0].points.length, bp.length);
});

test('units as people write them, compared as the Go table compares them', () => {
  for (const [kind, written, symbol] of [
    ['bp', 'mm[Hg]', 'mmHg'], ['bp', 'mm Hg', 'mmHg'], ['hr', '/min', 'bpm'], ['hr', 'beats per minute', 'bpm'],
    ['hr', '{beats}/min', 'bpm'], ['rr', '/min', 'breaths/min'], ['spo2', '%O2', '%'], ['temp', 'Cel', '°C'],
    ['temp', 'degF', '°F'], ['weight', '[lb_av]', 'lb'], ['weight', 'LBS', 'lb'], ['height', '[in_i]', 'in'],
    ['bmi', 'kg/m2', 'kg/m²'], ['glucose', 'mg/dl', 'mg/dL'], ['pain', '{score}', '/10'], ['head', 'cm', 'cm'],
  ]) {
    const u = vitalUnit(kind, written);
    assert.ok(u, kind + ' ' + written);
    assert.equal(unitShown(u), symbol, kind + ' ' + written);
  }
  assert.equal(vitalUnit('hr', ''), null); // no unit is not the default unit
  assert.equal(vitalUnit('weight', 'kg/m2'), null);
  assert.equal(vitalUnit('nope', 'kg'), null);
  assert.equal(qty({ value: 81.69998963820044, unit: 'kg', code: 'kg' }, 'weight'), '81.7 kg');
  assert.equal(qty({ value: 24.28571428571, code: 'kg/m2' }, 'bmi'), '24.3 kg/m²');
  assert.equal(qty({ value: 7, unit: '/10', code: '{score}' }, 'pain'), '7/10'); // as phr writes it
});

test('typical adult ranges per unit, each with its source', () => {
  const r = (kind, part, unit) => {
    const x = normalRange(kind, part, vitalUnit(kind, unit));
    return x && [x.low, x.high];
  };
  assert.deepEqual(r('bp', 'systolic', 'mmHg'), [90, 120]);
  assert.deepEqual(r('bp', 'diastolic', 'mm[Hg]'), [60, 80]);
  assert.deepEqual(r('hr', null, '/min'), [60, 100]);
  assert.deepEqual(r('rr', null, '/min'), [12, 20]);
  assert.deepEqual(r('spo2', null, '%'), [95, 100]);
  assert.deepEqual(r('temp', null, 'Cel'), [36.1, 37.2]);
  assert.deepEqual(r('temp', null, '[degF]'), [97, 99]);
  assert.deepEqual(r('bmi', null, 'kg/m2'), [18.5, 24.9]);
  for (const [kind, unit] of [['glucose', 'mg/dL'], ['weight', 'kg'], ['height', 'cm'], ['head', 'cm'], ['pain', '{score}']]) {
    assert.equal(r(kind, null, unit), null, kind + ' has no band');
  }
  for (const k of vitalSigns()) {
    for (const u of k.units) if (u.normal) assert.ok(u.normal.source, k.kind + ' ' + u.ucum + ': no source');
    for (const p of k.components || []) for (const n of Object.values(p.normal || {})) assert.ok(n.source, p.kind + ': no source');
  }
});

test('every kind of the table charts, in the table order, with no code of its own in the viewer', () => {
  // Two readings of each kind in its default unit: what a new row of the
  // Go table gets once vitals.json is regenerated.
  const readings = [];
  for (const k of vitalSigns()) {
    const u = k.units[0];
    const code = (u.codes && u.codes[0] ? u.codes[0] : k.codes[0]).code;
    const v = (u.min + u.max) / 2;
    if (k.components) {
      for (const [i, when] of ['2026-01-01', '2026-01-02'].entries()) {
        readings.push({
          resourceType: 'Observation', status: 'final', code: { coding: [{ system: LOINC, code }] }, effectiveDateTime: when,
          component: k.components.map((p, j) => ({ code: { coding: [p.code] }, valueQuantity: { value: p.max - 10 * (j + 1) - i, unit: u.ucum, code: u.ucum } })),
        });
      }
    } else {
      readings.push(obs(code, v, u.ucum, '2026-01-01'), obs(code, v + 0.1, u.ucum, '2026-01-02'));
    }
  }
  const series = trendSeries(readings);
  assert.deepEqual(series.map((s) => s.id), vitalSigns().map((k) => k.kind));
  for (const s of series) {
    const k = vitalKind(s.kind);
    assert.equal(s.title, k.name);
    assert.equal(s.unit, unitShown(k.units[0]));
    assert.equal(s.decimals, k.units[0].decimals);
    assert.equal(s.bands.length, k.components ? k.components.filter((p) => p.normal).length : k.units[0].normal ? 1 : 0, s.kind);
  }
});
