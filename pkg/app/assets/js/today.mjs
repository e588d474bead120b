// Today: the medicines taken now with a one-tap "Taken" (or at another
// time), a symptom with its severity, a measurement with its unit, a
// note; and what was logged today. Each form keeps what was typed until
// the server has stored it.

import { S } from './strings.mjs';
import { request, errorText, ApiError } from './api.mjs';
import { h, screen, card, field, input, select, button, errorLine, run, toast, badge } from './ui.mjs';
import { activeMedications, rfc3339Local, localInputValue, inputTime, startOfToday, vitalValue, severityWord, clockAsWritten } from './forms.mjs';
import { negationText } from './timeline.mjs';
import { vitalKind } from '/view/js/vitals.mjs';
import { str } from '/view/js/fhir.mjs';

const UNIT_KEY = 'phr.unit.';

// whenField is "now" or a chosen time: a checkbox that reveals a
// datetime-local input. value() is the time to send ("" for now).
function whenField(prefix) {
  const other = input({ type: 'checkbox', id: prefix + '-othertime' });
  const at = input({ type: 'datetime-local', id: prefix + '-at', max: localInputValue(new Date()) });
  const wrap = h('div', { class: 'when' },
    h('label', { class: 'check', for: other.id }, other, S.today.atOtherTime),
    field(S.today.when, at));
  wrap.lastChild.hidden = true;
  other.addEventListener('change', () => {
    wrap.lastChild.hidden = !other.checked;
    if (other.checked && !at.value) at.value = localInputValue(new Date());
  });
  wrap.value = () => {
    if (!other.checked) return rfc3339Local(new Date());
    const t = inputTime(at.value);
    if (!t) throw new RangeError(S.today.badTime);
    return t;
  };
  wrap.reset = () => {
    other.checked = false;
    at.value = '';
    wrap.lastChild.hidden = true;
  };
  return wrap;
}

// log stores one log entry; a RangeError is a mistake in the form.
async function log(body) {
  return request('POST', '/api/v1/records', { body });
}

function localError(errLine, e) {
  if (e instanceof RangeError) {
    errLine.show(e.message);
    return true;
  }
  return false;
}

// medRow is one medicine with its Taken button.
function medRow(med, lastTaken, refresh) {
  const err = errorLine();
  const taken = button(S.today.taken, { class: 'primary take', 'data-med': med.name });
  const otherBtn = button(S.today.otherTime, { class: 'link' });
  const at = input({ type: 'datetime-local', max: localInputValue(new Date()), 'aria-label': S.today.when });
  const save = button(S.today.saveDose, { class: 'secondary' });
  const other = h('div', { class: 'other-time' }, at, save);
  other.hidden = true;
  const send = async (when) => {
    const rec = await log({ log: 'dose', name: med.name, amount: med.dose || undefined, at: when });
    toast(S.today.doseLogged(med.name, clockAsWritten(str(rec.resource.effectiveDateTime), -new Date().getTimezoneOffset())));
    refresh();
  };
  taken.addEventListener('click', () => run(taken, err, '', () => send(rfc3339Local(new Date()))));
  otherBtn.addEventListener('click', () => {
    other.hidden = !other.hidden;
    if (!other.hidden && !at.value) at.value = localInputValue(new Date());
  });
  save.addEventListener('click', () => run(save, err, '', async () => {
    const t = inputTime(at.value);
    if (!t) return err.show(S.today.badTime);
    await send(t);
    other.hidden = true;
    return undefined;
  }));
  const sub = [med.how || med.dose, lastTaken ? S.today.lastTaken(lastTaken) : ''].filter(Boolean).join(' · ');
  otherBtn.classList.add('other-link');
  return h('li', { class: 'med', 'data-med': med.name },
    h('div', { class: 'med-text' }, h('div', { class: 'med-name' }, med.name), sub ? h('div', { class: 'sub' }, sub) : null),
    taken, otherBtn, other, err);
}

