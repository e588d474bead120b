// phr SMART Health Link viewer: the page's flow. Reads the link from the
// URL fragment (and removes it from the address bar at once), asks who
// is opening it, fetches and decrypts the files, and shows the record.
// docs/viewer.md describes the whole page.

import { S } from './strings.mjs';
import { ViewerError, messageOf } from './errors.mjs';
import { fmtInstant } from './dates.mjs';
import { expired, parseLink, unsupported } from './link.mjs';
import { retrieve } from './net.mjs';
import { decodeFiles, importKey } from './jwe.mjs';
import { expiryText, renderRecord } from './record.mjs';
import { h } from './dom.mjs';

const app = document.getElementById('app');

function show(state, ...nodes) {
  app.setAttribute('data-state', state);
  app.replaceChildren(...nodes);
  window.scrollTo(0, 0);
}

function panel(state, title, ...body) {
  show(state, h('section', { class: 'panel ' + state, id: 'status' },
    h('h1', { id: 'status-title' }, title), body));
}

function pasteForm() {
  const input = h('textarea', { id: 'paste-input', rows: 3, spellcheck: 'false', autocomplete: 'off', 'aria-describedby': 'paste-error' });
  const err = h('p', { id: 'paste-error', class: 'form-error', role: 'alert' });
  err.hidden = true;
  const form = h('form', { id: 'paste-form', class: 'form no-print' },
    h('label', { for: 'paste-input' }, S.linkLabel), input, err,
    h('button', { type: 'submit', id: 'paste-open' }, S.open));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    try {
      start(parseLink(input.value));
    } catch (e) {
      err.textContent = S.pasteError(e instanceof ViewerError ? e.message : '');
      err.hidden = false;
    }
  });
  return form;
}

function showPaste() {
  panel('paste', S.page.paste.title, h('p', null, S.page.paste.text), pasteForm());
}

function showMalformed(reason) {
  panel('malformed', S.page.malformed.title,
    h('p', { id: 'status-text' }, S.page.malformed.text(reason)),
    h('p', null, S.page.malformed.next),
    pasteForm());
}

function showExpired(link) {
  panel('expired', S.page.expired.title,
    h('p', { id: 'status-text' }, S.page.expired.text(fmtInstant(new Date(link.exp * 1000)))),
    link.label ? h('p', { class: 'sub' }, S.page.expired.share(link.label)) : null);
}

// showVersion is the page of a link of a later protocol version: its
// label and the version; nothing is fetched.
function showVersion(link) {
  panel('version', S.page.version.title,
    h('p', { id: 'status-text' }, S.page.version.text(link.v)),
    link.label ? h('p', { class: 'sub' }, S.page.version.share(link.label)) : null);
}

function showUnavailable() {
  panel('unavailable', S.page.unavailable.title, h('p', { id: 'status-text' }, S.page.unavailable.text));
}

function showLocked() {
  panel('locked', S.page.locked.title, h('p', { id: 'status-text' }, S.page.locked.text));
}

function showProblem(state, title, text, retry) {
  const btn = retry ? h('button', { type: 'button', id: 'retry' }, S.tryAgain) : null;
  if (btn) btn.addEventListener('click', retry);
  panel(state, title, h('p', { id: 'status-text' }, text), btn);
}

// showForm asks for the recipient's name and, for P links, the passcode.
function showForm(link, prev) {
  const wantsPasscode = link.flag.includes('P');
  const recipient = h('input', { id: 'recipient', name: 'recipient', type: 'text', required: true, maxlength: 200, autocomplete: 'organization', 'aria-describedby': 'recipient-hint' });
  recipient.value = (prev && prev.recipient) || '';
  const passcode = wantsPasscode ? h('input', { id: 'passcode', name: 'passcode', type: 'password', required: true, autocomplete: 'off', 'aria-describedby': 'passcode-hint' }) : null;
  const err = h('p', { id: 'form-error', class: 'form-error', role: 'alert' });
  err.hidden = true;
  const button = h('button', { type: 'submit', id: 'open' }, S.form.open);
  const form = h('form', { id: 'unlock-form', class: 'form no-print', novalidate: true },
    h('label', { for: 'recipient' }, S.form.recipient),
    recipient,
    h('p', { class: 'hint', id: 'recipient-hint' }, S.form.recipientHint),
    wantsPasscode ? [h('label', { for: 'passcode' }, S.form.passcode), passcode,
      h('p', { class: 'hint', id: 'passcode-hint' }, S.form.passcodeHint)] : null,
    err, button);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const who = recipient.value.trim();
    const code = passcode ? passcode.value : '';
    if (!who) return fail(S.form.needRecipient, recipient);
    if (wantsPasscode && !code) return fail(S.form.needPasscode, passcode);
    err.hidden = true;
    button.disabled = true;
    button.textContent = S.form.opening;
    const outcome = await openRecord(link, who, code);
    button.disabled = false;
    button.textContent = S.form.open;
    if (outcome && outcome.passcode) {
      fail(S.form.wrongPasscode(outcome.remaining), passcode);
      passcode.value = '';
    }
  });
  function fail(text, field) {
    err.textContent = text;
    err.hidden = false;
    if (field) field.focus();
  }
  panel('form', link.label || S.untitledShare,
    h('p', { class: 'eyebrow' }, S.form.eyebrow),
    h('p', { class: 'sub', id: 'form-expiry' }, S.sharedByPatient(expiryText(link)) + '.'),
    form);
  recipient.focus();
}

