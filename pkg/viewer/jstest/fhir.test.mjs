// FHIR to text, on US Core examples (../shared/testdata/fhir/us-core-examples)
// and, where no shared file shows a pattern, the smallest resource that
// does.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  Index, ccText, dosagePerDay, identifiers, isEnteredInError, isRefuted, medName, medStatusText, noneKnown, obsName,
  obsValue, patientName, perDay, qty, statusText, textPerDay, timingText,
} from '../assets/js/fhir.mjs';
import { bundle, readJSON } from './helpers.mjs';

const usc = (name) => readJSON('fhir/us-core-examples/' + name);

test('ccText: text, then display, then a known name, then the code', () => {
  for (const [cc, want] of [
    [{ text: 'Headache', coding: [{ code: 'x', display: 'Cephalgia' }] }, 'Headache'],
    [{ coding: [{ system: 'http://snomed.info/sct', code: '25064002', display: 'Headache' }] }, 'Headache'],
    [{ coding: [{ system: 'http://hl7.org/fhir/sid/cvx', code: '03' }] }, 'measles, mumps and rubella virus vaccine (CVX 03)'],
    [{ coding: [{ system: 'http://snomed.info/sct', code: '716186003' }] }, 'No known allergies'],
    [{ coding: [{ system: 'http://loinc.org', code: '1234-5' }] }, 'LOINC 1234-5'], // nothing names it
    [[{ coding: [{ code: 'not-taken' }] }], 'Not taken'],
    [null, ''],
  ]) {
    assert.equal(ccText(cc), want);
  }
});

