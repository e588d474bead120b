// The app's building blocks on top of the viewer's element builder:
// screens, cards, form fields, error lines, busy buttons, the toast.
// Everything from the server or the record goes in as text.

import { h } from '/view/js/dom.mjs';
import { S } from './strings.mjs';
import { errorText } from './api.mjs';

export { h };

const app = () => document.getElementById('app');

// screen replaces the page's content: name goes to data-screen (tests and
// styles read it), title to the top bar and the document's title.
export function screen(name, title, ...nodes) {
  const main = app();
  main.setAttribute('data-screen', name);
  main.replaceChildren(...nodes.flat(Infinity).filter(Boolean));
  document.getElementById('title').textContent = title;
  document.title = title + ' — phr';
  for (const a of document.querySelectorAll('#tabs a')) {
    if (name.startsWith(a.dataset.tab)) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  window.scrollTo(0, 0);
}

export function card(id, title, ...body) {
  return h('section', { class: 'card', id }, title ? h('h2', null, title) : null, body);
}

let uid = 0;

// field is a labelled input: label above, hint below.
export function field(label, input, hint) {
  if (!input.id) input.id = 'f' + ++uid;
  return h('div', { class: 'field' },
    h('label', { for: input.id }, label),
    input,
    hint ? h('p', { class: 'hint' }, hint) : null);
}

export function input(attrs) {
  return h('input', Object.assign({ autocomplete: 'off' }, attrs));
}

export function select(attrs, options, value) {
  const s = h('select', attrs, options.map(([v, label]) => h('option', { value: v }, label)));
  if (value !== undefined) s.value = value;
  return s;
}

export function button(text, attrs) {
  return h('button', Object.assign({ type: 'button' }, attrs), text);
}

// errorLine is a form's line for what went wrong: show(text) and clear().
export function errorLine(id) {
  const p = h('p', { class: 'form-error', role: 'alert', id });
  p.hidden = true;
  p.show = (text) => {
    p.textContent = text;
    p.hidden = false;
  };
  p.clear = () => {
    p.textContent = '';
    p.hidden = true;
  };
  return p;
}

// run does one action of a form: the button is busy while it runs, and a
// failure is said in words on the error line. What the form holds is
// never touched here: on an error, everything typed is still there.
export async function run(btn, errLine, context, fn) {
  if (btn.disabled) return undefined;
  const label = btn.textContent;
  btn.disabled = true;
  btn.setAttribute('aria-busy', 'true');
  btn.textContent = S.working;
  if (errLine) errLine.clear();
  try {
    return await fn();
  } catch (e) {
    if (errLine) errLine.show(errorText(e, context));
    else toast(errorText(e, context), true);
    return undefined;
  } finally {
    btn.disabled = false;
    btn.removeAttribute('aria-busy');
    btn.textContent = label;
  }
}

let toastTimer = 0;

export function toast(text, isError) {
  const t = document.getElementById('toast');
  t.textContent = text;
  t.classList.toggle('error', !!isError);
  t.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => {
    t.hidden = true;
  }, isError ? 8000 : 4000);
}

// confirmTap turns a destructive button into a two-step one: the first
// tap arms it ("Tap again to delete"), the second within 4 s acts.
export function confirmTap(btn, armedText, act) {
  const label = btn.textContent;
  let armed = 0;
  btn.addEventListener('click', () => {
    if (armed) {
      clearTimeout(armed);
      armed = 0;
      btn.textContent = label;
      btn.classList.remove('armed');
      act();
      return;
    }
    btn.textContent = armedText;
    btn.classList.add('armed');
    armed = setTimeout(() => {
      armed = 0;
      btn.textContent = label;
      btn.classList.remove('armed');
    }, 4000);
  });
}

// download saves bytes as a file, made in the page (a blob: URL):
// nothing is sent anywhere.
export function download(blob, name) {
  const url = URL.createObjectURL(blob);
  const a = h('a', { href: url, download: name, hidden: true });
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60000);
}

export function dl(rows) {
  return h('dl', { class: 'facts' }, rows.filter((r) => r && r.value).map((r) => [h('dt', null, r.label), h('dd', { class: r.cls || null }, r.value)]));
}

export function badge(text, cls) {
  return text ? h('span', { class: 'badge ' + (cls || '') }, text) : null;
}
