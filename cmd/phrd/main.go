// Command phrd is phr's server: the JSON API that patients' phone apps
// (and `phr remote`) use, over one encrypted vault per account. See
// docs/operations.md.
//
//	phrd [serve] --data DIR [--addr 127.0.0.1:8080] [--public-url URL]
//	     [--tls-cert F --tls-key F] [--registration loopback|open|closed] ...
//	phrd account create NAME --data DIR
//
// Flags and arguments go in any order, in the style of phr (--flag VALUE
// or --flag=VALUE); `phrd --help` and `phrd account --help` list them.
// Every flag can also be set by environment, PHRD_ plus the flag's name in
// upper case with - as _ (PHRD_ADDR, PHRD_DATA, PHRD_REGISTRATION, ...);
// a flag on the command line wins.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"filippo.io/age"
	"github.com/phr-project/phr/pkg/importers/all"
	"github.com/phr-project/phr/pkg/server"
	"github.com/spf13/cobra"
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

// usageError marks a mistake in what was typed: exit code 2.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error { return &usageError{fmt.Errorf(format, args...)} }

// args wraps a cobra argument check so that its errors are usage errors.
func args(v cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, a []string) error {
		if err := v(cmd, a); err != nil {
			return &usageError{err}
		}
		return nil
	}
}

func run(ctx context.Context, argv []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	root := newRootCommand(stdin, stdout, stderr, getenv)
	root.SetArgs(argv)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	fmt.Fprintln(stderr, "phrd:", err)
	var ue *usageError
	if errors.As(err, &ue) {
		fmt.Fprintln(stderr, "hint: phrd --help (or phrd COMMAND --help) lists the commands and flags")
		return exitUsage
	}
	return exitError
}

// newRootCommand is phrd: `serve` when no command is named.
func newRootCommand(stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) *cobra.Command {
	serve := func(use string) *cobra.Command {
		m := NewMain()
		m.Stderr, m.Getenv = stderr, getenv
		cmd := &cobra.Command{
			Use:   use,
			Short: "Serve the API, the share links and the viewer (the default command)",
			Long: `serve runs phrd over the data directory until SIGINT or SIGTERM, then lets
requests in flight finish and closes every vault. Every flag can be set in
the environment as PHRD_<FLAG> (PHRD_DATA, PHRD_ADDR, ...); a flag wins.`,
			Example: `  phrd --data /var/lib/phrd
  phrd --addr :8443 --data /var/lib/phrd --tls-cert cert.pem --tls-key key.pem \
       --public-url https://phr.example.org --registration closed`,
			Args: args(func(cmd *cobra.Command, a []string) error {
				if len(a) > 0 && cmd.Flags().Lookup("trust-proxy").Changed {
					if _, err := server.ParseTrustedProxies(a[0]); err == nil {
						return fmt.Errorf("unexpected argument %q: give the proxies as --trust-proxy=%s", a[0], a[0])
					}
				}
				return cobra.NoArgs(cmd, a)
			}),
			RunE: func(cmd *cobra.Command, _ []string) error {
				if err := m.finishFlags(cmd); err != nil {
					return &usageError{err}
				}
				return serveMain(cmd.Context(), m)
			},
		}
		m.defineFlags(cmd)
		return cmd
	}
	root := serve("phrd")
	root.Short = "phr's server: the JSON API over one encrypted vault per account"
	root.SilenceUsage, root.SilenceErrors = true, true
	root.CompletionOptions = cobra.CompletionOptions{HiddenDefaultCmd: true}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		if strings.HasPrefix(err.Error(), "unknown shorthand flag") {
			return usagef("%v (long flags take two dashes: --addr, not -addr)", err)
		}
		return &usageError{err}
	})
	root.AddCommand(serve("serve"), newAccountCommand(stdin, stdout, stderr, getenv), newMigrateCommand(stdout, getenv))
	return root
}

// serveMain runs m until ctx ends or the server fails.
func serveMain(ctx context.Context, m *Main) error {
	if err := m.Run(ctx); err != nil {
		return err
	}
	select {
	case <-ctx.Done():
	case err := <-m.done:
		if err != nil {
			m.logger.Error("server stopped", "err", err.Error())
			m.Close()
			return errors.New("the server stopped (the log says why)")
		}
	}
	m.logger.Info("shutting down", "timeout", m.ShutdownTimeout.String())
	if err := m.Close(); err != nil {
		m.logger.Error("shutdown", "err", err.Error())
		return errors.New("shutdown failed (the log says why)")
	}
	m.logger.Info("stopped")
	return nil
}

