package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"filippo.io/age"
	"github.com/phr-project/phr/pkg/vault"
	"golang.org/x/term"
)

var errNoVault = errors.New("no vault here")

// defaultVaultPath is $XDG_DATA_HOME/phr/vault.phr, or
// ~/.local/share/phr/vault.phr.
func defaultVaultPath(env func(string) string) string {
	base := env("XDG_DATA_HOME")
	if base == "" {
		home, _ := os.UserHomeDir()
		base = filepath.Join(home, ".local", "share")
	}
	return filepath.Join(base, "phr", "vault.phr")
}

// configDir is $PHR_CONFIG_DIR, $XDG_CONFIG_HOME/phr or ~/.config/phr.
func configDir(env func(string) string) string {
	if d := env("PHR_CONFIG_DIR"); d != "" {
		return d
	}
	base := env("XDG_CONFIG_HOME")
	if base == "" {
		home, _ := os.UserHomeDir()
		base = filepath.Join(home, ".config")
	}
	return filepath.Join(base, "phr")
}

// deviceIdentityPath is where init writes this device's age identity.
func deviceIdentityPath(env func(string) string) string {
	return filepath.Join(configDir(env), "device-identity.txt")
}

func displayPath(p string) string {
	if home, err := os.UserHomeDir(); err == nil && home != "" && strings.HasPrefix(p, home+string(filepath.Separator)) {
		return "~" + p[len(home):]
	}
	return p
}

func (g *globals) path() string {
	if g.vaultPath != "" {
		return g.vaultPath
	}
	if p := g.env("PHR_VAULT"); p != "" {
		return p
	}
	return defaultVaultPath(g.env)
}

// readIdentities parses an age identity file (native, or plugin identities).
func readIdentities(path string) ([]age.Identity, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	ids, err := parseIdentities(f)
	if err != nil {
		return nil, fmt.Errorf("identity file %s: %w", path, err)
	}
	return ids, nil
}

func parseIdentities(r io.Reader) ([]age.Identity, error) {
	return age.ParseIdentities(io.LimitReader(r, 1<<20))
}

// openVault unlocks the vault with, in order: PHR_PASSPHRASE, --identity
// or PHR_IDENTITY, the device identity written by init, or a passphrase
// typed at a prompt.
func (g *globals) openVault(readOnly bool) (*vault.Vault, error) {
	path := g.path()
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: no vault at %s", errNoVault, path)
	}
	open := func(secret vault.Secret) (*vault.Vault, error) {
		return g.openWith(path, secret, readOnly)
	}
	if p := g.env("PHR_PASSPHRASE"); p != "" {
		v, err := open(vault.Passphrase(p))
		if errors.Is(err, vault.ErrWrongKey) {
			return nil, errors.New("wrong passphrase (from PHR_PASSPHRASE)")
		}
		return v, err
	}
	idFile := g.identity
	if idFile == "" {
		idFile = g.env("PHR_IDENTITY")
	}
	if idFile != "" {
		ids, err := readIdentities(idFile)
		if err != nil {
			return nil, err
		}
		v, err := open(vault.Identities(ids...))
		if errors.Is(err, vault.ErrWrongKey) {
			return nil, fmt.Errorf("the identity in %s does not open this vault", idFile)
		}
		return v, err
	}
	if ids, err := readIdentities(deviceIdentityPath(g.env)); err == nil {
		v, err := open(vault.Identities(ids...))
		if !errors.Is(err, vault.ErrWrongKey) {
			return v, err
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	pass, err := g.prompt("Passphrase for " + displayPath(path) + ": ")
	if err != nil {
		return nil, err
	}
	v, err := open(vault.Passphrase(pass))
	if errors.Is(err, vault.ErrWrongKey) {
		return nil, errors.New("wrong passphrase")
	}
	return v, err
}

// openWith opens the vault with secret. A vault opened read-only that
// holds an import a crash interrupted would show that import's first
// records until the next write rolls them back, so it is opened for
// writing once instead, which rolls them back (the reader learns on
// stderr); if that fails, it stays read-only with a warning.
func (g *globals) openWith(path string, secret vault.Secret, readOnly bool) (*vault.Vault, error) {
	v, err := vault.Open(path, secret, &vault.Options{ReadOnly: readOnly})
	if err != nil || !readOnly {
		return v, err
	}
	if n, err := v.InterruptedImports(); err != nil || n == 0 {
		return v, nil
	}
	v.Close()
	w, werr := vault.Open(path, secret, nil)
	if werr == nil {
		g.rolledBack = append(g.rolledBack, w.RolledBack()...)
		if !g.reportsRollbacks {
			printRollbacks(g.stderr, w.RolledBack())
		}
		w.Close()
	}
	v, err = vault.Open(path, secret, &vault.Options{ReadOnly: true})
	if err == nil && werr != nil {
		fmt.Fprintf(g.stderr, "warning: the vault holds part of an import that was interrupted; it is rolled back when the vault is next opened for writing (%v)\n", werr)
	}
	return v, err
}

// prompt reads a secret from the terminal without echo.
func (g *globals) prompt(label string) (string, error) {
	f, ok := g.stdin.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return "", errors.New("no key to open the vault: set PHR_PASSPHRASE or PHR_IDENTITY, or run in a terminal")
	}
	fmt.Fprint(g.stderr, label)
	b, err := term.ReadPassword(int(f.Fd()))
	fmt.Fprintln(g.stderr)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// writePrivate writes a file readable only by the user, in a directory
// only the user can enter.
func writePrivate(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
