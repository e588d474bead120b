// The record's sections, in the order they appear. Each builder takes the
// Index and returns {count, body} (or null when the section has nothing
// to show and is optional), and marks what it showed as used.

import { S } from './strings.mjs';
import { fmtDate, fmtWallRange, sortKey, wallTime } from './dates.mjs';
import { fmtNum } from './units.mjs';
import {
  abnormal, arr, ccText, codes, dosageText, firstCode, humanize, isRefuted, isSymptom, isVital, medDosages, medIsActive,
  medConcept, medName, medStart, medStatusText, medStop, noneKnown, notesOf, num, obsDate, obsName, obsValue, qty, refRange,
  statusText, str, valueText, verification, vitalOf,
} from './fhir.mjs';
import { doseDate, doseTaken, summariseDoses } from './adherence.mjs';
import { chart, trendSeries } from './charts.mjs';
import { b64Bytes } from './link.mjs';
import { mediaType } from './jwe.mjs';
import { badge, empty, h, small, table } from './dom.mjs';

const utf8 = new TextDecoder('utf-8');

function byDateDesc(get) {
  return (a, b) => {
    const x = sortKey(get(a));
    const y = sortKey(get(b));
    return (isNaN(y) ? -Infinity : y) - (isNaN(x) ? -Infinity : x);
  };
}

function use(idx, list) {
  list.forEach((r) => idx.used.add(r));
  return list;
}

// statements renders "no known ..." and "no information about ..."
// records as sentences, never as entries of the list.
function statements(list, dateOf) {
  if (!list.length) return null;
  return h('ul', { class: 'statements' }, list.map(({ r, none }) => {
    const when = dateOf ? dateOf(r) : '';
    return h('li', { class: 'statement' + (none.none ? '' : ' unknown'), 'data-none': none.code },
      h('span', { class: 'strong' }, none.text), when ? h('span', { class: 'sub inline' }, ' · ' + S.recordedOn(fmtDate(when))) : null);
  }));
}

// splitNone separates "none known" statements from facts.
function splitNone(list, conceptOf) {
  const none = [];
  const facts = [];
  for (const r of list) {
    const n = noneKnown(conceptOf(r));
    if (n) none.push({ r, none: n });
    else facts.push(r);
  }
  return { none, facts };
}

function ruledOut(title, list, nameOf, dateOf) {
  if (!list.length) return [];
  return [h('h3', null, title), h('ul', { class: 'ruled-out' }, list.map((r) =>
    h('li', { 'data-refuted': '' }, h('span', { class: 'strong' }, nameOf(r)), ' ', badge(S.ruledOut, 'muted'),
      dateOf(r) ? h('span', { class: 'sub inline' }, ' · ' + fmtDate(dateOf(r))) : null)))];
}

// ---------------------------------------------------------------- allergies

function allergyDate(a) {
  return str(a.recordedDate) || str(a.onsetDateTime);
}

export function buildAllergies(idx) {
  const all = use(idx, idx.of('AllergyIntolerance'));
  const { none, facts } = splitNone(all, (a) => a.code);
  const refuted = facts.filter(isRefuted);
  const list = facts.filter((a) => !isRefuted(a));
  const body = [];
  if (!all.length) return { count: 0, body: [empty(S.empty.allergies)] };
  const rank = (a) => {
    const st = firstCode(a.clinicalStatus) || 'active';
    return (st === 'active' ? 0 : 2) + (str(a.criticality) === 'high' ? 0 : 1);
  };
  list.sort((a, b) => rank(a) - rank(b));
  if (list.length) {
    body.push(h('ul', { class: 'allergies' }, list.map((a) => {
      const name = ccText(a.code) || S.unspecifiedSubstance;
      const status = firstCode(a.clinicalStatus);
      const ver = verification(a);
      const crit = str(a.criticality);
      const reactions = arr(a.reaction).filter((r) => r && typeof r === 'object').map((r) => {
        const m = arr(r.manifestation).map(ccText).filter(Boolean).join(', ');
        const sev = str(r.severity);
        return (m || S.reaction) + (sev ? ' (' + (S.severity[sev] || sev) + ')' : '');
      });
      const kind = [str(a.type), arr(a.category).map(str).filter(Boolean).join(', ')].filter(Boolean).join(' · ');
      const meta = [kind ? humanize(kind) : '', str(a.onsetDateTime) ? S.since(fmtDate(a.onsetDateTime)) : '',
        str(a.recordedDate) ? S.recordedOn(fmtDate(a.recordedDate)) : ''].filter(Boolean).join(' · ');
      const cls = (crit === 'high' ? ' high' : '') + (status && status !== 'active' ? ' inactive' : '');
      return h('li', { class: 'allergy' + cls },
        h('div', { class: 'allergy-head' },
          h('span', { class: 'allergy-name' }, name),
          crit === 'high' ? badge(S.criticalityHigh, 'danger') : crit === 'low' ? badge(S.criticalityLow, 'muted') : null,
          status && status !== 'active' ? badge(statusText(status), 'muted') : null,
          ver && ver !== 'confirmed' ? badge(statusText(ver), 'muted') : null),
        reactions.length ? h('div', null, h('span', { class: 'k' }, S.reactionLabel), reactions.join('; ')) : null,
        small(meta), small(notesOf(a)));
    })));
  }
  const st = statements(none, allergyDate);
  if (st) body.unshift(st);
  if (!list.length && !none.length) body.push(empty(S.empty.allergies));
  body.push(...ruledOut(S.ruledOutAllergies, refuted, (a) => ccText(a.code) || S.unspecifiedSubstance, allergyDate));
  return { count: list.length, body };
}

