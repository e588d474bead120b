package sharestore

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/phr-project/phr/pkg/kv"
	"github.com/phr-project/phr/pkg/share"
)

// Limits on what a share may hold.
const (
	// MaxFiles is the most files one share may hold.
	MaxFiles = 16
	// MaxFileLength is the longest JWE (in bytes) one file may be.
	MaxFileLength = 32 << 20
	// MaxAttemptsLimit is the largest lifetime budget of wrong passcodes.
	// Shares stored with more (older phr allowed 1000) are held to it.
	MaxAttemptsLimit = 100
	// MaxRecipientLength bounds a recipient name as stored in the log
	// (longer names are cut).
	MaxRecipientLength = 256
)

// Outcomes of an access, as recorded in the access log and as
// UnavailableError reasons.
const (
	OutcomeOK            = "ok"
	OutcomeWrongPasscode = "wrong-passcode"
	OutcomeExpired       = "expired"
	OutcomeRevoked       = "revoked"
	OutcomeUsedUp        = "used-up"
	OutcomeLocked        = "locked"
	// OutcomeNotLogged marks a log entry that stands for LogEntry.Count
	// accesses of one minute beyond Options.MaxLogPerMinute.
	OutcomeNotLogged = "not-logged"
)

// StatusActive is Share.Status for a share that can be served.
const StatusActive = "active"

// FileSpec is one file of a new share: a compact JWE made with the link's
// key (share.EncryptFile) and its content type, which must equal the JWE's
// "cty" header.
type FileSpec struct {
	ContentType string
	JWE         string
}

// ShareSpec describes a new share.
type ShareSpec struct {
	// Owner is the account that owns the share (an opaque id; the store
	// keeps only an HMAC of it). Required.
	Owner string
	// Files are the encrypted files; 1 to MaxFiles, exactly 1 with U.
	Files []FileSpec
	// Flag holds the link flags the store cannot infer: "L" (long-term)
	// and/or "U" (direct file GET). "P" is set when, and only when,
	// Passcode is given. U is never combined with a passcode.
	Flag string
	// Label is the link's label (at most 80 characters, no control
	// characters). It is stored sealed.
	Label string
	// Expires is when the share stops being served. Required, after Now.
	Expires time.Time
	// Passcode, when not empty, is required by every manifest request. It
	// is stored only as a salted scrypt hash.
	Passcode string
	// MaxAttempts is the lifetime budget of wrong passcodes (default
	// DefaultMaxAttempts, at most MaxAttemptsLimit). Ignored without a
	// passcode.
	MaxAttempts int
	// MaxUses, when positive, is how many successful accesses the share
	// serves; 0 means unlimited.
	MaxUses int
	// Now is the creation time; time.Now() when zero.
	Now time.Time
}

// Share is a share's metadata as the store returns it. It holds no
// ciphertext; ReadFile and FileByToken return files.
type Share struct {
	ID                string
	Label             string
	Flag              string
	Created           time.Time
	Expires           time.Time
	Passcode          bool // the share needs a passcode (flag P)
	MaxAttempts       int  // lifetime budget of wrong passcodes (0 without passcode)
	RemainingAttempts int
	MaxUses           int // 0: unlimited
	Uses              int
	LastUsed          time.Time
	RevokedAt         time.Time // zero unless revoked
	Purged            bool      // the ciphertext has been deleted
	Files             []File
	// Unlogged counts accesses beyond the log's rate (counted, served or
	// refused like any other, but not logged one by one).
	Unlogged int
}

// File describes one stored file.
type File struct {
	ID          string // random, 22 base64url characters
	ContentType string
	Length      int // bytes of JWE
}

// HasFlag reports whether the share's flag contains f ("L", "P" or "U").
func (s Share) HasFlag(f string) bool { return len(f) == 1 && strings.Contains(s.Flag, f) }

// Status is StatusActive, or the reason the share cannot be served at now
// (OutcomeRevoked, OutcomeExpired, OutcomeUsedUp, OutcomeLocked).
func (s Share) Status(now time.Time) string {
	if o := availability(now, s.RevokedAt, s.Expires, s.MaxUses, s.Uses, s.Passcode, s.RemainingAttempts, s.Purged); o != "" {
		return o
	}
	return StatusActive
}

// availability is the one rule for whether a share can be served: it
// returns "" when it can, else why not, in this order of precedence.
func availability(now, revokedAt, expires time.Time, maxUses, uses int, passcode bool, remaining int, purged bool) string {
	switch {
	case !revokedAt.IsZero():
		return OutcomeRevoked
	case !now.Before(expires):
		return OutcomeExpired
	case maxUses > 0 && uses >= maxUses:
		return OutcomeUsedUp
	case passcode && remaining <= 0:
		return OutcomeLocked
	case purged: // purged for one of the reasons above; a safety net
		return OutcomeExpired
	}
	return ""
}

