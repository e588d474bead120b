package shlhost

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/phr-project/phr/pkg/server/api"
	"github.com/phr-project/phr/pkg/share"
	"github.com/phr-project/phr/pkg/sharestore"
)

// CreateShare stores a new share for owner (an opaque account id), of
// either req.Files (encrypted by the client, which keeps the key: the host
// never sees plaintext or key, and the answer has no link) or content
// (plaintext, a FHIR Bundle phrd built from the account's vault: the host
// draws a fresh key, encrypts, returns the link once and forgets the key).
// req.Select is the caller's to resolve into content; a request that
// still has it is refused. Errors wrapping ErrInvalidRequest are the
// client's (400); others are internal.
func (h *Host) CreateShare(ctx context.Context, owner string, req api.CreateShareRequest, content []byte) (api.ShareCreated, error) {
	now := h.now()
	var resp api.ShareCreated
	if owner == "" {
		return resp, errors.New("shlhost: CreateShare needs an owner")
	}
	if err := h.CheckBaseURL(); err != nil {
		return resp, err
	}
	switch {
	case req.Select != nil:
		return resp, invalidf("select is resolved by the server, not the share host")
	case len(req.Files) > 0 && len(content) > 0:
		return resp, invalidf("give either files or content, not both")
	case len(req.Files) == 0 && len(content) == 0:
		return resp, invalidf("nothing to share")
	case req.ExpiresAt.IsZero():
		return resp, invalidf("expires_at is required")
	}
	expires := req.ExpiresAt.Truncate(time.Second).UTC()
	switch {
	case !expires.After(now):
		return resp, invalidf("expires_at must be in the future")
	case expires.Sub(now) > h.opts.MaxExpiry:
		return resp, invalidf("expires_at must be within %s", humanDuration(h.opts.MaxExpiry))
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
	if len(content) > 0 {
		key = share.NewKey()
		defer clear(key)
		jwe, err := share.EncryptFile(key, share.ContentTypeFHIR, content, true)
		if err != nil {
			return resp, invalidf("%v", err)
		}
		spec.Files = []sharestore.FileSpec{{ContentType: share.ContentTypeFHIR, JWE: jwe}}
	} else {
		for _, f := range req.Files {
			spec.Files = append(spec.Files, sharestore.FileSpec(f))
		}
	}
	sh, err := h.store.Create(ctx, spec)
	if errors.Is(err, sharestore.ErrInvalid) {
		return resp, invalidf("%s", trimStorePrefix(err))
	}
	if err != nil {
		return resp, err
	}
	resp = api.ShareCreated{
		ID: sh.ID, URL: h.manifestURL(sh.ID), Flag: sh.Flag, Label: sh.Label,
		Exp: sh.Expires.Unix(), ExpiresAt: sh.Expires, ViewerURL: h.viewer,
	}
	if key != nil {
		p := resp.Payload(key)
		if resp.SHLink, err = share.Encode(p); err != nil {
			return api.ShareCreated{}, err
		}
		if resp.Link, err = share.ViewerLink(h.viewer, p); err != nil {
			return api.ShareCreated{}, err
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

func (h *Host) info(sh sharestore.Share, now time.Time) api.ShareInfo {
	return api.ShareInfo{
		ID: sh.ID, URL: h.manifestURL(sh.ID), Label: sh.Label, Flag: sh.Flag, Status: sh.Status(now),
		CreatedAt: sh.Created, ExpiresAt: sh.Expires, RevokedAt: sh.RevokedAt, LastUsedAt: sh.LastUsed,
		Passcode: sh.Passcode, RemainingAttempts: sh.RemainingAttempts, MaxUses: sh.MaxUses, Uses: sh.Uses,
		Files: len(sh.Files), Unlogged: sh.Unlogged,
	}
}

// ListShares returns owner's shares, newest first, in every state.
func (h *Host) ListShares(owner string) ([]api.ShareInfo, error) {
	list, err := h.store.List(owner)
	if err != nil {
		return nil, err
	}
	now := h.now()
	out := make([]api.ShareInfo, len(list))
	for i, sh := range list {
		out[i] = h.info(sh, now)
	}
	return out, nil
}

// RevokeShare ends owner's share id: from the next request on, its
// manifest, direct GET and location URLs answer 404, and its ciphertext
// is deleted. ErrNotFound if owner has no such share.
func (h *Host) RevokeShare(owner, id string) (api.ShareInfo, error) {
	now := h.now()
	sh, err := h.store.Revoke(owner, id, now)
	if err != nil {
		return api.ShareInfo{}, err
	}
	return h.info(sh, now), nil
}

// ShareLog returns the access log of owner's share id, oldest first.
// ErrNotFound if owner has no such share.
func (h *Host) ShareLog(owner, id string) ([]api.ShareLogEntry, error) {
	log, err := h.store.Log(owner, id)
	if err != nil {
		return nil, err
	}
	out := make([]api.ShareLogEntry, len(log))
	for i, e := range log {
		out[i] = api.ShareLogEntry{Seq: e.Seq, Time: e.Time, Recipient: e.Recipient, Outcome: e.Outcome, Count: e.Count}
	}
	return out, nil
}

// UpdateShare replaces the files of owner's long-term share id. The link
// stays the same; the next manifest request returns the new files.
func (h *Host) UpdateShare(owner, id string, req api.UpdateShareRequest) (api.ShareInfo, error) {
	now := h.now()
	files := make([]sharestore.FileSpec, len(req.Files))
	for i, f := range req.Files {
		files[i] = sharestore.FileSpec(f)
	}
	sh, err := h.store.ReplaceFiles(owner, id, files, now)
	if errors.Is(err, sharestore.ErrInvalid) {
		return api.ShareInfo{}, invalidf("%s", trimStorePrefix(err))
	}
	if err != nil {
		var ue *sharestore.UnavailableError
		if errors.As(err, &ue) {
			return api.ShareInfo{}, invalidf("the share is %s", ue.Reason)
		}
		return api.ShareInfo{}, err
	}
	return h.info(sh, now), nil
}
