// A record in plain language: US Core examples from the shared test data,
// and the smallest resources phr's own log entries make (written here as
// pkg/record's builders write them), negations included.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { describe, negation, sourceText, documentText, editableDate } from '../assets/js/detail.mjs';
import { S } from '../assets/js/strings.mjs';
import { readJSON, rows } from './helpers.mjs';

const D = S.detail;

test('US Core examples read as words, with dates as written', () => {
  const allergy = rows(describe(readJSON('fhir/us-core-examples/allergyintolerance-example.json')));
  assert.equal(allergy[D.substance], 'sulfonamide antibacterial');
  assert.match(allergy[D.reaction], /skin rash/);
  const ulcer = rows(describe(readJSON('fhir/us-core-examples/condition-duodenal-ulcer-resolved.json')));
  assert.equal(ulcer[D.clinical], 'Resolved');
  const med = rows(describe(readJSON('fhir/us-core-examples/medicationrequest-coded-oral-axid.json')));
  assert.equal(med[D.medicine], 'Nizatidine 15 MG/ML Oral Solution');
  const glucose = rows(describe(readJSON('fhir/us-core-examples/observation-serum-glucose.json')));
  assert.equal(glucose[D.measurement], 'Blood glucose'); // the viewer's vital table names LOINC 2345-7
  assert.equal(glucose[D.value], '76 mg/dL');
  assert.equal(glucose[D.range], '40–109 mg/dL');
  assert.equal(glucose[D.when], '5 Jul 2005');
});

// What `phr log dose metformin --amount "500 mg"` stores.
const dose = {
  resourceType: 'MedicationAdministration', status: 'completed',
  medicationCodeableConcept: { text: 'Metformin' }, subject: { reference: 'Patient/p' },
  effectiveDateTime: '2026-11-24T08:05:00-05:00',
  dosage: { dose: { value: 500, unit: 'mg', system: 'http://unitsofmeasure.org', code: 'mg' } },
};

test('a dose: taken, when as written with its zone, the amount', () => {
  const r = rows(describe(dose));
  assert.equal(r[D.medicine], 'Metformin');
  assert.equal(r[D.status], D.taken);
  assert.equal(r[D.when], '24 Nov 2026, 08:05 UTC-05:00');
  assert.equal(r[D.dose], '500 mg');
  assert.equal(negation(dose), '');
});

test('a symptom: its severity out of 10', () => {
  const symptom = {
    resourceType: 'Observation', status: 'final',
    category: [{ coding: [{ system: 'http://snomed.info/sct', code: '418799008' }] }],
    code: { text: 'Headache' }, valueInteger: 6, effectiveDateTime: '2026-11-24T09:00:00+00:00', note: [{ text: 'after screen time' }],
  };
  const r = rows(describe(symptom));
  assert.equal(r[D.symptom], 'Headache');
  assert.equal(r[D.value], '6 of 10');
  assert.equal(r[D.note], 'after screen time');
});

test('a blood pressure in mmHg, not mm[Hg]', () => {
  const bp = {
    resourceType: 'Observation', status: 'final', category: [{ coding: [{ code: 'vital-signs' }] }],
    code: { coding: [{ system: 'http://loinc.org', code: '85354-9' }] }, effectiveDateTime: '2026-11-24',
    component: [
      { code: { coding: [{ system: 'http://loinc.org', code: '8480-6' }] }, valueQuantity: { value: 120, unit: 'mmHg', system: 'http://unitsofmeasure.org', code: 'mm[Hg]' } },
      { code: { coding: [{ system: 'http://loinc.org', code: '8462-4' }] }, valueQuantity: { value: 80, unit: 'mmHg', system: 'http://unitsofmeasure.org', code: 'mm[Hg]' } },
    ],
  };
  const r = rows(describe(bp));
  assert.equal(r[D.measurement], 'Blood pressure');
  assert.equal(r[D.value], '120/80 mmHg');
  assert.equal(r[D.when], '24 Nov 2026');
});

test('negations read as negations', () => {
  const cases = [
    [{ resourceType: 'MedicationStatement', status: 'not-taken', medicationCodeableConcept: { text: 'Aspirin' } }, S.negation['not-taken']],
    [{ resourceType: 'Immunization', status: 'not-done', vaccineCode: { text: 'Influenza' }, statusReason: { text: 'Patient refused' } }, S.negation['not-done']],
    [{ resourceType: 'Condition', code: { text: 'Asthma' }, verificationStatus: { coding: [{ code: 'refuted' }] } }, S.negation.refuted],
    [{ resourceType: 'AllergyIntolerance', code: { coding: [{ system: 'http://snomed.info/sct', code: '716186003' }] } }, S.negation['none-known']],
    [{ resourceType: 'Condition', code: { text: 'Flu' }, verificationStatus: { coding: [{ code: 'entered-in-error' }] } }, S.negation['entered-in-error']],
    [Object.assign({}, dose, { status: 'not-done' }), S.negation['not-done']],
  ];
  for (const [r, want] of cases) {
    assert.equal(negation(r), want, r.resourceType);
    assert.equal(rows(describe(r))[D.stated], want, r.resourceType + ' rows');
  }
  // "No known allergy" names the statement, never an allergy called that.
  const nka = rows(describe(cases[3][0]));
  assert.match(nka[D.substance], /no known allerg/i);
  const refused = rows(describe(cases[1][0]));
  assert.equal(refused[D.statusReason], 'Patient refused');
});

test('a note\'s text, a source, the date an edit changes', () => {
  const note = {
    resourceType: 'DocumentReference', status: 'current', date: '2026-11-24T10:00:00+00:00', description: 'Note',
    content: [{ attachment: { contentType: 'text/plain; charset=utf-8', data: Buffer.from('Felt better after walking — größer').toString('base64') } }],
  };
  assert.equal(documentText(note), 'Felt better after walking — größer');
  assert.equal(sourceText({ method: 'self-entered', author: 'app' }), D.selfEntered);
  assert.equal(sourceText({ method: 'imported', importer: 'ccda', system: 'Good Health Clinic', file: 'ccd.xml' }), 'Good Health Clinic · ' + D.importer('ccda') + ' · ccd.xml');
  assert.equal(editableDate(dose), 'effectiveDateTime');
  assert.equal(editableDate(note), 'date');
  assert.equal(editableDate({ resourceType: 'Patient' }), '');
});
