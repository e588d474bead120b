// SMART Health Links: the shlink:/ payload, checked before anything is
// fetched. Pure; tested with node (jstest/link.test.mjs).

import { S } from './strings.mjs';
import { ViewerError } from './errors.mjs';

const utf8 = new TextDecoder('utf-8');

export function b64urlBytes(s) {
  if (typeof s !== 'string' || !/^[A-Za-z0-9_-]*$/.test(s) || s.length % 4 === 1) {
    throw new ViewerError('format', 'not base64url');
  }
  let b = s.replace(/-/g, '+').replace(/_/g, '/');
  while (b.length % 4) b += '=';
  return binBytes(atob(b));
}

export function b64Bytes(s) {
  return binBytes(atob(String(s).replace(/\s+/g, '')));
}

function binBytes(bin) {
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

export function isLoopback(host) {
  host = host.toLowerCase();
  return host === 'localhost' || host === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

// webURL accepts https URLs, and http only for loopback hosts (tests).
export function webURL(s) {
  let u;
  try {
    u = new URL(s);
  } catch (e) {
    return null;
  }
  if (u.protocol === 'https:' || (u.protocol === 'http:' && isLoopback(u.hostname))) return u;
  return null;
}

// parseLink finds "shlink:/" in text (a bare link or any URL holding
// one, such as a viewer link), decodes and checks the payload. It returns
// {url, key (32 bytes), exp (Unix seconds, 0 for none), flag, label}.
export function parseLink(text) {
  text = String(text || '').trim();
  const i = text.toLowerCase().lastIndexOf('shlink:/');
  if (i < 0) throw new ViewerError('malformed', S.link.noLink);
  const enc = text.slice(i + 8).replace(/=+$/, '');
  if (!enc) throw new ViewerError('malformed', S.link.empty);
  if (!/^[A-Za-z0-9_-]+$/.test(enc)) throw new ViewerError('malformed', S.link.badChars);
  let p;
  try {
    p = JSON.parse(utf8.decode(b64urlBytes(enc)));
  } catch (e) {
    throw new ViewerError('malformed', S.link.undecodable);
  }
  if (!p || typeof p !== 'object' || Array.isArray(p)) throw new ViewerError('malformed', S.link.notPayload);
  if (typeof p.url !== 'string' || !webURL(p.url)) throw new ViewerError('malformed', S.link.noURL);
  if (typeof p.key !== 'string' || !/^[A-Za-z0-9_-]{43}$/.test(p.key)) throw new ViewerError('malformed', S.link.badKey);
  if (p.exp !== undefined && p.exp !== null && (typeof p.exp !== 'number' || !isFinite(p.exp) || p.exp < 0)) {
    throw new ViewerError('malformed', S.link.badExp);
  }
  const flag = p.flag === undefined || p.flag === null ? '' : p.flag;
  if (typeof flag !== 'string' || !/^L?P?U?$/.test(flag) || (flag.includes('P') && flag.includes('U'))) {
    throw new ViewerError('malformed', S.link.badFlag);
  }
  if (p.v !== undefined && p.v !== null && p.v !== 1) throw new ViewerError('malformed', S.link.newerVersion);
  const label = typeof p.label === 'string' ? p.label.slice(0, 80) : '';
  const key = b64urlBytes(p.key);
  if (key.length !== 32) throw new ViewerError('malformed', S.link.keyLength);
  return { url: p.url, key, exp: typeof p.exp === 'number' ? p.exp : 0, flag, label };
}
