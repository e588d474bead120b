package share

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeHost is a small SMART Health Links server on 127.0.0.1 for the
// receiver's tests: /m answers manifest requests, /u a U link's GET,
// /f/N serves file N, /big streams a body that never ends.
type fakeHost struct {
	srv      *httptest.Server
	key      []byte
	files    []hostFile
	passcode string
	left     int
	status   int    // answer every manifest request with this status
	manifest string // answer with this body instead
	busy     int    // answer this many requests 429 first
	gone     int    // answer this many location GETs goneCode first
	goneCode int
	onFile   func(i int)
	byFile   [8]atomic.Int32 // location GETs of each file
	requests atomic.Int32
	lastBody ManifestRequest
	lastQ    string
}

type hostFile struct {
	cty, jwe string
	location bool
	loc      string // a location URL to give instead of /f/N
}

func newFakeHost(t *testing.T) *fakeHost {
	h := &fakeHost{key: NewKey(), left: 10}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /m", func(w http.ResponseWriter, r *http.Request) {
		h.requests.Add(1)
		if h.busy > 0 {
			h.busy--
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		if h.status != 0 {
			w.WriteHeader(h.status)
			return
		}
		json.NewDecoder(r.Body).Decode(&h.lastBody)
		if h.passcode != "" && h.lastBody.Passcode != h.passcode {
			h.left--
			w.WriteHeader(http.StatusUnauthorized)
			json.NewEncoder(w).Encode(InvalidPasscodeResponse{RemainingAttempts: h.left})
			return
		}
		if h.manifest != "" {
			io.WriteString(w, h.manifest)
			return
		}
		var m Manifest
		for i, f := range h.files {
			mf := ManifestFile{ContentType: f.cty}
			switch {
			case f.loc != "":
				mf.Location = f.loc
			case f.location:
				mf.Location = h.srv.URL + "/f/" + string(rune('0'+i))
			default:
				mf.Embedded = f.jwe
			}
			m.Files = append(m.Files, mf)
		}
		json.NewEncoder(w).Encode(m)
	})
	mux.HandleFunc("GET /f/{n}", func(w http.ResponseWriter, r *http.Request) {
		h.requests.Add(1)
		i := int(r.PathValue("n")[0] - '0')
		if i < 0 || i >= len(h.files) {
			http.NotFound(w, r)
			return
		}
		h.byFile[i].Add(1)
		if h.gone > 0 {
			h.gone--
			w.WriteHeader(h.goneCode)
			return
		}
		if h.onFile != nil {
			h.onFile(i)
		}
		w.Header().Set("Content-Type", ContentTypeJOSE)
		io.WriteString(w, h.files[i].jwe)
	})
	mux.HandleFunc("GET /u", func(w http.ResponseWriter, r *http.Request) {
		h.requests.Add(1)
		h.lastQ = r.URL.RawQuery
		io.WriteString(w, h.files[0].jwe)
	})
	mux.HandleFunc("GET /big", func(w http.ResponseWriter, r *http.Request) {
		h.requests.Add(1)
		buf := []byte(strings.Repeat("A", 64<<10))
		for {
			if _, err := w.Write(buf); err != nil {
				return
			}
		}
	})
	mux.HandleFunc("GET /redirect", func(w http.ResponseWriter, r *http.Request) {
		h.requests.Add(1)
		http.Redirect(w, r, r.URL.Query().Get("to"), http.StatusFound)
	})
	h.srv = httptest.NewServer(mux)
	t.Cleanup(h.srv.Close)
	return h
}

func (h *fakeHost) add(t *testing.T, cty, plain string, location bool) {
	t.Helper()
	jwe, err := EncryptFile(h.key, cty, []byte(plain), true)
	if err != nil {
		t.Fatal(err)
	}
	h.files = append(h.files, hostFile{cty: cty, jwe: jwe, location: location})
}

