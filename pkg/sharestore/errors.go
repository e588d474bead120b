package sharestore

import (
	"errors"
	"fmt"
)

// Errors callers branch on, with errors.Is or errors.As; messages never
// contain a manifest id, passcode, label, recipient or owner.
var (
	// ErrNotFound means there is no share with that id (for this owner),
	// or it can no longer be served: expired, revoked, used up, locked
	// after too many wrong passcodes, or purged. The public answer to all
	// of these is the same 404; Access returns a *UnavailableError (which
	// matches ErrNotFound) when the share exists, so the daemon can log
	// why without telling the requester.
	ErrNotFound = errors.New("sharestore: share not found or no longer available")

	// ErrInvalid means a ShareSpec (or another argument) breaks a rule;
	// the wrapping error names the field and the rule.
	ErrInvalid = errors.New("sharestore: invalid share")

	// ErrLocked means another process holds the store file.
	ErrLocked = errors.New("sharestore: store file is in use by another process")

	// ErrWrongSecret means the store file was created with another secret;
	// with the wrong secret no share could ever be found, so Open refuses.
	ErrWrongSecret = errors.New("sharestore: the secret does not belong to this store file")

	// ErrCorrupt means a stored value cannot be decoded or unsealed.
	ErrCorrupt = errors.New("sharestore: store file is damaged or was tampered with")

	// ErrNewerVersion means the file was written by a newer phr.
	ErrNewerVersion = errors.New("sharestore: store file was written by a newer version of phr")

	// ErrClosed means the store was closed.
	ErrClosed = errors.New("sharestore: store is closed")

	// ErrBusy means Options.MaxChecksPerShare passcode checks of the share
	// are in flight already; nothing was spent or logged. The SMART Health
	// Links specification lets a server answer such a request 429 with
	// Retry-After.
	ErrBusy = errors.New("sharestore: too many passcode checks of this share at once")
)

// PasscodeError is returned by Access for a wrong (or missing) passcode on
// a share that needs one. Remaining is how many more wrong passcodes the
// share accepts over its whole lifetime before it locks for good; the
// manifest endpoint answers 401 {"remainingAttempts": Remaining}.
type PasscodeError struct {
	Remaining int
}

func (e *PasscodeError) Error() string {
	return fmt.Sprintf("sharestore: wrong passcode (%d attempts remaining)", e.Remaining)
}

// UnavailableError is returned by Access, AccessDirect and FileByToken for
// a share that exists but cannot be served. Reason is one of
// OutcomeExpired, OutcomeRevoked, OutcomeUsedUp and OutcomeLocked. It
// matches ErrNotFound, so callers that only need the public answer test
// errors.Is(err, ErrNotFound).
type UnavailableError struct {
	Reason string
}

func (e *UnavailableError) Error() string {
	return "sharestore: share is not available (" + e.Reason + ")"
}

// Is makes an *UnavailableError match ErrNotFound.
func (e *UnavailableError) Is(target error) bool { return target == ErrNotFound }

func invalid(field, format string, args ...any) error {
	return fmt.Errorf("%w: %s %s", ErrInvalid, field, fmt.Sprintf(format, args...))
}
