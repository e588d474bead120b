// Command phr-load measures phrd under load on this machine: it starts a
// phrd in-process on 127.0.0.1, creates accounts, opens sessions with
// device credentials, and drives GET /api/v1/records and POST
// /api/v1/ingest from concurrent clients, next to a bare echo handler that
// returns a fixed body, in the same run. It prints throughput, p50/p99
// latency, the CPU time each request took in this process (servers and
// clients) and in the processes named postgres (the database, when it
// runs on this machine), how busy the machine was, and memory per open
// vault and per session. A last phase opens
// share links (POST to a manifest URL, a link without passcode): each
// request is a write to the share store. Everything is in the data
// directory (bbolt files) or, with PHRD_DATABASE_URL set, in PostgreSQL
// (the vaults, sessions and share store); --nodes starts that many phrd
// servers on the database (in this process, each with its own data
// directory holding the same server.key, and its own connection pool) and
// spreads the clients of every phase over them.
//
//	go run ./cmd/phr-load --accounts 1000 --sessions 100 --duration 10s
//	PHRD_DATABASE_URL=postgres://... go run ./cmd/phr-load --nodes 3
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/phr-project/phr/pkg/server"
	"github.com/phr-project/phr/pkg/server/api"
	"github.com/phr-project/phr/pkg/share"
	"github.com/phr-project/phr/pkg/vault"
)

type options struct {
	accounts, sessions, seed int
	duration                 time.Duration
	workFactor               int
	nosync                   bool
	cpuprofile               string
	nodes                    int
	databaseURL              string // from PHRD_DATABASE_URL: never on the command line
}

func main() {
	var o options
	flag.IntVar(&o.accounts, "accounts", 1000, "accounts to create")
	flag.IntVar(&o.sessions, "sessions", 100, "concurrent sessions (clients), spread over the accounts")
	flag.IntVar(&o.seed, "records", 50, "readings ingested into each account before the run")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "how long each phase runs")
	flag.IntVar(&o.workFactor, "scrypt-work-factor", 10, "scrypt work factor of the accounts' passphrase slots (creation only; sessions use device credentials)")
	flag.BoolVar(&o.nosync, "nosync", false, "skip fsync in the vaults")
	flag.StringVar(&o.cpuprofile, "cpuprofile", "", "write a CPU profile of the records phase to this file")
	flag.IntVar(&o.nodes, "nodes", 1, "phrd servers on the database of PHRD_DATABASE_URL (every phase's clients spread over them)")
	flag.Parse()
	o.databaseURL = os.Getenv("PHRD_DATABASE_URL")
	if o.nodes < 1 || o.nodes > 1 && o.databaseURL == "" {
		fmt.Fprintln(os.Stderr, "phr-load: --nodes above 1 needs a database: set PHRD_DATABASE_URL")
		os.Exit(2)
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "phr-load:", err)
		os.Exit(1)
	}
}

type result struct {
	name     string
	requests int64
	errors   int64
	elapsed  time.Duration
	lat      []time.Duration
	cpu      cpuUse // spent during the phase
}

// cpuUse is CPU time spent: by this process (the nodes and the clients),
// by the processes named postgres (PostgreSQL's, when the database runs
// on this machine), and by the whole machine, busy and in all.
type cpuUse struct {
	self, db, busy, total time.Duration
}

func (a cpuUse) sub(b cpuUse) cpuUse {
	return cpuUse{a.self - b.self, a.db - b.db, a.busy - b.busy, a.total - b.total}
}

// clockTick is the unit of /proc's CPU times (USER_HZ, 100 on Linux).
const clockTick = 10 * time.Millisecond

