package server

import (
	"bytes"
	"context"
	"crypto/hkdf"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/phr-project/phr/pkg/fhirdoc"
	"github.com/phr-project/phr/pkg/pdfdoc"
	"github.com/phr-project/phr/pkg/server/api"
	"github.com/phr-project/phr/pkg/sharestore"
	"github.com/phr-project/phr/pkg/shlhost"
	"github.com/phr-project/phr/pkg/vault"
	"github.com/phr-project/phr/pkg/viewer"
)

// sharesFile is the share store under DATA: ciphertext only.
const sharesFile = "shares.db"

// openShares opens the share store with its secret from the key file
// outside the data directory (Config.ShareKeyFile), and makes the SMART
// Health Links host over it.
//
// Before the key file existed, the secret was derived from server.key, in
// the data directory itself: a store keyed so is rekeyed to the key
// file's secret on the first start that has one (sharestore.Rekey). If the
// key file cannot be made where it was not asked for explicitly, such a
// store keeps working under the old secret, and phrd says at every start
// what that exposes.
func (s *Server) openShares() error {
	if s.pg != nil {
		return s.openSharesDB()
	}
	path := filepath.Join(s.data.root, sharesFile)
	opts := sharestore.Options{NoSync: s.cfg.VaultNoSync, Gate: kdfGate{s}}
	legacy, err := legacyShareSecret(s.data.secret)
	if err != nil {
		return err
	}
	secret, created, err := sharestore.LoadOrCreateSecret(s.cfg.ShareKeyFile)
	if err != nil {
		_, statErr := os.Stat(path)
		if s.cfg.ShareKeyFile != DefaultShareKeyFile(s.cfg.DataDir) || statErr != nil {
			return fmt.Errorf("the share key file: %w (give one outside the data directory with --share-key or PHRD_SHARE_KEY)", err)
		}
		s.log.Warn("the share store's secret is derived from server.key in the data directory, so a copy of the data directory reveals share ids, labels, recipients and owners: give phrd a share key file outside it (--share-key)", "err_type", fmt.Sprintf("%T", err))
		secret = legacy
	}
	if created {
		s.log.Info("created the share key file; keep it apart from the data directory's backups")
	}
	opts.Secret = secret
	store, err := sharestore.Open(path, &opts)
	if errors.Is(err, sharestore.ErrWrongSecret) && !bytes.Equal(secret, legacy) {
		// A store of an older phrd, keyed from server.key: move it under
		// the key file's secret.
		ids, ierr := s.data.store.ids()
		if ierr != nil {
			return ierr
		}
		res, rerr := sharestore.Rekey(path, legacy, secret, ids, &sharestore.Options{NoSync: s.cfg.VaultNoSync})
		switch {
		case rerr == nil:
			s.log.Info("moved the share store to the share key file's secret", "shares", res.Shares, "dropped_without_account", res.Dropped)
		case errors.Is(rerr, sharestore.ErrWrongSecret) && created:
			// The data directory came without its key file (a restore,
			// a copy): its shares can never be opened again. Keep the
			// file aside and start a new store.
			aside := fmt.Sprintf("%s.orphaned-%d", path, s.cfg.Now().Unix())
			if err := os.Rename(path, aside); err != nil {
				return err
			}
			s.log.Warn("shares.db does not belong to the share key file, which was just created: it was moved aside and a new share store begun; every link made before no longer works (put the right key file at --share-key and the file back to keep them)", "moved_to", filepath.Base(aside))
		case errors.Is(rerr, sharestore.ErrWrongSecret):
			return fmt.Errorf("the share key file %s does not belong to %s", s.cfg.ShareKeyFile, path)
		default:
			return fmt.Errorf("moving the share store to the share key file's secret: %w", rerr)
		}
		store, err = sharestore.Open(path, &opts)
	}
	if errors.Is(err, sharestore.ErrWrongSecret) {
		return fmt.Errorf("the share key file %s does not belong to %s", s.cfg.ShareKeyFile, path)
	}
	if err != nil {
		return err
	}
	s.useShares(store)
	return nil
}