func (h *fakeHost) payload(path, flag string) Payload {
	return Payload{URL: h.srv.URL + path, Key: EncodeKey(h.key), Flag: flag, Label: "Visit of 2026-03-02"}
}

func TestRetrieve(t *testing.T) {
	h := newFakeHost(t)
	h.add(t, ContentTypeFHIR, `{"resourceType":"Bundle"}`, false)
	h.add(t, ContentTypeSHC, `{"verifiableCredential":[]}`, true)
	got, err := Retrieve(context.Background(), h.payload("/m", "L"), RetrieveOptions{Recipient: "Alice Example", EmbeddedLengthMax: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Files) != 2 || got.Files[0].ContentType != ContentTypeFHIR || string(got.Files[0].Data) != `{"resourceType":"Bundle"}` ||
		got.Files[1].ContentType != ContentTypeSHC || string(got.Files[1].Data) != `{"verifiableCredential":[]}` {
		t.Fatalf("files: %+v", got.Files)
	}
	if h.lastBody.Recipient != "Alice Example" || h.lastBody.EmbeddedLengthMax != 100 || h.lastBody.Passcode != "" {
		t.Fatalf("manifest request: %v", h.lastBody)
	}
	if n := h.requests.Load(); n != 2 {
		t.Fatalf("%d requests, want the manifest and one location", n)
	}
}

func TestRetrieveDirect(t *testing.T) {
	h := newFakeHost(t)
	h.add(t, ContentTypeFHIR, `{"resourceType":"Patient"}`, false)
	got, err := Retrieve(context.Background(), h.payload("/u", "U"), RetrieveOptions{Recipient: "Dr. Rivera & co"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Files) != 1 || got.Files[0].ContentType != ContentTypeFHIR || h.lastQ != "recipient=Dr.+Rivera+%26+co" {
		t.Fatalf("files %+v, query %q", got.Files, h.lastQ)
	}
}

// TestRetrieveRefetchesManifest: "The SMART Health Links Receiving
// Application SHALL NOT attempt to dereference a manifest's
// .files.location link more than one hour after requesting the manifest,
// and SHALL be capable of re-fetching the manifest to obtain fresh
// location links in the event that they have expired or been consumed"
// (STU1, ".files.location links"). A location refused as phr's host does
// (404) or as signed cloud-storage URLs do once expired (403, 410) makes
// the receiver ask for the manifest once more; so does an hour gone by.
func TestRetrieveRefetchesManifest(t *testing.T) {
	for _, tc := range []struct {
		name      string
		gone      int
		goneCode  int
		hourAfter bool // the first file's download takes over an hour
		want      error
		requests  int32
		manifests int32
	}{
		{name: "consumed location (404)", gone: 1, goneCode: 404, requests: 5, manifests: 2},
		{name: "expired signed URL (403)", gone: 1, goneCode: 403, requests: 5, manifests: 2},
		{name: "gone (410)", gone: 1, goneCode: 410, requests: 5, manifests: 2},
		{name: "an hour after the manifest", hourAfter: true, requests: 5, manifests: 2},
		{name: "still refused after a fresh manifest", gone: 2, goneCode: 404, want: ErrLinkUnavailable, requests: 4, manifests: 2},
		{name: "500 is not retried", gone: 1, goneCode: 500, want: ErrServer, requests: 2, manifests: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newFakeHost(t)
			h.add(t, ContentTypeFHIR, `{"resourceType":"Bundle","type":"collection"}`, true)
			h.add(t, ContentTypeSHC, `{"verifiableCredential":[]}`, true)
			h.gone, h.goneCode = tc.gone, tc.goneCode
			var mu sync.Mutex
			now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
			if tc.hourAfter {
				h.onFile = func(i int) {
					mu.Lock()
					defer mu.Unlock()
					if i == 0 && h.byFile[0].Load() == 1 {
						now = now.Add(MaxLocationLifetime)
					}
				}
			}
			clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
			got, err := Retrieve(context.Background(), h.payload("/m", "L"), RetrieveOptions{Recipient: "A", Now: clock})
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if n := h.requests.Load(); n != tc.requests {
				t.Errorf("%d requests, want %d", n, tc.requests)
			}
			if n := h.requests.Load() - h.byFile[0].Load() - h.byFile[1].Load(); n != tc.manifests {
				t.Errorf("%d manifest requests, want %d", n, tc.manifests)
			}
			if tc.want != nil {
				assertNoSecret(t, err.Error(), h.srv.URL, "/f/")
				return
			}
			if len(got.Files) != 2 || string(got.Files[1].Data) != `{"verifiableCredential":[]}` {
				t.Fatalf("files %+v", got.Files)
			}
			if tc.hourAfter && h.byFile[1].Load() != 1 {
				t.Errorf("the second file was fetched %d times: a stale location was used", h.byFile[1].Load())
			}
		})
	}
}

// TestRetrieveRefusals: each refusal is its own error, never quotes the
// link's url, key, label or the passcode, and the refusals a receiver
// can see coming (expired, no passcode) cost no request.
func TestRetrieveRefusals(t *testing.T) {
	past := time.Now().Add(-time.Minute).Unix()
	tests := []struct {
		name     string
		setup    func(h *fakeHost)
		path     string
		flag     string
		opts     RetrieveOptions
		exp      int64
		v        int
		want     error
		requests int32
	}{
		{name: "expired exp", exp: past, want: ErrLinkExpired, requests: 0},
		// "If a SHL Receiver Application receives a SMART Health Link with
		// a v newer than what it supports, it [...] SHOULD NOT proceed with
		// a manifest request" (STU1, Protocol Versioning).
		{name: "later version", v: 2, want: ErrUnsupportedVersion, requests: 0},
		{name: "U with P", flag: "PU", want: ErrInvalidLink, requests: 0},
		{name: "P without passcode", flag: "P", setup: func(h *fakeHost) { h.passcode = "4711" }, want: ErrPasscodeRequired, requests: 0},
		{name: "wrong passcode", flag: "P", setup: func(h *fakeHost) { h.passcode = "4711" }, opts: RetrieveOptions{Passcode: "0000"}, want: ErrWrongPasscode, requests: 1},
		{name: "404", setup: func(h *fakeHost) { h.status = 404 }, want: ErrLinkUnavailable, requests: 1},
		{name: "500", setup: func(h *fakeHost) { h.status = 500 }, want: ErrServer, requests: 1},
		{name: "busy without Retry-After", setup: func(h *fakeHost) { h.status = 429 }, want: ErrServer, requests: 1},
		{name: "tampered tag", setup: func(h *fakeHost) { h.files[0].jwe = flipLast(h.files[0].jwe) }, want: ErrDecrypt, requests: 1},
		{name: "tampered location file", setup: func(h *fakeHost) { h.files[0].location = true; h.files[0].jwe = flipLast(h.files[0].jwe) }, want: ErrDecrypt, requests: 2},
		{name: "cty differs from contentType", setup: func(h *fakeHost) { h.files[0].cty = ContentTypeSHC }, want: ErrInvalidManifest, requests: 1},
		{name: "not a manifest", setup: func(h *fakeHost) { h.manifest = `{"files":"x"}` }, want: ErrInvalidManifest, requests: 1},
		{name: "http location on a public host", setup: func(h *fakeHost) { h.files[0].loc = "http://ehr.example.org/f" }, want: ErrInvalidManifest, requests: 1},
		{name: "file over MaxFileSize", opts: RetrieveOptions{MaxFileSize: 10}, want: ErrTooLarge, requests: 1},
		{name: "location over MaxFileSize", setup: func(h *fakeHost) { h.files[0].loc = h.srv.URL + "/big" }, opts: RetrieveOptions{MaxFileSize: 1 << 20}, want: ErrTooLarge, requests: 2},
		{name: "files over MaxTotalSize", setup: func(h *fakeHost) { h.files = append(h.files, h.files[0]) }, opts: RetrieveOptions{MaxTotalSize: 40}, want: ErrTooLarge, requests: 1},
		{name: "redirect to plain http", setup: func(h *fakeHost) { h.files[0].loc = h.srv.URL + "/redirect?to=http://ehr.example.org/f" }, want: ErrServer, requests: 2},
		{name: "public-only client", opts: RetrieveOptions{Client: NewReceiverClient(true)}, want: ErrPrivateAddress, requests: 0},
		{name: "no recipient", opts: RetrieveOptions{Recipient: "-"}, want: ErrInvalidManifest, requests: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newFakeHost(t)
			h.add(t, ContentTypeFHIR, `{"resourceType":"Bundle","type":"collection"}`, false)
			if tt.setup != nil {
				tt.setup(h)
			}
			p := h.payload("/m", tt.flag)
			p.Exp, p.V = tt.exp, tt.v
			o := tt.opts
			switch o.Recipient {
			case "":
				o.Recipient = "Alice"
			case "-":
				o.Recipient = ""
			}
			_, err := Retrieve(context.Background(), p, o)
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			if n := h.requests.Load(); n != tt.requests {
				t.Errorf("%d requests, want %d", n, tt.requests)
			}
			assertNoSecret(t, err.Error(), p.Key, "/m", p.Label, "4711", "0000", h.srv.URL)
		})
	}
}

