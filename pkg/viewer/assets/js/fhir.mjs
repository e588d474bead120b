// FHIR resources to text: names, codes, values, statuses and negations.
// No DOM here; every function is pure, and tested with node
// (jstest/fhir.test.mjs).

import { S } from './strings.mjs';
import { cvx } from './cvx.mjs';
import { fmtDate } from './dates.mjs';
import { fmtNum, quantityUnit, withUnit } from './units.mjs';
import { unitShown, vitalByCode, vitalKind, vitalUnit } from './vitals.mjs';

export function arr(x) {
  return Array.isArray(x) ? x : x === undefined || x === null ? [] : [x];
}

export function str(x) {
  return typeof x === 'string' ? x.trim() : typeof x === 'number' && isFinite(x) ? String(x) : '';
}

export function num(x) {
  return typeof x === 'number' && isFinite(x) ? x : null;
}

// codes lists the codings of one CodeableConcept or a list of them.
export function codes(cc) {
  return arr(cc).flatMap((c) => arr(c && c.coding)).filter((c) => c && typeof c === 'object');
}

export function hasCode(cc, list) {
  return codes(cc).some((c) => list.includes(str(c.code)));
}

export function firstCode(cc) {
  const c = codes(cc).find((x) => str(x.code));
  return c ? str(c.code) : '';
}

// humanize turns a FHIR code into words: "not-done" → "Not done".
export function humanize(code) {
  const t = String(code || '').replace(/[-_]+/g, ' ').trim();
  return t.charAt(0).toUpperCase() + t.slice(1);
}

// statusText names a status code: the table's word, else the code in
// words.
export function statusText(code) {
  const c = str(code);
  if (!c) return '';
  return S.status[c] || humanize(c);
}

// systemName gives the short name of a code system, for the rare code
// shown without any name.
export function systemName(system) {
  const s = str(system).toLowerCase();
  if (s.includes('loinc')) return 'LOINC';
  if (s.includes('snomed')) return 'SNOMED CT';
  if (s.includes('cvx')) return 'CVX';
  if (s.includes('rxnorm')) return 'RxNorm';
  if (s.includes('icd-10') || s.includes('icd10')) return 'ICD-10';
  if (s.includes('atc')) return 'ATC';
  return S.codeWord;
}

// ccText is how a CodeableConcept reads: its text, a coding's display, a
// name the viewer knows for the code, and only when nothing names it, the
// code itself ("LOINC 1234-5").
export function ccText(cc) {
  for (const c of arr(cc)) {
    if (c && typeof c === 'object' && str(c.text)) return str(c.text);
  }
  const list = codes(cc);
  for (const c of list) if (str(c.display)) return str(c.display);
  for (const c of list) {
    const code = str(c.code);
    if (!code) continue;
    const none = noneKnownCoding(c);
    if (none) return none.text;
    const sys = systemName(c.system);
    if (sys === 'CVX') return cvxName(code) + ' (CVX ' + code + ')';
    if (/^[a-z][a-z-]*$/.test(code)) return humanize(code);
    return sys + ' ' + code;
  }
  return '';
}

// cvxName is the CDC's name of a CVX vaccine code, from phr's one CVX
// table (cvx.mjs, generated from pkg/terminology), or "Vaccine" for a code
// the table lacks.
function cvxName(code) {
  return Object.prototype.hasOwnProperty.call(cvx, code) ? cvx[code] : S.vaccine;
}

// ---------------------------------------------------------------- negations

// "None known" and "no information" statements: SNOMED CT situations of
// the IPS value set "Absent or Unknown SNOMED", and the IPS code system
// absent-unknown-uv-ips. area says which section the statement belongs
// to; none is true for "none known", false for "no information".
const NONE_SNOMED = {
  716186003: ['allergies', true],
  409137002: ['allergies', true],
  428607008: ['allergies', true],
  429625007: ['allergies', true],
  787481004: ['medications', true],
  160245001: ['problems', true],
  787482006: ['immunizations', true],
  787480003: ['procedures', true],
  787483001: ['devices', true],
};