// sharesNamespace is the share store's namespace in PostgreSQL.
const sharesNamespace = "shares"

// openSharesDB opens the share store in the database. Its secret comes
// from the share key file as on one node; every node needs the same file.
// A database has no store of an older phrd to rekey.
func (s *Server) openSharesDB() error {
	secret, created, err := sharestore.LoadOrCreateSecret(s.cfg.ShareKeyFile)
	if err != nil {
		return fmt.Errorf("the share key file: %w (give one outside the data directory with --share-key or PHRD_SHARE_KEY)", err)
	}
	if created {
		s.log.Info("created the share key file; give every node the same file, and keep it apart from the database's backups")
	}
	store, err := sharestore.OpenDB(s.pg.Namespace(sharesNamespace), &sharestore.Options{Secret: secret, Gate: kdfGate{s}})
	if errors.Is(err, sharestore.ErrWrongSecret) {
		return fmt.Errorf("the share key file %s does not belong to the database's share store (every node needs the same file)", s.cfg.ShareKeyFile)
	}
	if err != nil {
		return fmt.Errorf("the database's share store: %w", err)
	}
	s.useShares(store)
	return nil
}

// useShares makes the SMART Health Links host over the open store.
func (s *Server) useShares(store *sharestore.Store) {
	base := strings.TrimRight(s.cfg.PublicURL, "/")
	s.shares = store
	s.shl = shlhost.New(store, base, shlhost.Options{Now: s.cfg.Now})
	if err := s.shl.CheckBaseURL(); err != nil {
		s.log.Warn("sharing is off: set --public-url to the https URL clients reach phrd at", "public_url", s.cfg.PublicURL)
	}
}

// legacyShareSecret is the share store's secret as phrd derived it before
// the share key file: from server.key. Kept to open, and rekey, such
// stores.
func legacyShareSecret(serverKey []byte) ([]byte, error) {
	return hkdf.Key(sha256.New, serverKey, nil, "phrd share store v1", 32)
}

// mountShares adds the public SHL routes, the viewer and the owner's
// share API.
func (s *Server) mountShares(e *echo.Echo, a *echo.Group, auth echo.MiddlewareFunc) {
	s.shl.Register(e)
	v := echo.WrapHandler(viewer.Handler())
	for _, p := range viewer.Routes() {
		e.GET(p, v)
	}
	e.GET(viewer.ModuleDir+":name", v) // the page's ES modules
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
		switch req.Select.Profile {
		case "":
			if req.Select.Story != "" {
				return badRequest("select.story goes with select.profile ktc")
			}
		case fhirdoc.ProfileKTC:
			switch {
			case req.Passcode != "":
				return badRequest("a ktc share is a direct link: no passcode")
			case req.LongTerm:
				return badRequest("a ktc share is a short-lived direct link: no long_term")
			case req.Select.Summary:
				return badRequest("select.profile ktc shares the selected records: no summary with it")
			}
			req.Direct = true
		default:
			return badRequest("select.profile: the only profile is ktc")
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
	patient, out, err := v.SelectForShare(vault.Selection{IDs: sel.IDs, Kinds: sel.Types, Since: sel.Since, Summary: sel.Summary,
		NoneOK: strings.TrimSpace(sel.Story) != ""})
	if err != nil {
		return nil, err
	}
	data, err := fhirdoc.BuildShare(patient, out, fhirdoc.ShareDoc{Summary: sel.Summary, Profile: sel.Profile, Story: sel.Story, Now: now})
	switch {
	case errors.Is(err, fhirdoc.ErrKTCNoPatient):
		return nil, newError(http.StatusBadRequest, api.CodeBadRequest, "a ktc share needs the patient: the vault names none")
	case errors.Is(err, pdfdoc.ErrStory):
		return nil, newError(http.StatusBadRequest, api.CodeBadRequest, "select.story must be UTF-8 text of at most 64 KiB")
	}
	return data, err
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
