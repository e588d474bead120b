package server

import (
	"errors"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/phr-project/phr/pkg/server/api"
	"github.com/phr-project/phr/pkg/vault"
)

// Key management of the account's vault: the same operations as `phr
// key` and `phr passwd`, over the API. Each one checks the passphrase
// (scrypt) holding a slot of the server's KDF gate, like a login.

// KeySlot is a key slot as GET /api/v1/keys lists it: never a secret.
type KeySlot struct {
	ID      string    `json:"id"`
	Kind    string    `json:"kind"`
	Label   string    `json:"label"`
	Created time.Time `json:"created"`
}

func (s *Server) listKeys(c echo.Context) error {
	slots, err := vaultOf(c).Slots()
	if err != nil {
		return err
	}
	out := make([]KeySlot, len(slots))
	for i, sl := range slots {
		out[i] = KeySlot{ID: sl.ID, Kind: string(sl.Kind), Label: sl.Label, Created: sl.Created}
	}
	return c.JSON(http.StatusOK, map[string]any{"keys": out})
}

// withPassphrase runs fn, holding a slot of the KDF gate, once passphrase
// has been checked against the session's vault: key changes need the
// passphrase, so that a stolen session token alone cannot make them. The
// check counts against the account's passphrase limit, like a login, so
// that the holder of a stolen token cannot guess the passphrase here
// faster than at the login.
func (s *Server) withPassphrase(c echo.Context, passphrase string, fn func(v *vault.Vault) error) error {
	acct := sessionOf(c).acct.id
	if ok, wait := s.acctLimit.allow(acct); !ok {
		return s.rateLimited(wait)
	}
	if err := s.kdf.acquire(c.Request().Context()); err != nil {
		s.acctLimit.refund(acct)
		return err
	}
	defer s.kdf.release()
	v := vaultOf(c)
	if len(passphrase) > maxPassphrase {
		return errUnauthorized
	}
	if ok, err := v.Opens(vault.Passphrase(passphrase)); err != nil || !ok {
		return errUnauthorized
	}
	s.acctLimit.refund(acct) // only failures count
	return fn(v)
}

// changePassphrase replaces every passphrase slot with one new passphrase.
func (s *Server) changePassphrase(c echo.Context) error {
	var req struct {
		Passphrase    string `json:"passphrase"`
		NewPassphrase string `json:"new_passphrase"`
	}
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if len([]rune(req.NewPassphrase)) < 10 {
		return newError(http.StatusBadRequest, api.CodeBadRequest, "new_passphrase: at least 10 characters")
	}
	return s.withPassphrase(c, req.Passphrase, func(v *vault.Vault) error {
		if _, err := v.ReplaceSlots(vault.SlotSpec{Kind: vault.SlotPassphrase, Label: "passphrase", Passphrase: req.NewPassphrase}); err != nil {
			return err
		}
		return c.NoContent(http.StatusNoContent)
	})
}

// newRecovery replaces the recovery code; the old one stops working.
func (s *Server) newRecovery(c echo.Context) error {
	var req struct {
		Passphrase string `json:"passphrase"`
	}
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	return s.withPassphrase(c, req.Passphrase, func(v *vault.Vault) error {
		code := vault.NewRecoveryCode()
		if _, err := v.ReplaceSlots(vault.SlotSpec{Kind: vault.SlotRecovery, Label: "recovery code", RecoveryCode: code}); err != nil {
			return err
		}
		return c.JSON(http.StatusOK, map[string]string{"recovery_code": code})
	})
}

// rotateKey makes a new vault key (see vault.Rotate): every record
// resealed, every slot rewrapped, a new recovery code.
func (s *Server) rotateKey(c echo.Context) error {
	var req struct {
		Passphrase string `json:"passphrase"`
	}
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	return s.withPassphrase(c, req.Passphrase, func(v *vault.Vault) error {
		code := vault.NewRecoveryCode()
		if err := v.Rotate(vault.RotateOptions{Passphrase: req.Passphrase, RecoveryCode: code}); err != nil {
			if errors.Is(err, vault.ErrCorrupt) {
				return err
			}
			return newError(http.StatusConflict, api.CodeConflict, "the vault key could not be rotated; nothing changed")
		}
		return c.JSON(http.StatusOK, map[string]string{"recovery_code": code})
	})
}
