package share

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Kept shares: what phr keeps, sealed in the patient's own vault, of each
// share it makes, so that `phr share show` can print the link and its QR
// code again and `phr share update` can refresh a long-term share with the
// same key. The server never has the key; the vault is the only place it
// is kept.
//
// A kept share is a vault setting named KeptSettingName(id), whose value is
// the JSON of Kept. Setting names are not sealed, and the share's ID is
// what fetches its ciphertext and spends its attempts, so the name holds a
// hash of the ID, never the ID. Vaults written before names were
// hashed (2026-11) kept long-term shares under "share/" + ID, with only
// Key, Kinds, IDs, Since and Summary: LoadKept moves such a setting to its
// hashed name when it finds it. docs/share-protocol.md describes the
// format.

// KeptVersion is the version of Kept that phr writes.
const KeptVersion = 1

// KeptPrefix starts the setting names of kept shares.
const KeptPrefix = "share/"

// Kept is what the vault keeps of a share.
type Kept struct {
	// V is KeptVersion (0 in settings written before versions).
	V int `json:"v,omitempty"`
	// Key is the share's file key, base64url.
	Key string `json:"key"`
	// The selection, as `phr share create` took it: for update.
	Kinds   []string `json:"kinds,omitempty"`
	IDs     string   `json:"ids,omitempty"`
	Since   string   `json:"since,omitempty"`
	Summary bool     `json:"summary,omitempty"`
	// Payload is the link's payload (its URL, key, flags, label and
	// expiry), from which the link is made again.
	Payload *Payload `json:"payload,omitempty"`
	// ViewerURL is the viewer the link opens in.
	ViewerURL string `json:"viewerUrl,omitempty"`
	// LongTerm: the share can be refreshed with `phr share update`.
	LongTerm bool `json:"longTerm,omitempty"`
	// Profile is the share's profile ("" for a FHIR bundle, "ktc").
	Profile string `json:"profile,omitempty"`
	// Records is how many records the share held when made or updated.
	Records int `json:"records,omitempty"`
	// Created is when phr made it.
	Created time.Time `json:"created,omitzero"`
}

// Settings is where kept shares live: a vault's sealed settings.
type Settings interface {
	Setting(name string) ([]byte, error)
	SetSetting(name string, value []byte) error
	DeleteSetting(name string) error
}

// KeptSettingName names the setting of the share with ID id.
func KeptSettingName(id string) string {
	sum := sha256.Sum256([]byte("phr share setting\x00" + id))
	return KeptPrefix + hex.EncodeToString(sum[:16])
}

// ErrNotKept: the vault keeps nothing of that share (another device or
// phrd's app made it, or it was made before phr kept every share).
var ErrNotKept = errors.New("this vault keeps no key of that share")

// SaveKept keeps k as the share id.
func SaveKept(s Settings, id string, k Kept) error {
	k.V = KeptVersion
	data, err := json.Marshal(k)
	if err != nil {
		return err
	}
	return s.SetSetting(KeptSettingName(id), data)
}

// LoadKept reads the kept share id; notFound tells a missing setting from
// other errors (vault.ErrNotFound, which this package does not import).
func LoadKept(s Settings, id string, notFound func(error) bool) (Kept, error) {
	data, err := s.Setting(KeptSettingName(id))
	if err != nil && notFound(err) {
		legacy := KeptPrefix + id
		if data, err = s.Setting(legacy); err == nil {
			if err = s.SetSetting(KeptSettingName(id), data); err == nil {
				err = s.DeleteSetting(legacy)
			}
		}
	}
	if err != nil {
		if notFound(err) {
			return Kept{}, ErrNotKept
		}
		return Kept{}, err
	}
	var k Kept
	if err := json.Unmarshal(data, &k); err != nil {
		return Kept{}, fmt.Errorf("kept share: %w", err)
	}
	if k.V > KeptVersion {
		return Kept{}, fmt.Errorf("kept share: version %d is newer than this phr", k.V)
	}
	if k.Payload == nil { // kept before payloads were (long-term shares only)
		k.LongTerm = true
	}
	return k, nil
}
