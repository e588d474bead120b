package shlhost

import (
	"errors"
	"fmt"
	"time"

	"github.com/phr-project/phr/pkg/share"
	"github.com/phr-project/phr/pkg/vault/sharestore"
)

// File is one pre-encrypted file of a CreateRequest: a compact JWE made
// with the link's key (share.EncryptFile) and its content type (equal to
// the JWE's "cty").
type File struct {
	ContentType string `json:"content_type"`
	JWE         string `json:"jwe"`
}

// CreateRequest asks for a new share. Exactly one of Files and Content is
// given:
//
//   - Files: the client (the phr CLI) encrypted the files with a key only
//     it holds; the host stores the ciphertext and never sees plaintext or
//     key. The response has no link: the client makes it from the
//     response and its key (CreateResponse.Payload).
//   - Content: plaintext (a FHIR Bundle from a hosted vault). The host
//     draws a fresh key, encrypts (zip DEF), stores the ciphertext,
//     returns the link once and forgets the key.
type CreateRequest struct {
	Files []File `json:"files,omitempty"`
	// Content is plaintext to encrypt (not part of the JSON API: phrd
	// builds it from the account's vault).
	Content []byte `json:"-"`
	// ContentType is Content's type; default share.ContentTypeFHIR.
	ContentType string `json:"-"`
	// ExpiresAt is when the link stops working. Required; in the future
	// and at most Options.MaxExpiry away. Cut to whole seconds (the
	// link's exp).
	ExpiresAt time.Time `json:"expires_at"`
	// Passcode, if set, is required to open the link (flag P).
	Passcode string `json:"passcode,omitempty"`
	// Label is shown to the recipient (at most 80 characters).
	Label string `json:"label,omitempty"`
	// MaxUses, if positive, limits how many times the link opens.
	MaxUses int `json:"max_uses,omitempty"`
	// MaxAttempts is the lifetime budget of wrong passcodes (default 10).
	MaxAttempts int `json:"max_attempts,omitempty"`
	// Direct makes a U-flag link: one file, fetched with a GET, no
	// passcode.
	Direct bool `json:"direct,omitempty"`
	// LongTerm sets the L flag.
	LongTerm bool `json:"long_term,omitempty"`
}

// CreateResponse describes a new share. Link and SHLink are set only when
// the host encrypted the content (it then knows the key, for this once).
type CreateResponse struct {
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

// Payload returns the link payload for the share with key, the key the
// files were encrypted with (clients that uploaded Files build their link
// with share.ViewerLink(r.ViewerURL, r.Payload(key))).
func (r CreateResponse) Payload(key []byte) share.Payload {
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
}

// LogEntry is one access to a share: when, by whom (as the recipient
// named themself), and the outcome: ok, wrong-passcode, expired, revoked,
// used-up or locked.
type LogEntry struct {
	Time      time.Time `json:"time"`
	Recipient string    `json:"recipient"`
	Outcome   string    `json:"outcome"`
}

// CreateShare stores a new share for owner (an opaque account id). Errors
// wrapping ErrInvalidRequest are the client's (400); others are internal.
func (h *Host) CreateShare(owner string, req CreateRequest) (CreateResponse, error) {
	now := h.now()
	var resp CreateResponse
	if owner == "" {
		return resp, errors.New("shlhost: CreateShare needs an owner")
	}
	if err := h.CheckBaseURL(); err != nil {
		return resp, err
	}
	switch {
	case len(req.Files) > 0 && len(req.Content) > 0:
		return resp, fmt.Errorf("%w: give either files or content, not both", ErrInvalidRequest)
	case len(req.Files) == 0 && len(req.Content) == 0:
		return resp, fmt.Errorf("%w: nothing to share", ErrInvalidRequest)
	case req.ExpiresAt.IsZero():
		return resp, fmt.Errorf("%w: expires_at is required", ErrInvalidRequest)
	}
	expires := req.ExpiresAt.Truncate(time.Second).UTC()
	switch {
	case !expires.After(now):
		return resp, fmt.Errorf("%w: expires_at must be in the future", ErrInvalidRequest)
	case expires.Sub(now) > h.opts.MaxExpiry:
		return resp, fmt.Errorf("%w: expires_at must be within %s", ErrInvalidRequest, humanDuration(h.opts.MaxExpiry))
	}
	flag := ""
	if req.LongTerm {
		flag += share.FlagLongTerm
	}
	if req.Direct {
		flag += share.FlagDirect
	}
	spec := sharestore.ShareSpec{
		Owner: owner, Flag: flag, Label: req.Label, Expires: expires, Passcode: req.Passcode,
		MaxAttempts: req.MaxAttempts, MaxUses: req.MaxUses, Now: now,
	}
	var key []byte
	if len(req.Content) > 0 {
		ct := req.ContentType
		if ct == "" {
			ct = share.ContentTypeFHIR
		}
		key = share.NewKey()
		defer clear(key)
		jwe, err := share.EncryptFile(key, ct, req.Content, true)
		if err != nil {
			return resp, fmt.Errorf("%w: %v", ErrInvalidRequest, err)
		}
		spec.Files = []sharestore.FileSpec{{ContentType: ct, JWE: jwe}}
	} else {
		for _, f := range req.Files {
			spec.Files = append(spec.Files, sharestore.FileSpec(f))
		}
	}
	sh, err := h.store.Create(spec)
	if errors.Is(err, sharestore.ErrInvalid) {
		return resp, fmt.Errorf("%w: %s", ErrInvalidRequest, trimStorePrefix(err))
	}
	if err != nil {
		return resp, err
	}
	resp = CreateResponse{
		ID: sh.ID, URL: h.manifestURL(sh.ID), Flag: sh.Flag, Label: sh.Label,
		Exp: sh.Expires.Unix(), ExpiresAt: sh.Expires, ViewerURL: h.viewer,
	}
	if key != nil {
		p := resp.Payload(key)
		if resp.SHLink, err = share.Encode(p); err != nil {
			return CreateResponse{}, err
		}
		if resp.Link, err = share.ViewerLink(h.viewer, p); err != nil {
			return CreateResponse{}, err
		}
	}
	return resp, nil
}

func (h *Host) manifestURL(id string) string { return h.base + PathPrefix + "/" + id }

func trimStorePrefix(err error) string {
	msg := err.Error()
	prefix := sharestore.ErrInvalid.Error() + ": "
	if len(msg) > len(prefix) && msg[:len(prefix)] == prefix {
		return msg[len(prefix):]
	}
	return msg
}

func humanDuration(d time.Duration) string {
	if d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%d days", d/(24*time.Hour))
	}
	return d.String()
}

