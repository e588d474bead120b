// Records: the timeline with filters by kind, date and source; a
// record's detail in plain language with the FHIR behind it; editing and
// deleting; importing a file with its report.

import { S } from './strings.mjs';
import { request, errorText, ApiError } from './api.mjs';
import { h, screen, card, field, input, select, button, errorLine, run, toast, badge, dl, confirmTap } from './ui.mjs';
import { KINDS, listQuery, groupByDay, kindText, negationText, sources } from './timeline.mjs';
import { describe, negation, sourceText, editableDate } from './detail.mjs';
import { clockAsWritten, localInputValue, severityWord } from './forms.mjs';
import { fmtDate, fmtInstant, parseDate } from '/view/js/dates.mjs';
import { arr, str, isSymptom } from '/view/js/fhir.mjs';

// The filters last used, kept while the app is open.
const filters = { types: [], since: '', until: '', source: '', q: '' };
let knownSources = [];

function chip(kind, label) {
  const on = kind ? filters.types.includes(kind) : filters.types.length === 0;
  return button(label, { class: 'chip', 'aria-pressed': on ? 'true' : 'false', 'data-kind': kind || 'all' });
}

function filterCard(reload) {
  const chips = h('div', { class: 'chips', role: 'group', 'aria-label': S.records.kinds },
    chip('', S.records.all), KINDS.map((k) => chip(k, kindText(k))));
  chips.addEventListener('click', (ev) => {
    const b = ev.target.closest('button.chip');
    if (!b) return;
    const k = b.dataset.kind;
    if (k === 'all') filters.types = [];
    else if (filters.types.includes(k)) filters.types = filters.types.filter((t) => t !== k);
    else filters.types = [...filters.types, k];
    for (const c of chips.querySelectorAll('button.chip')) {
      const ck = c.dataset.kind;
      c.setAttribute('aria-pressed', String(ck === 'all' ? filters.types.length === 0 : filters.types.includes(ck)));
    }
    reload();
  });
  const since = input({ type: 'date', id: 'filter-since', value: filters.since });
  const until = input({ type: 'date', id: 'filter-until', value: filters.until });
  const src = select({ id: 'filter-source' }, [['', S.records.anySource], ...knownSources.map((s) => [s, s === 'self' ? S.records.self : s])], filters.source);
  const q = input({ type: 'search', id: 'filter-q', value: filters.q, placeholder: S.records.searchPlaceholder });
  for (const [el, key] of [[since, 'since'], [until, 'until'], [src, 'source'], [q, 'q']]) {
    el.addEventListener('change', () => {
      filters[key] = el.value;
      reload();
    });
  }
  return card('records-filter', null, chips,
    h('div', { class: 'row2' }, field(S.records.from, since), field(S.records.to, until)),
    h('div', { class: 'row2' }, field(S.records.source, src), field(S.records.search, q)));
}

function itemRow(it) {
  const time = clockAsWritten(it.date, -new Date().getTimezoneOffset());
  return h('li', { 'data-id': it.id, 'data-type': it.type },
    h('a', { href: '#record/' + encodeURIComponent(it.id), class: 'row-link' },
      h('span', { class: 'time' }, time),
      h('span', { class: 'what' }, h('span', { class: 'display' }, it.display || kindText(it.type)),
        h('span', { class: 'sub' }, [kindText(it.type), it.source === 'self' ? S.records.self : it.source].filter(Boolean).join(' · '))),
      badge(negationText(it.negation), 'neg')));
}

// importCard uploads a file; its answer is the import report.
function importCard(reload) {
  const file = input({ type: 'file', id: 'import-file' });
  const dry = input({ type: 'checkbox', id: 'import-dry' });
  const err = errorLine('import-error');
  const report = h('div', { id: 'import-report' });
  const btn = h('button', { type: 'submit', class: 'secondary', id: 'import-submit' }, S.records.importSubmit);
  const again = h('div', { class: 'actions', id: 'import-again' });
  const send = async (extra) => {
    again.replaceChildren();
    report.replaceChildren();
    const f = file.files && file.files[0];
    if (!f) return err.show(S.records.chooseFile);
    const form = new FormData();
    form.append('file', f, f.name);
    if (dry.checked) form.append('dry_run', 'true');
    for (const [k, v] of Object.entries(extra || {})) form.append(k, v);
    try {
      const res = await request('POST', '/api/v1/imports', { form });
      report.replaceChildren(renderReport(res));
      if (!dry.checked) {
        toast(S.records.imported);
        reload();
      }
    } catch (e) {
      if (!(e instanceof ApiError)) throw e;
      if (e.body && Array.isArray(e.body.files)) report.replaceChildren(renderReport(e.body));
      err.show(errorText(e, 'import'));
      // The file is still chosen: offer what the server would take.
      if (e.code === 'patient_mismatch') {
        const b = button(S.records.importAnyway, { class: 'secondary', id: 'import-anyway' });
        b.addEventListener('click', () => run(b, err, 'import', () => send(Object.assign({}, extra, { accept_patient_mismatch: 'true' }))));
        again.replaceChildren(b);
      } else if (e.status === 422 && !(extra && extra.partial)) {
        const b = button(S.records.importPartial, { class: 'secondary', id: 'import-partial' });
        b.addEventListener('click', () => run(b, err, 'import', () => send(Object.assign({}, extra, { partial: 'true' }))));
        again.replaceChildren(b);
      }
    }
    return undefined;
  };
  const form = h('form', { class: 'form', id: 'import-form' },
    field(S.records.file, file, S.records.fileHint),
    h('label', { class: 'check', for: dry.id }, dry, S.records.dryRun),
    err, again, btn, report);
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    run(btn, err, 'import', () => send({}));
  });
  return h('details', { class: 'card import', id: 'records-import' }, h('summary', null, S.records.importTitle), form);
}