function addMedForm(refresh) {
  const name = input({ id: 'med-name', required: true, autocapitalize: 'words' });
  const dose = input({ id: 'med-dose', placeholder: S.today.dosePlaceholder });
  const freq = input({ id: 'med-frequency', placeholder: S.today.frequencyPlaceholder });
  const err = errorLine('med-error');
  const btn = h('button', { type: 'submit', class: 'secondary', id: 'med-submit' }, S.today.addMed);
  const form = h('form', { class: 'form', id: 'med-form' },
    field(S.today.medName, name), field(S.today.dose, dose), field(S.today.frequency, freq), err, btn);
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    run(btn, err, '', async () => {
      const today = rfc3339Local(new Date()).slice(0, 10);
      await log({ log: 'med', name: name.value, dose: dose.value || undefined, frequency: freq.value || undefined, start: today });
      toast(S.today.medAdded(name.value.trim()));
      form.reset();
      refresh();
    });
  });
  return h('details', { class: 'add-med' }, h('summary', null, S.today.addMedTitle), form);
}

function symptomCard(refresh) {
  const name = input({ id: 'symptom-name', required: true, list: 'symptom-names', autocapitalize: 'sentences' });
  const names = h('datalist', { id: 'symptom-names' });
  const sev = input({ id: 'symptom-severity', type: 'range', min: 0, max: 10, step: 1, value: 5 });
  const out = h('output', { for: 'symptom-severity', id: 'symptom-severity-text' });
  const show = () => {
    out.textContent = S.today.severityValue(Number(sev.value), severityWord(sev.value));
  };
  sev.addEventListener('input', show);
  show();
  const note = h('textarea', { id: 'symptom-note', rows: 2 });
  const when = whenField('symptom');
  const err = errorLine('symptom-error');
  const btn = h('button', { type: 'submit', class: 'primary', id: 'symptom-submit' }, S.today.saveSymptom);
  const form = h('form', { class: 'form', id: 'symptom-form' },
    field(S.today.symptomName, name), names,
    h('div', { class: 'field' }, h('label', { for: sev.id }, S.today.severity), h('div', { class: 'slider' }, h('span', { 'aria-hidden': 'true' }, '0'), sev, h('span', { 'aria-hidden': 'true' }, '10')), out),
    field(S.today.note, note), when, err, btn);
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    run(btn, err, '', async () => {
      let at;
      try {
        at = when.value();
      } catch (e) {
        if (localError(err, e)) return;
        throw e;
      }
      await log({ log: 'symptom', name: name.value, severity: Number(sev.value), note: note.value || undefined, at });
      toast(S.today.symptomLogged(name.value.trim(), Number(sev.value)));
      name.value = note.value = '';
      sev.value = 5;
      show();
      when.reset();
      refresh();
    });
  });
  request('GET', '/api/v1/records?type=symptom&limit=100').then((l) => {
    const seen = new Set();
    for (const it of l.records) {
      const n = str(it.resource && it.resource.code && it.resource.code.text);
      if (n && !seen.has(n.toLowerCase())) {
        seen.add(n.toLowerCase());
        names.appendChild(h('option', { value: n }));
      }
    }
  }, () => {});
  return card('today-symptom', S.today.symptomTitle, form);
}

function vitalCard(kinds, refresh) {
  const kindSel = select({ id: 'vital-kind' }, kinds.map((k) => [k.kind, (vitalKind(k.kind) || { name: k.kind }).name]));
  const v1 = input({ id: 'vital-value', inputmode: 'decimal', required: true });
  const v2 = input({ id: 'vital-value2', inputmode: 'decimal' });
  const unitSel = select({ id: 'vital-unit' }, []);
  const unitText = h('span', { class: 'unit', id: 'vital-unit-text' });
  const label1 = h('label', { for: v1.id });
  const bpPart = h('span', { class: 'bp-part' }, h('span', { class: 'slash', 'aria-hidden': 'true' }, '/'), v2);
  const when = whenField('vital');
  const err = errorLine('vital-error');
  const btn = h('button', { type: 'submit', class: 'primary', id: 'vital-submit' }, S.today.saveVital);
  const kind = () => kinds.find((k) => k.kind === kindSel.value) || kinds[0];
  const update = () => {
    const k = kind();
    const bp = k.kind === 'bp';
    label1.textContent = bp ? S.today.bpValue : S.today.value;
    bpPart.hidden = !bp;
    v2.required = bp;
    v2.setAttribute('aria-label', S.today.diastolic);
    unitSel.replaceChildren(...k.units.map((u, i) => h('option', { value: String(i) }, u.display)));
    const saved = localStorage.getItem(UNIT_KEY + k.kind);
    const idx = k.units.findIndex((u) => u.ucum === saved);
    unitSel.value = String(idx >= 0 ? idx : 0);
    unitSel.hidden = k.units.length < 2;
    unitText.textContent = k.units.length < 2 ? k.units[0].display : '';
  };
  kindSel.addEventListener('change', update);
  unitSel.addEventListener('change', () => {
    const u = kind().units[Number(unitSel.value)];
    if (u) localStorage.setItem(UNIT_KEY + kind().kind, u.ucum);
  });
  update();
  const form = h('form', { class: 'form', id: 'vital-form' },
    field(S.today.vitalKind, kindSel),
    h('div', { class: 'field' }, label1, h('div', { class: 'value-row' }, v1, bpPart, unitSel, unitText)),
    when, err, btn);
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    run(btn, err, '', async () => {
      let at;
      try {
        at = when.value();
      } catch (e) {
        if (localError(err, e)) return;
        throw e;
      }
      const k = kind();
      const rec = await log({ log: 'vital', kind: k.kind, value: vitalValue(k.kind, k.units[Number(unitSel.value)], v1.value, v2.value), at });
      toast(S.today.vitalLogged(rec.display || ''));
      v1.value = v2.value = '';
      when.reset();
      refresh();
    });
  });
  return card('today-vital', S.today.vitalTitle, form);
}