// SMART Health Cards leave displays out: the vaccines of the spec's
// example 00 (shc/input/images/example-00-a-fhirBundle.json: CVX 207 twice,
// 229) read with the CDC's names, from cvx.mjs (generated from
// pkg/terminology, whose TestDisplayCVXAfter2019 has the same words).
test('ccText: CVX codes without a display get the CDC name', () => {
  const imms = readJSON('shc/input/images/example-00-a-fhirBundle.json').entry
    .map((e) => e.resource).filter((r) => r.resourceType === 'Immunization');
  assert.deepEqual(imms.map((r) => ccText(r.vaccineCode)), [
    'SARS-COV-2 (COVID-19) vaccine, mRNA, spike protein, LNP, preservative free, 100 mcg/0.5mL dose or 50 mcg/0.25mL dose (CVX 207)',
    'SARS-COV-2 (COVID-19) vaccine, mRNA, spike protein, LNP, preservative free, 100 mcg/0.5mL dose or 50 mcg/0.25mL dose (CVX 207)',
    'SARS-COV-2 (COVID-19) vaccine, mRNA, spike protein, LNP, bivalent, preservative free, 50 mcg/0.5 mL or 25 mcg/0.25 mL dose (CVX 229)',
  ]);
  const cvx = (code) => ({ coding: [{ system: 'http://hl7.org/fhir/sid/cvx', code }] });
  for (const [cc, want] of [
    [cvx('3'), 'Vaccine (CVX 3)'], // the table's code is "03": no guessing
    [cvx('99999'), 'Vaccine (CVX 99999)'], // not a CVX code
    [cvx('constructor'), 'Vaccine (CVX constructor)'], // the table's own keys only
    [cvx('toString'), 'Vaccine (CVX toString)'],
    [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/CVX', code: '88' }] }, 'influenza virus vaccine, unspecified formulation (CVX 88)'],
    [{ coding: [{ system: 'http://hl7.org/fhir/sid/cvx', code: '207', display: 'Moderna' }] }, 'Moderna'], // the record's own name first
  ]) {
    assert.equal(ccText(cc), want);
  }
});

test('cvx.mjs: the whole CVX table, frozen', async () => {
  const { cvx } = await import('../assets/js/cvx.mjs');
  assert.ok(Object.isFrozen(cvx));
  assert.ok(Object.keys(cvx).length >= 280, Object.keys(cvx).length + ' codes');
  for (const [code, name] of Object.entries(cvx)) {
    assert.match(code, /^[0-9]+$/);
    assert.ok(name.trim() === name && name.length > 3, code);
  }
});

test('noneKnown recognises "no known" and "no information" statements', () => {
  const sct = (code) => ({ coding: [{ system: 'http://snomed.info/sct', code }] });
  const ips = (code) => ({ coding: [{ system: 'http://hl7.org/fhir/uv/ips/CodeSystem/absent-unknown-uv-ips', code }] });
  for (const [cc, area, none, text] of [
    [sct('716186003'), 'allergies', true, 'No known allergies'],
    [sct('409137002'), 'allergies', true, 'No known drug allergies'],
    [sct('429625007'), 'allergies', true, 'No known food allergies'],
    [sct('787481004'), 'medications', true, 'No known medications'],
    [sct('160245001'), 'problems', true, 'No current problems or disability'],
    [sct('787482006'), 'immunizations', true, 'No known immunizations'],
    [ips('no-known-allergies'), 'allergies', true, 'No known allergies'],
    [ips('no-allergy-info'), 'allergies', false, 'No information about allergies'],
    [ips('no-medication-info'), 'medications', false, 'No information about medications'],
  ]) {
    const n = noneKnown(cc);
    assert.ok(n, JSON.stringify(cc));
    assert.deepEqual([n.area, n.none, n.text], [area, none, text]);
  }
  assert.equal(noneKnown({ coding: [{ system: 'http://loinc.org', code: '716186003' }] }), null); // another system's code
  assert.equal(noneKnown({ text: 'Penicillin' }), null);
  // The IPS vector's allergy list holds a "no known food allergies" statement.
  const ipsBundle = readJSON('shl/ips.json');
  const stated = ipsBundle.entry.map((e) => e.resource).filter((r) => r.resourceType === 'AllergyIntolerance').map((a) => noneKnown(a.code)).filter(Boolean);
  assert.deepEqual(stated.map((n) => n.text), ['No known food allergies']);
});

test('medName resolves Medication references, in the bundle and contained', () => {
  const idx = new Index();
  idx.collect(bundle(usc('medicationrequest-referenced-oral-axid.json'), usc('uscore-med2.json')), 1);
  const req = idx.of('MedicationRequest')[0];
  assert.equal(medName(req, idx), 'Nizatidine 15 MG/ML Oral Solution [Axid]');
  assert.ok(idx.used.has(idx.of('Medication')[0]), 'the Medication is shown through the request');

  const contained = new Index();
  contained.collect(usc('medicationrequest-contained-oral-axid.json'), 1);
  assert.equal(medName(contained.of('MedicationRequest')[0], contained), 'Nizatidine 15 MG/ML Oral Solution [Axid]');

  // A reference that does not resolve: its display, never the resource type.
  const alone = new Index();
  alone.collect({ resourceType: 'MedicationStatement', id: 's', status: 'active', medicationReference: { reference: 'Medication/gone', display: 'Atorvastatin 20 mg' } }, 1);
  assert.equal(medName(alone.all[0], alone), 'Atorvastatin 20 mg');
  alone.collect({ resourceType: 'MedicationStatement', id: 't', status: 'active', medicationReference: { reference: 'Medication/gone' } }, 1);
  assert.equal(medName(alone.all[1], alone), 'Unnamed medication');
});

test('vital signs read as people write them', () => {
  // US Core examples: BP panel, temperature in Cel, weight with noise,
  // heart rate whose code text is "heart_rate".
  assert.equal(obsValue(usc('blood-pressure.json')), '109/44 mmHg');
  assert.equal(obsName(usc('blood-pressure.json')), 'Blood pressure');
  assert.equal(obsValue(usc('temperature.json')), '36.6 °C');
  assert.equal(obsValue(usc('weight.json')), '20.1 kg');
  assert.equal(obsName(usc('heart-rate.json')), 'Heart rate');
  assert.equal(obsValue(usc('heart-rate.json')), '44 bpm');
  assert.equal(obsName(usc('respiratory-rate.json')), 'Respiratory rate');
  assert.equal(obsValue(usc('respiratory-rate.json')), '26 breaths/min');
  assert.equal(obsValue(usc('bmi.json')), '16.2 kg/m²');
  // An Apple Health blood pressure with float noise (no shared file has
  // one as FHIR, so written here).
  const noisy = {
    resourceType: 'Observation', status: 'final',
    code: { coding: [{ system: 'http://loinc.org', code: '85354-9' }] },
    component: [
      { code: { coding: [{ system: 'http://loinc.org', code: '8480-6' }] }, valueQuantity: { value: 120.00000000000001, unit: 'mm[Hg]', code: 'mm[Hg]' } },
      { code: { coding: [{ system: 'http://loinc.org', code: '8462-4' }] }, valueQuantity: { value: 79.99999999999999, unit: 'mm[Hg]', code: 'mm[Hg]' } },
    ],
  };
  assert.equal(obsValue(noisy), '120/80 mmHg');
  assert.equal(qty({ value: 180.5, unit: '[lb_av]', code: '[lb_av]' }, 'weight'), '180.5 lb');
  assert.equal(qty({ value: 98.60000000000001, code: '[degF]' }, 'temp'), '98.6 °F');
  assert.equal(qty({ value: 5.4, unit: 'mmol/L' }), '5.4 mmol/L');
  assert.equal(qty({ value: 1.5, comparator: '<', unit: 'mg/L' }), '< 1.5 mg/L');
});

test('statuses, negations and entered-in-error', () => {
  assert.equal(statusText('not-taken'), 'Not taken');
  assert.equal(statusText('on-hold'), 'On hold');
  assert.equal(statusText('some-new-code'), 'Some new code');
  assert.equal(medStatusText({ status: 'not-taken' }), 'Not taken');
  assert.equal(medStatusText({ status: 'active', doNotPerform: true }), 'Do not use');
  assert.ok(isRefuted({ verificationStatus: { coding: [{ code: 'refuted' }] } }));
  assert.ok(!isRefuted(usc('allergyintolerance-example.json')));
  assert.ok(isEnteredInError({ status: 'entered-in-error' }));
  assert.ok(isEnteredInError({ verificationStatus: { coding: [{ code: 'entered-in-error' }] } }));
  const idx = new Index();
  idx.collect(bundle(
    { resourceType: 'Condition', id: 'a', code: { text: 'Asthma' }, verificationStatus: { coding: [{ code: 'entered-in-error' }] } },
    { resourceType: 'Condition', id: 'b', code: { text: 'Hypertension' } }), 1);
  assert.deepEqual(idx.all.map((r) => r.id), ['b']);
  assert.equal(idx.leftOut, 1);
});

test('timing and expected doses per day', () => {
  for (const [timing, want] of [
    [{ repeat: { frequency: 2, period: 1, periodUnit: 'd' } }, 2],
    [{ repeat: { frequency: 1, period: 8, periodUnit: 'h' } }, 3],
    [{ repeat: { frequency: 1, period: 1, periodUnit: 'wk' } }, 1 / 7],
    [{ repeat: { when: ['MORN', 'NIGHT'] } }, 2],
    [{ code: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-GTSAbbreviation', code: 'TID' }] } }, 3],
    [{ code: { text: 'twice daily' } }, 2], // how phr's CLI stores --frequency
    [{ code: { text: 'Once a day' } }, 1],
    [{ code: { text: 'every 6 hours' } }, 4],
    [{ code: { text: 'when the pain is bad' } }, null],
    [{}, null],
  ]) {
    assert.equal(perDay(timing), want, JSON.stringify(timing));
  }
  assert.equal(textPerDay('3 times a day'), 3);
  assert.equal(textPerDay('weekly'), 1 / 7);
  assert.equal(timingText({ repeat: { frequency: 2, period: 1, periodUnit: 'd' } }), 'twice daily');
  assert.equal(timingText({ repeat: { frequency: 1, period: 8, periodUnit: 'h' } }), 'once every 8 hours');
  // The US Core request: "10 mL bid", timing.repeat 2 per day.
  assert.deepEqual(dosagePerDay(usc('medicationrequest-referenced-oral-axid.json')), { perDay: 2, text: 'twice daily' });
  assert.equal(dosagePerDay({ resourceType: 'MedicationStatement', dosage: [{ asNeededBoolean: true, timing: { code: { text: 'twice daily' } } }] }), null);
});

test('patient: name and every shared identifier', () => {
  const p = usc('patient-example.json');
  assert.equal(patientName(p), 'Amy V. Baxter PharmD'); // the usual name, not the old one
  assert.deepEqual(identifiers(p), [{ label: 'Medical Record Number', value: '1032702' }]);
  assert.deepEqual(identifiers({ identifier: [
    { system: 'http://hl7.org/fhir/sid/us-ssn', value: '000-00-0000' },
    { type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0203', code: 'MR' }] }, value: 'MRN-1' },
    { value: 'X1' },
    { system: 'urn:x' },
  ] }), [{ label: 'SSN', value: '000-00-0000' }, { label: 'MRN', value: 'MRN-1' }, { label: 'Identifier', value: 'X1' }]);
});
