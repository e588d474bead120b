// Trend charts: which series to draw, which window of time to show, the
// date ticks of the axis (pure, tested with node in
// jstest/charts.test.mjs), and the SVG drawing (DOM calls only).
//
// Times are wall-clock positions (dates.wallTime): a reading written
// "2026-11-18T09:00:00-05:00" sits at 09:00 on 18 Nov, so that the axis
// dates are the dates written in the record.

import { S } from './strings.mjs';
import { DAY_MS, fmtDate, fmtWallDay, fmtWallDayMonth, fmtWallMonth, fmtWallRange, fmtWallYear, wallTime } from './dates.mjs';
import { fmtNum, withUnit } from './units.mjs';
import { ccText, component, firstCode, isBP, isSymptom, isVital, num, obsDate, str, unitOf, vitalOf } from './fhir.mjs';
import { normalRange, vitalKind, vitalSigns, vitalUnit } from './vitals.mjs';
import { h, svg } from './dom.mjs';

export const MAX_CHART_POINTS = 500;

// trendSeries gathers the series worth drawing: blood pressure and the
// other vital-sign kinds (and glucose) with two or more readings, and any
// other numeric result with three or more. A series: {id, kind, title,
// unit, decimals, lines: [{name, part, points: [{t, v, when}]}], bands:
// [{name, low, high}]}.
export function trendSeries(observations) {
  const obs = observations.filter((o) => !isSymptom(o));
  const bpByTime = new Map();
  const vitals = new Map(); // kind + "|" + unit -> series
  const labs = new Map();
  for (const o of obs) {
    const when = obsDate(o);
    const t = wallTime(when);
    if (isNaN(t)) continue;
    const v = vitalOf(o);
    if (isBP(o) || (v && v.part && v.kind.kind === 'bp')) {
      const e = bpByTime.get(t) || { t, when, sys: null, dia: null, unit: '' };
      const s = v && v.part && v.part.kind === 'systolic' ? o : component(o, 'systolic');
      const d = v && v.part && v.part.kind === 'diastolic' ? o : component(o, 'diastolic');
      if (s && s.valueQuantity && num(s.valueQuantity.value) !== null) {
        e.sys = s.valueQuantity.value;
        e.unit = unitOf(s.valueQuantity, 'bp') || e.unit;
      }
      if (d && d.valueQuantity && num(d.valueQuantity.value) !== null) {
        e.dia = d.valueQuantity.value;
        e.unit = e.unit || unitOf(d.valueQuantity, 'bp');
      }
      bpByTime.set(t, e);
      continue;
    }
    const q = o.valueQuantity;
    if (!q || num(q.value) === null) continue;
    const p = { t, v: q.value, when };
    if (v && !v.part) {
      const unit = unitOf(q, v.kind);
      const key = v.kind.kind + '|' + unit;
      if (!vitals.has(key)) {
        const u = vitalUnit(v.kind, str(q.code)) || vitalUnit(v.kind, str(q.unit));
        const range = normalRange(v.kind, null, u);
        vitals.set(key, {
          id: v.kind.kind, kind: v.kind.kind, title: v.kind.name, unit, decimals: u ? u.decimals : undefined,
          lines: [{ name: v.kind.name, points: [] }],
          bands: range ? [{ name: v.kind.name, low: range.low, high: range.high }] : [],
        });
      }
      vitals.get(key).lines[0].points.push(p);
    } else if (!v && !isVital(o)) {
      const unit = unitOf(q);
      const key = (firstCode(o.code) || ccText(o.code)) + '|' + unit;
      if (!labs.has(key)) {
        const title = ccText(o.code) || S.result;
        labs.set(key, { id: 'lab', kind: 'lab', title, unit, lines: [{ name: title, points: [] }], bands: [] });
      }
      labs.get(key).lines[0].points.push(p);
    }
  }
  const out = [];
  const bp = [...bpByTime.values()].sort((a, b) => a.t - b.t);
  if (bp.length >= 2) {
    const unit = bp.find((e) => e.unit) ? bp.find((e) => e.unit).unit : 'mmHg';
    const kind = vitalKind('bp');
    const parts = kind.components || [];
    const u = vitalUnit(kind, unit);
    out.push({
      id: 'bp', kind: 'bp', title: kind.name, unit, decimals: u ? u.decimals : 0,
      lines: parts.map((part) => ({
        name: part.label, part: part.kind,
        points: bp.filter((e) => (part.kind === 'systolic' ? e.sys : e.dia) !== null)
          .map((e) => ({ t: e.t, v: part.kind === 'systolic' ? e.sys : e.dia, when: e.when })),
      })),
      bands: parts.map((part) => {
        const r = normalRange(kind, part.kind, u);
        return r ? { name: part.label, low: r.low, high: r.high } : null;
      }).filter(Boolean),
    });
  }
  const order = vitalSigns().map((k) => k.kind);
  const named = [...vitals.values()].sort((a, b) => order.indexOf(a.kind) - order.indexOf(b.kind));
  for (const s of named) if (s.lines[0].points.length >= 2) out.push(s);
  for (const s of labs.values()) if (s.lines[0].points.length >= 3) out.push(s);
  for (const s of out) {
    for (const l of s.lines) l.points = l.points.sort((a, b) => a.t - b.t).slice(-MAX_CHART_POINTS);
  }
  return out;
}

