import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fmtNum, quantityUnit, unitText, withUnit } from '../assets/js/units.mjs';

test('unitText writes UCUM as people do', () => {
  for (const [code, want] of [
    ['mm[Hg]', 'mmHg'], ['Cel', '°C'], ['[degF]', '°F'], ['[lb_av]', 'lb'], ['[in_i]', 'in'],
    ['kg/m2', 'kg/m²'], ['10*3/uL', '×10³/µL'], ['{beats}/min', 'beats/min'], ['{score}', ''],
    ['{cells}/uL', 'cells/uL'], ['mg/dL', 'mg/dL'], ['%', '%'], ['1', ''], ['tablet', 'tablet'], ['', ''],
  ]) {
    assert.equal(unitText(code), want, code);
  }
  assert.equal(quantityUnit({ value: 1, unit: 'mm[Hg]', code: 'mm[Hg]' }), 'mmHg'); // Synthea writes the code as the label
  assert.equal(quantityUnit({ value: 1, code: 'Cel' }), '°C');
  assert.equal(quantityUnit({ value: 1, unit: 'beats/min', code: '/min' }), 'beats/min');
  assert.equal(quantityUnit(null), '');
});

test('fmtNum gives sensible precision', () => {
  for (const [v, decimals, want] of [
    [81.69998963820044, undefined, '81.7'],
    [81.69998963820044, 0, '82'],
    [120.00000000000001, 0, '120'],
    [0.1 + 0.2, undefined, '0.3'],
    [36.55556, 1, '36.6'],
    [36.55556, undefined, '36.56'],
    [20.09414, 1, '20.1'],
    [111.506, 1, '111.506'], // three decimals: as written
    [7.4, undefined, '7.4'],
    [120, 0, '120'],
    [0.000123456, undefined, '0.0001235'],
    [1234.56789, undefined, '1235'],
    [-0.0000001, 2, '-1.0e-7'],
    [NaN, undefined, ''],
  ]) {
    assert.equal(fmtNum(v, decimals), want, String(v));
  }
  assert.equal(withUnit('7.5', '%'), '7.5%');
  assert.equal(withUnit('128', 'mmHg'), '128 mmHg');
  assert.equal(withUnit('3', ''), '3');
});
