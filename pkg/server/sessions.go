package server

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/phr-project/phr/pkg/kv"
	"github.com/phr-project/phr/pkg/vault"
)

// account is an account whose vault is open on this node: while a
// session this node serves lives, or a request of it runs. All its
// sessions share the one *vault.Vault (bbolt lets one opener hold a file).
type account struct {
	id string

	// open serializes unlocking: the first login opens the vault, later
	// ones check their secret against the open vault.
	open sync.Mutex
	v    *vault.Vault // set under open; read by holders of a ref

	refs int // sessions + requests in flight; guarded by sessions.mu
}

// session is a logged-in client, as this node knows it. The session
// itself is a row of the session store (sessionstore.go), which every
// node reads: the token is never stored, the row is keyed by its SHA-256.
type session struct {
	hash      [32]byte
	acct      *account
	method    string // passphrase | device | passkey
	device    string // the device credential's recipient (public), for revocation
	slot      string // the key slot the session came in by
	created   time.Time
	lastUsed  time.Time // as stored: written at most once per lastUsedStep
	expiresAt time.Time
}

// sessions serves the sessions of the store on this node: it finds a
// token's row, opens the account's vault with the key the row wraps
// (vault.SessionSecret) and keeps it open while sessions this node has
// served live (or, with perRequest, only while requests run). A restart
// forgets nothing but the open vaults: the rows stay, and the first
// request of each session opens its vault again.
type sessions struct {
	idle, lifetime time.Duration
	step           time.Duration // lastUsed is written at most this often
	perAccount     int
	maxSessions    int
	perRequest     bool
	now            func() time.Time
	store          *sessionStore
	// openVault opens the account's vault with a secret.
	openVault  func(id string, secret vault.Secret) (*vault.Vault, error)
	openVaults atomic.Int64

	mu       sync.Mutex
	byHash   map[[32]byte]*session // the sessions holding a ref on their account here
	accounts map[string]*account
	closed   bool
}

var (
	errNoSession   = errors.New("no session")
	errTooMany     = errors.New("too many sessions")
	errShutdown    = errors.New("server is shutting down")
	errWrongSecret = vault.ErrWrongKey
	// errNotOpenedHere: the secret opens no slot of the vault this node
	// holds open (a wrong secret, or one of a newer vault key).
	errNotOpenedHere = fmt.Errorf("%w (the vault open on this node)", vault.ErrWrongKey)
)

// lastUsedStep is how often, at most, a session's last use is written:
// a write per request would serialise an account's reads. The idle
// timeout tolerates it: a session ends between idle and idle+step after
// its last use.
func lastUsedStep(idle time.Duration) time.Duration {
	return min(time.Minute, idle/10)
}

func newSessions(cfg Config, store *sessionStore, open func(string, vault.Secret) (*vault.Vault, error)) *sessions {
	return &sessions{
		idle: cfg.IdleTimeout, lifetime: cfg.SessionLifetime, step: lastUsedStep(cfg.IdleTimeout),
		perAccount: cfg.MaxSessionsPerAccount, maxSessions: cfg.MaxSessions, perRequest: cfg.VaultsPerRequest,
		now: cfg.Now, store: store, openVault: open,
		byHash: map[[32]byte]*session{}, accounts: map[string]*account{},
	}
}

// pin returns the account with a reference held, creating its entry.
func (m *sessions) pin(id string) (*account, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, errShutdown
	}
	a, ok := m.accounts[id]
	if !ok {
		a = &account{id: id}
		m.accounts[id] = a
	}
	a.refs++
	return a, nil
}