// cpuNow reads the CPU times from /proc (Linux; zero elsewhere).
func cpuNow() cpuUse {
	var u cpuUse
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		u.self = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	if b, err := os.ReadFile("/proc/stat"); err == nil {
		line, _, _ := strings.Cut(string(b), "\n")
		if f := strings.Fields(line); len(f) > 5 && f[0] == "cpu" {
			for i, x := range f[1:] {
				n, _ := strconv.ParseInt(x, 10, 64)
				u.total += time.Duration(n) * clockTick
				if i != 3 && i != 4 { // idle, iowait
					u.busy += time.Duration(n) * clockTick
				}
			}
		}
	}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid ... utime stime: fields 14 and 15.
		open, close := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
		if open < 0 || close < open || string(b[open+1:close]) != "postgres" {
			continue
		}
		f := strings.Fields(string(b[close+1:]))
		if len(f) > 12 {
			ut, _ := strconv.ParseInt(f[11], 10, 64)
			st, _ := strconv.ParseInt(f[12], 10, 64)
			u.db += time.Duration(ut+st) * clockTick
		}
	}
	return u
}

func (r result) row(bare float64) string {
	slices.Sort(r.lat)
	q := func(p float64) time.Duration {
		if len(r.lat) == 0 {
			return 0
		}
		return r.lat[min(len(r.lat)-1, int(p*float64(len(r.lat))))]
	}
	rps := float64(r.requests) / r.elapsed.Seconds()
	ratio := ""
	if bare > 0 {
		ratio = fmt.Sprintf("%.2fx", rps/bare)
	}
	perReq := func(d time.Duration) string {
		if r.requests == 0 {
			return ""
		}
		return fmt.Sprintf("%.2f", float64(d)/float64(time.Millisecond)/float64(r.requests))
	}
	busy := ""
	if r.cpu.total > 0 {
		busy = fmt.Sprintf("%.0f%%", 100*float64(r.cpu.busy)/float64(r.cpu.total))
	}
	return fmt.Sprintf("| %s | %.0f | %v | %v | %d | %s | %s | %s | %s |", r.name, rps, q(0.5).Round(10*time.Microsecond), q(0.99).Round(10*time.Microsecond), r.errors, ratio,
		perReq(r.cpu.self), perReq(r.cpu.db), busy)
}

