// Share: a new SMART Health Link from a preset (or chosen kinds and a
// day), with an expiry, a passcode or none, and a label; then the link as
// a full-screen QR code with a copy button and the passcode; the list of
// shares with their state and who opened them; revoking in one tap.

import { S } from './strings.mjs';
import { request, errorText } from './api.mjs';
import { h, screen, card, field, input, select, button, errorLine, run, toast, badge } from './ui.mjs';
import { PRESETS, EXPIRIES, DEFAULT_EXPIRY, shareRequest, newPasscode, shareStatus, outcomeText } from './sharing.mjs';
import { KINDS, kindText } from './timeline.mjs';
import { encode, svgPath } from './qr.mjs';
import { svg } from '/view/js/dom.mjs';
import { fmtInstant } from '/view/js/dates.mjs';

function newShareCard(onCreated) {
  const presets = h('fieldset', { class: 'presets', id: 'share-presets' }, h('legend', null, S.share.what),
    PRESETS.map((p, i) => {
      const r = input({ type: 'radio', name: 'preset', value: p.id, id: 'preset-' + p.id });
      if (i === 0) r.checked = true;
      return h('label', { class: 'preset', for: r.id }, r, h('span', null, h('strong', null, S.share.presets[p.id].title), h('span', { class: 'sub' }, S.share.presets[p.id].text)));
    }));
  const custom = h('div', { class: 'custom', id: 'share-custom' },
    h('div', { class: 'checks' }, KINDS.map((k) => h('label', { class: 'check', for: 'share-type-' + k },
      input({ type: 'checkbox', id: 'share-type-' + k, value: k }), kindText(k)))),
    field(S.share.since, input({ type: 'date', id: 'share-since' }), S.share.sinceHint));
  custom.hidden = true;
  presets.addEventListener('change', () => {
    custom.hidden = presets.querySelector('input[name=preset]:checked').value !== 'custom';
  });
  const expiry = select({ id: 'share-expiry' }, EXPIRIES.map((hrs) => [String(hrs), S.share.expiry(hrs)]), String(DEFAULT_EXPIRY));
  const usePass = input({ type: 'checkbox', id: 'share-use-passcode' });
  const pass = input({ id: 'share-passcode', inputmode: 'numeric', autocomplete: 'off', value: newPasscode((b) => crypto.getRandomValues(b)) });
  const passField = field(S.share.passcode, pass, S.share.passcodeHint);
  passField.hidden = true;
  usePass.addEventListener('change', () => {
    passField.hidden = !usePass.checked;
  });
  const label = input({ id: 'share-label', maxlength: 80, value: S.share.defaultLabel(new Date()) });
  const err = errorLine('share-error');
  const btn = h('button', { type: 'submit', class: 'primary big', id: 'share-create' }, S.share.create);
  const form = h('form', { class: 'form', id: 'share-form' }, presets, custom,
    field(S.share.expires, expiry),
    h('label', { class: 'check', for: usePass.id }, usePass, S.share.usePasscode), passField,
    field(S.share.label, label, S.share.labelHint), err, btn);
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    run(btn, err, 'share', async () => {
      let body;
      try {
        body = shareRequest({
          preset: form.querySelector('input[name=preset]:checked').value,
          types: [...custom.querySelectorAll('input[type=checkbox]:checked')].map((c) => c.value),
          since: document.getElementById('share-since').value,
          hours: expiry.value, usePasscode: usePass.checked, passcode: pass.value, label: label.value,
        }, new Date());
      } catch (e) {
        if (e instanceof RangeError) return err.show(e.message);
        throw e;
      }
      const res = await request('POST', '/api/v1/shares', { body });
      onCreated(res, body.passcode || '');
      return undefined;
    });
  });
  return card('share-new', S.share.newTitle, form);
}

