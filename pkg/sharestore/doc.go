// Package sharestore keeps the shares phrd serves as SMART Health Links:
// for each share its encrypted files, flag, expiry, passcode hash, attempt
// and use counters, revocation, owner and access log, in one bbolt file
// (DATA/shares.db in phrd; Open) or in a namespace of phrd's PostgreSQL
// database (OpenDB), which any number of phrd nodes share. Both hold the
// same keys and sealed values (pkg/kv).
//
// # Guarantees
//
//   - Ciphertext only. Files are stored as the compact JWEs the sharer
//     made (Create refuses anything that is not JWE-shaped with
//     "alg":"dir", "enc":"A256GCM" and a "cty" equal to the file's content
//     type). No link key and no plaintext ever reaches the store.
//   - Nothing readable about who shared what with whom. Records are keyed
//     by HMAC(secret, manifest id), so the file does not hold the ids
//     (which are capabilities); owners are stored as HMAC(secret, owner);
//     the id, the label and every recipient name in the access log are
//     sealed with XChaCha20-Poly1305 under a key derived from the secret,
//     bound to their place (share and field). Passcodes are stored as
//     salted scrypt hashes (share.HashPasscode). The secret lives apart
//     from the file: the caller gives it (Options.Secret), for example
//     from a key file elsewhere (LoadOrCreateSecret).
//   - A lifetime budget of wrong passcodes (at most MaxAttemptsLimit) that
//     holds under any concurrency: see Store.Access. A crash can only lose
//     attempts, never grant extra ones. On PostgreSQL it holds across
//     nodes: each reservation and settlement is one transaction under the
//     share's lock (kv.KeyedDB), so no two nodes read the same count.
//   - Bounded passcode work: every scrypt (hashing in Create, checking in
//     Access) holds a slot of Options.Gate, and at most
//     Options.MaxChecksPerShare checks of one share are in flight (more
//     get ErrBusy at once, spending nothing).
//   - A bounded access log: per share, the last DefaultMaxLogEntries
//     entries, at most Options.MaxLogPerMinute written a minute; the
//     accesses beyond are counted, not logged one by one.
//   - One rule for "servable" (availability): a share is refused once
//     revoked, expired, used up (MaxUses) or locked (no attempts left),
//     and every refusal matches ErrNotFound, so the public answer is the
//     same 404 whatever the reason; the reason is kept in the owner's
//     access log.
//   - Location tokens (LocationToken, FileByToken) are HMAC-signed
//     capabilities for one file of one share, valid at most an hour,
//     checked in constant time.
//   - Revocation deletes the ciphertext at once; Sweep deletes it for
//     expired, used-up and locked shares, and deletes the metadata and
//     logs after the retention period.
//
// The file layout, token format and request flow are described in
// docs/share-protocol.md.
//
// # Transaction discipline
//
// Transactions are short and do no I/O besides the store's own; values are
// copied out before a transaction ends. The scrypt passcode check runs
// between transactions. Writes on the request path use DB.Batch, whose
// functions only assign their results (they may run more than once).
// Refusals of dead links are logged by a background writer, so refusing
// an expired link costs one read transaction, like an unknown id.
package sharestore
