// Package vault is phr's encrypted record store: one bbolt file per patient.
//
// # Keys
//
// A vault has one 32-byte vault key, made at Create and never written in
// the clear. It is wrapped with age once per key slot: a passphrase (age's
// scrypt recipient), a device identity (X25519, or any age identity,
// plugins included), or a recovery code. Any one slot unlocks the vault.
//
// # Sealing
//
// Every value that says anything about the patient is sealed with
// XChaCha20-Poly1305 under a subkey derived from the vault key with
// HKDF-SHA256, with a random nonce, and with additional data binding it to
// the vault ID, the bucket, the key it is stored under and its version: a
// sealed value moved to another record, another vault or another version
// does not open. An authenticated head (head.go) covers every value, so an
// older value put back in its place is noticed too. Bucket names are
// single letters, record keys are random IDs, and the indexes are keyed by
// HMAC-SHA256 under the vault key, so nothing about a patient (types,
// dates, codes, names, sources) is readable in the file without the key.
// docs/format.md describes the file byte by byte.
//
// # Guarantees
//
//   - A batch of records is written in one transaction: all or none.
//   - A file imported in several transactions (BeginImport) is in the
//     vault whole or not at all, even if the process dies between them:
//     Open rolls back what an interrupted import wrote (RolledBack).
//   - Every change bumps the vault's change sequence; Changes(since) returns
//     each changed record (or its tombstone) once, in order.
//   - A vault of a newer format version, a truncated or corrupted file, or
//     a wrong key is refused with ErrNewerVersion, ErrCorrupt or
//     ErrWrongKey; Open never writes to a file it refuses.
//   - Only one process opens a vault for writing at a time; a second one
//     gets ErrLocked after Options.LockTimeout.
//   - A file that does not match its authenticated head (a value put back,
//     removed or added without the key) is refused with ErrTampered: by
//     Open for the key slots, the settings and the change sequence; by
//     full listings, selections by kind (Verify) and Check for the records.
//     With Options.Heads, a file older than the newest this device has
//     seen is refused with ErrRolledBack.
//   - A selection by kind returns only records of those kinds, whatever
//     the (unauthenticated) kind index says.
//   - After a secret is revoked (RemoveSlot, ReplaceSlots, Rotate) the
//     file is rewritten without it (Compact): nothing in it opens with
//     the old secret. A crash leaves the old file or the new one.
//   - No part of a record ID the vault gives is shared with another
//     vault's (NewID).
package vault
