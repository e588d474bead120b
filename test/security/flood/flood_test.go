// Package flood checks what a flood of share passcode requests costs a
// real phrd process: every passcode check is an scrypt of 32 MiB, and
// before they were gated 80 concurrent right-passcode requests grew phrd
// by 1.9 GB.
package flood

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/phr-project/phr/pkg/server/api"
	"github.com/phr-project/phr/pkg/share"
	"github.com/phr-project/phr/pkg/vault"
	"github.com/phr-project/phr/test/internal/phrdproc"
	"github.com/phr-project/phr/test/security/internal/e2e"
)

var phrdBin string

func TestMain(m *testing.M) {
	e2e.Main(m, "github.com/phr-project/phr/cmd/phrd", &phrdBin)
}

// startPhrd runs the phrd binary over dataDir on a free port of
// 127.0.0.1 with production key derivation costs, and waits until it
// listens; the test's cleanup stops it.
func startPhrd(t *testing.T, dataDir string, args ...string) *phrdproc.Daemon {
	t.Helper()
	d, err := phrdproc.Start(phrdBin, dataDir, nil, args...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Stop() })
	return d
}

// addDevice adds a device key slot to the one account vault under data
// and returns its credential.
func addDevice(t *testing.T, data, passphrase string) string {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(data, "vaults", "*.phr"))
	if err != nil || len(paths) != 1 {
		t.Fatalf("vaults: %v %v", paths, err)
	}
	v, err := vault.Open(paths[0], vault.Passphrase(passphrase), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.AddSlot(vault.SlotSpec{Kind: vault.SlotDevice, Label: "flood test", Recipients: []age.Recipient{id.Recipient()}}); err != nil {
		t.Fatal(err)
	}
	return id.String()
}

// procKiB reads a "VmXxx:   123 kB" line of /proc/PID/status.
func procKiB(t *testing.T, pid int, field string) int64 {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

// TestPasscodeFloodMemory fires 100 concurrent manifest requests with the
// right passcode at a real phrd (production scrypt costs: 32 MiB per
// passcode check), 10 at each of 10 shares, and measures the growth of
// the process's resident memory: the peak (VmHWM of /proc/PID/status,
// reset just before the flood by writing 5 to /proc/PID/clear_refs) minus
// the resident size (VmRSS) just before. It must stay under 200 MB: the
// checks run under phrd's one bound on key derivations (here 2 at once,
// as --scrypt-concurrency 2), at most 2 per share in flight; the others
// are refused with 429 (too many for one link) or 503 (no slot in time),
// both with Retry-After, and nothing of theirs is spent.
func TestPasscodeFloodMemory(t *testing.T) {
	if _, err := os.Stat("/proc/self/clear_refs"); err != nil {
		t.Skip("needs Linux's /proc/PID/clear_refs to measure peak memory")
	}
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	// The account is made by a separate process, so its passphrase's
	// scrypt (256 MiB) is not in the daemon's memory.
	create := exec.Command(phrdBin, "account", "create", "alice", "--data", data)
	create.Env = []string{"HOME=" + dir, "PHRD_PASSPHRASE=alice's long passphrase"}
	if out, err := create.CombinedOutput(); err != nil {
		t.Fatalf("phrd account create: %v\n%s", err, out)
	}
	// A device credential, added here, logs the daemon in without a
	// passphrase scrypt (256 MiB) that would stay in its memory.
	device := addDevice(t, data, "alice's long passphrase")
	d := startPhrd(t, data, "--scrypt-concurrency", "2")
	ctx := context.Background()
	c := &api.Client{BaseURL: d.URL}
	if _, err := c.Login(ctx, api.SessionRequest{Username: "alice", DeviceCredential: device}); err != nil {
		t.Fatal(err)
	}
	const shares, perShare = 10, 10
	var ids []string
	for range shares {
		cr, err := c.CreateShare(ctx, api.CreateShareRequest{Select: &api.ShareSelect{Summary: true}, ExpiresAt: time.Now().Add(time.Hour), Passcode: "right passcode 4711"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := share.Decode(cr.Link); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, d.URL+"/shl/"+cr.ID)
	}
	pid := d.Pid()
	// Let the login's garbage go, so the baseline is the daemon at rest.
	time.Sleep(2 * time.Second)
	if err := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0); err != nil {
		t.Skipf("cannot reset the peak resident size: %v", err)
	}
	before := procKiB(t, pid, "VmRSS")

	hc := &http.Client{Timeout: 2 * time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: shares * perShare}}
	defer hc.CloseIdleConnections()
	var wg sync.WaitGroup
	var mu sync.Mutex
	counts := map[int]int{}
	start := make(chan struct{})
	for i := range shares * perShare {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			res, err := hc.Post(ids[i%shares], "application/json", strings.NewReader(`{"recipient":"Dr. Flood","passcode":"right passcode 4711"}`))
			if err != nil {
				t.Error(err)
				return
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if (res.StatusCode == http.StatusTooManyRequests || res.StatusCode == http.StatusServiceUnavailable) && res.Header.Get("Retry-After") == "" {
				t.Errorf("%d without Retry-After", res.StatusCode)
			}
			mu.Lock()
			counts[res.StatusCode]++
			mu.Unlock()
		}()
	}
	began := time.Now()
	close(start)
	wg.Wait()
	took := time.Since(began)
	peak := procKiB(t, pid, "VmHWM")
	growth := (peak - before) * 1024
	t.Logf("100 concurrent right-passcode requests (10 shares): answers %v in %v; resident %d MiB before, peak %d MiB: growth %d MiB",
		counts, took.Round(time.Millisecond), before/1024, peak/1024, growth>>20)
	for st := range counts {
		switch st {
		case http.StatusOK, http.StatusTooManyRequests, http.StatusServiceUnavailable:
		default:
			t.Errorf("answer %d", st)
		}
	}
	if counts[http.StatusOK] == 0 {
		t.Error("no request was served: the link must keep working under a flood")
	}
	if growth >= 200e6 {
		t.Errorf("phrd grew by %d MB under the flood, want under 200 MB", growth/1e6)
	}
	// Refused requests spent nothing: every share still has its 10 attempts.
	list, err := c.Shares(ctx)
	if err != nil {
		t.Fatal(err)
	}
	served := 0
	for _, sh := range list {
		served += sh.Uses
		if sh.RemainingAttempts != 10 {
			t.Errorf("share lost attempts to the flood: %+v", sh)
		}
	}
	if served != counts[http.StatusOK] {
		t.Errorf("%d uses counted for %d answers 200", served, counts[http.StatusOK])
	}
	if strings.Contains(d.Log(), `"status":500`) {
		t.Errorf("a 500 in the log:\n%s", d.Log())
	}
}
