package vault

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/phr-project/phr/pkg/kv"
)

// AuditEntry is one event in a vault's audit log: a login, a device key
// added or removed, an import, a share access. It is sealed like every
// other value and never holds secrets. What the fields mean for each event
// is up to the writer (phrd documents its events in docs/api).
type AuditEntry struct {
	// Seq numbers the entries of one vault, from 1; AppendAudit sets it.
	Seq uint64 `json:"seq"`
	// Time is when it happened; AppendAudit uses the vault's clock when
	// it is zero.
	Time time.Time `json:"time"`
	// Event names what happened ("login", "device.add", ...).
	Event string `json:"event"`
	// Success is false for a refused attempt.
	Success bool `json:"success"`
	// Method is how a login was made ("passphrase", "device").
	Method string `json:"method,omitempty"`
	// Client is the client's network, truncated (never a full address).
	Client string `json:"client,omitempty"`
	// Ref names the object of the event: a key slot or share ID.
	Ref string `json:"ref,omitempty"`
	// Label is the object's label (a device's name).
	Label string `json:"label,omitempty"`
	// Format is an import's file format.
	Format string `json:"format,omitempty"`
	// Counts are an event's numbers (an import's added, duplicates, ...).
	Counts map[string]int `json:"counts,omitempty"`
}

// MaxAuditEntries is how many audit entries a vault keeps; AppendAudit
// drops the oldest beyond it.
var MaxAuditEntries = 10_000

// The audit log lives in the settings bucket (so that Rotate reseals it,
// and backups carry it): entries under auditPrefix + the big-endian
// sequence, and the last sequence under auditHead. Only the key names
// (and so the number of entries) are readable without the vault key.
const (
	auditPrefix = "audit/"
	auditHead   = "audit.head"
)

func auditKey(seq uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], seq)
	return []byte(auditPrefix + hex.EncodeToString(b[:]))
}

// AppendAudit adds entries to the audit log in one transaction, numbering
// them in order.
func (v *Vault) AppendAudit(entries ...AuditEntry) error {
	if len(entries) == 0 {
		return nil
	}
	now := v.now().UTC()
	return v.update(func(tx kv.Tx) error {
		b := tx.Bucket([]byte{bucketSettings})
		var head uint64
		if sealed := b.Get([]byte(auditHead)); sealed != nil {
			pt, err := v.keys.open(bucketSettings, []byte(auditHead), sealed)
			if err != nil {
				return fmt.Errorf("audit head: %w", err)
			}
			if len(pt) != 8 {
				return fmt.Errorf("%w: audit head", ErrCorrupt)
			}
			head = binary.BigEndian.Uint64(pt)
		}
		for _, e := range entries {
			head++
			e.Seq = head
			if e.Time.IsZero() {
				e.Time = now
			}
			e.Time = e.Time.UTC()
			pt, err := json.Marshal(e)
			if err != nil {
				return err
			}
			k := auditKey(head)
			if err := v.putSetting(b, k, pt); err != nil {
				return err
			}
		}
		if limit := uint64(max(MaxAuditEntries, 1)); head > limit {
			// Drop what fell out of the window: walk from the oldest.
			c := b.Cursor()
			end := auditKey(head - limit + 1)
			var old [][]byte
			for k, _ := c.Seek([]byte(auditPrefix)); k != nil && bytes.HasPrefix(k, []byte(auditPrefix)) && bytes.Compare(k, end) < 0; k, _ = c.Next() {
				old = append(old, append([]byte(nil), k...))
			}
			for _, k := range old {
				if err := v.deleteSealed(b, bucketSettings, k); err != nil {
					return err
				}
			}
		}
		var hb [8]byte
		binary.BigEndian.PutUint64(hb[:], head)
		return v.putSetting(b, []byte(auditHead), hb[:])
	})
}

// Audit returns up to limit audit entries (0: all), newest first.
func (v *Vault) Audit(limit int) ([]AuditEntry, error) {
	var out []AuditEntry
	err := v.view(func(tx kv.Tx) error {
		c := tx.Bucket([]byte{bucketSettings}).Cursor()
		// Seek past the last entry key, then walk back.
		var k, val []byte
		if k, _ = c.Seek([]byte(auditPrefix + "g")); k == nil { // 'g' sorts after every hex digit
			k, val = c.Last()
		} else {
			k, val = c.Prev()
		}
		for ; k != nil && bytes.HasPrefix(k, []byte(auditPrefix)); k, val = c.Prev() {
			if limit > 0 && len(out) >= limit {
				break
			}
			pt, err := v.keys.open(bucketSettings, k, val)
			if err != nil {
				return fmt.Errorf("audit entry: %w", err)
			}
			var e AuditEntry
			if err := json.Unmarshal(pt, &e); err != nil {
				return fmt.Errorf("%w: audit entry", ErrCorrupt)
			}
			out = append(out, e)
		}
		return nil
	})
	return out, err
}
