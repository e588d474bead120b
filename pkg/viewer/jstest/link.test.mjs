import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseLink, webURL } from '../assets/js/link.mjs';
import { ViewerError } from '../assets/js/errors.mjs';
import { b64url, readShared } from './helpers.mjs';

const KEY = 'rxTgYlOaKJPFtcEd0qcceN8wEU4p94SqAwIWQe6uX7Q';
const link = (p) => 'shlink:/' + b64url(JSON.stringify(p));

test('parseLink reads a good link, bare or inside a viewer URL', () => {
  const p = { url: 'https://shl.example.org/manifest', key: KEY, exp: 1900000000, flag: 'LP', label: 'x'.repeat(100), v: 1 };
  for (const text of [link(p), 'https://viewer.example/view#' + link(p), '  ' + link(p) + '\n']) {
    const l = parseLink(text);
    assert.equal(l.url, p.url);
    assert.equal(l.key.length, 32);
    assert.equal(l.exp, 1900000000);
    assert.equal(l.flag, 'LP');
    assert.equal(l.label.length, 80);
  }
  assert.equal(parseLink(link({ url: 'http://127.0.0.1:8080/m', key: KEY })).exp, 0);
});

test('parseLink reads the specification example link', () => {
  const m = /shlink:\/[A-Za-z0-9_-]+/.exec(readShared('shl/README.md'));
  assert.ok(m, 'the example link is in shl/README.md');
  const l = parseLink(m[0]);
  assert.match(l.url, /^https:\/\//);
  assert.equal(l.key.length, 32);
});

test('parseLink refuses bad links with a reason', () => {
  for (const [text, reason] of [
    ['', /does not contain/],
    ['shlink:/', /Nothing follows/],
    ['shlink:/not*base64!', /characters/],
    ['shlink:/' + b64url('hello'), /cannot be decoded/],
    [link([1]), /not a link payload/],
    [link({ key: KEY }), /https address/],
    [link({ url: 'http://example.org/m', key: KEY }), /https address/], // http only for loopback
    [link({ url: 'https://example.org/m', key: 'short' }), /key/],
    [link({ url: 'https://example.org/m', key: KEY, exp: '2030' }), /expiry/],
    [link({ url: 'https://example.org/m', key: KEY, flag: 'PU' }), /flags/],
    [link({ url: 'https://example.org/m', key: KEY, flag: 'X' }), /flags/],
    [link({ url: 'https://example.org/m', key: KEY, v: 2 }), /newer version/],
  ]) {
    assert.throws(() => parseLink(text), (e) => e instanceof ViewerError && e.kind === 'malformed' && reason.test(e.message), text);
  }
});

test('webURL fetches https, and http only on loopback', () => {
  assert.ok(webURL('https://example.org/x'));
  assert.ok(webURL('http://localhost:1/x'));
  assert.ok(webURL('http://127.0.0.1/x'));
  assert.equal(webURL('http://example.org/x'), null);
  assert.equal(webURL('javascript:alert(1)'), null);
  assert.equal(webURL('not a url'), null);
});

test('parseLink fails only with a ViewerError on random input', () => {
  // A small fuzz: random text, random JSON payloads and mutated good
  // links. Seeded, so a failure repeats.
  let seed = 1;
  const rand = (n) => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed % n;
  };
  const chars = 'shlink:/ABCabc019-_=+/{}[]":,.#%\u00e9\u0000';
  const good = link({ url: 'https://example.org/m', key: KEY, exp: 1900000000, flag: 'P', label: 'x' });
  const values = [null, 0, -1, 1.5, 'x', '', [], {}, true, KEY, 'https://example.org/m', 'LP', 'PU', 1e308];
  for (let i = 0; i < 3000; i++) {
    let text;
    switch (i % 3) {
      case 0:
        text = Array.from({ length: rand(80) }, () => chars[rand(chars.length)]).join('');
        break;
      case 1: {
        const p = {};
        for (const k of ['url', 'key', 'exp', 'flag', 'label', 'v']) if (rand(3)) p[k] = values[rand(values.length)];
        text = link(p);
        break;
      }
      default: {
        const at = rand(good.length);
        text = good.slice(0, at) + chars[rand(chars.length)] + good.slice(at + rand(2));
      }
    }
    try {
      const l = parseLink(text);
      assert.equal(l.key.length, 32);
      assert.ok(webURL(l.url));
    } catch (e) {
      assert.ok(e instanceof ViewerError, 'input ' + JSON.stringify(text) + ' threw ' + e);
    }
  }
});