func run(o options) error {
	vault.ScryptWorkFactor = o.workFactor
	dir, err := os.MkdirTemp("", "phr-load-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	// One server.key for every node, as an operator copies it.
	serverKey := make([]byte, 32)
	if _, err := rand.Read(serverKey); err != nil {
		return err
	}
	var bases []string
	for i := range o.nodes {
		nodeDir := filepath.Join(dir, fmt.Sprint("node", i))
		if err := os.MkdirAll(nodeDir, 0o700); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(nodeDir, "server.key"), []byte(hex.EncodeToString(serverKey)+"\n"), 0o600); err != nil {
			return err
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		nodeBase := "http://" + ln.Addr().String()
		srv, err := server.New(server.Config{
			DataDir: nodeDir, ShareKeyFile: filepath.Join(dir, "share.key"),
			DatabaseURL: o.databaseURL, PublicURL: nodeBase, VaultNoSync: o.nosync,
			Logger:                slog.New(slog.NewTextHandler(io.Discard, nil)),
			LoginPerClient:        server.Rate{Events: 1 << 30, Per: time.Second, Burst: 1 << 30},
			MaxSessionsPerAccount: 1000,
		})
		if err != nil {
			return err
		}
		go srv.Serve(ln)
		defer srv.Shutdown(context.Background())
		bases = append(bases, nodeBase)
	}
	// Accounts are made on the first node; client i of every phase talks
	// to node i mod --nodes.
	base := bases[0]
	nodeOf := func(i int) string { return bases[i%len(bases)] }
	hc := &http.Client{Transport: &http.Transport{MaxIdleConns: 1000, MaxIdleConnsPerHost: 1000}}
	ctx := context.Background()

	// Accounts, each with a device credential and some readings.
	fmt.Fprintf(os.Stderr, "creating %d accounts...\n", o.accounts)
	creds := make([]string, o.accounts)
	start := time.Now()
	if err := parallel(8, o.accounts, func(i int) error {
		c := &api.Client{BaseURL: base, HTTP: hc}
		user := fmt.Sprintf("user%04d", i)
		if _, err := c.CreateAccount(ctx, user, "load test passphrase "+user); err != nil {
			return err
		}
		if _, err := c.Login(ctx, api.SessionRequest{Username: user, Passphrase: "load test passphrase " + user}); err != nil {
			return err
		}
		d, err := c.CreateDevice(ctx, "load", "load test passphrase "+user)
		if err != nil {
			return err
		}
		creds[i] = d.Credential
		if _, err := c.Ingest(ctx, readings(user, 0, o.seed)); err != nil {
			return err
		}
		return c.Logout(ctx)
	}); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "created in %v\n", time.Since(start).Round(time.Millisecond))

	// Sessions spread over the accounts; memory before and after.
	heap := func() int64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return int64(m.HeapInuse)
	}
	step := max(1, o.accounts/o.sessions)
	logins := func() ([]*api.Client, error) {
		cs := make([]*api.Client, o.sessions)
		for i := range cs {
			a := (i * step) % o.accounts
			cs[i] = &api.Client{BaseURL: nodeOf(i), HTTP: hc}
			if _, err := cs[i].Login(ctx, api.SessionRequest{Username: fmt.Sprintf("user%04d", a), DeviceCredential: creds[a]}); err != nil {
				return nil, err
			}
		}
		return cs, nil
	}
	h0 := heap()
	clients, err := logins()
	if err != nil {
		return err
	}
	h1 := heap()
	// A second session on each of the same accounts: the vaults are open.
	extra, err := logins()
	if err != nil {
		return err
	}
	h2 := heap()
	for _, c := range extra {
		c.Logout(ctx)
	}

	// The bare handler: a fixed body (a real answer of GET /records,
	// captured once, so that both move the same bytes), same clients.
	var fixed []byte
	{
		req, _ := http.NewRequest("GET", base+"/api/v1/records?limit=50", nil)
		req.Header.Set("Authorization", "Bearer "+clients[0].Token)
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		fixed, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	bare := echo.New()
	bare.HideBanner, bare.HidePort = true, true
	bare.GET("/bare", func(c echo.Context) error { return c.JSONBlob(http.StatusOK, fixed) })
	bln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	go http.Serve(bln, bare)
	bareURL := "http://" + bln.Addr().String() + "/bare"

	// Both GET phases read the body and throw it away: the client's
	// decoding is not the server's cost.
	get := func(i int, c *api.Client) error {
		req, _ := http.NewRequest("GET", nodeOf(i)+"/api/v1/records?limit=50", nil)
		req.Header.Set("Authorization", "Bearer "+c.Token)
		return discard(hc.Do(req))
	}
	var seq atomic.Int64
	ingest := func(i int, c *api.Client) error {
		n := int(seq.Add(1))
		_, err := c.Ingest(ctx, readings(fmt.Sprint("c", i), n*10, 10))
		return err
	}
	bareGet := func(i int, c *api.Client) error {
		return discard(hc.Get(bareURL))
	}
	rb := drive("bare echo handler (fixed body)", clients, o.duration, bareGet)
	if o.cpuprofile != "" {
		f, err := os.Create(o.cpuprofile)
		if err != nil {
			return err
		}
		pprof.StartCPUProfile(f)
	}
	rg := drive("GET /api/v1/records?limit=50", clients, o.duration, get)
	if o.cpuprofile != "" {
		pprof.StopCPUProfile()
	}
	ri := drive("POST /api/v1/ingest (10 readings)", clients, o.duration, ingest)

	// One share link per client, made on the first node; the manifest
	// requests go to the nodes in turn.
	jwe, err := share.EncryptFile(share.NewKey(), share.ContentTypeFHIR, fixed, true)
	if err != nil {
		return err
	}
	paths := make([]string, len(clients))
	for i, c := range clients {
		sc, err := c.CreateShare(ctx, api.CreateShareRequest{Files: []api.ShareFile{{ContentType: share.ContentTypeFHIR, JWE: jwe}}, ExpiresAt: time.Now().Add(time.Hour)})
		if err != nil {
			return err
		}
		u, err := url.Parse(sc.URL)
		if err != nil {
			return err
		}
		paths[i] = u.Path
	}
	manifest := func(i int, c *api.Client) error {
		resp, err := hc.Post(nodeOf(i)+paths[i], "application/json", strings.NewReader(`{"recipient":"load"}`))
		if err != nil {
			return err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return errors.New(resp.Status)
		}
		return nil
	}
	rm := drive("POST manifest, link without passcode", clients, o.duration, manifest)
	bareRPS := float64(rb.requests) / rb.elapsed.Seconds()
	store := "bbolt files in the data directory, 1 node"
	if o.databaseURL != "" {
		store = fmt.Sprintf("PostgreSQL, %d node(s) in this process", o.nodes)
	}
	fmt.Printf("phr-load: %s; %d accounts (%d readings each), %d concurrent sessions, %v per phase, GOMAXPROCS %d\n\n", store, o.accounts, o.seed, o.sessions, o.duration, runtime.GOMAXPROCS(0))
	fmt.Println("| phase | req/s | p50 | p99 | errors | vs bare | CPU ms/req, this process | CPU ms/req, postgres processes | machine busy |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|")
	fmt.Println(rb.row(0))
	fmt.Println(rg.row(bareRPS))
	fmt.Println(ri.row(bareRPS))
	fmt.Println(rm.row(bareRPS))
	fmt.Printf("\nmemory (Go heap in use, all nodes; bbolt's vault files are memory-mapped besides): %.1f KiB per open vault with its first session, %.1f KiB per further session; response body %d bytes\n",
		float64(h1-h0)/float64(o.sessions)/1024, float64(h2-h1)/float64(o.sessions)/1024, len(fixed))
	return nil
}

