// Times as the phone's wall clock with its offset, readings with units,
// the medicines taken now. Run in three time zones (TestJavaScriptUnits).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rfc3339Local, inputTime, localInputValue, startOfToday, vitalValue, doseOf, activeMedications, severityWord, clockAsWritten } from '../assets/js/forms.mjs';
import { S } from '../assets/js/strings.mjs';

test('times carry the phone\'s offset and its wall clock', () => {
  const d = new Date(2026, 10, 24, 8, 5, 9);
  const s = rfc3339Local(d);
  assert.match(s, /^2026-11-24T08:05:00[+-]\d{2}:\d{2}$/, 'to the minute');
  assert.equal(new Date(s).getTime(), d.getTime() - 9000, 'the same minute');
  const off = -d.getTimezoneOffset();
  assert.equal(s.slice(19), (off < 0 ? '-' : '+') + String(Math.floor(Math.abs(off) / 60)).padStart(2, '0') + ':' + String(Math.abs(off) % 60).padStart(2, '0'));
  assert.equal(localInputValue(d), '2026-11-24T08:05');
  assert.equal(inputTime('2026-11-24T08:30').slice(0, 19), '2026-11-24T08:30:00');
  assert.equal(new Date(inputTime('2026-11-24T08:30')).getTime(), new Date(2026, 10, 24, 8, 30).getTime());
  for (const bad of ['', '2026-02-30T08:00', '2026-11-24', 'yesterday', '2026-11-24T25:00']) assert.equal(inputTime(bad), null, bad);
  assert.match(startOfToday(d), /^2026-11-24T00:00:00[+-]/);
});

test('readings as the log entry takes them', () => {
  assert.equal(vitalValue('bp', { typed: '' }, ' 120', '80 '), '120/80');
  assert.equal(vitalValue('weight', { typed: 'kg' }, '70,5'), '70.5kg');
  assert.equal(vitalValue('temp', { typed: 'c' }, '37.2'), '37.2c');
  assert.equal(vitalValue('hr', { typed: '' }, '70'), '70');
});

// A MedicationStatement as `phr log med` (NewMedication) writes it.
function med(name, extra) {
  return {
    id: name.toLowerCase(), type: 'medication', display: name,
    resource: Object.assign({
      resourceType: 'MedicationStatement', status: 'active', medicationCodeableConcept: { text: name },
      dosage: [{ text: '500 mg twice daily', doseAndRate: [{ doseQuantity: { value: 500, unit: 'mg', system: 'http://unitsofmeasure.org', code: 'mg' } }], timing: { code: { text: 'twice daily' } } }],
    }, extra),
  };
}

test('the medicines taken now', () => {
  const now = new Date(2026, 10, 24, 12, 0);
  const items = [
    med('Metformin'),
    med('Amoxicillin', { status: 'completed', effectivePeriod: { start: '2026-11-01', end: '2026-11-10' } }),
    med('Ibuprofen', { effectivePeriod: { end: '2026-11-23' } }), // active, but stopped yesterday
    med('Lisinopril', { effectivePeriod: { end: '2026-11-24' } }), // stops at the end of today
    med('Aspirin', { status: 'not-taken' }),
    Object.assign(med('Warfarin'), { negation: 'not-taken' }),
    { id: 'r', type: 'medication', resource: { resourceType: 'MedicationRequest', status: 'active', medicationCodeableConcept: { text: 'Axid' } } },
  ];
  const active = activeMedications(items, now);
  assert.deepEqual(active.map((m) => m.name), ['Lisinopril', 'Metformin']);
  assert.equal(active[1].dose, '500 mg');
  assert.equal(active[1].how, '500 mg twice daily');
  assert.equal(doseOf({ resourceType: 'MedicationStatement' }), '');
});

test('severity in words', () => {
  assert.deepEqual([0, 1, 3, 4, 6, 7, 10].map(severityWord),
    [S.severity.none, S.severity.mild, S.severity.mild, S.severity.moderate, S.severity.moderate, S.severity.severe, S.severity.severe]);
});

test('a time of day as written', () => {
  assert.equal(clockAsWritten('2026-11-24T08:05:00+00:00', 0), '08:05');
  assert.equal(clockAsWritten('2026-11-24T08:05:00-05:00', 0), '08:05 UTC-05:00');
  assert.equal(clockAsWritten('2026-11-24T08:05:00Z', 60), '08:05 UTC');
  assert.equal(clockAsWritten('2013-08-15T10:30:00', 0), '10:30');
  assert.equal(clockAsWritten('2026-11-24', 0), '');
});
