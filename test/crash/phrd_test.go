package crash

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	mrand "math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/phr-project/phr/pkg/kv"
	"github.com/phr-project/phr/pkg/kv/kvtest"
	"github.com/phr-project/phr/pkg/record"
	"github.com/phr-project/phr/pkg/server"
	"github.com/phr-project/phr/pkg/server/api"
	"github.com/phr-project/phr/test/internal/phrdproc"
)

// daemon is a running phrd with an HTTP client of its own.
type daemon struct {
	*phrdproc.Daemon
	http *http.Client
}

// startPhrd starts phrd on dataDir, listening on a free port of
// 127.0.0.1, and waits until it listens. env adds PHRD_* settings
// (PHRD_DATABASE_URL).
func startPhrd(dataDir string, env ...string) (*daemon, error) {
	p, err := phrdproc.Start(bins.phrd, dataDir, env, "--shutdown-timeout", "10s")
	if err != nil {
		return nil, err
	}
	return &daemon{Daemon: p, http: &http.Client{Timeout: time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: 8}}}, nil
}

func (d *daemon) client() *api.Client { return &api.Client{BaseURL: d.URL, HTTP: d.http} }

// kill sends SIGKILL and waits for the process to end.
func (d *daemon) kill() {
	d.Kill()
	d.http.CloseIdleConnections()
}

// stop shuts phrd down with SIGTERM, as an operator would, and checks
// that it exits cleanly.
func (d *daemon) stop() error {
	err := d.Stop()
	d.http.CloseIdleConnections()
	return err
}

// restart starts phrd over data (after cycle kills) and logs in as the
// template's device; it fails the test if either fails.
func (tp *phrdTemplate) restart(t *testing.T, ctx context.Context, data string, cycle int, env ...string) (*daemon, *api.Client) {
	t.Helper()
	d, err := startPhrd(data, env...)
	if err != nil {
		t.Fatal(err)
	}
	c := d.client()
	if _, err := c.Login(ctx, api.SessionRequest{Username: tp.username, DeviceCredential: tp.credential}); err != nil {
		d.kill()
		t.Fatalf("login after restart %d: %v\n%s", cycle, err, d.Log())
	}
	return d, c
}

// killDuring runs each of writes in a goroutine of its own, again and
// again, kills phrd after delay, waits for the writers and counts the
// kill. A write that fails while phrd is up fails the test, which then
// shows phrd's log and stops.
func killDuring(t *testing.T, d *daemon, st *stats, delay time.Duration, writes ...func() error) {
	t.Helper()
	var killed atomic.Bool
	var wg sync.WaitGroup
	for _, write := range writes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !killed.Load() {
				if err := write(); err != nil {
					if !killed.Load() {
						t.Errorf("a request failed while phrd was up: %v", err)
					}
					return
				}
			}
		}()
	}
	time.Sleep(delay)
	killed.Store(true)
	d.kill()
	wg.Wait()
	st.runs.Add(1)
	st.kills.Add(1)
	if t.Failed() {
		t.Logf("phrd log:\n%s", d.Log())
		t.FailNow()
	}
}

// paced is write followed, when it succeeds, by a pause.
func paced(pause time.Duration, write func() error) func() error {
	return func() error {
		if err := write(); err != nil {
			return err
		}
		time.Sleep(pause)
		return nil
	}
}

// phrdTemplate is a data directory with one account and a device
// credential for it, made once: creating an account and logging in with
// a passphrase cost a scrypt each, a device login costs an X25519.
type phrdTemplate struct {
	dir        string
	username   string
	credential string         // the device credential: a secret, never logged
	ids        []age.Identity // the same, to open the vault file directly
}

func (f *fixture) phrdTemplate(t *testing.T) *phrdTemplate {
	t.Helper()
	f.phrdOnce.Do(func() { f.phrd, f.phrdErr = f.makePhrdTemplate() })
	if f.phrdErr != nil {
		t.Fatalf("phrd template: %v", f.phrdErr)
	}
	return f.phrd
}

