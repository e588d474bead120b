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

// KNOWN_FLAGS are the flag letters this viewer acts on. A receiver "SHALL
// ignore flag values they don't recognize" (SMART Health Links STU1), so
// other characters are skipped; the rules hold for the letters it knows.
const KNOWN_FLAGS = 'LPU';

// VERSION is the newest payload version (v) this viewer reads.
export const VERSION = 1;

// readFlag returns the known letters of a payload's flag, checked: in
// alphabetical order, without repeats, never U with P. Anything else in
// the string is ignored.
function readFlag(raw) {
  if (raw === undefined || raw === null) return '';
  if (typeof raw !== 'string') throw new ViewerError('malformed', S.link.badFlag);
  let flag = '';
  for (const c of raw) {
    if (!KNOWN_FLAGS.includes(c)) continue;
    if (flag && c <= flag[flag.length - 1]) throw new ViewerError('malformed', S.link.badFlag);
    flag += c;
  }
  if (flag.includes('P') && flag.includes('U')) throw new ViewerError('malformed', S.link.badFlag);
  return flag;
}

// parseLink finds "shlink:/" in text (a bare link or any URL holding
// one, such as a viewer link), decodes and checks the payload. It returns
// {url, key (32 bytes), exp (Unix seconds, any JSON number; null for
// none), flag (the known letters), label, v}. A v above VERSION is
// returned, not refused, so that the page can show the label and say the
// version is not supported (unsupported); nothing is fetched for it.
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
  if (p.key === undefined || p.key === null || p.key === '') throw new ViewerError('malformed', S.link.noKey);
  if (typeof p.key !== 'string' || !/^[A-Za-z0-9_-]*$/.test(p.key)) throw new ViewerError('malformed', S.link.badKey);
  if (p.key.length !== 43) throw new ViewerError('malformed', S.link.keyChars(p.key.length));
  if (p.exp !== undefined && p.exp !== null && (typeof p.exp !== 'number' || !isFinite(p.exp) || p.exp < 0)) {
    throw new ViewerError('malformed', S.link.badExp);
  }
  const flag = readFlag(p.flag);
  const v = p.v === undefined || p.v === null ? VERSION : p.v;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw new ViewerError('malformed', S.link.badVersion);
  const label = typeof p.label === 'string' ? p.label.slice(0, 80) : '';
  const key = b64urlBytes(p.key);
  if (key.length !== 32) throw new ViewerError('malformed', S.link.keyLength);
  return { url: p.url, key, exp: typeof p.exp === 'number' ? p.exp : null, flag, label, v };
}

// unsupported tells a link of a later protocol version than this viewer
// reads: the page shows its label and says so, and fetches nothing.
export function unsupported(link) {
  return link.v > VERSION;
}

// expired tells whether the link's exp (seconds, fractions compared as
// such) is at or before now (milliseconds, Date.now() by default). A link
// without exp never expires; exp 0 is the epoch, long past.
export function expired(link, now = Date.now()) {
  return typeof link.exp === 'number' && link.exp * 1000 <= now;
}