// LogEntry is one access as the owner sees it, or (Outcome
// OutcomeNotLogged, no Recipient) Count accesses in the minute from Time
// beyond the log's rate.
type LogEntry struct {
	Seq       uint64 // numbers the share's entries, from 1
	Time      time.Time
	Recipient string
	Outcome   string // one of the Outcome* constants
	Count     int
}

// shareRecord is a share as stored (JSON) under its lookup key.
type shareRecord struct {
	Sealed      []byte     `json:"sealed"` // seal("share", lk, sealedPart)
	Owner       []byte     `json:"owner"`  // ownerTag(owner)
	Flag        string     `json:"flag,omitempty"`
	Created     time.Time  `json:"created"`
	Expires     time.Time  `json:"expires"`
	Hash        string     `json:"hash,omitempty"` // share.HashPasscode
	MaxAttempts int        `json:"maxAttempts,omitempty"`
	Remaining   int        `json:"remaining,omitempty"`
	MaxUses     int        `json:"maxUses,omitempty"`
	Uses        int        `json:"uses,omitempty"`
	LastUsed    time.Time  `json:"lastUsed,omitzero"`
	RevokedAt   time.Time  `json:"revokedAt,omitzero"`
	PurgedAt    time.Time  `json:"purgedAt,omitzero"`
	Files       []fileMeta `json:"files"`
	LogSeq      uint64     `json:"logSeq,omitempty"`
	// The access log's rate window: the Unix minute, the entries written
	// in it, the accesses of it not logged; and all accesses not logged.
	LogMinute   int64 `json:"logMinute,omitempty"`
	LogInMinute int   `json:"logInMinute,omitempty"`
	LogSkipped  int   `json:"logSkipped,omitempty"`
	Unlogged    int   `json:"unlogged,omitempty"`
}

type sealedPart struct {
	ID    string `json:"id"`
	Label string `json:"label,omitempty"`
}

type fileMeta struct {
	ID          string `json:"id"`
	ContentType string `json:"contentType"`
	Length      int    `json:"length"`
}

// unavailable returns why r cannot be served at now, or "".
func (r *shareRecord) unavailable(now time.Time) string {
	return availability(now, r.RevokedAt, r.Expires, r.MaxUses, r.Uses, r.Hash != "", r.Remaining, !r.PurgedAt.IsZero())
}

var fileIDEnc = base64.RawURLEncoding.Strict()

