// The QR encoder's tables and structure (TestQREncoderDecodes reads its
// codes back with a Go decoder).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encode, capacity, dataCodewords, totalCodewords, alignmentPositions, ecBytes, svgPath, QRError } from '../assets/js/qr.mjs';

test('the block table fills every symbol exactly', () => {
  for (let v = 1; v <= 40; v++) {
    // Data plus EC codewords of all blocks is what the symbol holds.
    const enc = encode('x', { minVersion: v });
    assert.equal(enc.version, v);
    assert.equal(enc.size, 17 + 4 * v);
    assert.ok(dataCodewords(v) < totalCodewords(v));
  }
  assert.equal(totalCodewords(1), 26);
  assert.equal(totalCodewords(40), 3706);
  assert.equal(capacity(1), 14);
  assert.equal(capacity(40), 2331);
});

test('alignment patterns', () => {
  assert.deepEqual(alignmentPositions(1), []);
  assert.deepEqual(alignmentPositions(2), [6, 18]);
  assert.deepEqual(alignmentPositions(7), [6, 22, 38]);
  assert.deepEqual(alignmentPositions(32), [6, 34, 60, 86, 112, 138]);
  assert.deepEqual(alignmentPositions(40), [6, 30, 58, 86, 114, 142, 170]);
});

test('Reed-Solomon: the code of a codeword block is divisible by the generator', () => {
  // A received word (data + EC) evaluates to zero at every root 2^i.
  const data = [0x40, 0xd2, 0x75, 0x47, 0x76, 0x17, 0x32, 0x06, 0x27, 0x26, 0x96, 0xc6, 0xc6, 0x96, 0x70, 0xec];
  const ec = ecBytes(data, 10);
  const word = data.concat(ec);
  const exp = [1];
  for (let i = 1; i < 255; i++) {
    let x = exp[i - 1] << 1;
    if (x & 0x100) x ^= 0x11d;
    exp.push(x);
  }
  const log = [];
  exp.forEach((x, i) => { log[x] = i; });
  const mul = (a, b) => (a && b ? exp[(log[a] + log[b]) % 255] : 0);
  for (let i = 0; i < 10; i++) {
    let s = 0;
    for (const c of word) s = mul(s, exp[i]) ^ c;
    assert.equal(s, 0, 'root ' + i);
  }
});

test('finder patterns, timing, dark module; too long is an error', () => {
  const q = encode('http://localhost:8080/view#shlink:/eyJ1cmwiOiJodHRwOi8vbG9jYWxob3N0OjgwODAvc2hsL2FiYyIsImtleSI6Inh5eiJ9');
  const n = q.size;
  for (const [x0, y0] of [[0, 0], [n - 7, 0], [0, n - 7]]) {
    for (let i = 0; i < 7; i++) {
      assert.equal(q.dark[y0][x0 + i], true);
      assert.equal(q.dark[y0 + 6][x0 + i], true);
      assert.equal(q.dark[y0 + 3][x0 + 3], true);
      assert.equal(q.dark[y0 + 1][x0 + 1], false);
    }
  }
  for (let i = 8; i < n - 8; i++) assert.equal(q.dark[6][i], i % 2 === 0);
  assert.equal(q.dark[n - 8][8], true);
  assert.throws(() => encode('x'.repeat(2332)), QRError);
  assert.match(svgPath({ size: 2, dark: [[true, true], [false, true]] }), /^M4 4h2v1h-2zM5 5h1v1h-1z$/);
});
