package crash

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	mrand "math/rand/v2"
	"net/http"
	"net/url"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/phr-project/phr/pkg/server/api"
	"github.com/phr-project/phr/pkg/share"
)

// sharesLane kills phrd while clients create share links and spend their
// passcode budgets, on one of the share store's two backends: the file
// DATA/shares.db, or PostgreSQL (--database-url).
type sharesLane struct {
	name     string
	postgres bool
	kills    int
}

// shareBook is what phrd acknowledged about shares.
type shareBook struct {
	mu      sync.Mutex
	paths   map[string]string // share ID -> manifest path
	ids     []string
	guarded []string       // the IDs of shares with a passcode
	wrong   map[string]int // share ID -> wrong passcodes answered 401
	created int
}

const (
	sharePasscode    = "crash-1234"
	shareMaxAttempts = 100
)

func (f *fixture) runSharesLane(t *testing.T, l sharesLane, rng *mrand.Rand, st *stats) {
	tp := f.phrdTemplate(t)
	data := filepath.Join(t.TempDir(), "data")
	if err := copyTree(data, tp.dir); err != nil {
		t.Fatal(err)
	}
	// The template's share key file, which its shares.db belongs to.
	env := []string{"PHRD_SHARE_KEY=" + tp.dir + ".share.key"}
	if l.postgres {
		// The account's vault and the template's share store move into
		// the database, as phrd migrate moves them.
		pgEnv, _ := onPostgres(t, data, tp.dir+".share.key")
		env = append(env, pgEnv...)
	}
	jwe, err := share.EncryptFile(share.NewKey(), share.ContentTypeFHIR, []byte(`{"resourceType":"Bundle","type":"collection"}`), true)
	if err != nil {
		t.Fatal(err)
	}
	bk := &shareBook{paths: map[string]string{}, wrong: map[string]int{}}
	ctx := context.Background()
	for cycle := 0; ; cycle++ {
		d, c := tp.restart(t, ctx, data, cycle, env...)
		if !bk.check(t, ctx, c, d, st) {
			d.kill()
			t.FailNow()
		}
		if cycle == l.kills {
			if err := d.stop(); err != nil {
				t.Fatal(err)
			}
			t.Logf("%d kills; acknowledged: %d shares, %d wrong passcodes", cycle, len(bk.ids), bk.totalWrong())
			return
		}
		// Each writer has its own generator, drawn from the lane's (a
		// rand.Rand is not safe for concurrent use), and pauses a few
		// milliseconds between two requests.
		own := func() *mrand.Rand { return mrand.New(mrand.NewPCG(rng.Uint64(), rng.Uint64())) }
		r1, r2, r3 := own(), own(), own()
		every := func(r *mrand.Rand, write func() error) func() error {
			return func() error {
				err := write()
				if err == nil {
					time.Sleep(time.Duration(2+r.IntN(10)) * time.Millisecond)
				}
				return err
			}
		}
		killDuring(t, d, st, time.Duration(200+rng.IntN(1000))*time.Millisecond,
			every(r1, func() error { return bk.create(ctx, c, jwe, st) }),
			every(r2, func() error { return bk.guess(ctx, d, r2, st) }),
			every(r3, func() error { return bk.guess(ctx, d, r3, st) }))
	}
}

func (b *shareBook) totalWrong() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, w := range b.wrong {
		n += w
	}
	return n
}

func (b *shareBook) create(ctx context.Context, c *api.Client, jwe string, st *stats) error {
	b.mu.Lock()
	b.created++
	n := b.created
	b.mu.Unlock()
	req := api.CreateShareRequest{
		Files:     []api.ShareFile{{ContentType: share.ContentTypeFHIR, JWE: jwe}},
		ExpiresAt: time.Now().Add(24 * time.Hour),
		Label:     fmt.Sprintf("crash share %d", n),
	}
	// Every fourth share has a passcode (hashing it costs phrd a scrypt).
	guarded := n%4 == 1
	if guarded {
		req.Passcode, req.MaxAttempts = sharePasscode, shareMaxAttempts
	}
	sc, err := c.CreateShare(ctx, req)
	if err != nil {
		return err
	}
	// The client made the files, so phrd knows no key and gives the
	// manifest URL alone.
	u, err := url.Parse(sc.URL)
	if err != nil {
		return err
	}
	b.mu.Lock()
	b.paths[sc.ID] = u.Path
	b.ids = append(b.ids, sc.ID)
	if guarded {
		b.guarded = append(b.guarded, sc.ID)
	}
	b.mu.Unlock()
	st.acked.Add(1)
	return nil
}

