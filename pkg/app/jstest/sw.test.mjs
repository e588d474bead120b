// The service worker caches the shell and nothing else: sw.js runs here
// in a sandbox with a stand-in `self`, the way phrd serves it (its marks
// replaced by the shell's list and a version).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import vm from 'node:vm';

const SHELL = ['/app/', '/app/app.css', '/app/js/main.mjs', '/app/manifest.webmanifest', '/app/vitals.json', '/view/js/dates.mjs'];

function load() {
  const src = readFileSync(new URL('../assets/sw.js', import.meta.url), 'utf8')
    .replace('__SHELL_VERSION__', 'v1').replace('__SHELL_FILES__', JSON.stringify(SHELL));
  const listeners = {};
  const self = { addEventListener: (t, f) => { listeners[t] = f; }, location: { origin: 'https://phr.example.org' } };
  vm.runInNewContext(src, { self, URL, caches: {}, fetch: () => new Promise(() => {}), Request: class {}, Response: {} });
  return { shell: self.__phrShell, listeners };
}

test('only the shell, by GET, without a query, from this origin', () => {
  const { shell, listeners } = load();
  const o = 'https://phr.example.org';
  assert.deepEqual(Object.keys(listeners).sort(), ['activate', 'fetch', 'install']);
  assert.equal(shell.CACHE, 'phr-shell-v1');
  for (const [url, method, want] of [
    [o + '/app/', 'GET', true],
    [o + '/app/js/main.mjs', 'GET', true],
    [o + '/view/js/dates.mjs', 'GET', true],
    [o + '/app/vitals.json', 'GET', true],
    [o + '/api/v1/records', 'GET', false],
    [o + '/api/v1/records?type=dose', 'GET', false],
    [o + '/api/v1/sessions', 'POST', false],
    [o + '/api/v1/shares', 'GET', false],
    [o + '/shl/abc', 'POST', false],
    [o + '/view', 'GET', false],
    [o + '/app/js/main.mjs?x=1', 'GET', false],
    [o + '/app/', 'POST', false],
    ['https://elsewhere.example/app/', 'GET', false],
    ['not a url', 'GET', false],
  ]) {
    assert.equal(shell.inShell(url, method, o), want, method + ' ' + url);
  }
});

test('a request outside the shell is left to the network', () => {
  const { listeners } = load();
  let answered = false;
  listeners.fetch({ request: { url: 'https://phr.example.org/api/v1/records', method: 'GET' }, respondWith: () => { answered = true; } });
  assert.equal(answered, false);
  listeners.fetch({ request: { url: 'https://phr.example.org/app/', method: 'GET' }, respondWith: () => { answered = true; }, waitUntil: () => {} });
  assert.equal(answered, true);
});
