package sharestore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/phr-project/phr/pkg/kv"
	"github.com/phr-project/phr/pkg/kv/kvtest"
	"github.com/phr-project/phr/pkg/share"
	bolt "go.etcd.io/bbolt"
)

var t0 = time.Date(2030, 5, 1, 12, 0, 0, 0, time.UTC)

var ctx = context.Background()

func TestMain(m *testing.M) {
	restore := share.SetPasscodeCostForTesting(4)
	code := m.Run()
	restore()
	os.Exit(code)
}

func testSecret() []byte { return bytes.Repeat([]byte{7}, SecretSize) }

// newStore opens a store in a temporary directory and checks its
// consistency at cleanup. Under TestOnPostgres it opens one in a fresh
// PostgreSQL schema instead, and the path it returns is "postgres:" and
// the schema's URL.
func newStore(t testing.TB, opts *Options) (*Store, string) {
	t.Helper()
	o := Options{Secret: testSecret(), NoSync: true}
	if opts != nil {
		o = *opts
		if o.Secret == nil {
			o.Secret = testSecret()
		}
		o.NoSync = true
	}
	var s *Store
	var err error
	path := filepath.Join(t.TempDir(), "shares.db")
	if strings.HasPrefix(t.Name(), "TestOnPostgres/") {
		var p *kv.Postgres
		p, path = kvtest.Open(t, nil)
		path = "postgres:" + path
		s, err = OpenDB(p.Namespace("shares"), &o)
	} else {
		s, err = Open(path, &o)
	}
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Check(); err != nil && !errors.Is(err, ErrClosed) {
			t.Errorf("consistency check: %v", err)
		}
		s.Close()
	})
	return s, path
}

func jwe(t testing.TB, plaintext string) string {
	t.Helper()
	j, err := share.EncryptFile(share.NewKey(), share.ContentTypeFHIR, []byte(plaintext), true)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

func spec(t testing.TB, mod func(*ShareSpec)) ShareSpec {
	sp := ShareSpec{
		Owner:   "owner-a",
		Files:   []FileSpec{{ContentType: share.ContentTypeFHIR, JWE: jwe(t, `{"resourceType":"Bundle"}`)}},
		Label:   "For Dr. Who",
		Expires: t0.Add(24 * time.Hour),
		Now:     t0,
	}
	if mod != nil {
		mod(&sp)
	}
	return sp
}

func create(t testing.TB, s *Store, mod func(*ShareSpec)) Share {
	t.Helper()
	sh, err := s.Create(ctx, spec(t, mod))
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	return sh
}

func TestCreateGetList(t *testing.T) {
	s, _ := newStore(t, nil)
	a1 := create(t, s, nil)
	a2 := create(t, s, func(sp *ShareSpec) { sp.Now = t0.Add(time.Minute); sp.Passcode = "1234"; sp.Flag = "L" })
	b1 := create(t, s, func(sp *ShareSpec) { sp.Owner = "owner-b"; sp.Flag = "U" })

	if !share.ValidManifestID(a1.ID) || a1.ID == a2.ID {
		t.Fatalf("ids %q %q", a1.ID, a2.ID)
	}
	if a2.Flag != "LP" || !a2.Passcode || a2.MaxAttempts != DefaultMaxAttempts || a2.RemainingAttempts != DefaultMaxAttempts {
		t.Errorf("passcode share: %+v", a2)
	}
	if b1.Flag != "U" || a1.Flag != "" {
		t.Errorf("flags %q %q", b1.Flag, a1.Flag)
	}
	got, err := s.Get(a1.ID)
	if err != nil || got.Label != "For Dr. Who" || len(got.Files) != 1 || got.Files[0].ContentType != share.ContentTypeFHIR {
		t.Fatalf("Get: %+v, %v", got, err)
	}
	if got.Status(t0) != StatusActive {
		t.Errorf("status %q", got.Status(t0))
	}
	list, err := s.List("owner-a")
	if err != nil || len(list) != 2 || list[0].ID != a2.ID || list[1].ID != a1.ID {
		t.Fatalf("List(a) = %+v, %v", list, err)
	}
	list, err = s.List("owner-b")
	if err != nil || len(list) != 1 || list[0].ID != b1.ID {
		t.Fatalf("List(b) = %+v, %v", list, err)
	}
	if list, _ := s.List("nobody"); len(list) != 0 {
		t.Errorf("List(nobody) = %v", list)
	}
	if _, err := s.Get(share.NewManifestID()); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get(unknown): %v", err)
	}
	j, err := s.ReadFile(a1.ID, a1.Files[0].ID)
	if err != nil || len(j) != a1.Files[0].Length {
		t.Errorf("ReadFile: %d bytes, %v", len(j), err)
	}
}

