// Account: where the account is signed in (and ending those sessions),
// passkeys and device credentials, a new recovery code, the backup
// download and an export of every record as FHIR.

import { S } from './strings.mjs';
import { request, errorText, setToken } from './api.mjs';
import * as passkey from './passkey.mjs';
import { rememberedUser, passkeyText } from './signin.mjs';
import { h, screen, card, field, input, button, errorLine, run, toast, badge, download } from './ui.mjs';
import { fmtInstant } from '/view/js/dates.mjs';

function when(t) {
  return t ? fmtInstant(new Date(t)) : '';
}

function sessionsCard() {
  const list = h('ul', { class: 'list', id: 'session-list' }, h('li', { class: 'muted' }, S.loading));
  const err = errorLine('sessions-error');
  const reload = async () => {
    const res = await request('GET', '/api/v1/sessions');
    list.replaceChildren(...res.sessions.map((s) => {
      const end = button(s.current ? S.account.signOut : S.account.endSession, { class: s.current ? 'secondary' : 'danger', 'data-session': s.id });
      end.addEventListener('click', () => run(end, err, '', async () => {
        await request('DELETE', s.current ? '/api/v1/sessions/current' : '/api/v1/sessions/' + encodeURIComponent(s.id));
        if (s.current) {
          setToken(null, sessionStorage);
          location.hash = '#signin';
          return;
        }
        toast(S.account.sessionEnded);
        reload();
      }));
      return h('li', { class: 'session', 'data-method': s.method },
        h('div', null, h('strong', null, S.account.method[s.method] || s.method), s.label ? ' — ' + s.label : '', ' ', s.current ? badge(S.account.thisDevice, 'ok') : null,
          h('div', { class: 'sub' }, S.account.sessionTimes(when(s.created_at), when(s.last_used_at)))),
        end);
    }));
  };
  reload().catch((e) => err.show(errorText(e)));
  return card('account-sessions', S.account.sessionsTitle, err, list);
}

function keysCard() {
  const list = h('ul', { class: 'list', id: 'passkey-list' }, h('li', { class: 'muted' }, S.loading));
  const devices = h('ul', { class: 'list', id: 'device-list' });
  const err = errorLine('keys-error');
  const reload = async () => {
    const [pk, dev] = await Promise.all([request('GET', '/api/v1/passkeys'), request('GET', '/api/v1/devices')]);
    const isPasskey = new Set(pk.passkeys.map((p) => p.id));
    const row = (item, kind) => {
      const rm = button(S.account.remove, { class: 'danger', 'data-remove': item.id });
      rm.addEventListener('click', () => run(rm, err, '', async () => {
        await request('DELETE', '/api/v1/devices/' + encodeURIComponent(item.id));
        toast(S.account.removed(item.label));
        reload();
      }));
      return h('li', { 'data-key': item.id },
        h('div', null, h('strong', null, item.label), h('div', { class: 'sub' },
          kind === 'passkey' ? S.account.passkeyTimes(when(item.created), when(item.last_used)) : S.account.added(when(item.created)))),
        rm);
    };
    list.replaceChildren(...(pk.passkeys.length ? pk.passkeys.map((p) => row(p, 'passkey')) : [h('li', { class: 'empty' }, S.account.noPasskeys)]));
    const others = dev.devices.filter((d) => !isPasskey.has(d.id));
    devices.replaceChildren(...others.map((d) => row(d, 'device')));
    devices.hidden = !others.length;
  };
  reload().catch((e) => err.show(errorText(e)));

  // Adding a passkey needs the passphrase (a stolen session must not add
  // a way in); the passphrase is checked before the phone makes one.
  const label = input({ id: 'passkey-label', maxlength: 100, value: S.account.defaultPasskeyLabel });
  const pass = input({ id: 'passkey-passphrase', type: 'password', autocomplete: 'current-password', required: true });
  const addErr = errorLine('passkey-add-error');
  const btn = h('button', { type: 'submit', class: 'primary', id: 'passkey-add' }, S.account.addPasskey);
  const form = h('form', { class: 'form', id: 'passkey-form' }, field(S.account.passkeyLabel, label), field(S.signin.passphrase, pass, S.account.passphraseWhy), addErr, btn);
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    run(btn, addErr, 'passphrase', async () => {
      const begin = await request('POST', '/api/v1/passkeys/register/begin', { body: { passphrase: pass.value, username: rememberedUser(), label: label.value } });
      let cred;
      try {
        cred = await passkey.create(begin.options);
      } catch (e) {
        return addErr.show(passkeyText(e && e.name));
      }
      await request('POST', '/api/v1/passkeys/register/finish', { body: { ceremony: begin.ceremony, credential: cred } });
      pass.value = '';
      toast(S.account.passkeyAdded);
      reload();
      return undefined;
    });
  });
  let add;
  if (!passkey.supported(window)) add = h('p', { class: 'hint' }, S.passkey.unsupported);
  else if (passkey.passkeyOrigin(location)) add = h('p', { class: 'hint' }, S.passkey.elsewhere, ' ', h('a', { href: passkey.passkeyOrigin(location) }, passkey.passkeyOrigin(location)));
  else if (!rememberedUser()) add = h('p', { class: 'hint' }, S.account.needUsername);
  else add = h('details', { class: 'add', id: 'passkey-details' }, h('summary', null, S.account.addPasskeyTitle), form);
  return card('account-keys', S.account.keysTitle, h('p', { class: 'hint' }, S.account.keysLead), err, list, add,
    h('h3', { class: 'minor' }, S.account.devicesTitle), devices);
}

