package sharestore

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"time"

	"github.com/phr-project/phr/pkg/kv"
)

// MaxTokenLifetime is the longest a location token stays valid, as the
// specification requires of files[].location URLs.
const MaxTokenLifetime = time.Hour

// A location token is a capability for one file of one share until an
// expiry time:
//
//	token = base64url( 0x01 | file id (16) | expiry (8, big-endian Unix seconds) | mac (32) )
//	mac   = HMAC-SHA256(token key, "loc" | lookup key of the share id | file id | expiry)
//
// The token key is derived from the store secret; the share id is not in
// the token (it is in the URL path) but is bound by the MAC, so a token
// cannot be moved to another share or file, nor its expiry extended.
const (
	tokenVersion = 1
	tokenRawLen  = 1 + 16 + 8 + 32
	// TokenLength is the length of a location token in characters.
	TokenLength = (tokenRawLen*8 + 5) / 6
)

var tokenEnc = base64.RawURLEncoding.Strict()

// LocationToken returns a token for file fileID of share id, valid from
// now for ttl (at most MaxTokenLifetime; a larger or non-positive ttl
// means MaxTokenLifetime). It does not look at the store: call it only for
// files of a share Access just granted.
func (s *Store) LocationToken(id, fileID string, now time.Time, ttl time.Duration) (string, error) {
	raw, err := fileIDEnc.DecodeString(fileID)
	if err != nil || len(raw) != 16 {
		return "", invalid("file id", "is malformed")
	}
	if ttl <= 0 || ttl > MaxTokenLifetime {
		ttl = MaxTokenLifetime
	}
	// Round the expiry down to a second, so the token never outlives ttl.
	exp := now.Add(ttl).Unix()
	b := make([]byte, 0, tokenRawLen)
	b = append(b, tokenVersion)
	b = append(b, raw...)
	b = binary.BigEndian.AppendUint64(b, uint64(exp))
	b = append(b, s.tokenMAC(s.lookupKey(id), raw, b[17:25])...)
	return tokenEnc.EncodeToString(b), nil
}

func (s *Store) tokenMAC(lk, fileID, exp []byte) []byte {
	m := hmac.New(sha256.New, s.k.token[:])
	m.Write([]byte("loc"))
	m.Write(lk)
	m.Write(fileID)
	m.Write(exp)
	return m.Sum(nil)
}

// FileByToken returns the file a location token names, with its JWE, if
// the token is authentic (checked in constant time), bound to share id,
// not expired at now, and the share is neither revoked nor expired nor
// purged. A share that was used up or locked after the manifest was
// served still serves its files until the token expires: the token was
// granted by an access that counted. Errors match ErrNotFound.
func (s *Store) FileByToken(id, token string, now time.Time) (File, string, error) {
	if len(token) != TokenLength {
		return File{}, "", ErrNotFound
	}
	b, err := tokenEnc.DecodeString(token)
	if err != nil || len(b) != tokenRawLen || b[0] != tokenVersion {
		return File{}, "", ErrNotFound
	}
	lk := s.lookupKey(id)
	raw, expB, mac := b[1:17], b[17:25], b[25:]
	if !hmac.Equal(mac, s.tokenMAC(lk, raw, expB)) {
		return File{}, "", ErrNotFound
	}
	if exp := int64(binary.BigEndian.Uint64(expB)); now.Unix() >= exp {
		return File{}, "", &UnavailableError{Reason: OutcomeExpired}
	}
	fileID := fileIDEnc.EncodeToString(raw)
	var f File
	var jwe string
	err = s.db.View(func(tx kv.Tx) error {
		r, err := getRecord(tx, lk)
		if err != nil {
			return err
		}
		switch {
		case !r.RevokedAt.IsZero():
			return &UnavailableError{Reason: OutcomeRevoked}
		case !now.Before(r.Expires), !r.PurgedAt.IsZero():
			return &UnavailableError{Reason: OutcomeExpired}
		}
		found := false
		for _, m := range r.Files {
			if m.ID == fileID {
				f, found = File(m), true
			}
		}
		v := tx.Bucket(bucketFiles).Get(append(lk, raw...))
		if !found || v == nil {
			return ErrNotFound
		}
		jwe = string(v)
		return nil
	})
	if err != nil {
		return File{}, "", err
	}
	return f, jwe, nil
}