// Main is the daemon: ParseFlags, Run, Close. Tests start a real server
// on 127.0.0.1:0 with it.
type Main struct {
	Config          server.Config
	Addr            string
	MetricsAddr     string // "" (the default): no /metrics
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

	metricsLn  net.Listener
	metricsSrv *http.Server
	flagNames  []string
}

// NewMain returns a Main with the defaults.
func NewMain() *Main {
	return &Main{Addr: "127.0.0.1:8080", ShutdownTimeout: 30 * time.Second, LogFormat: "json", LogLevel: "info",
		Stderr: os.Stderr, Getenv: os.Getenv, Config: server.Config{Registration: server.RegistrationLoopback}}
}

// Importers is the registry of import formats phrd serves.
var Importers = all.Default

// defineFlags adds serve's flags to cmd (phrd and phrd serve) and notes
// their names for envFlags.
func (m *Main) defineFlags(cmd *cobra.Command) {
	fs := cmd.Flags()
	c := &m.Config
	var names []string
	str := func(p *string, name, usage string) {
		fs.StringVar(p, name, *p, usage)
		names = append(names, name)
	}
	dur := func(p *time.Duration, name string, def time.Duration, usage string) {
		fs.DurationVar(p, name, def, usage)
		names = append(names, name)
	}
	str(&m.Addr, "addr", "address to listen on (host:port)")
	str(&c.DataDir, "data", "data directory (server key, uploads; and vaults, share store, sessions without --database-url); required")
	str(&c.DatabaseURL, "database-url", "PostgreSQL database for the accounts' vaults, the share store, sessions and login limits, shared by any number of phrd nodes (postgres://user@host/db; a password belongs in PHRD_DATABASE_URL or PGPASSFILE, not here). Default: all in --data")
	str(&c.ShareKeyFile, "share-key", "the share store's key file, outside the data directory (default DATA.share.key beside it)")
	str(&c.PublicURL, "public-url", "the URL clients reach this server at (default from --addr)")
	str(&c.TLSCert, "tls-cert", "TLS certificate file (PEM)")
	str(&c.TLSKey, "tls-key", "TLS key file (PEM)")
	str(&c.Registration, "registration", "who may create accounts: loopback (clients on this machine), open (anyone) or closed (only 'phrd account create')")
	str(&m.MetricsAddr, "metrics-addr", "serve GET /metrics (Prometheus) on this address only, for the monitoring network (default: not at all)")
	dur(&c.IdleTimeout, "idle-timeout", 30*time.Minute, "end sessions unused this long")
	dur(&c.SessionLifetime, "session-lifetime", 12*time.Hour, "end sessions this long after login")
	fs.BoolVar(&c.VaultsPerRequest, "vaults-per-request", false, "close an account's vault after each request, not when its sessions end: for nodes that share one vault directory (a vault file opens in one process at a time); not needed with --database-url, where the vaults are in the database")
	fs.IntVar(&c.ScryptConcurrency, "scrypt-concurrency", 0, "concurrent key derivations: passphrase unlocks and share passcode checks (default: number of CPUs)")
	fs.Int64Var(&c.MaxImportBytes, "max-import-bytes", 256<<20, "largest upload to /api/v1/imports")
	dur(&c.ImportTimeout, "import-timeout", 10*time.Minute, "how long an upload (or a backup download) may take")
	dur(&c.ReadHeaderTimeout, "read-header-timeout", 10*time.Second, "how long a client may take to send a request's header")
	dur(&c.ReadTimeout, "read-timeout", time.Minute, "how long a client may take to send a whole request")
	dur(&c.WriteTimeout, "write-timeout", 2*time.Minute, "how long writing an answer may take")
	dur(&c.ConnIdleTimeout, "conn-idle-timeout", 2*time.Minute, "how long an idle keep-alive connection stays open")
	fs.IntVar(&c.MaxHeaderBytes, "max-header-bytes", 64<<10, "largest request header (431 beyond)")
	fs.Var(&proxyFlag{&c.TrustedProxies}, "trust-proxy", "the reverse proxies' networks, CIDRs or addresses (--trust-proxy=10.0.0.5,fd00::/64): X-Forwarded-For from them names the client. Alone: loopback and private networks")
	fs.Lookup("trust-proxy").NoOptDefVal = "true"
	dur(&m.ShutdownTimeout, "shutdown-timeout", m.ShutdownTimeout, "how long shutdown waits for requests in flight")
	str(&m.LogFormat, "log-format", "log format: json or text")
	str(&m.LogLevel, "log-level", "log level: debug, info, warn or error")
	m.flagNames = append(names, "vaults-per-request", "scrypt-concurrency", "max-import-bytes", "max-header-bytes", "trust-proxy")
}