func (f *fixture) makePhrdTemplate() (*phrdTemplate, error) {
	tp := &phrdTemplate{dir: filepath.Join(f.root, "phrd-template"), username: "crash-harness"}
	var b [16]byte
	rand.Read(b[:])
	pass := hex.EncodeToString(b[:])
	// What `phrd account create` does, in this process: its passphrase
	// slot gets the low scrypt cost TestMain set, so that creating the
	// account and the one passphrase login below are cheap.
	if _, err := server.CreateAccount(tp.dir, tp.username, pass); err != nil {
		return nil, fmt.Errorf("create account: %w", err)
	}
	d, err := startPhrd(tp.dir)
	if err != nil {
		return nil, err
	}
	defer d.kill()
	ctx := context.Background()
	c := d.client()
	if _, err := c.Login(ctx, api.SessionRequest{Username: tp.username, Passphrase: pass}); err != nil {
		return nil, fmt.Errorf("login: %w", err)
	}
	dev, err := c.CreateDevice(ctx, "crash harness", pass)
	if err != nil {
		return nil, fmt.Errorf("device: %w", err)
	}
	tp.credential = dev.Credential
	id, err := age.ParseX25519Identity(dev.Credential)
	if err != nil {
		return nil, fmt.Errorf("device credential: %w", err)
	}
	tp.ids = []age.Identity{id}
	if err := d.stop(); err != nil {
		return nil, err
	}
	return tp, nil
}

// vaultLoc is where a lane's vault is: a file, or a namespace of the
// database.
type vaultLoc struct {
	path string
	db   kv.DB
}

func (l vaultLoc) read(ids []age.Identity, check bool) (*state, error) {
	if l.db != nil {
		return readStateIn(l.db, ids, check)
	}
	return readState(l.path, ids, check)
}

// onPostgres moves the lane's copy of the template (its vault and share
// store) into a fresh PostgreSQL schema with phrd migrate's code, removes
// the files it moved (so that a phrd reading them instead of the database
// would fail), and returns phrd's environment for the database and the
// vault's namespace.
func onPostgres(t *testing.T, data, shareKey string) ([]string, kv.DB) {
	t.Helper()
	url := kvtest.URL(t)
	res, err := server.MigrateToDatabase(context.Background(), data, url, shareKey)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Vaults) != 1 {
		t.Fatalf("moved %d vaults", len(res.Vaults))
	}
	for _, p := range []string{filepath.Join(data, "vaults", res.Vaults[0].ID+".phr"), filepath.Join(data, "shares.db")} {
		if err := os.Remove(p); err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
	}
	pg, err := kv.OpenPostgres(context.Background(), url, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pg.Close)
	return []string{"PHRD_DATABASE_URL=" + url}, pg.Namespace("vault/" + res.Vaults[0].ID)
}

// phrdLane is one series of phrd processes killed while clients write.
type phrdLane struct {
	name string
	// postgres: the vault (and sessions, share store) in PostgreSQL
	// (--database-url), moved there from the template by phrd migrate.
	postgres bool
	// Writers of each kind, each its own goroutine: POST /records (one
	// FHIR resource), POST /ingest (batches of device readings with the
	// client's IDs), POST /imports (small real exports).
	records, readings, imports int
	kills                      int
}

// phrdImportFiles are the small files (indexes into fixture.small) the
// import writers upload.
var phrdImportFiles = []int{1, 4, 5}

const device = "crash-device"

// book is what the server acknowledged to the clients.
type book struct {
	mu       sync.Mutex
	records  map[string]string // record ID -> probe (its valueString)
	readings map[string]string // reading ID -> record ID
	pending  [][]api.Reading   // ingest batches without an answer: sent again after the restart
	imports  map[string]bool   // file SHA-256 -> acknowledged
	n        int
}

func (b *book) next() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.n++
	return b.n
}

