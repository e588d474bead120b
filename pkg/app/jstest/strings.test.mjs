// All the app's words live in strings.mjs: every S.name the modules use
// exists, and no other module holds a sentence of its own.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { S } from '../assets/js/strings.mjs';

const dir = new URL('../assets/js/', import.meta.url);
const modules = readdirSync(dir).filter((f) => f.endsWith('.mjs') && f !== 'strings.mjs');

function source(f) {
  return readFileSync(new URL(f, dir), 'utf8').replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '').replace(/\s\/\/ .*$/gm, '');
}

test('every string the modules use is in the table', () => {
  for (const f of modules) {
    for (const m of source(f).matchAll(/\bS((?:\.[A-Za-z_]\w*)+)/g)) {
      let v = S;
      for (const k of m[1].slice(1).split('.')) {
        assert.ok(v && Object.prototype.hasOwnProperty.call(v, k), f + ': S' + m[1] + ' is not defined');
        v = v[k];
      }
    }
  }
});

test('no module but strings.mjs writes words for people', () => {
  const sentence = /(['"`])([A-Z][a-z]+(?: [A-Za-z][\w-]*)+[^'"`\n]*)\1/g;
  for (const f of modules) {
    for (const m of source(f).matchAll(sentence)) assert.fail(f + ' has its own text: ' + m[0]);
  }
});

test('the sign-in errors name no secret and blame no one', () => {
  for (const k of ['wrongLogin', 'passkeyRefused', 'sessionEnded', 'busy', 'lockedOut', 'network']) {
    const t = typeof S.err[k] === 'function' ? S.err[k]('5 seconds') : S.err[k];
    assert.ok(t.length > 20 && /[.]$/.test(t), k);
  }
  // What was typed is kept: the words say so where it matters.
  assert.match(S.err.sessionEnded, /what you typed is still here/);
  assert.match(S.err.network, /what you typed is still here/);
  assert.match(S.err.busy('5 seconds'), /Nothing was lost/);
});