// flipLast changes the first character of the JWE's tag (its last
// segment): still base64url, no longer the tag.
func flipLast(jwe string) string {
	i := strings.LastIndexByte(jwe, '.') + 1
	c := byte('A')
	if jwe[i] == 'A' {
		c = 'B'
	}
	return jwe[:i] + string(c) + jwe[i+1:]
}

func TestRetrieveWrongPasscodeCount(t *testing.T) {
	h := newFakeHost(t)
	h.add(t, ContentTypeFHIR, `{}`, false)
	h.passcode = "4711"
	_, err := Retrieve(context.Background(), h.payload("/m", "P"), RetrieveOptions{Recipient: "A", Passcode: "1"})
	var pe *PasscodeError
	if !errors.As(err, &pe) || pe.Remaining != 9 || !strings.Contains(err.Error(), "9 attempts left") {
		t.Fatalf("got %v", err)
	}
	got, err := Retrieve(context.Background(), h.payload("/m", "P"), RetrieveOptions{Recipient: "A", Passcode: "4711"})
	if err != nil || len(got.Files) != 1 || h.lastBody.Passcode != "4711" {
		t.Fatalf("right passcode: %v", err)
	}
}

// TestRetrieveRetriesBusy: a 429 with a short Retry-After is tried again.
func TestRetrieveRetriesBusy(t *testing.T) {
	h := newFakeHost(t)
	h.add(t, ContentTypeFHIR, `{}`, false)
	h.busy = 2
	if _, err := Retrieve(context.Background(), h.payload("/m", ""), RetrieveOptions{Recipient: "A"}); err != nil {
		t.Fatal(err)
	}
	if n := h.requests.Load(); n != 3 {
		t.Fatalf("%d requests", n)
	}
	h.busy = 3
	if _, err := Retrieve(context.Background(), h.payload("/m", ""), RetrieveOptions{Recipient: "A"}); !errors.Is(err, ErrServer) {
		t.Fatalf("still busy after %d retries: %v", maxRetries, err)
	}
}