// runPhrdLane starts phrd, logs in, checks through the API that every
// acknowledged write is there, starts the writers and kills phrd after a
// random delay; then it checks the vault file directly. After the last
// kill it restarts phrd once more, checks, writes, and stops it cleanly.
func (f *fixture) runPhrdLane(t *testing.T, l phrdLane, rng *mrand.Rand, st *stats) {
	tp := f.phrdTemplate(t)
	data := filepath.Join(t.TempDir(), "data")
	if err := copyTree(data, tp.dir); err != nil {
		t.Fatal(err)
	}
	vaults, _ := filepath.Glob(filepath.Join(data, "vaults", "*.phr"))
	if len(vaults) != 1 {
		t.Fatalf("%d vaults in the template", len(vaults))
	}
	loc := vaultLoc{path: vaults[0]}
	var env []string
	if l.postgres {
		env = []string{"PHRD_SHARE_KEY=" + tp.dir + ".share.key"}
		pgEnv, db := onPostgres(t, data, tp.dir+".share.key")
		env = append(env, pgEnv...)
		loc = vaultLoc{db: db}
	}
	var ref *reference
	if l.imports > 0 {
		ref = f.reference(t, f.small)
	}
	bk := &book{records: map[string]string{}, readings: map[string]string{}, imports: map[string]bool{}}
	ctx := context.Background()
	for cycle := 0; ; cycle++ {
		d, c := tp.restart(t, ctx, data, cycle, env...)
		if !f.checkAPI(t, ctx, c, bk, st) {
			d.kill()
			t.FailNow()
		}
		// Readings without an answer go again: they must come back as
		// added or as duplicates, never stored twice.
		for _, batch := range bk.pending {
			res, err := c.Ingest(ctx, api.IngestRequest{Device: device, Readings: batch})
			if err != nil {
				d.kill()
				t.Fatalf("re-sending readings: %v", err)
			}
			bk.ackReadings(res, st)
		}
		bk.pending = nil
		if cycle == l.kills {
			// Writes go on after the restarts, and phrd stops cleanly.
			for i := 0; i < 5; i++ {
				if err := bk.writeRecord(ctx, c, l.name, st); err != nil {
					d.kill()
					t.Fatalf("write after %d restarts: %v", cycle, err)
				}
			}
			if err := d.stop(); err != nil {
				t.Fatal(err)
			}
			f.checkVault(t, loc, tp, bk, ref, st)
			t.Logf("%d kills; acknowledged: %d records, %d readings, %d uploads", cycle, len(bk.records), len(bk.readings), len(bk.imports))
			return
		}
		// A pause between two writes, as a phone makes: less fsync load
		// on a busy machine.
		var writes []func() error
		for range l.records {
			writes = append(writes, paced(time.Duration(5+rng.IntN(20))*time.Millisecond, func() error { return bk.writeRecord(ctx, c, l.name, st) }))
		}
		for range l.readings {
			writes = append(writes, paced(time.Duration(5+rng.IntN(20))*time.Millisecond, func() error { return bk.writeReadings(ctx, c, l.name, st) }))
		}
		for range l.imports {
			writes = append(writes, func() error { return bk.writeImport(ctx, c, f, ref, st) })
		}
		killDuring(t, d, st, time.Duration(20+rng.IntN(500))*time.Millisecond, writes...)
		if !f.checkVault(t, loc, tp, bk, ref, st) {
			t.FailNow()
		}
	}
}

// probeResource is the FHIR resource a record writer posts; the probe
// text makes each one unique and findable.
func probeResource(probe string) json.RawMessage {
	return json.RawMessage(fmt.Sprintf(`{"resourceType":"Observation","status":"final","code":{"text":"Crash probe"},"valueString":%q,"effectiveDateTime":"2026-01-02T03:04:05Z"}`, probe))
}

func probeOf(r *record.Record) string {
	var res struct {
		ValueString string `json:"valueString"`
	}
	if r.ResourceType != "Observation" || json.Unmarshal(r.Resource, &res) != nil {
		return ""
	}
	return res.ValueString
}

func (b *book) writeRecord(ctx context.Context, c *api.Client, lane string, st *stats) error {
	probe := fmt.Sprintf("%s #%d", lane, b.next())
	rec, err := c.AddRecord(ctx, probeResource(probe))
	if err != nil {
		return err
	}
	b.mu.Lock()
	b.records[rec.ID] = probe
	b.mu.Unlock()
	st.acked.Add(1)
	return nil
}

func (b *book) writeReadings(ctx context.Context, c *api.Client, lane string, st *stats) error {
	batch := make([]api.Reading, 10)
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range batch {
		n := b.next()
		v := float64(55 + n%50)
		batch[i] = api.Reading{ID: fmt.Sprintf("%s r%d", lane, n), Type: api.ReadingHeartRate, Value: &v, Unit: "/min", At: base.Add(time.Duration(n) * time.Minute).Format(time.RFC3339)}
	}
	res, err := c.Ingest(ctx, api.IngestRequest{Device: device, Readings: batch})
	if err != nil {
		b.mu.Lock()
		b.pending = append(b.pending, batch)
		b.mu.Unlock()
		return err
	}
	b.ackReadings(res, st)
	return nil
}