// Create stores a new share and returns it. The passcode is hashed (scrypt)
// before the write transaction starts, holding a slot of Options.Gate.
func (s *Store) Create(ctx context.Context, spec ShareSpec) (Share, error) {
	now := spec.Now
	if now.IsZero() {
		now = time.Now()
	}
	flag, err := checkSpec(&spec, now)
	if err != nil {
		return Share{}, err
	}
	id := share.NewManifestID()
	lk := s.lookupKey(id)
	rec := shareRecord{
		Owner: s.ownerTag(spec.Owner), Flag: flag, Created: now.UTC(), Expires: spec.Expires.UTC(),
		MaxUses: spec.MaxUses,
	}
	if spec.Passcode != "" {
		if s.gate != nil {
			if err := s.gate.Acquire(ctx); err != nil {
				return Share{}, err
			}
		}
		rec.Hash, err = share.HashPasscode(spec.Passcode)
		if s.gate != nil {
			s.gate.Release()
		}
		if err != nil {
			return Share{}, err
		}
		rec.MaxAttempts = spec.MaxAttempts
		if rec.MaxAttempts == 0 {
			rec.MaxAttempts = DefaultMaxAttempts
		}
		rec.Remaining = rec.MaxAttempts
	}
	part, err := json.Marshal(sealedPart{ID: id, Label: spec.Label})
	if err != nil {
		return Share{}, err
	}
	rec.Sealed = s.seal("share", lk, part)
	fileKeys := make([][]byte, len(spec.Files))
	for i, f := range spec.Files {
		raw := make([]byte, 16)
		rand.Read(raw)
		rec.Files = append(rec.Files, fileMeta{ID: fileIDEnc.EncodeToString(raw), ContentType: f.ContentType, Length: len(f.JWE)})
		fileKeys[i] = append(slices.Clip(lk), raw...)
	}
	enc, err := json.Marshal(&rec)
	if err != nil {
		return Share{}, err
	}
	err = s.updateShare(lk, func(tx kv.Tx) error {
		sb := tx.Bucket(bucketShares)
		if sb.Get(lk) != nil { // 256 random bits: cannot happen
			return fmt.Errorf("sharestore: manifest id collision")
		}
		if err := sb.Put(lk, enc); err != nil {
			return err
		}
		if err := tx.Bucket(bucketOwners).Put(append(slices.Clip(rec.Owner), lk...), nil); err != nil {
			return err
		}
		fb := tx.Bucket(bucketFiles)
		for i, f := range spec.Files {
			if err := fb.Put(fileKeys[i], []byte(f.JWE)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return Share{}, err
	}
	return rec.toShare(id, spec.Label), nil
}

// checkSpec validates spec and returns the link's flag string.
func checkSpec(spec *ShareSpec, now time.Time) (string, error) {
	if spec.Owner == "" {
		return "", invalid("owner", "is required")
	}
	for _, c := range spec.Flag {
		if c != 'L' && c != 'U' && c != 'P' {
			return "", invalid("flag", "may only hold L and U (P follows from the passcode)")
		}
	}
	long := strings.Contains(spec.Flag, "L")
	direct := strings.Contains(spec.Flag, "U")
	if strings.Contains(spec.Flag, "P") && spec.Passcode == "" {
		return "", invalid("flag", "P needs a passcode")
	}
	if direct && spec.Passcode != "" {
		return "", invalid("flag", "U cannot be combined with a passcode")
	}
	if len(spec.Files) == 0 {
		return "", invalid("files", "must hold at least one file")
	}
	if len(spec.Files) > MaxFiles {
		return "", invalid("files", "must hold at most %d files", MaxFiles)
	}
	if direct && len(spec.Files) != 1 {
		return "", invalid("files", "must hold exactly one file with flag U")
	}
	for i, f := range spec.Files {
		if err := checkJWE(f.ContentType, f.JWE); err != nil {
			return "", fmt.Errorf("%w: files[%d]: %s", ErrInvalid, i, err.Error())
		}
	}
	if !utf8.ValidString(spec.Label) || strings.IndexFunc(spec.Label, unicode.IsControl) >= 0 {
		return "", invalid("label", "must be UTF-8 text without control characters")
	}
	if utf8.RuneCountInString(spec.Label) > share.MaxLabelLength {
		return "", invalid("label", "must be at most %d characters", share.MaxLabelLength)
	}
	if spec.Expires.IsZero() {
		return "", invalid("expires", "is required")
	}
	if !spec.Expires.After(now) {
		return "", invalid("expires", "must be in the future")
	}
	if spec.MaxUses < 0 {
		return "", invalid("max uses", "must not be negative")
	}
	if spec.MaxAttempts < 0 || spec.MaxAttempts > MaxAttemptsLimit {
		return "", invalid("max attempts", "must be between 1 and %d (0: default %d)", MaxAttemptsLimit, DefaultMaxAttempts)
	}
	var flag string
	if long {
		flag += share.FlagLongTerm
	}
	if spec.Passcode != "" {
		if len(spec.Passcode) > 1024 {
			return "", invalid("passcode", "must be at most 1024 bytes")
		}
		flag += share.FlagPasscode
	}
	if direct {
		flag += share.FlagDirect
	}
	return flag, nil
}

func (r *shareRecord) toShare(id, label string) Share {
	sh := Share{
		ID: id, Label: label, Flag: r.Flag, Created: r.Created, Expires: r.Expires,
		Passcode: r.Hash != "", MaxAttempts: r.MaxAttempts, RemainingAttempts: max(r.Remaining, 0),
		MaxUses: r.MaxUses, Uses: r.Uses, LastUsed: r.LastUsed, RevokedAt: r.RevokedAt, Purged: !r.PurgedAt.IsZero(),
		Unlogged: r.Unlogged,
	}
	for _, f := range r.Files {
		sh.Files = append(sh.Files, File(f))
	}
	return sh
}

// getRecord reads and decodes the share under lk; ErrNotFound if absent.
func getRecord(tx kv.Tx, lk []byte) (shareRecord, error) {
	v := tx.Bucket(bucketShares).Get(lk)
	if v == nil {
		return shareRecord{}, ErrNotFound
	}
	var r shareRecord
	if err := json.Unmarshal(v, &r); err != nil {
		return shareRecord{}, fmt.Errorf("%w: share record: %v", ErrCorrupt, err)
	}
	// Budgets stored before MaxAttemptsLimit was lowered are held to it.
	r.MaxAttempts = min(r.MaxAttempts, MaxAttemptsLimit)
	r.Remaining = min(r.Remaining, MaxAttemptsLimit)
	return r, nil
}

func putRecord(tx kv.Tx, lk []byte, r *shareRecord) error {
	enc, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return tx.Bucket(bucketShares).Put(lk, enc)
}

// share is what the owner sees of r: its record with the id and label
// unsealed (openPart).
func (s *Store) share(lk []byte, r *shareRecord) (Share, error) {
	p, err := s.openPart(lk, r)
	if err != nil {
		return Share{}, err
	}
	return r.toShare(p.ID, p.Label), nil
}

// openPart unseals a record's id and label and checks that the id is the
// one the record is stored under (a moved record does not open).
func (s *Store) openPart(lk []byte, r *shareRecord) (sealedPart, error) {
	pt, err := s.unseal("share", lk, r.Sealed)
	if err != nil {
		return sealedPart{}, err
	}
	var p sealedPart
	if err := json.Unmarshal(pt, &p); err != nil {
		return sealedPart{}, fmt.Errorf("%w: sealed share: %v", ErrCorrupt, err)
	}
	if !hmac.Equal(s.lookupKey(p.ID), lk) {
		return sealedPart{}, fmt.Errorf("%w: share record is not at its place", ErrCorrupt)
	}
	return p, nil
}

// Get returns the share with manifest id id, whatever its state; it does
// not check the owner (the owner-facing methods do).
func (s *Store) Get(id string) (Share, error) {
	lk := s.lookupKey(id)
	var sh Share
	err := s.db.View(func(tx kv.Tx) error {
		r, err := getRecord(tx, lk)
		if err != nil {
			return err
		}
		sh, err = s.share(lk, &r)
		return err
	})
	return sh, err
}

// List returns the owner's shares, newest first, in every state (until
// Sweep deletes them after the retention period).
func (s *Store) List(owner string) ([]Share, error) {
	tag := s.ownerTag(owner)
	var out []Share
	err := s.db.View(func(tx kv.Tx) error {
		c := tx.Bucket(bucketOwners).Cursor()
		for k, _ := c.Seek(tag); k != nil && bytes.HasPrefix(k, tag); k, _ = c.Next() {
			lk := k[len(tag):]
			r, err := getRecord(tx, lk)
			if err != nil {
				return err
			}
			if !hmac.Equal(r.Owner, tag) {
				return fmt.Errorf("%w: owner index does not match share", ErrCorrupt)
			}
			sh, err := s.share(lk, &r)
			if err != nil {
				return err
			}
			out = append(out, sh)
		}
		return nil
	})
	slices.SortStableFunc(out, func(a, b Share) int { return b.Created.Compare(a.Created) })
	return out, err
}

// ownedRecord loads the share id if owner owns it; ErrNotFound otherwise.
func (s *Store) ownedRecord(tx kv.Tx, owner, id string) ([]byte, shareRecord, error) {
	lk := s.lookupKey(id)
	r, err := getRecord(tx, lk)
	if err != nil {
		return nil, shareRecord{}, err
	}
	if !hmac.Equal(r.Owner, s.ownerTag(owner)) {
		return nil, shareRecord{}, ErrNotFound
	}
	return lk, r, nil
}

// Revoke ends the share now: the next manifest request, direct GET or
// location download answers 404. The ciphertext is deleted in the same
// transaction; metadata and log stay for the owner. Revoking a revoked
// share is not an error. Only the owner may revoke: any other owner gets
// ErrNotFound.
func (s *Store) Revoke(owner, id string, now time.Time) (Share, error) {
	return s.changeOwned(owner, id, func(tx kv.Tx, lk []byte, r *shareRecord) error {
		if r.RevokedAt.IsZero() {
			r.RevokedAt = now.UTC()
		}
		return purgeFiles(tx, lk, r, now)
	})
}

// changeOwned applies change to the share id that owner owns (ErrNotFound
// for anyone else), saves it and returns what the owner sees of it, in
// one transaction.
func (s *Store) changeOwned(owner, id string, change func(tx kv.Tx, lk []byte, r *shareRecord) error) (Share, error) {
	var sh Share
	err := s.updateShare(s.lookupKey(id), func(tx kv.Tx) error {
		lk, r, err := s.ownedRecord(tx, owner, id)
		if err != nil {
			return err
		}
		if err := change(tx, lk, &r); err != nil {
			return err
		}
		if err := putRecord(tx, lk, &r); err != nil {
			return err
		}
		sh, err = s.share(lk, &r)
		return err
	})
	return sh, err
}

// purgeFiles deletes r's ciphertext and marks r purged (the caller saves r).
func purgeFiles(tx kv.Tx, lk []byte, r *shareRecord, now time.Time) error {
	fb := tx.Bucket(bucketFiles)
	for _, f := range r.Files {
		raw, err := fileIDEnc.DecodeString(f.ID)
		if err != nil {
			return fmt.Errorf("%w: file id", ErrCorrupt)
		}
		if err := fb.Delete(append(slices.Clip(lk), raw...)); err != nil {
			return err
		}
	}
	if r.PurgedAt.IsZero() {
		r.PurgedAt = now.UTC()
	}
	return nil
}

// Log returns the share's access log, oldest first, if owner owns it.
// Entries of denied requests are written in the background; Log writes
// the pending ones first, so it sees every access made before the call.
func (s *Store) Log(owner, id string) ([]LogEntry, error) {
	if err := s.flushPending(); err != nil {
		return nil, err
	}
	var out []LogEntry
	err := s.db.View(func(tx kv.Tx) error {
		lk, r, err := s.ownedRecord(tx, owner, id)
		if err != nil {
			return err
		}
		c := tx.Bucket(bucketLogs).Cursor()
		for k, v := c.Seek(lk); k != nil && bytes.HasPrefix(k, lk); k, v = c.Next() {
			e, err := s.openLogEntry(k, v)
			if err != nil {
				return err
			}
			out = append(out, e)
		}
		if r.LogSkipped > 0 { // the current minute's, not written yet (it will be, as the next entry)
			out = append(out, LogEntry{Seq: r.LogSeq + 1, Time: time.Unix(r.LogMinute*60, 0).UTC(), Outcome: OutcomeNotLogged, Count: r.LogSkipped})
		}
		return nil
	})
	return out, err
}

// ReadFile returns the JWE of one file of share id. It does not check the
// share's state: callers serve files only after Access granted the
// request (a purged file is ErrNotFound).
func (s *Store) ReadFile(id, fileID string) (string, error) {
	raw, err := fileIDEnc.DecodeString(fileID)
	if err != nil || len(raw) != 16 {
		return "", ErrNotFound
	}
	key := append(s.lookupKey(id), raw...)
	var jwe string
	err = s.db.View(func(tx kv.Tx) error {
		v := tx.Bucket(bucketFiles).Get(key)
		if v == nil {
			return ErrNotFound
		}
		jwe = string(v) // copies: v is only valid inside the transaction
		return nil
	})
	return jwe, err
}

// ReplaceFiles replaces the files of a long-term (L flag) share that owner
// owns and that can still be served: the old ciphertext is deleted (so are
// location URLs handed out for it), the new files take its place, and the
// next manifest request sees them. Shares without the L flag are refused
// with ErrInvalid: their recipients were promised fixed content.
func (s *Store) ReplaceFiles(owner, id string, files []FileSpec, now time.Time) (Share, error) {
	if len(files) == 0 {
		return Share{}, invalid("files", "at least one file is required")
	}
	if len(files) > MaxFiles {
		return Share{}, invalid("files", "must hold at most %d files", MaxFiles)
	}
	for i, f := range files {
		if err := checkJWE(f.ContentType, f.JWE); err != nil {
			return Share{}, invalid(fmt.Sprintf("files[%d]", i), "%v", err)
		}
	}
	return s.changeOwned(owner, id, func(tx kv.Tx, lk []byte, r *shareRecord) error {
		if !strings.Contains(r.Flag, "L") {
			return invalid("flag", "only long-term (L) shares can change their files")
		}
		if strings.Contains(r.Flag, "U") && len(files) != 1 {
			return invalid("files", "a U-flag share has exactly one file")
		}
		if o := r.unavailable(now); o != "" {
			return &UnavailableError{Reason: o}
		}
		wasPurged := r.PurgedAt
		if err := purgeFiles(tx, lk, r, now); err != nil {
			return err
		}
		r.PurgedAt = wasPurged
		r.Files = r.Files[:0]
		fb := tx.Bucket(bucketFiles)
		for _, f := range files {
			raw := make([]byte, 16)
			rand.Read(raw)
			r.Files = append(r.Files, fileMeta{ID: fileIDEnc.EncodeToString(raw), ContentType: f.ContentType, Length: len(f.JWE)})
			if err := fb.Put(append(slices.Clip(lk), raw...), []byte(f.JWE)); err != nil {
				return err
			}
		}
		return nil
	})
}