const NONE_IPS = {
  'no-allergy-info': ['allergies', false],
  'no-known-allergies': ['allergies', true],
  'no-known-medication-allergies': ['allergies', true],
  'no-known-environmental-allergies': ['allergies', true],
  'no-known-food-allergies': ['allergies', true],
  'no-medication-info': ['medications', false],
  'no-known-medications': ['medications', true],
  'no-problem-info': ['problems', false],
  'no-known-problems': ['problems', true],
  'no-immunization-info': ['immunizations', false],
  'no-known-immunizations': ['immunizations', true],
  'no-procedure-info': ['procedures', false],
  'no-known-procedures': ['procedures', true],
  'no-device-info': ['devices', false],
  'no-known-devices': ['devices', true],
};

function noneKnownCoding(c) {
  const code = str(c.code);
  const sys = str(c.system).toLowerCase();
  let hit = null;
  if ((!sys || sys.includes('snomed')) && NONE_SNOMED[code]) hit = NONE_SNOMED[code];
  else if ((!sys || sys.includes('absent-unknown')) && NONE_IPS[code]) hit = NONE_IPS[code];
  if (!hit) return null;
  return { area: hit[0], none: hit[1], code, text: S.noneKnown[code] };
}

// noneKnown returns the statement a code makes when it says "no known
// allergies" (or medications, problems, ...) or "no information about",
// else null: {area, none, code, text}.
export function noneKnown(cc) {
  for (const c of codes(cc)) {
    const n = noneKnownCoding(c);
    if (n) return n;
  }
  return null;
}

// verification is a Condition's or AllergyIntolerance's
// verificationStatus code ("confirmed", "refuted", ...), or "".
export function verification(r) {
  return firstCode(r && r.verificationStatus);
}

export function isRefuted(r) {
  return verification(r) === 'refuted';
}

// isEnteredInError: records marked as a mistake are kept out of every
// list (docs/viewer.md).
export function isEnteredInError(r) {
  return !!r && (r.status === 'entered-in-error' || verification(r) === 'entered-in-error');
}

// ---------------------------------------------------------------- index

// Index holds the shared resources and resolves references between them.
export class Index {
  constructor() {
    this.all = [];
    this.byRef = new Map(); // "Type/id" -> resource
    this.byUrl = new Map(); // scope + " " + fullUrl -> resource
    this.scopeOf = new WeakMap();
    this.used = new WeakSet(); // resources rendered somewhere
    this.leftOut = 0; // entered-in-error records
  }

  collect(res, scope) {
    if (!res || typeof res !== 'object' || typeof res.resourceType !== 'string') return;
    if (res.resourceType === 'Bundle') {
      for (const e of arr(res.entry)) {
        if (!e || !e.resource || typeof e.resource !== 'object') continue;
        if (typeof e.fullUrl === 'string') this.byUrl.set(scope + ' ' + e.fullUrl, e.resource);
        this.collect(e.resource, scope);
      }
      return;
    }
    if (isEnteredInError(res)) {
      this.leftOut++;
      return;
    }
    this.all.push(res);
    this.scopeOf.set(res, scope);
    if (typeof res.id === 'string') this.byRef.set(res.resourceType + '/' + res.id, res);
  }

  of(...types) {
    return this.all.filter((r) => types.includes(r.resourceType));
  }

  resolve(ref, owner) {
    const s = ref && typeof ref.reference === 'string' ? ref.reference : '';
    if (!s) return null;
    if (s.startsWith('#')) {
      return arr(owner && owner.contained).find((c) => c && '#' + c.id === s) || null;
    }
    const scoped = this.byUrl.get(this.scopeOf.get(owner) + ' ' + s);
    if (scoped) return scoped;
    const m = /([A-Za-z]+\/[A-Za-z0-9\-.]{1,64})(\/_history\/.*)?$/.exec(s);
    return (m && this.byRef.get(m[1])) || null;
  }
}

