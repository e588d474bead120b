// WebAuthn's binary members as JSON: phrd sends the options of
// navigator.credentials.create and .get with base64url strings where the
// browser wants bytes, and takes the new credential or the assertion back
// the same way. Pure functions (tested with node), plus the two calls
// that use the browser's authenticator.

export function b64urlToBytes(s) {
  const b64 = String(s).replace(/-/g, '+').replace(/_/g, '/');
  const bin = atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4));
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

export function bytesToB64url(buf) {
  const bytes = buf instanceof Uint8Array ? buf : new Uint8Array(buf);
  let bin = '';
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function descriptors(list) {
  return (list || []).map((d) => Object.assign({}, d, { id: b64urlToBytes(d.id) }));
}

// creationOptions turns the server's {"publicKey": {...}} for a new
// passkey into what navigator.credentials.create takes.
export function creationOptions(options) {
  const pk = Object.assign({}, options.publicKey);
  pk.challenge = b64urlToBytes(pk.challenge);
  pk.user = Object.assign({}, pk.user, { id: b64urlToBytes(pk.user.id) });
  if (pk.excludeCredentials) pk.excludeCredentials = descriptors(pk.excludeCredentials);
  return { publicKey: pk };
}

// requestOptions does the same for navigator.credentials.get.
export function requestOptions(options) {
  const pk = Object.assign({}, options.publicKey);
  pk.challenge = b64urlToBytes(pk.challenge);
  if (pk.allowCredentials) pk.allowCredentials = descriptors(pk.allowCredentials);
  const out = { publicKey: pk };
  if (options.mediation) out.mediation = options.mediation;
  return out;
}

// credentialJSON writes a PublicKeyCredential (a new one, or an
// assertion) as the JSON the server reads.
export function credentialJSON(cred) {
  const r = cred.response;
  const response = { clientDataJSON: bytesToB64url(r.clientDataJSON) };
  if (r.attestationObject) {
    response.attestationObject = bytesToB64url(r.attestationObject);
    if (typeof r.getTransports === 'function') response.transports = r.getTransports();
  } else {
    response.authenticatorData = bytesToB64url(r.authenticatorData);
    response.signature = bytesToB64url(r.signature);
    if (r.userHandle) response.userHandle = bytesToB64url(r.userHandle);
  }
  const out = {
    id: cred.id,
    rawId: bytesToB64url(cred.rawId),
    type: cred.type,
    response,
    clientExtensionResults: typeof cred.getClientExtensionResults === 'function' ? cred.getClientExtensionResults() : {},
  };
  if (cred.authenticatorAttachment) out.authenticatorAttachment = cred.authenticatorAttachment;
  return out;
}

// supported says whether this browser, on this page, can use passkeys.
export function supported(win) {
  return !!(win.PublicKeyCredential && win.isSecureContext && win.navigator.credentials);
}

// passkeyOrigin is where passkeys work when the page is not there: a
// relying party ID cannot be an IP address, so phrd's passkeys for
// 127.0.0.1 belong to localhost. It returns the URL to open instead, or
// null when this page is fine.
export function passkeyOrigin(loc) {
  const host = loc.hostname;
  if (/^127\.\d+\.\d+\.\d+$/.test(host) || host === '[::1]' || host === '::1') {
    return loc.protocol + '//localhost' + (loc.port ? ':' + loc.port : '') + loc.pathname;
  }
  return null;
}

export async function create(options) {
  return credentialJSON(await navigator.credentials.create(creationOptions(options)));
}

export async function get(options) {
  return credentialJSON(await navigator.credentials.get(requestOptions(options)));
}