// TestRetrieveManifestLimit: a manifest over MaxManifestSize is refused
// after reading just over the limit.
func TestRetrieveManifestLimit(t *testing.T) {
	h := newFakeHost(t)
	h.manifest = `{"files":[` + strings.Repeat(" ", MaxManifestSize) + `]}`
	_, err := Retrieve(context.Background(), h.payload("/m", ""), RetrieveOptions{Recipient: "A"})
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("got %v", err)
	}
}

func TestIsPublicAddr(t *testing.T) {
	for _, tt := range []struct {
		addr   string
		public bool
	}{
		{"93.184.215.14", true}, {"2606:2800:21f:cb07:6820:80da:af6b:8b2c", true},
		{"127.0.0.1", false}, {"::1", false}, {"10.1.2.3", false}, {"172.16.0.1", false}, {"192.168.1.1", false},
		{"169.254.169.254", false}, {"100.64.0.1", false}, {"0.0.0.0", false}, {"::", false}, {"fd00::1", false},
		{"fe80::1", false}, {"224.0.0.1", false}, {"::ffff:127.0.0.1", false}, {"::ffff:10.0.0.1", false}, {"255.255.255.255", false},
	} {
		if got := IsPublicAddr(netip.MustParseAddr(tt.addr)); got != tt.public {
			t.Errorf("IsPublicAddr(%s) = %v", tt.addr, got)
		}
	}
}

