// Package cluster runs three real phrd processes on one PostgreSQL
// database, with clients spread over them, and checks what they share
// there: the accounts' vaults (records written on one node read on the
// others, concurrent writers to one account, a node killed under load),
// the sessions, and the share store (links, passcode budgets, use counts,
// revocations). Each node has a data directory of its own with the same
// server.key, as docs/operations.md has an operator set them up.
//
// It needs PHR_TEST_DATABASE_URL (scripts/test.sh starts a throw-away
// PostgreSQL); without it the test skips, except under CI, where it fails.
package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/phr-project/phr/pkg/kv"
	"github.com/phr-project/phr/pkg/kv/kvtest"
	"github.com/phr-project/phr/pkg/record"
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
	// Every node gets the same server.key (it names the accounts and
	// keys the session store).
	serverKey := []byte(strings.Repeat("c3", 32) + "\n")
	for _, n := range nodes {
		if err := os.MkdirAll(n.dataDir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(n.dataDir, "server.key"), serverKey, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// The account is made on the host, in the database (phrd account
	// create --database-url).
	if _, err := (server.Host{DataDir: nodes[0].dataDir, DatabaseURL: db}).CreateAccount(context.Background(), user, pass); err != nil {
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

	// The owner's session on node i: any node serves it (the sessions
	// and the vault are in the database).
	on := func(i int) *api.Client { return &api.Client{BaseURL: nodes[i].URL, Token: owner.Token, HTTP: hc} }
	var ackMu sync.Mutex
	written := map[string]bool{} // every record a node answered 201 for

	t.Run("a record written on one node is read on the others at once", func(t *testing.T) {
		rec, err := on(0).AddRecord(ctx, api.LogEntry{Log: "med", Name: "Metformin", Dose: "500 mg"})
		if err != nil {
			t.Fatal(err)
		}
		written[rec.ID] = true
		var wg sync.WaitGroup
		for i := 1; i < 3; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var got record.Record
				h, err := on(i).Do(ctx, "GET", api.Prefix+"/records/"+rec.ID, nil, &got)
				if err != nil || got.ID != rec.ID || h.Get("ETag") != api.ETag(rec.Version) {
					t.Errorf("node %d: GET %s: %v, ETag %q (node 0 gave version %d)", i, rec.ID, err, h.Get("ETag"), rec.Version)
				}
				if ids := listed(t, on(i)); ids[rec.ID] != 1 {
					t.Errorf("node %d lists the record %d times", i, ids[rec.ID])
				}
				if ch := changes(t, on(i)); len(ch) == 0 || ch[len(ch)-1].ID != rec.ID {
					t.Errorf("node %d: the record is not the last change", i)
				}
			}()
		}
		wg.Wait()
	})

	// addSettled adds a record, again while the node is busy (503, 429:
	// nothing was written); it returns the error of any other answer.
	addSettled := func(c *api.Client, name string) (record.Record, error) {
		for try := 0; ; try++ {
			rec, err := c.AddRecord(ctx, api.LogEntry{Log: "med", Name: name, Dose: "1 mg"})
			var se *api.StatusError
			if errors.As(err, &se) && (se.Status == http.StatusServiceUnavailable || se.Status == http.StatusTooManyRequests) && try < 200 {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			return rec, err
		}
	}

	t.Run("100 concurrent writers to one account over three nodes lose nothing", func(t *testing.T) {
		const writers = 100
		start := make(chan struct{})
		var wg sync.WaitGroup
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				rec, err := addSettled(on(w%3), fmt.Sprintf("Writer %d", w))
				if err != nil {
					t.Errorf("writer %d on node %d: %v", w, w%3, err)
					return
				}
				ackMu.Lock()
				if written[rec.ID] {
					t.Errorf("writer %d got the ID %s of another write", w, rec.ID)
				}
				written[rec.ID] = true
				ackMu.Unlock()
			}()
		}
		close(start)
		wg.Wait()
		checkAccount(t, nodes, on, db, pass, written)
	})

	t.Run("one node killed while writing: every acknowledged write is there", func(t *testing.T) {
		stop := make(chan struct{})
		var killed atomic.Bool
		var afterKill [3]atomic.Int64
		var wg sync.WaitGroup
		for w := range 30 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					n := (w + i) % 3
					rec, err := addSettled(on(n), fmt.Sprintf("Killer %d.%d", w, i))
					if n == 1 && (err != nil || killed.Load()) {
						continue // the killed node: refused or cut off
					}
					if err != nil {
						t.Errorf("node %d: %v", n, err)
						return
					}
					ackMu.Lock()
					written[rec.ID] = true
					ackMu.Unlock()
					if killed.Load() {
						afterKill[n].Add(1)
					}
				}
			}()
		}
		time.Sleep(time.Second)
		nodes[1].Kill()
		killed.Store(true)
		time.Sleep(time.Second)
		close(stop)
		wg.Wait()
		if afterKill[0].Load() == 0 || afterKill[2].Load() == 0 {
			t.Errorf("after the kill: node 0 wrote %d, node 2 wrote %d", afterKill[0].Load(), afterKill[2].Load())
		}
		t.Logf("%d records acknowledged in all", len(written))
		nodes[1].start(t)
		checkAccount(t, nodes, on, db, pass, written)
	})

	t.Run("one file imported on three nodes at once is stored once", func(t *testing.T) {
		// A real export (Synthea); the account's Patient is another
		// person's, so the upload accepts the mismatch (DECISIONS 7).
		data, err := os.ReadFile("../../../shared/testdata/fhir/synthea-r4/Liz_Conn_27c911c6-f045-4ffa-af5d-6eba57ac94b2.json")
		if err != nil {
			t.Fatal(err)
		}
		before := len(listed(t, on(0)))
		reports := make([]api.ImportReport, 3)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range nodes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				res, err := upload(ctx, on(i), "liz.json", data)
				if err != nil || len(res.Files) != 1 || res.Files[0].Error != "" {
					t.Errorf("node %d: %v %+v", i, err, res)
					return
				}
				reports[i] = *res.Files[0]
			}()
		}
		close(start)
		wg.Wait()
		added, most := 0, 0
		for _, r := range reports {
			added += r.Added
			most = max(most, r.Added)
		}
		t.Logf("added per node %d, %d, %d; duplicates %d, %d, %d", reports[0].Added, reports[1].Added, reports[2].Added, reports[0].Duplicates, reports[1].Duplicates, reports[2].Duplicates)
		after := len(listed(t, on(1)))
		if most == 0 || added != most || after-before != most {
			t.Errorf("added per node %d, %d, %d; the listing grew by %d", reports[0].Added, reports[1].Added, reports[2].Added, after-before)
		}
		for i, r := range reports {
			if r.Added == 0 && r.Duplicates == 0 {
				t.Errorf("node %d found neither new records nor duplicates: %+v", i, r)
			}
		}
		checkAccount(t, nodes, on, db, pass, written)
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
		// The session made before the restart serves on every node.
		owner.BaseURL = nodes[0].URL
		for i := range nodes {
			if _, err := on(i).Session(ctx); err != nil {
				t.Errorf("node %d after the restart: the session: %v", i, err)
			}
		}
		checkAccount(t, nodes, on, db, pass, written)
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

