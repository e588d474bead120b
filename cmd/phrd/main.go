// Command phrd is phr's server: the JSON API that patients' phone apps
// (and `phr remote`) use, over one encrypted vault per account. See
// docs/operations.md.
//
//	phrd [serve] --addr 127.0.0.1:8080 --data DIR [--public-url URL]
//	     [--tls-cert F --tls-key F] [--registration open|closed]
//	phrd account create [--data DIR] NAME
//
// Every flag can also be set by environment, PHRD_ plus the flag's name in
// upper case with - as _ (PHRD_ADDR, PHRD_DATA, PHRD_REGISTRATION, ...);
// a flag on the command line wins.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/phr-project/phr/pkg/importers/all"
	"github.com/phr-project/phr/pkg/server"
	"golang.org/x/term"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv)
	os.Exit(code)
}

// Exit codes.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	if len(args) > 0 && args[0] == "account" {
		if err := runAccount(args[1:], stdin, stdout, stderr, getenv); err != nil {
			fmt.Fprintln(stderr, "phrd:", err)
			if errors.Is(err, errUsage) {
				return exitUsage
			}
			return exitError
		}
		return exitOK
	}
	if len(args) > 0 && args[0] == "serve" {
		args = args[1:]
	}
	m := NewMain()
	m.Stderr, m.Getenv = stderr, getenv
	if err := m.ParseFlags(ctx, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		fmt.Fprintln(stderr, "phrd:", err)
		return exitUsage
	}
	if err := m.Run(ctx); err != nil {
		fmt.Fprintln(stderr, "phrd:", err)
		return exitError
	}
	select {
	case <-ctx.Done():
	case err := <-m.done:
		if err != nil {
			m.logger.Error("server stopped", "err", err.Error())
			m.Close()
			return exitError
		}
	}
	m.logger.Info("shutting down", "timeout", m.ShutdownTimeout.String())
	if err := m.Close(); err != nil {
		m.logger.Error("shutdown", "err", err.Error())
		return exitError
	}
	m.logger.Info("stopped")
	return exitOK
}

// Main is the daemon: ParseFlags, Run, Close. Tests start a real server
// on 127.0.0.1:0 with it.
type Main struct {
	Config          server.Config
	Addr            string
	ShutdownTimeout time.Duration
	LogFormat       string // text or json
	LogLevel        string // debug, info, warn, error

	// Stderr receives logs; Getenv reads the environment (tests replace
	// both).
	Stderr io.Writer
	Getenv func(string) string

	logger *slog.Logger
	ln     net.Listener
	srv    *server.Server
	done   chan error
}

// NewMain returns a Main with the defaults.
func NewMain() *Main {
	return &Main{Addr: "127.0.0.1:8080", ShutdownTimeout: 30 * time.Second, LogFormat: "json", LogLevel: "info",
		Stderr: os.Stderr, Getenv: os.Getenv, Config: server.Config{Registration: server.RegistrationOpen}}
}

// Importers is the registry of import formats phrd serves.
var Importers = all.Default

