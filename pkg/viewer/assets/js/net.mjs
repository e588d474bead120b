// Fetching a link's manifest and files. Requests carry no credentials and
// no referrer; only https (or loopback http, for tests) is fetched.

import { S } from './strings.mjs';
import { ViewerError } from './errors.mjs';
import { unsupported, webURL } from './link.mjs';

async function request(url, init) {
  const u = webURL(url);
  if (!u) throw new ViewerError('server', S.err.notHTTPS);
  try {
    return await fetch(u.href, Object.assign({
      credentials: 'omit',
      cache: 'no-store',
      referrerPolicy: 'no-referrer',
      mode: 'cors',
      redirect: 'follow',
    }, init));
  } catch (e) {
    throw new ViewerError('network', S.err.network);
  }
}

async function checkStatus(resp) {
  if (resp.ok) return;
  if (resp.status === 401) {
    let remaining = null;
    try {
      const body = await resp.json();
      if (body && typeof body.remainingAttempts === 'number') remaining = Math.max(0, Math.floor(body.remainingAttempts));
    } catch (e) {
      // no body: the number of attempts is unknown
    }
    throw new ViewerError('passcode', S.err.passcode, { remaining });
  }
  if (resp.status === 404 || resp.status === 410) throw new ViewerError('unavailable', S.err.unavailable);
  if (resp.status === 429) throw new ViewerError('server', S.err.tooMany, { retry: true });
  throw new ViewerError('server', S.err.httpStatus(resp.status), { retry: resp.status >= 500 });
}

async function readJWE(resp) {
  const t = (await resp.text()).trim();
  if (!t) throw new ViewerError('format', S.err.emptyFile);
  return t;
}

// LOCATION_LIFETIME is how long after the manifest came its location
// URLs may be fetched: a receiver "SHALL NOT attempt to dereference a
// manifest's .files.location link more than one hour after requesting the
// manifest" (SMART Health Links STU1).
export const LOCATION_LIFETIME = 3600 * 1000;

// MANIFEST_REQUESTS is how often retrieve asks for a link's manifest: once,
// and once more when a location has expired or been consumed. A receiver
// "SHALL be capable of re-fetching the manifest to obtain fresh location
// links in the event that they have expired or been consumed" (STU1).
const MANIFEST_REQUESTS = 2;

// GONE are the answers of a location URL that has expired or been used
// up (signed URLs of cloud storage answer 403 once expired): a fresh
// manifest gives a fresh one. Other failures (5xx, the network) are the
// file's error; asking again would not help.
const GONE = new Set([403, 404, 410]);

// NO_LONGER_VALID is a manifest file's status when the sender withdrew
// the file; it is not fetched or shown, only noted (as phr's importer
// skips it: "the sender marked this file no longer valid").
export const NO_LONGER_VALID = 'no-longer-valid';

// locationGone marks a location that has expired or been consumed.
class LocationGone extends Error {
  constructor(status) {
    super('location gone');
    this.status = status;
  }
}

// retrieve returns the link's files as {contentType, fhirVersion, jwe},
// {withdrawn: true} for a file the sender marked no longer valid, or
// {error}. opts.now (milliseconds, Date.now by default) is the clock of
// the location's one-hour limit. A link of a later version is refused
// before any request.
export async function retrieve(link, recipient, passcode, opts = {}) {
  if (unsupported(link)) throw new ViewerError('version', S.err.version);
  const now = opts.now || Date.now;
  if (link.flag.includes('U')) {
    const u = link.url + (link.url.includes('?') ? '&' : '?') + 'recipient=' + encodeURIComponent(recipient);
    const resp = await request(u, { method: 'GET', headers: { Accept: 'application/jose' } });
    await checkStatus(resp);
    return [{ contentType: '', jwe: await readJWE(resp) }];
  }
  for (let n = 1; ; n++) {
    try {
      return await manifestOnce(link, recipient, passcode, now, n === MANIFEST_REQUESTS);
    } catch (e) {
      if (!(e instanceof LocationGone)) throw e;
    }
  }
}

// manifestOnce asks for the manifest and fetches the files it lists. A
// location that has expired or been consumed throws LocationGone, unless
// last: then it is that file's error.
async function manifestOnce(link, recipient, passcode, now, last) {
  const body = { recipient };
  if (link.flag.includes('P')) body.passcode = passcode;
  const resp = await request(link.url, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
    body: JSON.stringify(body),
  });
  await checkStatus(resp);
  let manifest;
  try {
    manifest = await resp.json();
  } catch (e) {
    throw new ViewerError('server', S.err.notManifest);
  }
  const got = now();
  // status and fhirVersion are properties of each file (STU1's
  // ShlManifest); a top-level status is not read.
  if (!manifest || !Array.isArray(manifest.files)) throw new ViewerError('server', S.err.notManifest);
  const out = [];
  for (const f of manifest.files) {
    if (!f || typeof f !== 'object') continue;
    if (f.status === NO_LONGER_VALID) {
      out.push({ withdrawn: true });
      continue;
    }
    const contentType = typeof f.contentType === 'string' ? f.contentType : '';
    const fhirVersion = typeof f.fhirVersion === 'string' ? f.fhirVersion : '';
    if (typeof f.embedded === 'string' && f.embedded) {
      out.push({ contentType, fhirVersion, jwe: f.embedded });
    } else if (typeof f.location === 'string' && f.location) {
      try {
        if (now() - got >= LOCATION_LIFETIME) throw new LocationGone(0);
        const r = await request(f.location, { method: 'GET', headers: { Accept: 'application/jose' } });
        if (GONE.has(r.status)) throw new LocationGone(r.status);
        if (!r.ok) throw new ViewerError('file', S.err.fileStatus(r.status));
        out.push({ contentType, fhirVersion, jwe: await readJWE(r) });
      } catch (e) {
        if (e instanceof LocationGone) {
          if (!last) throw e;
          out.push({ error: e.status ? S.err.fileStatus(e.status) : S.err.fileTooOld });
        } else {
          out.push({ error: e instanceof ViewerError && e.kind !== 'network' ? e.message : S.err.fileDownload });
        }
      }
    }
  }
  if (out.length === 0) throw new ViewerError('server', S.err.noFiles);
  return out;
}
