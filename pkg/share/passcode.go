package share

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"

	"golang.org/x/crypto/scrypt"
)

// Passcode hashes are self-describing strings:
//
//	$scrypt$ln=15,r=8,p=1$<salt>$<hash>
//
// where ln is log2 of scrypt's N, salt is 16 random bytes and hash is 32
// bytes, both in unpadded standard base64. The parameters travel with the
// hash, so raising the cost later does not break stored hashes.
const (
	passcodeScheme   = "scrypt"
	defaultLogN      = 15 // N = 32768: about 32 MiB and tens of milliseconds
	passcodeR        = 8
	passcodeP        = 1
	passcodeSaltSize = 16
	passcodeHashSize = 32

	// Bounds CheckPasscode accepts, so a corrupt or hostile stored hash
	// cannot make it allocate gigabytes or spin for minutes.
	maxLogN = 20
	maxR    = 32
	maxP    = 16
)

var passcodeB64 = base64.RawStdEncoding.Strict()

// passcodeLogN is log2(N) for new hashes; tests lower it.
var passcodeLogN atomic.Int32

func init() { passcodeLogN.Store(defaultLogN) }

// SetPasscodeCostForTesting makes HashPasscode use scrypt with N = 2^logN
// (normally 2^15) and returns a function that restores the previous value.
// It exists so tests run fast; production code must never call it.
// CheckPasscode reads the cost from each hash, so hashes made with a low
// cost still verify.
func SetPasscodeCostForTesting(logN int) (restore func()) {
	if logN < 1 || logN > maxLogN {
		panic("share: SetPasscodeCostForTesting: logN out of range")
	}
	prev := passcodeLogN.Swap(int32(logN))
	return func() { passcodeLogN.Store(prev) }
}

// MaxPasscodeLength is the longest passcode, in bytes: 1024, as phrd's
// manifest requests allow. scrypt's cost grows with the passcode's length,
// so a longer one is neither hashed nor checked.
const MaxPasscodeLength = 1024

// HashPasscode returns a salted scrypt hash of passcode for storage. The
// passcode is used byte for byte (no Unicode normalization). An empty
// passcode, or one over MaxPasscodeLength bytes, is a *FieldError wrapping
// ErrInvalidPasscode. The error never contains the passcode.
func HashPasscode(passcode string) (string, error) {
	if passcode == "" {
		return "", fieldErr(ErrInvalidPasscode, "passcode", "must not be empty")
	}
	if len(passcode) > MaxPasscodeLength {
		return "", fieldErr(ErrInvalidPasscode, "passcode", "must be at most %d bytes", MaxPasscodeLength)
	}
	logN := int(passcodeLogN.Load())
	salt := make([]byte, passcodeSaltSize)
	rand.Read(salt)
	dk, err := scrypt.Key([]byte(passcode), salt, 1<<logN, passcodeR, passcodeP, passcodeHashSize)
	if err != nil {
		return "", fmt.Errorf("share: hashing passcode: %w", err)
	}
	return fmt.Sprintf("$%s$ln=%d,r=%d,p=%d$%s$%s", passcodeScheme, logN, passcodeR, passcodeP,
		passcodeB64.EncodeToString(salt), passcodeB64.EncodeToString(dk)), nil
}

// CheckPasscode reports whether passcode matches hash, a string made by
// HashPasscode. The comparison is constant-time. A malformed hash, or one
// whose parameters are out of bounds, never matches, and neither does a
// passcode over MaxPasscodeLength bytes (it is not hashed).
func CheckPasscode(hash, passcode string) bool {
	if len(passcode) > MaxPasscodeLength {
		return false
	}
	ph, ok := parsePasscodeHash(hash)
	if !ok {
		return false
	}
	dk, err := scrypt.Key([]byte(passcode), ph.salt, 1<<ph.logN, ph.r, ph.p, len(ph.hash))
	if err != nil {
		return false
	}
	return subtle.ConstantTimeCompare(dk, ph.hash) == 1
}

type passcodeHash struct {
	logN, r, p int
	salt, hash []byte
}

func parsePasscodeHash(s string) (passcodeHash, bool) {
	var ph passcodeHash
	// "", "scrypt", "ln=..,r=..,p=..", salt, hash
	parts := strings.Split(s, "$")
	if len(parts) != 5 || parts[0] != "" || parts[1] != passcodeScheme {
		return ph, false
	}
	params := strings.Split(parts[2], ",")
	if len(params) != 3 {
		return ph, false
	}
	for i, name := range []string{"ln", "r", "p"} {
		v, ok := strings.CutPrefix(params[i], name+"=")
		if !ok {
			return ph, false
		}
		n, err := strconv.Atoi(v)
		if err != nil {
			return ph, false
		}
		switch name {
		case "ln":
			ph.logN = n
		case "r":
			ph.r = n
		case "p":
			ph.p = n
		}
	}
	if ph.logN < 1 || ph.logN > maxLogN || ph.r < 1 || ph.r > maxR || ph.p < 1 || ph.p > maxP {
		return ph, false
	}
	var err error
	if ph.salt, err = passcodeB64.DecodeString(parts[3]); err != nil || len(ph.salt) < 8 || len(ph.salt) > 64 {
		return ph, false
	}
	if ph.hash, err = passcodeB64.DecodeString(parts[4]); err != nil || len(ph.hash) < 16 || len(ph.hash) > 64 {
		return ph, false
	}
	return ph, true
}