// pinOpen pins every account whose vault is open, for a pass over them
// (the janitor's); the caller unpins each.
func (m *sessions) pinOpen() []*account {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*account
	for _, a := range m.accounts {
		a.refs++
		out = append(out, a)
	}
	return out
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
// has. It returns whether this call opened it and the slot the secret
// opens. The caller holds a pin.
func (m *sessions) unlock(a *account, secret vault.Secret) (opened bool, slot string, err error) {
	a.open.Lock()
	defer a.open.Unlock()
	if a.v != nil {
		ids, err := a.v.SlotsOpenedBy(secret)
		if err != nil {
			return false, "", err
		}
		if len(ids) == 0 {
			return false, "", errNotOpenedHere
		}
		return false, ids[0], nil
	}
	v, err := m.openVault(a.id, secret)
	if err != nil {
		return false, "", err
	}
	a.v = v
	m.openVaults.Add(1)
	return true, v.UnlockedBy(), nil
}

// pinUnlocked pins the account and unlocks it with secret (unlock),
// opening its vault if this node has it closed. When the vault this node
// holds open is stale (vault.ErrStale: another node rotated its key or
// upgraded its format since), it retires that one and opens the vault
// again; with recheck, also when the secret opens nothing of the vault
// open here, before that counts as a wrong secret. A session's key
// (recheck) wrapped after a rotation on another node is told apart from
// a wrong one only so: pkg/vault's SlotsOpenedBy says ErrWrongKey, not
// ErrStale, for it. A passphrase is not rechecked: a wrong one would
// cost a second scrypt. On error nothing is pinned and the account is nil.
func (m *sessions) pinUnlocked(id string, secret vault.Secret, recheck bool) (a *account, opened bool, slot string, err error) {
	for try := 0; ; try++ {
		if a, err = m.pin(id); err != nil {
			return nil, false, "", err
		}
		opened, slot, err = m.unlock(a, secret)
		if err == nil {
			return a, opened, slot, nil
		}
		m.unpin(a)
		if try > 0 || !errors.Is(err, vault.ErrStale) && !(recheck && errors.Is(err, errNotOpenedHere)) {
			return nil, false, "", err
		}
		m.retire(a)
	}
}

// retire stops this node's use of the account's open vault, which
// another node made stale (vault.ErrStale): the account's entry and this
// node's hold of its sessions are dropped, so that the next login and the
// next request of each session open the vault again (with their own
// secret or the key their row wraps). Requests in flight finish with the
// old Vault, which closes with the last of them.
func (m *sessions) retire(a *account) {
	m.mu.Lock()
	if m.accounts[a.id] == a {
		delete(m.accounts, a.id)
	}
	var hs [][32]byte
	for h, s := range m.byHash {
		if s.acct == a {
			hs = append(hs, h)
		}
	}
	m.mu.Unlock()
	m.forget(hs...)
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

func (m *sessions) fromRow(h [32]byte, a *account, r *sessionRow) *session {
	return &session{hash: h, acct: a, method: r.Method, device: r.Device, slot: r.Slot,
		created: r.Created, lastUsed: r.LastUsed, expiresAt: r.Expires}
}

// expired reports whether a stored session has ended.
func (m *sessions) expired(r *sessionRow, now time.Time) bool {
	return !now.Before(r.Expires) || !now.Before(r.LastUsed.Add(m.idle+m.step))
}

// idleEnd is when s ends if unused.
func (m *sessions) idleEnd(s *session) time.Time {
	m.mu.Lock()
	t := s.lastUsed.Add(m.idle + m.step)
	m.mu.Unlock()
	if s.expiresAt.Before(t) {
		return s.expiresAt
	}
	return t
}

// create makes a session for a pinned, unlocked account, which came in by
// the key slot slot. Past the account's cap, its oldest sessions end.
// Unless perRequest, the session takes its own reference.
func (m *sessions) create(a *account, method, device, slot string) (string, *session, error) {
	m.mu.Lock()
	closed := m.closed
	m.mu.Unlock()
	if closed {
		return "", nil, errShutdown
	}
	tok, h := newToken()
	now := m.now()
	wrapped, err := a.v.WrapForSession(sessionKey(tok), slot)
	if err != nil {
		return "", nil, err
	}
	row := &sessionRow{Account: a.id, Method: method, Device: device, Slot: slot, Created: now, LastUsed: now, Expires: now.Add(m.lifetime), Wrapped: wrapped}
	var ended [][32]byte
	err = m.store.db.Update(func(tx kv.Tx) error {
		ended = ended[:0]
		if tx.Bucket(bucketSessions).Sequence() >= uint64(m.maxSessions) {
			return errTooMany
		}
		mine, err := m.store.ofAccount(tx, a.id)
		if err != nil {
			return err
		}
		// Ended ones go anyway; then the oldest past the cap.
		var live []storedSession
		for _, o := range mine {
			if m.expired(o.row, now) {
				ended = append(ended, o.hash)
			} else {
				live = append(live, o)
			}
		}
		if len(live) >= m.perAccount {
			slices.SortFunc(live, func(x, y storedSession) int { return x.row.Created.Compare(y.row.Created) })
			for _, o := range live[:len(live)-m.perAccount+1] {
				ended = append(ended, o.hash)
			}
		}
		for _, e := range ended {
			if err := m.store.remove(tx, e, a.id); err != nil {
				return err
			}
		}
		return m.store.put(tx, h, row)
	})
	if err != nil {
		return "", nil, err
	}
	s := m.fromRow(h, a, row)
	m.mu.Lock()
	if !m.perRequest && !m.closed {
		m.byHash[h] = s
		a.refs++
	}
	m.mu.Unlock()
	m.forget(ended...)
	return tok, s, nil
}

// lookup finds the live session of token in the store, marks it used
// (at most once per step), and pins its account for the request, opening
// its vault with the key the session wraps if this node has it closed;
// the caller unpins. Expired sessions end here too, not only in sweep. An
// error other than errNoSession is the store's or the vault's (503).
func (m *sessions) lookup(token string) (*session, error) {
	if token == "" {
		return nil, errNoSession
	}
	h := sha256.Sum256([]byte(token))
	now := m.now()
	row, err := m.store.get(h)
	if err != nil {
		return nil, err
	}
	if row == nil {
		m.forget(h)
		return nil, errNoSession
	}
	if m.expired(row, now) {
		if err := m.store.db.Update(func(tx kv.Tx) error { return m.store.remove(tx, h, row.Account) }); err != nil {
			return nil, err
		}
		m.forget(h)
		return nil, errNoSession
	}
	if now.Sub(row.LastUsed) >= m.step {
		if err := m.touch(h, now); err != nil {
			return nil, err
		}
		row.LastUsed = now
	}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil, errShutdown
	}
	// The store's lookup is by hash; compare the hashes once more in
	// constant time, so that no comparison of secret bytes leaks timing.
	if s, ok := m.byHash[h]; ok && subtle.ConstantTimeCompare(s.hash[:], h[:]) == 1 {
		s.lastUsed = row.LastUsed
		s.acct.refs++
		m.mu.Unlock()
		return s, nil
	}
	m.mu.Unlock()

	// A session this node has not served (since it started): open the
	// account's vault with the key the row wraps under the token.
	a, _, _, err := m.pinUnlocked(row.Account, vault.SessionSecret(row.Wrapped, sessionKey(token)), true)
	if err != nil {
		if errors.Is(err, vault.ErrWrongKey) && !errors.Is(err, vault.ErrStale) {
			// The wrapped key opens nothing any more (the vault key was
			// rotated, the slot removed): the session is over.
			if err := m.store.db.Update(func(tx kv.Tx) error { return m.store.remove(tx, h, row.Account) }); err != nil {
				return nil, err
			}
			return nil, errNoSession
		}
		return nil, err
	}
	s := m.fromRow(h, a, row)
	m.mu.Lock()
	defer m.mu.Unlock()
	if o, ok := m.byHash[h]; ok {
		// Another request of the session got here first: its entry, and
		// the pin above is this request's.
		return o, nil
	}
	if !m.perRequest && !m.closed {
		m.byHash[h] = s
		a.refs++
	}
	return s, nil
}

// touch writes a session's last use. It writes the session's row only,
// so it locks only that row on a database (kv.UpdateKeys): touches of
// different sessions do not wait for each other.
func (m *sessions) touch(h [32]byte, now time.Time) error {
	return kv.UpdateKeys(m.store.db, [][]byte{h[:]}, func(tx kv.Tx) error {
		b := tx.Bucket(bucketSessions)
		v := b.Get(h[:])
		if v == nil {
			return nil
		}
		r, err := m.store.openRow(h[:], v)
		if err != nil || !r.LastUsed.Before(now) {
			return err
		}
		r.LastUsed = now
		sealed, err := m.store.sealRow(h[:], r)
		if err != nil {
			return err
		}
		return b.Put(h[:], sealed)
	})
}

// slotOf is the key slot s comes in by.
func (m *sessions) slotOf(s *session) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return s.slot
}

