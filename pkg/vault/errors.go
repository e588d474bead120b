package vault

import "errors"

// Errors callers branch on. They are wrapped with context; test with
// errors.Is.
var (
	// ErrWrongKey: no key slot opens with the given secret.
	ErrWrongKey = errors.New("wrong passphrase, identity or recovery code")
	// ErrLocked: another process holds the vault.
	ErrLocked = errors.New("vault is in use by another process")
	// ErrNotFound: no record (or slot) with that ID.
	ErrNotFound = errors.New("not found")
	// ErrAmbiguous: an ID prefix matches several records.
	ErrAmbiguous = errors.New("ambiguous ID prefix")
	// ErrConflict: the record changed since the version the caller read.
	ErrConflict = errors.New("record was changed by someone else")
	// ErrExists: Create was asked to overwrite an existing file.
	ErrExists = errors.New("a vault already exists at this path")
	// ErrNotVault: the file is not a phr vault.
	ErrNotVault = errors.New("not a phr vault")
	// ErrNewerVersion: the vault was written by a newer phr.
	ErrNewerVersion = errors.New("vault was written by a newer version of phr")
	// ErrCorrupt: the file or a sealed value is damaged or was tampered with.
	ErrCorrupt = errors.New("vault file is damaged or was tampered with")
	// ErrLastSlot: removing the slot would leave no way in.
	ErrLastSlot = errors.New("cannot remove the last key slot")
	// ErrReadOnly: a write on a vault opened read-only.
	ErrReadOnly = errors.New("vault is open read-only")
	// ErrDeleted: the record is a tombstone.
	ErrDeleted = errors.New("record was deleted")
	// ErrStale: another opener of the same store (a phrd node) changed
	// the vault key (Rotate) or upgraded the vault's format since this
	// Vault was opened, so this one can no longer read or write it. Open
	// the vault again. A rotation's error matches ErrWrongKey too: the
	// key this Vault holds no longer opens the vault.
	ErrStale = errors.New("another opener changed the vault's key or format since this one opened it; open the vault again")
)

// errKeyChanged is ErrStale for a rotation: it matches ErrWrongKey too.
var errKeyChanged error = staleKeyError{}

type staleKeyError struct{}

func (staleKeyError) Error() string {
	return "another opener changed the vault key (rotation) since this one opened it; open the vault again"
}

func (staleKeyError) Is(target error) bool { return target == ErrStale || target == ErrWrongKey }
