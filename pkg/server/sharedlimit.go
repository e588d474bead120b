package server

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"log/slog"
	"math"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// rateLimiter is a set of token buckets by key: in this node's memory
// (limiter) or in PostgreSQL, shared by every node (sharedLimiter).
type rateLimiter interface {
	// allow takes a token for key; without one it returns false and how
	// long until there is one.
	allow(key string) (bool, time.Duration)
	// blocked reports, taking nothing, whether key has no token left.
	blocked(key string) (bool, time.Duration)
	// refund gives back a token taken by allow.
	refund(key string)
	// sweep forgets buckets that have refilled.
	sweep()
}

var (
	_ rateLimiter = (*limiter)(nil)
	_ rateLimiter = (*sharedLimiter)(nil)
)

// sharedLimiter keeps its buckets in the table phr_limits, so that a
// limit holds across nodes: each take is one conditional upsert, which
// PostgreSQL runs one at a time per row. If the database fails, the
// limiter falls back to this node's memory (local) for that request and
// logs it: the limit then holds per node, never not at all.
type sharedLimiter struct {
	name   string // which limit: "login-account", ...
	rate   Rate
	now    func() time.Time
	pool   *pgxpool.Pool
	secret []byte
	local  *limiter
	log    *slog.Logger
	warned atomic.Int64 // unix time of the last fallback warning
}

// limitTimeout bounds one statement of a shared limiter: a login should
// not wait long for a database that is away.
const limitTimeout = 2 * time.Second

func newSharedLimiter(name string, r Rate, now func() time.Time, pool *pgxpool.Pool, secret []byte, log *slog.Logger) *sharedLimiter {
	return &sharedLimiter{name: name, rate: r, now: now, pool: pool, secret: secret, local: newLimiter(r, now), log: log}
}

// key is the stored key: an HMAC, so the table holds no client address.
func (l *sharedLimiter) key(k string) []byte {
	m := hmac.New(sha256.New, l.secret)
	m.Write([]byte("phrd limit v1\x00" + l.name + "\x00" + k))
	return m.Sum(nil)
}

func (l *sharedLimiter) perToken() time.Duration { return l.rate.Per / time.Duration(l.rate.Events) }

func (l *sharedLimiter) fallback(err error) {
	now := time.Now().Unix()
	if last := l.warned.Load(); now-last >= 60 && l.warned.CompareAndSwap(last, now) {
		l.log.Warn("the rate limit's database is unavailable: limiting on this node only meanwhile", "limit", l.name, "err_type", errType(err))
	}
}

func errType(err error) string {
	var pe interface{ SQLState() string }
	if errors.As(err, &pe) {
		return "sqlstate " + pe.SQLState()
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "timeout"
	}
	return "connection"
}

// refillSQL is the SQL of a bucket's tokens now, from the row l and the
// parameters that hold the burst, the time now and the seconds per token.
func refillSQL(burst, now, per string) string {
	return `LEAST(` + burst + `, l.tokens + GREATEST(0, EXTRACT(EPOCH FROM (` + now + ` - l.last)))::float8 / ` + per + `)`
}

var refill = refillSQL("$3", "$4", "$5")

func (l *sharedLimiter) allow(k string) (bool, time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), limitTimeout)
	defer cancel()
	now := l.now()
	burst, per := float64(l.rate.Burst), l.perToken().Seconds()
	var tokens float64
	err := l.pool.QueryRow(ctx, `INSERT INTO phr_limits AS l (name, key, tokens, last) VALUES ($1, $2, $3 - 1, $4)
		ON CONFLICT (name, key) DO UPDATE SET tokens = `+refill+` - 1, last = GREATEST(l.last, $4)
		WHERE `+refill+` >= 1
		RETURNING l.tokens`, l.name, l.key(k), burst, now, per).Scan(&tokens)
	switch {
	case err == nil:
		return true, 0
	case errors.Is(err, pgx.ErrNoRows):
		if blocked, wait := l.blocked(k); blocked {
			return false, wait
		}
		return false, l.perToken()
	}
	l.fallback(err)
	return l.local.allow(k)
}

func (l *sharedLimiter) blocked(k string) (bool, time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), limitTimeout)
	defer cancel()
	var tokens float64
	var last time.Time
	err := l.pool.QueryRow(ctx, `SELECT tokens, last FROM phr_limits WHERE name = $1 AND key = $2`, l.name, l.key(k)).Scan(&tokens, &last)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return false, 0
	case err != nil:
		l.fallback(err)
		return l.local.blocked(k)
	}
	if el := l.now().Sub(last); el > 0 {
		tokens = math.Min(float64(l.rate.Burst), tokens+float64(el)/float64(l.perToken()))
	}
	if tokens >= 1 {
		return false, 0
	}
	return true, time.Duration((1 - tokens) * float64(l.perToken()))
}

func (l *sharedLimiter) refund(k string) {
	ctx, cancel := context.WithTimeout(context.Background(), limitTimeout)
	defer cancel()
	_, err := l.pool.Exec(ctx, `UPDATE phr_limits SET tokens = LEAST($3, tokens + 1) WHERE name = $1 AND key = $2`, l.name, l.key(k), float64(l.rate.Burst))
	if err != nil {
		l.fallback(err)
	}
	l.local.refund(k)
}

func (l *sharedLimiter) sweep() {
	ctx, cancel := context.WithTimeout(context.Background(), limitTimeout)
	defer cancel()
	_, err := l.pool.Exec(ctx, `DELETE FROM phr_limits AS l WHERE name = $1 AND `+refillSQL("$2", "$3", "$4")+` >= $2`,
		l.name, float64(l.rate.Burst), l.now(), l.perToken().Seconds())
	if err != nil {
		l.fallback(err)
	}
	l.local.sweep()
}