// qrView shows a new link full-screen: the QR code, the passcode, the
// link with a copy button. The link is shown only now: phrd forgot its
// key once it answered.
function qrView(res, passcode, back) {
  const link = res.link || '';
  const qr = encode(link);
  const side = qr.size + 8;
  const code = svg('svg', { viewBox: '0 0 ' + side + ' ' + side, class: 'qr', id: 'share-qr', role: 'img', 'aria-label': S.share.qrLabel, 'shape-rendering': 'crispEdges' },
    svg('rect', { width: side, height: side, fill: '#fff' }),
    svg('path', { d: svgPath(qr), fill: '#000' }));
  const copy = button(S.share.copy, { class: 'secondary', id: 'share-copy' });
  copy.addEventListener('click', () => {
    navigator.clipboard.writeText(link).then(() => {
      copy.textContent = S.copied;
    }, () => toast(S.share.copyFailed, true));
  });
  const done = button(S.share.done, { class: 'primary', id: 'share-done' });
  // Full screen: no tabs, and the phone's screen stays on while the
  // clinician scans (where the browser can keep it on).
  const tabs = document.getElementById('tabs');
  tabs.hidden = true;
  let lock = null;
  if (navigator.wakeLock) navigator.wakeLock.request('screen').then((l) => { lock = l; }, () => {});
  done.addEventListener('click', () => {
    if (lock) lock.release().catch(() => {});
    tabs.hidden = false;
    back();
  });
  const overlay = h('section', { class: 'qr-view', id: 'qr-view', 'aria-labelledby': 'qr-title' },
    h('h2', { id: 'qr-title' }, res.label || S.share.untitled),
    h('p', { class: 'sub' }, S.share.validUntil(fmtInstant(new Date(res.expires_at)))),
    code,
    passcode ? h('p', { class: 'passcode' }, S.share.passcodeIs, ' ', h('strong', { id: 'share-passcode-value' }, passcode)) : h('p', { class: 'sub' }, S.share.noPasscode),
    h('p', { class: 'link', id: 'share-link' }, link),
    h('div', { class: 'actions' }, copy, done),
    h('p', { class: 'hint' }, S.share.onlyNow));
  screen('share-qr', S.share.qrTitle, overlay);
}

function shareRow(info, reload) {
  const err = errorLine();
  const log = h('div', { class: 'share-log' });
  const logBtn = button(S.share.whoOpened, { class: 'link', 'data-log': info.id });
  logBtn.addEventListener('click', () => run(logBtn, err, '', async () => {
    const res = await request('GET', '/api/v1/shares/' + encodeURIComponent(info.id) + '/log');
    log.replaceChildren(res.log.length
      ? h('ul', { class: 'list' }, res.log.map((e) => h('li', null, fmtInstant(new Date(e.time)), ' — ', e.recipient || S.share.unnamed, ' ', badge(outcomeText(e), e.outcome === 'ok' ? 'ok' : 'warn'))))
      : h('p', { class: 'empty' }, S.share.notOpened));
  }));
  const actions = [logBtn];
  if (info.status === 'active') {
    const revoke = button(S.share.revoke, { class: 'danger', 'data-revoke': info.id });
    revoke.addEventListener('click', () => run(revoke, err, '', async () => {
      await request('DELETE', '/api/v1/shares/' + encodeURIComponent(info.id));
      toast(S.share.revoked(info.label || S.share.untitled));
      reload();
    }));
    actions.push(revoke);
  }
  return h('li', { class: 'share', 'data-share': info.id, 'data-status': info.status },
    h('div', { class: 'share-head' }, h('strong', null, info.label || S.share.untitled), ' ', badge(shareStatus(info), 'status-' + info.status)),
    h('div', { class: 'sub' }, [
      S.share.made(fmtInstant(new Date(info.created_at))),
      info.status === 'active' ? S.share.until(fmtInstant(new Date(info.expires_at))) : '',
      info.passcode ? S.share.withPasscode : '',
      S.share.uses(info.uses || 0),
    ].filter(Boolean).join(' · ')),
    h('div', { class: 'actions' }, actions), log, err);
}

export async function showShare() {
  const list = h('ul', { class: 'list shares', id: 'share-list' }, h('li', { class: 'muted' }, S.loading));
  const err = errorLine('shares-error');
  const reload = async () => {
    try {
      const res = await request('GET', '/api/v1/shares');
      list.replaceChildren(...(res.shares.length ? res.shares.map((s) => shareRow(s, reload)) : [h('li', { class: 'empty' }, S.share.none)]));
      err.clear();
    } catch (e) {
      err.show(errorText(e));
    }
  };
  const newCard = newShareCard((res, passcode) => qrView(res, passcode, () => showShare()));
  screen('share', S.share.title, newCard, card('share-existing', S.share.listTitle, err, list));
  await reload();
}
