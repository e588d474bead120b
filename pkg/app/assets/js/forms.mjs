// What the Today forms send: times as the phone's wall clock with its
// offset (so that a dose logged at 08:05 in Lisbon reads 08:05 with its
// zone everywhere), vital readings with their units, the dose of a
// medication. Pure functions, tested with node.

import { S } from './strings.mjs';
import { arr, str, num, medName, medDosages, medIsActive, medStop } from '/view/js/fhir.mjs';
import { parseDate, zoneText } from '/view/js/dates.mjs';

function pad(n, w = 2) {
  return String(Math.trunc(Math.abs(n))).padStart(w, '0');
}

// rfc3339Local writes d as the phone's wall-clock time with its offset,
// to the minute (seconds are noise in a log): "2026-11-24T08:05:00+00:00".
export function rfc3339Local(d) {
  const off = -d.getTimezoneOffset();
  const sign = off < 0 ? '-' : '+';
  return d.getFullYear() + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate()) +
    'T' + pad(d.getHours()) + ':' + pad(d.getMinutes()) + ':00' +
    sign + pad(off / 60) + ':' + pad(off % 60);
}

// localInputValue is d as a datetime-local input shows it.
export function localInputValue(d) {
  return d.getFullYear() + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate()) + 'T' + pad(d.getHours()) + ':' + pad(d.getMinutes());
}

// inputTime turns a datetime-local value ("2026-11-24T08:30", the phone's
// wall clock) into the time sent, or null when it is not one.
export function inputTime(value) {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})$/.exec(String(value || ''));
  if (!m) return null;
  const d = new Date(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]));
  if (isNaN(d.getTime()) || d.getDate() !== Number(m[3])) return null;
  return rfc3339Local(d);
}

// startOfToday is midnight of the phone's today, as sent in a listing's
// "since".
export function startOfToday(now) {
  return rfc3339Local(new Date(now.getFullYear(), now.getMonth(), now.getDate()));
}

// vitalValue writes a reading as the API's log entry takes it: "120/80"
// for blood pressure, else the number and the unit's typed form ("70kg",
// "37.2c"). unit is one of /app/vitals.json's units of the kind.
export function vitalValue(kind, unit, value, value2) {
  const a = String(value || '').trim().replace(',', '.');
  if (kind === 'bp') return a + '/' + String(value2 || '').trim().replace(',', '.');
  return a + (unit ? unit.typed : '');
}

// doseOf is the amount of one dose of a MedicationStatement ("500 mg"),
// or "" when it does not say.
export function doseOf(statement) {
  for (const d of medDosages(statement)) {
    const dr = arr(d.doseAndRate)[0];
    const q = dr && dr.doseQuantity;
    if (q && num(q.value) !== null) {
      const unit = str(q.unit) || str(q.code);
      return String(q.value) + (unit ? ' ' + unit : '');
    }
  }
  return '';
}

// activeMedications picks, from a listing of medication records, those
// the patient takes now: MedicationStatements that are active (or say
// nothing), not stopped before now and not a negation. Each is
// {id, name, dose, how, record}, sorted by name.
export function activeMedications(items, now) {
  const out = [];
  for (const it of items) {
    const r = it.resource;
    if (!r || r.resourceType !== 'MedicationStatement' || it.negation) continue;
    if (!medIsActive(r)) continue;
    const stop = parseDate(medStop(r));
    if (stop && stopBefore(stop, now)) continue;
    const how = medDosages(r).map((d) => str(d.text)).filter(Boolean).join('; ');
    out.push({ id: it.id, name: medName(r), dose: doseOf(r), how, record: it });
  }
  return out.sort((a, b) => a.name.localeCompare(b.name));
}

// stopBefore: a stop date (as written) lies before now. A day stops at
// its end; a time with an offset is an instant; one without is taken on
// the phone's clock.
function stopBefore(p, now) {
  switch (p.precision) {
    case 'year':
      return new Date(p.y + 1, 0, 1) <= now;
    case 'month':
      return new Date(p.y, p.mo, 1) <= now;
    case 'day':
      return new Date(p.y, p.mo - 1, p.d + 1) <= now;
  }
  if (p.zone) return p.wall - p.offsetMin * 60000 <= now.getTime();
  return new Date(p.y, p.mo - 1, p.d, p.hh, p.mm, p.ss) <= now;
}

// severityWord names a 0-10 severity: none, mild, moderate, severe.
export function severityWord(n) {
  const v = Number(n);
  if (v <= 0) return S.severity.none;
  if (v <= 3) return S.severity.mild;
  if (v <= 6) return S.severity.moderate;
  return S.severity.severe;
}

// clockAsWritten is the time of day of a FHIR dateTime as its source
// wrote it ("08:05"), with the offset named when it is not the phone's
// own ("08:05 UTC-05:00"); "" for a value without a time.
export function clockAsWritten(value, localOffsetMin) {
  const p = parseDate(value);
  if (!p || p.precision !== 'time') return '';
  const t = pad(p.hh) + ':' + pad(p.mm);
  if (!p.zone || p.offsetMin === localOffsetMin) return t;
  return t + ' ' + zoneText(p.zone);
}
