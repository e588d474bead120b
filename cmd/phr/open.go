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
	"github.com/phr-project/phr/internal/privatefile"
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

// openVault unlocks the vault with, in order: PHR_PASSPHRASE,
// PHR_RECOVERY_CODE, --identity or PHR_IDENTITY, the device identity
// written by init, or a passphrase or recovery code typed at a prompt.
func (g *globals) openVault(readOnly bool) (*vault.Vault, error) {
	return g.openVaultWith(readOnly, openOptions{})
}

// openOptions change how openVaultWith opens the vault (phr check).
type openOptions struct {
	// acceptRollback opens a file older than the newest this device has
	// seen, and remembers it as the newest.
	acceptRollback bool
	// unverified opens a file that does not match its authenticated
	// head, so that check can say what is wrong.
	unverified bool
}

func (g *globals) openVaultWith(readOnly bool, o openOptions) (*vault.Vault, error) {
	path := g.path()
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: no vault at %s", errNoVault, path)
	}
	open := func(secret vault.Secret) (*vault.Vault, error) {
		v, err := g.openWith(path, secret, readOnly, o)
		return v, explainOpenError(err)
	}
	if p := g.env("PHR_PASSPHRASE"); p != "" {
		v, err := open(vault.Passphrase(p))
		if errors.Is(err, vault.ErrWrongKey) {
			return nil, wrongKey("wrong passphrase (from PHR_PASSPHRASE)")
		}
		return v, err
	}
	if c := g.env("PHR_RECOVERY_CODE"); c != "" {
		v, err := open(vault.RecoveryCode(c))
		if errors.Is(err, vault.ErrWrongKey) {
			return nil, wrongKey("wrong recovery code (from PHR_RECOVERY_CODE)")
		}
		return v, err
	}
	idFile := g.identityFile()
	if idFile != "" {
		ids, err := readIdentities(idFile)
		if err != nil {
			return nil, err
		}
		v, err := open(vault.Identities(ids...))
		if errors.Is(err, vault.ErrWrongKey) {
			return nil, wrongKey(fmt.Sprintf("the identity in %s does not open this vault", idFile))
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
	pass, err := g.prompt("Passphrase (or recovery code) for " + displayPath(path) + ": ")
	if err != nil {
		return nil, err
	}
	v, err := openWithTyped(open, pass)
	if errors.Is(err, vault.ErrWrongKey) {
		return nil, wrongKey("wrong passphrase or recovery code")
	}
	return v, err
}

// openWithTyped opens with what was typed at the prompt: a passphrase, or
// a recovery code. Something shaped like a recovery code is tried as one
// first (it costs a few milliseconds; a passphrase about a second).
func openWithTyped(open func(vault.Secret) (*vault.Vault, error), typed string) (*vault.Vault, error) {
	if vault.IsRecoveryCode(typed) {
		v, err := open(vault.RecoveryCode(typed))
		if !errors.Is(err, vault.ErrWrongKey) {
			return v, err
		}
	}
	return open(vault.Passphrase(typed))
}

// explainOpenError adds to the errors of an untrusted file what the
// owner can do about them.
func explainOpenError(err error) error {
	switch {
	case errors.Is(err, vault.ErrRolledBack):
		return fmt.Errorf("%w. If you put this copy back on purpose (a backup or an older copy restored), run 'phr check --accept-rollback'; otherwise someone replaced the file: restore your newest backup", err)
	case errors.Is(err, vault.ErrTampered):
		return fmt.Errorf("%w. Run 'phr check' to see what; restore a backup you trust", err)
	}
	return err
}

// heads is where this device remembers the newest head it has seen of
// each vault: one file per vault ID in the config directory, next to the
// device identity.
func (g *globals) heads() vault.HeadStore {
	return headFiles{dir: filepath.Join(configDir(g.env), "heads")}
}

// headFiles keeps each vault's newest seen head in DIR/<vault ID>
// (0600, the directory 0700): "counter:tag", nothing secret.
type headFiles struct{ dir string }

func (h headFiles) file(vaultID string) (string, error) {
	for _, c := range vaultID {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return "", fmt.Errorf("vault ID %q", vaultID)
		}
	}
	return filepath.Join(h.dir, vaultID), nil
}

