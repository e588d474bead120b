// WebAuthn's options and credentials between JSON and bytes.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { b64urlToBytes, bytesToB64url, creationOptions, requestOptions, credentialJSON, passkeyOrigin, supported } from '../assets/js/passkey.mjs';

test('base64url round trip, every length and byte', () => {
  for (let n = 0; n < 70; n++) {
    const b = Uint8Array.from({ length: n }, (_, i) => (i * 37 + n) & 255);
    const s = bytesToB64url(b);
    assert.doesNotMatch(s, /[+/=]/);
    assert.deepEqual(b64urlToBytes(s), b);
  }
  assert.equal(bytesToB64url(new Uint8Array([0xfb, 0xff])), '-_8');
});

test('creation options: challenge, user id and exclusions become bytes', () => {
  const o = creationOptions({ publicKey: {
    rp: { id: 'localhost', name: 'phr' }, user: { id: 'AQID', name: 'alice', displayName: 'alice' }, challenge: 'BAUG',
    pubKeyCredParams: [{ type: 'public-key', alg: -7 }], excludeCredentials: [{ type: 'public-key', id: 'Bwg' }],
    authenticatorSelection: { residentKey: 'required', userVerification: 'required' },
  } });
  assert.deepEqual(o.publicKey.user.id, new Uint8Array([1, 2, 3]));
  assert.deepEqual(o.publicKey.challenge, new Uint8Array([4, 5, 6]));
  assert.deepEqual(o.publicKey.excludeCredentials[0].id, new Uint8Array([7, 8]));
  assert.equal(o.publicKey.user.name, 'alice');
  assert.equal(o.publicKey.authenticatorSelection.residentKey, 'required');
});

test('request options', () => {
  const o = requestOptions({ publicKey: { challenge: 'BAUG', rpId: 'localhost', userVerification: 'required' } });
  assert.deepEqual(o.publicKey.challenge, new Uint8Array([4, 5, 6]));
  assert.equal(o.publicKey.allowCredentials, undefined);
});

test('a new credential and an assertion as JSON', () => {
  const buf = (...b) => new Uint8Array(b).buffer;
  const created = credentialJSON({
    id: 'AQ', rawId: buf(1), type: 'public-key', authenticatorAttachment: 'platform',
    response: { clientDataJSON: buf(2), attestationObject: buf(3), getTransports: () => ['internal'] },
    getClientExtensionResults: () => ({}),
  });
  assert.deepEqual(created, { id: 'AQ', rawId: 'AQ', type: 'public-key', authenticatorAttachment: 'platform',
    response: { clientDataJSON: 'Ag', attestationObject: 'Aw', transports: ['internal'] }, clientExtensionResults: {} });
  const asserted = credentialJSON({
    id: 'AQ', rawId: buf(1), type: 'public-key',
    response: { clientDataJSON: buf(2), authenticatorData: buf(4), signature: buf(5), userHandle: buf(6) },
  });
  assert.deepEqual(asserted.response, { clientDataJSON: 'Ag', authenticatorData: 'BA', signature: 'BQ', userHandle: 'Bg' });
  assert.deepEqual(asserted.clientExtensionResults, {});
});

test('passkeys at 127.0.0.1 belong to localhost', () => {
  assert.equal(passkeyOrigin({ hostname: '127.0.0.1', protocol: 'http:', port: '8080', pathname: '/app/' }), 'http://localhost:8080/app/');
  assert.equal(passkeyOrigin({ hostname: 'localhost', protocol: 'http:', port: '8080', pathname: '/app/' }), null);
  assert.equal(passkeyOrigin({ hostname: 'phr.example.org', protocol: 'https:', port: '', pathname: '/app/' }), null);
});

test('support needs the API and a secure context', () => {
  const nav = { credentials: {} };
  assert.equal(supported({ PublicKeyCredential: function () {}, isSecureContext: true, navigator: nav }), true);
  assert.equal(supported({ PublicKeyCredential: function () {}, isSecureContext: false, navigator: nav }), false);
  assert.equal(supported({ isSecureContext: true, navigator: nav }), false);
});
