// The record page: the patient first (name, birth date, sex, the
// identifiers shared), then what the share is (its label and when it was
// made), then the sections.

import { S } from './strings.mjs';
import { ageOn, fmtDate, fmtDayOf, fmtInstant } from './dates.mjs';
import { identifiers, patientName, str } from './fhir.mjs';
import { SECTIONS } from './sections.mjs';
import { h } from './dom.mjs';

function fact(label, value, id) {
  return value ? h('div', { class: 'fact', 'data-fact': id || null }, h('dt', null, label), h('dd', null, value)) : null;
}

export function renderPatient(idx) {
  const patients = idx.of('Patient');
  patients.forEach((p) => idx.used.add(p));
  const p = patients[0];
  if (!p) {
    return h('section', { class: 'patient', id: 'patient' },
      h('h1', { class: 'pt-name' }, S.patientNotShared),
      h('p', { class: 'sub' }, S.patientNotSharedText));
  }
  const birth = str(p.birthDate);
  const age = ageOn(birth, new Date());
  const gender = str(p.gender);
  return h('section', { class: 'patient', id: 'patient' },
    h('h1', { class: 'pt-name' }, patientName(p) || S.nameNotShared),
    h('dl', { class: 'facts' },
      fact(S.born, birth ? fmtDate(birth) + (age !== null ? ' (' + S.years(age) + ')' : '') : S.notShared, 'born'),
      fact(S.sex, gender ? S.gender[gender] || gender : S.notShared, 'sex'),
      identifiers(p).map((i) => fact(i.label, i.value, 'identifier')),
      p.deceasedBoolean === true || str(p.deceasedDateTime) ? fact(S.deceased, str(p.deceasedDateTime) ? fmtDate(p.deceasedDateTime) : S.yes, 'deceased') : null),
    patients.length > 1 ? h('p', { class: 'sub' }, S.manyPatients(patients.length)) : null);
}

// shareTitle names the share: its label, never the title of a document
// inside it.
export function shareTitle(link) {
  return link.label || S.untitledShare;
}

export function expiryText(link) {
  return typeof link.exp === 'number' ? S.expires(fmtInstant(new Date(link.exp * 1000))) : S.noExpiry;
}

function renderShareInfo(link, recipient, data) {
  return h('section', { class: 'share-info', id: 'share-info' },
    h('p', { class: 'share-label', id: 'share-label' }, shareTitle(link)),
    h('p', { class: 'share-line', id: 'share-made' }, data.made ? S.madeOn(fmtDate(data.made)) : S.madeUnknown),
    h('p', { class: 'share-line', id: 'share-expiry' }, S.sharedByPatient(expiryText(link))),
    h('p', { class: 'share-line', id: 'share-recipient' }, S.openedBy[0], h('span', { class: 'strong' }, recipient), S.openedBy[1](fmtInstant(new Date()))),
    data.cards.map((c) => h('p', { class: 'notice', 'data-notice': 'shc' },
      S.shcNotice(c.iss, c.nbf ? fmtInstant(new Date(c.nbf * 1000)) : ''), ' ',
      h('span', { class: 'strong' }, S.signatureNotVerified))),
    data.notices.map((n) => h('p', { class: 'notice' }, n)),
    data.withdrawn ? h('p', { class: 'notice warn', 'data-notice': 'withdrawn' }, S.notice.withdrawn(data.withdrawn)) : null,
    data.errors.map((e) => h('p', { class: 'notice warn', 'data-notice': 'error' }, e)));
}

// downloadButtons offer the decrypted FHIR files as they were shared, as
// a blob: download made in the page; nothing is sent anywhere.
function downloadButtons(data) {
  return data.bundles.map((bytes, i) => {
    const name = data.bundles.length > 1 ? 'shared-record-' + (i + 1) + '.json' : 'shared-record.json';
    const b = h('button', { type: 'button', class: 'secondary download-fhir', 'data-file': name },
      data.bundles.length > 1 ? S.downloadFHIRn(i + 1) : S.downloadFHIR);
    b.addEventListener('click', () => {
      const url = URL.createObjectURL(new Blob([bytes], { type: 'application/fhir+json' }));
      const a = h('a', { href: url, download: name, hidden: true });
      document.body.appendChild(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60000);
    });
    return b;
  });
}

export function renderRecord(link, recipient, data) {
  const idx = data.index;
  const header = renderPatient(idx);
  const info = renderShareInfo(link, recipient, data);
  const sections = [];
  for (const [id, fn] of SECTIONS) {
    let res;
    try {
      res = fn(idx);
    } catch (e) {
      res = { count: 0, body: [h('p', { class: 'notice warn' }, S.sectionFailed)] };
    }
    if (!res) continue;
    sections.push(h('section', { class: 'sec sec-' + id, 'data-section': id, 'aria-labelledby': 'h-' + id },
      h('h2', { id: 'h-' + id }, S.sections[id], res.count ? h('span', { class: 'count' }, String(res.count)) : null),
      res.body));
  }
  const printBtn = h('button', { type: 'button', class: 'secondary', id: 'print' }, S.print);
  printBtn.addEventListener('click', () => window.print());
  return {
    node: h('div', { id: 'record', class: 'record' },
      h('div', { class: 'record-head' }, header, info, h('div', { class: 'toolbar no-print' }, printBtn, downloadButtons(data))),
      sections),
    title: S.documentTitle(shareTitle(link), data.made ? fmtDayOf(data.made) : ''),
  };
}
