// Dates as written (docs/viewer.md): the Go test runs this file in
// several time zones (TZ=UTC, America/Los_Angeles, Pacific/Kiritimati);
// the expected text is the same in all of them.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ageOn, dayIndex, fmtDate, fmtDayOf, fmtWallRange, parseDate, sortKey, wallTime } from '../assets/js/dates.mjs';

test('fmtDate shows a value as its source wrote it, in every zone (TZ=' + (process.env.TZ || 'unset') + ')', () => {
  for (const [input, want] of [
    ['2026-06-01', '1 Jun 2026'], // a FHIR date is a day, never a midnight instant
    ['2026-01-01', '1 Jan 2026'],
    ['2026-12-31', '31 Dec 2026'],
    ['2013-08-15T10:30:00', '15 Aug 2013, 10:30'], // zone-less: the wall clock, no zone
    ['2013-08-15T10:30', '15 Aug 2013, 10:30'],
    ['2013-08-15T10:30:00-07:00', '15 Aug 2013, 10:30 UTC-07:00'], // never shifted into the reader's zone
    ['2013-08-15T23:30:00+14:00', '15 Aug 2013, 23:30 UTC+14:00'],
    ['2013-08-15T00:15:00-10:00', '15 Aug 2013, 00:15 UTC-10:00'],
    ['2026-11-18T09:00:00Z', '18 Nov 2026, 09:00 UTC'],
    ['2026-11-18T09:00:00.123Z', '18 Nov 2026, 09:00 UTC'],
    ['2026-11-18T09:00:42+01:00', '18 Nov 2026, 09:00:42 UTC+01:00'],
    ['2019-03', 'Mar 2019'], // month precision
    ['2019', '2019'], // year precision
    ['2026-02-30', '2026-02-30'], // not a day: shown as written
    ['2026-13-01', '2026-13-01'],
    ['last spring', 'last spring'],
    ['', ''],
  ]) {
    assert.equal(fmtDate(input), want, input);
  }
  assert.equal(fmtDate(undefined), '');
  assert.equal(fmtDate(20260601), '');
});

test('fmtDayOf keeps the written day of a time', () => {
  assert.equal(fmtDayOf('2013-08-15T23:30:00-07:00'), '15 Aug 2013');
  assert.equal(fmtDayOf('2013-08-15T00:30:00+14:00'), '15 Aug 2013');
  assert.equal(fmtDayOf('2019-03'), 'Mar 2019');
});

test('parseDate keeps precision and offset', () => {
  assert.equal(parseDate('2026-06-01').precision, 'day');
  assert.equal(parseDate('2026-06').precision, 'month');
  assert.equal(parseDate('2026').precision, 'year');
  const p = parseDate('2013-08-15T10:30:00-07:00');
  assert.equal(p.precision, 'time');
  assert.equal(p.zone, '-07:00');
  assert.equal(p.offsetMin, -420);
  assert.equal(parseDate('2013-08-15T10:30:00').zone, null);
  assert.equal(parseDate('2024-02-29').d, 29);
  assert.equal(parseDate('2023-02-29'), null);
  assert.equal(parseDate('2013-08-15T25:00:00'), null);
});

test('sortKey orders instants by the instant and others by the wall clock', () => {
  // 10:00 at UTC-07:00 is later than 12:00 UTC on the same day.
  assert.ok(sortKey('2013-08-15T10:00:00-07:00') > sortKey('2013-08-15T12:00:00Z'));
  assert.ok(sortKey('2013-08-16') > sortKey('2013-08-15T23:59:00'));
  assert.ok(Number.isNaN(sortKey('soon')));
  // wallTime ignores the offset: charts place readings at the written time.
  assert.equal(wallTime('2013-08-15T10:00:00-07:00'), Date.UTC(2013, 7, 15, 10));
});

test('fmtWallRange writes a span compactly', () => {
  const d = (y, m, day) => Date.UTC(y, m - 1, day);
  assert.equal(fmtWallRange(d(2026, 11, 12), d(2026, 11, 18)), '12–18 Nov 2026');
  assert.equal(fmtWallRange(d(2026, 10, 28), d(2026, 11, 3)), '28 Oct – 3 Nov 2026');
  assert.equal(fmtWallRange(d(2013, 3, 3), d(2026, 11, 18)), '3 Mar 2013 – 18 Nov 2026');
  assert.equal(fmtWallRange(d(2026, 11, 18), d(2026, 11, 18) + 3600000), '18 Nov 2026');
});

test('ageOn and dayIndex', () => {
  const now = new Date(2026, 3, 11); // 11 Apr 2026, the reader's day
  assert.equal(ageOn('1980-04-12', now), 45);
  assert.equal(ageOn('1980-04-11', now), 46);
  assert.equal(ageOn('1980-04', now), null);
  assert.equal(dayIndex('2026-06-02T23:30:00-07:00') - dayIndex('2026-06-01'), 1);
});

test('fmtDate never throws and keeps unparseable text as written', () => {
  let seed = 7;
  const rand = (n) => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed % n;
  };
  const chars = '0123456789-T:Z+.';
  for (let i = 0; i < 3000; i++) {
    const s = Array.from({ length: rand(30) }, () => chars[rand(chars.length)]).join('');
    const out = fmtDate(s);
    assert.equal(typeof out, 'string');
    if (!parseDate(s)) assert.equal(out, s.trim());
    assert.ok(!/Invalid|NaN/.test(out), s + ' → ' + out);
  }
});