// ParseFlags reads the flags, after the PHRD_* environment.
func (m *Main) ParseFlags(_ context.Context, args []string) error {
	fs := flag.NewFlagSet("phrd", flag.ContinueOnError)
	fs.SetOutput(m.Stderr)
	c := &m.Config
	fs.StringVar(&m.Addr, "addr", m.Addr, "address to listen on (host:port)")
	fs.StringVar(&c.DataDir, "data", c.DataDir, "data directory (vaults, server key)")
	fs.StringVar(&c.ShareKeyFile, "share-key", c.ShareKeyFile, "the share store's key file, outside the data directory (default DATA.share.key beside it)")
	fs.StringVar(&c.PublicURL, "public-url", c.PublicURL, "URL clients reach this server at")
	fs.StringVar(&c.TLSCert, "tls-cert", c.TLSCert, "TLS certificate file (PEM)")
	fs.StringVar(&c.TLSKey, "tls-key", c.TLSKey, "TLS key file (PEM)")
	fs.StringVar(&c.Registration, "registration", c.Registration, "open: anyone may create an account; closed: only 'phrd account create' on the host")
	fs.DurationVar(&c.IdleTimeout, "idle-timeout", 30*time.Minute, "end sessions unused this long")
	fs.DurationVar(&c.SessionLifetime, "session-lifetime", 12*time.Hour, "end sessions this long after login")
	fs.IntVar(&c.ScryptConcurrency, "scrypt-concurrency", 0, "concurrent key derivations: passphrase unlocks and share passcode checks (default: number of CPUs)")
	fs.Int64Var(&c.MaxImportBytes, "max-import-bytes", 256<<20, "largest upload to /api/v1/imports")
	fs.DurationVar(&c.ImportTimeout, "import-timeout", 10*time.Minute, "how long an upload (or a backup download) may take")
	fs.DurationVar(&c.ReadHeaderTimeout, "read-header-timeout", 10*time.Second, "how long a client may take to send a request's header")
	fs.DurationVar(&c.ReadTimeout, "read-timeout", time.Minute, "how long a client may take to send a whole request")
	fs.DurationVar(&c.WriteTimeout, "write-timeout", 2*time.Minute, "how long writing an answer may take")
	fs.DurationVar(&c.ConnIdleTimeout, "conn-idle-timeout", 2*time.Minute, "how long an idle keep-alive connection stays open")
	fs.IntVar(&c.MaxHeaderBytes, "max-header-bytes", 64<<10, "largest request header (431 beyond)")
	fs.Var(&proxyFlag{&c.TrustedProxies}, "trust-proxy", "networks of the reverse proxies in front (CIDRs or addresses, comma-separated: --trust-proxy=10.0.0.5,fd00::/64); their X-Forwarded-For names the client. Alone: loopback and private networks")
	fs.DurationVar(&m.ShutdownTimeout, "shutdown-timeout", m.ShutdownTimeout, "how long shutdown waits for requests in flight")
	fs.StringVar(&m.LogFormat, "log-format", m.LogFormat, "log format: json or text")
	fs.StringVar(&m.LogLevel, "log-level", m.LogLevel, "log level: debug, info, warn or error")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "usage: phrd [serve] --data DIR [flags]\n       phrd account create [--data DIR] NAME\n\nEvery flag can be set as PHRD_<NAME> in the environment.\n\n")
		fs.PrintDefaults()
	}
	if err := envFlags(fs, m.Getenv); err != nil {
		return err
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if c.DataDir == "" {
		return errors.New("--data (or PHRD_DATA) is required")
	}
	if c.Registration != server.RegistrationOpen && c.Registration != server.RegistrationClosed {
		return errors.New("--registration must be open or closed")
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return errors.New("--tls-cert and --tls-key go together")
	}
	if c.PublicURL == "" {
		// Share links name this URL; without --public-url they point at
		// the listening address, which only works on this machine (an
		// address of every interface, ":8080", becomes localhost).
		scheme := "http"
		if c.TLSCert != "" {
			scheme = "https"
		}
		host := m.Addr
		if h, port, err := net.SplitHostPort(m.Addr); err == nil {
			if ip := net.ParseIP(h); h == "" || ip != nil && ip.IsUnspecified() {
				h = "localhost"
			}
			host = net.JoinHostPort(h, port)
		}
		c.PublicURL = scheme + "://" + host
	}
	logger, err := newLogger(m.Stderr, m.LogFormat, m.LogLevel)
	if err != nil {
		return err
	}
	m.logger = logger
	return nil
}

// proxyFlag is --trust-proxy: a list of networks, or alone (true) the
// loopback and private ones.
type proxyFlag struct{ p *[]netip.Prefix }

func (f *proxyFlag) String() string {
	if f.p == nil {
		return ""
	}
	var s []string
	for _, p := range *f.p {
		s = append(s, p.String())
	}
	return strings.Join(s, ",")
}