func (b *book) ackReadings(res api.IngestResult, st *stats) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, r := range res.Results {
		if _, ok := b.readings[r.ID]; !ok {
			st.acked.Add(1)
		}
		b.readings[r.ID] = r.RecordID
	}
}

// writeImport uploads the next small file not acknowledged yet, and then
// idles: each file needs to be acknowledged once.
func (b *book) writeImport(ctx context.Context, c *api.Client, f *fixture, ref *reference, st *stats) error {
	for _, i := range phrdImportFiles {
		sha := ref.shas[i]
		b.mu.Lock()
		done := b.imports[sha]
		b.mu.Unlock()
		if done {
			continue
		}
		data, err := os.ReadFile(f.small[i])
		if err != nil {
			return err
		}
		if _, err := c.Import(ctx, filepath.Base(f.small[i]), bytes.NewReader(data), "", false, false); err != nil {
			return err
		}
		b.mu.Lock()
		b.imports[sha] = true
		b.mu.Unlock()
		st.acked.Add(int64(ref.st.count(sha)))
		return nil
	}
	time.Sleep(20 * time.Millisecond)
	return nil
}

// checkAPI lists every record through the API and checks that every
// acknowledged record and reading is there.
func (f *fixture) checkAPI(t *testing.T, ctx context.Context, c *api.Client, bk *book, st *stats) bool {
	t.Helper()
	ids := map[string]bool{}
	cursor := ""
	for {
		q := url.Values{"limit": {"1000"}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		page, err := c.Records(ctx, q)
		if err != nil {
			t.Errorf("listing records: %v", err)
			return false
		}
		for _, r := range page.Records {
			ids[r.ID] = true
		}
		if cursor = page.NextCursor; cursor == "" {
			break
		}
	}
	lost := 0
	for id := range bk.records {
		if !ids[id] {
			lost++
		}
	}
	for _, id := range bk.readings {
		if !ids[id] {
			lost++
		}
	}
	if lost > 0 {
		st.losses.Add(int64(lost))
		t.Errorf("after the restart the API lists %d records; %d acknowledged writes are missing", len(ids), lost)
		return false
	}
	return true
}

// checkVault opens the vault file directly (phrd is not running) and
// checks it: Check passes, every acknowledged write is there once, no
// write is there twice, and every uploaded file is whole or absent.
func (f *fixture) checkVault(t *testing.T, loc vaultLoc, tp *phrdTemplate, bk *book, ref *reference, st *stats) bool {
	t.Helper()
	s, err := loc.read(tp.ids, true)
	if err != nil {
		t.Errorf("after the kill: %v", err)
		return false
	}
	ok := true
	if len(s.problems) > 0 || s.interrupted > 0 {
		t.Errorf("after the kill: check: %s", problemList(s.problems))
		ok = false
	}
	probes := map[string]int{}
	readings := map[string]int{}
	for _, r := range s.records {
		if p := probeOf(&r); p != "" {
			probes[p]++
		}
		if r.Provenance.Method == record.MethodDevice && r.Provenance.System == device {
			readings[r.Provenance.OriginalID]++
		}
	}
	lost, twice := 0, 0
	for id, probe := range bk.records {
		if r, found := s.records[id]; !found || probeOf(&r) != probe {
			lost++
		}
	}
	for _, n := range probes {
		twice += max(n-1, 0)
	}
	for id, recID := range bk.readings {
		if _, found := s.records[recID]; !found || readings[id] == 0 {
			lost++
		}
	}
	for _, n := range readings {
		twice += max(n-1, 0)
	}
	checked := len(bk.records) + len(bk.readings)
	if ref != nil {
		for _, i := range phrdImportFiles {
			sha := ref.shas[i]
			n, want := s.count(sha), ref.st.count(sha)
			switch {
			case n == 0 && bk.imports[sha]:
				lost += want
			case n != 0 && !sameFile(s, ref.st, sha):
				t.Errorf("an uploaded file is partly in the vault: %d of %d records", n, want)
				ok = false
			case bk.imports[sha]:
				checked += want
			}
		}
	}
	if d := s.duplicates(); d > twice {
		twice = d
	}
	st.ackChecks.Add(int64(checked))
	if lost > 0 || twice > 0 {
		st.losses.Add(int64(lost))
		st.duplicates.Add(int64(twice))
		t.Errorf("after the kill: %d acknowledged writes lost, %d records stored twice", lost, twice)
		ok = false
	}
	return ok
}
