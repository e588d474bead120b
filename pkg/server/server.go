package server

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"filippo.io/age"
	"github.com/labstack/echo/v4"
	"github.com/phr-project/phr/pkg/app"
	"github.com/phr-project/phr/pkg/kv"
	"github.com/phr-project/phr/pkg/sharestore"
	"github.com/phr-project/phr/pkg/shlhost"
	"github.com/phr-project/phr/pkg/vault"
	"golang.org/x/crypto/scrypt"
)

// Server is phrd: the JSON API over the accounts' vaults.
type Server struct {
	cfg     Config
	log     *slog.Logger
	data    *dataDir
	e       *echo.Echo
	http    *http.Server
	sess    *sessions
	metrics *metrics

	acctLimit, clientLimit rateLimiter
	tokenLimit             rateLimiter // wrong bearer tokens per client
	kdf                    *gate
	vaultOpts              *vault.Options
	shares                 *sharestore.Store
	pg                     *kv.Postgres // Config.DatabaseURL; nil on the embedded default
	shl                    *shlhost.Host
	dummy                  *dummyUnlock

	stop      chan struct{}
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

// New makes a server over cfg.DataDir, creating its layout and server key
// the first time. It starts the session janitor; call Close (or Shutdown)
// to stop it.
func New(cfg Config) (*Server, error) {
	cfg = cfg.Defaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	data, err := openDataDir(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	if err := data.cleanTmp(); err != nil {
		return nil, err
	}
	dummy, err := newDummyUnlock()
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg: cfg, log: cfg.Logger, data: data, metrics: newMetrics(),
		acctLimit:   newLimiter(cfg.LoginPerAccount, cfg.Now),
		clientLimit: newLimiter(cfg.LoginPerClient, cfg.Now),
		tokenLimit:  newLimiter(cfg.BadTokenPerClient, cfg.Now),
		kdf:         newGate(cfg.ScryptConcurrency, cfg.ScryptQueueTimeout),
		vaultOpts:   &vault.Options{LockTimeout: 2 * time.Second, NoSync: cfg.VaultNoSync},
		dummy:       dummy,
		stop:        make(chan struct{}),
	}
	if cfg.DatabaseURL != "" {
		// Connect and bring the schema up to date (under a lock, so that
		// nodes starting together migrate once).
		s.pg, err = kv.OpenPostgres(context.Background(), cfg.DatabaseURL, dbPoolOptions(cfg.DatabaseURL))
		if err != nil {
			return nil, fmt.Errorf("the database: %w", err)
		}
		// The login limits hold across every node on the database.
		shared := func(name string, r Rate) rateLimiter {
			return newSharedLimiter(name, r, cfg.Now, s.pg.Pool(), data.secret, cfg.Logger)
		}
		s.acctLimit = shared("login-account", cfg.LoginPerAccount)
		s.clientLimit = shared("login-client", cfg.LoginPerClient)
		s.tokenLimit = shared("bad-token-client", cfg.BadTokenPerClient)
		// And the accounts' vaults: any node serves any account.
		data.store = dbVaults{pg: s.pg}
	}
	if err := s.openShares(); err != nil {
		if s.pg != nil {
			s.pg.Close()
		}
		return nil, err
	}
	store, err := s.openSessionStore()
	if err != nil {
		s.shares.Close()
		if s.pg != nil {
			s.pg.Close()
		}
		return nil, err
	}
	s.sess = newSessions(cfg, store, s.openVault)
	s.e = s.routes()
	s.http = &http.Server{
		Handler:           s.e,
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		ReadTimeout:       cfg.ReadTimeout,
		WriteTimeout:      cfg.WriteTimeout,
		IdleTimeout:       cfg.ConnIdleTimeout,
		MaxHeaderBytes:    cfg.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelWarn),
	}
	if cfg.TLS() {
		s.http.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	s.wg.Add(1)
	go s.janitor()
	return s, nil
}

// defaultDBConns bounds a node's connections to the database unless its
// URL sets pool_max_conns. Every request of a node on the database runs
// its transactions there, each holding a connection for its round trips
// (a listing of 50 records makes about 55), so a pool of pgxpool's
// default (4 on a machine of 2 CPUs) left the CPU idle while requests
// queued for a connection (docs/performance.md). nodes × 16 must stay
// below PostgreSQL's max_connections (docs/operations.md).
const defaultDBConns = 16

// dbPoolOptions: defaultDBConns, unless url names pool_max_conns (in the
// URL's query or the key=value string), which then stands.
func dbPoolOptions(url string) *kv.PostgresOptions {
	if strings.Contains(url, "pool_max_conns") {
		return nil
	}
	return &kv.PostgresOptions{MaxConns: defaultDBConns}
}

// Handler is the server's HTTP handler (for tests and embedding).
func (s *Server) Handler() http.Handler { return s.e }

// Serve answers on ln until Shutdown. It returns http.ErrServerClosed
// after a Shutdown.
func (s *Server) Serve(ln net.Listener) error {
	if s.cfg.TLS() {
		return s.http.ServeTLS(ln, s.cfg.TLSCert, s.cfg.TLSKey)
	}
	return s.http.Serve(ln)
}

// Shutdown stops accepting requests, lets those in flight finish (until
// ctx ends), then closes every vault and forgets every session.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.http.Shutdown(ctx)
	if cerr := s.Close(); err == nil {
		err = cerr
	}
	return err
}