func (f *proxyFlag) Set(v string) error {
	p, err := server.ParseTrustedProxies(v)
	if err != nil {
		return err
	}
	*f.p = p
	return nil
}

func (f *proxyFlag) IsBoolFlag() bool { return true }

// envFlags sets each flag from PHRD_<NAME> if that is set.
func envFlags(fs *flag.FlagSet, getenv func(string) string) error {
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		name := "PHRD_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v := getenv(name); v != "" && err == nil {
			if serr := fs.Set(f.Name, v); serr != nil {
				err = fmt.Errorf("%s: %v", name, serr)
			}
		}
	})
	return err
}

func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level: %v", err)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	}
	return nil, errors.New("--log-format must be json or text")
}

// Run opens the data directory and starts serving in the background. It
// returns once the listener is up.
func (m *Main) Run(_ context.Context) error {
	if m.logger == nil {
		var err error
		if m.logger, err = newLogger(m.Stderr, m.LogFormat, m.LogLevel); err != nil {
			return err
		}
	}
	if m.Config.Logger == nil {
		m.Config.Logger = m.logger
	}
	if m.Config.Importers == nil {
		m.Config.Importers = Importers()
	}
	srv, err := server.New(m.Config)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", m.Addr)
	if err != nil {
		srv.Close()
		return err
	}
	m.srv, m.ln, m.done = srv, ln, make(chan error, 1)
	go func() {
		err := srv.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		m.done <- err
	}()
	scheme := "http"
	if m.Config.TLSCert != "" {
		scheme = "https"
	}
	m.logger.Info("listening", "addr", ln.Addr().String(), "scheme", scheme, "registration", m.Config.Registration)
	return nil
}

// URL is the base URL the server listens on.
func (m *Main) URL() string {
	scheme := "http"
	if m.Config.TLSCert != "" {
		scheme = "https"
	}
	return scheme + "://" + m.ln.Addr().String()
}

// Close shuts the server down gracefully: no new connections, requests in
// flight finish (up to ShutdownTimeout), then every vault is closed.
func (m *Main) Close() error {
	if m.srv == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), m.ShutdownTimeout)
	defer cancel()
	err := m.srv.Shutdown(ctx)
	m.srv = nil
	return err
}

var errUsage = errors.New("usage: phrd account create [--data DIR] NAME")

// runAccount is `phrd account create NAME`: it makes an account on the
// host (for closed registration). The passphrase comes from
// PHRD_PASSPHRASE or a prompt without echo.
func runAccount(args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) error {
	if len(args) == 0 || args[0] != "create" {
		return errUsage
	}
	fs := flag.NewFlagSet("phrd account create", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var data string
	fs.StringVar(&data, "data", "", "data directory (or PHRD_DATA)")
	if err := envFlags(fs, getenv); err != nil {
		return err
	}
	if err := fs.Parse(args[1:]); err != nil {
		return errUsage
	}
	if fs.NArg() != 1 || data == "" {
		return errUsage
	}
	pass := getenv("PHRD_PASSPHRASE")
	if pass == "" {
		var err error
		if pass, err = prompt(stdin, stderr, "Passphrase for the new account: "); err != nil {
			return err
		}
		again, err := prompt(stdin, stderr, "Repeat the passphrase: ")
		if err != nil {
			return err
		}
		if again != pass {
			return errors.New("the passphrases do not match")
		}
	}
	res, err := server.CreateAccount(data, fs.Arg(0), pass)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Created account %s\n\nRecovery code (shown only now; give it to the account's owner to keep safe):\n\n    %s\n\n", res.Username, res.RecoveryCode)
	return nil
}

func prompt(stdin io.Reader, stderr io.Writer, label string) (string, error) {
	f, ok := stdin.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return "", errors.New("no passphrase: set PHRD_PASSPHRASE or run in a terminal")
	}
	fmt.Fprint(stderr, label)
	b, err := term.ReadPassword(int(f.Fd()))
	fmt.Fprintln(stderr)
	return string(b), err
}
