package server

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/phr-project/phr/pkg/vault"
)

// account is an account whose vault is open: while a session of it lives
// or a request of it runs. All its sessions share the one *vault.Vault
// (bbolt lets one opener hold a file).
type account struct {
	id   string
	path string

	// open serializes unlocking: the first login opens the vault, later
	// ones check their secret against the open vault.
	open sync.Mutex
	v    *vault.Vault // set under open; read by holders of a ref

	refs int // sessions + requests in flight; guarded by sessions.mu
}

// session is a logged-in client. The token itself is never stored: the
// map is keyed by its SHA-256.
type session struct {
	hash      [32]byte
	acct      *account
	method    string // passphrase | device
	device    string // the device credential's recipient (public), for revocation
	created   time.Time
	lastUsed  time.Time
	expiresAt time.Time
}

// sessions holds the sessions and open accounts. Everything here is in
// memory: a restart forgets every session and closes every vault.
type sessions struct {
	idle, lifetime time.Duration
	perAccount     int
	maxSessions    int
	now            func() time.Time
	opts           *vault.Options
	openVaults     atomic.Int64

	mu       sync.Mutex
	byHash   map[[32]byte]*session
	accounts map[string]*account
	closed   bool
}

var (
	errNoSession   = errors.New("no session")
	errTooMany     = errors.New("too many sessions")
	errShutdown    = errors.New("server is shutting down")
	errWrongSecret = vault.ErrWrongKey
)

func newSessions(cfg Config, opts *vault.Options) *sessions {
	return &sessions{
		idle: cfg.IdleTimeout, lifetime: cfg.SessionLifetime, perAccount: cfg.MaxSessionsPerAccount, maxSessions: cfg.MaxSessions,
		now: cfg.Now, opts: opts,
		byHash: map[[32]byte]*session{}, accounts: map[string]*account{},
	}
}

// pin returns the account with a reference held, creating its entry.
func (m *sessions) pin(id, path string) (*account, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, errShutdown
	}
	a, ok := m.accounts[id]
	if !ok {
		a = &account{id: id, path: path}
		m.accounts[id] = a
	}
	a.refs++
	return a, nil
}

// unpin drops a reference; the last one closes the vault.
func (m *sessions) unpin(a *account) {
	m.mu.Lock()
	a.refs--
	last := a.refs == 0
	if last && m.accounts[a.id] == a {
		delete(m.accounts, a.id)
	}
	m.mu.Unlock()
	if last {
		m.closeVault(a)
	}
}

func (m *sessions) closeVault(a *account) {
	a.open.Lock()
	defer a.open.Unlock()
	if a.v != nil {
		a.v.Close()
		a.v = nil
		m.openVaults.Add(-1)
	}
}

// unlock checks secret against the account's vault, opening it if no one
// has. It returns whether this call opened it. The caller holds a pin.
func (m *sessions) unlock(a *account, secret vault.Secret) (opened bool, err error) {
	a.open.Lock()
	defer a.open.Unlock()
	if a.v != nil {
		ok, err := a.v.Opens(secret)
		if err != nil {
			return false, err
		}
		if !ok {
			return false, errWrongSecret
		}
		return false, nil
	}
	v, err := vault.Open(a.path, secret, m.opts)
	if err != nil {
		return false, err
	}
	a.v = v
	m.openVaults.Add(1)
	return true, nil
}

// newToken returns a random 256-bit token and its hash.
func newToken() (string, [32]byte) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("phrd: no randomness: " + err.Error())
	}
	tok := base64.RawURLEncoding.EncodeToString(b[:])
	return tok, sha256.Sum256([]byte(tok))
}

// create makes a session for a pinned, unlocked account; the session
// takes its own reference.
func (m *sessions) create(a *account, method, device string) (string, *session, error) {
	tok, h := newToken()
	now := m.now()
	s := &session{hash: h, acct: a, method: method, device: device, created: now, lastUsed: now, expiresAt: now.Add(m.lifetime)}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return "", nil, errShutdown
	}
	if len(m.byHash) >= m.maxSessions {
		m.mu.Unlock()
		return "", nil, errTooMany
	}
	// Past the per-account cap, the oldest sessions end.
	var mine []*session
	for _, o := range m.byHash {
		if o.acct == a {
			mine = append(mine, o)
		}
	}
	var ended []*session
	if len(mine) >= m.perAccount {
		sort.Slice(mine, func(i, j int) bool { return mine[i].created.Before(mine[j].created) })
		ended = mine[:len(mine)-m.perAccount+1]
		for _, o := range ended {
			delete(m.byHash, o.hash)
		}
	}
	m.byHash[h] = s
	a.refs++
	m.mu.Unlock()
	for range ended {
		m.unpin(a)
	}
	return tok, s, nil
}

