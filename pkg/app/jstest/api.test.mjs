// The server's errors in words: each status (and the context of the
// request) has its sentence, none quotes more than the server said.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ApiError, errorText, waitText, SESSION_ENDED, setToken, sessionAccount, sameAccount } from '../assets/js/api.mjs';
import { S } from '../assets/js/strings.mjs';

test('errors in words', () => {
  const cases = [
    [new ApiError(0, 'network'), '', S.err.network],
    [new ApiError(401, 'unauthorized', 'x'), 'login', S.err.wrongLogin],
    [new ApiError(401, 'unauthorized', 'x'), 'passkey', S.err.passkeyRefused],
    [new ApiError(401, 'unauthorized', 'x'), 'passphrase', S.err.wrongPassphrase],
    [new ApiError(401, 'unauthorized', 'x'), 'recover', S.err.wrongRecovery],
    [new ApiError(401, 'unauthorized', 'x'), '', S.err.sessionEnded],
    // A session found ended (not a wrong passphrase) on a route that asks for one.
    [new ApiError(401, SESSION_ENDED, ''), 'passphrase', S.err.sessionEnded],
    [new ApiError(403, 'forbidden', 'registration is closed'), 'register', S.err.registrationClosed],
    [new ApiError(409, 'conflict', 'that username is taken'), 'register', S.err.usernameTaken],
    [new ApiError(412, 'precondition_failed', 'x'), '', S.err.changedElsewhere],
    [new ApiError(429, 'rate_limited', 'x', 42), 'login', S.err.lockedOut('42 seconds')],
    [new ApiError(429, 'rate_limited', 'x', 0), 'login', S.err.lockedOut('1 minute')],
    [new ApiError(503, 'unavailable', 'the account is busy; try again shortly', 5), '', S.err.busy('5 seconds')],
    [new ApiError(503, 'unavailable', 'sharing is not set up on this server: its public URL (--public-url) must be https', 1), 'share',
      S.err.serverSetup('sharing is not set up on this server: its public URL (--public-url) must be https')],
    [new ApiError(503, 'unavailable', 'passkeys are off on this server: x'), 'passkey', S.err.serverSetup('passkeys are off on this server: x')],
    [new ApiError(400, 'bad_request', 'severity: must be a whole number from 0 to 10'), '', S.err.badInput('severity: must be a whole number from 0 to 10')],
    [new ApiError(500, 'internal', 'Internal error.'), '', S.err.server],
    [new Error('boom'), '', S.err.unexpected],
  ];
  for (const [e, ctx, want] of cases) assert.equal(errorText(e, ctx), want, e.status + ' ' + ctx);
});

test('a patient mismatch names which facts differ, from the import report', () => {
  // As pkg/importers' PatientMismatchError writes it.
  const body = { files: [{ file: 'other.json', error: "other.json: the file is about another person: its patient's birth date and name differ from yours; nothing was imported" }], error: { code: 'patient_mismatch', message: 'x' } };
  const text = errorText(new ApiError(409, 'patient_mismatch', 'x', 0, body), 'import');
  assert.equal(text, S.err.patientMismatch("its patient's birth date and name differ from yours"));
  assert.match(text, /Nothing was imported/);
  assert.doesNotMatch(text, /other\.json/);
  assert.equal(errorText(new ApiError(409, 'patient_mismatch', 'x'), 'import'), S.err.patientMismatch(''));
});

test('an import that failed says why', () => {
  const body = { files: [{ error: 'line 3: not valid JSON' }] };
  assert.equal(errorText(new ApiError(422, 'import_failed', '', 0, body), 'import'), S.err.notImported('line 3: not valid JSON'));
});

test('waits in words', () => {
  assert.equal(waitText(1), '1 second');
  assert.equal(waitText(0.2), '1 second');
  assert.equal(waitText(59), '59 seconds');
  assert.equal(waitText(60), '1 minute');
  assert.equal(waitText(61), '2 minutes');
});

test('a sign-in again to another account is told apart from the one that ended', () => {
  const store = new Map();
  const storage = { getItem: (k) => store.get(k) ?? null, setItem: (k, v) => store.set(k, v), removeItem: (k) => store.delete(k) };
  setToken('token-a', storage, 'acct-a');
  const before = sessionAccount();
  assert.equal(before, 'acct-a');
  assert.equal(store.get('phr.account'), 'acct-a');
  setToken('token-b', storage, 'acct-b');
  assert.equal(sameAccount(before, sessionAccount()), false);
  setToken('token-a2', storage, 'acct-a');
  assert.equal(sameAccount(before, sessionAccount()), true);
  assert.equal(sameAccount(null, 'acct-b'), true, 'a session from before handles: nothing to compare');
  setToken(null, storage);
  assert.equal(sessionAccount(), null);
  assert.equal(store.has('phr.account'), false);
});