// Close stops the janitor, ends every session and closes every vault. It
// does not wait for requests: use Shutdown for that.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		close(s.stop)
		s.wg.Wait()
		s.closeErr = s.sess.closeAll()
		if err := s.sess.store.Close(); s.closeErr == nil {
			s.closeErr = err
		}
		if err := s.shares.Close(); s.closeErr == nil {
			s.closeErr = err
		}
		if s.pg != nil {
			s.pg.Close()
		}
	})
	return s.closeErr
}

func (s *Server) janitor() {
	defer s.wg.Done()
	t := time.NewTicker(s.cfg.JanitorInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.sweep()
		}
	}
}

// sweep ends expired sessions, forgets idle rate-limit state and drops
// the ciphertext of shares that can no longer be served.
func (s *Server) sweep() {
	if err := s.sess.sweep(); err != nil {
		s.log.Error("session sweep failed", "kind", errKind(err))
	}
	if _, err := s.shares.Sweep(s.cfg.Now()); err != nil {
		s.log.Error("share sweep failed", "err_type", fmt.Sprintf("%T", err))
	}
	s.acctLimit.sweep()
	s.clientLimit.sweep()
	s.tokenLimit.sweep()
	if s.cfg.DatabaseURL != "" {
		s.rollBackDead()
	}
}

// rollBackDead rolls back, in the vaults this node holds open, the
// imports another node died in the middle of, once their lease has run
// out (vault.RollBackDead), and tells the account's audit log. A vault
// file has one opener, whose crash the next open repairs; a vault in the
// database may stay open on other nodes for as long as sessions use it.
func (s *Server) rollBackDead() {
	for _, a := range s.sess.pinOpen() {
		a.open.Lock()
		v := a.v
		a.open.Unlock()
		if v != nil {
			before := len(v.RolledBack())
			if _, err := v.RollBackDead(); err != nil {
				s.log.Error("rolling back a dead import failed", acctAttr(a.id), "kind", errKind(err))
			}
			var entries []vault.AuditEntry
			for _, rb := range v.RolledBack()[before:] {
				entries = append(entries, vault.AuditEntry{Time: s.cfg.Now().UTC(), Event: AuditImportRollback, Success: true, Ref: rb.FileSHA256, Counts: map[string]int{"records": rb.Records}})
			}
			if len(entries) > 0 {
				s.audit(a.id, v, entries...)
			}
		}
		s.sess.unpin(a)
	}
}

// ctxKey names values the middleware leaves on the echo context.
const (
	ctxSession = "phrd.session"
	ctxAcct    = "phrd.acct"
	ctxToken   = "phrd.token" // the request's bearer token (sessionKeyOf)
)

