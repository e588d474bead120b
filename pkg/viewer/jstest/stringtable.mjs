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

// generated tells a module generated from a published table (its first
// line is Go's mark of generated code, "// Code generated ... DO NOT
// EDIT."), such as cvx.mjs, the CDC's vaccine names: its words are the
// table's, not the page's, and a translation does not replace them.
const generatedMark = /^\/\/ Code generated .* DO NOT EDIT\.$/;
function generated(dir, f) {
  return generatedMark.test(readFileSync(new URL(f, dir), 'utf8').split('\n', 1)[0]);
}

// testStringTable registers the two tests for the modules of dir (a file
// URL ending in /) and their table S; generated modules are left out.
export function testStringTable(dir, S) {
  const modules = readdirSync(dir).filter((f) => f.endsWith('.mjs') && f !== 'strings.mjs' && !generated(dir, f));

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