// ---------------------------------------------------------------- medications

export function buildMedications(idx) {
  const all = use(idx, idx.of('MedicationStatement', 'MedicationRequest'));
  const { none, facts } = splitNone(all, (r) => medConcept(r, idx));
  const active = facts.filter(medIsActive);
  const other = facts.filter((r) => !medIsActive(r));
  const body = [];
  const st = statements(none, (r) => str(r.dateAsserted) || medStart(r));
  if (st) body.push(st);
  const nameCell = (r) => [h('span', { class: 'med-name' }, medName(r, idx)), small(r.resourceType === 'MedicationRequest' ? S.prescription : '')];
  const reasonCell = (r) => [arr(r.reasonCode).map(ccText).filter(Boolean).join(', '), small(notesOf(r))];
  if (active.length) {
    body.push(table('meds', [S.col.medication, S.col.dosage, { label: S.col.since, cls: 'date' }, S.col.reasonNotes],
      active.sort(byDateDesc(medStart)).map((r) => ({
        cells: [
          nameCell(r),
          dosageText(medDosages(r)) || '—',
          [fmtDate(medStart(r)) || '—', medStop(r) ? small(S.until(fmtDate(medStop(r)))) : null],
          reasonCell(r),
        ],
      }))));
  } else if (!none.length) {
    body.push(empty(S.empty.medications));
  }
  if (other.length) {
    body.push(h('h3', null, S.otherMedications),
      table('meds other', [S.col.medication, { label: S.col.status, cls: 'status' }, S.col.dosage,
        { label: S.col.started, cls: 'date' }, { label: S.col.stopped, cls: 'date' }, S.col.reasonNotes],
      other.sort(byDateDesc((r) => medStop(r) || medStart(r))).map((r) => {
        const negated = r.status === 'not-taken' || r.doNotPerform === true;
        return {
          cls: 'dim' + (negated ? ' negated' : ''),
          cells: [
            nameCell(r),
            [negated ? badge(medStatusText(r), 'neg') : medStatusText(r) || '—', small(ccText(arr(r.statusReason)[0]) || str(r.statusReason && r.statusReason.text))],
            dosageText(medDosages(r)) || '—',
            fmtDate(medStart(r)) || '—',
            fmtDate(medStop(r)) || '—',
            reasonCell(r),
          ],
        };
      })));
  }
  return { count: active.length, body };
}

// ---------------------------------------------------------------- problems

function onsetOf(c) {
  return str(c.onsetDateTime) || str(c.onsetPeriod && c.onsetPeriod.start) || str(c.onsetString);
}