func (h headFiles) SeenHead(vaultID string) (vault.Head, bool, error) {
	p, err := h.file(vaultID)
	if err != nil {
		return vault.Head{}, false, err
	}
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return vault.Head{}, false, nil
	}
	if err != nil {
		return vault.Head{}, false, err
	}
	head, err := vault.ParseHead(string(b))
	if err != nil {
		return vault.Head{}, false, fmt.Errorf("%s: %w", p, err)
	}
	return head, true, nil
}

func (h headFiles) RememberHead(vaultID string, head vault.Head) error {
	p, err := h.file(vaultID)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(h.dir, 0o700); err != nil {
		return err
	}
	tmp := p + ".tmp"
	os.Remove(tmp)
	if err := writePrivate(tmp, []byte(head.String()+"\n")); err != nil {
		return err
	}
	return os.Rename(tmp, p)
}

// openWith opens the vault with secret. A vault opened read-only that
// holds an import a crash interrupted would show that import's first
// records until the next write rolls them back, so it is opened for
// writing once instead, which rolls them back (the reader learns on
// stderr); if that fails, it stays read-only with a warning.
func (g *globals) openWith(path string, secret vault.Secret, readOnly bool, o openOptions) (*vault.Vault, error) {
	opts := func(ro bool) *vault.Options {
		return &vault.Options{ReadOnly: ro, Heads: g.heads(), AcceptRollback: o.acceptRollback, Unverified: o.unverified}
	}
	v, err := vault.Open(path, secret, opts(readOnly))
	if err != nil || !readOnly {
		return v, err
	}
	if n, err := v.InterruptedImports(); err != nil || n == 0 {
		return v, nil
	}
	v.Close()
	w, werr := vault.Open(path, secret, opts(false))
	if werr == nil {
		g.rolledBack = append(g.rolledBack, w.RolledBack()...)
		if !g.reportsRollbacks {
			printRollbacks(g.stderr, w.RolledBack())
		}
		w.Close()
	}
	v, err = vault.Open(path, secret, opts(true))
	if err == nil && werr != nil {
		fmt.Fprintf(g.stderr, "warning: the vault holds part of an import that was interrupted; it is rolled back when the vault is next opened for writing (%v)\n", werr)
	}
	return v, err
}

// prompt reads a secret from the terminal without echo.
func (g *globals) prompt(label string) (string, error) {
	f, ok := g.stdin.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return "", errors.New("no key to open the vault: set PHR_PASSPHRASE, PHR_RECOVERY_CODE or PHR_IDENTITY, or run in a terminal")
	}
	fmt.Fprint(g.stderr, label)
	b, err := term.ReadPassword(int(f.Fd()))
	fmt.Fprintln(g.stderr)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// createFile writes the new file out (0600) through write, whole or not
// at all: into a hidden ".NAME.partial" beside it, synced, then linked to
// out, which never replaces an existing file.
func createFile(out string, write func(f *os.File) error) error {
	tmp := filepath.Join(filepath.Dir(out), "."+filepath.Base(out)+".partial")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	err = write(f)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Link(tmp, out)
	}
	os.Remove(tmp)
	return err
}

// writePrivate writes a file readable only by the user, in a directory
// only the user can enter.
func writePrivate(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return privatefile.Write(path, data)
}

// identityFile is the identity file given: --identity, else PHR_IDENTITY
// ("" for none).
func (g *globals) identityFile() string {
	if g.identity != "" {
		return g.identity
	}
	return g.env("PHR_IDENTITY")
}

// thisDevice returns the IDs of the slots this device's identity opens:
// the identity phr uses (--identity, PHR_IDENTITY, or the device identity
// init wrote), if there is one.
func (g *globals) thisDevice(v *vault.Vault) ([]string, error) {
	idFile := g.identityFile()
	if idFile == "" {
		idFile = deviceIdentityPath(g.env)
	}
	ids, err := readIdentities(idFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return v.SlotsOpenedBy(vault.Identities(ids...))
}

// wrongKeyError says which secret did not open the vault; it is
// vault.ErrWrongKey for errors.Is (exit code 4).
type wrongKeyError struct{ msg string }

func (e *wrongKeyError) Error() string        { return e.msg }
func (e *wrongKeyError) Is(target error) bool { return target == vault.ErrWrongKey }

func wrongKey(msg string) error { return &wrongKeyError{msg} }
