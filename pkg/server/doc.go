// Package server is phrd: the JSON API (echo v4) over one encrypted vault
// per account, for patients' phone apps and `phr remote`. The routes, bodies
// and errors are documented in docs/api/openapi.yaml; the request and
// response types are in package api; operating it is in
// docs/operations.md.
//
// # Accounts and keys
//
// An account is a vault file DATA/vaults/<id>.phr, or with a database
// (Config.DatabaseURL) the namespace vault/<id> of it, where <id> is the
// hex HMAC-SHA256 of the lower-cased username under DATA/server.key: the
// names say nothing about their owners (vaultstore.go). There is no password table: logging in
// opens the vault with the passphrase (or a device credential, an age
// X25519 identity whose recipient is one of the vault's key slots), and
// that is the password check. The unwrapped vault key lives only in the
// open *vault.Vault, in memory, while a session of the account lives or a
// request of it runs; all sessions of an account share that one open vault,
// and the last one to end closes it. Restart forgets every session.
//
// # Guarantees
//
//   - A session token is 256 random bits; the server keeps only its
//     SHA-256. Sessions end after an idle timeout and an absolute one.
//   - A wrong username, passphrase or device credential gets the same 401
//     after the same work (an unknown username runs a dummy scrypt of the
//     same cost). Passphrase checks (logins and the key routes) are limited
//     per account and every login per client address (429 with
//     Retry-After); concurrent scrypt work (passphrase unlocks and share
//     passcode hashes and checks alike) is bounded by one semaphore with a
//     short queue (503 with Retry-After), so a flood of logins or of
//     manifest requests cannot starve other requests or exhaust memory. A client that sends too many wrong bearer
//     tokens gets 429 for every token until its bucket refills.
//   - A record ID of another account is 404: each request sees only its
//     own account's vault.
//   - Every error is {"error": {"code", "message"}} from one mapping
//     (errorStatus), the public share routes' errors included; anything
//     unexpected is a 500 "Internal error." and a log line with the
//     error's type only.
//   - Logs name route templates, status, latency and a shortened account
//     ID (itself an HMAC), never URLs, queries, bodies, tokens, passphrases,
//     usernames or PHI.
//   - Every route that takes a body has a limit in one table (bodyRules):
//     a declared length over it is 413 before a byte is read, a chunked
//     body is cut at it, and the connection is closed, not drained. JSON
//     bodies are held to a nesting depth and a count of values in one scan
//     before decoding, and decoded strictly (unknown, mis-cased or
//     repeated names are 400).
//   - Every response carries security headers (nosniff, no-referrer, DENY
//     framing, a default-src 'none' CSP, no-store, HSTS under TLS); CORS
//     headers are on the public /shl routes only.
//   - Nothing about who shares with whom is readable from a copy of the
//     data directory: the share store's secret is in a key file outside it
//     (Config.ShareKeyFile).
//   - Uploads are spooled sealed under a key held in memory only (spool),
//     never in plaintext on disk.
//   - The client address (rate limits, registration, audit) is the peer's,
//     or behind Config.TrustedProxies the rightmost X-Forwarded-For entry
//     outside them; accounts are made through the API by local clients
//     only unless registration is open.
//   - The owner's audit events and the accesses to their shares are listed
//     apart, each a page at a time; a share logs at most 10 accesses a
//     minute and counts the rest.
//   - Metrics are not served by Handler: MetricsHandler is for a separate
//     listener (phrd's --metrics-addr), off by default.
package server