// renderReport shows an import's report, file by file.
export function renderReport(res) {
  return h('div', { class: 'report' }, arr(res.files).map((f) => h('div', { class: 'report-file' },
    h('h3', null, f.error ? S.records.reportRefused(f.format || '') : S.records.reportTitle(f.format || '', !!f.dryRun)),
    dl([
      { label: S.records.added, value: String(f.added || 0) },
      { label: S.records.updated, value: f.updated ? String(f.updated) : '' },
      { label: S.records.duplicates, value: String(f.duplicates || 0) },
      { label: S.records.skipped, value: f.skipped ? String(f.skipped) : '' },
      { label: S.records.failed, value: f.failed ? String(f.failed) : '' },
    ]),
    f.byType ? h('ul', { class: 'bytype' }, Object.entries(f.byType).map(([t, c]) =>
      h('li', null, S.records.byType(t, c.added || 0, c.duplicates || 0, (c.skipped || 0) + (c.failed || 0))))) : null,
    arr(f.skips).length ? h('ul', { class: 'skips' }, arr(f.skips).map((s) => h('li', null, S.records.skip(s.resourceType, s.count, s.reason)))) : null,
    arr(f.failures).length ? h('ul', { class: 'failures' }, arr(f.failures).slice(0, 20).map((x) => h('li', null, x))) : null,
    arr(f.ownerFilled).length ? h('p', null, S.records.ownerFilled(arr(f.ownerFilled).join(', '))) : null,
    f.patientMismatch ? h('p', { class: 'warn' }, S.records.markedMismatch) : null,
    f.warning ? h('p', { class: 'warn' }, f.warning) : null)));
}

export async function showRecords() {
  const list = h('div', { id: 'timeline' }, h('p', { class: 'muted' }, S.loading));
  const err = errorLine('records-error');
  const more = button(S.records.more, { class: 'secondary', id: 'records-more' });
  more.hidden = true;
  let items = [];
  let cursor = '';
  const render = () => {
    list.replaceChildren(...(items.length
      ? groupByDay(items).map((g) => h('section', { class: 'day', 'data-day': g.day },
        h('h3', null, g.label), h('ul', { class: 'list' }, g.items.map(itemRow))))
      : [h('p', { class: 'empty' }, S.records.none)]));
  };
  const load = async (next) => {
    const page = await request('GET', '/api/v1/records?' + listQuery(filters, next));
    items = next ? items.concat(page.records) : page.records;
    cursor = page.next_cursor || '';
    more.hidden = !cursor;
    const seen = sources(items);
    if (seen.some((s) => !knownSources.includes(s))) knownSources = [...new Set([...knownSources, ...seen])].sort();
    render();
  };
  const reload = () => load('').then(() => err.clear(), (e) => err.show(errorText(e)));
  more.addEventListener('click', () => run(more, err, '', () => load(cursor)));
  screen('records', S.records.title, filterCard(reload), importCard(reload), err, list, more);
  await reload();
}

// timeValue is a date as written for an edit input: the wall clock of a
// dateTime ("2026-11-24T08:05"), or the day.
function timeValue(v) {
  const p = parseDate(v);
  if (!p) return '';
  if (p.precision === 'day') return v.slice(0, 10);
  if (p.precision === 'time') return v.slice(0, 16);
  return '';
}

// editedTime keeps the written offset of the value edited (or none, if it
// had none): only the wall clock changes.
export function editedTime(original, value) {
  const p = parseDate(original);
  if (!p) return null;
  if (p.precision === 'day') return /^\d{4}-\d{2}-\d{2}$/.test(value) ? value : null;
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}$/.test(value)) return null;
  return value + ':00' + (p.zone || '');
}

