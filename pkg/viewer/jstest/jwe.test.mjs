// Decrypting the SMART Health Links vectors of the specification
// (../shared/testdata/shl) with the same code the browser runs.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeFiles, decryptJWE, importKey } from '../assets/js/jwe.mjs';
import { b64urlBytes } from '../assets/js/link.mjs';
import { ViewerError } from '../assets/js/errors.mjs';
import { readJSON, readShared } from './helpers.mjs';

const KEY = 'rxTgYlOaKJPFtcEd0qcceN8wEU4p94SqAwIWQe6uX7Q';

test('decryptJWE opens the IPS vector', async () => {
  const key = await importKey(b64urlBytes(KEY));
  const { bytes } = await decryptJWE(readShared('shl/ips-enc.txt'), key);
  assert.deepEqual(JSON.parse(new TextDecoder().decode(bytes)), readJSON('shl/ips.json'));
});

test('decodeFiles reads FHIR and SMART Health Card files', async () => {
  const key = await importKey(b64urlBytes(KEY));
  const data = await decodeFiles([
    { contentType: 'application/fhir+json', jwe: readShared('shl/ips-enc.txt') },
    { contentType: '', jwe: readShared('shl/spec-example-jwe.txt') },
    { error: 'A shared file could not be downloaded.' },
  ], key);
  assert.equal(data.made, '2017-12-11T14:30:00+01:00'); // the IPS bundle's timestamp
  assert.equal(data.cards.length, 1);
  assert.match(data.cards[0].iss, /spec\.smarthealth\.cards\/examples\/issuer/);
  assert.equal(data.bundles.length, 2); // the IPS file as shared, and the card's bundle
  assert.deepEqual(JSON.parse(new TextDecoder().decode(data.bundles[0])), readJSON('shl/ips.json'));
  assert.deepEqual(data.errors, ['A shared file could not be downloaded.']);
  assert.ok(data.index.of('Patient').length >= 2);
  assert.equal(data.index.of('Immunization').length, 3);
});

test('decryptJWE refuses a changed file and a wrong key', async () => {
  const jwe = readShared('shl/ips-enc.txt').trim();
  const key = await importKey(b64urlBytes(KEY));
  const parts = jwe.split('.');
  const ct = parts[3];
  parts[3] = (ct[0] === 'A' ? 'B' : 'A') + ct.slice(1);
  await assert.rejects(decryptJWE(parts.join('.'), key), (e) => e instanceof ViewerError && e.kind === 'decrypt');
  const other = await importKey(new Uint8Array(32));
  await assert.rejects(decryptJWE(jwe, other), (e) => e instanceof ViewerError && e.kind === 'decrypt');
  await assert.rejects(decryptJWE('a.b.c', key), (e) => e instanceof ViewerError && e.kind === 'format');
});

test('decodeFiles counts withdrawn files and notes a FHIR version other than R4', async () => {
  const key = await importKey(b64urlBytes(KEY));
  const ips = readShared('shl/ips-enc.txt');
  for (const [name, files, withdrawn, notices, patients] of [
    ['withdrawn files are counted, not read', [{ withdrawn: true }, { contentType: 'application/fhir+json', jwe: ips }, { withdrawn: true }], 2, [], 1],
    ['all withdrawn', [{ withdrawn: true }], 1, [], 0],
    ['R4 says nothing', [{ contentType: 'application/fhir+json', fhirVersion: '4.0.1', jwe: ips }], 0, [], 1],
    ['R4B says nothing', [{ contentType: 'application/fhir+json', fhirVersion: '4.3.0', jwe: ips }], 0, [], 1],
    ['R5 is shown with a notice', [{ contentType: 'application/fhir+json', fhirVersion: '5.0.0', jwe: ips }], 0,
      ['A shared file is FHIR version 5.0.0; this viewer reads FHIR R4 (4.x), so some details may be missing or read differently.'], 1],
  ]) {
    const data = await decodeFiles(files, key);
    assert.equal(data.withdrawn, withdrawn, name);
    assert.deepEqual(data.notices, notices, name);
    assert.deepEqual(data.errors, [], name);
    assert.equal(data.index.of('Patient').length, patients, name);
  }
});