// The windows a reader can choose, counted back from the latest reading.
export const RANGES = [
  { id: '3m', days: 92 },
  { id: '1y', days: 366 },
  { id: 'all', days: 0 },
];

// windowOptions lists the windows worth offering for these reading times:
// each with {id, from, count}, leaving out a window that shows no more
// readings than a shorter one. The last is always "all".
export function windowOptions(times) {
  if (!times.length) return [];
  const latest = Math.max(...times);
  const out = [];
  for (const r of RANGES) {
    const from = r.days ? latest - r.days * DAY_MS : -Infinity;
    const count = times.filter((t) => t >= from).length;
    if (out.length && out[out.length - 1].count === count) {
      // No more readings than the shorter window: not worth offering,
      // except that a window holding everything is called "all".
      if (r.days) continue;
      out.pop();
    }
    out.push({ id: r.id, from, count });
  }
  return out;
}

// defaultWindow is the shortest offered window with at least two
// readings (a line needs two), else "all".
export function defaultWindow(options) {
  return options.find((o) => o.count >= 2) || options[options.length - 1];
}

// timeTicks chooses at most max dates (or hours, within one day) between
// from and to, at round steps, each {t, label}.
export function timeTicks(from, to, max) {
  const HOUR = 3600000;
  if (!(to > from)) return [{ t: from, label: fmtWallDay(from) }];
  const span = to - from;
  const fixed = [
    [HOUR, 'h'], [2 * HOUR, 'h'], [3 * HOUR, 'h'], [6 * HOUR, 'h'], [12 * HOUR, 'h'],
    [DAY_MS, 'd'], [2 * DAY_MS, 'd'], [3 * DAY_MS, 'd'], [7 * DAY_MS, 'd'], [14 * DAY_MS, 'd'],
  ];
  for (const [step, unit] of fixed) {
    if (span / step > max * 1.0001 + 1) continue;
    const first = Math.ceil(from / step) * step;
    const ticks = [];
    for (let t = first; t <= to; t += step) ticks.push(t);
    if (ticks.length === 0 || ticks.length > max) continue;
    // Hours within a day; a midnight tick is labelled with its date.
    return ticks.map((t) => ({ t, label: unit === 'h' && t % DAY_MS ? clock(t) : fmtWallDayMonth(t) }));
  }
  for (const months of [1, 2, 3, 6, 12, 24, 60, 120, 240, 600]) {
    const ticks = monthTicks(from, to, months);
    if (ticks.length === 0 || ticks.length > max) continue;
    return ticks.map((t) => ({ t, label: months >= 12 ? fmtWallYear(t) : fmtWallMonth(t) }));
  }
  return [{ t: from, label: fmtWallDay(from) }, { t: to, label: fmtWallDay(to) }];
}

