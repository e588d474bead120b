package server

import (
	"bytes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"time"

	"github.com/phr-project/phr/internal/seal"
	"github.com/phr-project/phr/pkg/kv"
	"github.com/phr-project/phr/pkg/server/api"
	"github.com/phr-project/phr/pkg/vault"
)

// The session store: what every node needs to serve a session it did not
// make, and the state of a login that spans two requests, in a kv.DB (a
// bbolt file in the data directory, or a namespace of the PostgreSQL
// database that all nodes share).
//
//	s/<SHA-256 of the token>            sealed sessionRow
//	a/<account tag (16)><token hash>    empty: the account's sessions
//	c/<ceremony key>                    expiry (8) ‖ sealed passkey ceremony
//	f/<account tag (16)>                sealed failed logins not yet in the audit log
//
// Rows are sealed (XChaCha20-Poly1305) under a key derived from
// server.key, bound to their bucket and key; the account tag is an HMAC
// of the account ID under another. So the database holds no account ID,
// method, device or time next to a token hash; and what opens a vault, the
// vault key wrapped in each row, is wrapped under a key derived from the
// token, which only the client has (server.key does not open it). The
// sequence of bucket s counts its rows, that of bucket c its ceremonies.
type sessionStore struct {
	db   kv.DB
	rows cipher.AEAD
	tag  []byte // HMAC key of account tags
}

var (
	bucketSessions   = []byte("s")
	bucketByAccount  = []byte("a")
	bucketCeremonies = []byte("c")
	bucketFailures   = []byte("f")
)

const (
	sessionsFile      = "sessions.db"
	sessionsNamespace = "phrd-sessions"
	accountTagLen     = 16
)

// openSessionStore opens the session store: DATA/sessions.db on the
// embedded default, the namespace phrd-sessions of the database with one.
func (s *Server) openSessionStore() (*sessionStore, error) {
	if s.pg != nil {
		return newSessionStore(s.pg.Namespace(sessionsNamespace), s.data.secret)
	}
	// A second phrd on the data directory waits for the file's lock, and
	// then gives up.
	db, err := kv.OpenBolt(filepath.Join(s.data.root, sessionsFile), 0o600, &kv.BoltOptions{Timeout: 2 * time.Second, NoSync: s.cfg.VaultNoSync})
	if err != nil {
		return nil, fmt.Errorf("%s: %w (is another phrd running on this data directory?)", sessionsFile, err)
	}
	st, err := newSessionStore(db, s.data.secret)
	if err != nil {
		db.Close()
	}
	return st, err
}

// openVault opens the account's vault with secret: the one place that
// says where an account's vault is (s.data.store).
func (s *Server) openVault(id string, secret vault.Secret) (*vault.Vault, error) {
	return s.data.store.open(id, secret, s.vaultOpts)
}

var errVaultElsewhere = newError(http.StatusServiceUnavailable, api.CodeUnavailable,
	"this node does not hold the account's vault: nodes that serve any session need their vaults in the database (--database-url) or the same vault directory (docs/operations.md)")

