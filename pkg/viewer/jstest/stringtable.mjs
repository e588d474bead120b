// The check of a page's string table, shared by the viewer's and the
// app's node tests: all user-visible strings live in strings.mjs, so every
// S.name the modules of dir use exists in S, and no other module holds a
// sentence of its own.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';

// source is a module's code without its comments: comments are not shown
// to anyone.
function source(dir, f) {
  return readFileSync(new URL(f, dir), 'utf8').replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '').replace(/\s\/\/ .*$/gm, '');
}

// testStringTable registers the two tests for the modules of dir (a file
// URL ending in /) and their table S.
export function testStringTable(dir, S) {
  const modules = readdirSync(dir).filter((f) => f.endsWith('.mjs') && f !== 'strings.mjs');

  test('every string the modules use is in the table', () => {
    for (const f of modules) {
      for (const m of source(dir, f).matchAll(/\bS((?:\.[A-Za-z_]\w*)+)/g)) {
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
      for (const m of source(dir, f).matchAll(sentence)) {
        assert.fail(f + ' has its own text: ' + m[0]);
      }
    }
  });
}
