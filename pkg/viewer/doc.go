// Package viewer serves the page a provider opens a SMART Health Link
// with: phrd mounts Handler at Path ("/view"), and share links point at
// "https://HOST/view#shlink:/...".
//
// The page is embedded files (viewer.html, viewer.css and the ES modules
// under assets/js, loaded with <script type="module">; no build step; the
// vital-sign table they import, assets/js/vitals.json, is generated from
// pkg/record by go generate and committed) and
// needs nothing else from the server: it reads the link from the URL
// fragment, which browsers never send to a server, asks for the
// recipient's name (and the passcode of a P-flag link), fetches the
// manifest and the encrypted files from the link's url (any host, so
// links issued elsewhere open too), decrypts them in the browser with
// WebCrypto AES-GCM and DecompressionStream("deflate-raw"), and renders
// the FHIR resources as readable, printable sections. docs/viewer.md
// describes what the page shows and in which order.
//
// # Guarantees
//
//   - The key never reaches any server: the server hosting the viewer
//     sees only requests for the page's static files, and the manifest
//     host sees the recipient name and passcode the provider types, as the
//     protocol requires, but never the key.
//   - The key leaves the address bar at once: the page removes the
//     fragment with history.replaceState before anything else, so it is
//     not kept in the browser's history.
//   - Every response carries ContentSecurityPolicy, which allows only the
//     page's own scripts and stylesheet (no inline script or style, no
//     plugins, no framing, no form submission) and lets the script
//     connect to any manifest host. The page has no inline script or
//     style, so the policy costs nothing.
//   - Shared data is rendered as text only (textContent and DOM nodes,
//     never HTML parsing): markup in a record shows up literally.
//   - Responses are never cached (Cache-Control: no-store), never sniffed
//     (X-Content-Type-Options: nosniff) and send no Referer.
//
// The page's behaviour is tested in a real headless Chromium (Debian's
// chromium package, driven with chromedp), and its pure functions with
// node (jstest/*.test.mjs, run by TestJavaScriptUnits); both skip when
// their program is missing unless the CI environment variable is set.
package viewer
