package shlink_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/phr-project/phr/internal/vaulttest"
	"github.com/phr-project/phr/pkg/importers/pipeline"
	"github.com/phr-project/phr/pkg/importers/shlink"
	"github.com/phr-project/phr/pkg/share"
	"github.com/phr-project/phr/pkg/vault"
)

const (
	testdata = "../../../../shared/testdata"
	// specLink is the specification's published example link (flags L
	// and P), as in shared/testdata/shl/README.md.
	specLink  = "shlink:/eyJ1cmwiOiJodHRwczovL2Voci5leGFtcGxlLm9yZy9xci9ZOXh3a1VkdG1OOXd3b0pvTjNmZkpJaFgyVUd2Q0wxSm5sUFZOTDNrRFdNL20iLCJmbGFnIjoiTFAiLCJrZXkiOiJyeFRnWWxPYUtKUEZ0Y0VkMHFjY2VOOHdFVTRwOTRTcUF3SVdRZTZ1WDdRIiwibGFiZWwiOiJCYWNrLXRvLXNjaG9vbCBpbW11bml6YXRpb25zIGZvciBPbGl2ZXIgQnJvd24ifQ"
	specKey   = "rxTgYlOaKJPFtcEd0qcceN8wEU4p94SqAwIWQe6uX7Q"
	specPath  = "/qr/Y9xwkUdtmN9wwoJoN3ffJIhX2UGvCL1JnlPVNL3kDWM/m"
	specLabel = "Back-to-school immunizations for Oliver Brown"
	passcode  = "example-passcode" // the specification publishes none: the test host's
	issuer    = "https://spec.smarthealth.cards/examples/issuer"
	jwksPath  = testdata + "/shc/issuer/.well-known/jwks.json"
)

func readFile(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// ehrHost is a test SMART Health Links host that answers for
// https://ehr.example.org on 127.0.0.1, with a certificate made for the
// test; its client trusts that certificate and dials 127.0.0.1 whatever
// the host name.
type ehrHost struct {
	srv      *httptest.Server
	client   *http.Client
	mu       sync.Mutex
	files    []share.ManifestFile
	byPath   map[string]string // location path -> JWE
	passcode string
	left     int
	status   int
	requests atomic.Int32
	last     share.ManifestRequest
}

func newEHRHost(t *testing.T) *ehrHost {
	t.Helper()
	h := &ehrHost{byPath: map[string]string{}, left: 5}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /qr/{id}/m", func(w http.ResponseWriter, r *http.Request) {
		h.requests.Add(1)
		h.mu.Lock()
		defer h.mu.Unlock()
		if h.status != 0 {
			w.WriteHeader(h.status)
			return
		}
		var req share.ManifestRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Recipient == "" {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		h.last = req
		if h.passcode != "" && req.Passcode != h.passcode {
			h.left--
			w.WriteHeader(http.StatusUnauthorized)
			json.NewEncoder(w).Encode(share.InvalidPasscodeResponse{RemainingAttempts: h.left})
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(share.Manifest{Files: h.files})
	})
	mux.HandleFunc("GET /f/{name}", func(w http.ResponseWriter, r *http.Request) {
		h.requests.Add(1)
		h.mu.Lock()
		jwe, ok := h.byPath[r.URL.Path]
		h.mu.Unlock()
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", share.ContentTypeJOSE)
		w.Write([]byte(jwe))
	})
	mux.HandleFunc("GET /u/{id}", func(w http.ResponseWriter, r *http.Request) {
		h.requests.Add(1)
		if r.URL.Query().Get("recipient") == "" {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		h.mu.Lock()
		jwe := h.byPath["/u"]
		h.mu.Unlock()
		w.Write([]byte(jwe))
	})
	h.srv = httptest.NewUnstartedServer(mux)
	cert, pool := testCert(t, "ehr.example.org")
	h.srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	h.srv.StartTLS()
	t.Cleanup(h.srv.Close)
	addr := h.srv.Listener.Addr().String()
	tr := share.NewReceiverClient(false).Transport.(*http.Transport)
	tr.TLSClientConfig = &tls.Config{RootCAs: pool}
	tr.Proxy = nil
	tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}
	h.client = share.NewReceiverClient(false)
	h.client.Transport = tr
	return h
}

// testCert makes a self-signed certificate for name.
func testCert(t *testing.T, name string) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(c)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pool
}