func (s *Server) routes() *echo.Echo {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = s.handleError
	e.IPExtractor = ipExtractor(s.cfg.TrustedProxies)
	e.Use(s.observe, s.recoverPanic, s.securityHeaders, s.limitBody(s.bodyRules()))

	e.GET("/healthz", func(c echo.Context) error { return c.String(http.StatusOK, "ok\n") })
	// /metrics is not here: it counts one patient's requests on a small
	// server, so it is served apart (MetricsHandler), on an address of the
	// operator's choice, or not at all.

	a := e.Group("/api/v1")
	a.POST("/accounts", s.createAccount, s.registrationGate)
	a.POST("/accounts/recover", s.recoverAccount)
	a.POST("/sessions", s.createSession)
	auth := s.requireSession
	a.GET("/sessions/current", s.getSession, auth)
	a.DELETE("/sessions/current", s.deleteSession, auth)
	a.POST("/devices", s.createDevice, auth)
	a.GET("/devices", s.listDevices, auth)
	a.DELETE("/devices/:id", s.deleteDevice, auth)
	a.GET("/records", s.listRecords, auth)
	a.POST("/records", s.createRecord, auth)
	a.GET("/records/:id", s.getRecord, auth)
	a.PUT("/records/:id", s.putRecord, auth)
	a.DELETE("/records/:id", s.deleteRecord, auth)
	a.GET("/changes", s.listChanges, auth)
	a.POST("/imports", s.createImport, auth)
	a.POST("/ingest", s.ingest, auth)
	a.GET("/audit", s.listAudit, auth)
	a.GET("/audit/shares", s.listShareAudit, auth)
	a.POST("/backup", s.postBackup, auth)
	a.GET("/keys", s.listKeys, auth)
	a.POST("/keys/passphrase", s.changePassphrase, auth)
	a.POST("/keys/recovery", s.newRecovery, auth)
	a.POST("/keys/rotate", s.rotateKey, auth)
	s.mountShares(e, a, auth)
	s.mountPasskeys(a, auth) // passkeys, and the account's session list
	// The patient's app (pkg/app); / leads there.
	appHandler := echo.WrapHandler(app.Handler())
	for _, p := range app.Routes() {
		e.GET(p, appHandler)
	}
	e.GET(app.ModuleDir+":name", appHandler)
	e.GET("/", func(c echo.Context) error { return c.Redirect(http.StatusFound, app.Path) })
	return e
}

// routeOf is the request's route template ("/api/v1/records/:id"), which
// is what logs and metrics name: never the URL, which may hold IDs or a
// query.
func routeOf(c echo.Context) string {
	if p := c.Path(); p != "" && len(c.ParamNames()) == strings.Count(p, ":") {
		return p
	}
	return "unmatched"
}

// observe logs and counts every request: route template, method, status,
// latency and size. No URL, query, header or body is logged.
func (s *Server) observe(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		if err != nil {
			c.Error(err) // write the error response now, to log its status
		}
		route := routeOf(c)
		if c.Response().Status == http.StatusNotFound && err != nil && isRouteNotFound(err) {
			route = "unmatched"
		}
		d := time.Since(start)
		status := c.Response().Status
		s.metrics.observe(route, c.Request().Method, status, d)
		attrs := []slog.Attr{
			slog.String("method", c.Request().Method), slog.String("route", route), slog.Int("status", status),
			slog.Float64("ms", float64(d.Microseconds())/1000), slog.Int64("bytes", c.Response().Size),
		}
		if id, ok := c.Get(ctxAcct).(string); ok {
			attrs = append(attrs, acctAttr(id))
		}
		s.log.LogAttrs(c.Request().Context(), slog.LevelInfo, "request", attrs...)
		return nil
	}
}

func isRouteNotFound(err error) bool {
	var he *echo.HTTPError
	return errors.As(err, &he) && he == echo.ErrNotFound
}

// recoverPanic turns a handler panic into a 500 and a log line with the
// stack (code locations only, no values).
func (s *Server) recoverPanic(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) (err error) {
		defer func() {
			if r := recover(); r != nil {
				if r == http.ErrAbortHandler {
					panic(r)
				}
				s.log.Error("panic", "route", routeOf(c), "stack", string(stackLocations(debug.Stack())))
				err = errors.New("panic")
			}
		}()
		return next(c)
	}
}

// stackLocations keeps the file:line lines of a stack trace, which hold
// no argument values.
func stackLocations(stack []byte) []byte {
	var out []byte
	for _, l := range bytes.Split(stack, []byte("\n")) {
		if bytes.HasPrefix(l, []byte("\t")) {
			out = append(out, bytes.TrimSpace(l)...)
			out = append(out, '\n')
		}
	}
	return out
}

// securityHeaders go on every response.
func (s *Server) securityHeaders(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Response().Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
		h.Set("Cross-Origin-Resource-Policy", "same-origin")
		// Nothing phrd answers is fit for a shared cache: API answers
		// hold health data, share answers ciphertext of it, and the
		// rest is small.
		h.Set("Cache-Control", "no-store")
		if s.cfg.TLS() {
			h.Set("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
		}
		return next(c)
	}
}