export function buildProblems(idx) {
  const all = use(idx, idx.of('Condition'));
  if (!all.length) return { count: 0, body: [empty(S.empty.problems)] };
  const { none, facts } = splitNone(all, (c) => c.code);
  const refuted = facts.filter(isRefuted);
  const list = facts.filter((c) => !isRefuted(c));
  const body = [];
  const st = statements(none, (c) => str(c.recordedDate));
  if (st) body.push(st);
  const activeRank = (c) => (['active', 'recurrence', 'relapse', ''].includes(firstCode(c.clinicalStatus)) ? 0 : 1);
  const dateOf = (c) => onsetOf(c) || str(c.recordedDate);
  list.sort((a, b) => activeRank(a) - activeRank(b) || byDateDesc(dateOf)(a, b));
  if (list.length) {
    body.push(table('problems', [S.col.problem, { label: S.col.status, cls: 'status' }, { label: S.col.since, cls: 'date' }], list.map((c) => {
      const ver = verification(c);
      const since = onsetOf(c);
      return {
        cls: activeRank(c) ? 'dim' : null,
        cells: [
          [h('span', { class: 'strong' }, ccText(c.code) || S.unnamedProblem), small(notesOf(c))],
          [statusText(firstCode(c.clinicalStatus) || str(c.clinicalStatus && c.clinicalStatus.text)) || '—',
            ver && ver !== 'confirmed' ? badge(statusText(ver), 'muted') : null,
            small(ccText(c.severity) ? S.severityOf(ccText(c.severity)) : '')],
          since ? fmtDate(since) : str(c.recordedDate) ? [small(S.recordedOn(fmtDate(c.recordedDate)))] : '—',
        ],
      };
    })));
  } else if (!none.length) {
    body.push(empty(S.empty.problems));
  }
  body.push(...ruledOut(S.ruledOutProblems, refuted, (c) => ccText(c.code) || S.unnamedProblem, dateOf));
  return { count: list.length, body };
}

// ---------------------------------------------------------------- results and vitals

export function buildResults(idx) {
  const obs = idx.of('Observation').filter((o) => !isSymptom(o) && !isVital(o));
  const reports = idx.of('DiagnosticReport');
  if (!obs.length && !reports.length) return null;
  const body = [];
  if (obs.length) {
    use(idx, obs).sort(byDateDesc(obsDate));
    body.push(table('results', [S.col.test, S.col.result, S.col.referenceRange, { label: S.col.date, cls: 'date' }], obs.map((o) => {
      const flag = abnormal(o);
      const cats = codes(o.category).map((c) => str(c.code)).filter((c) => c && c !== 'laboratory');
      return {
        cls: flag ? 'abnormal' : null,
        cells: [
          [h('span', { class: 'strong' }, obsName(o) || S.unnamedResult), small(cats.length ? statusText(cats[0]) : ''), small(notesOf(o))],
          [h('span', { class: 'value' }, obsValue(o) || '—'), flag ? badge(flag, 'warn') : null],
          refRange(o) || '—',
          fmtDate(obsDate(o)) || '—',
        ],
      };
    })));
  }
  if (reports.length) {
    use(idx, reports);
    const date = (r) => str(r.effectiveDateTime) || str(r.effectivePeriod && r.effectivePeriod.start) || str(r.issued);
    reports.sort(byDateDesc(date));
    body.push(h('h3', null, S.reports), table('reports', [S.col.report, S.col.conclusion, { label: S.col.date, cls: 'date' }], reports.map((r) => {
      const members = arr(r.result).map((ref) => idx.resolve(ref, r)).filter(Boolean);
      return {
        cells: [
          [h('span', { class: 'strong' }, ccText(r.code) || S.report), small([statusText(r.status), members.length ? S.nResults(members.length) : ''].filter(Boolean).join(' · '))],
          [str(r.conclusion), arr(r.conclusionCode).map(ccText).filter(Boolean).join(', ')].filter(Boolean).join(' — ') || '—',
          fmtDate(date(r)) || '—',
        ],
      };
    })));
  }
  return { count: obs.length + reports.length, body };
}

export function buildVitals(idx) {
  const obs = idx.of('Observation').filter((o) => !isSymptom(o) && isVital(o));
  if (!obs.length) return null;
  use(idx, obs);
  const groups = new Map();
  for (const o of obs) {
    const v = vitalOf(o);
    const k = v ? v.kind.kind + (v.part ? '-' + v.part.kind : '') : firstCode(o.code) || ccText(o.code);
    if (!groups.has(k)) groups.set(k, []);
    groups.get(k).push(o);
  }
  const rows = [];
  for (const list of groups.values()) {
    list.sort(byDateDesc(obsDate));
    const latest = list[0];
    rows.push({
      cells: [
        h('span', { class: 'strong' }, obsName(latest) || S.measurement),
        [h('span', { class: 'value' }, obsValue(latest) || '—'), abnormal(latest) ? badge(abnormal(latest), 'warn') : null],
        fmtDate(obsDate(latest)) || '—',
        String(list.length),
      ],
    });
  }
  return { count: groups.size, body: [table('vitals', [S.col.measurement, S.col.latest, { label: S.col.date, cls: 'date' }, S.col.readings], rows)] };
}

