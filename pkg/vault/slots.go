package vault

import (
	"bytes"
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"filippo.io/age"
	"github.com/phr-project/phr/pkg/kv"
)

// SlotKind says what secret opens a key slot.
type SlotKind string

// Slot kinds.
const (
	// SlotPassphrase is opened by a passphrase (age scrypt recipient).
	SlotPassphrase SlotKind = "passphrase"
	// SlotDevice is opened by an age identity: a device's X25519 or hybrid
	// post-quantum key, or a plugin identity such as a hardware key.
	SlotDevice SlotKind = "device"
	// SlotRecovery is opened by the recovery code printed at init.
	SlotRecovery SlotKind = "recovery"
)

// DefaultScryptWorkFactor is the scrypt work factor (log2 N) of passphrase
// slots: about one second on a laptop, as age chooses.
const DefaultScryptWorkFactor = 18

// RecoveryWorkFactor is the scrypt work factor of recovery slots: lower
// than a passphrase's, since a recovery code has 128 random bits and
// scrypt adds little but time.
const RecoveryWorkFactor = 12

const recoveryWorkFactor = RecoveryWorkFactor

// ScryptWorkFactor is the work factor new passphrase slots use. Tests lower
// it; nothing else should.
var ScryptWorkFactor = DefaultScryptWorkFactor

// Slot describes a key slot. It never holds secrets.
type Slot struct {
	ID      string    `json:"id"`
	Kind    SlotKind  `json:"kind"`
	Label   string    `json:"label"`
	Created time.Time `json:"created"`
}

// SlotSpec describes a slot to add.
type SlotSpec struct {
	Kind  SlotKind
	Label string
	// Passphrase opens a SlotPassphrase.
	Passphrase string
	// RecoveryCode opens a SlotRecovery (see NewRecoveryCode).
	RecoveryCode string
	// Recipients are the age recipients of a SlotDevice.
	Recipients []age.Recipient
}

func (s SlotSpec) recipients() ([]age.Recipient, error) {
	switch s.Kind {
	case SlotPassphrase:
		if s.Passphrase == "" {
			return nil, errors.New("empty passphrase")
		}
		r, err := age.NewScryptRecipient(s.Passphrase)
		if err != nil {
			return nil, err
		}
		r.SetWorkFactor(ScryptWorkFactor)
		return []age.Recipient{r}, nil
	case SlotRecovery:
		code, err := normalizeRecoveryCode(s.RecoveryCode)
		if err != nil {
			return nil, err
		}
		r, err := age.NewScryptRecipient(code)
		if err != nil {
			return nil, err
		}
		r.SetWorkFactor(recoveryWorkFactor)
		return []age.Recipient{r}, nil
	case SlotDevice:
		if len(s.Recipients) == 0 {
			return nil, errors.New("device slot needs an age recipient")
		}
		return s.Recipients, nil
	}
	return nil, fmt.Errorf("unknown slot kind %q", s.Kind)
}

// storedSlot is a slot as stored in the key slot bucket. Kind and the age
// file are readable (the kind is needed to pick the slots a secret can
// open; the age file reveals only its recipient types); the label and
// creation time are sealed.
type storedSlot struct {
	V    int      `json:"v"`
	Kind SlotKind `json:"kind"`
	Age  []byte   `json:"age"`
	Info []byte   `json:"info"`
}

type slotInfo struct {
	Label   string    `json:"label"`
	Created time.Time `json:"created"`
	// Recipients are a device slot's age recipients (public keys), kept so
	// that Rotate can wrap a new vault key for the same devices.
	Recipients []string `json:"recipients,omitempty"`
}

// forEachSlot calls fn with each stored slot of the key slot bucket b.
func forEachSlot(b kv.Bucket, fn func(id []byte, st storedSlot) error) error {
	return b.ForEach(func(k, val []byte) error {
		var st storedSlot
		if err := json.Unmarshal(val, &st); err != nil {
			return fmt.Errorf("%w: key slot", ErrCorrupt)
		}
		return fn(k, st)
	})
}

// openSlotInfo opens the sealed label and creation time of slot id.
func (k *keyring) openSlotInfo(id []byte, st storedSlot) (slotInfo, error) {
	var info slotInfo
	pt, err := k.open(bucketSlots, id, st.Info)
	if err != nil {
		return info, err
	}
	if err := json.Unmarshal(pt, &info); err != nil {
		return info, fmt.Errorf("%w: key slot", ErrCorrupt)
	}
	return info, nil
}