// requireSession admits requests with a live session's bearer token and
// pins the account's vault for the request.
func (s *Server) requireSession(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		tok, ok := bearer(c.Request().Header.Get("Authorization"))
		if !ok {
			c.Response().Header().Set("WWW-Authenticate", `Bearer realm="phrd"`)
			return errUnauthorized
		}
		// A client that sent too many wrong tokens gets 429 for every
		// token, right or wrong, until its bucket refills: were right
		// ones let through, a guesser would still learn of a hit.
		ck := clientKey(clientAddr(c))
		if blocked, wait := s.tokenLimit.blocked(ck); blocked {
			return s.rateLimited(wait)
		}
		sess, err := s.sess.lookup(tok)
		if errors.Is(err, errNoSession) {
			s.tokenLimit.allow(ck)
			c.Response().Header().Set("WWW-Authenticate", `Bearer realm="phrd", error="invalid_token"`)
			return errUnauthorized
		}
		if err != nil {
			// The store or the vault is unavailable: no wrong token.
			return err
		}
		defer s.sess.unpin(sess.acct)
		c.Set(ctxSession, sess)
		c.Set(ctxToken, tok)
		c.Set(ctxAcct, sess.acct.id)
		err = next(c)
		if errors.Is(err, vault.ErrStale) {
			// Another node rotated the vault's key or upgraded it since
			// this node opened it: nothing was written with the old one
			// (pkg/vault checks at the start of each write). Open it
			// again at the next request (503, try again).
			s.sess.retire(sess.acct)
		}
		return err
	}
}

func bearer(h string) (string, bool) {
	const p = "Bearer "
	if len(h) <= len(p) || !strings.EqualFold(h[:len(p)], p) {
		return "", false
	}
	return strings.TrimSpace(h[len(p):]), true
}

// sessionOf is the request's session (set by requireSession).
func sessionOf(c echo.Context) *session { return c.Get(ctxSession).(*session) }

// sessionKeyOf is the key that the request's session wraps its vault
// key under (derived from the bearer token).
func sessionKeyOf(c echo.Context) []byte { return sessionKey(c.Get(ctxToken).(string)) }

// vaultOf is the request's vault.
func vaultOf(c echo.Context) *vault.Vault { return sessionOf(c).acct.v }

// clientAddr is the client's address, as the IP extractor sees it.
func clientAddr(c echo.Context) netip.Addr {
	a, err := netip.ParseAddr(c.RealIP())
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap()
}

// clientNet is the client address truncated for audit logs: a /24 for
// IPv4, a /48 for IPv6.
func clientNet(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	bits := 48
	if a.Is4() {
		bits = 24
	}
	p, err := a.Prefix(bits)
	if err != nil {
		return ""
	}
	return p.String()
}

// clientKey is the rate-limit key of a client: its address, or its /64
// for IPv6 (one host usually holds a whole /64).
func clientKey(a netip.Addr) string {
	if a.Is6() {
		if p, err := a.Prefix(64); err == nil {
			return p.String()
		}
	}
	return a.String()
}

// dummyUnlock does the work of a failed unlock for a username that has no
// account, so that the answer takes as long as for a wrong passphrase (one
// scrypt of the same cost) or a wrong device credential (one X25519).
type dummyUnlock struct {
	device []byte // an age file for a random X25519 recipient
}

func newDummyUnlock() (*dummyUnlock, error) {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	w, err := age.Encrypt(&buf, id.Recipient())
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(make([]byte, 32)); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return &dummyUnlock{device: buf.Bytes()}, nil
}

// passphrase costs what unwrapping a passphrase slot costs: age's scrypt
// recipient derives its key with scrypt(N=2^ScryptWorkFactor, r=8, p=1).
func (d *dummyUnlock) passphrase(p string) {
	var salt [16]byte
	scrypt.Key([]byte(p), salt[:], 1<<vault.ScryptWorkFactor, 8, 1, 32)
}

func (d *dummyUnlock) identities(ids ...age.Identity) {
	if r, err := age.Decrypt(bytes.NewReader(d.device), ids...); err == nil {
		io.Copy(io.Discard, r) // cannot happen: nobody has the key
	}
}

// MetricsHandler serves GET /metrics (Prometheus text) and nothing else.
// It is never on the API's listener: phrd serves it on --metrics-addr
// only, an address for the monitoring network (a small server's request
// counts and latencies show what one patient does, and when).
func (s *Server) MetricsHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		sessions, vaults := s.sess.counts()
		h := w.Header()
		h.Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusOK)
		s.metrics.write(w, sessions, vaults)
	})
	return mux
}
