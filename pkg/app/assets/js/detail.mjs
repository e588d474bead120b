// A record in plain language: its facts as labelled rows, read with the
// viewer's FHIR-to-text functions (the same names, units, dates as
// written and negations a clinician sees in a share). Pure: tested with
// node on US Core examples and on what phr's own log entries make.

import { S } from './strings.mjs';
import { fmtDate } from '/view/js/dates.mjs';
import {
  arr, str, ccText, statusText, medName, medStatusText, medDosages, dosageText, medStart, medStop,
  obsName, obsValue, obsDate, isSymptom, refRange, abnormal, notesOf, isRefuted, isEnteredInError,
  noneKnown, verification, patientName, qty, firstCode,
} from '/view/js/fhir.mjs';

// negation says what a resource does not state, or "": the words of
// the record's listing badge.
export function negation(r) {
  if (!r || typeof r !== 'object') return '';
  if (isEnteredInError(r)) return S.negation['entered-in-error'];
  if (r.status === 'not-done') return S.negation['not-done'];
  if (r.status === 'not-taken') return S.negation['not-taken'];
  if (r.resourceType === 'MedicationAdministration' && r.status && r.status !== 'completed' && r.status !== 'in-progress') {
    return statusText(r.status);
  }
  if (isRefuted(r)) return S.negation.refuted;
  if (noneKnown(r.code)) return S.negation['none-known'];
  return '';
}

function when(label, value) {
  return value ? { label, value: fmtDate(value) } : null;
}

function row(label, value) {
  return value ? { label, value } : null;
}