// memTransport answers every request in memory: a manifest request with
// manifest, any GET with file.
type memTransport struct {
	status         int
	manifest, file []byte
}

func (m memTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	body := m.file
	if r.Method == http.MethodPost {
		body = m.manifest
	}
	if r.Body != nil {
		r.Body.Close()
	}
	return &http.Response{StatusCode: m.status, Header: http.Header{}, Body: io.NopCloser(strings.NewReader(string(body))), Request: r}, nil
}

// FuzzRetrieve feeds Retrieve arbitrary answers (status, manifest, a
// location's body) for a link whose key the seeds use: it never panics,
// every error wraps a sentinel of this package, and what it returns
// decrypted with the link's key.
func FuzzRetrieve(f *testing.F) {
	key := mustKey(f, specKey)
	jwe, _ := EncryptFile(key, ContentTypeFHIR, []byte(`{"resourceType":"Bundle"}`), true)
	spec := string(readShared(f, "shl/spec-example-jwe.txt"))
	for _, s := range []struct {
		status         int
		manifest, file string
	}{
		{200, `{"files":[{"contentType":"application/fhir+json","embedded":"` + jwe + `"}]}`, ""},
		{200, `{"files":[{"contentType":"application/smart-health-card","location":"https://ehr.example.org/f/1"}]}`, spec},
		{200, `{"status":"can-change","files":[{"contentType":"application/fhir+json","location":"https://ehr.example.org/f/1"}]}`, jwe},
		{200, `{"files":[{"contentType":"application/fhir+json","location":"https://ehr.example.org/f/1","status":"no-longer-valid","fhirVersion":"4.0.1"}]}`, jwe},
		{200, `{"files":[{"contentType":"application/fhir+json","location":"https://ehr.example.org/f/1","status":"x"}]}`, jwe},
		{401, `{"remainingAttempts":3}`, ""},
		{404, ``, ""}, {429, ``, ""}, {200, `{"files":[]}`, ""}, {200, `[]`, ""},
	} {
		f.Add(s.status, []byte(s.manifest), []byte(s.file))
	}
	sentinels := []error{ErrInvalidLink, ErrMalformedJWE, ErrUnsupportedJWE, ErrDecrypt, ErrTooLarge, ErrInvalidManifest,
		ErrLinkUnavailable, ErrWrongPasscode, ErrServer}
	f.Fuzz(func(t *testing.T, status int, manifest, file []byte) {
		if status < 100 || status > 599 {
			return
		}
		c := &http.Client{Transport: memTransport{status, manifest, file}}
		p := Payload{URL: "https://ehr.example.org/qr/m", Key: specKey}
		got, err := Retrieve(context.Background(), p, RetrieveOptions{Recipient: "fuzz", Client: c, MaxFileSize: 1 << 20})
		if err != nil {
			if !isOneOf(err, sentinels) {
				t.Fatalf("error %v wraps no sentinel", err)
			}
			assertNoSecret(t, err.Error(), specKey, p.URL)
			return
		}
		if len(got.Files) == 0 {
			t.Fatal("success without files")
		}
	})
}