// recoveryCard makes a new recovery code (the old one stops working).
function recoveryCard() {
  const pass = input({ id: 'recovery-passphrase', type: 'password', autocomplete: 'current-password', required: true });
  const err = errorLine('recovery-error');
  const out = h('div', { id: 'recovery-new' });
  const btn = h('button', { type: 'submit', class: 'secondary', id: 'recovery-submit' }, S.account.newRecovery);
  const form = h('form', { class: 'form' }, h('p', { class: 'hint' }, S.account.recoveryLead), field(S.signin.passphrase, pass), err, btn, out);
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    run(btn, err, 'passphrase', async () => {
      const res = await request('POST', '/api/v1/keys/recovery', { body: { passphrase: pass.value } });
      pass.value = '';
      out.replaceChildren(h('p', null, S.recovery.explain), h('p', { class: 'code' }, res.recovery_code));
    });
  });
  return h('details', { class: 'card', id: 'account-recovery' }, h('summary', null, S.account.recoveryTitle), form);
}

function today() {
  const d = new Date();
  return d.getFullYear() + '-' + String(d.getMonth() + 1).padStart(2, '0') + '-' + String(d.getDate()).padStart(2, '0');
}

// backupCard downloads an encrypted backup: an age file only the holder
// of the named key (an age public key, age1...) can open.
function backupCard() {
  const rcpt = input({ id: 'backup-recipient', autocapitalize: 'none', spellcheck: 'false', required: true, placeholder: 'age1…' });
  const pass = input({ id: 'backup-passphrase', type: 'password', autocomplete: 'current-password', required: true });
  const err = errorLine('backup-error');
  const btn = h('button', { type: 'submit', class: 'secondary', id: 'backup-submit' }, S.account.backup);
  const form = h('form', { class: 'form', id: 'backup-form' }, h('p', { class: 'hint' }, S.account.backupLead),
    field(S.account.recipient, rcpt, S.account.recipientHint), field(S.signin.passphrase, pass), err, btn);
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    run(btn, err, 'passphrase', async () => {
      const res = await request('POST', '/api/v1/backup', { body: { passphrase: pass.value, recipients: rcpt.value.split(/[\s,]+/).filter(Boolean) }, raw: true });
      const blob = await res.blob();
      pass.value = '';
      download(blob, 'phr-backup-' + today() + '.age');
      toast(S.account.backupDone);
    });
  });
  return card('account-backup', S.account.backupTitle, form);
}

// exportCard saves every record as one FHIR Bundle, built in the page
// from the listing: nothing but the usual API requests.
function exportCard() {
  const err = errorLine('export-error');
  const btn = button(S.account.exportButton, { class: 'secondary', id: 'export-submit' });
  btn.addEventListener('click', () => run(btn, err, '', async () => {
    const entries = [];
    let cursor = '';
    do {
      const page = await request('GET', '/api/v1/records?limit=1000' + (cursor ? '&cursor=' + encodeURIComponent(cursor) : ''));
      for (const it of page.records) {
        if (it.resource) entries.push({ resource: it.resource });
      }
      cursor = page.next_cursor || '';
    } while (cursor);
    const bundle = { resourceType: 'Bundle', type: 'collection', timestamp: new Date().toISOString(), entry: entries };
    download(new Blob([JSON.stringify(bundle, null, 2)], { type: 'application/fhir+json' }), 'phr-export-' + today() + '.json');
    toast(S.account.exported(entries.length));
  }));
  return card('account-export', S.account.exportTitle, h('p', { class: 'hint' }, S.account.exportLead), err, btn);
}

export async function showAccount() {
  const out = button(S.account.signOut, { class: 'secondary', id: 'signout' });
  const err = errorLine('signout-error');
  out.addEventListener('click', () => run(out, err, '', async () => {
    try {
      await request('DELETE', '/api/v1/sessions/current');
    } finally {
      setToken(null, sessionStorage);
      location.hash = '#signin';
    }
  }));
  screen('account', S.account.title, sessionsCard(), keysCard(), backupCard(), exportCard(), recoveryCard(),
    h('div', { class: 'actions end' }, out), err);
}