// ---------------------------------------------------------------- medications

// medConcept is the CodeableConcept naming a medication: its own, or the
// code of the Medication it references (in the bundle or contained).
export function medConcept(r, idx) {
  if (r.medicationCodeableConcept) return r.medicationCodeableConcept;
  if (r.medicationReference && idx) {
    const m = idx.resolve(r.medicationReference, r);
    if (m && m.resourceType === 'Medication') {
      idx.used.add(m);
      return m.code || null;
    }
  }
  return null;
}

// medName names a medication: its concept's text or display, else the
// reference's display, never the resource type.
export function medName(r, idx) {
  const n = ccText(medConcept(r, idx));
  if (n) return n;
  if (r.medicationReference && str(r.medicationReference.display)) return str(r.medicationReference.display);
  return S.unnamedMedication;
}

// medKey groups records of one medication: its first coding, else its
// name in lower case.
export function medKey(r, idx) {
  const c = codes(medConcept(r, idx)).find((x) => str(x.code));
  if (c) return str(c.system) + '|' + str(c.code);
  return medName(r, idx).toLowerCase();
}

// medDosages is a statement's dosage or a request's dosageInstruction.
export function medDosages(r) {
  return arr(r.resourceType === 'MedicationRequest' ? r.dosageInstruction : r.dosage).filter((d) => d && typeof d === 'object');
}

export function medStart(r) {
  return str(r.effectivePeriod && r.effectivePeriod.start) || str(r.effectiveDateTime) || str(r.authoredOn) || str(r.dateAsserted);
}

// medStop is when a medication was stopped: the end of the statement's
// period, or of the request's validity.
export function medStop(r) {
  return str(r.effectivePeriod && r.effectivePeriod.end) ||
    str(r.dispenseRequest && r.dispenseRequest.validityPeriod && r.dispenseRequest.validityPeriod.end);
}

// medIsActive: statements and requests that are active (or say nothing),
// and are not a "do not perform" order.
export function medIsActive(r) {
  return (!str(r.status) || r.status === 'active') && r.doNotPerform !== true;
}

// medStatusText names a medication's status, negations included: "Not
// taken" (MedicationStatement not-taken), "Do not use" (a request with
// doNotPerform).
export function medStatusText(r) {
  if (r.doNotPerform === true) return S.doNotUse;
  return statusText(r.status);
}

const PERIOD_DAYS = { s: 1 / 86400, min: 1 / 1440, h: 1 / 24, d: 1, wk: 7, mo: 30, a: 365 };

// timingText writes a Timing: its code's name, or its repeat as words.
export function timingText(t) {
  if (!t || typeof t !== 'object') return '';
  const c = ccText(t.code);
  if (c) return c;
  const r = t.repeat;
  if (!r || typeof r !== 'object') return '';
  const unit = str(r.periodUnit);
  if (!PERIOD_DAYS[unit]) return '';
  return S.timing(num(r.frequency) || 1, num(r.period) || 1, unit);
}

export function dosageText(list) {
  return arr(list).filter((d) => d && typeof d === 'object').map((d) => {
    if (str(d.text)) return str(d.text);
    const parts = [];
    const dr = arr(d.doseAndRate)[0];
    if (dr && dr.doseQuantity) parts.push(qty(dr.doseQuantity));
    if (d.route) parts.push(ccText(d.route));
    parts.push(timingText(d.timing));
    if (d.asNeededBoolean === true) parts.push(S.asNeeded);
    if (d.asNeededCodeableConcept) parts.push(S.asNeededFor(ccText(d.asNeededCodeableConcept)));
    return parts.filter(Boolean).join(', ');
  }).filter(Boolean).join('; ');
}