export function buildTrends(idx) {
  const series = trendSeries(idx.of('Observation'));
  if (!series.length) return null;
  return { count: series.length, body: [h('div', { class: 'trends' }, series.map((s) => chart(s)))] };
}

// ---------------------------------------------------------------- immunizations

export function buildImmunizations(idx) {
  const all = use(idx, idx.of('Immunization'));
  if (!all.length) return null;
  const { none, facts } = splitNone(all, (r) => r.vaccineCode);
  const date = (r) => str(r.occurrenceDateTime) || str(r.occurrenceString) || str(r.recorded);
  const given = facts.filter((r) => r.status !== 'not-done').sort(byDateDesc(date));
  const notGiven = facts.filter((r) => r.status === 'not-done').sort(byDateDesc(date));
  const body = [];
  const st = statements(none, (r) => str(r.recorded));
  if (st) body.push(st);
  if (given.length) {
    body.push(table('immunizations', [S.col.vaccine, { label: S.col.date, cls: 'date' }, S.col.details], given.map((r) => {
      const details = [];
      const dose = arr(r.protocolApplied).map((p) => p && (num(p.doseNumberPositiveInt) || str(p.doseNumberString))).filter(Boolean)[0];
      if (dose) details.push(S.doseNumber(dose));
      if (str(r.lotNumber)) details.push(S.lot(str(r.lotNumber)));
      const by = arr(r.performer).map((p) => p && p.actor && (str(p.actor.display) || ccText((idx.resolve(p.actor, r) || {}).name) || str((idx.resolve(p.actor, r) || {}).name))).filter(Boolean);
      if (by.length) details.push(by.join(', '));
      if (r.location && str(r.location.display)) details.push(str(r.location.display));
      if (r.primarySource === false) details.push(S.reportedByPatient);
      return {
        cells: [[h('span', { class: 'strong' }, ccText(r.vaccineCode) || S.vaccine), small(notesOf(r))], fmtDate(date(r)) || '—', details.join(' · ') || '—'],
      };
    })));
  } else if (!none.length) {
    body.push(empty(S.empty.immunizationsGiven));
  }
  if (notGiven.length) {
    body.push(h('h3', null, S.notGivenTitle), table('immunizations not-given', [S.col.vaccine, { label: S.col.status, cls: 'status' }, { label: S.col.date, cls: 'date' }, S.col.reason], notGiven.map((r) => ({
      cls: 'negated',
      cells: [
        [h('span', { class: 'strong' }, ccText(r.vaccineCode) || S.vaccine), small(notesOf(r))],
        badge(S.notGiven, 'neg'),
        fmtDate(date(r)) || '—',
        ccText(r.statusReason) || '—',
      ],
    }))));
  }
  return { count: given.length, body };
}

// ---------------------------------------------------------------- patient-reported

