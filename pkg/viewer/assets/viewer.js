// phr SMART Health Link viewer.
//
// Reads the link from the URL fragment, fetches the manifest and files
// from the link's url, decrypts them here with WebCrypto, and renders the
// FHIR resources. Everything from the link, the server or the record is
// inserted as text (textContent, text nodes, attribute values we choose),
// never parsed as HTML.
'use strict';

(function () {
  const MAX_PLAINTEXT = 64 * 1024 * 1024; // bytes per decrypted, decompressed file
  const MAX_CHART_POINTS = 200;
  const SVGNS = 'http://www.w3.org/2000/svg';
  const SYMPTOM_CATEGORY = '418799008'; // SNOMED CT: Finding reported by subject or history provider

  const app = document.getElementById('app');
  const utf8 = new TextDecoder('utf-8');

  // ---------------------------------------------------------------- DOM

  // h builds an element. attrs values are set with setAttribute (never an
  // event handler: callers pass only fixed attribute names); children are
  // nodes or strings, and strings become text nodes.
  function h(tag, attrs, ...kids) {
    return build(document.createElement(tag), attrs, kids);
  }

  function svg(tag, attrs, ...kids) {
    return build(document.createElementNS(SVGNS, tag), attrs, kids);
  }

  function build(e, attrs, kids) {
    if (attrs) {
      for (const [k, v] of Object.entries(attrs)) {
        if (v === undefined || v === null || v === false) continue;
        e.setAttribute(k, v === true ? '' : String(v));
      }
    }
    for (const k of kids.flat(Infinity)) {
      if (k === undefined || k === null || k === false || k === '') continue;
      e.appendChild(k instanceof Node ? k : document.createTextNode(String(k)));
    }
    return e;
  }

  function show(state, ...nodes) {
    app.setAttribute('data-state', state);
    app.replaceChildren(...nodes);
    window.scrollTo(0, 0);
  }

  // ---------------------------------------------------------------- errors

  class ViewerError extends Error {
    constructor(kind, message, extra) {
      super(message);
      this.kind = kind;
      Object.assign(this, extra || {});
    }
  }

  function messageOf(e) {
    if (e instanceof ViewerError) return e.message;
    if (e instanceof SyntaxError) return 'A shared file is not valid JSON.';
    return 'A shared file could not be read.';
  }

  // ---------------------------------------------------------------- bytes

  function b64urlBytes(s) {
    if (typeof s !== 'string' || !/^[A-Za-z0-9_-]*$/.test(s) || s.length % 4 === 1) {
      throw new ViewerError('format', 'not base64url');
    }
    let b = s.replace(/-/g, '+').replace(/_/g, '/');
    while (b.length % 4) b += '=';
    return binBytes(atob(b));
  }

  function b64Bytes(s) {
    const b = String(s).replace(/\s+/g, '');
    return binBytes(atob(b));
  }

  function binBytes(bin) {
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }

  function ascii(s) {
    const out = new Uint8Array(s.length);
    for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i) & 0x7f;
    return out;
  }

  async function inflateRaw(bytes) {
    const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream('deflate-raw'));
    const reader = stream.getReader();
    const chunks = [];
    let total = 0;
    for (;;) {
      let r;
      try {
        r = await reader.read();
      } catch (e) {
        throw new ViewerError('format', 'A shared file is compressed incorrectly.');
      }
      if (r.done) break;
      total += r.value.length;
      if (total > MAX_PLAINTEXT) {
        reader.cancel();
        throw new ViewerError('format', 'A shared file is too large to show.');
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

  // ---------------------------------------------------------------- links

  function isLoopback(host) {
    host = host.toLowerCase();
    return host === 'localhost' || host === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
  }

  // webURL accepts https URLs, and http only for loopback hosts (tests).
  function webURL(s) {
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
  // one, such as a viewer link), decodes and checks the payload.
  function parseLink(text) {
    text = String(text || '').trim();
    const i = text.toLowerCase().lastIndexOf('shlink:/');
    if (i < 0) throw new ViewerError('malformed', 'It does not contain a SMART Health Link (the part starting with "shlink:/").');
    const enc = text.slice(i + 8).replace(/=+$/, '');
    if (!enc) throw new ViewerError('malformed', 'Nothing follows "shlink:/".');
    if (!/^[A-Za-z0-9_-]+$/.test(enc)) {
      throw new ViewerError('malformed', 'It contains characters a SMART Health Link cannot have. It may have been cut off or changed when it was copied.');
    }
    let p;
    try {
      p = JSON.parse(utf8.decode(b64urlBytes(enc)));
    } catch (e) {
      throw new ViewerError('malformed', 'Its content cannot be decoded. It may have been cut off when it was copied.');
    }
    if (!p || typeof p !== 'object' || Array.isArray(p)) throw new ViewerError('malformed', 'Its content is not a link payload.');
    if (typeof p.url !== 'string' || !webURL(p.url)) throw new ViewerError('malformed', 'It has no valid https address to fetch the record from.');
    if (typeof p.key !== 'string' || !/^[A-Za-z0-9_-]{43}$/.test(p.key)) throw new ViewerError('malformed', 'Its decryption key is missing or has the wrong length.');
    if (p.exp !== undefined && p.exp !== null && (typeof p.exp !== 'number' || !isFinite(p.exp) || p.exp < 0)) {
      throw new ViewerError('malformed', 'Its expiry time is not a number.');
    }
    const flag = p.flag === undefined || p.flag === null ? '' : p.flag;
    if (typeof flag !== 'string' || !/^L?P?U?$/.test(flag) || (flag.includes('P') && flag.includes('U'))) {
      throw new ViewerError('malformed', 'Its flags are not valid.');
    }
    if (p.v !== undefined && p.v !== null && p.v !== 1) {
      throw new ViewerError('malformed', 'It uses a newer version of the SMART Health Links protocol than this viewer understands.');
    }
    const label = typeof p.label === 'string' ? p.label.slice(0, 80) : '';
    const key = b64urlBytes(p.key);
    if (key.length !== 32) throw new ViewerError('malformed', 'Its decryption key is not 32 bytes.');
    return { url: p.url, key, exp: typeof p.exp === 'number' ? p.exp : 0, flag, label };
  }

  // ---------------------------------------------------------------- network

  async function request(url, init) {
    const u = webURL(url);
    if (!u) throw new ViewerError('server', 'The link points to an address this viewer does not fetch (only https).');
    try {
      return await fetch(u.href, Object.assign({
        credentials: 'omit',
        cache: 'no-store',
        referrerPolicy: 'no-referrer',
        mode: 'cors',
        redirect: 'follow',
      }, init));
    } catch (e) {
      throw new ViewerError('network', 'The server holding the record could not be reached.');
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
      throw new ViewerError('passcode', 'Wrong passcode', { remaining });
    }
    if (resp.status === 404 || resp.status === 410) throw new ViewerError('unavailable', 'The link is no longer available.');
    if (resp.status === 429) throw new ViewerError('server', 'The server is receiving too many requests. Wait a moment and try again.', { retry: true });
    throw new ViewerError('server', 'The server answered with an error (HTTP ' + resp.status + ').', { retry: resp.status >= 500 });
  }

  async function readJWE(resp) {
    const t = (await resp.text()).trim();
    if (!t) throw new ViewerError('format', 'The server sent an empty file.');
    return t;
  }

  // retrieve returns the link's files as {contentType, jwe} or {error}.
  async function retrieve(link, recipient, passcode) {
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
      throw new ViewerError('server', 'The server sent something that is not a SMART Health Link manifest.');
    }
    if (!manifest || !Array.isArray(manifest.files)) {
      throw new ViewerError('server', 'The server sent something that is not a SMART Health Link manifest.');
    }
    const out = [];
    for (const f of manifest.files) {
      if (!f || typeof f !== 'object') continue;
      const contentType = str(f.contentType);
      if (typeof f.embedded === 'string' && f.embedded) {
        out.push({ contentType, jwe: f.embedded });
      } else if (typeof f.location === 'string' && f.location) {
        try {
          const r = await request(f.location, { method: 'GET', headers: { Accept: 'application/jose' } });
          if (!r.ok) throw new ViewerError('file', 'A shared file could not be downloaded (HTTP ' + r.status + ').');
          out.push({ contentType, jwe: await readJWE(r) });
        } catch (e) {
          out.push({ error: e instanceof ViewerError && e.kind !== 'network' ? e.message : 'A shared file could not be downloaded.' });
        }
      }
    }
    if (out.length === 0) throw new ViewerError('server', 'The share contains no files.');
    return out;
  }

  // ---------------------------------------------------------------- JWE

  async function decryptJWE(jwe, cryptoKey) {
    const parts = String(jwe).trim().split('.');
    if (parts.length !== 5 || parts[1] !== '') throw new ViewerError('format', 'A shared file is not an encrypted SMART Health Link file.');
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
      throw new ViewerError('format', 'A shared file is not an encrypted SMART Health Link file.');
    }
    if (!header || typeof header !== 'object' || header.alg !== 'dir' || header.enc !== 'A256GCM' ||
        ('zip' in header && header.zip !== 'DEF') || 'crit' in header) {
      throw new ViewerError('format', 'A shared file uses an encryption this viewer does not support.');
    }
    if (iv.length !== 12 || tag.length !== 16) throw new ViewerError('format', 'A shared file is not an encrypted SMART Health Link file.');
    const sealed = new Uint8Array(ct.length + tag.length);
    sealed.set(ct);
    sealed.set(tag, ct.length);
    let plain;
    try {
      plain = new Uint8Array(await crypto.subtle.decrypt(
        { name: 'AES-GCM', iv, additionalData: ascii(hb64), tagLength: 128 }, cryptoKey, sealed));
    } catch (e) {
      throw new ViewerError('decrypt', 'A shared file could not be decrypted: the key in the link does not match it, or it was changed.');
    }
    if (header.zip === 'DEF') plain = await inflateRaw(plain);
    if (plain.length > MAX_PLAINTEXT) throw new ViewerError('format', 'A shared file is too large to show.');
    return { cty: str(header.cty), bytes: plain };
  }

  // ---------------------------------------------------------------- content

  function mediaType(ct) {
    return String(ct || '').split(';')[0].trim().toLowerCase();
  }

  // decodeFiles decrypts every file and gathers its FHIR resources.
  async function decodeFiles(files, cryptoKey) {
    const data = { index: new Index(), cards: [], notices: [], errors: [] };
    let scope = 0;
    for (const f of files) {
      if (f.error) {
        data.errors.push(f.error);
        continue;
      }
      try {
        const { cty, bytes } = await decryptJWE(f.jwe, cryptoKey);
        let type = mediaType(f.contentType || cty);
        const text = utf8.decode(bytes);
        if (type === 'application/smart-api-access') {
          data.notices.push('This share also grants access to a FHIR server; this viewer does not open it.');
          continue;
        }
        const obj = JSON.parse(text);
        if (!type) type = obj && Array.isArray(obj.verifiableCredential) ? 'application/smart-health-card' : 'application/fhir+json';
        if (type === 'application/fhir+json' || type === 'application/json') {
          if (!obj || typeof obj.resourceType !== 'string') throw new ViewerError('format', 'A shared file is not a FHIR resource.');
          data.index.collect(obj, ++scope);
        } else if (type === 'application/smart-health-card') {
          await decodeSHC(obj, data, () => ++scope);
        } else {
          data.errors.push('A shared file has a type this viewer cannot show: ' + type + '.');
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
  async function decodeSHC(obj, data, nextScope) {
    const list = obj && Array.isArray(obj.verifiableCredential) ? obj.verifiableCredential : null;
    if (!list) throw new ViewerError('format', 'A SMART Health Card file has no verifiableCredential list.');
    for (const jws of list) {
      const parts = String(jws).split('.');
      if (parts.length !== 3) throw new ViewerError('format', 'A SMART Health Card is not a valid JWS.');
      let payload;
      try {
        const header = JSON.parse(utf8.decode(b64urlBytes(parts[0])));
        let bytes = b64urlBytes(parts[1]);
        if (header && header.zip === 'DEF') bytes = await inflateRaw(bytes);
        payload = JSON.parse(utf8.decode(bytes));
      } catch (e) {
        throw new ViewerError('format', 'A SMART Health Card could not be decoded.');
      }
      const bundle = payload && payload.vc && payload.vc.credentialSubject && payload.vc.credentialSubject.fhirBundle;
      if (!bundle || typeof bundle !== 'object') throw new ViewerError('format', 'A SMART Health Card holds no FHIR bundle.');
      data.index.collect(bundle, nextScope());
      data.cards.push({ iss: str(payload.iss), nbf: typeof payload.nbf === 'number' ? payload.nbf : 0 });
    }
  }

  // Index holds the shared resources and resolves references between them.
  class Index {
    constructor() {
      this.all = [];
      this.byRef = new Map(); // "Type/id" -> resource
      this.byUrl = new Map(); // scope + " " + fullUrl -> resource
      this.scopeOf = new WeakMap();
      this.used = new WeakSet(); // resources rendered somewhere
    }

    collect(res, scope) {
      if (!res || typeof res !== 'object' || typeof res.resourceType !== 'string') return;
      if (res.resourceType === 'Bundle') {
        for (const e of arr(res.entry)) {
          if (!e || !e.resource || typeof e.resource !== 'object') continue;
          if (typeof e.fullUrl === 'string') this.byUrl.set(scope + ' ' + e.fullUrl, e.resource);
          this.collect(e.resource, scope);
        }
        return;
      }
      if (res.status === 'entered-in-error' || hasCode(res.verificationStatus, ['entered-in-error'])) return;
      this.all.push(res);
      this.scopeOf.set(res, scope);
      if (typeof res.id === 'string') this.byRef.set(res.resourceType + '/' + res.id, res);
    }

    of(...types) {
      return this.all.filter((r) => types.includes(r.resourceType));
    }

    resolve(ref, owner) {
      const s = ref && typeof ref.reference === 'string' ? ref.reference : '';
      if (!s) return null;
      if (s.startsWith('#')) {
        return arr(owner && owner.contained).find((c) => c && '#' + c.id === s) || null;
      }
      const scoped = this.byUrl.get(this.scopeOf.get(owner) + ' ' + s);
      if (scoped) return scoped;
      const m = /([A-Za-z]+\/[A-Za-z0-9\-.]{1,64})(\/_history\/.*)?$/.exec(s);
      return (m && this.byRef.get(m[1])) || null;
    }
  }

  // ---------------------------------------------------------------- FHIR text

  function arr(x) {
    return Array.isArray(x) ? x : x === undefined || x === null ? [] : [x];
  }

  function str(x) {
    return typeof x === 'string' ? x.trim() : typeof x === 'number' && isFinite(x) ? String(x) : '';
  }

  function num(x) {
    return typeof x === 'number' && isFinite(x) ? x : null;
  }

  function codes(cc) {
    return arr(cc).flatMap((c) => arr(c && c.coding)).filter((c) => c && typeof c === 'object');
  }

  function hasCode(cc, list) {
    return codes(cc).some((c) => list.includes(str(c.code)));
  }

  function firstCode(cc) {
    const c = codes(cc).find((x) => str(x.code));
    return c ? str(c.code) : '';
  }

  const CVX = {
    207: 'COVID-19 vaccine, mRNA (Moderna)',
    208: 'COVID-19 vaccine, mRNA (Pfizer-BioNTech)',
    210: 'COVID-19 vaccine, viral vector (AstraZeneca)',
    211: 'COVID-19 vaccine, protein subunit (Novavax)',
    212: 'COVID-19 vaccine, viral vector (Janssen)',
    213: 'COVID-19 vaccine, unspecified',
  };

  function systemName(system) {
    const s = str(system).toLowerCase();
    if (s.includes('loinc')) return 'LOINC';
    if (s.includes('snomed')) return 'SNOMED CT';
    if (s.includes('cvx')) return 'CVX';
    if (s.includes('rxnorm')) return 'RxNorm';
    if (s.includes('icd-10') || s.includes('icd10')) return 'ICD-10';
    if (s.includes('atc')) return 'ATC';
    return 'code';
  }

  function humanize(code) {
    const t = code.replace(/[-_]+/g, ' ').trim();
    return t.charAt(0).toUpperCase() + t.slice(1);
  }

  // ccText is how a CodeableConcept reads: its text, a coding's display,
  // or a code.
  function ccText(cc) {
    for (const c of arr(cc)) {
      if (c && typeof c === 'object' && str(c.text)) return str(c.text);
    }
    const list = codes(cc);
    for (const c of list) if (str(c.display)) return str(c.display);
    for (const c of list) {
      const code = str(c.code);
      if (!code) continue;
      const sys = systemName(c.system);
      if (sys === 'CVX') return (CVX[code] || 'Vaccine') + ' (CVX ' + code + ')';
      if (/^[a-z][a-z-]*$/.test(code)) return humanize(code);
      return sys + ' ' + code;
    }
    return '';
  }

  function codeStatus(cc) {
    const c = firstCode(cc) || str(cc && cc.text);
    return c ? humanize(c) : '';
  }

  const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
  const DATE_RE = /^(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?(Z|[+-]\d{2}:\d{2})?)?)?)?$/;

  function pad2(n) {
    return n < 10 ? '0' + n : String(n);
  }

  function fmtLocal(d) {
    return d.getDate() + ' ' + MONTHS[d.getMonth()] + ' ' + d.getFullYear() + ', ' + pad2(d.getHours()) + ':' + pad2(d.getMinutes());
  }

  // fmtDate shows a FHIR date or dateTime at its own precision; times are
  // shown in the viewer's time zone.
  function fmtDate(s) {
    s = str(s);
    const m = DATE_RE.exec(s);
    if (!m) return s;
    const [, y, mo, d, hh] = m;
    if (!mo) return y;
    const mon = MONTHS[Number(mo) - 1] || mo;
    if (!d) return mon + ' ' + y;
    if (!hh) return Number(d) + ' ' + mon + ' ' + y;
    const t = new Date(s);
    return isNaN(t) ? Number(d) + ' ' + mon + ' ' + y : fmtLocal(t);
  }

  // dateMs gives a sortable instant; partial dates take their first moment.
  function dateMs(s) {
    s = str(s);
    const m = DATE_RE.exec(s);
    if (!m) return NaN;
    const [, y, mo, d, hh] = m;
    if (!hh) return Date.UTC(Number(y), mo ? Number(mo) - 1 : 0, d ? Number(d) : 1);
    return Date.parse(s);
  }


  function fullDay(ms) {
    const d = new Date(ms);
    return d.getDate() + ' ' + MONTHS[d.getMonth()] + ' ' + d.getFullYear();
  }

  function fmtNum(v) {
    return String(Math.round(v * 1000) / 1000);
  }

  const UCUM = { 'mm[Hg]': 'mmHg', '[lb_av]': 'lb', Cel: '°C', '[degF]': '°F', '/min': '/min', '{beats}/min': 'beats/min', '[in_i]': 'in' };

  function unitOf(q) {
    if (!q) return '';
    return str(q.unit) || UCUM[str(q.code)] || str(q.code);
  }

  // withUnit writes a number and its unit: "7.5%", "128 mmHg".
  function withUnit(text, unit) {
    return unit ? text + (unit === '%' ? '%' : ' ' + unit) : text;
  }

  function qty(q) {
    if (!q || typeof q !== 'object') return '';
    const v = num(q.value);
    if (v === null) return '';
    return (str(q.comparator) + ' ').trimStart() + withUnit(fmtNum(v), unitOf(q));
  }

  function notesOf(r) {
    return arr(r.note).map((n) => str(n && n.text)).filter(Boolean).join(' ');
  }

  // ---------------------------------------------------------------- observations

  const LOINC_BP = ['85354-9', '55284-4', '35094-2'];
  const LOINC_SYS = ['8480-6'];
  const LOINC_DIA = ['8462-4'];
  const LOINC_HR = ['8867-4'];
  const LOINC_WEIGHT = ['29463-7', '3141-9'];
  const LOINC_GLUCOSE = ['2339-0', '15074-8', '2345-7', '41653-7', '14749-6', '14743-9', '2340-8', '1558-6', '41604-0', '2341-6', '74774-1', '1547-9', '14770-2'];
  const LOINC_VITAL = LOINC_BP.concat(LOINC_SYS, LOINC_DIA, LOINC_HR, LOINC_WEIGHT,
    ['8310-5', '8331-1', '59408-5', '2708-6', '8302-2', '39156-5', '9279-1', '8287-5', '9843-4', '8280-0']);

  function catCodes(o) {
    return codes(o.category).map((c) => str(c.code));
  }

  function isSymptom(o) {
    return catCodes(o).includes(SYMPTOM_CATEGORY);
  }

  function isVital(o) {
    return catCodes(o).includes('vital-signs') || hasCode(o.code, LOINC_VITAL);
  }

  function component(o, list) {
    return arr(o.component).find((c) => c && hasCode(c.code, list));
  }

  function isBP(o) {
    return hasCode(o.code, LOINC_BP) || (component(o, LOINC_SYS) && component(o, LOINC_DIA));
  }

  function isGlucose(o) {
    if (hasCode(o.code, LOINC_GLUCOSE)) return true;
    const t = ccText(o.code);
    return /glucose/i.test(t) && !/a1c|haemoglobin|hemoglobin|urine/i.test(t);
  }

  function obsDate(o) {
    return str(o.effectiveDateTime) || str(o.effectiveInstant) || str(o.effectivePeriod && o.effectivePeriod.start) || str(o.issued);
  }

  function bpText(o) {
    const s = component(o, LOINC_SYS);
    const d = component(o, LOINC_DIA);
    const sv = s && num(s.valueQuantity && s.valueQuantity.value);
    const dv = d && num(d.valueQuantity && d.valueQuantity.value);
    if (sv === null || dv === null || sv === undefined || dv === undefined) return '';
    return fmtNum(sv) + '/' + fmtNum(dv) + ' ' + (unitOf(s.valueQuantity) || 'mmHg');
  }

  function valueText(x) {
    if (x.valueQuantity) return qty(x.valueQuantity);
    if (x.valueCodeableConcept) return ccText(x.valueCodeableConcept);
    if (typeof x.valueString === 'string') return x.valueString;
    if (typeof x.valueBoolean === 'boolean') return x.valueBoolean ? 'Yes' : 'No';
    if (num(x.valueInteger) !== null) return String(x.valueInteger);
    if (x.valueRange) {
      const lo = qty(x.valueRange.low);
      const hi = qty(x.valueRange.high);
      return lo && hi ? lo + ' – ' + hi : lo || hi;
    }
    if (x.valueRatio) return qty(x.valueRatio.numerator) + ' / ' + qty(x.valueRatio.denominator);
    if (x.valueDateTime) return fmtDate(x.valueDateTime);
    if (x.valuePeriod) return fmtDate(x.valuePeriod.start) + ' – ' + fmtDate(x.valuePeriod.end);
    if (typeof x.valueTime === 'string') return x.valueTime;
    return '';
  }

  function obsValue(o) {
    const v = valueText(o);
    if (v) return v;
    if (isBP(o)) {
      const bp = bpText(o);
      if (bp) return bp;
    }
    const comps = arr(o.component).filter((c) => c && typeof c === 'object')
      .map((c) => [ccText(c.code), valueText(c)]).filter((p) => p[1]);
    if (comps.length) return comps.map((p) => (p[0] ? p[0] + ': ' : '') + p[1]).join('; ');
    if (o.dataAbsentReason) return 'No value (' + ccText(o.dataAbsentReason) + ')';
    if (arr(o.hasMember).length) return 'Panel of ' + arr(o.hasMember).length + ' results';
    return '';
  }

  const INTERPRETATION = {
    H: 'High', HH: 'Critically high', HU: 'Very high', L: 'Low', LL: 'Critically low', LU: 'Very low',
    A: 'Abnormal', AA: 'Critically abnormal', POS: 'Positive', DET: 'Detected', R: 'Resistant',
    '>': 'Above range', '<': 'Below range', W: 'Worse', U: 'Significant change up', D: 'Significant change down',
  };

  function refRange(o) {
    const r = arr(o.referenceRange)[0];
    if (!r || typeof r !== 'object') return '';
    if (str(r.text)) return str(r.text);
    const lo = r.low ? num(r.low.value) : null;
    const hi = r.high ? num(r.high.value) : null;
    const u = unitOf(r.high) || unitOf(r.low);
    if (lo !== null && hi !== null) return withUnit(fmtNum(lo) + '–' + fmtNum(hi), u);
    if (lo !== null) return withUnit('≥ ' + fmtNum(lo), u);
    if (hi !== null) return withUnit('≤ ' + fmtNum(hi), u);
    return '';
  }

  // abnormal returns a label when the result is flagged abnormal by its
  // interpretation, or (without one) lies outside its reference range.
  function abnormal(o) {
    for (const c of codes(o.interpretation)) {
      const code = str(c.code);
      if (INTERPRETATION[code]) return str(c.display) || INTERPRETATION[code];
    }
    if (arr(o.interpretation).length) return '';
    const v = o.valueQuantity ? num(o.valueQuantity.value) : null;
    const r = arr(o.referenceRange)[0];
    if (v === null || !r) return '';
    const lo = r.low ? num(r.low.value) : null;
    const hi = r.high ? num(r.high.value) : null;
    if (hi !== null && v > hi) return 'High';
    if (lo !== null && v < lo) return 'Low';
    return '';
  }

  // ---------------------------------------------------------------- tables

  // table renders rows of cells; on narrow screens CSS turns each row into
  // a card and labels each cell with its column name (data-label).
  const DATE_COLUMNS = ['Since', 'Date', 'Taken'];

  function table(cls, columns, rows) {
    return h('div', { class: 'table-wrap' },
      h('table', { class: 'data ' + cls },
        h('thead', null, h('tr', null, columns.map((c) => h('th', { scope: 'col' }, c)))),
        h('tbody', null, rows.map((r) => h('tr', { class: r.cls || null },
          r.cells.map((cell, i) => h('td', { 'data-label': columns[i], class: DATE_COLUMNS.includes(columns[i]) ? 'date' : null }, cell)))))));
  }

  function badge(text, cls) {
    return text ? h('span', { class: 'badge ' + (cls || '') }, text) : null;
  }

  function small(text) {
    return text ? h('div', { class: 'sub' }, text) : null;
  }

  function byDateDesc(get) {
    return (a, b) => {
      const x = dateMs(get(a));
      const y = dateMs(get(b));
      return (isNaN(y) ? -Infinity : y) - (isNaN(x) ? -Infinity : x);
    };
  }

  function empty(text) {
    return h('p', { class: 'empty' }, text);
  }

  // ---------------------------------------------------------------- sections

  // SNOMED CT "no known allergy" findings; the IPS uses its own
  // absent-unknown code system for the same statements.
  const NO_KNOWN_ALLERGY = ['716186003', '409137002', '429625007', '428607008'];

  function noKnownAllergy(a) {
    return codes(a.code).some((c) => /absent-unknown/.test(str(c.system)) || /^no-known/.test(str(c.code)) ||
      NO_KNOWN_ALLERGY.includes(str(c.code)));
  }

  function buildAllergies(idx) {
    const list = idx.of('AllergyIntolerance');
    list.forEach((a) => idx.used.add(a));
    if (!list.length) {
      return { count: 0, body: [empty('No allergy information was included in this share. This does not mean the patient has no allergies.')] };
    }
    const rank = (a) => {
      if (noKnownAllergy(a)) return 4;
      const st = firstCode(a.clinicalStatus) || 'active';
      return (st === 'active' ? 0 : 2) + (str(a.criticality) === 'high' ? 0 : 1);
    };
    list.sort((a, b) => rank(a) - rank(b));
    const items = list.map((a) => {
      const name = ccText(a.code) || 'Unspecified substance';
      const status = firstCode(a.clinicalStatus);
      const verification = firstCode(a.verificationStatus);
      const crit = str(a.criticality);
      const reactions = arr(a.reaction).filter((r) => r && typeof r === 'object').map((r) => {
        const m = arr(r.manifestation).map(ccText).filter(Boolean).join(', ');
        const sev = str(r.severity);
        return (m || 'Reaction') + (sev ? ' (' + sev + ')' : '');
      });
      const kind = [str(a.type), arr(a.category).map(str).filter(Boolean).join(', ')].filter(Boolean).join(' · ');
      const facts = [];
      if (reactions.length) facts.push(h('div', null, h('span', { class: 'k' }, 'Reaction: '), reactions.join('; ')));
      const meta = [kind ? humanize(kind) : '', str(a.onsetDateTime) ? 'since ' + fmtDate(a.onsetDateTime) : '',
        str(a.recordedDate) ? 'recorded ' + fmtDate(a.recordedDate) : ''].filter(Boolean).join(' · ');
      const cls = noKnownAllergy(a) ? ' none' : (crit === 'high' ? ' high' : '') + (status && status !== 'active' ? ' inactive' : '');
      return h('li', { class: 'allergy' + cls },
        h('div', { class: 'allergy-head' },
          h('span', { class: 'allergy-name' }, name),
          crit === 'high' ? badge('High criticality', 'danger') : crit === 'low' ? badge('Low criticality', 'muted') : null,
          status && status !== 'active' ? badge(humanize(status), 'muted') : null,
          verification && verification !== 'confirmed' ? badge(humanize(verification), 'muted') : null),
        facts, small(meta), small(notesOf(a)));
    });
    return { count: list.length, body: [h('ul', { class: 'allergies' }, items)] };
  }

  function medName(r, idx) {
    if (r.medicationCodeableConcept) return ccText(r.medicationCodeableConcept) || 'Unnamed medication';
    if (r.medicationReference) {
      const m = idx.resolve(r.medicationReference, r);
      if (m) {
        idx.used.add(m);
        const n = ccText(m.code);
        if (n) return n;
      }
      return str(r.medicationReference.display) || 'Unnamed medication';
    }
    return 'Unnamed medication';
  }

  const PERIOD_UNITS = { s: 'second', min: 'minute', h: 'hour', d: 'day', wk: 'week', mo: 'month', a: 'year' };

  function timingText(t) {
    if (!t || typeof t !== 'object') return '';
    const c = ccText(t.code);
    if (c) return c;
    const r = t.repeat;
    if (!r || typeof r !== 'object') return '';
    const unit = PERIOD_UNITS[str(r.periodUnit)];
    if (!unit) return '';
    const f = num(r.frequency) || 1;
    const p = num(r.period) || 1;
    const times = f === 1 ? 'once' : f === 2 ? 'twice' : f + ' times';
    return times + (p === 1 ? (unit === 'day' ? ' daily' : ' per ' + unit) : ' every ' + p + ' ' + unit + 's');
  }

  function dosageText(list) {
    return arr(list).filter((d) => d && typeof d === 'object').map((d) => {
      if (str(d.text)) return str(d.text);
      const parts = [];
      const dr = arr(d.doseAndRate)[0];
      if (dr && dr.doseQuantity) parts.push(qty(dr.doseQuantity));
      if (d.route) parts.push(ccText(d.route));
      parts.push(timingText(d.timing));
      if (d.asNeededBoolean === true) parts.push('as needed');
      if (d.asNeededCodeableConcept) parts.push('as needed for ' + ccText(d.asNeededCodeableConcept));
      return parts.filter(Boolean).join(', ');
    }).filter(Boolean).join('; ');
  }

  function medStart(r) {
    return str(r.effectivePeriod && r.effectivePeriod.start) || str(r.effectiveDateTime) || str(r.authoredOn) || str(r.dateAsserted);
  }

  function buildMedications(idx) {
    const all = idx.of('MedicationStatement', 'MedicationRequest');
    all.forEach((r) => idx.used.add(r));
    const active = all.filter((r) => !str(r.status) || r.status === 'active');
    const other = all.filter((r) => str(r.status) && r.status !== 'active');
    const body = [];
    const row = (r, withStatus) => {
      const cells = [
        [h('span', { class: 'med-name' }, medName(r, idx)), small(r.resourceType === 'MedicationRequest' ? 'Prescription' : '')],
        dosageText(r.resourceType === 'MedicationRequest' ? r.dosageInstruction : r.dosage) || '—',
        fmtDate(medStart(r)) || '—',
        [arr(r.reasonCode).map(ccText).filter(Boolean).join(', '), small(notesOf(r))],
      ];
      if (withStatus) cells.splice(1, 0, humanize(str(r.status)));
      return { cells };
    };
    if (active.length) {
      body.push(table('meds', ['Medication', 'Dosage', 'Since', 'Reason / notes'], active.sort(byDateDesc(medStart)).map((r) => row(r, false))));
    } else {
      body.push(empty('No active medications were included in this share.'));
    }
    if (other.length) {
      body.push(h('h3', null, 'Other medications (not active)'),
        table('meds other', ['Medication', 'Status', 'Dosage', 'Since', 'Reason / notes'], other.sort(byDateDesc(medStart)).map((r) => row(r, true))));
    }
    return { count: active.length, body };
  }

  function buildProblems(idx) {
    const list = idx.of('Condition');
    list.forEach((r) => idx.used.add(r));
    if (!list.length) return { count: 0, body: [empty('No problems or diagnoses were included in this share.')] };
    const onset = (c) => str(c.onsetDateTime) || str(c.onsetPeriod && c.onsetPeriod.start) || str(c.onsetString) || str(c.recordedDate);
    const activeRank = (c) => (['active', 'recurrence', 'relapse', ''].includes(firstCode(c.clinicalStatus)) ? 0 : 1);
    list.sort((a, b) => activeRank(a) - activeRank(b) || byDateDesc(onset)(a, b));
    const rows = list.map((c) => ({
      cls: activeRank(c) ? 'dim' : null,
      cells: [
        [h('span', { class: 'strong' }, ccText(c.code) || 'Unnamed problem'), small(notesOf(c))],
        [codeStatus(c.clinicalStatus) || '—', small(ccText(c.severity) ? 'Severity: ' + ccText(c.severity) : '')],
        fmtDate(onset(c)) || '—',
      ],
    }));
    return { count: list.length, body: [table('problems', ['Problem', 'Status', 'Since'], rows)] };
  }

  function resultObservations(idx) {
    return idx.of('Observation').filter((o) => !isSymptom(o) && !isVital(o));
  }

  function buildResults(idx) {
    const obs = resultObservations(idx);
    const reports = idx.of('DiagnosticReport');
    if (!obs.length && !reports.length) return null;
    const body = [];
    if (obs.length) {
      obs.forEach((o) => idx.used.add(o));
      obs.sort(byDateDesc(obsDate));
      const rows = obs.map((o) => {
        const flag = abnormal(o);
        const cats = codes(o.category).map((c) => str(c.code)).filter((c) => c && c !== 'laboratory');
        return {
          cls: flag ? 'abnormal' : null,
          cells: [
            [h('span', { class: 'strong' }, ccText(o.code) || 'Unnamed result'), small(cats.length ? humanize(cats[0]) : ''), small(notesOf(o))],
            [h('span', { class: 'value' }, obsValue(o) || '—'), flag ? badge(flag, 'warn') : null],
            refRange(o) || '—',
            fmtDate(obsDate(o)) || '—',
          ],
        };
      });
      body.push(table('results', ['Test', 'Result', 'Reference range', 'Date'], rows));
    }
    if (reports.length) {
      reports.forEach((r) => idx.used.add(r));
      const date = (r) => str(r.effectiveDateTime) || str(r.effectivePeriod && r.effectivePeriod.start) || str(r.issued);
      reports.sort(byDateDesc(date));
      body.push(h('h3', null, 'Reports'), table('reports', ['Report', 'Conclusion', 'Date'], reports.map((r) => {
        const members = arr(r.result).map((ref) => idx.resolve(ref, r)).filter(Boolean);
        return {
          cells: [
            [h('span', { class: 'strong' }, ccText(r.code) || 'Report'), small([humanize(str(r.status)), members.length ? members.length + ' results' : ''].filter(Boolean).join(' · '))],
            [str(r.conclusion), arr(r.conclusionCode).map(ccText).filter(Boolean).join(', ')].filter(Boolean).join(' — ') || '—',
            fmtDate(date(r)) || '—',
          ],
        };
      })));
    }
    return { count: obs.length + reports.length, body };
  }

  function vitalKey(o) {
    if (isBP(o)) return 'bp';
    return firstCode(o.code) || ccText(o.code);
  }

  function vitalName(o) {
    if (isBP(o)) return 'Blood pressure';
    return ccText(o.code) || 'Measurement';
  }

  function buildVitals(idx) {
    const obs = idx.of('Observation').filter((o) => !isSymptom(o) && isVital(o));
    if (!obs.length) return null;
    obs.forEach((o) => idx.used.add(o));
    const groups = new Map();
    for (const o of obs) {
      const k = vitalKey(o);
      if (!groups.has(k)) groups.set(k, []);
      groups.get(k).push(o);
    }
    const rows = [];
    for (const list of groups.values()) {
      list.sort(byDateDesc(obsDate));
      const latest = list[0];
      rows.push({
        cells: [
          h('span', { class: 'strong' }, vitalName(latest)),
          [h('span', { class: 'value' }, obsValue(latest) || '—'), abnormal(latest) ? badge(abnormal(latest), 'warn') : null],
          fmtDate(obsDate(latest)) || '—',
          String(list.length),
        ],
      });
    }
    return { count: groups.size, body: [table('vitals', ['Measurement', 'Latest', 'Date', 'Readings'], rows)] };
  }

  // ---------------------------------------------------------------- trends

  function point(o, v) {
    const t = dateMs(obsDate(o));
    return isNaN(t) || v === null || v === undefined ? null : { t, v };
  }

  // trendSeries gathers the series worth drawing: blood pressure, heart
  // rate, weight and glucose with two or more readings, and any other
  // numeric result with three or more.
  function trendSeries(idx) {
    const obs = idx.of('Observation').filter((o) => !isSymptom(o));
    const named = { bp: [], 'heart-rate': new Map(), weight: new Map(), glucose: new Map() };
    const labs = new Map();
    const add = (map, key, o, extra) => {
      if (!map.has(key)) map.set(key, Object.assign({ points: [], title: ccText(o.code) }, extra));
      return map.get(key);
    };
    const bpByTime = new Map();
    for (const o of obs) {
      const q = o.valueQuantity;
      const unit = unitOf(q);
      const t = dateMs(obsDate(o));
      if (isNaN(t)) continue;
      if (isBP(o) || hasCode(o.code, LOINC_SYS) || hasCode(o.code, LOINC_DIA)) {
        const e = bpByTime.get(t) || { t, sys: null, dia: null, unit: 'mmHg' };
        const s = hasCode(o.code, LOINC_SYS) ? o : component(o, LOINC_SYS);
        const d = hasCode(o.code, LOINC_DIA) ? o : component(o, LOINC_DIA);
        if (s && s.valueQuantity && num(s.valueQuantity.value) !== null) {
          e.sys = s.valueQuantity.value;
          e.unit = unitOf(s.valueQuantity) || e.unit;
        }
        if (d && d.valueQuantity && num(d.valueQuantity.value) !== null) e.dia = d.valueQuantity.value;
        bpByTime.set(t, e);
        continue;
      }
      if (!q || num(q.value) === null) continue;
      const p = point(o, q.value);
      let kind = null;
      if (hasCode(o.code, LOINC_HR)) kind = 'heart-rate';
      else if (hasCode(o.code, LOINC_WEIGHT)) kind = 'weight';
      else if (isGlucose(o)) kind = 'glucose';
      if (kind) {
        add(named[kind], unit, o, { unit }).points.push(p);
      } else if (!isVital(o)) {
        add(labs, (firstCode(o.code) || ccText(o.code)) + '|' + unit, o, { unit }).points.push(p);
      }
    }
    const out = [];
    const bp = [...bpByTime.values()].sort((a, b) => a.t - b.t);
    if (bp.length >= 2) {
      const unit = bp[0].unit;
      out.push({
        id: 'bp', title: 'Blood pressure', unit,
        lines: [
          { name: 'Systolic', points: bp.filter((e) => e.sys !== null).map((e) => ({ t: e.t, v: e.sys })) },
          { name: 'Diastolic', points: bp.filter((e) => e.dia !== null).map((e) => ({ t: e.t, v: e.dia })) },
        ],
      });
    }
    const titles = { 'heart-rate': 'Heart rate', weight: 'Weight', glucose: 'Blood glucose' };
    for (const kind of ['weight', 'glucose', 'heart-rate']) {
      for (const s of named[kind].values()) {
        if (s.points.length >= 2) out.push({ id: kind, title: titles[kind], unit: s.unit, lines: [{ name: titles[kind], points: s.points }] });
      }
    }
    for (const s of labs.values()) {
      if (s.points.length >= 3) out.push({ id: 'lab', title: s.title || 'Result', unit: s.unit, lines: [{ name: s.title || 'Result', points: s.points }] });
    }
    for (const s of out) {
      for (const l of s.lines) l.points = l.points.sort((a, b) => a.t - b.t).slice(-MAX_CHART_POINTS);
    }
    return out;
  }

  function niceStep(range, count) {
    const raw = range / count;
    const mag = Math.pow(10, Math.floor(Math.log10(raw)));
    const f = raw / mag;
    return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 2.5 ? 2.5 : f <= 5 ? 5 : 10) * mag;
  }

  // chart draws one series as an SVG line chart with DOM calls only.
  function chart(spec) {
    // A narrower drawing on phones keeps the labels readable when the
    // chart is scaled down to the screen.
    const W = window.matchMedia('(max-width: 640px)').matches ? 340 : 440;
    const H = 190;
    const ml = 46;
    const mr = 14;
    const mt = 12;
    const mb = 30;
    const pts = spec.lines.flatMap((l) => l.points);
    let tmin = Math.min(...pts.map((p) => p.t));
    let tmax = Math.max(...pts.map((p) => p.t));
    if (tmin === tmax) {
      tmin -= 43200000;
      tmax += 43200000;
    }
    let vmin = Math.min(...pts.map((p) => p.v));
    let vmax = Math.max(...pts.map((p) => p.v));
    if (vmin === vmax) {
      const d = Math.abs(vmin) * 0.1 || 1;
      vmin -= d;
      vmax += d;
    } else {
      // Keep points off the frame.
      const pad = (vmax - vmin) * 0.08;
      vmin = vmin >= 0 ? Math.max(0, vmin - pad) : vmin - pad;
      vmax += pad;
    }
    const step = niceStep(vmax - vmin, 4);
    const lo = Math.floor(vmin / step) * step;
    const hi = Math.ceil(vmax / step) * step;
    const x = (t) => ml + ((t - tmin) / (tmax - tmin)) * (W - ml - mr);
    const y = (v) => mt + ((hi - v) / (hi - lo)) * (H - mt - mb);
    const r1 = (n) => Math.round(n * 10) / 10;
    const first = pts.reduce((a, b) => (b.t < a.t ? b : a));
    const last = pts.reduce((a, b) => (b.t > a.t ? b : a));
    const label = spec.title + ', ' + spec.lines[0].points.length + ' readings from ' + fullDay(first.t) + ' to ' + fullDay(last.t);

    const g = [];
    for (let v = lo; v <= hi + step / 2; v += step) {
      const yy = r1(y(v));
      g.push(svg('line', { class: 'grid', x1: ml, x2: W - mr, y1: yy, y2: yy }));
      g.push(svg('text', { class: 'tick', x: ml - 6, y: yy + 4, 'text-anchor': 'end' }, fmtNum(v)));
    }
    g.push(svg('text', { class: 'axis-label', x: 12, y: mt + (H - mt - mb) / 2, 'text-anchor': 'middle', transform: 'rotate(-90 12 ' + (mt + (H - mt - mb) / 2) + ')' }, spec.unit || ''));
    g.push(svg('line', { class: 'axis', x1: ml, x2: W - mr, y1: H - mb, y2: H - mb }));
    g.push(svg('text', { class: 'tick', x: ml, y: H - mb + 16, 'text-anchor': 'start' }, fullDay(first.t)));
    g.push(svg('text', { class: 'tick', x: W - mr, y: H - mb + 16, 'text-anchor': 'end' }, fullDay(last.t)));

    spec.lines.forEach((line, i) => {
      if (!line.points.length) return;
      const d = line.points.map((p, j) => (j ? 'L' : 'M') + r1(x(p.t)) + ' ' + r1(y(p.v))).join(' ');
      g.push(svg('path', { class: 'line line-' + i, d, fill: 'none' }));
      for (const p of line.points) {
        g.push(svg('circle', { class: 'pt pt-' + i, cx: r1(x(p.t)), cy: r1(y(p.v)), r: 3.5 },
          svg('title', null, line.name + ': ' + withUnit(fmtNum(p.v), spec.unit) + ' — ' + fmtLocal(new Date(p.t)))));
      }
    });

    const s = svg('svg', {
      class: 'chart', viewBox: '0 0 ' + W + ' ' + H, role: 'img', 'aria-label': label,
      'data-series': spec.id, 'data-unit': spec.unit || '',
    }, svg('title', null, label), g);

    const latest = spec.lines.map((l) => l.points[l.points.length - 1]).filter(Boolean).map((p) => fmtNum(p.v));
    const legend = spec.lines.length > 1
      ? h('div', { class: 'legend' }, spec.lines.map((l, i) => h('span', { class: 'key key-' + i }, l.name)))
      : null;
    return h('figure', { class: 'trend', 'data-series': spec.id },
      h('figcaption', null,
        h('span', { class: 'strong' }, spec.title + (spec.unit ? ' (' + spec.unit + ')' : '')),
        h('span', { class: 'sub' }, 'Latest ' + withUnit(latest.join('/'), spec.unit) + ' on ' + fullDay(last.t) + ' · ' + spec.lines[0].points.length + ' readings')),
      s, legend);
  }

  function buildTrends(idx) {
    const series = trendSeries(idx);
    if (!series.length) return null;
    return { count: series.length, body: [h('div', { class: 'trends' }, series.map(chart))] };
  }

  // ---------------------------------------------------------------- other sections

  function buildImmunizations(idx) {
    const list = idx.of('Immunization');
    if (!list.length) return null;
    list.forEach((r) => idx.used.add(r));
    const date = (r) => str(r.occurrenceDateTime) || str(r.occurrenceString) || str(r.recorded);
    list.sort(byDateDesc(date));
    const rows = list.map((r) => {
      const details = [];
      const dose = arr(r.protocolApplied).map((p) => p && (num(p.doseNumberPositiveInt) || str(p.doseNumberString))).filter(Boolean)[0];
      if (dose) details.push('Dose ' + dose);
      if (str(r.lotNumber)) details.push('Lot ' + str(r.lotNumber));
      const by = arr(r.performer).map((p) => p && p.actor && (str(p.actor.display) || ccText((idx.resolve(p.actor, r) || {}).name))).filter(Boolean);
      if (by.length) details.push(by.join(', '));
      if (r.location && str(r.location.display)) details.push(str(r.location.display));
      if (r.primarySource === false) details.push('reported by the patient');
      return {
        cls: r.status === 'not-done' ? 'dim' : null,
        cells: [
          [h('span', { class: 'strong' }, ccText(r.vaccineCode) || 'Vaccine'), r.status === 'not-done' ? badge('Not given', 'muted') : null, small(notesOf(r))],
          fmtDate(date(r)) || '—',
          details.join(' · ') || '—',
        ],
      };
    });
    return { count: list.length, body: [table('immunizations', ['Vaccine', 'Date', 'Details'], rows)] };
  }

  function buildPatientReported(idx) {
    const symptoms = idx.of('Observation').filter(isSymptom);
    const doses = idx.of('MedicationAdministration');
    if (!symptoms.length && !doses.length) return null;
    const body = [];
    if (symptoms.length) {
      symptoms.forEach((o) => idx.used.add(o));
      symptoms.sort(byDateDesc(obsDate));
      body.push(h('h3', null, 'Symptoms'), table('symptoms', ['Symptom', 'Severity', 'Date', 'Note'], symptoms.map((o) => {
        let sev = '';
        if (num(o.valueInteger) !== null) sev = o.valueInteger + '/10';
        else if (o.valueQuantity && num(o.valueQuantity.value) !== null) sev = unitOf(o.valueQuantity) ? qty(o.valueQuantity) : fmtNum(o.valueQuantity.value) + '/10';
        else sev = valueText(o);
        return {
          cells: [h('span', { class: 'strong' }, ccText(o.code) || 'Symptom'), sev || '—', fmtDate(obsDate(o)) || '—', notesOf(o) || ''],
        };
      })));
    }
    if (doses.length) {
      doses.forEach((r) => idx.used.add(r));
      const date = (r) => str(r.effectiveDateTime) || str(r.effectivePeriod && r.effectivePeriod.start);
      doses.sort(byDateDesc(date));
      body.push(h('h3', null, 'Doses taken'), table('doses', ['Medication', 'Dose', 'Taken', 'Note'], doses.map((r) => {
        const dose = r.dosage ? qty(r.dosage.dose) || str(r.dosage.text) : '';
        const notTaken = r.status && r.status !== 'completed' && r.status !== 'in-progress';
        return {
          cls: notTaken ? 'dim' : null,
          cells: [[h('span', { class: 'strong' }, medName(r, idx)), notTaken ? badge(humanize(str(r.status)), 'muted') : null], dose || '—', fmtDate(date(r)) || '—', notesOf(r) || ''],
        };
      })));
    }
    return { count: symptoms.length + doses.length, body };
  }

  function buildProcedures(idx) {
    const list = idx.of('Procedure');
    if (!list.length) return null;
    list.forEach((r) => idx.used.add(r));
    const date = (r) => str(r.performedDateTime) || str(r.performedPeriod && r.performedPeriod.start) || str(r.performedString);
    list.sort(byDateDesc(date));
    return {
      count: list.length,
      body: [table('procedures', ['Procedure', 'Date', 'Status'], list.map((r) => ({
        cells: [[h('span', { class: 'strong' }, ccText(r.code) || 'Procedure'), small(notesOf(r))], fmtDate(date(r)) || '—', humanize(str(r.status)) || '—'],
      })))],
    };
  }

  function buildEncounters(idx) {
    const list = idx.of('Encounter');
    if (!list.length) return null;
    list.forEach((r) => idx.used.add(r));
    const date = (r) => str(r.period && r.period.start);
    list.sort(byDateDesc(date));
    return {
      count: list.length,
      body: [table('encounters', ['Encounter', 'Date', 'Reason', 'Where'], list.map((r) => {
        const cls = r.class && typeof r.class === 'object' ? str(r.class.display) || str(r.class.code) : '';
        const where = (r.serviceProvider && str(r.serviceProvider.display)) ||
          arr(r.location).map((l) => l && l.location && str(l.location.display)).filter(Boolean).join(', ');
        const end = str(r.period && r.period.end);
        return {
          cells: [
            h('span', { class: 'strong' }, arr(r.type).map(ccText).filter(Boolean)[0] || cls || 'Encounter'),
            (fmtDate(date(r)) || '—') + (end && end.slice(0, 10) !== date(r).slice(0, 10) ? ' – ' + fmtDate(end) : ''),
            arr(r.reasonCode).map(ccText).filter(Boolean).join(', ') || '—',
            where || '—',
          ],
        };
      }))],
    };
  }

  const EXTENSIONS = { 'application/pdf': '.pdf', 'image/jpeg': '.jpg', 'image/png': '.png', 'text/html': '.html', 'application/xml': '.xml', 'text/xml': '.xml', 'application/json': '.json', 'text/plain': '.txt' };

  function fileName(title, ct) {
    const base = (title || 'document').replace(/[\\/:*?"<>|\u0000-\u001f]+/g, '_').slice(0, 80);
    const ext = EXTENSIONS[ct] || '';
    return ext && !base.toLowerCase().endsWith(ext) ? base + ext : base;
  }

  function fmtSize(n) {
    return n < 1024 ? n + ' bytes' : n < 1048576 ? Math.round(n / 1024) + ' KB' : (n / 1048576).toFixed(1) + ' MB';
  }

  function attachmentView(att, title) {
    const ct = mediaType(att.contentType);
    if (typeof att.data === 'string' && att.data) {
      let bytes;
      try {
        bytes = b64Bytes(att.data);
      } catch (e) {
        return h('p', { class: 'sub' }, 'An attachment could not be decoded.');
      }
      if (ct === 'text/plain' || ct === 'text/markdown' || (!ct && bytes.length < 65536)) {
        return h('pre', { class: 'note-text' }, utf8.decode(bytes));
      }
      // Always octet-stream: the file is downloaded, never rendered as a
      // page of this origin.
      const url = URL.createObjectURL(new Blob([bytes], { type: 'application/octet-stream' }));
      const name = fileName(str(att.title) || title, ct);
      return h('p', { class: 'attachment' },
        h('a', { href: url, download: name, class: 'download' }, 'Download ' + name),
        h('span', { class: 'sub inline' }, ' ' + [ct || 'unknown type', fmtSize(bytes.length)].join(', ')));
    }
    if (str(att.url)) {
      return h('p', { class: 'sub' }, 'Not included in the share (' + (ct || 'file') + ' kept elsewhere: ' + str(att.url) + ').');
    }
    return null;
  }

  function buildDocuments(idx) {
    const list = idx.of('DocumentReference');
    if (!list.length) return null;
    list.forEach((r) => idx.used.add(r));
    const date = (r) => str(r.date) || str(arr(r.content)[0] && arr(r.content)[0].attachment && arr(r.content)[0].attachment.creation) ||
      str(r.context && r.context.period && r.context.period.start);
    list.sort(byDateDesc(date));
    const items = list.map((r) => {
      const first = arr(r.content)[0];
      const title = str(r.description) || ccText(r.type) || str(first && first.attachment && first.attachment.title) || 'Document';
      const author = arr(r.author).map((a) => a && str(a.display)).filter(Boolean).join(', ');
      const meta = [ccText(r.type) !== title ? ccText(r.type) : '', fmtDate(date(r)), author].filter(Boolean).join(' · ');
      return h('article', { class: 'doc' },
        h('div', { class: 'doc-head' }, h('span', { class: 'strong' }, title), small(meta)),
        arr(r.content).map((c) => (c && c.attachment && typeof c.attachment === 'object' ? attachmentView(c.attachment, title) : null)));
    });
    return { count: list.length, body: items };
  }

  function buildOther(idx) {
    const counts = new Map();
    for (const r of idx.all) {
      if (idx.used.has(r)) continue;
      counts.set(r.resourceType, (counts.get(r.resourceType) || 0) + 1);
    }
    if (!counts.size) return null;
    const rows = [...counts.entries()].sort((a, b) => a[0].localeCompare(b[0]));
    return {
      count: rows.reduce((n, e) => n + e[1], 0),
      body: [
        h('p', { class: 'sub' }, 'Also in the share, not shown above:'),
        h('ul', { class: 'other' }, rows.map(([type, n]) => h('li', { 'data-type': type }, h('span', { class: 'strong' }, type), ' ', n === 1 ? '1 record' : n + ' records'))),
      ],
    };
  }

  const SECTIONS = [
    ['allergies', 'Allergies and intolerances', buildAllergies],
    ['medications', 'Active medications', buildMedications],
    ['problems', 'Problems', buildProblems],
    ['results', 'Recent results', buildResults],
    ['vitals', 'Vital signs', buildVitals],
    ['trends', 'Trends', buildTrends],
    ['immunizations', 'Immunizations', buildImmunizations],
    ['patient-reported', 'Patient-reported', buildPatientReported],
    ['procedures', 'Procedures', buildProcedures],
    ['encounters', 'Encounters', buildEncounters],
    ['documents', 'Documents and notes', buildDocuments],
    ['other', 'Other', buildOther],
  ];

  // ---------------------------------------------------------------- patient

  function humanName(n) {
    if (!n || typeof n !== 'object') return '';
    if (str(n.text)) return str(n.text);
    return [arr(n.prefix).map(str).join(' '), arr(n.given).map(str).join(' '), str(n.family), arr(n.suffix).map(str).join(' ')]
      .filter(Boolean).join(' ');
  }

  function patientName(p) {
    const names = arr(p.name);
    const pick = names.find((n) => n && n.use === 'official') || names.find((n) => n && n.use === 'usual') || names[0];
    return humanName(pick);
  }

  function ageOn(birth, now) {
    const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(birth);
    if (!m) return null;
    let age = now.getFullYear() - Number(m[1]);
    if (now.getMonth() + 1 < Number(m[2]) || (now.getMonth() + 1 === Number(m[2]) && now.getDate() < Number(m[3]))) age--;
    return age >= 0 && age < 150 ? age : null;
  }

  function fact(label, value) {
    return value ? h('div', { class: 'fact' }, h('dt', null, label), h('dd', null, value)) : null;
  }

  function renderPatient(idx) {
    const patients = idx.of('Patient');
    patients.forEach((p) => idx.used.add(p));
    const p = patients[0];
    if (!p) {
      return h('section', { class: 'patient', id: 'patient' },
        h('h1', { class: 'pt-name' }, 'Patient details not shared'),
        h('p', { class: 'sub' }, 'The share does not include the patient\'s name or date of birth.'));
    }
    const birth = str(p.birthDate);
    const age = ageOn(birth, new Date());
    const ids = arr(p.identifier).filter((i) => i && str(i.value)).slice(0, 2)
      .map((i) => (ccText(i.type) ? ccText(i.type) + ' ' : '') + str(i.value)).join(', ');
    const gender = str(p.gender);
    return h('section', { class: 'patient', id: 'patient' },
      h('h1', { class: 'pt-name' }, patientName(p) || 'Name not shared'),
      h('dl', { class: 'facts' },
        fact('Born', birth ? fmtDate(birth) + (age !== null ? ' (' + age + ' years)' : '') : ''),
        fact('Gender', gender ? humanize(gender) : ''),
        fact('Identifier', ids),
        p.deceasedBoolean === true || str(p.deceasedDateTime) ? fact('Deceased', str(p.deceasedDateTime) ? fmtDate(p.deceasedDateTime) : 'Yes') : null),
      patients.length > 1 ? h('p', { class: 'sub' }, 'The share holds ' + patients.length + ' patient records; the first is shown.') : null);
  }

  function renderShareInfo(link, recipient, data, idx) {
    const comp = idx.of('Composition')[0];
    if (comp) idx.used.add(comp);
    return h('section', { class: 'share-info', id: 'share-info' },
      link.label ? h('p', { class: 'share-label', id: 'share-label' }, link.label) : null,
      comp && str(comp.title) ? h('p', { class: 'sub' }, str(comp.title)) : null,
      h('p', { class: 'share-line', id: 'share-expiry' }, 'Shared by the patient; ' + expiryText(link)),
      h('p', { class: 'share-line', id: 'share-recipient' }, 'Opened by ', h('span', { class: 'strong' }, recipient), ' on ' + fmtLocal(new Date())),
      data.cards.map((c) => h('p', { class: 'notice', 'data-notice': 'shc' },
        'SMART Health Card' + (c.iss ? ' from ' + c.iss : '') + (c.nbf ? ', issued ' + fullDay(c.nbf * 1000) : '') + '. ',
        h('span', { class: 'strong' }, 'Signature not verified in viewer.'))),
      data.notices.map((n) => h('p', { class: 'notice' }, n)),
      data.errors.map((e) => h('p', { class: 'notice warn', 'data-notice': 'error' }, e)));
  }

  function expiryText(link) {
    return link.exp ? 'expires ' + fmtLocal(new Date(link.exp * 1000)) : 'no expiry date given';
  }

  function renderRecord(link, recipient, data) {
    const idx = data.index;
    // Patient and share details first: they mark the Patient and
    // Composition as shown, so that Other does not count them.
    const header = renderPatient(idx);
    const info = renderShareInfo(link, recipient, data, idx);
    const sections = [];
    for (const [id, title, fn] of SECTIONS) {
      let res;
      try {
        res = fn(idx);
      } catch (e) {
        res = { count: 0, body: [h('p', { class: 'notice warn' }, 'This section could not be displayed.')] };
      }
      if (!res) continue;
      sections.push(h('section', { class: 'sec sec-' + id, 'data-section': id, 'aria-labelledby': 'h-' + id },
        h('h2', { id: 'h-' + id }, title, res.count ? h('span', { class: 'count' }, String(res.count)) : null),
        res.body));
    }
    const printBtn = h('button', { type: 'button', class: 'secondary', id: 'print' }, 'Print');
    printBtn.addEventListener('click', () => window.print());
    const record = h('div', { id: 'record', class: 'record' },
      h('div', { class: 'record-head' }, header, info, h('div', { class: 'toolbar no-print' }, printBtn)),
      sections);
    show('record', record);
    document.title = (header.querySelector('.pt-name').textContent || 'Shared health record') + ' — shared record';
  }

  // ---------------------------------------------------------------- pages

  function panel(state, title, ...body) {
    show(state, h('section', { class: 'panel ' + state, id: 'status' },
      h('h1', { id: 'status-title' }, title), body));
  }

  function pasteForm(errorText) {
    const input = h('textarea', { id: 'paste-input', rows: 3, spellcheck: 'false', autocomplete: 'off', 'aria-describedby': 'paste-error' });
    const err = h('p', { id: 'paste-error', class: 'form-error', role: 'alert' }, errorText || '');
    if (!errorText) err.hidden = true;
    const form = h('form', { id: 'paste-form', class: 'form no-print' },
      h('label', { for: 'paste-input' }, 'Link'), input, err,
      h('button', { type: 'submit', id: 'paste-open' }, 'Open'));
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      try {
        start(parseLink(input.value));
      } catch (e) {
        err.textContent = 'This is not a SMART Health Link we can open. ' + (e instanceof ViewerError ? e.message : '');
        err.hidden = false;
      }
    });
    return form;
  }

  function showPaste() {
    panel('paste', 'Open a shared health record',
      h('p', null, 'Paste the link you received. It starts with "shlink:/" or contains "#shlink:/".'),
      pasteForm(''));
  }

  function showMalformed(reason) {
    panel('malformed', 'This link cannot be read',
      h('p', { id: 'status-text' }, 'The address does not hold a valid SMART Health Link. ' + reason),
      h('p', null, 'Ask the patient to share the link again, or paste it below.'),
      pasteForm(''));
  }

  function showExpired(link) {
    panel('expired', 'This link has expired',
      h('p', { id: 'status-text' }, 'The patient shared this record until ' + fmtLocal(new Date(link.exp * 1000)) + '. Ask the patient for a new link.'),
      link.label ? h('p', { class: 'sub' }, 'Share: ' + link.label) : null);
  }

  function showUnavailable() {
    panel('unavailable', 'This link is no longer available',
      h('p', { id: 'status-text' }, 'The share has expired, was revoked by the patient, or has been used up. Ask the patient for a new link.'));
  }

  function showLocked() {
    panel('locked', 'This link is locked',
      h('p', { id: 'status-text' }, 'Too many wrong passcodes were entered, so the link no longer opens. Ask the patient for a new link.'));
  }

  function showProblem(state, title, text, retry) {
    const btn = retry ? h('button', { type: 'button', id: 'retry' }, 'Try again') : null;
    if (btn) btn.addEventListener('click', retry);
    panel(state, title, h('p', { id: 'status-text' }, text), btn);
  }

  // showForm asks for the recipient's name and, for P links, the passcode.
  function showForm(link, prev) {
    const wantsPasscode = link.flag.includes('P');
    const recipient = h('input', { id: 'recipient', name: 'recipient', type: 'text', required: true, maxlength: 200, autocomplete: 'organization', 'aria-describedby': 'recipient-hint' });
    recipient.value = (prev && prev.recipient) || '';
    const passcode = wantsPasscode ? h('input', { id: 'passcode', name: 'passcode', type: 'password', required: true, autocomplete: 'off', 'aria-describedby': 'passcode-hint' }) : null;
    const err = h('p', { id: 'form-error', class: 'form-error', role: 'alert' });
    err.hidden = true;
    const button = h('button', { type: 'submit', id: 'open' }, 'Open record');
    const form = h('form', { id: 'unlock-form', class: 'form no-print', novalidate: true },
      h('label', { for: 'recipient' }, 'Your name / organization'),
      recipient,
      h('p', { class: 'hint', id: 'recipient-hint' }, 'Required. The patient can see who opened their record.'),
      wantsPasscode ? [h('label', { for: 'passcode' }, 'Passcode'), passcode,
        h('p', { class: 'hint', id: 'passcode-hint' }, 'The patient gives you the passcode separately from the link.')] : null,
      err, button);
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const who = recipient.value.trim();
      const code = passcode ? passcode.value : '';
      if (!who) return fail('Enter your name or organization.', recipient);
      if (wantsPasscode && !code) return fail('Enter the passcode.', passcode);
      err.hidden = true;
      button.disabled = true;
      button.textContent = 'Opening…';
      const outcome = await openRecord(link, who, code);
      button.disabled = false;
      button.textContent = 'Open record';
      if (outcome && outcome.passcode) {
        const n = outcome.remaining;
        fail('Wrong passcode' + (n === null ? '. Try again.' : ' — ' + n + (n === 1 ? ' attempt' : ' attempts') + ' left.'), passcode);
        passcode.value = '';
      }
    });
    function fail(text, field) {
      err.textContent = text;
      err.hidden = false;
      if (field) field.focus();
    }
    panel('form', link.label || 'Shared health record',
      h('p', { class: 'eyebrow' }, 'SMART Health Link'),
      h('p', { class: 'sub', id: 'form-expiry' }, 'Shared by the patient; ' + expiryText(link) + '.'),
      form);
    recipient.focus();
  }

  let wrongPasscodes = 0;

  // openRecord fetches, decrypts and renders the record. It returns
  // {passcode: true, remaining} when the passcode was wrong and the form
  // should stay; every other outcome replaces the page.
  async function openRecord(link, recipient, passcode) {
    if (link.exp && link.exp * 1000 <= Date.now()) {
      showExpired(link);
      return null;
    }
    let files;
    try {
      files = await retrieve(link, recipient, passcode);
    } catch (e) {
      if (!(e instanceof ViewerError)) {
        showProblem('error', 'The record could not be opened', 'Something unexpected went wrong.');
        return null;
      }
      switch (e.kind) {
        case 'passcode':
          wrongPasscodes++;
          if (e.remaining === 0) {
            showLocked();
            return null;
          }
          return { passcode: true, remaining: e.remaining };
        case 'unavailable':
          if (wrongPasscodes > 0) showLocked();
          else showUnavailable();
          return null;
        case 'network':
          showProblem('network', 'Could not reach the server', 'The server holding the record did not answer. Check the network connection and try again.',
            () => retryOpen(link, recipient, passcode));
          return null;
        default:
          showProblem('error', 'The record could not be opened', e.message, e.retry ? () => retryOpen(link, recipient, passcode) : null);
          return null;
      }
    }
    const status = h('p', { class: 'muted', id: 'progress' }, 'Decrypting…');
    show('loading', status);
    let data;
    try {
      const key = await crypto.subtle.importKey('raw', link.key, { name: 'AES-GCM' }, false, ['decrypt']);
      data = await decodeFiles(files, key);
    } catch (e) {
      showProblem('error', 'The record could not be decrypted', messageOf(e));
      return null;
    }
    if (!data.index.all.length) {
      showProblem('error', 'The record could not be shown', data.errors.join(' ') || 'The share holds no health records.');
      return null;
    }
    renderRecord(link, recipient, data);
    return null;
  }

  async function retryOpen(link, recipient, passcode) {
    show('loading', h('p', { class: 'muted', id: 'progress' }, 'Opening…'));
    const outcome = await openRecord(link, recipient, passcode);
    if (outcome && outcome.passcode) showForm(link, { recipient });
  }

  function start(link) {
    wrongPasscodes = 0;
    if (link.exp && link.exp * 1000 <= Date.now()) {
      showExpired(link);
      return;
    }
    showForm(link);
  }

  function main() {
    if (!window.crypto || !crypto.subtle || typeof DecompressionStream === 'undefined') {
      panel('unsupported', 'This browser cannot open the record',
        h('p', { id: 'status-text' }, 'Decrypting the record needs a current browser and a secure (https) connection.'));
      return;
    }
    let frag = location.hash.replace(/^#/, '');
    try {
      frag = decodeURIComponent(frag);
    } catch (e) {
      // not percent-encoded: use as is
    }
    if (!frag) {
      showPaste();
      return;
    }
    let link;
    try {
      link = parseLink(frag);
    } catch (e) {
      showMalformed(e instanceof ViewerError ? e.message : '');
      return;
    }
    start(link);
  }

  window.addEventListener('hashchange', main);
  main();
})();