// embed adds a file given in the manifest; locate one given by location.
func (h *ehrHost) embed(cty, jwe string) {
	h.files = append(h.files, share.ManifestFile{ContentType: cty, Embedded: jwe})
}

func (h *ehrHost) locate(cty, name, jwe string) {
	h.byPath["/f/"+name] = jwe
	h.files = append(h.files, share.ManifestFile{ContentType: cty, Location: "https://ehr.example.org/f/" + name})
}

// spec serves the specification's example files for its example link:
// the example card embedded, the IPS document by location.
func (h *ehrHost) spec(t *testing.T) {
	h.passcode = passcode
	h.embed(share.ContentTypeSHC, readFile(t, testdata+"/shl/spec-example-jwe.txt"))
	h.locate(share.ContentTypeFHIR, "ips", readFile(t, testdata+"/shl/ips-enc.txt"))
}

func count(t *testing.T, v *vault.Vault) int {
	n, _, err := v.Count()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func pass(pc string) func() (string, error) { return func() (string, error) { return pc, nil } }

// TestReceiveSpecExample: the specification's published link, served by
// a test host with the specification's example files, imports the example
// card (verified with its issuer's keys) and the IPS document, each with
// provenance naming the link; a second import adds nothing.
func TestReceiveSpecExample(t *testing.T) {
	h := newEHRHost(t)
	h.spec(t)
	v := vaulttest.New(t)
	vaulttest.SetOwner(t, v, "Martha DeLarosa", time.Time{})
	asked := 0
	o := shlink.Options{
		Client:   h.client,
		Passcode: func() (string, error) { asked++; return passcode, nil },
		Import:   pipeline.Options{AcceptPatientMismatch: true, Importer: map[string]string{"issuer-keys": jwksPath}},
	}
	reps, err := shlink.Receive(context.Background(), v, specLink, o)
	if err != nil {
		t.Fatal(err)
	}
	if asked != 1 || h.last.Passcode != passcode || h.last.Recipient != "Martha DeLarosa" {
		t.Fatalf("passcode asked %d times; manifest request %v", asked, h.last)
	}
	if len(reps) != 2 {
		t.Fatalf("%d reports", len(reps))
	}
	name := specLabel + " (ehr.example.org)"
	if reps[0].File != name+", file 1 of 2" || reps[0].Format != "shc" || reps[0].Added != 4 {
		t.Errorf("card: %+v", reps[0])
	}
	// The IPS document: 20 entries, its Patient the vault's owner.
	if reps[1].File != name+", file 2 of 2" || reps[1].Format != "fhir" || reps[1].Added != 20 || reps[1].PatientMismatch {
		t.Errorf("IPS: %+v", reps[1])
	}
	recs, err := v.List(vault.Query{})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, r := range recs {
		p := r.Provenance
		switch p.Importer {
		case "shc":
			if p.System != issuer || !p.Verified || p.File != name+", file 1 of 2" || p.FileSHA256 != reps[0].SHA256 {
				t.Errorf("card record provenance %+v", p)
			}
		case "fhir":
			if p.System != "ehr.example.org" || p.File != name+", file 2 of 2" || p.FileSHA256 != reps[1].SHA256 {
				t.Errorf("IPS record provenance %+v", p)
			}
		}
		seen[p.Importer]++
	}
	if seen["shc"] != 4 || seen["fhir"] != 20 {
		t.Errorf("records by importer: %v", seen)
	}
	// Again: the same files, nothing new.
	reps, err = shlink.Receive(context.Background(), v, "https://viewer.example.org/#"+specLink, o)
	if err != nil || reps[0].Duplicates != 4 || reps[1].Duplicates != 20 || reps[0].Added+reps[1].Added != 0 {
		t.Fatalf("second import: %v %+v %+v", err, reps[0], reps[1])
	}
}

// TestReceiveRefusals: a link that is refused, or with one bad file,
// adds nothing to the vault and says why, never quoting the link, its key,
// label or passcode.
func TestReceiveRefusals(t *testing.T) {
	ips := readFile(t, testdata+"/shl/ips-enc.txt")
	card := readFile(t, testdata+"/shl/spec-example-jwe.txt")
	tests := []struct {
		name     string
		link     func(h *ehrHost) string
		setup    func(h *ehrHost)
		opts     shlink.Options
		want     error
		requests int32
	}{
		{name: "expired", link: func(h *ehrHost) string {
			return mustEncode(t, share.Payload{URL: "https://ehr.example.org" + specPath, Key: specKey, Exp: time.Now().Add(-time.Hour).Unix()})
		}, want: share.ErrLinkExpired},
		{name: "expired, exp with a fraction", link: func(h *ehrHost) string {
			return "shlink:/" + b64(`{"url":"https://ehr.example.org`+specPath+`","key":"`+specKey+`","exp":`+fmt.Sprint(time.Now().Add(-time.Minute).Unix())+`.25}`)
		}, want: share.ErrLinkExpired},
		{name: "key of 31 bytes", link: func(h *ehrHost) string {
			return "shlink:/" + b64(`{"url":"https://ehr.example.org`+specPath+`","key":"`+b64(strings.Repeat("k", 31))+`"}`)
		}, want: share.ErrInvalidLink},
		{name: "key of 33 bytes", link: func(h *ehrHost) string {
			return "shlink:/" + b64(`{"url":"https://ehr.example.org`+specPath+`","key":"`+b64(strings.Repeat("k", 33))+`"}`)
		}, want: share.ErrInvalidLink},
		{name: "a later protocol version", link: func(h *ehrHost) string {
			return "shlink:/" + b64(`{"url":"https://ehr.example.org`+specPath+`","key":"`+specKey+`","v":2}`)
		}, want: share.ErrUnsupportedVersion},
		{name: "U with P", link: func(h *ehrHost) string {
			return "shlink:/" + b64(`{"url":"https://ehr.example.org`+specPath+`","key":"`+specKey+`","flag":"PU"}`)
		}, opts: shlink.Options{Passcode: pass(passcode)}, want: share.ErrInvalidLink},
		{name: "wrong passcode", opts: shlink.Options{Passcode: pass("1234")}, want: share.ErrWrongPasscode, requests: 1},
		{name: "no passcode", want: share.ErrPasscodeRequired},
		{name: "revoked (404)", setup: func(h *ehrHost) { h.status = 404 }, opts: shlink.Options{Passcode: pass(passcode)}, want: share.ErrLinkUnavailable, requests: 1},
		{name: "tampered tag", setup: func(h *ehrHost) { h.byPath["/f/ips"] = flipTag(ips) }, opts: shlink.Options{Passcode: pass(passcode)}, want: share.ErrDecrypt, requests: 2},
		{name: "tampered embedded card", setup: func(h *ehrHost) { h.files[0].Embedded = flipTag(card) }, opts: shlink.Options{Passcode: pass(passcode)}, want: share.ErrDecrypt, requests: 1},
		{name: "oversized file", opts: shlink.Options{Passcode: pass(passcode), MaxFileSize: 50 << 10}, want: share.ErrTooLarge, requests: 2},
		{name: "oversized files together", opts: shlink.Options{Passcode: pass(passcode), MaxTotalSize: 60 << 10}, want: share.ErrTooLarge, requests: 2},
		{name: "http on a public host", link: func(h *ehrHost) string {
			return "shlink:/" + b64(`{"url":"http://ehr.example.org`+specPath+`","key":"`+specKey+`"}`)
		}, want: share.ErrInvalidLink},
		{name: "the patient is someone else", opts: shlink.Options{Passcode: pass(passcode)}, want: pipeline.ErrPatientMismatch, requests: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newEHRHost(t)
			h.spec(t)
			if tt.setup != nil {
				tt.setup(h)
			}
			link := specLink
			if tt.link != nil {
				link = tt.link(h)
			}
			v := vaulttest.New(t)
			vaulttest.SetOwner(t, v, "Alice Example", time.Time{})
			before := count(t, v)
			o := tt.opts
			o.Client = h.client
			reps, err := shlink.Receive(context.Background(), v, link, o)
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			if n := count(t, v); n != before {
				t.Errorf("the vault went from %d to %d records", before, n)
			}
			if n := h.requests.Load(); n != tt.requests {
				t.Errorf("%d requests, want %d", n, tt.requests)
			}
			for _, r := range reps {
				for _, secret := range []string{specKey, specPath, "Y9xwkUdtmN9", passcode, "1234"} {
					if strings.Contains(r.Error, secret) || strings.Contains(err.Error(), secret) {
						t.Errorf("error %q / %q leaks a secret", r.Error, err)
					}
				}
			}
		})
	}
}