// rewrap wraps the vault key again for s (whose token's session key is
// k), which now comes in by slot: after a change of the vault key or of
// the slot s came in by, which leaves the key it wrapped before opening
// nothing.
func (m *sessions) rewrap(s *session, k []byte, v *vault.Vault, slot string) error {
	wrapped, err := v.WrapForSession(k, slot)
	if err != nil {
		return err
	}
	err = m.store.db.Update(func(tx kv.Tx) error {
		val := tx.Bucket(bucketSessions).Get(s.hash[:])
		if val == nil {
			return nil
		}
		r, err := m.store.openRow(s.hash[:], val)
		if err != nil {
			return err
		}
		r.Wrapped, r.Slot = wrapped, slot
		return m.store.put(tx, s.hash, r)
	})
	if err == nil {
		m.mu.Lock()
		s.slot = slot
		m.mu.Unlock()
	}
	return err
}

// forget drops this node's hold of the sessions hs (ended here or
// elsewhere).
func (m *sessions) forget(hs ...[32]byte) {
	if len(hs) == 0 {
		return
	}
	var ended []*session
	m.mu.Lock()
	for _, h := range hs {
		if s, ok := m.byHash[h]; ok {
			delete(m.byHash, h)
			ended = append(ended, s)
		}
	}
	m.mu.Unlock()
	for _, s := range ended {
		m.unpin(s.acct)
	}
}

