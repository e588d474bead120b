package server

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/phr-project/phr/pkg/importers"
)

// Rate is a token bucket: Events per Per on average, up to Burst at once.
type Rate struct {
	Events int
	Per    time.Duration
	Burst  int
}

// Registration modes.
const (
	RegistrationOpen     = "open"     // anyone may POST /api/v1/accounts
	RegistrationLoopback = "loopback" // only a client on this machine, not through a proxy (the default)
	RegistrationClosed   = "closed"   // accounts are made on the host: phrd account create
)

// Config configures a Server. The zero value of every field but DataDir
// means its default (see Defaults).
type Config struct {
	// DataDir holds server.key, vaults/, shares.db, sessions.db and tmp/.
	DataDir string
	// ShareKeyFile is the share store's key file (64 hex digits, 0600,
	// created on first start). It must be outside DataDir, so that a copy
	// of the data directory does not reveal who shares with whom. Default:
	// DataDir + ".share.key", beside the data directory (DefaultShareKeyFile).
	ShareKeyFile string
	// DatabaseURL, if set, is a PostgreSQL database (postgres://... or
	// key=value; a password is better in PGPASSFILE than in the URL) that
	// holds the accounts' vaults (namespaces vault/<account id>), the
	// share store, the sessions and the login rate limits instead of
	// DataDir and memory, so that any number of phrd nodes share them and
	// any node serves any account. Its schema is migrated at start.
	// DataDir still holds server.key (the same on every node) and the
	// uploads being imported (docs/operations.md).
	DatabaseURL string
	// PublicURL is the URL clients reach the server at (for links).
	PublicURL string
	// Registration is RegistrationLoopback (the default: account creation
	// from this machine only), RegistrationOpen or RegistrationClosed.
	Registration string
	// Importers are the formats POST /api/v1/imports accepts.
	Importers *importers.Registry
	// Logger receives structured logs; never PHI, tokens or passphrases.
	Logger *slog.Logger
	// Now replaces time.Now (tests).
	Now func() time.Time

	// IdleTimeout ends a session unused this long (default 30m).
	IdleTimeout time.Duration
	// SessionLifetime ends a session this long after login (default 12h).
	SessionLifetime time.Duration
	// JanitorInterval is how often expired sessions are swept (default 1m).
	JanitorInterval time.Duration
	// MaxSessionsPerAccount bounds one account's sessions; a new login
	// ends the oldest (default 50).
	MaxSessionsPerAccount int
	// MaxSessions bounds all sessions (of every node on a database);
	// logins beyond get 503 (default 100000).
	MaxSessions int
	// VaultsPerRequest closes an account's vault as soon as no request of
	// it runs, instead of keeping it open while the account has sessions
	// on this node: for nodes that share one vault directory, where a
	// vault file is open in one process at a time. Each request then
	// opens the vault (from the key its session wraps). Not needed with
	// DatabaseURL: the vaults are in the database, which any number of
	// nodes may hold open at once.
	VaultsPerRequest bool

	// LoginPerAccount limits passphrase logins per account (default 5/min,
	// burst 5). A successful login gives its token back.
	LoginPerAccount Rate
	// LoginPerClient limits logins and account creations per client
	// address (default 20/min, burst 20).
	LoginPerClient Rate
	// BadTokenPerClient limits wrong or expired bearer tokens per client
	// address (default 30/min, burst 30). Past it, every request of that
	// client that carries a token gets 429 until the bucket refills.
	BadTokenPerClient Rate
	// ScryptConcurrency bounds concurrent key derivations: passphrase
	// unlocks and share passcode hashes and checks (default: the number of
	// CPUs).
	ScryptConcurrency int
	// ScryptQueueTimeout is how long a login or a passcode check waits for
	// a free slot before it gets 503 (default 2s).
	ScryptQueueTimeout time.Duration

	// MaxBodyBytes bounds JSON request bodies (default 1 MiB).
	MaxBodyBytes int64
	// MaxIngestBytes bounds POST /api/v1/ingest bodies (default 8 MiB).
	MaxIngestBytes int64
	// MaxImportBytes bounds uploads (default 256 MiB).
	MaxImportBytes int64
	// ImportTimeout bounds the arrival of one upload, and the writing of a
	// backup download (default 10m); an upload's answer gets WriteTimeout
	// more.
	ImportTimeout time.Duration
	// MaxIngestReadings bounds the readings of one ingest (default 5000).
	MaxIngestReadings int

	// HTTP server timeouts (defaults 10s, 1m, 2m, 2m): reading a
	// request's header, reading the whole request, writing the answer,
	// and keeping an idle connection. Uploads to /api/v1/imports and
	// backup downloads get ImportTimeout instead of the read and write
	// timeouts, once their session is checked.
	ReadHeaderTimeout, ReadTimeout, WriteTimeout, ConnIdleTimeout time.Duration
	// MaxHeaderBytes bounds a request's header (default 64 KiB; larger
	// is 431).
	MaxHeaderBytes int
	// TLSCert and TLSKey serve HTTPS (and send HSTS) when both are set.
	TLSCert, TLSKey string
	// TrustedProxies are the networks of the reverse proxies in front:
	// from a peer in one of them, the client's address is the rightmost
	// address of X-Forwarded-For outside all of them. Empty, the header is
	// ignored and the peer's address counts (ParseTrustedProxies reads
	// the flag).
	TrustedProxies []netip.Prefix
	// VaultNoSync skips fsync on vault writes. Tests only.
	VaultNoSync bool
	// AllowPrivateLinks lets POST /api/v1/imports fetch SMART Health
	// Links from loopback and private addresses. Tests only: otherwise a
	// link could make phrd request its own network.
	AllowPrivateLinks bool
}

