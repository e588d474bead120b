// The manifest and its files as SMART Health Links STU1 asks receivers to
// read them (the same rules as pkg/share's Retrieve): status and
// fhirVersion per file, a top-level status ignored, the manifest asked for
// once more when a location has expired or been consumed (403, 404, 410)
// or is an hour old, never for a 5xx, and a later link version refused
// before any request. fetch is replaced by a small host in memory.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LOCATION_LIFETIME, retrieve } from '../assets/js/net.mjs';
import { ViewerError } from '../assets/js/errors.mjs';

const MANIFEST = 'https://shl.example.org/manifest/abc';
const link = (extra) => Object.assign({ url: MANIFEST, key: new Uint8Array(32), exp: null, flag: '', label: '', v: 1 }, extra);

// host answers the n-th manifest request (from 1) with manifests(n), and
// each location with locations[url](n) (a status, or a JWE string). It
// records every request as "POST manifest" or "GET url".
function host(manifests, locations = {}) {
  const log = [];
  let n = 0;
  const fetch = async (url, init) => {
    if (url === MANIFEST) {
      assert.equal(init.method, 'POST');
      log.push('POST manifest');
      n++;
      return new Response(JSON.stringify(manifests(n)), { status: 200, headers: { 'Content-Type': 'application/json' } });
    }
    log.push('GET ' + url);
    const answer = locations[url] ? locations[url](n) : 404;
    return typeof answer === 'number' ? new Response('', { status: answer }) : new Response(answer, { status: 200 });
  };
  return { fetch, log };
}

async function withFetch(fake, fn) {
  const saved = globalThis.fetch;
  globalThis.fetch = fake;
  try {
    return await fn();
  } finally {
    globalThis.fetch = saved;
  }
}

const loc = (n) => 'https://files.example.org/f' + n;

test('retrieve asks for the manifest again when a location has expired or been consumed', async () => {
  // Each manifest gives the file a fresh location: the n-th one is good
  // only while it is the newest (the way one-time or signed URLs behave).
  const manifests = (n) => ({ files: [
    { contentType: 'application/fhir+json', embedded: 'EMBEDDED' },
    { contentType: 'application/fhir+json', location: loc(n) },
  ] });
  for (const [name, first, wantLog, want] of [
    ['404', 404, ['POST manifest', 'GET ' + loc(1), 'POST manifest', 'GET ' + loc(2)], 'JWE-2'],
    ['403', 403, ['POST manifest', 'GET ' + loc(1), 'POST manifest', 'GET ' + loc(2)], 'JWE-2'],
    ['410', 410, ['POST manifest', 'GET ' + loc(1), 'POST manifest', 'GET ' + loc(2)], 'JWE-2'],
    ['500 is the file\'s error, not a reason to ask again', 500, ['POST manifest', 'GET ' + loc(1)], { error: 'A shared file could not be downloaded (HTTP 500).' }],
    ['503 likewise', 503, ['POST manifest', 'GET ' + loc(1)], { error: 'A shared file could not be downloaded (HTTP 503).' }],
  ]) {
    const locations = { [loc(1)]: (n) => (n === 1 ? first : 410), [loc(2)]: (n) => (n === 2 ? 'JWE-2' : 404) };
    const h = host(manifests, locations);
    const files = await withFetch(h.fetch, () => retrieve(link(), 'Dr. Test', ''));
    assert.deepEqual(h.log, wantLog, name);
    assert.equal(files.length, 2, name);
    assert.deepEqual(files[0], { contentType: 'application/fhir+json', fhirVersion: '', jwe: 'EMBEDDED' }, name);
    assert.deepEqual(files[1], typeof want === 'string' ? { contentType: 'application/fhir+json', fhirVersion: '', jwe: want } : want, name);
  }
});

test('retrieve asks for the manifest once more only', async () => {
  const h = host(() => ({ files: [{ contentType: 'application/fhir+json', location: loc(9) }] }), { [loc(9)]: () => 404 });
  const files = await withFetch(h.fetch, () => retrieve(link({ flag: 'P' }), 'Dr. Test', '1234'));
  assert.deepEqual(h.log, ['POST manifest', 'GET ' + loc(9), 'POST manifest', 'GET ' + loc(9)]);
  assert.deepEqual(files, [{ error: 'A shared file could not be downloaded (HTTP 404).' }]);
});

test('retrieve does not fetch a location more than an hour after the manifest came', async () => {
  // The clock passes an hour while the first file is fetched: the second
  // location is not requested; a new manifest is, and its files fetched.
  let clock = 0;
  const manifests = (n) => ({ files: [
    { contentType: 'application/fhir+json', location: loc(10 * n + 1) },
    { contentType: 'application/fhir+json', location: loc(10 * n + 2) },
  ] });
  const jwe = (url) => () => {
    if (url === loc(11)) clock += LOCATION_LIFETIME;
    return 'JWE ' + url;
  };
  const locations = Object.fromEntries([11, 12, 21, 22].map((i) => [loc(i), jwe(loc(i))]));
  const h = host(manifests, locations);
  const files = await withFetch(h.fetch, () => retrieve(link(), 'Dr. Test', '', { now: () => clock }));
  assert.deepEqual(h.log, ['POST manifest', 'GET ' + loc(11), 'POST manifest', 'GET ' + loc(21), 'GET ' + loc(22)]);
  assert.deepEqual(files.map((f) => f.jwe), ['JWE ' + loc(21), 'JWE ' + loc(22)]);
});

test('retrieve reads status and fhirVersion per file and ignores a top-level status', async () => {
  const h = host(() => ({
    status: 'no-longer-valid', // not a manifest property in STU1: ignored
    files: [
      { contentType: 'application/fhir+json', embedded: 'A', status: 'finalized', fhirVersion: '4.0.1' },
      { contentType: 'application/fhir+json', location: loc(1), status: 'no-longer-valid', fhirVersion: '4.0.1' },
      { contentType: 'application/smart-health-card', embedded: 'B', status: 'no-longer-valid' },
      { contentType: 'application/fhir+json', embedded: 'C', status: 'can-change', fhirVersion: 5 },
      { contentType: 'application/fhir+json', location: loc(2), fhirVersion: '5.0.0' },
    ],
  }), { [loc(1)]: () => 'WITHDRAWN', [loc(2)]: () => 'D' });
  const files = await withFetch(h.fetch, () => retrieve(link(), 'Dr. Test', ''));
  assert.deepEqual(h.log, ['POST manifest', 'GET ' + loc(2)]); // a withdrawn file is not fetched
  assert.deepEqual(files, [
    { contentType: 'application/fhir+json', fhirVersion: '4.0.1', jwe: 'A' },
    { withdrawn: true },
    { withdrawn: true },
    { contentType: 'application/fhir+json', fhirVersion: '', jwe: 'C' },
    { contentType: 'application/fhir+json', fhirVersion: '5.0.0', jwe: 'D' },
  ]);
});

test('retrieve refuses a link of a later version before any request', async () => {
  for (const flag of ['', 'P', 'U']) {
    const h = host(() => ({ files: [{ contentType: 'application/fhir+json', embedded: 'A' }] }));
    await withFetch(h.fetch, () => assert.rejects(retrieve(link({ v: 2, flag }), 'Dr. Test', ''),
      (e) => e instanceof ViewerError && e.kind === 'version' && /newer version/.test(e.message)));
    assert.deepEqual(h.log, [], flag);
  }
});
