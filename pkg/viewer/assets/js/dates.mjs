// FHIR dates and times, shown as the source wrote them.
//
// A FHIR date ("2026-06-01") is a day, not an instant: it shows as that
// day in every time zone. A dateTime shows the wall-clock time its source
// wrote, followed by the offset it carried ("UTC-07:00"), never converted
// into the reader's zone; one written without an offset
// ("2013-08-15T10:30:00", see docs/viewer.md) shows 10:30 and no zone.
// Year-only and month-only values keep that precision.
//
// To format a written value with Intl.DateTimeFormat, its components are
// placed on the UTC time line ("wall time") and formatted with timeZone
// UTC, which prints them back unchanged. Only instants that are not FHIR
// values (a link's expiry, the moment the record was opened) are shown in
// the reader's own zone, with the zone named.

import { LOCALE, S } from './strings.mjs';

const RE = /^(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?(Z|[+-]\d{2}:\d{2})?)?)?)?$/;

const fmtYear = new Intl.DateTimeFormat(LOCALE, { year: 'numeric', timeZone: 'UTC' });
const fmtMonth = new Intl.DateTimeFormat(LOCALE, { month: 'short', year: 'numeric', timeZone: 'UTC' });
const fmtDay = new Intl.DateTimeFormat(LOCALE, { day: 'numeric', month: 'short', year: 'numeric', timeZone: 'UTC' });
const fmtDayMonth = new Intl.DateTimeFormat(LOCALE, { day: 'numeric', month: 'short', timeZone: 'UTC' });
const fmtClock = new Intl.DateTimeFormat(LOCALE, { hour: '2-digit', minute: '2-digit', hourCycle: 'h23', timeZone: 'UTC' });
const fmtClockSec = new Intl.DateTimeFormat(LOCALE, { hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23', timeZone: 'UTC' });

// wall returns the UTC milliseconds of a wall-clock reading; years below
// 100 are kept (Date.UTC would move them to the 1900s).
function wall(y, mo, d, hh, mm, ss, ms) {
  const t = new Date(0);
  t.setUTCFullYear(y, mo - 1, d);
  t.setUTCHours(hh || 0, mm || 0, ss || 0, ms || 0);
  return t.getTime();
}

function daysIn(y, mo) {
  return new Date(wall(y, mo + 1, 0)).getUTCDate();
}

// parseDate reads a FHIR date, dateTime or instant. It returns null for
// anything else, including impossible days (2026-02-30) and times.
export function parseDate(s) {
  if (typeof s !== 'string') return null;
  const m = RE.exec(s.trim());
  if (!m) return null;
  const y = Number(m[1]);
  const p = { text: s.trim(), precision: 'year', y, mo: 1, d: 1, hh: 0, mm: 0, ss: 0, ms: 0, zone: null };
  if (m[2]) {
    p.mo = Number(m[2]);
    if (p.mo < 1 || p.mo > 12) return null;
    p.precision = 'month';
  }
  if (m[3]) {
    p.d = Number(m[3]);
    if (p.d < 1 || p.d > daysIn(y, p.mo)) return null;
    p.precision = 'day';
  }
  if (m[4]) {
    p.hh = Number(m[4]);
    p.mm = Number(m[5]);
    p.ss = m[6] ? Number(m[6]) : 0;
    p.ms = m[7] ? Number((m[7] + '00').slice(0, 3)) : 0;
    if (p.hh > 24 || p.mm > 59 || p.ss > 60 || (p.hh === 24 && (p.mm || p.ss))) return null;
    p.precision = 'time';
    if (m[8]) {
      if (m[8] === 'Z') {
        p.zone = 'Z';
        p.offsetMin = 0;
      } else {
        const oh = Number(m[8].slice(1, 3));
        const om = Number(m[8].slice(4, 6));
        if (oh > 14 || om > 59) return null;
        p.zone = m[8];
        p.offsetMin = (m[8][0] === '-' ? -1 : 1) * (oh * 60 + om);
      }
    }
  }
  p.wall = wall(p.y, p.mo, p.d, p.hh, p.mm, p.ss, p.ms);
  return p;
}

// zoneText names a written offset: "UTC" for Z, else "UTC+01:00".
export function zoneText(zone) {
  if (!zone) return '';
  return zone === 'Z' ? 'UTC' : 'UTC' + zone;
}

// fmtDate shows a FHIR date, dateTime or instant at its own precision and
// in its own wall clock. Text that is not a FHIR date is returned as it is.
export function fmtDate(s) {
  const p = parseDate(s);
  if (!p) return typeof s === 'string' ? s.trim() : '';
  switch (p.precision) {
    case 'year':
      return fmtYear.format(p.wall);
    case 'month':
      return fmtMonth.format(p.wall);
    case 'day':
      return fmtDay.format(p.wall);
    default: {
      const clock = (p.ss ? fmtClockSec : fmtClock).format(p.wall);
      return S.dateAndTime(fmtDay.format(p.wall), clock) + (p.zone ? ' ' + zoneText(p.zone) : '');
    }
  }
}

// fmtDayOf shows only the day of a FHIR date or dateTime, as written.
export function fmtDayOf(s) {
  const p = parseDate(s);
  if (!p) return typeof s === 'string' ? s.trim() : '';
  if (p.precision === 'year') return fmtYear.format(p.wall);
  if (p.precision === 'month') return fmtMonth.format(p.wall);
  return fmtDay.format(p.wall);
}

// sortKey orders FHIR dates: a value with an offset by its instant, one
// without (a day, or a zone-less time) by its wall clock read as UTC. Not
// a date: NaN.
export function sortKey(s) {
  const p = parseDate(s);
  if (!p) return NaN;
  return p.zone ? p.wall - p.offsetMin * 60000 : p.wall;
}

// wallTime places a written value on the time line by its wall clock,
// ignoring any offset: what charts use, so that their date labels match
// the dates written in the record. Not a date: NaN.
export function wallTime(s) {
  const p = parseDate(s);
  return p ? p.wall : NaN;
}

// Wall-clock formatting of chart positions (milliseconds from wallTime).
export function fmtWallDay(ms) {
  return fmtDay.format(ms);
}

export function fmtWallDayMonth(ms) {
  return fmtDayMonth.format(ms);
}

export function fmtWallMonth(ms) {
  return fmtMonth.format(ms);
}

export function fmtWallYear(ms) {
  return fmtYear.format(ms);
}

// fmtWallRange writes a span of days compactly: "12–18 Nov 2026",
// "28 Oct – 3 Nov 2026", "3 Mar 2013 – 18 Nov 2026", or one day.
export function fmtWallRange(from, to) {
  const a = new Date(from);
  const b = new Date(to);
  const sameDay = a.getUTCFullYear() === b.getUTCFullYear() && a.getUTCMonth() === b.getUTCMonth() && a.getUTCDate() === b.getUTCDate();
  if (sameDay) return fmtDay.format(from);
  if (a.getUTCFullYear() !== b.getUTCFullYear()) return S.range(fmtDay.format(from), fmtDay.format(to));
  if (a.getUTCMonth() !== b.getUTCMonth()) return S.range(fmtDayMonth.format(from), fmtDay.format(to));
  return S.dayRange(String(a.getUTCDate()), fmtDay.format(to));
}

// The reader's own clock, for instants that are not FHIR values.
const fmtLocalTime = new Intl.DateTimeFormat(LOCALE, {
  day: 'numeric', month: 'short', year: 'numeric', hour: '2-digit', minute: '2-digit', hourCycle: 'h23', timeZoneName: 'short',
});

export function fmtInstant(date) {
  return fmtLocalTime.format(date);
}

// ageOn returns the age in whole years on the reader's date today, or
// null when the birth date is not a full day.
export function ageOn(birth, now) {
  const p = parseDate(birth);
  if (!p || p.precision !== 'day') return null;
  let age = now.getFullYear() - p.y;
  const mo = now.getMonth() + 1;
  if (mo < p.mo || (mo === p.mo && now.getDate() < p.d)) age--;
  return age >= 0 && age < 150 ? age : null;
}

export const DAY_MS = 86400000;

// dayIndex is the number of whole days from 1970-01-01 to the written day
// of a value (its wall clock), for counting days between doses.
export function dayIndex(s) {
  const p = parseDate(s);
  return p ? Math.floor(p.wall / DAY_MS) : NaN;
}
