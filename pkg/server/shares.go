package server

import (
	"context"
	"crypto/hkdf"
	"crypto/sha256"
	"errors"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/phr-project/phr/pkg/record"
	"github.com/phr-project/phr/pkg/server/api"
	"github.com/phr-project/phr/pkg/share"
	"github.com/phr-project/phr/pkg/shlhost"
	"github.com/phr-project/phr/pkg/vault"
	"github.com/phr-project/phr/pkg/vault/sharestore"
	"github.com/phr-project/phr/pkg/viewer"
)

// sharesFile is the share store under DATA: ciphertext only.
const sharesFile = "shares.db"

// openShares opens the share store with a secret derived from the server
// key and makes the SMART Health Links host over it.
func (s *Server) openShares() error {
	secret, err := hkdf.Key(sha256.New, s.data.secret, nil, "phrd share store v1", 32)
	if err != nil {
		return err
	}
	store, err := sharestore.Open(filepath.Join(s.data.root, sharesFile), &sharestore.Options{Secret: secret, NoSync: s.cfg.VaultNoSync, Gate: kdfGate{s}})
	if err != nil {
		return err
	}
	base := strings.TrimRight(s.cfg.PublicURL, "/")
	s.shares = store
	s.shl = shlhost.New(store, base, shlhost.Options{Now: s.cfg.Now})
	if err := s.shl.CheckBaseURL(); err != nil {
		s.log.Warn("sharing is off: set --public-url to the https URL clients reach phrd at", "public_url", s.cfg.PublicURL)
	}
	return nil
}

// mountShares adds the public SHL routes, the viewer and the owner's
// share API.
func (s *Server) mountShares(e *echo.Echo, a *echo.Group, auth echo.MiddlewareFunc) {
	s.shl.Register(e)
	v := echo.WrapHandler(viewer.Handler())
	for _, p := range []string{"", "/", "/viewer.js", "/viewer.css"} {
		e.GET(viewer.Path+p, v)
	}
	a.POST("/shares", s.createShare, auth)
	a.GET("/shares", s.listShares, auth)
	a.DELETE("/shares/:id", s.revokeShare, auth)
	a.PUT("/shares/:id/files", s.updateShare, auth)
	a.GET("/shares/:id/log", s.shareLog, auth)
}

// kdfGate puts the share store's passcode hashing and checks (scrypt)
// under the server's one bound on key derivations, which passphrase
// logins share: a flood of manifest requests queues there and is then
// refused (503 with Retry-After), whatever it asks for.
type kdfGate struct{ s *Server }

var _ sharestore.Gate = kdfGate{}

func (g kdfGate) Acquire(ctx context.Context) error {
	err := g.s.kdf.acquire(ctx)
	if errors.Is(err, errBusy) {
		g.s.metrics.kdfRejected.Add(1)
	}
	return err
}

func (g kdfGate) Release() { g.s.kdf.release() }

func (s *Server) createShare(c echo.Context) error {
	var req api.CreateShareRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	var content []byte
	if req.Select != nil {
		if len(req.Files) > 0 {
			return badRequest("give files or select, not both")
		}
		var err error
		if content, err = buildShareContent(vaultOf(c), *req.Select, s.cfg.Now()); err != nil {
			return err
		}
		req.Select = nil
	}
	resp, err := s.shl.CreateShare(c.Request().Context(), sessionOf(c).acct.id, req, content)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, resp)
}

// buildShareContent builds the FHIR Bundle (or IPS) of the selected
// records.
func buildShareContent(v *vault.Vault, sel api.ShareSelect, now time.Time) ([]byte, error) {
	var patient record.Record
	if id, err := v.Setting("patient"); err == nil {
		patient, _ = v.Get(string(id))
	}
	var recs []record.Record
	if len(sel.IDs) > 0 {
		if len(sel.Types) > 0 || sel.Summary {
			return nil, newError(http.StatusBadRequest, api.CodeBadRequest, "select.ids chooses the records itself: no types or summary with it")
		}
		for _, id := range sel.IDs {
			r, err := v.Get(id)
			if err != nil || r.Deleted {
				return nil, newError(http.StatusBadRequest, api.CodeBadRequest, "select.ids: no record %s", id)
			}
			recs = append(recs, r)
		}
	} else {
		q := vault.Query{Since: sel.Since}
		for _, t := range sel.Types {
			q.Kinds = append(q.Kinds, record.NormalizeKind(t))
		}
		var err error
		if recs, err = v.List(q); err != nil {
			return nil, err
		}
	}
	out := recs[:0]
	for _, r := range recs {
		if r.ID != patient.ID && r.Kind != record.KindPatient {
			out = append(out, r)
		}
	}
	if len(out) == 0 && !sel.Summary {
		return nil, newError(http.StatusBadRequest, api.CodeBadRequest, "no records match: nothing to share")
	}
	if sel.Summary {
		return share.BuildIPS(patient, out, now)
	}
	return share.BuildBundle(patient, out)
}

func (s *Server) listShares(c echo.Context) error {
	list, err := s.shl.ListShares(sessionOf(c).acct.id)
	if err != nil {
		return err
	}
	if list == nil {
		list = []api.ShareInfo{}
	}
	return c.JSON(http.StatusOK, api.ShareList{Shares: list})
}

func (s *Server) revokeShare(c echo.Context) error {
	info, err := s.shl.RevokeShare(sessionOf(c).acct.id, c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, info)
}

func (s *Server) shareLog(c echo.Context) error {
	log, err := s.shl.ShareLog(sessionOf(c).acct.id, c.Param("id"))
	if err != nil {
		return err
	}
	if log == nil {
		log = []api.ShareLogEntry{}
	}
	return c.JSON(http.StatusOK, api.ShareLog{Log: log})
}

// updateShare replaces the files of a long-term share with files the
// client encrypted under the link's key.
func (s *Server) updateShare(c echo.Context) error {
	var req api.UpdateShareRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	info, err := s.shl.UpdateShare(sessionOf(c).acct.id, c.Param("id"), req)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, info)
}