func TestCreateInvalid(t *testing.T) {
	s, _ := newStore(t, nil)
	plain := `{"resourceType":"Bundle","type":"collection"}`
	hdr := func(h string) string { // a JWE with a chosen header
		j := jwe(t, "x")
		return strings.Replace(j, strings.Split(j, ".")[0], share.EncodeKey([]byte(h)), 1)
	}
	cases := map[string]func(*ShareSpec){
		"no owner":         func(sp *ShareSpec) { sp.Owner = "" },
		"no files":         func(sp *ShareSpec) { sp.Files = nil },
		"plaintext file":   func(sp *ShareSpec) { sp.Files[0].JWE = plain },
		"four segments":    func(sp *ShareSpec) { sp.Files[0].JWE = "a..b.c" },
		"cty mismatch":     func(sp *ShareSpec) { sp.Files[0].ContentType = share.ContentTypeSHC },
		"bad content type": func(sp *ShareSpec) { sp.Files[0].ContentType = "text/html" },
		"alg not dir": func(sp *ShareSpec) {
			sp.Files[0].JWE = hdr(`{"alg":"A256KW","enc":"A256GCM","cty":"application/fhir+json"}`)
		},
		"zip not DEF": func(sp *ShareSpec) {
			sp.Files[0].JWE = hdr(`{"alg":"dir","enc":"A256GCM","cty":"application/fhir+json","zip":"GZ"}`)
		},
		"U with passcode":    func(sp *ShareSpec) { sp.Flag = "U"; sp.Passcode = "1" },
		"U with two files":   func(sp *ShareSpec) { sp.Flag = "U"; sp.Files = append(sp.Files, sp.Files[0]) },
		"P without passcode": func(sp *ShareSpec) { sp.Flag = "P" },
		"unknown flag":       func(sp *ShareSpec) { sp.Flag = "X" },
		"expired":            func(sp *ShareSpec) { sp.Expires = t0 },
		"no expiry":          func(sp *ShareSpec) { sp.Expires = time.Time{} },
		"label control":      func(sp *ShareSpec) { sp.Label = "a\x1b[2Jb" },
		"label too long":     func(sp *ShareSpec) { sp.Label = strings.Repeat("é", 81) },
		"negative max uses":  func(sp *ShareSpec) { sp.MaxUses = -1 },
		"too many attempts":  func(sp *ShareSpec) { sp.Passcode = "1"; sp.MaxAttempts = MaxAttemptsLimit + 1 },
		"negative attempts":  func(sp *ShareSpec) { sp.Passcode = "1"; sp.MaxAttempts = -1 },
		"too many files":     func(sp *ShareSpec) { sp.Files = make([]FileSpec, MaxFiles+1) },
		"label not utf8":     func(sp *ShareSpec) { sp.Label = "\xff" },
		"passcode too long":  func(sp *ShareSpec) { sp.Passcode = strings.Repeat("p", 1025) },
		"crit header present": func(sp *ShareSpec) {
			sp.Files[0].JWE = hdr(`{"alg":"dir","enc":"A256GCM","cty":"application/fhir+json","crit":["x"]}`)
		},
	}
	for name, mod := range cases {
		t.Run(name, func(t *testing.T) {
			sp := spec(t, mod)
			_, err := s.Create(ctx, sp)
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Create: %v, want ErrInvalid", err)
			}
			if sp.Passcode != "" && strings.Contains(err.Error(), sp.Passcode) && len(sp.Passcode) > 3 {
				t.Errorf("error leaks the passcode")
			}
		})
	}
	if list, _ := s.List("owner-a"); len(list) != 0 {
		t.Errorf("invalid specs stored %d shares", len(list))
	}
}

func TestAccessOpenShare(t *testing.T) {
	s, _ := newStore(t, nil)
	sh := create(t, s, nil)
	got, err := s.Access(ctx, sh.ID, "  Dr. Alice\tJones  ", "", t0.Add(time.Minute))
	if err != nil {
		t.Fatalf("Access: %v", err)
	}
	if got.Uses != 1 || got.ID != sh.ID || len(got.Files) != 1 {
		t.Errorf("granted %+v", got)
	}
	// A passcode sent to a share without one is ignored.
	if _, err := s.Access(ctx, sh.ID, "Bob", "whatever", t0.Add(2*time.Minute)); err != nil {
		t.Fatalf("Access with needless passcode: %v", err)
	}
	log, err := s.Log("owner-a", sh.ID)
	if err != nil || len(log) != 2 {
		t.Fatalf("Log: %v, %v", log, err)
	}
	if log[0].Recipient != "Dr. Alice Jones" || log[0].Outcome != OutcomeOK || !log[0].Time.Equal(t0.Add(time.Minute)) {
		t.Errorf("log[0] = %+v", log[0])
	}
	if _, err := s.Log("owner-b", sh.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("Log by another owner: %v", err)
	}
}

func TestAccessUnknown(t *testing.T) {
	s, _ := newStore(t, nil)
	_, err := s.Access(ctx, share.NewManifestID(), "x", "", t0)
	var ue *UnavailableError
	if !errors.Is(err, ErrNotFound) || errors.As(err, &ue) {
		t.Fatalf("unknown id: %v", err)
	}
	if _, err := s.Access(ctx, "not-an-id", "x", "", t0); !errors.Is(err, ErrNotFound) {
		t.Fatalf("malformed id: %v", err)
	}
}

// wantUnavailable checks err is a refusal for reason, that matches
// ErrNotFound.
func wantUnavailable(t *testing.T, err error, reason string) {
	t.Helper()
	var ue *UnavailableError
	if !errors.As(err, &ue) || ue.Reason != reason || !errors.Is(err, ErrNotFound) {
		t.Fatalf("got %v, want unavailable (%s)", err, reason)
	}
}

func lastOutcome(t *testing.T, s *Store, id string) string {
	t.Helper()
	log, err := s.Log("owner-a", id)
	if err != nil || len(log) == 0 {
		t.Fatalf("Log: %v, %v", log, err)
	}
	return log[len(log)-1].Outcome
}