function noteCard(refresh) {
  const text = h('textarea', { id: 'note-text', rows: 3, required: true });
  const err = errorLine('note-error');
  const btn = h('button', { type: 'submit', class: 'primary', id: 'note-submit' }, S.today.saveNote);
  const form = h('form', { class: 'form', id: 'note-form' }, field(S.today.noteText, text), err, btn);
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    run(btn, err, '', async () => {
      await log({ log: 'note', text: text.value, at: rfc3339Local(new Date()) });
      toast(S.today.noteLogged);
      text.value = '';
      refresh();
    });
  });
  return card('today-note', S.today.noteTitle, form);
}

// loggedList shows today's entries, newest first.
function loggedList(items) {
  if (!items.length) return h('p', { class: 'empty' }, S.today.nothingYet);
  const off = -new Date().getTimezoneOffset();
  return h('ul', { class: 'list', id: 'logged-list' }, items.map((it) => h('li', null,
    h('a', { href: '#record/' + encodeURIComponent(it.id), class: 'row-link' },
      h('span', { class: 'time' }, clockAsWritten(it.date, off)),
      h('span', { class: 'what' }, it.display),
      badge(negationText(it.negation), 'neg')))));
}

export async function showToday() {
  const medList = h('ul', { class: 'list meds', id: 'med-list' }, h('li', { class: 'muted' }, S.loading));
  const medErr = errorLine('meds-error');
  const logged = h('div', { id: 'logged' }, h('p', { class: 'muted' }, S.loading));

  const refresh = async () => {
    try {
      const [meds, today] = await Promise.all([
        request('GET', '/api/v1/records?type=medication&limit=1000'),
        request('GET', '/api/v1/records?since=' + encodeURIComponent(startOfToday(new Date())) + '&limit=200'),
      ]);
      medErr.clear();
      const last = {};
      for (const it of today.records) {
        if (it.type !== 'dose' || it.negation) continue;
        const n = str(it.resource && it.resource.medicationCodeableConcept && it.resource.medicationCodeableConcept.text).toLowerCase();
        if (n && !last[n]) last[n] = clockAsWritten(it.date, -new Date().getTimezoneOffset());
      }
      const active = activeMedications(meds.records, new Date());
      medList.replaceChildren(...(active.length ? active.map((m) => medRow(m, last[m.name.toLowerCase()], refresh))
        : [h('li', { class: 'empty' }, S.today.noMeds)]));
      logged.replaceChildren(loggedList(today.records.filter((it) => it.type !== 'patient')));
    } catch (e) {
      medList.replaceChildren();
      logged.replaceChildren();
      medErr.show(e instanceof ApiError && e.status === 0 ? S.err.offlineLoad : errorText(e));
    }
  };

  let kinds = [];
  try {
    kinds = (await request('GET', '/app/vitals.json', { auth: false })).kinds;
  } catch (e) {
    kinds = [];
  }
  screen('today', S.today.title,
    card('today-meds', S.today.medsTitle, medList, medErr, addMedForm(refresh)),
    symptomCard(refresh),
    kinds.length ? vitalCard(kinds, refresh) : null,
    noteCard(refresh),
    card('today-logged', S.today.loggedTitle, logged));
  await refresh();
}