export function buildPatientReported(idx) {
  const symptoms = idx.of('Observation').filter(isSymptom);
  const doses = idx.of('MedicationAdministration');
  if (!symptoms.length && !doses.length) return null;
  const body = [];
  if (symptoms.length) {
    use(idx, symptoms).sort(byDateDesc(obsDate));
    body.push(h('h3', null, S.symptoms), table('symptoms', [S.col.symptom, S.col.severity, { label: S.col.date, cls: 'date' }, S.col.note], symptoms.map((o) => {
      let sev = '';
      if (num(o.valueInteger) !== null) sev = S.outOfTen(o.valueInteger);
      else if (o.valueQuantity && num(o.valueQuantity.value) !== null) sev = qty(o.valueQuantity) && str(o.valueQuantity.unit || o.valueQuantity.code) ? qty(o.valueQuantity) : S.outOfTen(fmtNum(o.valueQuantity.value));
      else sev = valueText(o);
      return { cells: [h('span', { class: 'strong' }, ccText(o.code) || S.symptom), sev || '—', fmtDate(obsDate(o)) || '—', notesOf(o) || ''] };
    })));
  }
  if (doses.length) {
    use(idx, doses);
    const plans = idx.of('MedicationStatement', 'MedicationRequest');
    const summaries = summariseDoses(doses, plans, idx);
    body.push(h('h3', null, S.dosesTitle), h('ul', { class: 'adherence' }, summaries.map((g) => {
      const taken = g.expected !== null ? S.takenOfExpected(g.taken, g.expected) : S.nDoses(g.taken);
      const span = g.first ? fmtWallRange(wallTime(g.first), wallTime(g.last)) : '';
      return h('li', { class: 'med-doses', 'data-med': g.name },
        h('div', { class: 'med-doses-head' },
          h('span', { class: 'med-name' }, g.name),
          h('span', { class: 'value adherence-count' }, taken),
          g.notTaken ? badge(S.nNotTaken(g.notTaken), 'neg') : null),
        small([g.frequency ? S.expectedFrom(g.frequency) : S.noFrequency, span ? S.doseDays(span) : ''].filter(Boolean).join(' · ')),
        g.last ? h('div', { class: 'last-dose' }, h('span', { class: 'k' }, S.lastDose), fmtDate(g.last)) : null,
        h('details', { class: 'dose-rows' },
          h('summary', null, S.showDoses(g.doses.length)),
          table('doses', [{ label: S.col.taken, cls: 'date' }, S.col.dose, { label: S.col.status, cls: 'status' }, S.col.note], g.doses.map((r) => {
            const ok = doseTaken(r);
            return {
              cls: ok ? null : 'negated',
              cells: [
                fmtDate(doseDate(r)) || '—',
                r.dosage ? qty(r.dosage.dose) || str(r.dosage.text) || '—' : '—',
                ok ? S.status.completed : badge(statusText(r.status), 'neg'),
                notesOf(r) || '',
              ],
            };
          }))));
    })));
  }
  return { count: symptoms.length + doses.length, body };
}

// ---------------------------------------------------------------- procedures, encounters

export function buildProcedures(idx) {
  const all = use(idx, idx.of('Procedure'));
  if (!all.length) return null;
  const { none, facts } = splitNone(all, (r) => r.code);
  const date = (r) => str(r.performedDateTime) || str(r.performedPeriod && r.performedPeriod.start) || str(r.performedString);
  const done = facts.filter((r) => r.status !== 'not-done').sort(byDateDesc(date));
  const notDone = facts.filter((r) => r.status === 'not-done').sort(byDateDesc(date));
  const body = [];
  const st = statements(none, () => '');
  if (st) body.push(st);
  if (done.length) {
    body.push(table('procedures', [S.col.procedure, { label: S.col.date, cls: 'date' }, { label: S.col.status, cls: 'status' }], done.map((r) => ({
      cells: [[h('span', { class: 'strong' }, ccText(r.code) || S.procedure), small(notesOf(r))], fmtDate(date(r)) || '—', statusText(r.status) || '—'],
    }))));
  }
  if (notDone.length) {
    body.push(h('h3', null, S.notDoneTitle), table('procedures not-done', [S.col.procedure, { label: S.col.status, cls: 'status' }, { label: S.col.date, cls: 'date' }, S.col.reason], notDone.map((r) => ({
      cls: 'negated',
      cells: [h('span', { class: 'strong' }, ccText(r.code) || S.procedure), badge(S.notDone, 'neg'), fmtDate(date(r)) || '—', ccText(r.statusReason) || '—'],
    }))));
  }
  return { count: done.length, body };
}

export function buildEncounters(idx) {
  const list = use(idx, idx.of('Encounter'));
  if (!list.length) return null;
  const date = (r) => str(r.period && r.period.start);
  list.sort(byDateDesc(date));
  return {
    count: list.length,
    body: [table('encounters', [S.col.encounter, { label: S.col.date, cls: 'date' }, S.col.reason, S.col.where], list.map((r) => {
      const cls = r.class && typeof r.class === 'object' ? str(r.class.display) || str(r.class.code) : '';
      const where = (r.serviceProvider && str(r.serviceProvider.display)) ||
        arr(r.location).map((l) => l && l.location && str(l.location.display)).filter(Boolean).join(', ');
      const start = date(r);
      const end = str(r.period && r.period.end);
      return {
        cells: [
          h('span', { class: 'strong' }, arr(r.type).map(ccText).filter(Boolean)[0] || cls || S.encounter),
          end && fmtDate(end) !== fmtDate(start) && end.slice(0, 10) !== start.slice(0, 10) ? S.range(fmtDate(start) || '?', fmtDate(end)) : fmtDate(start) || '—',
          arr(r.reasonCode).map(ccText).filter(Boolean).join(', ') || '—',
          where || '—',
        ],
      };
    }))],
  };
}

