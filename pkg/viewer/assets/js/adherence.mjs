// Doses summarised per medication: how many were taken, how many a
// frequency expected over the days the doses span, and the last one.
// Pure; tested with node (jstest/adherence.test.mjs).

import { dayIndex, sortKey } from './dates.mjs';
import { dosagePerDay, medKey, medName, str } from './fhir.mjs';

export function doseDate(r) {
  return str(r.effectiveDateTime) || str(r.effectivePeriod && r.effectivePeriod.start);
}

// taken: a MedicationAdministration that happened. not-done, on-hold,
// stopped and unknown ones are not doses taken.
export function doseTaken(r) {
  return r.status === 'completed' || r.status === 'in-progress' || !str(r.status);
}

// expectedDoses is how many doses perDay expects from the first day to
// the last day of doses (whole days, both counted): 28 for two weeks
// twice daily; for less than daily, one at the start and one per period
// after it (2 for two weekly doses a week apart).
export function expectedDoses(perDay, firstDay, lastDay) {
  if (!(perDay > 0) || !isFinite(firstDay) || !isFinite(lastDay) || lastDay < firstDay) return null;
  const span = lastDay - firstDay;
  if (perDay >= 1) return Math.round((span + 1) * perDay);
  return Math.floor(span * perDay + 1e-9) + 1;
}

// summariseDoses groups MedicationAdministrations by medication. plans
// are the MedicationStatements and MedicationRequests of the share; a
// plan of the same medication whose dosage says how often gives the
// expected count. Each summary: {key, name, doses (newest first), taken,
// notTaken, expected (or null), frequency (text), first, last (the
// first and last dose taken, as written)}.
export function summariseDoses(doses, plans, idx) {
  const groups = new Map();
  for (const r of doses) {
    const key = medKey(r, idx);
    if (!groups.has(key)) groups.set(key, { key, name: medName(r, idx), doses: [] });
    groups.get(key).doses.push(r);
  }
  const planOf = new Map();
  for (const p of plans) {
    if (p.doNotPerform === true || p.status === 'not-taken' || p.status === 'entered-in-error') continue;
    const f = dosagePerDay(p);
    if (!f) continue;
    const key = medKey(p, idx);
    const prev = planOf.get(key);
    // An active plan wins over an earlier one.
    if (!prev || (p.status === 'active' && prev.status !== 'active')) planOf.set(key, { status: p.status, ...f });
  }
  const out = [];
  for (const g of groups.values()) {
    g.doses.sort((a, b) => (sortKey(doseDate(b)) || 0) - (sortKey(doseDate(a)) || 0));
    const taken = g.doses.filter(doseTaken);
    g.taken = taken.length;
    g.notTaken = g.doses.length - taken.length;
    const days = taken.map((r) => dayIndex(doseDate(r))).filter((d) => isFinite(d));
    g.first = taken.length ? doseDate(taken[taken.length - 1]) : '';
    g.last = taken.length ? doseDate(taken[0]) : '';
    const plan = planOf.get(g.key);
    g.frequency = plan ? plan.text : '';
    g.perDay = plan ? plan.perDay : null;
    g.expected = plan && days.length ? expectedDoses(plan.perDay, Math.min(...days), Math.max(...days)) : null;
    out.push(g);
  }
  out.sort((a, b) => (sortKey(b.last) || 0) - (sortKey(a.last) || 0) || a.name.localeCompare(b.name));
  return out;
}
