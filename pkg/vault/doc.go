// Package vault is phr's encrypted record store: one bbolt file per patient,
// or the same buckets, keys and sealed values in any pkg/kv store.
//
// # Stores
//
// Create and Open make and open a vault in a bbolt file of its own, as the
// CLI keeps it: the file is made under a temporary name and renamed into
// place, locked against other processes, and rewritten without revoked
// secrets (Compact). CreateIn and OpenIn make and open a vault in any
// kv.DB, such as one PostgreSQL namespace (kv.Postgres.Namespace): the
// same code writes the same buckets, keys and sealed values there, so a
// store copied into a bbolt file (kv.Copy) opens with Open, and a backup
// of either restores into a file (Restore) or into an empty store
// (RestoreIn, in one transaction). A vault opened in a store
// does not own it: Close forgets the key and leaves the store open for
// its owner to close. What only a bbolt file has is skipped in a store:
// Check's check of the file's pages, the trimming of its mapping, and
// Compact, which has no file to rewrite and returns nil (what a deleted
// value leaves behind in PostgreSQL is the database's: docs/security.md).
//
// Any number of Vaults may be open on one store at once (phrd nodes on
// one PostgreSQL namespace, or OpenIn twice on one kv.BoltDB), reading
// and writing; the store serialises their write transactions, and what a
// Vault keeps between transactions follows the store:
//
//   - Import markers name their Vault and carry a lease, renewed by each
//     batch and once a minute while the import runs (imports.go). Open
//     for writing and Check with repair roll back only dead imports
//     (another Vault's whose lease expired, the Vault's own that no
//     import holds); a live import of another Vault is left alone.
//   - Imports of one file (one SHA-256) take turns across Vaults as
//     within one: the second waits while the first's marker is live
//     (BeginImportContext bounds the wait), then finds its records as
//     duplicates. In a store every batch writes its fingerprints, which
//     a file's imports hold in memory until their last batch.
//   - Compression dictionaries another Vault stored are loaded when a
//     record names one, and before training (compress.go).
//   - A key rotation or format upgrade by another Vault makes this one
//     fail with ErrStale (matching ErrWrongKey for a rotation) on its
//     next write, and on its next read that does not open: it never
//     writes under a key the store no longer uses. Open it again. Slots,
//     settings, the patient, the audit log, the head, the listing index
//     and the change sequence are read from the store in each
//     transaction.
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
// does not open. Records are compressed before they are sealed (S2, with
// dictionaries trained per record kind on the vault's own records, which
// are sealed too: compress.go). An authenticated head (head.go) covers
// every value, so an older value put back in its place is noticed too.
// Bucket names are single letters, record keys are random IDs, the
// listing index is a tree of sealed nodes (listing.go), and the dedup and
// identity indexes are keyed by HMAC-SHA256 under the vault key, so
// nothing about a patient (types, dates, codes, names, sources) is
// readable in the file without the key. docs/format.md describes the file
// byte by byte, and what its sizes and counts show.
//
// # Reading
//
// The listing index holds, for every record, what a listing shows and
// sorts by, in listing order; its root is in the head. Entries and Each
// stream a query's records from it (newest or oldest first, by kind, date
// range, source, text) without unsealing a record they do not give, and
// resume after a sealed cursor (EntriesAfter, EachAfter). Check reads the
// whole file in bounded memory.
//
// # Guarantees
//
//   - A batch of records is written in one transaction: all or none.
//   - A file imported in several transactions (BeginImport) is in the
//     vault whole or not at all, even if the process dies between them:
//     Open rolls back what an interrupted import wrote (RolledBack); in
//     a store, once the import's lease has expired (see Stores).
//   - Every change bumps the vault's change sequence; Changes(since) returns
//     each changed record (or its tombstone) once, in order.
//   - A vault of a newer format version, a truncated or corrupted file, or
//     a wrong key is refused with ErrNewerVersion, ErrCorrupt or
//     ErrWrongKey; Open never writes to a file it refuses. A vault of an
//     older format is read as it is, and upgraded when opened for writing.
//   - Only one process opens a vault file for writing at a time; a second
//     one gets ErrLocked after Options.LockTimeout. (A vault in a store:
//     see Stores.)
//   - A file that does not match its authenticated head (a value put back,
//     removed or added without the key) is refused with ErrTampered: by
//     Open for the key slots, the settings and the dictionaries; by every
//     read of the listing index for its nodes; by Get, Entries, Each and
//     List for each record they unseal, which must be the version its
//     listing entry names; and by Check for everything. Changes, History
//     and Backup check each value's seal, place and version only.
//     With Options.Heads, a file older than the newest this device has
//     seen is refused with ErrRolledBack.
//   - A selection by kind returns only records of those kinds: the
//     listing index it selects by is authenticated, and Each checks each
//     record's kind as well.
//   - After a secret is revoked (RemoveSlot, ReplaceSlots, Rotate) the
//     file is rewritten without it (Compact): nothing in it opens with
//     the old secret. A crash leaves the old file or the new one. (Not in
//     a store: see Stores.)
//   - No part of a record ID the vault gives is shared with another
//     vault's (NewID).
package vault