// Defaults returns c with every unset field at its default.
func (c Config) Defaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	defInt := func(d *int, v int) {
		if *d <= 0 {
			*d = v
		}
	}
	defRate := func(r *Rate, v Rate) {
		if r.Events <= 0 || r.Per <= 0 {
			*r = v
		}
		if r.Burst <= 0 {
			r.Burst = max(r.Events, 1)
		}
	}
	if c.Registration == "" {
		c.Registration = RegistrationLoopback
	}
	if c.ShareKeyFile == "" && c.DataDir != "" {
		c.ShareKeyFile = DefaultShareKeyFile(c.DataDir)
	}
	if c.Importers == nil {
		c.Importers = &importers.Registry{}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	def(&c.IdleTimeout, 30*time.Minute)
	def(&c.SessionLifetime, 12*time.Hour)
	def(&c.JanitorInterval, time.Minute)
	defInt(&c.MaxSessionsPerAccount, 50)
	defInt(&c.MaxSessions, 100_000)
	defRate(&c.LoginPerAccount, Rate{Events: 5, Per: time.Minute, Burst: 5})
	defRate(&c.LoginPerClient, Rate{Events: 20, Per: time.Minute, Burst: 20})
	defRate(&c.BadTokenPerClient, Rate{Events: 30, Per: time.Minute, Burst: 30})
	defInt(&c.ScryptConcurrency, runtime.NumCPU())
	def(&c.ScryptQueueTimeout, 2*time.Second)
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = 1 << 20
	}
	if c.MaxIngestBytes <= 0 {
		c.MaxIngestBytes = 8 << 20
	}
	if c.MaxImportBytes <= 0 {
		c.MaxImportBytes = 256 << 20
	}
	def(&c.ImportTimeout, 10*time.Minute)
	defInt(&c.MaxIngestReadings, 5000)
	def(&c.ReadHeaderTimeout, 10*time.Second)
	def(&c.ReadTimeout, time.Minute)
	def(&c.WriteTimeout, 2*time.Minute)
	def(&c.ConnIdleTimeout, 2*time.Minute)
	defInt(&c.MaxHeaderBytes, 64<<10)
	return c
}

func (c Config) validate() error {
	if c.DataDir == "" {
		return errors.New("no data directory")
	}
	if inside, err := within(c.DataDir, c.ShareKeyFile); err != nil || inside {
		return fmt.Errorf("the share key file %s must be outside the data directory %s: a copy of the data directory must not hold it", c.ShareKeyFile, c.DataDir)
	}
	switch c.Registration {
	case RegistrationOpen, RegistrationLoopback, RegistrationClosed:
	default:
		return fmt.Errorf("registration must be %s, %s or %s", RegistrationLoopback, RegistrationOpen, RegistrationClosed)
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return errors.New("TLS needs both a certificate and a key")
	}
	return nil
}

// DefaultShareKeyFile is where the share store's key file goes when none
// is given: beside the data directory, DATA + ".share.key".
func DefaultShareKeyFile(dataDir string) string {
	return filepath.Clean(dataDir) + ".share.key"
}

// within reports whether path is dir or inside it (by their absolute,
// cleaned and, where they exist, symlink-resolved forms).
func within(dir, path string) (bool, error) {
	resolve := func(p string) (string, error) {
		p, err := filepath.Abs(p)
		if err != nil {
			return "", err
		}
		// Resolve the longest existing prefix: the file itself may not
		// exist yet.
		rest := ""
		for q := p; ; q = filepath.Dir(q) {
			if r, err := filepath.EvalSymlinks(q); err == nil {
				return filepath.Join(r, rest), nil
			}
			if filepath.Dir(q) == q {
				return p, nil
			}
			rest = filepath.Join(filepath.Base(q), rest)
		}
	}
	d, err := resolve(dir)
	if err != nil {
		return false, err
	}
	p, err := resolve(path)
	if err != nil {
		return false, err
	}
	rel, err := filepath.Rel(d, p)
	if err != nil {
		return false, err
	}
	return rel == "." || !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && rel != "..", nil
}

// TLS reports whether the server serves HTTPS.
func (c Config) TLS() bool { return c.TLSCert != "" && c.TLSKey != "" }
