package vault

import (
	"crypto/subtle"
	"fmt"
	"slices"

	"github.com/phr-project/phr/internal/seal"
)

// Session keys: the vault key wrapped under a key that only a session's
// holder has, so that whichever process is given the session can open the
// vault without the secret that first unlocked it (phrd, where any node
// serves any session: the wrapped key is stored with the session, the key
// that unwraps it is derived from the session's token, which only the
// client holds).
//
// A wrapped key names the slot the session came in by and opens the vault
// only while that slot holds the same vault key: removing the slot, or
// rotating the vault key (which rewraps every slot under a new key), makes
// every key wrapped before useless (ErrWrongKey). phrd rewraps the key of
// the session that made such a change.
//
//	0x01 ‖ len(slot ID) (1) ‖ slot ID ‖ nonce (24) ‖ XChaCha20-Poly1305(vault key) ‖ tag (16)
//	additional data: sessionPurpose ‖ vault ID (16) ‖ slot ID

const (
	sessionWrapV1  = 1
	sessionPurpose = "phr vault session key v1\x00"
	// SessionKeySize is the size of the key that wraps a session's vault
	// key.
	SessionKeySize = seal.KeySize
)

// slotSession is the kind of a Secret made by SessionSecret; no stored
// slot has it.
const slotSession SlotKind = "session"

// sessionSecret is a parsed wrapped key and the key that opens it.
type sessionSecret struct {
	slotID  string
	sealed  []byte // nonce ‖ ciphertext ‖ tag
	wrapKey []byte
}

// WrapForSession seals the vault key under k (SessionKeySize bytes) for a
// session that came in by the slot slotID (one of this vault's slots).
// SessionSecret(wrapped, k) opens the vault again, in this process or
// another, until the slot is removed or the vault key rotated.
func (v *Vault) WrapForSession(k []byte, slotID string) ([]byte, error) {
	if len(k) != SessionKeySize {
		return nil, fmt.Errorf("vault: a session key has %d bytes, not %d", SessionKeySize, len(k))
	}
	if slotID == "" || len(slotID) > 255 {
		return nil, fmt.Errorf("vault: session slot: %w", ErrNotFound)
	}
	slots, err := v.Slots()
	if err != nil {
		return nil, err
	}
	if !slices.ContainsFunc(slots, func(s Slot) bool { return s.ID == slotID }) {
		return nil, fmt.Errorf("vault: session slot: %w", ErrNotFound)
	}
	aead, err := seal.New(k)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, 2+len(slotID)+seal.Overhead+32)
	out = append(out, sessionWrapV1, byte(len(slotID)))
	out = append(out, slotID...)
	v.mu.RLock()
	defer v.mu.RUnlock()
	return seal.Append(out, aead, v.vaultKey, sessionAD(v.id, slotID)), nil
}

func sessionAD(vaultID [16]byte, slotID string) []byte {
	ad := make([]byte, 0, len(sessionPurpose)+16+len(slotID))
	ad = append(ad, sessionPurpose...)
	ad = append(ad, vaultID[:]...)
	return append(ad, slotID...)
}

// SessionSecret returns the secret that opens a vault with a key wrapped
// by WrapForSession under k. A wrong k, a wrapped key of another vault,
// of a slot since removed or of a vault key since rotated opens nothing
// (ErrWrongKey).
func SessionSecret(wrapped, k []byte) Secret {
	bad := Secret{kind: slotSession, err: ErrWrongKey}
	if len(k) != SessionKeySize || len(wrapped) < 2 || wrapped[0] != sessionWrapV1 {
		return bad
	}
	n := int(wrapped[1])
	rest := wrapped[2:]
	if n == 0 || len(rest) != n+seal.Overhead+32 {
		return bad
	}
	return Secret{kind: slotSession, session: &sessionSecret{
		slotID:  string(rest[:n]),
		sealed:  rest[n:],
		wrapKey: slices.Clone(k),
	}}
}

// unwrapSlot tries the slot slotID of the vault vaultID, whose key has
// the term given, with the secret: a session secret by its wrapped key,
// any other by unwrap. It returns (nil, nil) when the secret does not fit
// the slot.
func (s Secret) unwrapSlot(vaultID [16]byte, term uint32, slotID string, st storedSlot) ([]byte, error) {
	if s.kind != slotSession {
		return s.unwrap(st)
	}
	ss := s.session
	if s.err != nil || ss == nil || subtle.ConstantTimeCompare([]byte(ss.slotID), []byte(slotID)) != 1 {
		return nil, nil
	}
	aead, err := seal.New(ss.wrapKey)
	if err != nil {
		return nil, nil
	}
	key, err := seal.Open(nil, aead, ss.sealed, sessionAD(vaultID, slotID))
	if err != nil {
		return nil, nil
	}
	// The key must still be the one the slot holds: after a rotation the
	// slot's sealed info no longer opens under a key wrapped before.
	keys, err := deriveKeyring(key, vaultID, term)
	if err != nil {
		return nil, err
	}
	defer keys.wipe()
	if _, err := keys.open(bucketSlots, []byte(slotID), st.Info); err != nil {
		clear(key)
		return nil, nil
	}
	return key, nil
}