// lookup finds the live session of token, marks it used, and pins its
// account for the request; the caller unpins. Expired sessions end here
// too, not only in sweep.
func (m *sessions) lookup(token string) (*session, error) {
	if token == "" {
		return nil, errNoSession
	}
	h := sha256.Sum256([]byte(token))
	now := m.now()
	m.mu.Lock()
	s, ok := m.byHash[h]
	// The map lookup is by hash; compare the hashes once more in
	// constant time, so that no comparison of secret bytes leaks timing.
	if !ok || subtle.ConstantTimeCompare(s.hash[:], h[:]) != 1 {
		m.mu.Unlock()
		return nil, errNoSession
	}
	if m.expired(s, now) {
		delete(m.byHash, h)
		m.mu.Unlock()
		m.unpin(s.acct)
		return nil, errNoSession
	}
	s.lastUsed = now
	s.acct.refs++
	m.mu.Unlock()
	return s, nil
}

func (m *sessions) expired(s *session, now time.Time) bool {
	return !now.Before(s.expiresAt) || !now.Before(s.lastUsed.Add(m.idle))
}

// idleEnd is when s ends if unused.
func (m *sessions) idleEnd(s *session) time.Time {
	t := s.lastUsed.Add(m.idle)
	if s.expiresAt.Before(t) {
		return s.expiresAt
	}
	return t
}

// end ends one session.
func (m *sessions) end(s *session) {
	m.mu.Lock()
	_, ok := m.byHash[s.hash]
	delete(m.byHash, s.hash)
	m.mu.Unlock()
	if ok {
		m.unpin(s.acct)
	}
}

// endDevice ends the sessions of a that logged in with a device
// credential of the given recipient.
func (m *sessions) endDevice(a *account, recipient string) int {
	m.mu.Lock()
	var ended []*session
	for h, s := range m.byHash {
		if s.acct == a && s.device != "" && subtle.ConstantTimeCompare([]byte(s.device), []byte(recipient)) == 1 {
			delete(m.byHash, h)
			ended = append(ended, s)
		}
	}
	m.mu.Unlock()
	for _, s := range ended {
		m.unpin(s.acct)
	}
	return len(ended)
}

// endOthers ends every session of a but keep (nil: every session): after
// a passphrase change, a recovery or a rotation, a stolen token must not
// outlive the secret it was stolen with.
func (m *sessions) endOthers(a *account, keep *session) int {
	m.mu.Lock()
	var ended []*session
	for h, s := range m.byHash {
		if s.acct == a && s != keep {
			delete(m.byHash, h)
			ended = append(ended, s)
		}
	}
	m.mu.Unlock()
	for _, s := range ended {
		m.unpin(s.acct)
	}
	return len(ended)
}

// sweep ends expired sessions (and so closes vaults no one uses).
func (m *sessions) sweep() {
	now := m.now()
	m.mu.Lock()
	var ended []*session
	for h, s := range m.byHash {
		if m.expired(s, now) {
			delete(m.byHash, h)
			ended = append(ended, s)
		}
	}
	m.mu.Unlock()
	for _, s := range ended {
		m.unpin(s.acct)
	}
}

// counts returns the number of sessions and of open vaults.
func (m *sessions) counts() (sessions, vaults int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.byHash), int(m.openVaults.Load())
}

// closeAll ends every session and closes every vault. Call it after the
// HTTP server has stopped, when no request holds a pin.
func (m *sessions) closeAll() error {
	m.mu.Lock()
	m.closed = true
	accts := make([]*account, 0, len(m.accounts))
	for _, a := range m.accounts {
		accts = append(accts, a)
	}
	m.byHash = map[[32]byte]*session{}
	m.accounts = map[string]*account{}
	m.mu.Unlock()
	var first error
	for _, a := range accts {
		a.open.Lock()
		if a.v != nil {
			if err := a.v.Close(); err != nil && first == nil {
				first = err
			}
			a.v = nil
			m.openVaults.Add(-1)
		}
		a.open.Unlock()
	}
	return first
}
