// All the app's words live in strings.mjs: every S.name the modules use
// exists, and no other module holds a sentence of its own.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { S } from '../assets/js/strings.mjs';
import { testStringTable } from '../../viewer/jstest/stringtable.mjs';

testStringTable(new URL('../assets/js/', import.meta.url), S);

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
