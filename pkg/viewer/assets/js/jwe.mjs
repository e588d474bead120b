// Decrypting a share's files: compact JWE (alg dir, enc A256GCM, zip
// DEF) with WebCrypto, raw DEFLATE with DecompressionStream, and the
// FHIR or SMART Health Card content inside. Runs in the browser and in
// node 20 alike (jstest/jwe.test.mjs decrypts the shared test vectors).

import { S } from './strings.mjs';
import { ViewerError, messageOf } from './errors.mjs';
import { b64urlBytes } from './link.mjs';
import { Index, str } from './fhir.mjs';

export const MAX_PLAINTEXT = 64 * 1024 * 1024; // bytes per decrypted, decompressed file

const utf8 = new TextDecoder('utf-8');

function ascii(s) {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i) & 0x7f;
  return out;
}

export async function inflateRaw(bytes, limit = MAX_PLAINTEXT) {
  const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream('deflate-raw'));
  const reader = stream.getReader();
  const chunks = [];
  let total = 0;
  for (;;) {
    let r;
    try {
      r = await reader.read();
    } catch (e) {
      throw new ViewerError('format', S.err.badCompression);
    }
    if (r.done) break;
    total += r.value.length;
    if (total > limit) {
      reader.cancel().catch(() => {});
      throw new ViewerError('format', S.err.tooLarge);
    }
    chunks.push(r.value);
  }
  const out = new Uint8Array(total);
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.length;
  }
  return out;
}

export async function importKey(raw) {
  return crypto.subtle.importKey('raw', raw, { name: 'AES-GCM' }, false, ['decrypt']);
}

// decryptJWE returns {cty, bytes} of one compact JWE.
export async function decryptJWE(jwe, cryptoKey) {
  const parts = String(jwe).trim().split('.');
  if (parts.length !== 5 || parts[1] !== '') throw new ViewerError('format', S.err.notJWE);
  const [hb64, , ivb64, ctb64, tagb64] = parts;
  let header;
  let iv;
  let ct;
  let tag;
  try {
    header = JSON.parse(utf8.decode(b64urlBytes(hb64)));
    iv = b64urlBytes(ivb64);
    ct = b64urlBytes(ctb64);
    tag = b64urlBytes(tagb64);
  } catch (e) {
    throw new ViewerError('format', S.err.notJWE);
  }
  if (!header || typeof header !== 'object' || header.alg !== 'dir' || header.enc !== 'A256GCM' ||
      ('zip' in header && header.zip !== 'DEF') || 'crit' in header) {
    throw new ViewerError('format', S.err.unsupportedJWE);
  }
  if (iv.length !== 12 || tag.length !== 16) throw new ViewerError('format', S.err.notJWE);
  const sealed = new Uint8Array(ct.length + tag.length);
  sealed.set(ct);
  sealed.set(tag, ct.length);
  let plain;
  try {
    plain = new Uint8Array(await crypto.subtle.decrypt(
      { name: 'AES-GCM', iv, additionalData: ascii(hb64), tagLength: 128 }, cryptoKey, sealed));
  } catch (e) {
    throw new ViewerError('decrypt', S.err.decrypt);
  }
  if (header.zip === 'DEF') plain = await inflateRaw(plain);
  if (plain.length > MAX_PLAINTEXT) throw new ViewerError('format', S.err.tooLarge);
  return { cty: str(header.cty), bytes: plain };
}

export function mediaType(ct) {
  return String(ct || '').split(';')[0].trim().toLowerCase();
}

// decodeFiles decrypts every file and gathers its FHIR resources:
// {index, cards, notices, errors, withdrawn, bundles, made}. withdrawn
// counts the files the sender marked no longer valid (not fetched, not
// shown: retrieve's {withdrawn: true}). bundles are the FHIR
// JSON files as decrypted (for "Download FHIR"); made is the timestamp
// of the first shared Bundle that has one: when the share's content was
// put together.
export async function decodeFiles(files, cryptoKey) {
  const data = { index: new Index(), cards: [], notices: [], errors: [], withdrawn: 0, bundles: [], made: '' };
  let scope = 0;
  for (const f of files) {
    if (f.error) {
      data.errors.push(f.error);
      continue;
    }
    if (f.withdrawn) {
      data.withdrawn++;
      continue;
    }
    // The manifest's fhirVersion of the file: the viewer reads FHIR R4
    // (4.x, as phr's SMART Health Card importer accepts); a file that says
    // it is another version is shown with a notice, since fields may have
    // moved or changed meaning.
    if (f.fhirVersion && !/^4\./.test(f.fhirVersion)) data.notices.push(S.notice.fhirVersion(f.fhirVersion.slice(0, 40)));
    try {
      const { cty, bytes } = await decryptJWE(f.jwe, cryptoKey);
      let type = mediaType(f.contentType || cty);
      if (type === 'application/smart-api-access') {
        data.notices.push(S.notice.apiAccess);
        continue;
      }
      const obj = JSON.parse(utf8.decode(bytes));
      if (!type) type = obj && Array.isArray(obj.verifiableCredential) ? 'application/smart-health-card' : 'application/fhir+json';
      if (type === 'application/fhir+json' || type === 'application/json') {
        if (!obj || typeof obj.resourceType !== 'string') throw new ViewerError('format', S.err.notFHIR);
        data.index.collect(obj, ++scope);
        data.bundles.push(bytes);
        if (!data.made && obj.resourceType === 'Bundle' && str(obj.timestamp)) data.made = str(obj.timestamp);
      } else if (type === 'application/smart-health-card') {
        await decodeSHC(obj, data, () => ++scope);
      } else {
        data.errors.push(S.err.unknownType(type));
      }
    } catch (e) {
      data.errors.push(messageOf(e));
    }
  }
  return data;
}

// decodeSHC reads a .smart-health-card file: each JWS payload is raw
// DEFLATE compressed JSON holding vc.credentialSubject.fhirBundle. The
// issuer's signature is not checked here.
export async function decodeSHC(obj, data, nextScope) {
  const list = obj && Array.isArray(obj.verifiableCredential) ? obj.verifiableCredential : null;
  if (!list) throw new ViewerError('format', S.err.shcNoList);
  for (const jws of list) {
    const parts = String(jws).split('.');
    if (parts.length !== 3) throw new ViewerError('format', S.err.shcNotJWS);
    let payload;
    try {
      const header = JSON.parse(utf8.decode(b64urlBytes(parts[0])));
      let bytes = b64urlBytes(parts[1]);
      if (header && header.zip === 'DEF') bytes = await inflateRaw(bytes);
      payload = JSON.parse(utf8.decode(bytes));
    } catch (e) {
      throw new ViewerError('format', S.err.shcUndecodable);
    }
    const bundle = payload && payload.vc && payload.vc.credentialSubject && payload.vc.credentialSubject.fhirBundle;
    if (!bundle || typeof bundle !== 'object') throw new ViewerError('format', S.err.shcNoBundle);
    data.index.collect(bundle, nextScope());
    data.bundles.push(new TextEncoder().encode(JSON.stringify(bundle, null, 2)));
    data.cards.push({ iss: str(payload.iss), nbf: typeof payload.nbf === 'number' ? payload.nbf : 0 });
  }
}