// guess spends one wrong passcode on an acknowledged share; a 401 is an
// acknowledged attempt.
func (b *shareBook) guess(ctx context.Context, d *daemon, rng *mrand.Rand, st *stats) error {
	b.mu.Lock()
	if len(b.guarded) == 0 {
		b.mu.Unlock()
		time.Sleep(5 * time.Millisecond)
		return nil
	}
	id := b.guarded[rng.IntN(len(b.guarded))]
	path := b.paths[id]
	b.mu.Unlock()
	status, remaining, err := manifest(ctx, d, path, "wrong")
	if err != nil {
		return err
	}
	switch status {
	case http.StatusUnauthorized:
		b.mu.Lock()
		b.wrong[id]++
		b.mu.Unlock()
		st.acked.Add(1)
		if remaining < 0 || remaining >= shareMaxAttempts {
			return fmt.Errorf("a wrong passcode answered with %d remaining attempts", remaining)
		}
		return nil
	case http.StatusNotFound: // budget spent: locked
		return nil
	case http.StatusTooManyRequests, http.StatusServiceUnavailable: // busy: try later
		return nil
	}
	return fmt.Errorf("manifest with a wrong passcode: status %d", status)
}

// manifest asks for a share's manifest and returns the status and, on a
// 401, the remaining attempts.
func manifest(ctx context.Context, d *daemon, path, passcode string) (int, int, error) {
	body, _ := json.Marshal(map[string]string{"recipient": "crash harness", "passcode": passcode})
	req, err := http.NewRequestWithContext(ctx, "POST", d.URL+path, bytes.NewReader(body))
	if err != nil {
		return 0, 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := d.http.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer res.Body.Close()
	var r struct {
		RemainingAttempts int `json:"remainingAttempts"`
	}
	json.NewDecoder(res.Body).Decode(&r)
	return res.StatusCode, r.RemainingAttempts, nil
}

// check, after a restart: every acknowledged share is listed, serves its
// manifest to the right passcode, and has spent at least the wrong
// passcodes answered with a 401 (a crash may lose an attempt's refund,
// never grant an attempt back).
func (b *shareBook) check(t *testing.T, ctx context.Context, c *api.Client, d *daemon, st *stats) bool {
	t.Helper()
	list, err := c.Shares(ctx)
	if err != nil {
		t.Errorf("listing shares: %v", err)
		return false
	}
	byID := map[string]api.ShareInfo{}
	for _, s := range list {
		byID[s.ID] = s
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	lost, extra := 0, 0
	for _, id := range b.ids {
		s, ok := byID[id]
		if !ok {
			lost++
			continue
		}
		if w := b.wrong[id]; w > 0 && shareMaxAttempts-s.RemainingAttempts < w {
			extra++
			t.Errorf("a share: %d wrong passcodes answered, only %d spent", w, shareMaxAttempts-s.RemainingAttempts)
		}
	}
	// The last guarded share opens with the right passcode (each check
	// costs phrd a scrypt: one shows that the store serves).
	if len(b.guarded) > 0 {
		status, _, err := manifest(ctx, d, b.paths[b.guarded[len(b.guarded)-1]], sharePasscode)
		if err != nil || status != http.StatusOK {
			t.Errorf("the last acknowledged share after the restart: %d %v", status, err)
			return false
		}
	}
	st.ackChecks.Add(int64(len(b.ids)))
	if lost > 0 || extra > 0 {
		st.losses.Add(int64(lost + extra))
		t.Errorf("after the kill: %d acknowledged shares lost, %d with wrong passcodes given back", lost, extra)
		return false
	}
	return true
}