// Expected administrations per day of the v3 GTSAbbreviation timing codes.
const GTS_PER_DAY = {
  QD: 1, AM: 1, PM: 1, BED: 1, BID: 2, TID: 3, QID: 4, QOD: 0.5,
  Q1H: 24, Q2H: 12, Q3H: 8, Q4H: 6, Q6H: 4, Q8H: 3, WK: 1 / 7, MO: 1 / 30,
};

const WORD_TIMES = { once: 1, twice: 2, 'three times': 3, 'four times': 4 };

// textPerDay reads the few frequency phrases people type ("twice daily",
// "3 times a day", "every 8 hours", "weekly"), as phr's own CLI stores
// them in Timing.code.text. Anything else: null.
export function textPerDay(text) {
  const t = str(text).toLowerCase().replace(/\s+/g, ' ');
  if (!t) return null;
  if (/^(bid|b\.i\.d\.?)$/.test(t)) return 2;
  if (/^(tid|t\.i\.d\.?)$/.test(t)) return 3;
  if (/^(qid|q\.i\.d\.?)$/.test(t)) return 4;
  if (/^(qd|daily|once daily|every day|each day|once a day|once per day|1 time a day)$/.test(t)) return 1;
  if (/^(weekly|once a week|once weekly|every week)$/.test(t)) return 1 / 7;
  if (/^every other day$/.test(t)) return 0.5;
  let m = /^(once|twice|three times|four times|(\d+) times|(\d+)x|(\d+) ?×) ?(a|per|each)? ?(day|daily)$/.exec(t);
  if (m) {
    const n = m[2] || m[3] || m[4] ? Number(m[2] || m[3] || m[4]) : WORD_TIMES[m[1]];
    return n > 0 && n <= 24 ? n : null;
  }
  m = /^(?:every|q) ?(\d+) ?(?:hours|hour|hrs|hr|h)$/.exec(t);
  if (m) {
    const h = Number(m[1]);
    return h >= 1 && h <= 24 ? 24 / h : null;
  }
  return null;
}

// perDay is how many administrations a Timing expects per day, or null
// when it does not say (or the dose is taken as needed).
export function perDay(timing) {
  if (!timing || typeof timing !== 'object') return null;
  const r = timing.repeat;
  if (r && typeof r === 'object') {
    const unit = str(r.periodUnit);
    if (PERIOD_DAYS[unit]) {
      const f = num(r.frequency) || 1;
      const p = num(r.period) || 1;
      if (p > 0) return f / (p * PERIOD_DAYS[unit]);
    }
    const times = arr(r.timeOfDay).length || arr(r.when).length;
    if (times) return times;
  }
  for (const c of codes(timing.code)) {
    const v = GTS_PER_DAY[str(c.code).toUpperCase()];
    if (v) return v;
  }
  return textPerDay(timing.code && timing.code.text);
}

// dosagePerDay: the first dosage of a statement or request that says how
// often, unless it is taken as needed.
export function dosagePerDay(r) {
  for (const d of medDosages(r)) {
    if (d.asNeededBoolean === true || d.asNeededCodeableConcept) return null;
    const p = perDay(d.timing);
    if (p) return { perDay: p, text: timingText(d.timing) || str(d.text) };
  }
  return null;
}

// ---------------------------------------------------------------- observations

const SYMPTOM_CATEGORY = '418799008'; // SNOMED CT: Finding reported by subject or history provider

export function catCodes(o) {
  return codes(o.category).map((c) => str(c.code));
}

export function isSymptom(o) {
  return catCodes(o).includes(SYMPTOM_CATEGORY);
}

// vitalOf finds the vital-sign kind of an Observation (or component) by
// its LOINC codes.
export function vitalOf(x) {
  for (const c of codes(x && x.code)) {
    const v = vitalByCode(str(c.code));
    if (v) return v;
  }
  return null;
}

export function isVital(o) {
  if (catCodes(o).includes('vital-signs')) return true;
  const v = vitalOf(o);
  return !!v && v.kind.vitalSign;
}