function clock(t) {
  const d = new Date(t);
  return String(d.getUTCHours()).padStart(2, '0') + ':' + String(d.getUTCMinutes()).padStart(2, '0');
}

// monthTicks: the first days of months (every `months`, aligned to the
// calendar: January for years) between from and to.
function monthTicks(from, to, months) {
  const a = new Date(from);
  let y = a.getUTCFullYear();
  let m = a.getUTCMonth();
  const out = [];
  for (let guard = 0; guard < 2000; guard++) {
    const t = Date.UTC(y, m, 1);
    if (t > to) break;
    if (t >= from && (y * 12 + m) % months === 0) out.push(t);
    m++;
    if (m === 12) {
      m = 0;
      y++;
    }
  }
  return out;
}

export function niceStep(range, count) {
  const raw = range / count;
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const f = raw / mag;
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 2.5 ? 2.5 : f <= 5 ? 5 : 10) * mag;
}

// ---------------------------------------------------------------- drawing

// chart draws one series as a figure: a caption with the latest value,
// the window shown and buttons to widen it, and an SVG line chart with
// date ticks and the normal-range bands.
export function chart(spec, chosen) {
  const times = spec.lines.flatMap((l) => l.points.map((p) => p.t));
  const options = windowOptions(times);
  const win = options.find((o) => o.id === chosen) || defaultWindow(options);
  const lines = spec.lines.map((l) => ({ ...l, points: l.points.filter((p) => p.t >= win.from) }));
  const shown = lines.flatMap((l) => l.points);
  const total = Math.max(...spec.lines.map((l) => l.points.length));
  const visible = Math.max(...lines.map((l) => l.points.length));
  const tmin = Math.min(...shown.map((p) => p.t));
  const tmax = Math.max(...shown.map((p) => p.t));
  const earliest = Math.min(...times);

  const phone = typeof window !== 'undefined' && window.matchMedia && window.matchMedia('(max-width: 640px)').matches;
  const W = phone ? 340 : 440;
  const H = 200;
  const ml = 46;
  const mr = 16;
  const mt = 12;
  const mb = 30;

  let t0 = tmin;
  let t1 = tmax;
  if (t0 === t1) {
    t0 -= DAY_MS / 2;
    t1 += DAY_MS / 2;
  }
  const values = shown.map((p) => p.v);
  for (const b of spec.bands) values.push(b.low, b.high);
  let vmin = Math.min(...values);
  let vmax = Math.max(...values);
  if (vmin === vmax) {
    const d = Math.abs(vmin) * 0.1 || 1;
    vmin -= d;
    vmax += d;
  } else {
    const pad = (vmax - vmin) * 0.08;
    vmin = vmin >= 0 ? Math.max(0, vmin - pad) : vmin - pad;
    vmax += pad;
  }
  const step = niceStep(vmax - vmin, 4);
  const lo = Math.floor(vmin / step) * step;
  const hi = Math.ceil(vmax / step) * step;
  const x = (t) => ml + ((t - t0) / (t1 - t0)) * (W - ml - mr);
  const y = (v) => mt + ((hi - v) / (hi - lo)) * (H - mt - mb);
  const r1 = (n) => Math.round(n * 10) / 10;
  const rangeText = fmtWallRange(tmin, tmax);
  const label = S.chartLabel(spec.title, visible, rangeText);

  const g = [];
  spec.bands.forEach((b, i) => {
    const top = r1(y(Math.min(b.high, hi)));
    const bottom = r1(y(Math.max(b.low, lo)));
    g.push(svg('rect', { class: 'band band-' + i, x: ml, y: top, width: W - ml - mr, height: Math.max(0, r1(bottom - top)) },
      svg('title', null, S.bandTitle(b.name, withUnit(fmtNum(b.low) + '–' + fmtNum(b.high), spec.unit)))));
  });
  for (let v = lo; v <= hi + step / 2; v += step) {
    const yy = r1(y(v));
    g.push(svg('line', { class: 'grid', x1: ml, x2: W - mr, y1: yy, y2: yy }));
    g.push(svg('text', { class: 'tick', x: ml - 6, y: yy + 4, 'text-anchor': 'end' }, fmtNum(Number(v.toFixed(6)))));
  }
  g.push(svg('text', { class: 'axis-label', x: 12, y: mt + (H - mt - mb) / 2, 'text-anchor': 'middle', transform: 'rotate(-90 12 ' + (mt + (H - mt - mb) / 2) + ')' }, spec.unit || ''));
  g.push(svg('line', { class: 'axis', x1: ml, x2: W - mr, y1: H - mb, y2: H - mb }));
  const ticks = timeTicks(tmin === tmax ? tmin : t0, tmin === tmax ? tmax : t1, phone ? 4 : 5);
  for (const tk of ticks) {
    const xx = r1(x(tk.t));
    const anchor = xx < ml + 20 ? 'start' : xx > W - mr - 20 ? 'end' : 'middle';
    g.push(svg('line', { class: 'xtick', x1: xx, x2: xx, y1: H - mb, y2: H - mb + 4 }));
    g.push(svg('text', { class: 'tick xlabel', x: xx, y: H - mb + 16, 'text-anchor': anchor }, tk.label));
  }
  lines.forEach((line, i) => {
    if (!line.points.length) return;
    const d = line.points.map((p, j) => (j ? 'L' : 'M') + r1(x(p.t)) + ' ' + r1(y(p.v))).join(' ');
    g.push(svg('path', { class: 'line line-' + i, d, fill: 'none' }));
    for (const p of line.points) {
      g.push(svg('circle', { class: 'pt pt-' + i, cx: r1(x(p.t)), cy: r1(y(p.v)), r: 3.5 },
        svg('title', null, S.pointTitle(line.name, withUnit(fmtNum(p.v, spec.decimals), spec.unit), fmtDate(p.when)))));
    }
  });

  const s = svg('svg', {
    class: 'chart', viewBox: '0 0 ' + W + ' ' + H, role: 'img', 'aria-label': label,
    'data-series': spec.id, 'data-unit': spec.unit || '',
  }, svg('title', null, label), g);

  const latest = lines.map((l) => l.points[l.points.length - 1]).filter(Boolean);
  const latestText = withUnit(latest.map((p) => fmtNum(p.v, spec.decimals)).join('/'), spec.unit);
  const lastWhen = latest.length ? latest.reduce((a, b) => (b.t > a.t ? b : a)).when : '';

  const fig = h('figure', { class: 'trend', 'data-series': spec.id, 'data-window': win.id });
  const buttons = options.length > 1
    ? h('div', { class: 'windows no-print', role: 'group', 'aria-label': S.chartWindows },
      options.map((o) => {
        const b = h('button', {
          type: 'button', class: 'window', 'data-window': o.id, 'aria-pressed': o.id === win.id ? 'true' : 'false',
        }, o.id === 'all' ? S.windowAll(fmtWallYear(earliest)) : S.window[o.id]);
        b.addEventListener('click', () => fig.replaceWith(chart(spec, o.id)));
        return b;
      }))
    : null;
  const legend = [];
  if (lines.length > 1) lines.forEach((l, i) => legend.push(h('span', { class: 'key key-' + i }, l.name)));
  if (spec.bands.length) {
    legend.push(h('span', { class: 'key key-band' }, S.bandLegend, ' ', spec.bands.map((b, i) => [i ? ', ' : '',
      h('span', { class: 'nowrap' }, (spec.bands.length > 1 ? b.name + ' ' : '') + fmtNum(b.low) + '–' + fmtNum(b.high))])));
  }
  fig.append(...[
    h('figcaption', null,
      h('span', { class: 'strong chart-title' }, spec.title + (spec.unit ? ' (' + spec.unit + ')' : '')),
      h('span', { class: 'sub' }, S.latest(latestText, fmtDate(lastWhen))),
      h('span', { class: 'sub window-text' }, S.windowText(visible, total, rangeText, win.id))),
    buttons, s, legend.length ? h('div', { class: 'legend' }, legend) : null].filter(Boolean));
  return fig;
}
