// Sharing: the presets, expiries and passcodes of a new share as the
// body of POST /api/v1/shares, and the words for a share's state. Pure
// functions, tested with node.

import { S } from './strings.mjs';
import { KINDS } from './timeline.mjs';
import { rfc3339Local } from './forms.mjs';

// PRESETS are the shares a patient makes most: what a clinician asks for
// at an appointment (doses go with the medications: they show whether
// the medicine is taken), the International Patient Summary, and recent
// vital signs. "custom" takes chosen kinds from a chosen day.
export const PRESETS = [
  { id: 'essentials', types: ['allergy', 'medication', 'dose', 'condition'] },
  { id: 'summary', summary: true },
  { id: 'vitals30', types: ['vital'], days: 30 },
  { id: 'custom' },
];

// EXPIRIES are the offered lifetimes, in hours.
export const EXPIRIES = [1, 24, 24 * 7, 24 * 30, 24 * 90];
export const DEFAULT_EXPIRY = 24;

// shareRequest builds the body of POST /api/v1/shares. form: {preset,
// types (custom), since ('YYYY-MM-DD', custom), hours, passcode, label}.
export function shareRequest(form, now) {
  const p = PRESETS.find((x) => x.id === form.preset) || PRESETS[0];
  const select = {};
  if (p.summary) select.summary = true;
  else if (p.id === 'custom') {
    const types = (form.types || []).filter((t) => KINDS.includes(t));
    if (!types.length) throw new RangeError(S.share.needTypes);
    select.types = types;
    if (form.since) {
      const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(form.since);
      if (!m) throw new RangeError(S.share.badSince);
      select.since = rfc3339Local(new Date(Number(m[1]), Number(m[2]) - 1, Number(m[3])));
    }
  } else {
    select.types = p.types.slice();
    if (p.days) select.since = rfc3339Local(new Date(now.getTime() - p.days * 86400000));
  }
  const hours = EXPIRIES.includes(Number(form.hours)) ? Number(form.hours) : DEFAULT_EXPIRY;
  const body = { select, expires_at: new Date(now.getTime() + hours * 3600000).toISOString() };
  const code = String(form.passcode || '').trim();
  if (form.usePasscode) {
    if (code.length < 4) throw new RangeError(S.share.shortPasscode);
    body.passcode = code;
  }
  const label = String(form.label || '').trim();
  if (label) body.label = label.slice(0, 80);
  return body;
}

// newPasscode is a random six-digit passcode, easy to read out.
export function newPasscode(rand) {
  const b = new Uint32Array(1);
  rand(b);
  return String(b[0] % 1000000).padStart(6, '0');
}

// statusText names a share's state.
export function shareStatus(info) {
  return S.share.status[info.status] || info.status || '';
}

// outcomeText names the outcome of an access in a share's log.
export function outcomeText(e) {
  if (e.outcome === 'not-logged') return S.share.notLogged(e.count || 0);
  return S.share.outcome[e.outcome] || e.outcome || '';
}
