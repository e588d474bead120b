// Package cluster runs three real phrd processes on one PostgreSQL
// database, with clients spread over them, and checks what they share
// there: the share store (links, passcode budgets, use counts,
// revocations). Vaults are not on the database yet (docs/operations.md),
// so the account lives on the first node; what the other nodes serve is
// the public side of its links.
//
// It needs PHR_TEST_DATABASE_URL (scripts/test.sh starts a throw-away
// PostgreSQL); without it the test skips, except under CI, where it fails.
package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/phr-project/phr/pkg/kv/kvtest"
	"github.com/phr-project/phr/pkg/server"
	"github.com/phr-project/phr/pkg/server/api"
	"github.com/phr-project/phr/pkg/share"
	"github.com/phr-project/phr/pkg/vault"
	"github.com/phr-project/phr/test/internal/phrdproc"
)

var phrdBin string

func TestMain(m *testing.M) {
	// The account's passphrase slot, made in this process, costs 2^10
	// scrypt; the binaries keep their own cost for everything else.
	vault.ScryptWorkFactor = 10
	os.Exit(func() int {
		dir, err := os.MkdirTemp("", "phr-cluster-bin-")
		if err != nil {
			fmt.Fprintln(os.Stderr, "cluster:", err)
			return 1
		}
		defer os.RemoveAll(dir)
		cmd := exec.Command("go", "build", "-o", dir, "github.com/phr-project/phr/cmd/phrd")
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "cluster: building phrd:", err)
			return 1
		}
		phrdBin = filepath.Join(dir, "phrd")
		return m.Run()
	}())
}

// node is one phrd process, started again over the same data after a
// stop or a kill.
type node struct {
	dataDir string
	env     []string
	*phrdproc.Daemon
}

func (n *node) start(t *testing.T) {
	t.Helper()
	d, err := phrdproc.Start(phrdBin, n.dataDir, n.env, "--shutdown-timeout", "10s")
	if err != nil {
		t.Fatal(err)
	}
	n.Daemon = d
}

func (n *node) stop(t *testing.T) {
	if err := n.Stop(); err != nil {
		t.Error(err)
	}
}

var hc = &http.Client{Timeout: time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}