// TestReceiveInterop: links as other implementations make them, each
// form the HL7 SMART Health Cards and Links IG STU1 allows: viewer-prefixed
// ("Optionally prefixed with a viewer URL that ends with #") or bare,
// with or without exp, exp with a fraction (its type is "number"), flags
// the receiver does not know ("SHALL ignore"), L links whose files carry
// their status and fhirVersion, files embedded and by location, cards
// whose JWS is DEFLATE-compressed (the specification's four example
// cards), JWEs with "zip":"DEF", and the specification's IPS example as
// a U link (a JWE with "kid" and no "cty"). Each imports; a file marked
// no-longer-valid is skipped with its reason.
func TestReceiveInterop(t *testing.T) {
	card := func(n int) string {
		return readFile(t, testdata+"/shc/input/images/example-0"+string(rune('0'+n))+"-e-file.smart-health-card")
	}
	key := share.NewKey()
	enc := func(cty, plain string, zip bool) string {
		jwe, err := share.EncryptFile(key, cty, []byte(plain), zip)
		if err != nil {
			t.Fatal(err)
		}
		return jwe
	}
	k := share.EncodeKey(key)
	url := `"url":"https://ehr.example.org/qr/abc/m"`
	future := time.Now().Add(time.Hour).Unix()
	type want struct {
		format  string
		added   bool
		skipped string // the skip reason, when skipped
	}
	tests := []struct {
		name  string
		link  string // the payload JSON
		setup func(h *ehrHost)
		want  []want
	}{
		{name: "viewer-prefixed, L, embedded card and located IPS",
			link: `{` + url + `,"flag":"L","key":"` + k + `","exp":` + fmt.Sprint(future) + `,"label":"Clinic visit"}`,
			setup: func(h *ehrHost) {
				h.embed(share.ContentTypeSHC, enc(share.ContentTypeSHC, card(0), false))
				h.locate(share.ContentTypeFHIR, "ips", enc(share.ContentTypeFHIR, readFile(t, testdata+"/shl/ips.json"), true))
				h.files[0].Status, h.files[1].Status, h.files[1].FHIRVersion = share.StatusCanChange, share.StatusCanChange, "4.0.1"
			},
			want: []want{{format: "shc", added: true}, {format: "fhir", added: true}}},
		{name: "no exp, every example card, DEFLATE JWE",
			link: `{` + url + `,"key":"` + k + `"}`,
			setup: func(h *ehrHost) {
				for i := 0; i < 4; i++ {
					h.locate(share.ContentTypeSHC, fmt.Sprint("c", i), enc(share.ContentTypeSHC, card(i), i%2 == 0))
				}
			},
			want: []want{{format: "shc", added: true}, {format: "shc", added: true}, {format: "shc", added: true}, {format: "shc", added: true}}},
		{name: "exp with a fraction, an unknown flag, v 1",
			link: `{` + url + `,"key":"` + k + `","exp":` + fmt.Sprint(future) + `.5,"flag":"LQ","v":1}`,
			setup: func(h *ehrHost) {
				h.embed(share.ContentTypeFHIR+";fhirVersion=4.0.1", enc(share.ContentTypeFHIR, readFile(t, testdata+"/shc/input/images/example-01-a-fhirBundle.json"), true))
			},
			want: []want{{format: "fhir", added: true}}},
		{name: "a file no longer valid",
			link: `{` + url + `,"key":"` + k + `"}`,
			setup: func(h *ehrHost) {
				h.embed(share.ContentTypeSHC, enc(share.ContentTypeSHC, card(2), false))
				h.embed(share.ContentTypeSHC, enc(share.ContentTypeSHC, card(3), false))
				h.files[0].Status, h.files[1].Status = share.StatusFinalized, share.StatusNoLongerValid
			},
			want: []want{{format: "shc", added: true}, {skipped: "no longer valid"}}},
		{name: "the specification's IPS example as a U link",
			link:  `{"url":"https://ehr.example.org/u/IPS_IG-bundle-01-enc.txt","flag":"LU","key":"` + specKey + `","label":"Demo SHL for IPS_IG-bundle-01"}`,
			setup: func(h *ehrHost) { h.byPath["/u"] = readFile(t, testdata+"/shl/ips-enc.txt") },
			want:  []want{{format: "fhir", added: true}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newEHRHost(t)
			tt.setup(h)
			v := vaulttest.New(t)
			link := "shlink:/" + b64(tt.link)
			if strings.HasPrefix(tt.name, "viewer-prefixed") {
				link = "https://viewer.example.org/shlink.html#" + link
			}
			reps, err := shlink.Receive(context.Background(), v, link, shlink.Options{Client: h.client, Recipient: "Dr. Interop",
				Import: pipeline.Options{AcceptPatientMismatch: true, Importer: map[string]string{"issuer-keys": jwksPath}}})
			if err != nil {
				t.Fatal(err)
			}
			if len(reps) != len(tt.want) {
				t.Fatalf("%d reports, want %d", len(reps), len(tt.want))
			}
			for i, w := range tt.want {
				r := reps[i]
				if w.skipped != "" {
					if r.Skipped != 1 || r.Added != 0 || len(r.Skips) != 1 || !strings.Contains(r.Skips[0].Reason, w.skipped) {
						t.Errorf("file %d: %+v, want skipped", i, r)
					}
					continue
				}
				// Example-01 holds example-00's records (another issuer):
				// duplicates of what file 1 added.
				if r.Format != w.format || (r.Added+r.Duplicates > 0) != w.added || r.Error != "" {
					t.Errorf("file %d: format %q, added %d, error %q: %+v", i, r.Format, r.Added, r.Error, r)
				}
			}
			if strings.Contains(tt.name, "U link") && h.last.Recipient != "" {
				t.Error("a U link asked for a manifest")
			}
		})
	}
}