export function component(o, part) {
  return arr(o.component).find((c) => {
    const v = c && vitalOf(c);
    return v && v.part && v.part.kind === part;
  });
}

export function isBP(o) {
  const v = vitalOf(o);
  return (!!v && v.kind.kind === 'bp' && !v.part) || !!(component(o, 'systolic') && component(o, 'diastolic'));
}

export function isGlucose(o) {
  const v = vitalOf(o);
  if (v) return v.kind.kind === 'glucose';
  const t = ccText(o.code);
  return /glucose/i.test(t) && !/a1c|haemoglobin|hemoglobin|urine/i.test(t);
}

export function obsDate(o) {
  return str(o.effectiveDateTime) || str(o.effectiveInstant) || str(o.effectivePeriod && o.effectivePeriod.start) || str(o.issued);
}

// qty writes a quantity of a vital kind in the unit people use
// and with the kind's precision; other quantities with the generic rule.
export function qty(q, kind) {
  if (!q || typeof q !== 'object') return '';
  const v = num(q.value);
  if (v === null) return '';
  const u = kind ? vitalUnit(kind, str(q.code)) || vitalUnit(kind, str(q.unit)) : null;
  const unit = u ? unitShown(u) : quantityUnit(q);
  const cmp = str(q.comparator);
  return (cmp ? cmp + ' ' : '') + withUnit(fmtNum(v, u ? u.decimals : undefined), unit);
}

// unitOf is the written unit of a quantity of a kind (or any quantity).
export function unitOf(q, kind) {
  if (!q || typeof q !== 'object') return '';
  const u = kind ? vitalUnit(kind, str(q.code)) || vitalUnit(kind, str(q.unit)) : null;
  return u ? unitShown(u) : quantityUnit(q);
}

export function bpText(o) {
  const s = component(o, 'systolic');
  const d = component(o, 'diastolic');
  const sv = s && s.valueQuantity ? num(s.valueQuantity.value) : null;
  const dv = d && d.valueQuantity ? num(d.valueQuantity.value) : null;
  if (sv === null || dv === null) return '';
  const u = vitalUnit('bp', str(s.valueQuantity.code)) || vitalUnit('bp', str(s.valueQuantity.unit));
  const unit = u ? unitShown(u) : unitOf(s.valueQuantity) || 'mmHg';
  return fmtNum(sv, 0) + '/' + fmtNum(dv, 0) + ' ' + unit;
}

export function valueText(x, kind) {
  if (x.valueQuantity) return qty(x.valueQuantity, kind);
  if (x.valueCodeableConcept) return ccText(x.valueCodeableConcept);
  if (typeof x.valueString === 'string') return x.valueString;
  if (typeof x.valueBoolean === 'boolean') return x.valueBoolean ? S.yes : S.no;
  if (num(x.valueInteger) !== null) return String(x.valueInteger);
  if (x.valueRange) {
    const lo = qty(x.valueRange.low);
    const hi = qty(x.valueRange.high);
    return lo && hi ? S.range(lo, hi) : lo || hi;
  }
  if (x.valueRatio) return qty(x.valueRatio.numerator) + ' / ' + qty(x.valueRatio.denominator);
  if (x.valueDateTime) return fmtDate(x.valueDateTime);
  if (x.valuePeriod) return S.range(fmtDate(x.valuePeriod.start), fmtDate(x.valuePeriod.end));
  if (typeof x.valueTime === 'string') return x.valueTime;
  return '';
}

export function obsValue(o) {
  const v = vitalOf(o);
  const text = valueText(o, v ? v.kind : null);
  if (text) return text;
  if (isBP(o)) {
    const bp = bpText(o);
    if (bp) return bp;
  }
  const comps = arr(o.component).filter((c) => c && typeof c === 'object')
    .map((c) => {
      const cv = vitalOf(c);
      return [cv && cv.part ? cv.part.label : ccText(c.code), valueText(c, cv ? cv.kind : null)];
    }).filter((p) => p[1]);
  if (comps.length) return comps.map((p) => (p[0] ? p[0] + ': ' : '') + p[1]).join('; ');
  if (o.dataAbsentReason) return S.noValue(ccText(o.dataAbsentReason));
  if (arr(o.hasMember).length) return S.panelOf(arr(o.hasMember).length);
  return '';
}