func TestAccessExpired(t *testing.T) {
	s, _ := newStore(t, nil)
	sh := create(t, s, nil)
	if _, err := s.Access(ctx, sh.ID, "r", "", sh.Expires.Add(-time.Second)); err != nil {
		t.Fatalf("just before expiry: %v", err)
	}
	_, err := s.Access(ctx, sh.ID, "r", "", sh.Expires)
	wantUnavailable(t, err, OutcomeExpired)
	if o := lastOutcome(t, s, sh.ID); o != OutcomeExpired {
		t.Errorf("logged %q", o)
	}
}

func TestRevoke(t *testing.T) {
	s, _ := newStore(t, nil)
	sh := create(t, s, nil)
	if _, err := s.Revoke("owner-b", sh.ID, t0); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Revoke by another owner: %v", err)
	}
	if _, err := s.Access(ctx, sh.ID, "r", "", t0); err != nil {
		t.Fatalf("still active after a foreign revoke: %v", err)
	}
	got, err := s.Revoke("owner-a", sh.ID, t0.Add(time.Minute))
	if err != nil || got.RevokedAt.IsZero() || !got.Purged || got.Status(t0) != OutcomeRevoked {
		t.Fatalf("Revoke: %+v, %v", got, err)
	}
	if _, err := s.Revoke("owner-a", sh.ID, t0.Add(2*time.Minute)); err != nil {
		t.Fatalf("second Revoke: %v", err)
	}
	_, err = s.Access(ctx, sh.ID, "r", "", t0.Add(3*time.Minute))
	wantUnavailable(t, err, OutcomeRevoked)
	if _, err := s.ReadFile(sh.ID, sh.Files[0].ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("ciphertext survives revocation: %v", err)
	}
	if o := lastOutcome(t, s, sh.ID); o != OutcomeRevoked {
		t.Errorf("logged %q", o)
	}
	if _, err := s.Revoke("owner-a", share.NewManifestID(), t0); !errors.Is(err, ErrNotFound) {
		t.Errorf("Revoke(unknown): %v", err)
	}
}

func TestMaxUses(t *testing.T) {
	s, _ := newStore(t, nil)
	sh := create(t, s, func(sp *ShareSpec) { sp.MaxUses = 2 })
	for i := range 2 {
		if _, err := s.Access(ctx, sh.ID, "r", "", t0); err != nil {
			t.Fatalf("use %d: %v", i+1, err)
		}
	}
	_, err := s.Access(ctx, sh.ID, "r", "", t0)
	wantUnavailable(t, err, OutcomeUsedUp)
	if o := lastOutcome(t, s, sh.ID); o != OutcomeUsedUp {
		t.Errorf("logged %q", o)
	}
}

func TestPasscode(t *testing.T) {
	s, _ := newStore(t, nil)
	sh := create(t, s, func(sp *ShareSpec) { sp.Passcode = "correct horse" })
	for want := 9; want >= 8; want-- {
		_, err := s.Access(ctx, sh.ID, "r", "wrong", t0)
		var pe *PasscodeError
		if !errors.As(err, &pe) || pe.Remaining != want {
			t.Fatalf("wrong passcode: %v, want %d remaining", err, want)
		}
		if strings.Contains(err.Error(), "wrong\"") || strings.Contains(err.Error(), "correct") {
			t.Errorf("error leaks a passcode: %v", err)
		}
	}
	// A missing passcode spends nothing.
	_, err := s.Access(ctx, sh.ID, "r", "", t0)
	var pe *PasscodeError
	if !errors.As(err, &pe) || pe.Remaining != 8 {
		t.Fatalf("missing passcode: %v", err)
	}
	got, err := s.Access(ctx, sh.ID, "r", "correct horse", t0)
	if err != nil {
		t.Fatalf("right passcode: %v", err)
	}
	if got.RemainingAttempts != 8 || got.Uses != 1 {
		t.Errorf("after right passcode: remaining %d uses %d", got.RemainingAttempts, got.Uses)
	}
	log, _ := s.Log("owner-a", sh.ID)
	outcomes := []string{}
	for _, e := range log {
		outcomes = append(outcomes, e.Outcome)
	}
	if fmt.Sprint(outcomes) != "[wrong-passcode wrong-passcode ok]" {
		t.Errorf("log outcomes %v", outcomes)
	}
}

func TestLockout(t *testing.T) {
	s, _ := newStore(t, nil)
	sh := create(t, s, func(sp *ShareSpec) { sp.Passcode = "1234"; sp.MaxAttempts = 3 })
	for want := 2; want >= 0; want-- {
		_, err := s.Access(ctx, sh.ID, "r", "0000", t0)
		var pe *PasscodeError
		if !errors.As(err, &pe) || pe.Remaining != want {
			t.Fatalf("wrong passcode: %v, want %d remaining", err, want)
		}
	}
	_, err := s.Access(ctx, sh.ID, "r", "1234", t0)
	wantUnavailable(t, err, OutcomeLocked)
	_, err = s.Access(ctx, sh.ID, "r", "", t0)
	wantUnavailable(t, err, OutcomeLocked)
	if got, _ := s.Get(sh.ID); got.Status(t0) != OutcomeLocked || got.RemainingAttempts != 0 {
		t.Errorf("status %q remaining %d", got.Status(t0), got.RemainingAttempts)
	}
}