function editForm(rec, done) {
  const r = JSON.parse(JSON.stringify(rec.resource));
  const fields = [];
  const apply = [];
  const dateField = editableDate(r);
  const err = errorLine('edit-error');
  if (dateField && timeValue(r[dateField])) {
    const day = parseDate(r[dateField]).precision === 'day';
    const el = input({ id: 'edit-when', type: day ? 'date' : 'datetime-local', value: timeValue(r[dateField]), max: day ? localInputValue(new Date()).slice(0, 10) : localInputValue(new Date()) });
    fields.push(field(S.edit.when, el, parseDate(r[dateField]).zone ? S.edit.zoneKept : ''));
    apply.push(() => {
      const t = editedTime(rec.resource[dateField], el.value);
      if (!t) throw new RangeError(S.edit.badTime);
      r[dateField] = t;
    });
  }
  if (r.resourceType === 'Observation' && isSymptom(r) && typeof r.valueInteger === 'number') {
    const sev = input({ id: 'edit-severity', type: 'range', min: 0, max: 10, step: 1, value: r.valueInteger });
    const out = h('output', { for: 'edit-severity' });
    const show = () => {
      out.textContent = S.today.severityValue(Number(sev.value), severityWord(sev.value));
    };
    sev.addEventListener('input', show);
    show();
    fields.push(h('div', { class: 'field' }, h('label', { for: sev.id }, S.today.severity), sev, out));
    apply.push(() => {
      r.valueInteger = Number(sev.value);
    });
  }
  if (r.resourceType === 'MedicationStatement') {
    const st = select({ id: 'edit-status' }, ['active', 'completed', 'on-hold', 'stopped', 'not-taken'].map((s) => [s, S.edit.medStatus[s]]), r.status);
    fields.push(field(S.edit.status, st));
    apply.push(() => {
      r.status = st.value;
    });
  }
  const note = h('textarea', { id: 'edit-note', rows: 3 });
  note.value = arr(r.note).map((n) => str(n && n.text)).filter(Boolean).join('\n');
  fields.push(field(S.edit.note, note));
  apply.push(() => {
    if (note.value.trim()) r.note = [{ text: note.value.trim() }];
    else delete r.note;
  });
  const btn = h('button', { type: 'submit', class: 'primary', id: 'edit-submit' }, S.edit.save);
  const cancel = button(S.edit.cancel, { id: 'edit-cancel' });
  const form = h('form', { class: 'form', id: 'edit-form' }, fields, err, h('div', { class: 'actions' }, btn, cancel));
  cancel.addEventListener('click', () => done(false));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    run(btn, err, '', async () => {
      try {
        for (const f of apply) f();
      } catch (e) {
        if (e instanceof RangeError) return err.show(e.message);
        throw e;
      }
      await request('PUT', '/api/v1/records/' + encodeURIComponent(rec.id), { body: r, headers: { 'If-Match': '"v' + rec.version + '"' } });
      toast(S.edit.saved);
      done(true);
      return undefined;
    });
  });
  return form;
}

export async function showRecord(id) {
  const err = errorLine('record-error');
  screen('record', S.record.title, h('p', { class: 'muted' }, S.loading));
  let rec;
  try {
    rec = await request('GET', '/api/v1/records/' + encodeURIComponent(id));
  } catch (e) {
    err.show(errorText(e));
    screen('record', S.record.title, err, h('p', null, h('a', { href: '#records' }, S.record.back)));
    return;
  }
  const r = rec.resource || {};
  const neg = negation(r);
  const rows = describe(r);
  rows.push({ label: S.detail.source, value: sourceText(rec.provenance) });
  if (rec.createdAt) rows.push({ label: S.detail.added, value: fmtInstant(new Date(rec.createdAt)) });
  const fhir = h('details', { class: 'fhir', id: 'record-fhir' }, h('summary', null, S.record.fhir),
    h('pre', null, JSON.stringify(r, null, 2)));
  const edit = button(S.record.edit, { class: 'secondary', id: 'record-edit' });
  const del = button(S.record.delete, { class: 'danger', id: 'record-delete' });
  const editArea = h('div', { id: 'record-edit-area' });
  edit.addEventListener('click', () => {
    editArea.replaceChildren(editForm(rec, (saved) => (saved ? showRecord(id) : editArea.replaceChildren())));
  });
  confirmTap(del, S.record.deleteConfirm, () => run(del, err, '', async () => {
    await request('DELETE', '/api/v1/records/' + encodeURIComponent(id), { headers: { 'If-Match': '"v' + rec.version + '"' } });
    toast(S.record.deleted);
    location.hash = '#records';
  }));
  screen('record', rec.display || S.record.title,
    card('record-detail', null,
      h('p', { class: 'record-kind' }, kindText(rec.type), rec.date ? ' · ' + fmtDate(rec.date) : '', ' ', badge(neg, 'neg')),
      dl(rows), fhir),
    err,
    h('div', { class: 'actions' }, edit, del),
    editArea,
    h('p', null, h('a', { href: '#records', id: 'record-back' }, S.record.back)));
}
