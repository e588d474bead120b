// Signing in: with a passkey (the everyday way on a phone), with the
// username and passphrase, a new account, and the recovery code flow. And
// the sheet that asks for a sign-in again when a session has ended,
// on top of whatever screen the patient was using.

import { S } from './strings.mjs';
import { request, setToken, errorText, sessionAccount, sameAccount } from './api.mjs';
import * as passkey from './passkey.mjs';
import { h, screen, card, field, input, button, errorLine, run, toast } from './ui.mjs';

const USER_KEY = 'phr.username';

export function rememberedUser() {
  return localStorage.getItem(USER_KEY) || '';
}

function remember(u) {
  if (u) localStorage.setItem(USER_KEY, u.trim().toLowerCase());
}

// PasskeyError is a passkey ceremony the browser ended (cancelled, timed
// out, not allowed here).
class PasskeyError extends Error {}

// passkeyText says why the browser's passkey prompt failed.
export function passkeyText(name) {
  return S.passkey.browser[name] || S.passkey.browser.other;
}

async function browserPasskey(fn) {
  try {
    return await fn();
  } catch (e) {
    throw new PasskeyError(passkeyText(e && e.name));
  }
}

// signInWithPasskey runs a discoverable passkey sign-in.
export async function signInWithPasskey() {
  const begin = await request('POST', '/api/v1/passkeys/login/begin', { auth: false, body: {} });
  const cred = await browserPasskey(() => passkey.get(begin.options));
  const s = await request('POST', '/api/v1/passkeys/login/finish', { auth: false, body: { ceremony: begin.ceremony, credential: cred } });
  setToken(s.token, sessionStorage, s.account);
}

async function signInWithPassphrase(username, passphrase) {
  const s = await request('POST', '/api/v1/sessions', { auth: false, body: { username, passphrase } });
  setToken(s.token, sessionStorage, s.account);
  remember(username);
}

function failText(e, context) {
  return e instanceof PasskeyError ? e.message : errorText(e, context);
}

// passkeyBlock is the passkey button, or why passkeys do not work here.
function passkeyBlock(done) {
  if (!passkey.supported(window)) return h('p', { class: 'hint', id: 'passkey-unsupported' }, S.passkey.unsupported);
  const elsewhere = passkey.passkeyOrigin(location);
  if (elsewhere) {
    return h('p', { class: 'hint', id: 'passkey-elsewhere' }, S.passkey.elsewhere, ' ', h('a', { href: elsewhere }, elsewhere));
  }
  const err = errorLine('passkey-error');
  const btn = button(S.signin.withPasskey, { class: 'primary big', id: 'passkey-signin' });
  btn.addEventListener('click', () => run(btn, null, 'passkey', async () => {
    try {
      await signInWithPasskey();
      done();
    } catch (e) {
      err.show(failText(e, 'passkey'));
    }
  }));
  return h('div', { class: 'passkey-block' }, btn, err);
}

// passphraseForm signs in with the username and passphrase.
function passphraseForm(done, idPrefix) {
  const user = input({ id: idPrefix + 'username', autocomplete: 'username', autocapitalize: 'none', spellcheck: 'false', required: true, value: rememberedUser() });
  const pass = input({ id: idPrefix + 'passphrase', type: 'password', autocomplete: 'current-password', required: true });
  const err = errorLine(idPrefix + 'error');
  const btn = h('button', { type: 'submit', class: 'primary', id: idPrefix + 'submit' }, S.signin.submit);
  const form = h('form', { class: 'form', id: idPrefix + 'form' },
    field(S.signin.username, user), field(S.signin.passphrase, pass), err, btn);
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    run(btn, err, 'login', async () => {
      await signInWithPassphrase(user.value, pass.value);
      pass.value = '';
      done();
    });
  });
  return form;
}

export function showSignIn(done) {
  screen('signin', S.signin.title,
    card('signin-passkey', null, h('p', { class: 'lead' }, S.signin.lead), passkeyBlock(done)),
    card('signin-passphrase', S.signin.orPassphrase, passphraseForm(done, 'login-')),
    h('p', { class: 'links' },
      h('a', { href: '#create', id: 'to-create' }, S.signin.toCreate),
      h('a', { href: '#recover', id: 'to-recover' }, S.signin.toRecover)));
}

// showCode shows a recovery code once, then signs in.
function showCode(title, code, next) {
  const btn = button(S.recovery.saved, { class: 'primary', id: 'code-saved' });
  const err = errorLine('code-error');
  const copy = button(S.copy, { id: 'code-copy' });
  copy.addEventListener('click', () => navigator.clipboard && navigator.clipboard.writeText(code).then(() => {
    copy.textContent = S.copied;
  }, () => {}));
  btn.addEventListener('click', () => run(btn, err, 'login', next));
  screen('recovery-code', title,
    card('recovery-code', null,
      h('p', null, S.recovery.explain),
      h('p', { class: 'code', id: 'recovery-code-value' }, code),
      err, h('div', { class: 'actions' }, copy, btn)));
}

