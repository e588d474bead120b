// A new share's request from the form: presets, expiry, passcode, label.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { shareRequest, newPasscode, shareStatus, outcomeText, PRESETS } from '../assets/js/sharing.mjs';
import { S } from '../assets/js/strings.mjs';

const now = new Date(Date.UTC(2026, 10, 24, 10, 0, 0));

test('presets', () => {
  assert.deepEqual(shareRequest({ preset: 'essentials', hours: 24 }, now),
    { select: { types: ['allergy', 'medication', 'dose', 'condition'] }, expires_at: '2026-11-25T10:00:00.000Z' });
  assert.deepEqual(shareRequest({ preset: 'summary', hours: 1 }, now).select, { summary: true });
  const v = shareRequest({ preset: 'vitals30', hours: 720 }, now);
  assert.deepEqual(v.select.types, ['vital']);
  assert.equal(new Date(v.select.since).getTime(), now.getTime() - 30 * 86400000);
  assert.equal(v.expires_at, '2026-12-24T10:00:00.000Z');
  assert.equal(PRESETS.length, 4);
});

test('custom kinds from a day', () => {
  const c = shareRequest({ preset: 'custom', types: ['lab', 'bogus', 'vital'], since: '2026-01-15', hours: 168 }, now);
  assert.deepEqual(c.select.types, ['lab', 'vital']);
  assert.match(c.select.since, /^2026-01-15T00:00:00[+-]\d{2}:\d{2}$/);
  assert.throws(() => shareRequest({ preset: 'custom', types: [] }, now), { message: S.share.needTypes });
  assert.throws(() => shareRequest({ preset: 'custom', types: ['lab'], since: '15/01/2026' }, now), { message: S.share.badSince });
});

test('expiry, passcode and label', () => {
  assert.equal(shareRequest({ preset: 'summary', hours: 999 }, now).expires_at, '2026-11-25T10:00:00.000Z', 'an unknown expiry is the default day');
  const p = shareRequest({ preset: 'summary', usePasscode: true, passcode: ' 4711 ', label: '  For Dr. Rivera ' }, now);
  assert.equal(p.passcode, '4711');
  assert.equal(p.label, 'For Dr. Rivera');
  assert.equal(shareRequest({ preset: 'summary', usePasscode: false, passcode: '4711' }, now).passcode, undefined);
  assert.throws(() => shareRequest({ preset: 'summary', usePasscode: true, passcode: '12' }, now), { message: S.share.shortPasscode });
  assert.equal(shareRequest({ preset: 'summary', label: 'x'.repeat(100) }, now).label.length, 80);
});

test('passcodes are six digits', () => {
  for (const v of [0, 7, 999999, 1000000, 4294967295]) {
    const code = newPasscode((b) => { b[0] = v; });
    assert.match(code, /^\d{6}$/);
  }
});

test('states and outcomes in words', () => {
  assert.equal(shareStatus({ status: 'revoked' }), 'Revoked');
  assert.equal(outcomeText({ outcome: 'wrong-passcode' }), 'wrong passcode');
  assert.equal(outcomeText({ outcome: 'not-logged', count: 3 }), S.share.notLogged(3));
});
