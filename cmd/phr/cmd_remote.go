package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/phr-project/phr/pkg/server/api"
	"github.com/spf13/cobra"
)

// remoteConfig is what `phr remote login` keeps in the config directory
// (0600): the server, the account, and a device credential that logs in
// without the passphrase. It never holds the passphrase.
type remoteConfig struct {
	URL        string    `json:"url"`
	Username   string    `json:"username"`
	DeviceID   string    `json:"device_id"`
	Credential string    `json:"credential"`
	Created    time.Time `json:"created"`
}

func remoteConfigPath(env func(string) string) string {
	return filepath.Join(configDir(env), "remote.json")
}

func (g *globals) loadRemote() (*remoteConfig, error) {
	data, err := os.ReadFile(remoteConfigPath(g.env))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, errors.New("not logged in to a phrd: run phr remote login URL --user NAME")
	}
	if err != nil {
		return nil, err
	}
	var rc remoteConfig
	if err := json.Unmarshal(data, &rc); err != nil || rc.URL == "" || rc.Credential == "" {
		return nil, fmt.Errorf("%s is damaged; run phr remote login again", remoteConfigPath(g.env))
	}
	return &rc, nil
}

// remoteClient logs in with the stored device credential.
func (g *globals) remoteClient(ctx context.Context) (*api.Client, *remoteConfig, error) {
	rc, err := g.loadRemote()
	if err != nil {
		return nil, nil, err
	}
	c := &api.Client{BaseURL: rc.URL}
	if _, err := c.Login(ctx, api.SessionRequest{Username: rc.Username, DeviceCredential: rc.Credential}); err != nil {
		return nil, nil, remoteError(err)
	}
	return c, rc, nil
}

// errWrongAccountPassphrase: phrd refused the passphrase at `phr remote
// login`.
var errWrongAccountPassphrase = errors.New("wrong passphrase")

// remoteError words the server's answers for people.
func remoteError(err error) error {
	var se *api.StatusError
	if errors.As(err, &se) {
		switch se.Status {
		case 401:
			return errors.New("phrd refused this machine's device credential (it was revoked, or the account's passphrase changed): run phr remote login again")
		case 429, 503:
			return fmt.Errorf("phrd is busy or rate-limiting logins; try again in %d s", max(se.RetryAfter, 1))
		}
		return fmt.Errorf("phrd: %s", se.Err.Message)
	}
	return err
}

func newRemoteCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "remote",
		Short: "Connect this CLI to a phrd (for sharing)",
		Args:  args(cobra.NoArgs),
	}
	cmd.AddCommand(newRemoteLoginCommand(g), newRemoteLogoutCommand(g), newRemoteStatusCommand(g))
	return cmd
}

func newRemoteLoginCommand(g *globals) *cobra.Command {
	var user, label string
	cmd := &cobra.Command{
		Use:   "login URL --user NAME",
		Short: "Log in to a phrd and keep a device credential for this machine",
		Long: `login asks phrd for a device credential with the account's passphrase
(PHRD_PASSPHRASE or a prompt) and keeps it in the config directory (0600);
later commands log in with it, without the passphrase.

PHRD_PASSPHRASE is the phrd account's passphrase; PHR_PASSPHRASE is the
vault's, so that one script can hold both. (Older phr read the account's
passphrase from PHR_PASSPHRASE: that still works when PHRD_PASSPHRASE is
not set, with a warning, and will stop.)`,
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			u, err := url.Parse(a[0])
			if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
				return usagef("URL: use https://host[:port]")
			}
			if u.Scheme == "http" && !isLoopback(u.Hostname()) {
				return usagef("URL: phrd must be reached over https (plain http only on this machine)")
			}
			if user == "" {
				return usagef("--user is required")
			}
			pass := g.env("PHRD_PASSPHRASE")
			if pass == "" {
				if pass = g.env("PHR_PASSPHRASE"); pass != "" {
					fmt.Fprintln(g.stderr, "phr: warning: the phrd account's passphrase came from PHR_PASSPHRASE, which is the vault's; set PHRD_PASSPHRASE instead (PHR_PASSPHRASE will stop working here)")
				}
			}
			if pass == "" {
				if pass, err = g.prompt("Passphrase for " + user + " on " + u.Host + ": "); err != nil {
					return usagef("no passphrase: set PHRD_PASSPHRASE or run in a terminal")
				}
			}
			ctx := cmd.Context()
			base := strings.TrimRight(u.String(), "/")
			c := &api.Client{BaseURL: base}
			if _, err := c.Login(ctx, api.SessionRequest{Username: user, Passphrase: pass}); err != nil {
				var se *api.StatusError
				if errors.As(err, &se) && se.Status == http.StatusUnauthorized {
					return fmt.Errorf("%w: phrd at %s refused it (or has no account %q)", errWrongAccountPassphrase, u.Host, user)
				}
				return remoteError(err)
			}
			if label == "" {
				host, _ := os.Hostname()
				label = "phr CLI on " + host
			}
			dev, err := c.CreateDevice(ctx, label, pass)
			if err != nil {
				return remoteError(err)
			}
			c.Logout(ctx)
			rc := remoteConfig{URL: base, Username: user, DeviceID: dev.ID, Credential: dev.Credential, Created: time.Now().UTC()}
			data, _ := json.MarshalIndent(rc, "", "  ")
			path := remoteConfigPath(g.env)
			os.Remove(path)
			if err := writePrivate(path, data); err != nil {
				return err
			}
			return g.print(map[string]string{"url": base, "username": user, "device": dev.ID}, func(w io.Writer) error {
				fmt.Fprintf(w, "Logged in to %s as %s (device %s)\n", base, user, dev.ID)
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&user, "user", "", "the account's username")
	cmd.Flags().StringVar(&label, "label", "", "a name for this machine on the server")
	return cmd
}

func isLoopback(host string) bool {
	return host == "localhost" || host == "127.0.0.1" || host == "::1" || strings.HasPrefix(host, "127.")
}

func newRemoteLogoutCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "logout",
		Short: "Revoke this machine's device credential on the phrd and forget it",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			rc, err := g.loadRemote()
			if err != nil {
				return err
			}
			c, _, lerr := g.remoteClient(ctx)
			if lerr == nil {
				if err := c.RemoveDevice(ctx, rc.DeviceID); err != nil {
					fmt.Fprintf(g.stderr, "phr: could not revoke the device on the server: %v\n", remoteError(err))
				}
				c.Logout(ctx)
			}
			if err := os.Remove(remoteConfigPath(g.env)); err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "Logged out of %s\n", rc.URL)
			return nil
		},
	}
}

func newRemoteStatusCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show the phrd this CLI uses, and whether the login works",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, rc, err := g.remoteClient(cmd.Context())
			if err != nil {
				return err
			}
			if _, err := c.Session(cmd.Context()); err != nil {
				return remoteError(err)
			}
			c.Logout(cmd.Context())
			return g.print(map[string]any{"url": rc.URL, "username": rc.Username, "device": rc.DeviceID, "ok": true}, func(w io.Writer) error {
				fmt.Fprintf(w, "%s as %s (device %s): login OK\n", rc.URL, rc.Username, rc.DeviceID)
				return nil
			})
		},
	}
}
