import { test } from 'node:test';
import assert from 'node:assert/strict';
import { expired, parseLink, unsupported, webURL } from '../assets/js/link.mjs';
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
  const bare = parseLink(link({ url: 'http://127.0.0.1:8080/m', key: KEY }));
  assert.equal(bare.exp, null); // no expiry
  assert.equal(bare.v, 1);
  assert.equal(expired(bare), false);
});

// The receiver rules of SMART Health Links STU1, as pkg/share's Decode
// reads others' links: flags the viewer does not know are ignored, exp is
// any JSON number, a later v keeps its label and is refused before any
// request (net.test.mjs), keys are 43 characters.
test('parseLink ignores flag letters it does not know and keeps the L, P, U rules', () => {
  for (const [flag, want] of [
    ['', ''], ['L', 'L'], ['LP', 'LP'], ['LU', 'LU'], ['X', ''], ['LX', 'L'], ['XPZ', 'P'], ['LPQ', 'LP'],
    ['AL', 'L'], ['U\u00e9', 'U'], ['LXPY', 'LP'],
  ]) {
    assert.equal(parseLink(link({ url: 'https://example.org/m', key: KEY, flag: JSON.parse('"' + flag + '"') })).flag, want, flag);
  }
  for (const flag of ['PU', 'LPU', 'PXU', 'PL', 'LL', 'UL', 7, ['L']]) {
    assert.throws(() => parseLink(link({ url: 'https://example.org/m', key: KEY, flag })),
      (e) => e instanceof ViewerError && e.kind === 'malformed' && /flags/.test(e.message), String(flag));
  }
});

test('parseLink reads exp as any JSON number and expired compares it as one', () => {
  for (const [json, exp, now, isExpired] of [
    ['1900000000', 1900000000, 1899999999999, false],
    ['1900000000.5', 1900000000.5, 1900000000499, false],
    ['1900000000.5', 1900000000.5, 1900000000500, true],
    ['1.9e9', 1900000000, 1900000000000, true],
    ['1.9E+9', 1900000000, 1899999999999, false],
    ['0', 0, 1, true], // the epoch: long past, not "no expiry"
    ['0.25', 0.25, 250, true],
  ]) {
    const text = 'shlink:/' + b64url('{"url":"https://example.org/m","key":"' + KEY + '","exp":' + json + '}');
    const l = parseLink(text);
    assert.equal(l.exp, exp, json);
    assert.equal(expired(l, now), isExpired, json + ' at ' + now);
  }
});

test('parseLink keeps the label of a later version for the page to refuse', () => {
  const l = parseLink(link({ url: 'https://example.org/m', key: KEY, v: 2, label: 'Visit summary', flag: 'P' }));
  assert.equal(l.v, 2);
  assert.equal(l.label, 'Visit summary');
  assert.ok(unsupported(l));
  assert.ok(!unsupported(parseLink(link({ url: 'https://example.org/m', key: KEY, v: 1 }))));
  assert.ok(!unsupported(parseLink(link({ url: 'https://example.org/m', key: KEY }))));
  for (const v of [0, -1, 1.5, '2', true]) {
    assert.throws(() => parseLink(link({ url: 'https://example.org/m', key: KEY, v })),
      (e) => e instanceof ViewerError && e.kind === 'malformed' && /version number/.test(e.message), String(v));
  }
});

test('parseLink refuses keys that are not 43 characters, saying so', () => {
  for (const [key, reason] of [
    [undefined, /no decryption key/],
    ['', /no decryption key/],
    [KEY.slice(0, 42), /has 42 characters; a SMART Health Link key has 43 \(32 bytes\)/],
    [KEY + 'A', /has 44 characters; a SMART Health Link key has 43/],
    [KEY.slice(0, 22), /has 22 characters/], // a 16-byte key
    [KEY.slice(0, 42) + '=', /characters a key cannot have/],
    [42, /characters a key cannot have/],
  ]) {
    assert.throws(() => parseLink(link({ url: 'https://example.org/m', key })),
      (e) => e instanceof ViewerError && e.kind === 'malformed' && reason.test(e.message), String(key));
  }
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
    [link({ url: 'https://example.org/m', key: 'short' }), /key has 5 characters/],
    [link({ url: 'https://example.org/m', key: KEY, exp: '2030' }), /expiry/],
    [link({ url: 'https://example.org/m', key: KEY, flag: 'PU' }), /flags/],
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
  const values = [null, 0, -1, 1.5, 2, 1900000000.5, 'x', '', [], {}, true, KEY, KEY.slice(1), 'https://example.org/m', 'LP', 'PU', 'LPX', 'XU', 1e308];
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
      assert.match(l.flag, /^L?P?U?$/);
      assert.ok(!(l.flag.includes('P') && l.flag.includes('U')));
      assert.ok(Number.isInteger(l.v) && l.v >= 1);
      assert.ok(l.exp === null || (typeof l.exp === 'number' && l.exp >= 0));
    } catch (e) {
      assert.ok(e instanceof ViewerError, 'input ' + JSON.stringify(text) + ' threw ' + e);
    }
  }
});