// ---------------------------------------------------------------- documents

const EXTENSIONS = { 'application/pdf': '.pdf', 'image/jpeg': '.jpg', 'image/png': '.png', 'text/html': '.html', 'application/xml': '.xml', 'text/xml': '.xml', 'application/json': '.json', 'text/plain': '.txt' };

export function fileName(title, ct) {
  const base = (title || S.document).replace(/[\\/:*?"<>|\u0000-\u001f]+/g, '_').slice(0, 80);
  const ext = EXTENSIONS[ct] || '';
  return ext && !base.toLowerCase().endsWith(ext) ? base + ext : base;
}

function attachmentView(att, title) {
  const ct = mediaType(att.contentType);
  if (typeof att.data === 'string' && att.data) {
    let bytes;
    try {
      bytes = b64Bytes(att.data);
    } catch (e) {
      return h('p', { class: 'sub' }, S.attachmentUndecodable);
    }
    if (ct === 'text/plain' || ct === 'text/markdown' || (!ct && bytes.length < 65536)) {
      return h('pre', { class: 'note-text' }, utf8.decode(bytes));
    }
    // Always octet-stream: the file is downloaded, never rendered as a
    // page of this origin.
    const url = URL.createObjectURL(new Blob([bytes], { type: 'application/octet-stream' }));
    const name = fileName(str(att.title) || title, ct);
    return h('p', { class: 'attachment' },
      h('a', { href: url, download: name, class: 'download' }, S.downloadFile(name)),
      h('span', { class: 'sub inline' }, ' ' + [ct || S.unknownType, S.size(bytes.length)].join(', ')));
  }
  if (str(att.url)) return h('p', { class: 'sub' }, S.keptElsewhere(ct || S.file, str(att.url)));
  return null;
}

export function buildDocuments(idx) {
  const list = use(idx, idx.of('DocumentReference'));
  if (!list.length) return null;
  const date = (r) => str(r.date) || str(arr(r.content)[0] && arr(r.content)[0].attachment && arr(r.content)[0].attachment.creation) ||
    str(r.context && r.context.period && r.context.period.start);
  list.sort(byDateDesc(date));
  return {
    count: list.length,
    body: list.map((r) => {
      const first = arr(r.content)[0];
      const title = str(r.description) || ccText(r.type) || str(first && first.attachment && first.attachment.title) || S.document;
      const author = arr(r.author).map((a) => a && str(a.display)).filter(Boolean).join(', ');
      const meta = [ccText(r.type) !== title ? ccText(r.type) : '', fmtDate(date(r)), author].filter(Boolean).join(' · ');
      return h('article', { class: 'doc' },
        h('div', { class: 'doc-head' }, h('span', { class: 'strong' }, title), small(meta)),
        arr(r.content).map((c) => (c && c.attachment && typeof c.attachment === 'object' ? attachmentView(c.attachment, title) : null)));
    }),
  };
}

// ---------------------------------------------------------------- other

export function buildOther(idx) {
  const counts = new Map();
  for (const r of idx.all) {
    if (idx.used.has(r)) continue;
    counts.set(r.resourceType, (counts.get(r.resourceType) || 0) + 1);
  }
  if (!counts.size && !idx.leftOut) return null;
  const rows = [...counts.entries()].sort((a, b) => a[0].localeCompare(b[0]));
  const body = [];
  if (rows.length) {
    body.push(h('p', { class: 'sub' }, S.alsoInShare),
      h('ul', { class: 'other' }, rows.map(([type, n]) => h('li', { 'data-type': type }, h('span', { class: 'strong' }, type), ' ', S.nRecords(n)))));
  }
  if (idx.leftOut) body.push(h('p', { class: 'sub', id: 'left-out' }, S.leftOut(idx.leftOut)));
  return { count: rows.reduce((n, e) => n + e[1], 0), body };
}

export const SECTIONS = [
  ['allergies', buildAllergies],
  ['medications', buildMedications],
  ['problems', buildProblems],
  ['results', buildResults],
  ['vitals', buildVitals],
  ['trends', buildTrends],
  ['immunizations', buildImmunizations],
  ['patient-reported', buildPatientReported],
  ['procedures', buildProcedures],
  ['encounters', buildEncounters],
  ['documents', buildDocuments],
  ['other', buildOther],
];
