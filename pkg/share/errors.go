package share

import (
	"errors"
	"fmt"
)

// Sentinel errors. Every error returned by this package wraps one of them,
// so callers branch with errors.Is and never by matching message text.
var (
	// ErrInvalidLink means a string is not a well-formed SMART Health Link,
	// or its payload breaks a rule of the specification. Field-level
	// problems are reported as a *FieldError that wraps ErrInvalidLink.
	ErrInvalidLink = errors.New("share: invalid SMART Health Link")

	// ErrKeySize means a key is not exactly 32 bytes (AES-256).
	ErrKeySize = errors.New("share: key must be 32 bytes")

	// ErrMalformedJWE means a string is not a compact JWE of the shape
	// SMART Health Links use (five base64url segments, empty encrypted key,
	// 96-bit IV, 128-bit tag, JSON object header).
	ErrMalformedJWE = errors.New("share: malformed JWE")

	// ErrUnsupportedJWE means a JWE header asks for an algorithm, encryption,
	// compression or critical extension that SMART Health Links do not use.
	// The offending header parameter is reported as a *FieldError.
	ErrUnsupportedJWE = errors.New("share: unsupported JWE")

	// ErrDecrypt means authenticated decryption failed: the key is wrong or
	// the header, IV, ciphertext or tag was modified.
	ErrDecrypt = errors.New("share: JWE decryption failed (wrong key or modified file)")

	// ErrTooLarge means a file's plaintext would exceed the configured limit
	// (see WithMaxPlaintext); with compression this stops zip bombs.
	ErrTooLarge = errors.New("share: decrypted file exceeds size limit")

	// ErrInvalidPasscode means a passcode cannot be hashed: it is empty or
	// longer than MaxPasscodeLength.
	ErrInvalidPasscode = errors.New("share: invalid passcode")

	// ErrInvalidManifest means a manifest, manifest file entry or manifest
	// request breaks a rule of the specification.
	ErrInvalidManifest = errors.New("share: invalid manifest")

	// ErrQR means text could not be encoded as a QR code (for example, it
	// is too long) or the requested image size cannot hold it.
	ErrQR = errors.New("share: cannot make QR code")

	// Errors of Retrieve (the receiver's side). None of them contains the
	// link's url, key, label or passcode.

	// ErrLinkExpired means the link's exp is in the past: it was not
	// requested.
	ErrLinkExpired = errors.New("share: the link has expired")

	// ErrLinkUnavailable means the server answered 404: the link, or one
	// of its files, expired, was revoked, used up or never existed.
	ErrLinkUnavailable = errors.New("share: the link is not available (expired, revoked or used up)")

	// ErrUnsupportedVersion means the link says (its "v") it follows a
	// later version of the protocol than this package's Version; as the
	// specification advises, nothing was requested.
	ErrUnsupportedVersion = errors.New("share: the link uses a later version of SMART Health Links than phr supports")

	// ErrPasscodeRequired means the link has the P flag and no passcode
	// was given; nothing was requested.
	ErrPasscodeRequired = errors.New("share: the link needs a passcode")

	// ErrWrongPasscode means the server refused the passcode (HTTP 401).
	// The error is a *PasscodeError that says how many attempts remain.
	ErrWrongPasscode = errors.New("share: wrong passcode")

	// ErrServer means the server answered something the specification
	// does not allow (another status, a location that is not a JWE), or
	// could not be reached.
	ErrServer = errors.New("share: the link's server failed")
)

// FieldError reports which field (a payload property, a JWE header parameter
// or a manifest property) is wrong and why. It wraps one of the sentinel
// errors above, so both errors.As(err, &fe) and errors.Is(err, ErrX) work.
//
// Reasons never contain key material, passcodes, URLs or labels: only the
// rule that was broken.
type FieldError struct {
	Field  string // e.g. "key", "flag", "alg", "files[0].location"
	Reason string // e.g. "must be 43 base64url characters"
	Err    error  // the sentinel this error wraps
}

// Error names the field and the broken rule.
func (e *FieldError) Error() string {
	kind := "share"
	if e.Err != nil {
		kind = e.Err.Error()
	}
	return fmt.Sprintf("%s: field %q %s", kind, e.Field, e.Reason)
}

// Unwrap returns the sentinel error the field error belongs to.
func (e *FieldError) Unwrap() error { return e.Err }

func fieldErr(sentinel error, field, format string, args ...any) error {
	return &FieldError{Field: field, Reason: fmt.Sprintf(format, args...), Err: sentinel}
}

// quoteShort quotes an untrusted, non-secret value for an error message,
// cutting it so that garbage input cannot produce huge messages.
func quoteShort(s string) string {
	const max = 32
	if len(s) > max {
		return fmt.Sprintf("%q...", s[:max])
	}
	return fmt.Sprintf("%q", s)
}