// drive runs fn from one goroutine per client for d.
func drive(name string, clients []*api.Client, d time.Duration, fn func(int, *api.Client) error) result {
	r := result{name: name}
	var mu sync.Mutex
	var wg sync.WaitGroup
	stop := time.Now().Add(d)
	start := time.Now()
	cpu0 := cpuNow()
	for i, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var lat []time.Duration
			var n, errs int64
			for time.Now().Before(stop) {
				t0 := time.Now()
				if err := fn(i, c); err != nil {
					errs++
				} else {
					n++
					lat = append(lat, time.Since(t0))
				}
			}
			mu.Lock()
			r.requests += n
			r.errors += errs
			r.lat = append(r.lat, lat...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	r.elapsed = time.Since(start)
	r.cpu = cpuNow().sub(cpu0)
	return r
}

// readings makes n heart-rate readings with ids unique to prefix and from.
func readings(prefix string, from, n int) api.IngestRequest {
	req := api.IngestRequest{Device: "load-watch"}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := from; i < from+n; i++ {
		v := float64(60 + i%40)
		req.Readings = append(req.Readings, api.Reading{ID: fmt.Sprintf("%s-%d", prefix, i), Type: "heart_rate", Value: &v, Unit: "/min", At: t0.Add(time.Duration(i) * time.Minute).Format(time.RFC3339)})
	}
	return req
}

// parallel runs fn(0..n-1) on workers goroutines and returns the first
// error.
func parallel(workers, n int, fn func(int) error) error {
	var next atomic.Int64
	var first error
	var once sync.Once
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := fn(i); err != nil {
					once.Do(func() { first = fmt.Errorf("item %d: %w", i, err) })
					return
				}
			}
		}()
	}
	wg.Wait()
	return first
}

// discard reads a response's body to the end and throws it away (the
// client's decoding is not the server's cost); a status other than 200
// is an error.
func discard(resp *http.Response, err error) error {
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return errors.New(resp.Status)
	}
	return nil
}