// obsName names an Observation: the vital table's name for a known vital
// sign (sources write "heart_rate"), else its code's text or display.
export function obsName(o) {
  const v = vitalOf(o);
  if (isBP(o)) return vitalKind('bp').name;
  if (v && !v.part) return v.kind.name;
  if (v && v.part) return v.part.name;
  return ccText(o.code);
}

export function refRange(o) {
  const r = arr(o.referenceRange)[0];
  if (!r || typeof r !== 'object') return '';
  if (str(r.text)) return str(r.text);
  const lo = r.low ? num(r.low.value) : null;
  const hi = r.high ? num(r.high.value) : null;
  const u = unitOf(r.high) || unitOf(r.low);
  if (lo !== null && hi !== null) return withUnit(fmtNum(lo) + '–' + fmtNum(hi), u);
  if (lo !== null) return withUnit('≥ ' + fmtNum(lo), u);
  if (hi !== null) return withUnit('≤ ' + fmtNum(hi), u);
  return '';
}

// abnormal returns a label when the result is flagged abnormal by its
// interpretation, or (without one) lies outside its reference range.
export function abnormal(o) {
  for (const c of codes(o.interpretation)) {
    const code = str(c.code);
    if (S.interpretation[code]) return str(c.display) || S.interpretation[code];
  }
  if (arr(o.interpretation).length) return '';
  const v = o.valueQuantity ? num(o.valueQuantity.value) : null;
  const r = arr(o.referenceRange)[0];
  if (v === null || !r) return '';
  const lo = r.low ? num(r.low.value) : null;
  const hi = r.high ? num(r.high.value) : null;
  if (hi !== null && v > hi) return S.interpretation.H;
  if (lo !== null && v < lo) return S.interpretation.L;
  return '';
}

// ---------------------------------------------------------------- patient

export function humanName(n) {
  if (!n || typeof n !== 'object') return '';
  if (str(n.text)) return str(n.text);
  return [arr(n.prefix).map(str).join(' '), arr(n.given).map(str).join(' '), str(n.family), arr(n.suffix).map(str).join(' ')]
    .filter(Boolean).join(' ');
}

export function patientName(p) {
  const names = arr(p.name);
  const pick = names.find((n) => n && n.use === 'official') || names.find((n) => n && n.use === 'usual') || names[0];
  return humanName(pick);
}

// Identifier systems and v2-0203 identifier types people recognise.
const ID_SYSTEMS = {
  'http://hl7.org/fhir/sid/us-ssn': 'SSN',
  'urn:oid:2.16.840.1.113883.4.1': 'SSN',
  'http://hl7.org/fhir/sid/us-mbi': 'MBI',
  'http://hl7.org/fhir/sid/us-medicare': 'Medicare',
  'http://hl7.org/fhir/sid/us-npi': 'NPI',
  'https://fhir.nhs.uk/Id/nhs-number': 'NHS number',
};

// identifiers lists a Patient's identifiers as {label, value}: the type's
// name, a known system, else a generic label. All are shown: the patient
// chose what to share.
export function identifiers(p) {
  return arr(p.identifier).filter((i) => i && typeof i === 'object' && str(i.value)).map((i) => {
    const typeCode = firstCode(i.type);
    const label = str(i.type && i.type.text) || (codes(i.type).map((c) => str(c.display)).find(Boolean)) ||
      S.idTypes[typeCode] || ID_SYSTEMS[str(i.system)] || S.identifier;
    return { label, value: str(i.value) };
  });
}

export function notesOf(r) {
  return arr(r.note).map((n) => str(n && n.text)).filter(Boolean).join(' ');
}
