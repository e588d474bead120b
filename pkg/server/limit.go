package server

import (
	"context"
	"errors"
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// limiter is a set of token buckets, one per key (an account ID, a client
// address). Buckets that have refilled are forgotten by sweep, so memory
// follows the keys active in the last few minutes.
type limiter struct {
	rate Rate
	now  func() time.Time

	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

// maxBuckets bounds a limiter's memory: past it, new keys are refused
// until a sweep (a flood of distinct keys is itself an attack).
const maxBuckets = 200_000

func newLimiter(r Rate, now func() time.Time) *limiter {
	return &limiter{rate: r, now: now, buckets: map[string]*bucket{}}
}

func (l *limiter) perToken() time.Duration {
	return l.rate.Per / time.Duration(l.rate.Events)
}

// refill brings b up to now. The caller holds mu.
func (l *limiter) refill(b *bucket, now time.Time) {
	if el := now.Sub(b.last); el > 0 {
		b.tokens = math.Min(float64(l.rate.Burst), b.tokens+float64(el)/float64(l.perToken()))
		b.last = now
	}
}

// allow takes a token for key. If there is none it returns false and how
// long until there is one.
func (l *limiter) allow(key string) (bool, time.Duration) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.buckets[key]
	if !ok {
		if len(l.buckets) >= maxBuckets {
			return false, l.perToken()
		}
		b = &bucket{tokens: float64(l.rate.Burst), last: now}
		l.buckets[key] = b
	}
	l.refill(b, now)
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	wait := time.Duration((1 - b.tokens) * float64(l.perToken()))
	return false, wait
}

// blocked reports, without taking a token, whether key has none left,
// and if so how long until it has one.
func (l *limiter) blocked(key string) (bool, time.Duration) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.buckets[key]
	if !ok {
		return false, 0
	}
	l.refill(b, now)
	if b.tokens >= 1 {
		return false, 0
	}
	return true, time.Duration((1 - b.tokens) * float64(l.perToken()))
}

// refund gives back a token taken by allow (an attempt that did not count).
func (l *limiter) refund(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if b, ok := l.buckets[key]; ok {
		b.tokens = math.Min(float64(l.rate.Burst), b.tokens+1)
	}
}

// sweep forgets full buckets.
func (l *limiter) sweep() {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	for k, b := range l.buckets {
		l.refill(b, now)
		if b.tokens >= float64(l.rate.Burst) {
			delete(l.buckets, k)
		}
	}
}

// gate bounds concurrent key derivations (scrypt: about a second of CPU
// and 256 MiB each at the default work factor), so that a flood of
// passphrase logins queues briefly and is then refused, instead of
// starving every other request of CPU and memory.
type gate struct {
	slots   chan struct{}
	timeout time.Duration
	peak    atomic.Int64 // most slots ever held at once (tests, metrics)
}

// errBusy: no unlock slot came free in time.
var errBusy = errors.New("server busy")

func newGate(n int, timeout time.Duration) *gate {
	return &gate{slots: make(chan struct{}, n), timeout: timeout}
}

// acquire waits for a slot; the caller calls release when done.
func (g *gate) acquire(ctx context.Context) error {
	select {
	case g.slots <- struct{}{}:
		g.held()
		return nil
	default:
	}
	t := time.NewTimer(g.timeout)
	defer t.Stop()
	select {
	case g.slots <- struct{}{}:
		g.held()
		return nil
	case <-t.C:
		return errBusy
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (g *gate) held() {
	n := int64(len(g.slots))
	for {
		p := g.peak.Load()
		if n <= p || g.peak.CompareAndSwap(p, n) {
			return
		}
	}
}

func (g *gate) release() { <-g.slots }