func wrapKey(vaultKey []byte, spec SlotSpec) ([]byte, error) {
	rs, err := spec.recipients()
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	w, err := age.Encrypt(&buf, rs...)
	if err != nil {
		return nil, fmt.Errorf("wrapping vault key: %w", err)
	}
	if _, err := w.Write(vaultKey); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Secret is what opens a vault: a passphrase, a recovery code or age
// identities.
type Secret struct {
	kind SlotKind
	ids  []age.Identity
	err  error
	// session is a key wrapped for a session (SessionSecret, session.go).
	session *sessionSecret
}

// Passphrase returns the secret for passphrase slots.
func Passphrase(p string) Secret {
	id, err := age.NewScryptIdentity(p)
	return Secret{kind: SlotPassphrase, ids: []age.Identity{id}, err: err}
}

// RecoveryCode returns the secret for the recovery slot. Case, spaces and
// dashes do not matter.
func RecoveryCode(code string) Secret {
	c, err := normalizeRecoveryCode(code)
	if err != nil {
		return Secret{kind: SlotRecovery, err: ErrWrongKey}
	}
	id, err := age.NewScryptIdentity(c)
	return Secret{kind: SlotRecovery, ids: []age.Identity{id}, err: err}
}

// Identities returns the secret for device slots: any age identities,
// plugin identities included.
func Identities(ids ...age.Identity) Secret {
	return Secret{kind: SlotDevice, ids: ids}
}

// unwrap tries the slot with the secret. It returns (nil, nil) when the
// secret does not fit the slot.
func (s Secret) unwrap(st storedSlot) ([]byte, error) {
	if st.Kind != s.kind || s.err != nil {
		return nil, nil
	}
	r, err := age.Decrypt(bytes.NewReader(st.Age), s.ids...)
	if err != nil {
		var nm *age.NoIdentityMatchError
		if errors.As(err, &nm) || errors.Is(err, age.ErrIncorrectIdentity) {
			return nil, nil
		}
		return nil, err
	}
	key, err := io.ReadAll(io.LimitReader(r, 64))
	if err != nil {
		return nil, fmt.Errorf("%w: key slot: %v", ErrCorrupt, err)
	}
	if len(key) != 32 {
		return nil, fmt.Errorf("%w: key slot holds a key of the wrong size", ErrCorrupt)
	}
	return key, nil
}

var recoveryEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// NewRecoveryCode returns a fresh recovery code: 128 random bits as 26
// base32 characters in groups ("ABCDE-FGHIJ-KLMNO-PQRST-UVWXYZ").
func NewRecoveryCode() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("vault: no randomness: " + err.Error())
	}
	s := recoveryEncoding.EncodeToString(b[:])
	return s[:5] + "-" + s[5:10] + "-" + s[10:15] + "-" + s[15:20] + "-" + s[20:]
}

// IsRecoveryCode reports whether s has the shape of a recovery code
// (26 base32 characters; case, spaces and dashes do not matter), so that
// a prompt for a passphrase can accept one too.
func IsRecoveryCode(s string) bool {
	_, err := normalizeRecoveryCode(s)
	return err == nil
}

func normalizeRecoveryCode(code string) (string, error) {
	c := strings.ToUpper(strings.NewReplacer("-", "", " ", "", "\t", "").Replace(code))
	b, err := recoveryEncoding.DecodeString(c)
	if err != nil || len(b) != 16 {
		return "", errors.New("malformed recovery code")
	}
	return "phr-recovery-v1:" + c, nil
}

func newSlotID() string {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("vault: no randomness: " + err.Error())
	}
	return strings.ToLower(recoveryEncoding.EncodeToString(b[:]))[:8]
}

func (v *Vault) encodeSlot(id string, spec SlotSpec, vaultKey []byte, keys *keyring) ([]byte, error) {
	info := slotInfo{Label: spec.Label, Created: v.now().UTC()}
	for _, r := range spec.Recipients {
		if s, ok := r.(fmt.Stringer); ok {
			info.Recipients = append(info.Recipients, s.String())
		}
	}
	return encodeSlotInfo(id, spec, info, vaultKey, keys)
}

func encodeSlotInfo(id string, spec SlotSpec, info slotInfo, vaultKey []byte, keys *keyring) ([]byte, error) {
	wrapped, err := wrapKey(vaultKey, spec)
	if err != nil {
		return nil, err
	}
	pt, err := json.Marshal(info)
	if err != nil {
		return nil, err
	}
	return json.Marshal(storedSlot{V: 1, Kind: spec.Kind, Age: wrapped, Info: keys.seal(bucketSlots, []byte(id), 1, pt)})
}
