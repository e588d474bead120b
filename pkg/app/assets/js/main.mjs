// The patient's app: its start, the screens behind the tabs, and the
// session. The screens are in signin.mjs, today.mjs, records.mjs,
// share.mjs and account.mjs; docs/app.md describes them.

import { loadToken, hasToken, onSessionEnded, setToken } from './api.mjs';
import { showSignIn, showCreate, showRecover, reauthSheet } from './signin.mjs';
import { showToday } from './today.mjs';
import { showRecords, showRecord } from './records.mjs';
import { showShare } from './share.mjs';
import { showAccount } from './account.mjs';

const tabs = document.getElementById('tabs');

// route shows the screen the address names. Signed out, only the sign-in
// screens are shown; any other address waits behind the sign-in.
export async function route() {
  const hash = location.hash.replace(/^#/, '') || 'today';
  const [name, arg] = hash.split('/');
  const publicScreens = { signin: showSignIn, create: showCreate, recover: showRecover };
  if (publicScreens[name]) {
    tabs.hidden = true;
    return publicScreens[name](afterSignIn);
  }
  if (!hasToken()) {
    tabs.hidden = true;
    return showSignIn(afterSignIn);
  }
  tabs.hidden = false;
  switch (name) {
    case 'records':
      return showRecords();
    case 'record':
      return showRecord(decodeURIComponent(arg || ''));
    case 'share':
      return showShare();
    case 'account':
      return showAccount();
    default:
      return showToday();
  }
}

// afterSignIn goes where the patient was going, or to Today.
function afterSignIn() {
  const h = location.hash.replace(/^#/, '');
  if (!h || /^(signin|create|recover)\b/.test(h)) location.hash = '#today';
  else route();
}

// signOut forgets the token and shows the sign-in screen.
export function signOut() {
  setToken(null, sessionStorage);
  location.hash = '#signin';
}

function networkState() {
  document.getElementById('net').hidden = navigator.onLine;
}

function start() {
  loadToken(sessionStorage);
  // An ended session asks for a sign-in on top of the screen, which
  // stays as it is: nothing typed is lost, and the request is sent again.
  onSessionEnded(() => reauthSheet());
  window.addEventListener('hashchange', route);
  window.addEventListener('online', networkState);
  window.addEventListener('offline', networkState);
  networkState();
  if ('serviceWorker' in navigator && window.isSecureContext) {
    navigator.serviceWorker.register('/app/sw.js', { scope: '/app/' }).catch(() => {
      document.documentElement.dataset.sw = 'failed';
    });
  }
  document.documentElement.dataset.ready = 'true';
  route();
}

start();
