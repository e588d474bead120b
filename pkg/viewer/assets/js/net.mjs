// Fetching a link's manifest and files. Requests carry no credentials and
// no referrer; only https (or loopback http, for tests) is fetched.

import { S } from './strings.mjs';
import { ViewerError } from './errors.mjs';
import { webURL } from './link.mjs';

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

// retrieve returns the link's files as {contentType, jwe} or {error}.
export async function retrieve(link, recipient, passcode) {
  if (link.flag.includes('U')) {
    const u = link.url + (link.url.includes('?') ? '&' : '?') + 'recipient=' + encodeURIComponent(recipient);
    const resp = await request(u, { method: 'GET', headers: { Accept: 'application/jose' } });
    await checkStatus(resp);
    return [{ contentType: '', jwe: await readJWE(resp) }];
  }
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
  if (!manifest || !Array.isArray(manifest.files)) throw new ViewerError('server', S.err.notManifest);
  const out = [];
  for (const f of manifest.files) {
    if (!f || typeof f !== 'object') continue;
    const contentType = typeof f.contentType === 'string' ? f.contentType : '';
    if (typeof f.embedded === 'string' && f.embedded) {
      out.push({ contentType, jwe: f.embedded });
    } else if (typeof f.location === 'string' && f.location) {
      try {
        const r = await request(f.location, { method: 'GET', headers: { Accept: 'application/jose' } });
        if (!r.ok) throw new ViewerError('file', S.err.fileStatus(r.status));
        out.push({ contentType, jwe: await readJWE(r) });
      } catch (e) {
        out.push({ error: e instanceof ViewerError && e.kind !== 'network' ? e.message : S.err.fileDownload });
      }
    }
  }
  if (out.length === 0) throw new ViewerError('server', S.err.noFiles);
  return out;
}
