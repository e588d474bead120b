// The vital-sign table: which LOINC codes make each kind of measurement,
// its name, its units as people write them, the precision a reading is
// shown with when its source wrote noise, and the typical adult range
// drawn behind its trend chart.
//
// It is plain data (JSON), on purpose: phr's Go vital-sign table
// (pkg/record) is the one source of these facts, and this object is the
// shape the viewer would fetch from it. setVitalTable replaces it.
//
// normal: [low, high] typical resting range for adults, in that unit.
// Sources: blood pressure below 120/80 mmHg is "normal" (AHA/ACC 2017),
// 90/60 the usual threshold of low blood pressure; resting heart rate
// 60-100 (AHA); respiratory rate 12-20/min; oxygen saturation 95-100 %;
// body temperature 36.1-37.2 °C (97-99 °F); BMI 18.5-24.9 kg/m² (WHO).
// Glucose has no band: its range depends on fasting, which a reading
// rarely says. Weight and height have none.
const DEFAULT_TABLE = {
  kinds: [
    {
      kind: 'bp', name: 'Blood pressure', vitalSign: true, loinc: ['85354-9', '55284-4', '35094-2'],
      units: [{ ucum: 'mm[Hg]', display: 'mmHg', aliases: ['mmHg', 'mm Hg'], decimals: 0 }],
      parts: [
        { kind: 'systolic', name: 'Systolic', loinc: ['8480-6'], normal: { mmHg: [90, 120] } },
        { kind: 'diastolic', name: 'Diastolic', loinc: ['8462-4'], normal: { mmHg: [60, 80] } },
      ],
    },
    {
      kind: 'hr', name: 'Heart rate', vitalSign: true, loinc: ['8867-4'],
      units: [{ ucum: '/min', display: 'bpm', aliases: ['bpm', 'beats/min', '{beats}/min', 'beats per minute', '/min'], decimals: 0, normal: [60, 100] }],
    },
    {
      kind: 'rr', name: 'Respiratory rate', vitalSign: true, loinc: ['9279-1'],
      units: [{ ucum: '/min', display: 'breaths/min', aliases: ['breaths/min', '{breaths}/min', 'breaths per minute', '/min'], decimals: 0, normal: [12, 20] }],
    },
    {
      kind: 'spo2', name: 'Oxygen saturation', vitalSign: true, loinc: ['59408-5', '2708-6'],
      units: [{ ucum: '%', display: '%', aliases: ['%', '%O2'], decimals: 0, normal: [95, 100] }],
    },
    {
      kind: 'temp', name: 'Body temperature', vitalSign: true, loinc: ['8310-5', '8331-1'],
      units: [
        { ucum: 'Cel', display: '°C', aliases: ['°C', 'C', 'degC', 'Cel'], decimals: 1, normal: [36.1, 37.2] },
        { ucum: '[degF]', display: '°F', aliases: ['°F', 'F', 'degF', '[degF]'], decimals: 1, normal: [97, 99] },
      ],
    },
    {
      kind: 'weight', name: 'Body weight', vitalSign: true, loinc: ['29463-7', '3141-9'],
      units: [
        { ucum: 'kg', display: 'kg', aliases: ['kg', 'kgs'], decimals: 1 },
        { ucum: '[lb_av]', display: 'lb', aliases: ['lb', 'lbs', '[lb_av]'], decimals: 1 },
      ],
    },
    {
      kind: 'height', name: 'Body height', vitalSign: true, loinc: ['8302-2', '8306-3'],
      units: [
        { ucum: 'cm', display: 'cm', aliases: ['cm'], decimals: 1 },
        { ucum: '[in_i]', display: 'in', aliases: ['in', '[in_i]'], decimals: 1 },
      ],
    },
    {
      kind: 'bmi', name: 'Body mass index', vitalSign: true, loinc: ['39156-5'],
      units: [{ ucum: 'kg/m2', display: 'kg/m²', aliases: ['kg/m2', 'kg/m²'], decimals: 1, normal: [18.5, 24.9] }],
    },
    {
      kind: 'head', name: 'Head circumference', vitalSign: true, loinc: ['9843-4', '8287-5'],
      units: [{ ucum: 'cm', display: 'cm', aliases: ['cm'], decimals: 1 }],
    },
    {
      kind: 'glucose', name: 'Blood glucose', vitalSign: false, loinc: ['2339-0', '15074-8', '2345-7', '41653-7', '14749-6', '14743-9', '2340-8', '1558-6', '41604-0', '2341-6', '74774-1', '1547-9', '14770-2'],
      units: [
        { ucum: 'mg/dL', display: 'mg/dL', aliases: ['mg/dL', 'mg/dl'], decimals: 0 },
        { ucum: 'mmol/L', display: 'mmol/L', aliases: ['mmol/L', 'mmol/l'], decimals: 1 },
      ],
    },
  ],
};

let table = DEFAULT_TABLE;
let byCode = index(table);

function index(t) {
  const m = new Map();
  for (const k of t.kinds) {
    for (const c of k.loinc) m.set(c, { kind: k, part: null });
    for (const p of k.parts || []) for (const c of p.loinc) m.set(c, { kind: k, part: p });
  }
  return m;
}

// setVitalTable replaces the table (for a table fetched as JSON).
export function setVitalTable(t) {
  if (!t || !Array.isArray(t.kinds)) throw new TypeError('vital table: kinds missing');
  table = t;
  byCode = index(t);
}

export function vitalTable() {
  return table;
}

// vitalByCode finds the kind (and, for a component such as systolic, the
// part) a LOINC code belongs to.
export function vitalByCode(code) {
  return byCode.get(code) || null;
}

export function vitalKind(kind) {
  return table.kinds.find((k) => k.kind === kind) || null;
}

// vitalUnit finds the unit entry of a kind for a written unit or UCUM
// code, or null.
export function vitalUnit(kind, written) {
  const k = typeof kind === 'string' ? vitalKind(kind) : kind;
  if (!k || typeof written !== 'string') return null;
  const w = written.trim();
  return k.units.find((u) => u.ucum === w || u.display === w || (u.aliases || []).includes(w)) || null;
}

// normalRange is the typical adult range of a kind (or part) in a unit,
// as [low, high], or null.
export function normalRange(kind, part, unitDisplay) {
  const k = typeof kind === 'string' ? vitalKind(kind) : kind;
  if (!k) return null;
  if (part) {
    const p = (k.parts || []).find((x) => x.kind === part);
    return (p && p.normal && p.normal[unitDisplay]) || null;
  }
  const u = k.units.find((x) => x.display === unitDisplay);
  return (u && u.normal) || null;
}