function newPassphraseFields(prefix) {
  const p1 = input({ id: prefix + 'new', type: 'password', autocomplete: 'new-password', required: true, minlength: 10 });
  const p2 = input({ id: prefix + 'again', type: 'password', autocomplete: 'new-password', required: true });
  return { p1, p2, nodes: [field(S.create.passphrase, p1, S.create.passphraseHint), field(S.create.again, p2)] };
}

export function showCreate(done) {
  const user = input({ id: 'create-username', autocomplete: 'username', autocapitalize: 'none', spellcheck: 'false', required: true });
  const { p1, p2, nodes } = newPassphraseFields('create-');
  const err = errorLine('create-error');
  const btn = h('button', { type: 'submit', class: 'primary', id: 'create-submit' }, S.create.submit);
  const form = h('form', { class: 'form', id: 'create-form' }, field(S.signin.username, user, S.create.usernameHint), nodes, err, btn);
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    if (p1.value !== p2.value) return err.show(S.create.mismatch);
    return run(btn, err, 'register', async () => {
      const res = await request('POST', '/api/v1/accounts', { auth: false, body: { username: user.value, passphrase: p1.value } });
      remember(res.username);
      showCode(S.create.done, res.recovery_code, async () => {
        await signInWithPassphrase(res.username, p1.value);
        p1.value = p2.value = '';
        done();
      });
    });
  });
  screen('create', S.create.title, card('create', null, h('p', null, S.create.lead), form),
    h('p', { class: 'links' }, h('a', { href: '#signin' }, S.backToSignIn)));
}

export function showRecover(done) {
  const user = input({ id: 'recover-username', autocomplete: 'username', autocapitalize: 'none', spellcheck: 'false', required: true, value: rememberedUser() });
  const code = input({ id: 'recover-code', autocomplete: 'off', autocapitalize: 'characters', spellcheck: 'false', required: true });
  const { p1, p2, nodes } = newPassphraseFields('recover-');
  const err = errorLine('recover-error');
  const btn = h('button', { type: 'submit', class: 'primary', id: 'recover-submit' }, S.recover.submit);
  const form = h('form', { class: 'form', id: 'recover-form' },
    field(S.signin.username, user), field(S.recover.code, code, S.recover.codeHint), nodes, err, btn);
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    if (p1.value !== p2.value) return err.show(S.create.mismatch);
    return run(btn, err, 'recover', async () => {
      const res = await request('POST', '/api/v1/accounts/recover', { auth: false, body: { username: user.value, recovery_code: code.value, new_passphrase: p1.value } });
      remember(user.value);
      showCode(S.recover.done, res.recovery_code, async () => {
        await signInWithPassphrase(user.value, p1.value);
        p1.value = p2.value = '';
        done();
      });
    });
  });
  screen('recover', S.recover.title, card('recover', null, h('p', null, S.recover.lead), form),
    h('p', { class: 'links' }, h('a', { href: '#signin' }, S.backToSignIn)));
}

// reauthSheet asks for a sign-in over the current screen, which stays as
// it is. It resolves true once signed in, false if the patient closes it.
let pending = null;

export function reauthSheet() {
  if (pending) return pending;
  // The account whose session ended: a sign-in to another account (a
  // phone that holds passkeys of two) must not receive what was typed for
  // this one. It starts afresh on Today instead.
  const before = sessionAccount();
  pending = new Promise((resolve) => {
    const dlg = h('dialog', { class: 'sheet', id: 'reauth', 'aria-labelledby': 'reauth-title' });
    const finish = (ok) => {
      dlg.close();
      dlg.remove();
      pending = null;
      if (ok && !sameAccount(before, sessionAccount())) {
        resolve(false);
        location.hash = '#today';
        window.dispatchEvent(new HashChangeEvent('hashchange')); // redrawn even when Today was showing
        toast(S.reauth.otherAccount);
        return;
      }
      resolve(ok);
    };
    const close = button(S.reauth.cancel, { id: 'reauth-cancel' });
    close.addEventListener('click', () => finish(false));
    dlg.addEventListener('cancel', (ev) => {
      ev.preventDefault();
      finish(false);
    });
    dlg.append(
      h('h2', { id: 'reauth-title' }, S.reauth.title),
      h('p', null, S.reauth.text),
      passkeyBlock(() => finish(true)),
      passphraseForm(() => finish(true), 'reauth-'),
      close);
    document.body.appendChild(dlg);
    dlg.showModal();
  });
  return pending;
}