// guessAtOnce makes n wrong guesses at once (guess(i) is the i-th) and
// counts the answers: wrong passcode, and the remaining attempts they
// reported, or locked. Any other answer fails the test.
func guessAtOnce(t *testing.T, n int, guess func(i int) error) (wrong, locked int, remaining map[int]bool) {
	t.Helper()
	var wg sync.WaitGroup
	var mu sync.Mutex
	remaining = map[int]bool{}
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			err := guess(i)
			mu.Lock()
			defer mu.Unlock()
			var pe *PasscodeError
			var ue *UnavailableError
			switch {
			case errors.As(err, &pe):
				wrong++
				remaining[pe.Remaining] = true
			case errors.As(err, &ue) && ue.Reason == OutcomeLocked:
				locked++
			default:
				t.Errorf("unexpected answer: %v", err)
			}
		}()
	}
	close(start)
	wg.Wait()
	return wrong, locked, remaining
}

// TestConcurrentGuesses: 200 simultaneous wrong guesses spend exactly the
// budget of 10; everyone else finds the share locked, and so does the
// right passcode afterwards. (The bound on checks in flight per share is
// lifted here, so that all 200 race for the budget.)
func TestConcurrentGuesses(t *testing.T) {
	const n = 200
	s, _ := newStore(t, &Options{MaxChecksPerShare: n, MaxLogPerMinute: 1000})
	sh := create(t, s, func(sp *ShareSpec) { sp.Passcode = "s3cret" })
	wrong, locked, seen := guessAtOnce(t, n, func(i int) error {
		_, err := s.Access(ctx, sh.ID, "attacker", fmt.Sprintf("guess-%d", i), t0)
		return err
	})
	if wrong != DefaultMaxAttempts || locked != n-DefaultMaxAttempts {
		t.Fatalf("%d wrong-passcode answers and %d locked, want %d and %d", wrong, locked, DefaultMaxAttempts, n-DefaultMaxAttempts)
	}
	if !seen[0] {
		t.Errorf("no answer reported 0 remaining attempts: %v", seen)
	}
	_, err := s.Access(ctx, sh.ID, "patient", "s3cret", t0)
	wantUnavailable(t, err, OutcomeLocked)
	log, _ := s.Log("owner-a", sh.ID)
	count := 0
	for _, e := range log {
		if e.Outcome == OutcomeWrongPasscode {
			count++
		}
	}
	if count != DefaultMaxAttempts {
		t.Errorf("log holds %d wrong passcodes", count)
	}
}

func TestAccessDirect(t *testing.T) {
	s, _ := newStore(t, nil)
	u := create(t, s, func(sp *ShareSpec) { sp.Flag = "U" })
	m := create(t, s, nil)
	got, err := s.AccessDirect(u.ID, "r", t0)
	if err != nil || got.Uses != 1 {
		t.Fatalf("AccessDirect(U): %+v, %v", got, err)
	}
	_, err = s.AccessDirect(m.ID, "r", t0)
	var ue *UnavailableError
	if !errors.Is(err, ErrNotFound) || errors.As(err, &ue) {
		t.Fatalf("AccessDirect(non-U): %v", err)
	}
	if got, _ := s.Get(m.ID); got.Uses != 0 {
		t.Errorf("a refused direct GET counted a use")
	}
	if log, _ := s.Log("owner-a", m.ID); len(log) != 0 {
		t.Errorf("a refused direct GET was logged: %v", log)
	}
}

func TestLocationToken(t *testing.T) {
	s, _ := newStore(t, nil)
	sh := create(t, s, nil)
	other := create(t, s, nil)
	fid := sh.Files[0].ID
	tok, err := s.LocationToken(sh.ID, fid, t0, 10*time.Minute)
	if err != nil || len(tok) != TokenLength {
		t.Fatalf("LocationToken: %q, %v", tok, err)
	}
	f, j, err := s.FileByToken(sh.ID, tok, t0.Add(9*time.Minute))
	if err != nil || f.ID != fid || len(j) != f.Length {
		t.Fatalf("FileByToken: %+v, %v", f, err)
	}
	if _, _, err := s.FileByToken(sh.ID, tok, t0.Add(10*time.Minute)); !errors.Is(err, ErrNotFound) {
		t.Errorf("expired token: %v", err)
	}
	if _, _, err := s.FileByToken(other.ID, tok, t0); !errors.Is(err, ErrNotFound) {
		t.Errorf("token moved to another share: %v", err)
	}
	// Flip each byte of the token in turn: nothing authenticates.
	raw, _ := tokenEnc.DecodeString(tok)
	for i := range raw {
		b := bytes.Clone(raw)
		b[i] ^= 0x01
		if _, _, err := s.FileByToken(sh.ID, tokenEnc.EncodeToString(b), t0); !errors.Is(err, ErrNotFound) {
			t.Fatalf("token with byte %d flipped: %v", i, err)
		}
	}
	for _, bad := range []string{"", "x", strings.Repeat("A", TokenLength), tok + "A"} {
		if _, _, err := s.FileByToken(sh.ID, bad, t0); !errors.Is(err, ErrNotFound) {
			t.Errorf("token %q: %v", bad, err)
		}
	}
	// A lifetime over an hour is cut to an hour.
	long, _ := s.LocationToken(sh.ID, fid, t0, 48*time.Hour)
	if _, _, err := s.FileByToken(sh.ID, long, t0.Add(time.Hour-time.Second)); err != nil {
		t.Errorf("token within the hour: %v", err)
	}
	if _, _, err := s.FileByToken(sh.ID, long, t0.Add(time.Hour)); !errors.Is(err, ErrNotFound) {
		t.Errorf("token after an hour: %v", err)
	}
	if _, err := s.LocationToken(sh.ID, "bad", t0, 0); !errors.Is(err, ErrInvalid) {
		t.Errorf("LocationToken(bad file id): %v", err)
	}
	// Revocation takes effect on tokens already handed out.
	if _, err := s.Revoke("owner-a", sh.ID, t0); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.FileByToken(sh.ID, tok, t0.Add(time.Minute)); !errors.Is(err, ErrNotFound) {
		t.Errorf("token after revocation: %v", err)
	}
}