// newSessionStore makes the store over db; secret is server.key.
func newSessionStore(db kv.DB, secret []byte) (*sessionStore, error) {
	sk, err := hkdf.Key(sha256.New, secret, nil, "phrd session rows v1", seal.KeySize)
	if err != nil {
		return nil, err
	}
	aead, err := seal.New(sk)
	if err != nil {
		return nil, err
	}
	tag, err := hkdf.Key(sha256.New, secret, nil, "phrd session account tag v1", 32)
	if err != nil {
		return nil, err
	}
	st := &sessionStore{db: db, rows: aead, tag: tag}
	err = db.Update(func(tx kv.Tx) error {
		for _, b := range [][]byte{bucketSessions, bucketByAccount, bucketCeremonies, bucketFailures} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("the session store: %w", err)
	}
	return st, nil
}

// Close closes the store (a namespace of the database: not the pool).
func (st *sessionStore) Close() error { return st.db.Close() }

// sessionRow is a session as stored.
type sessionRow struct {
	Account  string    `json:"a"`
	Method   string    `json:"m"`
	Device   string    `json:"d,omitempty"` // the device credential's recipient (public)
	Slot     string    `json:"s"`           // the key slot the session came in by
	Created  time.Time `json:"c"`
	LastUsed time.Time `json:"u"` // written at most once per lastUsedStep
	Expires  time.Time `json:"e"`
	// Wrapped is the vault key under the session key (sessionKey of the
	// token): vault.WrapForSession.
	Wrapped []byte `json:"w"`
}

// sessionKey derives from a token the key its session's vault key is
// wrapped under. The store keeps the token's SHA-256, from which this key
// cannot be had.
func sessionKey(token string) []byte {
	k, err := hkdf.Key(sha256.New, []byte(token), nil, "phrd session vault key v1", vault.SessionKeySize)
	if err != nil {
		panic("phrd: hkdf: " + err.Error())
	}
	return k
}

func (st *sessionStore) accountTag(acct string) []byte {
	m := hmac.New(sha256.New, st.tag)
	m.Write([]byte(acct))
	return m.Sum(nil)[:accountTagLen]
}

func rowAD(bucket, key []byte) []byte {
	ad := append([]byte("phrd session store v1\x00"), bucket...)
	ad = append(ad, 0)
	return append(ad, key...)
}

// storeSeal and storeOpen seal and open a row's value under aead (the store's, or a session's for
// a registration ceremony), bound to its bucket and key and to prefix,
// which is stored in clear before it.
func storeSeal(aead cipher.AEAD, bucket, key, prefix, plain []byte) []byte {
	out := make([]byte, len(prefix), len(prefix)+seal.Overhead+len(plain))
	copy(out, prefix)
	return seal.Append(out, aead, plain, append(rowAD(bucket, key), prefix...))
}

var errSealed = errors.New("session store: a row does not open under server.key (a store of another data directory?)")

func storeOpen(aead cipher.AEAD, bucket, key []byte, prefixLen int, sealed []byte) ([]byte, error) {
	if len(sealed) < prefixLen+seal.Overhead {
		return nil, errSealed
	}
	prefix, rest := sealed[:prefixLen], sealed[prefixLen:]
	pt, err := seal.Open(nil, aead, rest, append(rowAD(bucket, key), prefix...))
	if err != nil {
		return nil, errSealed
	}
	return pt, nil
}

func (st *sessionStore) sealRow(h []byte, r *sessionRow) ([]byte, error) {
	pt, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	return storeSeal(st.rows, bucketSessions, h, nil, pt), nil
}

func (st *sessionStore) openRow(h, sealed []byte) (*sessionRow, error) {
	pt, err := storeOpen(st.rows, bucketSessions, h, 0, sealed)
	if err != nil {
		return nil, err
	}
	var r sessionRow
	if err := json.Unmarshal(pt, &r); err != nil {
		return nil, errSealed
	}
	return &r, nil
}

// get returns the session of hash h, or nil.
func (st *sessionStore) get(h [32]byte) (*sessionRow, error) {
	v, err := kv.GetOne(st.db, bucketSessions, h[:])
	if err != nil || v == nil {
		return nil, err
	}
	return st.openRow(h[:], v)
}

// getMany returns the rows of the hashes that still have one.
func (st *sessionStore) getMany(hs [][32]byte) (map[[32]byte]*sessionRow, error) {
	out := map[[32]byte]*sessionRow{}
	err := st.db.View(func(tx kv.Tx) error {
		keys := make([][]byte, len(hs))
		for i := range hs {
			keys[i] = hs[i][:]
		}
		for i, v := range kv.GetMany(tx.Bucket(bucketSessions), keys) {
			if v != nil {
				r, err := st.openRow(keys[i], v)
				if err != nil {
					return err
				}
				out[hs[i]] = r
			}
		}
		return nil
	})
	return out, err
}

// put writes a session's row (a new one counts in the bucket's sequence).
func (st *sessionStore) put(tx kv.Tx, h [32]byte, r *sessionRow) error {
	b := tx.Bucket(bucketSessions)
	sealed, err := st.sealRow(h[:], r)
	if err != nil {
		return err
	}
	if b.Get(h[:]) == nil {
		if _, err := b.NextSequence(); err != nil {
			return err
		}
	}
	if err := b.Put(h[:], sealed); err != nil {
		return err
	}
	return tx.Bucket(bucketByAccount).Put(append(st.accountTag(r.Account), h[:]...), []byte{})
}

// remove deletes the session h of account acct, if it is there.
func (st *sessionStore) remove(tx kv.Tx, h [32]byte, acct string) error {
	b := tx.Bucket(bucketSessions)
	if b.Get(h[:]) == nil {
		return nil
	}
	if err := b.Delete(h[:]); err != nil {
		return err
	}
	if n := b.Sequence(); n > 0 {
		if err := b.SetSequence(n - 1); err != nil {
			return err
		}
	}
	return tx.Bucket(bucketByAccount).Delete(append(st.accountTag(acct), h[:]...))
}

// storedSession is a row with its hash.
type storedSession struct {
	hash [32]byte
	row  *sessionRow
}

// ofAccount returns the account's sessions in tx.
func (st *sessionStore) ofAccount(tx kv.Tx, acct string) ([]storedSession, error) {
	tag := st.accountTag(acct)
	b := tx.Bucket(bucketSessions)
	var out []storedSession
	c := tx.Bucket(bucketByAccount).Cursor()
	for k, _ := c.Seek(tag); k != nil && bytes.HasPrefix(k, tag); k, _ = c.Next() {
		var h [32]byte
		if len(k) != accountTagLen+32 {
			continue
		}
		copy(h[:], k[accountTagLen:])
		v := b.Get(h[:])
		if v == nil {
			continue
		}
		r, err := st.openRow(h[:], v)
		if err != nil {
			return nil, err
		}
		if r.Account != acct { // a tag collision (2^-64 a pair): not this account's
			continue
		}
		out = append(out, storedSession{h, r})
	}
	return out, nil
}

// count is the number of stored sessions.
func (st *sessionStore) count() (int, error) {
	var n uint64
	err := st.db.View(func(tx kv.Tx) error {
		n = tx.Bucket(bucketSessions).Sequence()
		return nil
	})
	return int(n), err
}

// all returns every stored session (the sweep).
func (st *sessionStore) all(tx kv.Tx) ([]storedSession, error) {
	var out []storedSession
	err := tx.Bucket(bucketSessions).ForEach(func(k, v []byte) error {
		if len(k) != 32 {
			return nil
		}
		r, err := st.openRow(k, v)
		if err != nil {
			return err
		}
		var h [32]byte
		copy(h[:], k)
		out = append(out, storedSession{h, r})
		return nil
	})
	return out, err
}

// Passkey ceremonies: the state between a begin and its finish, which
// may reach another node. Each is taken once; expired ones are swept.

// ceremonyKey is the stored key of the ceremony id of a kind.
func ceremonyKey(kind, id string) []byte {
	sum := sha256.Sum256([]byte("phrd ceremony v1\x00" + kind + "\x00" + id))
	return sum[:]
}

// putCeremony stores a ceremony sealed under aead until expires; past
// max live ones it sweeps the expired and, if still full, refuses.
func (st *sessionStore) putCeremony(kind, id string, aead cipher.AEAD, plain []byte, now, expires time.Time, max int) error {
	key := ceremonyKey(kind, id)
	var exp [8]byte
	binary.BigEndian.PutUint64(exp[:], uint64(expires.UnixNano()))
	return st.db.Update(func(tx kv.Tx) error {
		b := tx.Bucket(bucketCeremonies)
		if b.Sequence() >= uint64(max) {
			if err := sweepCeremonies(b, now); err != nil {
				return err
			}
			if b.Sequence() >= uint64(max) {
				return errTooManyCeremoniesRetry()
			}
		}
		if _, err := b.NextSequence(); err != nil {
			return err
		}
		return b.Put(key, storeSeal(aead, bucketCeremonies, key, exp[:], plain))
	})
}

// takeCeremony removes a ceremony and returns it opened, or nil when
// there is none, it expired, or it does not open under aead.
func (st *sessionStore) takeCeremony(kind, id string, aead cipher.AEAD, now time.Time) ([]byte, error) {
	key := ceremonyKey(kind, id)
	var pt []byte
	err := st.db.Update(func(tx kv.Tx) error {
		b := tx.Bucket(bucketCeremonies)
		v := b.Get(key)
		if v == nil {
			return nil
		}
		// Copied: the value is the transaction's only until it ends, and
		// Delete may reuse it.
		v = bytes.Clone(v)
		if err := b.Delete(key); err != nil {
			return err
		}
		if n := b.Sequence(); n > 0 {
			if err := b.SetSequence(n - 1); err != nil {
				return err
			}
		}
		if len(v) < 8 || !now.Before(time.Unix(0, int64(binary.BigEndian.Uint64(v[:8])))) {
			return nil
		}
		pt, _ = storeOpen(aead, bucketCeremonies, key, 8, v)
		return nil
	})
	return pt, err
}

// sweepCeremonies deletes the expired ceremonies of b.
func sweepCeremonies(b kv.Bucket, now time.Time) error {
	var dead [][]byte
	err := b.ForEach(func(k, v []byte) error {
		if len(v) < 8 || !now.Before(time.Unix(0, int64(binary.BigEndian.Uint64(v[:8])))) {
			dead = append(dead, bytes.Clone(k))
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, k := range dead {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	if n := b.Sequence(); n >= uint64(len(dead)) {
		return b.SetSequence(n - uint64(len(dead)))
	}
	return b.SetSequence(0)
}

// Failed logins wait here (they cannot go into the audit log without the
// vault key) until a login of the account, on any node, writes them.

func (st *sessionStore) addFailure(acct string, e vault.AuditEntry) error {
	key := st.accountTag(acct)
	return st.db.Update(func(tx kv.Tx) error {
		b := tx.Bucket(bucketFailures)
		var l []vault.AuditEntry
		if v := b.Get(key); v != nil {
			pt, err := storeOpen(st.rows, bucketFailures, key, 0, v)
			if err != nil {
				return err
			}
			if err := json.Unmarshal(pt, &l); err != nil {
				return errSealed
			}
		} else {
			if b.Sequence() >= maxPendingAccounts {
				return nil
			}
			if _, err := b.NextSequence(); err != nil {
				return err
			}
		}
		l = appendFailure(l, e)
		pt, err := json.Marshal(l)
		if err != nil {
			return err
		}
		return b.Put(key, storeSeal(st.rows, bucketFailures, key, nil, pt))
	})
}

func (st *sessionStore) takeFailures(acct string) ([]vault.AuditEntry, error) {
	key := st.accountTag(acct)
	var l []vault.AuditEntry
	err := st.db.Update(func(tx kv.Tx) error {
		b := tx.Bucket(bucketFailures)
		v := b.Get(key)
		if v == nil {
			return nil
		}
		pt, err := storeOpen(st.rows, bucketFailures, key, 0, v)
		if err != nil {
			return err
		}
		if err := json.Unmarshal(pt, &l); err != nil {
			return errSealed
		}
		if err := b.Delete(key); err != nil {
			return err
		}
		if n := b.Sequence(); n > 0 {
			return b.SetSequence(n - 1)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return l, nil
}

// appendFailure adds e to an account's waiting failures, keeping the
// newest maxPendingPerAccount and counting in the oldest kept what fell
// out.
func appendFailure(l []vault.AuditEntry, e vault.AuditEntry) []vault.AuditEntry {
	if len(l) >= maxPendingPerAccount {
		l = l[1:]
		if l[0].Counts == nil {
			l[0].Counts = map[string]int{}
		}
		l[0].Counts["earlier_failures"]++
	}
	return append(l, e)
}

// Bounds of the failed logins waiting for the audit log.
const (
	maxPendingPerAccount = 100
	maxPendingAccounts   = 100_000
)

// failed keeps a failed login of an existing account for its audit log.
// Losing it (the store unavailable) is logged, not answered: the login
// failed anyway.
func (s *Server) failed(acct string, e vault.AuditEntry) {
	if err := s.sess.store.addFailure(acct, e); err != nil {
		s.log.Warn("keeping a failed login for the audit log failed", acctAttr(acct), "kind", errKind(err))
	}
}

// takeFailures returns (and forgets) the account's waiting failed logins.
func (s *Server) takeFailures(acct string) []vault.AuditEntry {
	l, err := s.sess.store.takeFailures(acct)
	if err != nil {
		s.log.Warn("reading the failed logins for the audit log failed", acctAttr(acct), "kind", errKind(err))
	}
	return l
}