// TestReceiveAcceptMismatch: asked to, the import takes the files of a
// link about someone else, and its records say so.
func TestReceiveAcceptMismatch(t *testing.T) {
	h := newEHRHost(t)
	h.spec(t)
	v := vaulttest.New(t)
	vaulttest.SetOwner(t, v, "Alice Example", time.Time{})
	reps, err := shlink.Receive(context.Background(), v, specLink, shlink.Options{Client: h.client, Passcode: pass(passcode),
		Import: pipeline.Options{AcceptPatientMismatch: true}})
	if err != nil || len(reps) != 2 || !reps[0].PatientMismatch || !reps[1].PatientMismatch {
		t.Fatalf("%v %+v", err, reps)
	}
	// Without issuer keys the card is imported, not verified.
	recs, _ := v.List(vault.Query{})
	for _, r := range recs {
		if r.Provenance.Importer == "shc" && r.Provenance.Verified {
			t.Fatal("a card was marked verified without issuer keys")
		}
	}
}

// TestReceiveDirect: a U link's one file comes with a GET that names the
// recipient; its content type comes from the JWE (none: the content
// decides).
func TestReceiveDirect(t *testing.T) {
	h := newEHRHost(t)
	key := share.NewKey()
	bundle := readFile(t, testdata+"/shc/input/images/example-00-a-fhirBundle.json")
	jwe, err := share.EncryptFile(key, share.ContentTypeFHIR, []byte(bundle), true)
	if err != nil {
		t.Fatal(err)
	}
	h.byPath["/u"] = jwe
	link := mustEncode(t, share.Payload{URL: "https://ehr.example.org/u/abc", Key: share.EncodeKey(key), Flag: "U", Exp: time.Now().Add(time.Hour).Unix()})
	v := vaulttest.New(t)
	reps, err := shlink.Receive(context.Background(), v, link, shlink.Options{Client: h.client, Recipient: "Dr. Rivera", Import: pipeline.Options{AcceptPatientMismatch: true}})
	if err != nil || len(reps) != 1 || reps[0].Format != "fhir" || reps[0].Added != 4 || reps[0].File != "SMART Health Link (ehr.example.org)" {
		t.Fatalf("%v %+v", err, reps)
	}
}

