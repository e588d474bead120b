// Package app serves the patient's app: an installable web app (a PWA)
// for the phone, on phrd's public API, the API a native app would use.
// phrd mounts Handler at Routes() and ModuleDir, and redirects "/" to
// Path ("/app/"). docs/app.md describes the screens.
//
// The app is embedded files with no build step: index.html, app.css, a
// web app manifest, icons, a service worker (sw.js) and plain ES modules
// under assets/js. The viewer's pure modules (dates as written, units,
// FHIR to text, the element builder) are imported from /view/js/, not
// copied. vitals.json, the vital signs and their units the forms offer,
// is made from pkg/record's table when the package loads.
//
// # Guarantees
//
//   - Every response carries ContentSecurityPolicy: the app's own
//     scripts, stylesheet, images, manifest and worker only; requests to
//     phrd only; no inline script or style, no plugins, no framing, no
//     form submission. No file comes from a third party.
//   - The service worker caches the shell (Shell: the app's files and the
//     viewer modules it imports) and nothing else: records, API answers,
//     share links and uploads always go to the network and are never
//     stored by it. sw.js is served with the shell's list and a hash of
//     its contents, so a new phrd replaces the cache.
//   - The session token is kept for the browser tab only
//     (sessionStorage), never in a cookie, a URL or the cache; the
//     passphrase is never stored.
//   - Everything from the server or a record reaches the page as text
//     (the viewer's h builder, textContent): never parsed as HTML.
//   - A share link is drawn as a QR code in the page (assets/js/qr.mjs):
//     the link, and the key in it, are not sent anywhere to be drawn.
//
// The pure modules are tested with node (jstest/*.test.mjs, run by
// TestJavaScriptUnits), the QR encoder also against phr's QR reader
// (TestQREncoderDecodes), and the app itself in Debian's Chromium at
// phone and desktop sizes, signing in with a virtual WebAuthn
// authenticator (TestAppInBrowser). They skip without node or chromium
// unless CI is set.
package app
