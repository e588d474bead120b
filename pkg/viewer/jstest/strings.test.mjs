// All user-visible strings live in strings.mjs: every S.name the modules
// use exists, and no other module holds a sentence of its own.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { S } from '../assets/js/strings.mjs';

const dir = new URL('../assets/js/', import.meta.url);
const modules = readdirSync(dir).filter((f) => f.endsWith('.mjs') && f !== 'strings.mjs');

function source(f) {
  // Comments are not shown to anyone.
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
  // A quoted literal with two words or more, starting with a capital
  // letter, is text for a reader.
  const sentence = /(['"`])([A-Z][a-z]+(?: [A-Za-z][\w-]*)+[^'"`\n]*)\1/g;
  for (const f of modules) {
    for (const m of source(f).matchAll(sentence)) {
      assert.fail(f + ' has its own text: ' + m[0]);
    }
  }
});