// ParseFlags reads the flags in args, then the PHRD_* environment for
// those not given.
func (m *Main) ParseFlags(_ context.Context, argv []string) error {
	cmd := &cobra.Command{Use: "phrd"}
	cmd.SetOut(m.Stderr)
	cmd.SetErr(m.Stderr)
	m.defineFlags(cmd)
	fs := cmd.Flags()
	if err := fs.Parse(argv); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		if _, err := server.ParseTrustedProxies(fs.Arg(0)); err == nil && fs.Lookup("trust-proxy").Changed {
			return fmt.Errorf("unexpected argument %q: give the proxies as --trust-proxy=%s", fs.Arg(0), fs.Arg(0))
		}
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	return m.finishFlags(cmd)
}

// finishFlags sets the flags cmd was not given from PHRD_<NAME>, checks
// them, and makes the logger.
func (m *Main) finishFlags(cmd *cobra.Command) error {
	if cmd.Flags().Lookup("database-url").Changed && urlHasPassword(m.Config.DatabaseURL) {
		return errors.New("--database-url holds a password, which every user of this machine can read in the process list: give the URL in PHRD_DATABASE_URL, or the password in a PGPASSFILE")
	}
	if err := envFlags(cmd, m.flagNames, m.Getenv); err != nil {
		return err
	}
	c := &m.Config
	if c.DataDir == "" {
		return errors.New("--data (or PHRD_DATA) is required")
	}
	switch c.Registration {
	case server.RegistrationLoopback, server.RegistrationOpen, server.RegistrationClosed:
	default:
		return errors.New("--registration must be loopback, open or closed")
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

// envFlags sets each flag of cmd named in names that was not given from
// PHRD_<NAME>, if that is set.
func envFlags(cmd *cobra.Command, names []string, getenv func(string) string) error {
	fs := cmd.Flags()
	for _, name := range names {
		f := fs.Lookup(name)
		env := "PHRD_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
		if v := getenv(env); v != "" && !f.Changed {
			if err := fs.Set(name, v); err != nil {
				return fmt.Errorf("%s: %v", env, err)
			}
		}
	}
	return nil
}

// proxyFlag is --trust-proxy: a list of networks, or alone (true) the
// loopback and private ones.
type proxyFlag struct{ p *[]netip.Prefix }

func (f *proxyFlag) String() string {
	var s []string
	if f.p != nil {
		for _, p := range *f.p {
			s = append(s, p.String())
		}
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

func (f *proxyFlag) Type() string { return "networks" }

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

// Run opens the data directory and starts serving in the background (and
// /metrics on MetricsAddr, if set). It returns once the listeners are up.
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
	if m.MetricsAddr != "" {
		mln, err := net.Listen("tcp", m.MetricsAddr)
		if err != nil {
			ln.Close()
			srv.Close()
			return fmt.Errorf("--metrics-addr: %w", err)
		}
		m.metricsLn = mln
		m.metricsSrv = &http.Server{Handler: srv.MetricsHandler(), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute, WriteTimeout: time.Minute, IdleTimeout: 2 * time.Minute}
		go m.metricsSrv.Serve(mln)
		m.logger.Info("metrics listening", "addr", mln.Addr().String())
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
	// Where the vaults, share store and login limits live (never the
	// URL: it may hold a password).
	shared := "data directory"
	if m.Config.DatabaseURL != "" {
		shared = "postgresql"
	}
	m.logger.Info("listening", "addr", ln.Addr().String(), "scheme", scheme, "registration", m.Config.Registration, "vaults", shared, "shares", shared)
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

// MetricsURL is the URL of /metrics, or "" without MetricsAddr.
func (m *Main) MetricsURL() string {
	if m.metricsLn == nil {
		return ""
	}
	return "http://" + m.metricsLn.Addr().String() + "/metrics"
}

// Close shuts the server down gracefully: no new connections, requests in
// flight finish (up to ShutdownTimeout), then every vault is closed.
func (m *Main) Close() error {
	if m.srv == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), m.ShutdownTimeout)
	defer cancel()
	if m.metricsSrv != nil {
		m.metricsSrv.Shutdown(ctx)
		m.metricsSrv, m.metricsLn = nil, nil
	}
	err := m.srv.Shutdown(ctx)
	m.srv = nil
	return err
}

// newAccountCommand is `phrd account`: accounts made on the host.
func newAccountCommand(stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "account",
		Short: "Manage accounts on this host (for closed or loopback registration)",
		Args: args(func(cmd *cobra.Command, a []string) error {
			if len(a) > 0 {
				return fmt.Errorf("unknown command %q for %q (commands: create, import)", a[0], cmd.CommandPath())
			}
			return nil
		}),
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	var host server.Host
	// hostFlags reads the environment for the flags not given and checks
	// them.
	hostFlags := func(cmd *cobra.Command) error {
		if cmd.Flags().Lookup("database-url").Changed && urlHasPassword(host.DatabaseURL) {
			return usagef("--database-url holds a password, which every user of this machine can read in the process list: give the URL in PHRD_DATABASE_URL, or the password in a PGPASSFILE")
		}
		if err := envFlags(cmd, []string{"data", "database-url"}, getenv); err != nil {
			return &usageError{err}
		}
		if host.DataDir == "" {
			return usagef("--data (or PHRD_DATA) is required")
		}
		return nil
	}
	create := &cobra.Command{
		Use:   "create NAME --data DIR [--database-url URL]",
		Short: "Create an account and print its recovery code",
		Long: `create makes the account NAME in the data directory and prints its
recovery code once. The passphrase comes from PHRD_PASSPHRASE, or is asked
twice without echo. With --database-url (or PHRD_DATABASE_URL) the vault
is made in that database, as the nodes on it do; the data directory still
gives server.key. It is safe while the servers run.`,
		Example: `  PHRD_PASSPHRASE=... phrd account create alice --data /var/lib/phrd`,
		Args:    args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			if err := hostFlags(cmd); err != nil {
				return err
			}
			return runAccountCreate(cmd.Context(), host, a[0], stdin, stdout, stderr, getenv)
		},
	}
	create.Flags().StringVar(&host.DataDir, "data", "", "data directory (or PHRD_DATA)")
	create.Flags().StringVar(&host.DatabaseURL, "database-url", "", "the PostgreSQL database of the nodes that keep their vaults there (or PHRD_DATABASE_URL)")
	var identity string
	imp := &cobra.Command{
		Use:   "import NAME FILE.age --data DIR [--database-url URL] [--identity FILE]",
		Short: "Create an account from a backup (phr backup) and print its recovery code",
		Long: `import makes the account NAME in the data directory from a backup made
by phr backup (or by another phrd): every record with its ID, history and
provenance, and the backup's settings, under a new vault key. The backup
is decrypted with the age identities in --identity, or else with the
backup passphrase from PHRD_BACKUP_PASSPHRASE or a prompt. The account's
passphrase comes from PHRD_PASSPHRASE, or is asked twice without echo; its
new recovery code is printed once. The whole backup is read and verified
before the account exists: a backup that does not restore makes no
account. With --database-url (or PHRD_DATABASE_URL) the vault is made in
that database (built in DIR/tmp, then copied in one transaction). It is
safe while the servers run.`,
		Example: `  phr backup -o alice.age --passphrase
  PHRD_BACKUP_PASSPHRASE=... PHRD_PASSPHRASE=... phrd account import alice alice.age --data /var/lib/phrd`,
		Args: args(cobra.ExactArgs(2)),
		RunE: func(cmd *cobra.Command, a []string) error {
			if err := hostFlags(cmd); err != nil {
				return err
			}
			return runAccountImport(cmd.Context(), host, a[0], a[1], identity, stdin, stdout, stderr, getenv)
		},
	}
	imp.Flags().StringVar(&host.DataDir, "data", "", "data directory (or PHRD_DATA)")
	imp.Flags().StringVar(&host.DatabaseURL, "database-url", "", "the PostgreSQL database of the nodes that keep their vaults there (or PHRD_DATABASE_URL)")
	imp.Flags().StringVar(&identity, "identity", "", "age identity file that decrypts the backup (default: the backup passphrase)")
	cmd.AddCommand(create, imp)
	return cmd
}

// newMigrateCommand is `phrd migrate`: a single node's data directory
// into PostgreSQL.
func newMigrateCommand(stdout io.Writer, getenv func(string) string) *cobra.Command {
	var from, dbURL, shareKey string
	cmd := &cobra.Command{
		Use:   "migrate --from-data DIR --database-url URL",
		Short: "Move a node's vaults and share store from its data directory into PostgreSQL",
		Long: `migrate copies what phrd keeps in PostgreSQL with --database-url (every
account's vault, into the namespace vault/<account id>, and the share
store) from the data directory DIR into the database, as it is: sealed
values under keyed names, so that the same passphrases open the vaults and
every link keeps working. Stop phrd on DIR first. It refuses, before it
copies anything, a database that already holds a share store or the vault
of any of DIR's accounts; it copies each vault in one transaction and
checks that the database holds as many buckets, keys and bytes as the
file, and that the share key file opens the moved share store; it prints
the counts. The files are left in place (remove them once the nodes serve
from the database). Every node then needs DIR/server.key. Sessions are not
moved: users log in again. The database URL comes from --database-url or
PHRD_DATABASE_URL (a URL with a password only from the environment).`,
		Example: `  PHRD_DATABASE_URL=postgres://phrd@db.internal/phr phrd migrate --from-data /var/lib/phrd`,
		Args:    args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cmd.Flags().Lookup("database-url").Changed && urlHasPassword(dbURL) {
				return usagef("--database-url holds a password, which every user of this machine can read in the process list: give the URL in PHRD_DATABASE_URL, or the password in a PGPASSFILE")
			}
			if err := envFlags(cmd, []string{"database-url", "share-key"}, getenv); err != nil {
				return &usageError{err}
			}
			if from == "" || dbURL == "" {
				return usagef("--from-data and --database-url (or PHRD_DATABASE_URL) are required")
			}
			res, err := server.MigrateToDatabase(cmd.Context(), from, dbURL, shareKey)
			if err != nil {
				return err
			}
			fmt.Fprint(stdout, res)
			return nil
		},
	}
	cmd.Flags().StringVar(&from, "from-data", "", "the data directory of the node to move")
	cmd.Flags().StringVar(&dbURL, "database-url", "", "the PostgreSQL database (or PHRD_DATABASE_URL)")
	cmd.Flags().StringVar(&shareKey, "share-key", "", "the share key file (or PHRD_SHARE_KEY; default DIR.share.key)")
	return cmd
}

// newAccountPassphrase is the passphrase of an account made on the host:
// PHRD_PASSPHRASE, or asked twice without echo.
func newAccountPassphrase(stdin io.Reader, stderr io.Writer, getenv func(string) string) (string, error) {
	if pass := getenv("PHRD_PASSPHRASE"); pass != "" {
		return pass, nil
	}
	pass, err := prompt(stdin, stderr, "Passphrase for the new account: ")
	if err != nil {
		return "", err
	}
	again, err := prompt(stdin, stderr, "Repeat the passphrase: ")
	if err != nil {
		return "", err
	}
	if again != pass {
		return "", errors.New("the passphrases do not match")
	}
	return pass, nil
}

// runAccountImport makes an account on the host from a backup.
func runAccountImport(ctx context.Context, host server.Host, name, file, identity string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) error {
	var ids []age.Identity
	if identity != "" {
		f, err := os.Open(identity)
		if err != nil {
			return err
		}
		ids, err = age.ParseIdentities(f)
		f.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", identity, err)
		}
	} else {
		p := getenv("PHRD_BACKUP_PASSPHRASE")
		if p == "" {
			var err error
			if p, err = prompt(stdin, stderr, "Passphrase of the backup: "); err != nil {
				return errors.New("no backup key: give --identity, set PHRD_BACKUP_PASSPHRASE or run in a terminal")
			}
		}
		id, err := age.NewScryptIdentity(p)
		if err != nil {
			return err
		}
		ids = []age.Identity{id}
	}
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	pass, err := newAccountPassphrase(stdin, stderr, getenv)
	if err != nil {
		return err
	}
	res, err := host.ImportAccount(ctx, name, pass, f, ids)
	if err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	fmt.Fprintf(stdout, "Created account %s with %d records from the backup\n\nRecovery code (shown only now; give it to the account's owner to keep safe):\n\n    %s\n\n", res.Username, res.Records, res.RecoveryCode)
	return nil
}

// runAccountCreate makes an account on the host (for closed registration).
// The passphrase comes from PHRD_PASSPHRASE or a prompt without echo.
func runAccountCreate(ctx context.Context, host server.Host, name string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) error {
	pass, err := newAccountPassphrase(stdin, stderr, getenv)
	if err != nil {
		return err
	}
	res, err := host.CreateAccount(ctx, name, pass)
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

// urlHasPassword reports whether a PostgreSQL connection string (a URL
// or key=value pairs) carries a password.
func urlHasPassword(s string) bool {
	if u, err := url.Parse(s); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		_, has := u.User.Password()
		return has || u.Query().Has("password")
	}
	for _, f := range strings.Fields(s) {
		if k, _, ok := strings.Cut(f, "="); ok && strings.TrimSpace(k) == "password" {
			return true
		}
	}
	return strings.Contains(s, "password")
}