// describe returns the rows of a resource: [{label, value}], the empty
// ones left out.
export function describe(r) {
  if (!r || typeof r !== 'object') return [];
  const notes = row(S.detail.note, notesOf(r));
  const neg = row(S.detail.stated, negation(r));
  switch (r.resourceType) {
    case 'MedicationStatement':
    case 'MedicationRequest':
      return [
        row(S.detail.medicine, medName(r)), neg,
        row(S.detail.status, medStatusText(r)),
        row(S.detail.dosage, dosageText(medDosages(r))),
        when(S.detail.since, medStart(r)), when(S.detail.until, medStop(r)),
        row(S.detail.reason, arr(r.reasonCode).map(ccText).filter(Boolean).join(', ')),
        row(S.detail.statusReason, arr(r.statusReason).map(ccText).filter(Boolean).join(', ')),
        notes,
      ].filter(Boolean);
    case 'MedicationAdministration': {
      const dose = r.dosage && r.dosage.dose ? qty(r.dosage.dose) : '';
      return [
        row(S.detail.medicine, medName(r)), neg,
        row(S.detail.status, r.status === 'completed' ? S.detail.taken : statusText(r.status)),
        when(S.detail.when, str(r.effectiveDateTime) || str(r.effectivePeriod && r.effectivePeriod.start)),
        row(S.detail.dose, dose),
        row(S.detail.statusReason, arr(r.statusReason).map(ccText).filter(Boolean).join(', ')),
        notes,
      ].filter(Boolean);
    }
    case 'Observation': {
      const symptom = isSymptom(r);
      let value = obsValue(r);
      if (symptom && typeof r.valueInteger === 'number') value = S.detail.severity(r.valueInteger);
      return [
        row(symptom ? S.detail.symptom : S.detail.measurement, obsName(r)), neg,
        row(S.detail.value, value),
        row(S.detail.flag, abnormal(r)),
        row(S.detail.range, refRange(r)),
        when(S.detail.when, obsDate(r)),
        row(S.detail.status, r.status && r.status !== 'final' ? statusText(r.status) : ''),
        notes,
      ].filter(Boolean);
    }
    case 'Condition':
      return [
        row(S.detail.problem, noneKnown(r.code) ? noneKnown(r.code).text : ccText(r.code)), neg,
        row(S.detail.clinical, statusText(firstCode(r.clinicalStatus))),
        row(S.detail.verification, verification(r) && verification(r) !== 'confirmed' ? statusText(verification(r)) : ''),
        when(S.detail.onset, str(r.onsetDateTime) || str(r.onsetPeriod && r.onsetPeriod.start)),
        when(S.detail.recorded, r.recordedDate),
        notes,
      ].filter(Boolean);
    case 'AllergyIntolerance':
      return [
        row(S.detail.substance, noneKnown(r.code) ? noneKnown(r.code).text : ccText(r.code)), neg,
        row(S.detail.reaction, arr(r.reaction).map((x) => {
          const what = arr(x && x.manifestation).map(ccText).filter(Boolean).join(', ');
          return what + (x && x.severity ? ' (' + statusText(x.severity) + ')' : '');
        }).filter(Boolean).join('; ')),
        row(S.detail.criticality, statusText(r.criticality)),
        row(S.detail.verification, verification(r) && verification(r) !== 'confirmed' ? statusText(verification(r)) : ''),
        when(S.detail.onset, str(r.onsetDateTime)),
        notes,
      ].filter(Boolean);
    case 'Immunization':
      return [
        row(S.detail.vaccine, ccText(r.vaccineCode)), neg,
        row(S.detail.statusReason, ccText(r.statusReason)),
        when(S.detail.when, str(r.occurrenceDateTime) || str(r.occurrenceString)),
        row(S.detail.lot, str(r.lotNumber)),
        notes,
      ].filter(Boolean);
    case 'Procedure':
    case 'Encounter':
    case 'DiagnosticReport':
      return [
        row(S.detail.what, ccText(r.code) || arr(r.type).map(ccText).filter(Boolean).join(', ')), neg,
        row(S.detail.status, statusText(r.status)),
        when(S.detail.when, str(r.performedDateTime) || str(r.effectiveDateTime) || str(r.period && r.period.start) ||
          str(r.performedPeriod && r.performedPeriod.start)),
        row(S.detail.conclusion, str(r.conclusion)),
        notes,
      ].filter(Boolean);
    case 'DocumentReference':
      return [
        row(S.detail.what, str(r.description) || ccText(r.type)),
        when(S.detail.when, r.date),
        row(S.detail.text, documentText(r)),
      ].filter(Boolean);
    case 'Patient':
      return [
        row(S.detail.name, patientName(r)),
        when(S.detail.born, r.birthDate),
        row(S.detail.sex, r.gender ? S.sex[r.gender] || r.gender : ''),
      ].filter(Boolean);
    default:
      return [row(S.detail.what, ccText(r.code) || r.resourceType), neg, notes].filter(Boolean);
  }
}

// documentText is the text of a note's plain-text attachment.
export function documentText(r) {
  for (const c of arr(r.content)) {
    const a = c && c.attachment;
    if (!a || !/^text\/plain/.test(str(a.contentType)) || typeof a.data !== 'string') continue;
    try {
      const bin = atob(a.data);
      const bytes = Uint8Array.from(bin, (ch) => ch.charCodeAt(0));
      return new TextDecoder().decode(bytes);
    } catch (e) {
      return '';
    }
  }
  return '';
}

// sourceText says where a record came from, from its provenance.
export function sourceText(p) {
  if (!p || typeof p !== 'object') return '';
  if (p.method === 'self-entered') return S.detail.selfEntered;
  if (p.method === 'device') return S.detail.fromDevice(p.author || '');
  const parts = [p.system, p.importer && S.detail.importer(p.importer), p.file].filter(Boolean);
  return parts.join(' · ');
}

// editableDate is the dateTime field an edit of "when" changes: the first
// of the resource's own date fields that it has, or "".
export const DATE_FIELDS = ['effectiveDateTime', 'occurrenceDateTime', 'onsetDateTime', 'performedDateTime', 'date', 'recordedDate'];

export function editableDate(r) {
  return DATE_FIELDS.find((f) => typeof r[f] === 'string') || '';
}
