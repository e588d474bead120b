// The app's service worker: it keeps the app's shell (the page, its
// stylesheet, icons, manifest and code, listed by phrd when it serves
// this file) so that the app opens without a network, and nothing else.
// Records, API answers, share links and uploads are never cached: a
// request for anything outside the shell goes to the network untouched.
// docs/app.md says more; TestServiceWorkerCachesOnlyTheShell checks it.

'use strict';

const VERSION = '__SHELL_VERSION__';
const SHELL = __SHELL_FILES__;
const CACHE = 'phr-shell-' + VERSION;

// inShell says whether a request is one of the shell's files: a GET of
// this origin whose path is listed, with no query. The page itself is
// "/app/" (a fragment never reaches here).
function inShell(url, method, origin) {
  if (method !== 'GET') return false;
  let u;
  try {
    u = new URL(url);
  } catch (e) {
    return false;
  }
  return u.origin === origin && u.search === '' && SHELL.includes(u.pathname);
}

self.addEventListener('install', (event) => {
  event.waitUntil(
    caches.open(CACHE)
      .then((cache) => cache.addAll(SHELL.map((p) => new Request(p, { cache: 'no-store', credentials: 'omit' }))))
      .then(() => self.skipWaiting()),
  );
});

self.addEventListener('activate', (event) => {
  event.waitUntil(
    caches.keys()
      .then((names) => Promise.all(names.filter((n) => n.startsWith('phr-shell-') && n !== CACHE).map((n) => caches.delete(n))))
      .then(() => self.clients.claim()),
  );
});

// The shell is fetched from the network first, so that the app is always
// the one phrd serves now (and fits its API); the cached copy answers
// only when the network does not.
self.addEventListener('fetch', (event) => {
  const req = event.request;
  if (!inShell(req.url, req.method, self.location.origin)) return; // the network, as if there were no worker
  event.respondWith(
    fetch(req, { cache: 'no-store' })
      .then((res) => {
        if (res.ok) {
          const copy = res.clone();
          event.waitUntil(caches.open(CACHE).then((cache) => cache.put(req, copy)));
        }
        return res;
      })
      .catch(() => caches.open(CACHE).then((cache) => cache.match(req)).then((hit) => hit || Response.error())),
  );
});

// For the node tests (jstest/sw.test.mjs), which run this file in a
// sandbox with a stand-in `self`.
self.__phrShell = { inShell, SHELL, CACHE };