func TestSweep(t *testing.T) {
	s, _ := newStore(t, &Options{Retention: 24 * time.Hour})
	expiring := create(t, s, func(sp *ShareSpec) { sp.Expires = t0.Add(time.Hour) })
	usedUp := create(t, s, func(sp *ShareSpec) { sp.MaxUses = 1 })
	active := create(t, s, func(sp *ShareSpec) { sp.Expires = t0.Add(72 * time.Hour) })
	if _, err := s.Access(ctx, usedUp.ID, "r", "", t0.Add(30*time.Minute)); err != nil {
		t.Fatal(err)
	}

	res, err := s.Sweep(t0.Add(61 * time.Minute)) // expiring has expired; usedUp's tokens may live
	if err != nil || res.Purged != 1 || res.Deleted != 0 {
		t.Fatalf("Sweep 1: %+v, %v", res, err)
	}
	if _, err := s.ReadFile(expiring.ID, expiring.Files[0].ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("expired ciphertext kept: %v", err)
	}
	if _, err := s.ReadFile(usedUp.ID, usedUp.Files[0].ID); err != nil {
		t.Errorf("used-up ciphertext purged within the hour: %v", err)
	}
	if got, _ := s.Get(expiring.ID); !got.Purged {
		t.Errorf("expired share not marked purged")
	}

	res, err = s.Sweep(t0.Add(2 * time.Hour))
	if err != nil || res.Purged != 1 {
		t.Fatalf("Sweep 2: %+v, %v", res, err)
	}
	// Still listed (with its log) until the retention period ends.
	if list, _ := s.List("owner-a"); len(list) != 3 {
		t.Errorf("listed %d shares", len(list))
	}
	res, err = s.Sweep(t0.Add(30 * time.Hour))
	if err != nil || res.Deleted != 2 {
		t.Fatalf("Sweep 3: %+v, %v", res, err)
	}
	if _, err := s.Get(expiring.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("deleted share still there: %v", err)
	}
	if _, err := s.Log("owner-a", usedUp.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("deleted share's log: %v", err)
	}
	if list, _ := s.List("owner-a"); len(list) != 1 || list[0].ID != active.ID {
		t.Errorf("List after deletion: %+v", list)
	}
	// Nothing is left of the deleted shares in any bucket.
	err = s.db.View(func(tx kv.Tx) error {
		keyN := func(b []byte) int {
			n := 0
			tx.Bucket(b).ForEach(func(k, v []byte) error { n++; return nil })
			return n
		}
		for _, b := range [][]byte{bucketShares, bucketOwners, bucketFiles} {
			if n := keyN(b); n != 1 {
				t.Errorf("bucket %s holds %d keys, want 1", b, n)
			}
		}
		if n := keyN(bucketLogs); n != 0 {
			t.Errorf("logs hold %d entries", n)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestLogBound(t *testing.T) {
	s, _ := newStore(t, &Options{MaxLogEntries: 3})
	sh := create(t, s, nil)
	for i := range 5 {
		if _, err := s.Access(ctx, sh.ID, fmt.Sprint("r", i), "", t0); err != nil {
			t.Fatal(err)
		}
	}
	log, err := s.Log("owner-a", sh.ID)
	if err != nil || len(log) != 3 || log[0].Recipient != "r2" || log[2].Recipient != "r4" {
		t.Fatalf("Log: %+v, %v", log, err)
	}
}

// TestConfidential greps the raw file for everything that must not be in
// it: the plaintext, the passcode, the label, the manifest id, the owner
// and the recipient.
func TestConfidential(t *testing.T) {
	s, path := newStore(t, nil)
	const plaintext = `{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"MedicationStatement","note":"UNIQUE-PLAINTEXT-MARKER"}}]}`
	sh := create(t, s, func(sp *ShareSpec) {
		sp.Files[0].JWE = jwe(t, plaintext)
		sp.Passcode = "PASSCODE-MARKER"
		sp.Label = "LABEL-MARKER"
		sp.Owner = "OWNER-MARKER"
	})
	if _, err := s.Access(ctx, sh.ID, "RECIPIENT-MARKER", "PASSCODE-MARKER", t0); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Access(ctx, sh.ID, "RECIPIENT2-MARKER", "wrong", t0); err == nil {
		t.Fatal("wrong passcode granted")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	raw := rawContents(t, path)
	for _, secret := range []string{"UNIQUE-PLAINTEXT-MARKER", "MedicationStatement", "PASSCODE-MARKER", "LABEL-MARKER", "OWNER-MARKER", "RECIPIENT-MARKER", "RECIPIENT2-MARKER", sh.ID} {
		if bytes.Contains(raw, []byte(secret)) {
			t.Errorf("store file contains %q", secret)
		}
	}
}

// rawContents is everything the store wrote: the file's bytes, or every
// column of every row of the PostgreSQL table.
func rawContents(t *testing.T, path string) []byte {
	t.Helper()
	u, ok := strings.CutPrefix(path, "postgres:")
	if !ok {
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT convert_to(ns, 'UTF8'), b, k, coalesce(v, ''::bytea) FROM phr_kv`)
	if err != nil {
		t.Fatal(err)
	}
	var raw []byte
	n := 0
	for rows.Next() {
		var ns, b, k, v []byte
		if err := rows.Scan(&ns, &b, &k, &v); err != nil {
			t.Fatal(err)
		}
		raw = append(append(append(append(raw, ns...), b...), k...), v...)
		n++
	}
	if rows.Err() != nil || n < 5 {
		t.Fatalf("read %d rows: %v", n, rows.Err())
	}
	return raw
}

// TestMoveIntegrity: a share record copied under another share's key does
// not open.
func TestMoveIntegrity(t *testing.T) {
	s, _ := newStore(t, nil)
	a := create(t, s, nil)
	b := create(t, s, nil)
	err := s.db.Update(func(tx kv.Tx) error {
		sb := tx.Bucket(bucketShares)
		return sb.Put(s.lookupKey(b.ID), bytes.Clone(sb.Get(s.lookupKey(a.ID))))
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(b.ID); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("moved record: %v", err)
	}
}

func TestOpenSecrets(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "shares.db")
	keyFile := filepath.Join(t.TempDir(), "keys", "share.key")
	secret, created, err := LoadOrCreateSecret(keyFile)
	if err != nil || !created {
		t.Fatalf("LoadOrCreateSecret: %v %v", created, err)
	}
	st, err := os.Stat(keyFile)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("secret file: %v, %v", st, err)
	}
	if again, created, err := LoadOrCreateSecret(keyFile); err != nil || created || !bytes.Equal(again, secret) {
		t.Fatalf("reading the key file again: %v %v", created, err)
	}
	s, err := Open(path, &Options{Secret: secret, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	sh := create(t, s, nil)
	s.Close()
	if _, err := os.Stat(path + ".key"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a key file beside the store: %v", err)
	}
	s, err = Open(path, &Options{Secret: secret, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(sh.ID); err != nil {
		t.Errorf("share lost on reopen: %v", err)
	}
	// A second process (here: a second Open) fails fast.
	if _, err := Open(path, &Options{Secret: secret, LockTimeout: 50 * time.Millisecond}); !errors.Is(err, ErrLocked) {
		t.Errorf("second Open: %v", err)
	}
	s.Close()
	if _, err := Open(path, &Options{Secret: bytes.Repeat([]byte{9}, 32)}); !errors.Is(err, ErrWrongSecret) {
		t.Errorf("Open with another secret: %v", err)
	}
	for _, bad := range [][]byte{nil, []byte("short")} {
		if _, err := Open(path, &Options{Secret: bad}); !errors.Is(err, ErrInvalid) {
			t.Errorf("Open with secret %q: %v", bad, err)
		}
	}
	if err := os.WriteFile(keyFile, []byte("nothex\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadOrCreateSecret(keyFile); !errors.Is(err, ErrInvalid) {
		t.Errorf("a bad key file: %v", err)
	}
}

func TestCleanRecipient(t *testing.T) {
	for in, want := range map[string]string{
		"  Dr. Who ":             "Dr. Who",
		"a\nb\x00c":              "a b c",
		"\xffok":                 "\uFFFDok",
		strings.Repeat("é", 200): strings.Repeat("é", MaxRecipientLength/2),
	} {
		if got := CleanRecipient(in); got != want {
			t.Errorf("CleanRecipient(%q) = %q, want %q", in, got, want)
		}
	}
}

// BenchmarkAccessUnknownVsExpired measures the refusal of an unknown id
// and of a known but expired one: both take one read transaction, so the
// figures should be close (compare ns/op of the two sub-benchmarks).
func BenchmarkAccessUnknownVsExpired(b *testing.B) {
	s, _ := newStore(b, nil)
	sh := create(b, s, func(sp *ShareSpec) { sp.Expires = t0.Add(time.Hour) })
	unknown := share.NewManifestID()
	later := t0.Add(2 * time.Hour)
	b.Run("unknown", func(b *testing.B) {
		for b.Loop() {
			s.Access(ctx, unknown, "r", "", later)
		}
	})
	b.Run("expired", func(b *testing.B) {
		for b.Loop() {
			s.Access(ctx, sh.ID, "r", "", later)
		}
	})
}

// fakeGate is a Gate of a few slots that records the most held at once;
// with fail set, Acquire refuses as a full gate's time-out would.
type fakeGate struct {
	mu         sync.Mutex
	slots      int
	held, peak int
	acquired   int
	fail       error
	hold       chan struct{} // if set, Acquire waits for it after taking a slot
}

var errGateBusy = errors.New("gate busy")

func (g *fakeGate) Acquire(ctx context.Context) error {
	g.mu.Lock()
	if g.fail != nil {
		g.mu.Unlock()
		return g.fail
	}
	for g.held >= g.slots {
		g.mu.Unlock()
		time.Sleep(time.Millisecond)
		g.mu.Lock()
	}
	g.held++
	g.acquired++
	g.peak = max(g.peak, g.held)
	hold := g.hold
	g.mu.Unlock()
	if hold != nil {
		<-hold
	}
	return nil
}

func (g *fakeGate) Release() {
	g.mu.Lock()
	g.held--
	g.mu.Unlock()
}

// TestPasscodeChecksGated: every passcode hash and check holds a slot of
// the gate, so that however many requests arrive, at most the gate's
// slots of scrypt run at once; a request the gate refuses spends nothing;
// and no more than MaxChecksPerShare checks of one share are in flight,
// the others getting ErrBusy at once, nothing spent or logged.
func TestPasscodeChecksGated(t *testing.T) {
	t.Run("gate bounds checks", func(t *testing.T) {
		g := &fakeGate{slots: 2}
		s, _ := newStore(t, &Options{Gate: g, MaxChecksPerShare: 100})
		var shares []Share
		for range 10 {
			shares = append(shares, create(t, s, func(sp *ShareSpec) { sp.Passcode = "right" }))
		}
		if g.acquired != 10 {
			t.Fatalf("Create took %d gate slots for 10 passcode hashes", g.acquired)
		}
		var wg sync.WaitGroup
		for i := range 100 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := s.Access(ctx, shares[i%10].ID, "r", "right", t0); err != nil {
					t.Errorf("access: %v", err)
				}
			}()
		}
		wg.Wait()
		if g.peak > 2 || g.acquired != 110 {
			t.Fatalf("peak %d slots (want at most 2), %d acquired (want 110)", g.peak, g.acquired)
		}
	})
	t.Run("refused by the gate", func(t *testing.T) {
		g := &fakeGate{slots: 1}
		s, _ := newStore(t, &Options{Gate: g})
		sh := create(t, s, func(sp *ShareSpec) { sp.Passcode = "right" })
		g.fail = errGateBusy
		if _, err := s.Access(ctx, sh.ID, "r", "wrong", t0); !errors.Is(err, errGateBusy) {
			t.Fatalf("access past a full gate: %v", err)
		}
		if _, err := s.Create(ctx, spec(t, func(sp *ShareSpec) { sp.Passcode = "x" })); !errors.Is(err, errGateBusy) {
			t.Fatalf("create past a full gate: %v", err)
		}
		got, _ := s.Get(sh.ID)
		if got.RemainingAttempts != DefaultMaxAttempts || got.Uses != 0 {
			t.Fatalf("a refused request spent something: %+v", got)
		}
	})
	t.Run("per share", func(t *testing.T) {
		g := &fakeGate{slots: 10, hold: make(chan struct{})}
		s, _ := newStore(t, &Options{Gate: g, MaxChecksPerShare: 2})
		close(g.hold) // Create passes
		sh := create(t, s, func(sp *ShareSpec) { sp.Passcode = "right" })
		other := create(t, s, func(sp *ShareSpec) { sp.Passcode = "right" })
		g.mu.Lock()
		g.hold = make(chan struct{})
		g.mu.Unlock()
		var wg sync.WaitGroup
		results := make(chan error, 12)
		for range 2 { // these two hold the share's slots, waiting in the gate
			wg.Add(1)
			go func() { defer wg.Done(); _, err := s.Access(ctx, sh.ID, "r", "right", t0); results <- err }()
		}
		for g.waiting() < 2 {
			time.Sleep(time.Millisecond)
		}
		for range 10 {
			if _, err := s.Access(ctx, sh.ID, "r", "wrong", t0); !errors.Is(err, ErrBusy) {
				t.Fatalf("a third check of one share: %v", err)
			}
		}
		wg.Add(1)
		go func() { defer wg.Done(); _, err := s.Access(ctx, other.ID, "r", "right", t0); results <- err }()
		for g.waiting() < 3 {
			time.Sleep(time.Millisecond)
		}
		close(g.hold)
		wg.Wait()
		close(results)
		for err := range results {
			if err != nil {
				t.Errorf("held access: %v", err)
			}
		}
		got, _ := s.Get(sh.ID)
		if got.RemainingAttempts != DefaultMaxAttempts || got.Uses != 2 {
			t.Fatalf("share after 2 granted and 10 busy: %+v", got)
		}
		if log, _ := s.Log("owner-a", sh.ID); len(log) != 2 {
			t.Fatalf("log of 2 granted and 10 busy: %+v", log)
		}
	})
}

func (g *fakeGate) waiting() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.held
}

// TestLogRate: one share writes at most MaxLogPerMinute log entries a
// minute; the accesses beyond are counted, in the share and in one
// not-logged entry per minute, so that a link holder cannot flood the
// owner's log.
func TestLogRate(t *testing.T) {
	s, _ := newStore(t, &Options{MaxLogPerMinute: 10})
	sh := create(t, s, nil)
	for i := range 25 {
		if _, err := s.Access(ctx, sh.ID, fmt.Sprint("r", i), "", t0.Add(time.Duration(i)*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	log, err := s.Log("owner-a", sh.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(log) != 11 || log[9].Recipient != "r9" || log[10].Outcome != OutcomeNotLogged || log[10].Count != 15 || log[10].Recipient != "" {
		t.Fatalf("log after 25 accesses in a minute: %+v", log)
	}
	got, _ := s.Get(sh.ID)
	if got.Uses != 25 || got.Unlogged != 15 {
		t.Fatalf("share: %+v", got)
	}
	// The next minute: the count is written, and logging resumes.
	if _, err := s.Access(ctx, sh.ID, "next", "", t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	log, _ = s.Log("owner-a", sh.ID)
	if len(log) != 12 || log[10].Count != 15 || !log[10].Time.Equal(t0) || log[11].Recipient != "next" {
		t.Fatalf("log in the next minute: %+v", log)
	}
}

// TestAttemptBudgetCapped: a share may not allow more than
// MaxAttemptsLimit wrong passcodes, and one stored by an older phr with a
// larger budget is held to it.
func TestAttemptBudgetCapped(t *testing.T) {
	if MaxAttemptsLimit > 100 {
		t.Fatalf("MaxAttemptsLimit %d", MaxAttemptsLimit)
	}
	s, path := newStore(t, nil)
	if _, err := s.Create(ctx, spec(t, func(sp *ShareSpec) { sp.Passcode = "1"; sp.MaxAttempts = MaxAttemptsLimit + 1 })); !errors.Is(err, ErrInvalid) {
		t.Fatalf("budget over the limit: %v", err)
	}
	sh := create(t, s, func(sp *ShareSpec) { sp.Passcode = "1"; sp.MaxAttempts = MaxAttemptsLimit })
	s.Close()
	// As older phr stored it: 1000 attempts.
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketShares)
		return b.ForEach(func(k, v []byte) error {
			v = bytes.Replace(v, []byte(fmt.Sprintf(`"remaining":%d`, MaxAttemptsLimit)), []byte(`"remaining":1000`), 1)
			v = bytes.Replace(v, []byte(fmt.Sprintf(`"maxAttempts":%d`, MaxAttemptsLimit)), []byte(`"maxAttempts":1000`), 1)
			return b.Put(k, v)
		})
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	s, err = Open(path, &Options{Secret: testSecret(), NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := s.Get(sh.ID)
	if err != nil || got.RemainingAttempts != MaxAttemptsLimit || got.MaxAttempts != MaxAttemptsLimit {
		t.Fatalf("a stored budget of 1000: %+v %v", got, err)
	}
	if _, err := s.Access(ctx, sh.ID, "r", "wrong", t0); err == nil {
		t.Fatal("wrong passcode granted")
	}
	if got, _ := s.Get(sh.ID); got.RemainingAttempts != MaxAttemptsLimit-1 {
		t.Fatalf("after one wrong passcode: %d remaining", got.RemainingAttempts)
	}
}

// TestOnPostgres runs the store's tests again on a PostgreSQL namespace
// (newStore sees the test's name): all but those that read or write the
// bbolt file itself (TestAttemptBudgetCapped, TestOpenSecrets, TestRekey).
func TestOnPostgres(t *testing.T) {
	for _, tc := range []struct {
		name string
		fn   func(*testing.T)
	}{
		{"CreateGetList", TestCreateGetList},
		{"CreateInvalid", TestCreateInvalid},
		{"AccessOpenShare", TestAccessOpenShare},
		{"AccessUnknown", TestAccessUnknown},
		{"AccessExpired", TestAccessExpired},
		{"Revoke", TestRevoke},
		{"MaxUses", TestMaxUses},
		{"Passcode", TestPasscode},
		{"Lockout", TestLockout},
		{"ConcurrentGuesses", TestConcurrentGuesses},
		{"AccessDirect", TestAccessDirect},
		{"LocationToken", TestLocationToken},
		{"Sweep", TestSweep},
		{"LogBound", TestLogBound},
		{"Confidential", TestConfidential},
		{"MoveIntegrity", TestMoveIntegrity},
		{"PasscodeChecksGated", TestPasscodeChecksGated},
		{"LogRate", TestLogRate},
	} {
		t.Run(tc.name, tc.fn)
	}
}

// TestPostgresNodesShareBudget: three stores on one PostgreSQL namespace,
// each with its own connection pool, as three phrd nodes: 60 concurrent
// wrong passcodes spread over them spend the budget exactly once, a
// revocation on one is seen by the others at once, and a share made on
// one is served by another.
func TestPostgresNodesShareBudget(t *testing.T) {
	u := kvtest.URL(t)
	var nodes []*Store
	for range 3 {
		p, err := kv.OpenPostgres(ctx, u, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(p.Close)
		s, err := OpenDB(p.Namespace("shares"), &Options{Secret: testSecret(), MaxChecksPerShare: 100, MaxLogPerMinute: 1000})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		nodes = append(nodes, s)
	}
	sh := create(t, nodes[0], func(sp *ShareSpec) { sp.Passcode = "s3cret" })
	if got, err := nodes[2].Get(sh.ID); err != nil || got.Label != sh.Label {
		t.Fatalf("a share made on node 0, read on node 2: %+v %v", got, err)
	}
	const n = 60
	wrong, locked, _ := guessAtOnce(t, n, func(i int) error {
		_, err := nodes[i%3].Access(ctx, sh.ID, "attacker", fmt.Sprintf("guess-%d", i), t0)
		return err
	})
	if wrong != DefaultMaxAttempts || locked != n-DefaultMaxAttempts {
		t.Fatalf("%d wrong-passcode answers and %d locked over three nodes, want %d and %d", wrong, locked, DefaultMaxAttempts, n-DefaultMaxAttempts)
	}
	for i, s := range nodes {
		got, err := s.Get(sh.ID)
		if err != nil || got.RemainingAttempts != 0 {
			t.Errorf("node %d: remaining %d, %v", i, got.RemainingAttempts, err)
		}
	}

	open := create(t, nodes[1], nil)
	if _, err := nodes[2].Access(ctx, open.ID, "r", "", t0); err != nil {
		t.Fatalf("node 2 serving node 1's share: %v", err)
	}
	if _, err := nodes[0].Revoke("owner-a", open.ID, t0); err != nil {
		t.Fatal(err)
	}
	for i, s := range nodes {
		_, err := s.Access(ctx, open.ID, "r", "", t0)
		wantUnavailable(t, err, OutcomeRevoked)
		if t.Failed() {
			t.Fatalf("node %d serves a share revoked on node 0", i)
		}
	}
}