// listed pages through the records listing and counts each ID.
func listed(t *testing.T, c *api.Client) map[string]int {
	t.Helper()
	ids := map[string]int{}
	q := url.Values{"limit": {"1000"}}
	for {
		page, err := c.Records(context.Background(), q)
		if err != nil {
			t.Fatalf("listing on %s: %v", c.BaseURL, err)
		}
		for _, r := range page.Records {
			ids[r.ID]++
		}
		if page.NextCursor == "" {
			return ids
		}
		q.Set("cursor", page.NextCursor)
	}
}

// changes pages through the changes feed from the start.
func changes(t *testing.T, c *api.Client) []api.Change {
	t.Helper()
	var out []api.Change
	var since uint64
	for {
		page, err := c.Changes(context.Background(), since, 500)
		if err != nil {
			t.Fatalf("changes on %s: %v", c.BaseURL, err)
		}
		out = append(out, page.Changes...)
		since = page.Next
		if !page.More {
			return out
		}
	}
}

// checkAccount checks the account on every node against the writes the
// nodes acknowledged: each listed exactly once; the changes feed the
// same on every node, in one order (sequences rising, none missing,
// each record once) and holding every write; and the vault, opened in
// the database with the passphrase, passes Check with no problem.
func checkAccount(t *testing.T, nodes []*node, on func(int) *api.Client, db, pass string, written map[string]bool) {
	t.Helper()
	var first []api.Change
	for i := range nodes {
		ids := listed(t, on(i))
		for id := range written {
			if ids[id] != 1 {
				t.Errorf("node %d lists acknowledged record %s %d times", i, id, ids[id])
			}
		}
		for id, n := range ids {
			if n != 1 {
				t.Errorf("node %d lists record %s %d times", i, id, n)
			}
		}
		ch := changes(t, on(i))
		seen := map[string]bool{}
		for j, c := range ch {
			if j > 0 && c.Seq != ch[j-1].Seq+1 {
				t.Errorf("node %d: change %d has sequence %d after %d", i, j, c.Seq, ch[j-1].Seq)
			}
			if seen[c.ID] {
				t.Errorf("node %d: record %s twice in the changes feed", i, c.ID)
			}
			seen[c.ID] = true
		}
		for id := range written {
			if !seen[id] {
				t.Errorf("node %d: acknowledged record %s not in the changes feed", i, id)
			}
		}
		if i == 0 {
			first = ch
			continue
		}
		if len(ch) != len(first) {
			t.Errorf("node %d's changes feed has %d changes, node 0's %d", i, len(ch), len(first))
			continue
		}
		for j := range ch {
			if ch[j].Seq != first[j].Seq || ch[j].ID != first[j].ID {
				t.Errorf("node %d's change %d is %d %s, node 0's %d %s", i, j, ch[j].Seq, ch[j].ID, first[j].Seq, first[j].ID)
				break
			}
		}
	}

	pg, err := kv.OpenPostgres(context.Background(), db, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close()
	names, err := pg.Namespaces(context.Background(), "vault/")
	if err != nil || len(names) != 1 {
		t.Fatalf("vault namespaces: %v %v", names, err)
	}
	v, err := vault.OpenIn(pg.Namespace(names[0]), vault.Passphrase(pass), &vault.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	rep, err := v.Check(false)
	if err != nil || len(rep.Problems) != 0 {
		t.Errorf("check: %v %+v", err, rep)
	}
	if rep != nil && rep.Records < len(written) {
		t.Errorf("check counts %d records, %d were acknowledged", rep.Records, len(written))
	}
}

// upload POSTs a file to /api/v1/imports, accepting a Patient other than
// the account's.
func upload(ctx context.Context, c *api.Client, name string, data []byte) (api.ImportResult, error) {
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	w.WriteField("accept_patient_mismatch", "true")
	fw, err := w.CreateFormFile("file", name)
	if err != nil {
		return api.ImportResult{}, err
	}
	fw.Write(data)
	if err := w.Close(); err != nil {
		return api.ImportResult{}, err
	}
	req, err := http.NewRequestWithContext(ctx, "POST", c.BaseURL+api.Prefix+"/imports", &buf)
	if err != nil {
		return api.ImportResult{}, err
	}
	req.Header.Set("Content-Type", w.FormDataContentType())
	req.Header.Set("Authorization", "Bearer "+c.Token)
	res, err := hc.Do(req)
	if err != nil {
		return api.ImportResult{}, err
	}
	defer res.Body.Close()
	var out api.ImportResult
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil {
		return out, fmt.Errorf("status %d: %w", res.StatusCode, err)
	}
	if res.StatusCode/100 != 2 {
		return out, fmt.Errorf("status %d", res.StatusCode)
	}
	return out, nil
}