// end ends one session, on every node.
func (m *sessions) end(s *session) error {
	err := m.store.db.Update(func(tx kv.Tx) error { return m.store.remove(tx, s.hash, s.acct.id) })
	if err != nil {
		return err
	}
	m.forget(s.hash)
	return nil
}

// endWhere ends the sessions of a for which match is true.
func (m *sessions) endWhere(a *account, match func(h [32]byte, r *sessionRow) bool) (int, error) {
	var ended [][32]byte
	err := m.store.db.Update(func(tx kv.Tx) error {
		ended = ended[:0]
		mine, err := m.store.ofAccount(tx, a.id)
		if err != nil {
			return err
		}
		for _, o := range mine {
			if match(o.hash, o.row) {
				if err := m.store.remove(tx, o.hash, a.id); err != nil {
					return err
				}
				ended = append(ended, o.hash)
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	m.forget(ended...)
	return len(ended), nil
}

// endDevice ends the sessions of a that logged in with a device
// credential of the given recipient.
func (m *sessions) endDevice(a *account, recipient string) (int, error) {
	return m.endWhere(a, func(_ [32]byte, r *sessionRow) bool {
		return r.Device != "" && subtle.ConstantTimeCompare([]byte(r.Device), []byte(recipient)) == 1
	})
}

// endOthers ends every session of a but keep (nil: every session): after
// a passphrase change, a recovery or a rotation, a stolen token must not
// outlive the secret it was stolen with.
func (m *sessions) endOthers(a *account, keep *session) (int, error) {
	return m.endWhere(a, func(h [32]byte, _ *sessionRow) bool { return keep == nil || h != keep.hash })
}

// accountSessions returns the live sessions of a, oldest first.
func (m *sessions) accountSessions(a *account) ([]*session, error) {
	now := m.now()
	var out []*session
	err := m.store.db.View(func(tx kv.Tx) error {
		mine, err := m.store.ofAccount(tx, a.id)
		if err != nil {
			return err
		}
		for _, o := range mine {
			if !m.expired(o.row, now) {
				out = append(out, m.fromRow(o.hash, a, o.row))
			}
		}
		return nil
	})
	slices.SortFunc(out, func(x, y *session) int { return x.created.Compare(y.created) })
	return out, err
}

// sessionsOf is accountSessions for callers to whom an unreadable store
// means no session.
func (m *sessions) sessionsOf(a *account) []*session {
	out, _ := m.accountSessions(a)
	return out
}

// sweep deletes expired sessions and ceremonies from the store, and
// drops this node's hold of sessions that ended (here or on another node),
// so closing vaults no one uses.
func (m *sessions) sweep() error {
	now := m.now()
	// Find the expired in a snapshot, which locks nothing; then delete
	// them, each checked again, in one short write.
	var expired []storedSession
	err := m.store.db.View(func(tx kv.Tx) error {
		all, err := m.store.all(tx)
		for _, o := range all {
			if m.expired(o.row, now) {
				expired = append(expired, o)
			}
		}
		return err
	})
	if err != nil {
		return err
	}
	var dead [][32]byte
	err = m.store.db.Update(func(tx kv.Tx) error {
		dead = dead[:0]
		b := tx.Bucket(bucketSessions)
		for _, o := range expired {
			v := b.Get(o.hash[:])
			if v == nil {
				continue
			}
			r, err := m.store.openRow(o.hash[:], v)
			if err != nil {
				return err
			}
			if m.expired(r, now) {
				if err := m.store.remove(tx, o.hash, r.Account); err != nil {
					return err
				}
				dead = append(dead, o.hash)
			}
		}
		return sweepCeremonies(tx.Bucket(bucketCeremonies), now)
	})
	if err != nil {
		return err
	}
	m.forget(dead...)
	m.mu.Lock()
	held := make([][32]byte, 0, len(m.byHash))
	for h := range m.byHash {
		held = append(held, h)
	}
	m.mu.Unlock()
	live, err := m.store.getMany(held)
	if err != nil {
		return err
	}
	var gone [][32]byte
	for _, h := range held {
		if r, ok := live[h]; !ok || m.expired(r, now) {
			gone = append(gone, h)
		}
	}
	m.forget(gone...)
	return nil
}

// counts returns the number of sessions (in the store: of every node)
// and of vaults open on this node.
func (m *sessions) counts() (sessions, vaults int) {
	n, err := m.store.count()
	if err != nil {
		m.mu.Lock()
		n = len(m.byHash)
		m.mu.Unlock()
	}
	return n, int(m.openVaults.Load())
}

// closeAll forgets this node's hold of every session and closes every
// vault; the sessions themselves stay in the store. Call it after the
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
