package api

import (
	"time"

	"github.com/phr-project/phr/pkg/share"
)

// The bodies of the share routes (/api/v1/shares): the one definition of
// each, used by phrd, its share host (pkg/shlhost) and every client. The
// public SMART Health Links protocol (/shl) is the specification's, in
// pkg/share.

// ShareFile is one file a client encrypted itself: a compact JWE made with
// the link's key (share.EncryptFile) and its content type, which equals
// the JWE's "cty".
type ShareFile struct {
	ContentType string `json:"content_type"`
	JWE         string `json:"jwe"`
}

// ShareSelect chooses records of the account's vault for phrd to share
// (the app's way: phrd builds, encrypts and forgets the key).
type ShareSelect struct {
	Types   []string  `json:"types,omitempty"`
	IDs     []string  `json:"ids,omitempty"`
	Since   time.Time `json:"since,omitzero"`
	Summary bool      `json:"summary,omitempty"`
	// Profile "ktc" shares the selection as a Kill-the-Clipboard
	// patient-shared bundle (fhirdoc.BuildKTC) with its PDF rendering; the
	// link is then direct (U) and has no passcode.
	Profile string `json:"profile,omitempty"`
	// Story is a note in the patient's own words, for a ktc share: it
	// goes in as a PDF (at most 64 KiB of UTF-8 text).
	Story string `json:"story,omitempty"`
}

// CreateShareRequest is the body of POST /api/v1/shares. Exactly one of
// Files (encrypted by the client, which keeps the key: the CLI) and Select
// (phrd builds the bundle from the account's vault) is given.
type CreateShareRequest struct {
	Files  []ShareFile  `json:"files,omitempty"`
	Select *ShareSelect `json:"select,omitempty"`
	// ExpiresAt is when the link stops working. Required; in the future
	// and at most a year away. Cut to whole seconds (the link's exp).
	ExpiresAt time.Time `json:"expires_at"`
	// Passcode, if set, is required to open the link (flag P).
	Passcode string `json:"passcode,omitempty"`
	// Label is shown to the recipient (at most 80 characters).
	Label string `json:"label,omitempty"`
	// MaxUses, if positive, limits how many times the link opens.
	MaxUses int `json:"max_uses,omitempty"`
	// MaxAttempts is the lifetime budget of wrong passcodes (default 10,
	// at most 100).
	MaxAttempts int `json:"max_attempts,omitempty"`
	// Direct makes a U-flag link: one file, fetched with a GET, no
	// passcode.
	Direct bool `json:"direct,omitempty"`
	// LongTerm sets the L flag: the owner may replace the files.
	LongTerm bool `json:"long_term,omitempty"`
}

// ShareCreated answers POST /api/v1/shares. Link and SHLink are set only
// when phrd encrypted the content (it knew the key, for this once); a
// client that uploaded Files builds the link from its key with
// share.ViewerLink(r.ViewerURL, r.Payload(key)).
type ShareCreated struct {
	ID        string    `json:"id"`
	Link      string    `json:"link,omitempty"`   // viewer-prefixed: https://HOST/view#shlink:/...
	SHLink    string    `json:"shlink,omitempty"` // bare shlink:/...
	URL       string    `json:"url"`              // the payload's manifest url
	Flag      string    `json:"flag,omitempty"`
	Label     string    `json:"label,omitempty"`
	Exp       int64     `json:"exp"` // the payload's exp (Unix seconds)
	ExpiresAt time.Time `json:"expires_at"`
	ViewerURL string    `json:"viewer_url"`
}

// Payload returns the link payload of the share with key, the key its
// files were encrypted with.
func (r ShareCreated) Payload(key []byte) share.Payload {
	return share.Payload{URL: r.URL, Key: share.EncodeKey(key), Exp: r.Exp, Flag: r.Flag, Label: r.Label, V: share.Version}
}

// ShareInfo is a share as its owner sees it in a listing.
type ShareInfo struct {
	ID                string    `json:"id"`
	URL               string    `json:"url"`
	Label             string    `json:"label,omitempty"`
	Flag              string    `json:"flag,omitempty"`
	Status            string    `json:"status"` // active, expired, revoked, used-up, locked
	CreatedAt         time.Time `json:"created_at"`
	ExpiresAt         time.Time `json:"expires_at"`
	RevokedAt         time.Time `json:"revoked_at,omitzero"`
	LastUsedAt        time.Time `json:"last_used_at,omitzero"`
	Passcode          bool      `json:"passcode"`
	RemainingAttempts int       `json:"remaining_attempts,omitempty"`
	MaxUses           int       `json:"max_uses,omitempty"`
	Uses              int       `json:"uses"`
	Files             int       `json:"files"`
	// Unlogged counts accesses beyond the access log's rate (see
	// ShareLogEntry): they were served or refused like any other, and
	// counted, but not logged one by one.
	Unlogged int `json:"unlogged,omitempty"`
}

// ShareList is GET /api/v1/shares, newest first.
type ShareList struct {
	Shares []ShareInfo `json:"shares"`
}

// ShareLogEntry is one access to a share: when, by whom (as the recipient
// named themself), and the outcome: ok, wrong-passcode, expired, revoked,
// used-up or locked. An entry with outcome not-logged stands for Count
// accesses of one minute beyond the log's rate, counted but not logged one
// by one (their recipients and outcomes are not kept).
type ShareLogEntry struct {
	Seq       uint64    `json:"seq"` // numbers the share's entries
	Time      time.Time `json:"time"`
	Recipient string    `json:"recipient"`
	Outcome   string    `json:"outcome"`
	Count     int       `json:"count,omitempty"`
}

// ShareLog is GET /api/v1/shares/{id}/log, oldest first.
type ShareLog struct {
	Log []ShareLogEntry `json:"log"`
}

// UpdateShareRequest is the body of PUT /api/v1/shares/{id}/files: the
// new files of a long-term (L) share, encrypted by the client with the
// link's key, which only it holds.
type UpdateShareRequest struct {
	Files []ShareFile `json:"files"`
}