let wrongPasscodes = 0;

// openRecord fetches, decrypts and renders the record. It returns
// {passcode: true, remaining} when the passcode was wrong and the form
// should stay; every other outcome replaces the page.
async function openRecord(link, recipient, passcode) {
  if (unsupported(link)) {
    showVersion(link);
    return null;
  }
  if (expired(link)) {
    showExpired(link);
    return null;
  }
  let files;
  try {
    files = await retrieve(link, recipient, passcode);
  } catch (e) {
    if (!(e instanceof ViewerError)) {
      showProblem('error', S.page.error.title, S.page.error.unexpected);
      return null;
    }
    switch (e.kind) {
      case 'passcode':
        wrongPasscodes++;
        if (e.remaining === 0) {
          showLocked();
          return null;
        }
        return { passcode: true, remaining: e.remaining };
      case 'unavailable':
        if (wrongPasscodes > 0) showLocked();
        else showUnavailable();
        return null;
      case 'network':
        showProblem('network', S.page.network.title, S.page.network.text, () => retryOpen(link, recipient, passcode));
        return null;
      default:
        showProblem('error', S.page.error.title, e.message, e.retry ? () => retryOpen(link, recipient, passcode) : null);
        return null;
    }
  }
  show('loading', h('p', { class: 'muted', id: 'progress' }, S.decrypting));
  let data;
  try {
    data = await decodeFiles(files, await importKey(link.key));
  } catch (e) {
    showProblem('error', S.page.error.decryptTitle, messageOf(e));
    return null;
  }
  if (!data.index.all.length) {
    const why = data.errors.concat(data.withdrawn ? [S.notice.withdrawn(data.withdrawn)] : []);
    showProblem('error', S.page.error.emptyTitle, why.join(' ') || S.page.error.empty);
    return null;
  }
  const { node, title } = renderRecord(link, recipient, data);
  show('record', node);
  document.title = title;
  return null;
}

async function retryOpen(link, recipient, passcode) {
  show('loading', h('p', { class: 'muted', id: 'progress' }, S.opening));
  const outcome = await openRecord(link, recipient, passcode);
  if (outcome && outcome.passcode) showForm(link, { recipient });
}

function start(link) {
  wrongPasscodes = 0;
  if (unsupported(link)) {
    showVersion(link);
    return;
  }
  if (expired(link)) {
    showExpired(link);
    return;
  }
  showForm(link);
}

// takeFragment reads the link from the address and removes it from the
// address bar and the history entry, so that the key is not left in the
// browser's history, a bookmark or a screenshot of the page.
function takeFragment() {
  const raw = location.hash.replace(/^#/, '');
  if (raw) history.replaceState(history.state, '', location.pathname + location.search);
  try {
    return decodeURIComponent(raw);
  } catch (e) {
    return raw; // not percent-encoded: use as is
  }
}

function main() {
  const frag = takeFragment();
  if (!window.crypto || !crypto.subtle || typeof DecompressionStream === 'undefined') {
    panel('unsupported', S.page.unsupported.title, h('p', { id: 'status-text' }, S.page.unsupported.text));
    return;
  }
  if (!frag) {
    showPaste();
    return;
  }
  let link;
  try {
    link = parseLink(frag);
  } catch (e) {
    showMalformed(e instanceof ViewerError ? e.message : '');
    return;
  }
  start(link);
}

window.addEventListener('hashchange', () => {
  if (location.hash) main();
});
main();
