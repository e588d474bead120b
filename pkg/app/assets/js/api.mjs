// phrd's API, as the app uses it: one request function, the session
// token, and every error the server can answer in words (errorText).
// A request that finds its session ended asks the page to sign in again
// (onSessionEnded) and is then sent once more, so that a form's content
// survives an expired session.

import { S } from './strings.mjs';

export class ApiError extends Error {
  // status 0 means no answer (offline, the server down).
  constructor(status, code, message, retryAfter, body) {
    super(message || code || 'HTTP ' + status);
    this.status = status;
    this.code = code || '';
    this.serverMessage = message || '';
    this.retryAfter = retryAfter || 0;
    this.body = body;
  }
}

const TOKEN_KEY = 'phr.session';
const ACCOUNT_KEY = 'phr.account';

// SESSION_ENDED marks a 401 that ended the session (not a wrong secret).
export const SESSION_ENDED = 'session_ended';

// The token lives for this tab (the caller passes the tab's storage): closing the app signs
// out, and a passkey signs in again in a tap.
let token = null;
let account = null;
let reauth = null;

export function loadToken(store) {
  token = store.getItem(TOKEN_KEY);
  account = store.getItem(ACCOUNT_KEY);
  return token;
}

// setToken keeps the session's token and the handle of its account (the
// server's Session.account: opaque, the same for every session of one
// account).
export function setToken(t, store, acct) {
  token = t || null;
  account = (token && acct) || null;
  if (!store) return;
  if (token) store.setItem(TOKEN_KEY, token);
  else store.removeItem(TOKEN_KEY);
  if (account) store.setItem(ACCOUNT_KEY, account);
  else store.removeItem(ACCOUNT_KEY);
}

// sessionAccount is the handle of the signed-in account, or null.
export function sessionAccount() {
  return account;
}

// sameAccount reports whether a sign-in again is to the account whose
// session ended (before: its handle; null if the app never learnt it, a
// session from before phrd gave handles).
export function sameAccount(before, after) {
  return !before || before === after;
}

export function hasToken() {
  return !!token;
}

// onSessionEnded sets what happens when the server no longer knows the
// session: fn shows the sign-in sheet and resolves true once signed in.
export function onSessionEnded(fn) {
  reauth = fn;
}

// request sends one API request. opts: body (JSON), form (FormData),
// headers, auth (default true: send the token), raw (return the
// Response), context (for errorText). It returns the decoded JSON (null
// for 204) and throws an ApiError.
export async function request(method, path, opts = {}) {
  const headers = Object.assign({}, opts.headers || {});
  let body;
  if (opts.form) body = opts.form;
  else if (opts.body !== undefined) {
    headers['Content-Type'] = 'application/json';
    body = JSON.stringify(opts.body);
  }
  const auth = opts.auth !== false;
  if (auth && token) headers.Authorization = 'Bearer ' + token;
  let res;
  try {
    res = await fetch(path, { method, headers, body, credentials: 'omit', cache: 'no-store', referrerPolicy: 'no-referrer' });
  } catch (e) {
    throw new ApiError(0, 'network', '');
  }
  // A 401 is an ended session, or a wrong passphrase on a route that
  // checks one (the session is then still good): ask the server which.
  if (res.status === 401 && auth && reauth && !opts.retried && !(await sessionAlive())) {
    if (await reauth()) return request(method, path, Object.assign({}, opts, { retried: true }));
    throw new ApiError(401, SESSION_ENDED, '');
  }
  if (!res.ok && res.status !== 304) {
    let data = null;
    try {
      data = await res.json();
    } catch (e) {
      data = null;
    }
    const err = data && data.error ? data.error : {};
    const retry = Number(res.headers.get('Retry-After')) || 0;
    throw new ApiError(res.status, err.code || '', err.message || '', retry, data);
  }
  if (opts.raw) return res;
  if (res.status === 204 || res.status === 304) return null;
  const ct = res.headers.get('Content-Type') || '';
  return ct.includes('json') ? res.json() : res.text();
}

async function sessionAlive() {
  if (!token) return false;
  try {
    const res = await fetch('/api/v1/sessions/current', { headers: { Authorization: 'Bearer ' + token }, credentials: 'omit', cache: 'no-store', referrerPolicy: 'no-referrer' });
    return res.ok;
  } catch (e) {
    return false;
  }
}

// waitText says how long to wait, from a Retry-After in seconds.
export function waitText(seconds) {
  const s = Math.max(1, Math.ceil(seconds || 0));
  if (s < 60) return S.err.seconds(s);
  return S.err.minutes(Math.ceil(s / 60));
}

// errorText is what the app says about a failed request. context names
// what was being done: 'login', 'passkey', 'register', 'import',
// 'share', 'passphrase' (a route that checked the passphrase), or
// nothing. Everything typed stays where it was; the words say what
// happened and what to do.
export function errorText(e, context) {
  if (!(e instanceof ApiError)) return S.err.unexpected;
  const wait = e.retryAfter ? waitText(e.retryAfter) : '';
  switch (e.status) {
    case 0:
      return S.err.network;
    case 400:
      return S.err.badInput(e.serverMessage);
    case 401:
      if (e.code === SESSION_ENDED) return S.err.sessionEnded;
      if (context === 'login') return S.err.wrongLogin;
      if (context === 'passkey') return S.err.passkeyRefused;
      if (context === 'passphrase') return S.err.wrongPassphrase;
      if (context === 'recover') return S.err.wrongRecovery;
      return S.err.sessionEnded;
    case 403:
      return context === 'register' ? S.err.registrationClosed : S.err.forbidden;
    case 404:
      return S.err.notFound;
    case 408:
      return S.err.timeout;
    case 409:
      if (e.code === 'patient_mismatch') return S.err.patientMismatch(patientMismatchReason(e));
      if (context === 'register') return S.err.usernameTaken;
      return S.err.conflict(e.serverMessage);
    case 410:
      return S.err.gone;
    case 412:
      return S.err.changedElsewhere;
    case 413:
      return S.err.tooLarge;
    case 415:
      return S.err.unexpected;
    case 422:
      return S.err.notImported(importReason(e));
    case 429:
      return S.err.lockedOut(wait || waitText(60));
    case 503:
      if (context === 'share' || context === 'passkey' || context === 'register-passkey') {
        if (/not set up|passkeys are off/.test(e.serverMessage)) return S.err.serverSetup(e.serverMessage);
      }
      return S.err.busy(wait || waitText(5));
    default:
      return e.status >= 500 ? S.err.server : S.err.unexpected;
  }
}

// patientMismatchReason is the server's words on which facts differ
// (never their values), from an import answer.
export function patientMismatchReason(e) {
  const b = e.body || {};
  const files = Array.isArray(b.files) ? b.files : [];
  let msg = '';
  for (const f of files) if (f && typeof f.error === 'string' && f.error) msg = msg || f.error;
  msg = msg || (b.error && b.error.message) || e.serverMessage || '';
  // "FILE: the file is about another person: its patient's birth date
  // differs from yours; nothing was imported" → the facts that differ.
  const m = /another person: (.*?)(?:; nothing was imported)?\.?$/.exec(msg);
  return m ? m[1] : '';
}

function importReason(e) {
  const b = e.body || {};
  const files = Array.isArray(b.files) ? b.files : [];
  for (const f of files) if (f && typeof f.error === 'string' && f.error) return f.error;
  return (b.error && b.error.message) || e.serverMessage || '';
}
