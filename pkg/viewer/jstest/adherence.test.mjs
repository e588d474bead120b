// Doses per medication. No shared file holds patient-logged doses, so
// these are the resources phr's CLI writes (record.NewDose,
// record.NewMedication): 28 metformin doses over two weeks and a
// statement "twice daily".

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { expectedDoses, summariseDoses } from '../assets/js/adherence.mjs';
import { Index } from '../assets/js/fhir.mjs';
import { bundle } from './helpers.mjs';

const metformin = { text: 'Metformin 500 mg tablet' };

function dose(id, when, status) {
  return { resourceType: 'MedicationAdministration', id, status: status || 'completed', medicationCodeableConcept: metformin, effectiveDateTime: when, dosage: { dose: { value: 500, unit: 'mg' } } };
}

// twoWeeks: doses at 08:00 and 20:00 (UTC-07:00) from 1 to 14 June 2026.
function twoWeeks(skip) {
  const out = [];
  for (let d = 1; d <= 14; d++) {
    for (const hh of ['08', '20']) {
      const id = 'd' + d + '-' + hh;
      if (skip && skip.includes(id)) continue;
      out.push(dose(id, '2026-06-' + String(d).padStart(2, '0') + 'T' + hh + ':00:00-07:00'));
    }
  }
  return out;
}

function statement(timing, extra) {
  return Object.assign({ resourceType: 'MedicationStatement', id: 's1', status: 'active', medicationCodeableConcept: metformin, dosage: [{ text: '500 mg twice daily', timing }] }, extra);
}

function summarise(resources) {
  const idx = new Index();
  idx.collect(bundle(...resources), 1);
  return summariseDoses(idx.of('MedicationAdministration'), idx.of('MedicationStatement', 'MedicationRequest'), idx);
}

test('28 doses over two weeks, twice daily: taken 28 of 28 expected', () => {
  for (const timing of [{ code: { text: 'twice daily' } }, { repeat: { frequency: 2, period: 1, periodUnit: 'd' } }]) {
    const [g] = summarise([statement(timing), ...twoWeeks()]);
    assert.equal(g.name, 'Metformin 500 mg tablet');
    assert.equal(g.taken, 28);
    assert.equal(g.expected, 28);
    assert.equal(g.notTaken, 0);
    assert.equal(g.frequency, 'twice daily');
    assert.equal(g.first, '2026-06-01T08:00:00-07:00');
    assert.equal(g.last, '2026-06-14T20:00:00-07:00');
    assert.equal(g.doses.length, 28);
    assert.equal(g.doses[0].id, 'd14-20'); // newest first
  }
});

test('missed and refused doses are not counted as taken', () => {
  const doses = twoWeeks(['d3-20', 'd9-08', 'd10-08']);
  doses.push(dose('refused', '2026-06-09T08:00:00-07:00', 'not-done'));
  const [g] = summarise([statement({ code: { text: 'twice daily' } }), ...doses]);
  assert.equal(g.taken, 25);
  assert.equal(g.expected, 28);
  assert.equal(g.notTaken, 1);
});

test('without a frequency there is no expected count', () => {
  const [g] = summarise(twoWeeks());
  assert.equal(g.expected, null);
  assert.equal(g.taken, 28);
  const [asNeeded] = summarise([statement({ code: { text: 'twice daily' } }, { dosage: [{ asNeededBoolean: true, timing: { code: { text: 'twice daily' } } }] }), ...twoWeeks()]);
  assert.equal(asNeeded.expected, null);
  // A statement the patient did not take sets no expectation either.
  const [notTaken] = summarise([statement({ code: { text: 'twice daily' } }, { status: 'not-taken' }), ...twoWeeks()]);
  assert.equal(notTaken.expected, null);
});

test('doses of different medications are summarised apart', () => {
  const other = { resourceType: 'MedicationAdministration', id: 'x', status: 'completed', medicationCodeableConcept: { text: 'Ibuprofen 200 mg' }, effectiveDateTime: '2026-06-20' };
  const groups = summarise([statement({ code: { text: 'twice daily' } }), ...twoWeeks(), other]);
  assert.deepEqual(groups.map((g) => [g.name, g.taken, g.expected]), [['Ibuprofen 200 mg', 1, null], ['Metformin 500 mg tablet', 28, 28]]);
});

test('expectedDoses counts whole days, both ends included', () => {
  for (const [perDay, first, last, want] of [
    [2, 0, 13, 28],
    [1, 0, 13, 14],
    [3, 5, 5, 3],
    [1 / 7, 0, 7, 2], // two weekly doses a week apart
    [1 / 7, 0, 13, 2],
    [0.5, 0, 12, 7], // every other day
    [null, 0, 13, null],
    [2, 5, 4, null],
  ]) {
    assert.equal(expectedDoses(perDay, first, last), want, [perDay, first, last].join(' '));
  }
});