// open POSTs to a manifest path on a node and returns the status.
func open(base, path, passcode string) (int, error) {
	body, _ := json.Marshal(map[string]string{"recipient": "cluster test", "passcode": passcode})
	res, err := hc.Post(base+path, "application/json", bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	var discard bytes.Buffer
	discard.ReadFrom(res.Body)
	return res.StatusCode, nil
}

// openSettled retries answers that spend nothing (busy: 429, 503), for
// up to two minutes (passcode checks cost a scrypt each, and a node
// checks at most two of one link at once).
func openSettled(base, path, passcode string) (int, error) {
	deadline := time.Now().Add(2 * time.Minute)
	for try := 0; ; try++ {
		status, err := open(base, path, passcode)
		if err != nil || (status != http.StatusTooManyRequests && status != http.StatusServiceUnavailable) || time.Now().After(deadline) {
			return status, err
		}
		time.Sleep(time.Duration(5+min(try, 100)) * time.Millisecond)
	}
}

func TestCluster(t *testing.T) {
	db := kvtest.URL(t)
	root := t.TempDir()
	keyFile := filepath.Join(root, "share.key")
	const user, pass = "cluster-owner", "a passphrase for the cluster test"
	nodes := make([]*node, 3)
	for i := range nodes {
		nodes[i] = &node{dataDir: filepath.Join(root, fmt.Sprint("node", i)), env: []string{"PHRD_DATABASE_URL=" + db, "PHRD_SHARE_KEY=" + keyFile}}
	}
	if _, err := server.CreateAccount(nodes[0].dataDir, user, pass); err != nil {
		t.Fatal(err)
	}
	// Start them together: they migrate the schema once, under its lock.
	var wg sync.WaitGroup
	for _, n := range nodes {
		wg.Add(1)
		go func() { defer wg.Done(); n.start(t) }()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	defer func() {
		for _, n := range nodes {
			if n.Daemon != nil && !n.Exited() {
				n.Kill()
			}
		}
	}()
	ctx := context.Background()
	owner := &api.Client{BaseURL: nodes[0].URL, HTTP: hc}
	if _, err := owner.Login(ctx, api.SessionRequest{Username: user, Passphrase: pass}); err != nil {
		t.Fatal(err)
	}
	jwe, err := share.EncryptFile(share.NewKey(), share.ContentTypeFHIR, []byte(`{"resourceType":"Bundle","type":"collection"}`), true)
	if err != nil {
		t.Fatal(err)
	}
	newShare := func(t *testing.T, passcode string, attempts int) (string, string) {
		t.Helper()
		sc, err := owner.CreateShare(ctx, api.CreateShareRequest{
			Files: []api.ShareFile{{ContentType: share.ContentTypeFHIR, JWE: jwe}}, ExpiresAt: time.Now().Add(time.Hour),
			Passcode: passcode, MaxAttempts: attempts,
		})
		if err != nil {
			t.Fatal(err)
		}
		u, err := url.Parse(sc.URL)
		if err != nil {
			t.Fatal(err)
		}
		return sc.ID, u.Path
	}
	info := func(t *testing.T, id string) api.ShareInfo {
		t.Helper()
		list, err := owner.Shares(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range list {
			if s.ID == id {
				return s
			}
		}
		t.Fatalf("share %s not listed", id)
		return api.ShareInfo{}
	}

	t.Run("a link made on one node opens on the others at once", func(t *testing.T) {
		_, path := newShare(t, "4321", 10)
		for i, n := range nodes[1:] {
			if status, err := openSettled(n.URL, path, "4321"); err != nil || status != http.StatusOK {
				t.Errorf("node %d: %d %v", i+1, status, err)
			}
		}
	})

	t.Run("200 wrong passcodes over three nodes spend the budget once", func(t *testing.T) {
		const budget, guesses = 40, 200
		id, path := newShare(t, "4321", budget)
		var wrong, locked, other atomic.Int64
		var wg sync.WaitGroup
		for i := range guesses {
			wg.Add(1)
			go func() {
				defer wg.Done()
				status, err := openSettled(nodes[i%3].URL, path, fmt.Sprintf("guess %d", i))
				switch {
				case err != nil:
					t.Errorf("guess %d: %v", i, err)
				case status == http.StatusUnauthorized:
					wrong.Add(1)
				case status == http.StatusNotFound:
					locked.Add(1)
				default:
					other.Add(1)
				}
			}()
		}
		wg.Wait()
		if wrong.Load() != budget || locked.Load() != guesses-budget || other.Load() != 0 {
			t.Errorf("%d answered wrong passcode, %d locked, %d other; want %d, %d, 0", wrong.Load(), locked.Load(), other.Load(), budget, guesses-budget)
		}
		if s := info(t, id); s.Status != "locked" || s.RemainingAttempts != 0 {
			t.Errorf("after the guesses: %s, %d remaining", s.Status, s.RemainingAttempts)
		}
		for i, n := range nodes {
			if status, _ := openSettled(n.URL, path, "4321"); status != http.StatusNotFound {
				t.Errorf("node %d opens a locked link with the right passcode: %d", i, status)
			}
		}
	})

	t.Run("a revocation on one node holds on all at once", func(t *testing.T) {
		id, path := newShare(t, "", 0)
		if status, _ := openSettled(nodes[2].URL, path, ""); status != http.StatusOK {
			t.Fatalf("before revoking: %d", status)
		}
		if _, err := owner.RevokeShare(ctx, id); err != nil {
			t.Fatal(err)
		}
		for i, n := range nodes {
			if status, _ := openSettled(n.URL, path, ""); status != http.StatusNotFound {
				t.Errorf("node %d serves a revoked link: %d", i, status)
			}
		}
	})

	// Links opened by clients on all nodes while node 1 is SIGKILLed:
	// nodes 0 and 2 keep serving, and every acknowledged open is counted.
	var paths []string
	var ids []string
	acked := map[string]*atomic.Int64{}
	t.Run("one node killed under load", func(t *testing.T) {
		for range 12 {
			id, path := newShare(t, "", 0)
			ids, paths = append(ids, id), append(paths, path)
			acked[id] = &atomic.Int64{}
		}
		stop := make(chan struct{})
		var afterKill [3]atomic.Int64
		var killed atomic.Bool
		var wg sync.WaitGroup
		for c := range 24 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					k := (c + i) % len(paths)
					n := (c + i) % 3
					status, err := open(nodes[n].URL, paths[k], "")
					if n == 1 && (err != nil || killed.Load()) {
						continue // the killed node: refused or cut off
					}
					if err != nil || status != http.StatusOK {
						t.Errorf("node %d: %d %v", n, status, err)
						return
					}
					acked[ids[k]].Add(1)
					if killed.Load() {
						afterKill[n].Add(1)
					}
				}
			}()
		}
		time.Sleep(700 * time.Millisecond)
		nodes[1].Kill()
		killed.Store(true)
		time.Sleep(700 * time.Millisecond)
		close(stop)
		wg.Wait()
		if afterKill[0].Load() == 0 || afterKill[2].Load() == 0 {
			t.Errorf("after the kill: node 0 served %d, node 2 served %d", afterKill[0].Load(), afterKill[2].Load())
		}
		for _, id := range ids {
			// A killed node may have counted an open it never answered:
			// at least the acknowledged ones, never fewer.
			if s := info(t, id); int64(s.Uses) < acked[id].Load() {
				t.Errorf("a link counts %d uses, %d were acknowledged", s.Uses, acked[id].Load())
			}
		}
		nodes[1].start(t)
		if status, _ := openSettled(nodes[1].URL, paths[0], ""); status != http.StatusOK {
			t.Errorf("the restarted node: %d", status)
		}
		acked[ids[0]].Add(1)
	})

	t.Run("all nodes restarted: nothing lost", func(t *testing.T) {
		before, err := owner.Shares(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range nodes {
			n.stop(t)
		}
		for _, n := range nodes {
			n.start(t)
		}
		owner = &api.Client{BaseURL: nodes[0].URL, HTTP: hc}
		if _, err := owner.Login(ctx, api.SessionRequest{Username: user, Passphrase: pass}); err != nil {
			t.Fatal(err)
		}
		after, err := owner.Shares(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(after) != len(before) {
			t.Fatalf("%d shares after the restart, %d before", len(after), len(before))
		}
		for i := range before {
			b, a := before[i], after[i]
			if a.ID != b.ID || a.Uses != b.Uses || a.Status != b.Status || a.RemainingAttempts != b.RemainingAttempts {
				t.Errorf("share changed across the restart: %+v, was %+v", a, b)
			}
		}
		for i, n := range nodes {
			if status, _ := openSettled(n.URL, paths[1], ""); status != http.StatusOK {
				t.Errorf("node %d after the restart: %d", i, status)
			}
		}
	})
	if t.Failed() {
		for i, n := range nodes {
			if n.Daemon != nil {
				t.Logf("node %d log:\n%s", i, n.Log())
			}
		}
	}
}