func (h *Host) info(sh sharestore.Share, now time.Time) ShareInfo {
	return ShareInfo{
		ID: sh.ID, URL: h.manifestURL(sh.ID), Label: sh.Label, Flag: sh.Flag, Status: sh.Status(now),
		CreatedAt: sh.Created, ExpiresAt: sh.Expires, RevokedAt: sh.RevokedAt, LastUsedAt: sh.LastUsed,
		Passcode: sh.Passcode, RemainingAttempts: sh.RemainingAttempts, MaxUses: sh.MaxUses, Uses: sh.Uses,
		Files: len(sh.Files),
	}
}

// ListShares returns owner's shares, newest first, in every state.
func (h *Host) ListShares(owner string) ([]ShareInfo, error) {
	list, err := h.store.List(owner)
	if err != nil {
		return nil, err
	}
	now := h.now()
	out := make([]ShareInfo, len(list))
	for i, sh := range list {
		out[i] = h.info(sh, now)
	}
	return out, nil
}

// RevokeShare ends owner's share id: from the next request on, its
// manifest, direct GET and location URLs answer 404, and its ciphertext
// is deleted. ErrNotFound if owner has no such share.
func (h *Host) RevokeShare(owner, id string) (ShareInfo, error) {
	now := h.now()
	sh, err := h.store.Revoke(owner, id, now)
	if err != nil {
		return ShareInfo{}, err
	}
	return h.info(sh, now), nil
}

// ShareLog returns the access log of owner's share id, oldest first.
// ErrNotFound if owner has no such share.
func (h *Host) ShareLog(owner, id string) ([]LogEntry, error) {
	log, err := h.store.Log(owner, id)
	if err != nil {
		return nil, err
	}
	out := make([]LogEntry, len(log))
	for i, e := range log {
		out[i] = LogEntry(e)
	}
	return out, nil
}

// UpdateRequest replaces the files of a long-term (L flag) share: files
// encrypted by the client with the link's key, which only it holds.
type UpdateRequest struct {
	Files []File `json:"files"`
}

// UpdateShare replaces the files of owner's long-term share id. The link
// stays the same; the next manifest request returns the new files.
func (h *Host) UpdateShare(owner, id string, req UpdateRequest) (ShareInfo, error) {
	now := h.now()
	files := make([]sharestore.FileSpec, len(req.Files))
	for i, f := range req.Files {
		files[i] = sharestore.FileSpec(f)
	}
	sh, err := h.store.ReplaceFiles(owner, id, files, now)
	if errors.Is(err, sharestore.ErrInvalid) {
		return ShareInfo{}, fmt.Errorf("%w: %s", ErrInvalidRequest, trimStorePrefix(err))
	}
	if err != nil {
		var ue *sharestore.UnavailableError
		if errors.As(err, &ue) {
			return ShareInfo{}, fmt.Errorf("%w: the share is %s", ErrInvalidRequest, ue.Reason)
		}
		return ShareInfo{}, err
	}
	return h.info(sh, now), nil
}
