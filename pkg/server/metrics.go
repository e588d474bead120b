package server

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// metrics are counted in memory and written in the Prometheus text
// format by hand (no client library): requests by route template, method
// and status; a latency histogram by route; login outcomes; gauges read at
// scrape time.
type metrics struct {
	mu       sync.Mutex
	requests map[reqKey]uint64
	latency  map[string]*histogram

	loginFailures atomic.Uint64
	loginSuccess  atomic.Uint64
	rateLimited   atomic.Uint64
	kdfRejected   atomic.Uint64
}

type reqKey struct {
	route, method string
	status        int
}

// latencyBuckets are the histogram's upper bounds, in seconds.
var latencyBuckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

type histogram struct {
	counts []uint64 // per bucket, not cumulative
	sum    float64
	n      uint64
}

func newMetrics() *metrics {
	return &metrics{requests: map[reqKey]uint64{}, latency: map[string]*histogram{}}
}

func (m *metrics) observe(route, method string, status int, d time.Duration) {
	sec := d.Seconds()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.requests[reqKey{route, method, status}]++
	h, ok := m.latency[route]
	if !ok {
		h = &histogram{counts: make([]uint64, len(latencyBuckets))}
		m.latency[route] = h
	}
	for i, b := range latencyBuckets {
		if sec <= b {
			h.counts[i]++
			break
		}
	}
	h.sum += sec
	h.n++
}

// write prints every metric; sessions and vaults are the gauges' values.
func (m *metrics) write(w io.Writer, sessions, vaults int) {
	m.mu.Lock()
	keys := make([]reqKey, 0, len(m.requests))
	for k := range m.requests {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b reqKey) int {
		if c := strings.Compare(a.route, b.route); c != 0 {
			return c
		}
		if c := strings.Compare(a.method, b.method); c != 0 {
			return c
		}
		return a.status - b.status
	})
	var b strings.Builder
	b.WriteString("# HELP phrd_http_requests_total HTTP requests by route template, method and status.\n# TYPE phrd_http_requests_total counter\n")
	for _, k := range keys {
		fmt.Fprintf(&b, "phrd_http_requests_total{route=%s,method=%s,status=\"%d\"} %d\n", quote(k.route), quote(k.method), k.status, m.requests[k])
	}
	routes := make([]string, 0, len(m.latency))
	for r := range m.latency {
		routes = append(routes, r)
	}
	slices.Sort(routes)
	b.WriteString("# HELP phrd_http_request_duration_seconds HTTP request latency by route template.\n# TYPE phrd_http_request_duration_seconds histogram\n")
	for _, r := range routes {
		h := m.latency[r]
		var cum uint64
		for i, ub := range latencyBuckets {
			cum += h.counts[i]
			fmt.Fprintf(&b, "phrd_http_request_duration_seconds_bucket{route=%s,le=\"%s\"} %d\n", quote(r), strconv.FormatFloat(ub, 'g', -1, 64), cum)
		}
		fmt.Fprintf(&b, "phrd_http_request_duration_seconds_bucket{route=%s,le=\"+Inf\"} %d\n", quote(r), h.n)
		fmt.Fprintf(&b, "phrd_http_request_duration_seconds_sum{route=%s} %s\n", quote(r), strconv.FormatFloat(h.sum, 'g', -1, 64))
		fmt.Fprintf(&b, "phrd_http_request_duration_seconds_count{route=%s} %d\n", quote(r), h.n)
	}
	m.mu.Unlock()
	for _, g := range []struct {
		name, help, typ string
		v               uint64
	}{
		{"phrd_open_vaults", "Vaults open (unlocked) in memory.", "gauge", uint64(vaults)},
		{"phrd_sessions", "Live sessions.", "gauge", uint64(sessions)},
		{"phrd_login_failures_total", "Logins refused for a wrong username or credential.", "counter", m.loginFailures.Load()},
		{"phrd_logins_total", "Successful logins.", "counter", m.loginSuccess.Load()},
		{"phrd_login_rate_limited_total", "Logins and account creations refused by a rate limit.", "counter", m.rateLimited.Load()},
		{"phrd_kdf_rejected_total", "Passphrase unlocks refused because every unlock slot was busy.", "counter", m.kdfRejected.Load()},
	} {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s %s\n%s %d\n", g.name, g.help, g.name, g.typ, g.name, g.v)
	}
	io.WriteString(w, b.String())
}

// quote writes a Prometheus label value.
func quote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(s) + `"`
}