// TestReceiveAPIAccess: a SMART API access file is skipped with a reason.
func TestReceiveAPIAccess(t *testing.T) {
	h := newEHRHost(t)
	key := share.NewKey()
	jwe, _ := share.EncryptFile(key, share.ContentTypeSMARTAPIAccess, []byte(`{"access_token":"x","aud":"https://fhir.example.org"}`), false)
	h.embed(share.ContentTypeSMARTAPIAccess, jwe)
	link := mustEncode(t, share.Payload{URL: "https://ehr.example.org/qr/x/m", Key: share.EncodeKey(key), Label: "Labs/2026"})
	v := vaulttest.New(t)
	reps, err := shlink.Receive(context.Background(), v, link, shlink.Options{Client: h.client})
	if err != nil || len(reps) != 1 || reps[0].Skipped != 1 || len(reps[0].Skips) != 1 || reps[0].File != "Labs-2026 (ehr.example.org)" {
		t.Fatalf("%v %+v", err, reps)
	}
	if h.last.Recipient != shlink.DefaultRecipient {
		t.Errorf("recipient %q", h.last.Recipient)
	}
}

func TestIsLink(t *testing.T) {
	for _, tt := range []struct {
		s    string
		want bool
	}{
		{specLink, true}, {"  SHLINK:/abc", true}, {"https://viewer.example.org/view#shlink:/abc", true},
		{"http://127.0.0.1:8080/view#shlink:/abc", true}, {"card.png", false}, {"shc:/5676", false},
		{"notes#shlink:/abc", false}, {"https://example.org/view#other", false}, {"", false},
	} {
		if got := shlink.IsLink(tt.s); got != tt.want {
			t.Errorf("IsLink(%q) = %v", tt.s, got)
		}
	}
}

func mustEncode(t *testing.T, p share.Payload) string {
	t.Helper()
	s, err := share.Encode(p)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// flipTag changes the first character of a JWE's tag.
func flipTag(jwe string) string {
	i := strings.LastIndexByte(jwe, '.') + 1
	c := byte('A')
	if jwe[i] == 'A' {
		c = 'B'
	}
	return jwe[:i] + string(c) + jwe[i+1:]
}
