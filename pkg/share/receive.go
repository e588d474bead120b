package share

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// PasscodeError is a refused passcode: the server's 401 answer.
type PasscodeError struct {
	// Remaining is how many wrong passcodes the link still accepts over
	// its lifetime; -1 when the server did not say.
	Remaining int
}

func (e *PasscodeError) Error() string {
	if e.Remaining < 0 {
		return ErrWrongPasscode.Error()
	}
	return fmt.Sprintf("%v (%d attempts left)", ErrWrongPasscode, e.Remaining)
}

// Unwrap returns ErrWrongPasscode.
func (e *PasscodeError) Unwrap() error { return ErrWrongPasscode }

// Limits on what Retrieve reads (docs/formats/shl.md).
const (
	// DefaultMaxRetrieved is the most plaintext all files of one link may
	// hold together, by default: 128 MiB. Every file is decrypted before
	// any is used, so this bounds a receiver's memory.
	DefaultMaxRetrieved = 128 << 20
	// maxErrorBody bounds what is read of a 401 or other non-200 answer.
	maxErrorBody = 4 << 10
	// maxRetries is how often a 429 or 503 answer is retried.
	maxRetries = 2
	// maxRetryWait is the longest Retry-After honoured.
	maxRetryWait = 5 * time.Second
	// maxRedirects bounds redirects of one request.
	maxRedirects = 5
)

// RetrieveOptions are the receiver's side of a manifest request.
type RetrieveOptions struct {
	// Recipient says who asks (required): the server shows it to the
	// link's owner.
	Recipient string
	// Passcode is the passcode of a P link. Never log it.
	Passcode string
	// EmbeddedLengthMax, when positive, asks the server to give files
	// whose JWE is longer by location.
	EmbeddedLengthMax int
	// Client makes the requests; nil means NewReceiverClient(false).
	Client *http.Client
	// MaxFileSize bounds each file's plaintext (DefaultMaxPlaintext when
	// not positive); MaxTotalSize all files' (DefaultMaxRetrieved).
	MaxFileSize, MaxTotalSize int64
	// Now replaces time.Now for the expiry check (tests).
	Now func() time.Time
}

// RetrievedFile is one decrypted file of a link.
type RetrievedFile struct {
	// ContentType is the file's media type, lower case, without
	// parameters: ContentTypeSHC, ContentTypeFHIR,
	// ContentTypeSMARTAPIAccess, or (a U link whose JWE has no cty) "".
	ContentType string
	// Data is the plaintext.
	Data []byte
	// LastUpdated is the manifest's lastUpdated for the file, if any.
	LastUpdated string
	// Status is the manifest's status for the file (StatusFinalized,
	// StatusCanChange, StatusNoLongerValid), "" when absent or for a U
	// link.
	Status string
	// FHIRVersion is the manifest's fhirVersion for the file, if any.
	FHIRVersion string
}

// Retrieved is what a link holds.
type Retrieved struct {
	// Files are the decrypted files, in the manifest's order.
	Files []RetrievedFile
}

// Retrieve fetches and decrypts the files of the link p as its recipient:
// a U link with one GET of its url (the recipient in the query), any other
// link by POSTing a manifest request and then fetching each file given by
// location. Every file is decrypted, and checked against the link's key,
// before Retrieve returns, so a link with one bad file gives nothing.
//
// It refuses, before any request, a link whose exp has passed
// (ErrLinkExpired), a link of a later protocol version
// (ErrUnsupportedVersion) and a P link without a passcode
// (ErrPasscodeRequired). Flags it does not know are ignored.
// The server's refusals are ErrLinkUnavailable (404) and *PasscodeError
// (401). A location that answers 403, 404 or 410, or that is an hour old,
// makes Retrieve ask for the manifest once more and fetch every file from
// the new one; refused again, the link is ErrLinkUnavailable. Manifests, location downloads and plaintexts are bounded
// (MaxManifestSize, RetrieveOptions.MaxFileSize and MaxTotalSize): past a
// bound Retrieve stops reading and fails with ErrTooLarge. A JWE whose
// cty disagrees with the manifest's contentType is ErrInvalidManifest.
// URLs must be https (http only on loopback hosts), redirects included.
func Retrieve(ctx context.Context, p Payload, o RetrieveOptions) (*Retrieved, error) {
	if err := p.validateReceived(); err != nil {
		return nil, err
	}
	if p.V > Version {
		return nil, fmt.Errorf("%w (version %d; phr supports %d)", ErrUnsupportedVersion, p.V, Version)
	}
	if o.Recipient == "" {
		return nil, fieldErr(ErrInvalidManifest, "recipient", "is required")
	}
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}
	if p.Exp > 0 && now().Unix() >= p.Exp {
		return nil, fmt.Errorf("%w (on %s)", ErrLinkExpired, time.Unix(p.Exp, 0).UTC().Format("2006-01-02 15:04 UTC"))
	}
	if p.HasFlag(FlagPasscode) && o.Passcode == "" {
		return nil, ErrPasscodeRequired
	}
	if len(o.Passcode) > MaxPasscodeLength {
		return nil, fieldErr(ErrInvalidPasscode, "passcode", "must be at most %d bytes", MaxPasscodeLength)
	}
	key, err := p.KeyBytes()
	if err != nil {
		return nil, err
	}
	defer clear(key)
	r := &receiver{ctx: ctx, o: o, key: key}
	if r.o.Client == nil {
		r.o.Client = NewReceiverClient(false)
	}
	if r.o.MaxFileSize <= 0 {
		r.o.MaxFileSize = DefaultMaxPlaintext
	}
	if r.o.MaxTotalSize <= 0 {
		r.o.MaxTotalSize = DefaultMaxRetrieved
	}
	if p.HasFlag(FlagDirect) {
		return r.direct(p.URL)
	}
	return r.manifest(p.URL)
}

type receiver struct {
	ctx   context.Context
	o     RetrieveOptions
	key   []byte
	total int64
}

// direct GETs the one file of a U link.
func (r *receiver) direct(link string) (*Retrieved, error) {
	u, err := url.Parse(link)
	if err != nil {
		return nil, fieldErr(ErrInvalidLink, "url", "is not a valid URL")
	}
	q := u.Query()
	q.Set(RecipientParam, r.o.Recipient)
	u.RawQuery = q.Encode()
	jwe, err := r.getJWE(u.String(), "the file")
	if err != nil {
		return nil, err
	}
	f, err := r.decrypt(jwe, "", "file")
	if err != nil {
		return nil, err
	}
	return &Retrieved{Files: []RetrievedFile{f}}, nil
}

// maxManifestRequests is how often Retrieve asks for a link's manifest:
// once, and once more when a location has expired or been consumed.
const maxManifestRequests = 2

// errLocationGone marks a files[].location that answered 403, 404 or 410,
// or that is older than MaxLocationLifetime: a fresh manifest gives a
// fresh one. It wraps the error to report if none does.
type errLocationGone struct{ err error }

func (e *errLocationGone) Error() string { return e.err.Error() }
func (e *errLocationGone) Unwrap() error { return e.err }

// manifest POSTs the manifest request and fetches its files. Location
// URLs are "short-lived and potentially limited to one-time use": the
// receiver "SHALL NOT attempt to dereference a manifest's .files.location
// link more than one hour after requesting the manifest, and SHALL be
// capable of re-fetching the manifest to obtain fresh location links in
// the event that they have expired or been consumed" (STU1,
// ".files.location links"). So when a location is refused (403, 404 or
// 410) or an hour has passed since the manifest came, the manifest is
// requested once more and every file is fetched again from it (the
// manifest and its files are one package, which may have changed).
func (r *receiver) manifest(link string) (*Retrieved, error) {
	for n := 1; ; n++ {
		out, err := r.manifestOnce(link)
		var gone *errLocationGone
		if !errors.As(err, &gone) {
			return out, err
		}
		if n == maxManifestRequests {
			return nil, gone.err
		}
		r.total = 0
	}
}

// manifestOnce is one manifest request and the files it lists.
func (r *receiver) manifestOnce(link string) (*Retrieved, error) {
	body, err := json.Marshal(ManifestRequest{Recipient: r.o.Recipient, Passcode: r.o.Passcode, EmbeddedLengthMax: r.o.EmbeddedLengthMax})
	if err != nil {
		return nil, err
	}
	resp, err := r.do(func() (*http.Request, error) {
		req, err := http.NewRequestWithContext(r.ctx, http.MethodPost, link, bytes.NewReader(body))
		if err == nil {
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Accept", "application/json")
		}
		return req, err
	}, "the manifest")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	got := r.now()
	b, err := io.ReadAll(io.LimitReader(resp.Body, MaxManifestSize+1))
	if err != nil {
		return nil, fmt.Errorf("%w: reading the manifest: %w", ErrServer, netErr(err))
	}
	if len(b) > MaxManifestSize {
		return nil, fmt.Errorf("%w: the manifest is over %d MiB", ErrTooLarge, MaxManifestSize>>20)
	}
	m, err := ParseManifest(b)
	if err != nil {
		return nil, err
	}
	out := &Retrieved{Files: make([]RetrievedFile, 0, len(m.Files))}
	for i, mf := range m.Files {
		field := fmt.Sprintf("files[%d]", i)
		jwe := mf.Embedded
		if jwe == "" {
			if r.now().Sub(got) >= MaxLocationLifetime {
				return nil, &errLocationGone{fmt.Errorf("%w (%s: the manifest is over an hour old)", ErrLinkUnavailable, field)}
			}
			if jwe, err = r.getJWE(mf.Location, field); err != nil {
				return nil, err
			}
		}
		f, err := r.decrypt(jwe, mf.ContentType, field)
		if err != nil {
			return nil, err
		}
		f.LastUpdated, f.Status, f.FHIRVersion = mf.LastUpdated, mf.Status, mf.FHIRVersion
		out.Files = append(out.Files, f)
	}
	return out, nil
}

func (r *receiver) now() time.Time {
	if r.o.Now != nil {
		return r.o.Now()
	}
	return time.Now()
}

// maxJWE is the longest compact JWE a file within the plaintext limit can
// be: its ciphertext (with DEFLATE's overhead on incompressible data) in
// base64url, the header, IV and tag.
func (r *receiver) maxJWE() int64 {
	ct := r.o.MaxFileSize + r.o.MaxFileSize/1024 + 1024
	return ct/3*4 + 4 + maxHeaderSz + 64
}

// getJWE GETs a location (or a U link's url) and returns its body.
func (r *receiver) getJWE(loc, what string) (string, error) {
	resp, err := r.do(func() (*http.Request, error) {
		req, err := http.NewRequestWithContext(r.ctx, http.MethodGet, loc, nil)
		if err == nil {
			req.Header.Set("Accept", ContentTypeJOSE)
		}
		return req, err
	}, what)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	limit := r.maxJWE()
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return "", fmt.Errorf("%w: reading %s: %w", ErrServer, what, netErr(err))
	}
	if int64(len(b)) > limit {
		return "", fmt.Errorf("%w: %s is over %d MiB", ErrTooLarge, what, r.o.MaxFileSize>>20)
	}
	return string(b), nil
}

// decrypt opens one file and checks its cty against the manifest's
// contentType (when both are there).
func (r *receiver) decrypt(jwe, contentType, field string) (RetrievedFile, error) {
	left := r.o.MaxTotalSize - r.total
	max := min(r.o.MaxFileSize, left)
	if max <= 0 {
		return RetrievedFile{}, fmt.Errorf("%w: the link's files add up to more than %d MiB", ErrTooLarge, r.o.MaxTotalSize>>20)
	}
	cty, pt, err := DecryptFile(r.key, jwe, WithMaxPlaintext(max))
	if err != nil {
		if errors.Is(err, ErrTooLarge) && max < r.o.MaxFileSize {
			return RetrievedFile{}, fmt.Errorf("%w: the link's files add up to more than %d MiB", ErrTooLarge, r.o.MaxTotalSize>>20)
		}
		return RetrievedFile{}, fmt.Errorf("%s: %w", field, err)
	}
	r.total += int64(len(pt))
	mt := mediaType(contentType)
	if c := mediaType(cty); c != "" {
		if mt != "" && c != mt {
			return RetrievedFile{}, fieldErr(ErrInvalidManifest, field+".contentType", "does not match the file's cty header")
		}
		mt = c
	}
	return RetrievedFile{ContentType: mt, Data: pt}, nil
}

// mediaType is s's media type, lower case, without parameters; "" when s
// is empty or not a media type.
func mediaType(s string) string {
	mt, _, err := mime.ParseMediaType(s)
	if err != nil {
		return ""
	}
	return mt
}

// do sends a request (made afresh for each try), retries 429 and 503
// answers that ask for a short wait, and maps refusals to errors. It
// returns a 200 response.
func (r *receiver) do(newReq func() (*http.Request, error), what string) (*http.Response, error) {
	for try := 0; ; try++ {
		req, err := newReq()
		if err != nil {
			return nil, fmt.Errorf("%w: %s: cannot make the request", ErrServer, what)
		}
		resp, err := r.o.Client.Do(req)
		if err != nil {
			if ctxErr := r.ctx.Err(); ctxErr != nil {
				return nil, ctxErr
			}
			return nil, fmt.Errorf("%w: requesting %s: %w", ErrServer, what, netErr(err))
		}
		switch resp.StatusCode {
		case http.StatusOK:
			return resp, nil
		case http.StatusTooManyRequests, http.StatusServiceUnavailable:
			wait, ok := retryAfter(resp.Header.Get("Retry-After"))
			drain(resp)
			if !ok || try >= maxRetries {
				return nil, fmt.Errorf("%w: %s: the server is busy (HTTP %d); try again later", ErrServer, what, resp.StatusCode)
			}
			t := time.NewTimer(wait)
			select {
			case <-r.ctx.Done():
				t.Stop()
				return nil, r.ctx.Err()
			case <-t.C:
			}
			continue
		case http.StatusUnauthorized:
			b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
			drain(resp)
			var body struct {
				RemainingAttempts *int `json:"remainingAttempts"`
			}
			pe := &PasscodeError{Remaining: -1}
			if json.Unmarshal(b, &body) == nil && body.RemainingAttempts != nil && *body.RemainingAttempts >= 0 {
				pe.Remaining = *body.RemainingAttempts
			}
			return nil, pe
		case http.StatusNotFound:
			drain(resp)
			if what == "the manifest" || what == "the file" {
				return nil, ErrLinkUnavailable
			}
			return nil, &errLocationGone{fmt.Errorf("%w (%s)", ErrLinkUnavailable, what)}
		case http.StatusForbidden, http.StatusGone:
			// What signed URLs of cloud storage answer once expired.
			drain(resp)
			if what != "the manifest" && what != "the file" {
				return nil, &errLocationGone{fmt.Errorf("%w (%s: HTTP %d)", ErrLinkUnavailable, what, resp.StatusCode)}
			}
			return nil, fmt.Errorf("%w: %s: HTTP %d", ErrServer, what, resp.StatusCode)
		default:
			drain(resp)
			return nil, fmt.Errorf("%w: %s: HTTP %d", ErrServer, what, resp.StatusCode)
		}
	}
}

func drain(resp *http.Response) {
	io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
	resp.Body.Close()
}

// retryAfter reads a Retry-After of whole seconds, at most maxRetryWait.
func retryAfter(h string) (time.Duration, bool) {
	n, err := strconv.Atoi(strings.TrimSpace(h))
	if err != nil || n < 0 || time.Duration(n)*time.Second > maxRetryWait {
		return 0, false
	}
	return time.Duration(n) * time.Second, true
}

// netErr strips the URL from a client error: a manifest URL is a
// capability and must not end up in messages or logs.
func netErr(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var re *redirectError
	if errors.As(err, &re) {
		return re
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		return oe
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, http.ErrHandlerTimeout) {
		return errors.New("timed out")
	}
	var tm interface{ Timeout() bool }
	if errors.As(err, &tm) && tm.Timeout() {
		return errors.New("timed out")
	}
	return errors.New(strings.ReplaceAll(err.Error(), "\n", " "))
}

type redirectError struct{ reason string }

func (e *redirectError) Error() string { return "refused a redirect: " + e.reason }

// ReceiverTimeout bounds one request of NewReceiverClient's clients,
// reading the answer included.
const ReceiverTimeout = 2 * time.Minute

// NewReceiverClient returns the HTTP client Retrieve uses: requests time
// out after ReceiverTimeout; at most 5 redirects, each to an https URL
// (http only from a loopback host to a loopback host), sent without a
// Referer (it would carry the manifest URL); no cookies.
//
// With publicOnly, it connects only to public addresses: never to
// loopback, private (RFC 1918, RFC 4193), link-local, shared (RFC 6598),
// multicast or unspecified ones, whatever a host name resolves to, and it
// uses no proxy. A server that fetches links for its users (phrd) needs
// this, or a link could make it request its own private network.
func NewReceiverClient(publicOnly bool) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if publicOnly {
		tr.Proxy = nil
		d := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second, Control: publicOnlyControl}
		tr.DialContext = d.DialContext
	}
	return &http.Client{
		Transport: tr,
		Timeout:   ReceiverTimeout,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= maxRedirects {
				return &redirectError{fmt.Sprintf("more than %d redirects", maxRedirects)}
			}
			if err := validateURL("location", req.URL.String()); err != nil {
				return &redirectError{"the target is not https"}
			}
			if strings.EqualFold(req.URL.Scheme, "http") && !isLoopback(via[0].URL.Hostname()) {
				return &redirectError{"from a public host to plain http"}
			}
			req.Header.Del("Referer")
			return nil
		},
	}
}

// ErrPrivateAddress means a public-only client was asked to connect to an
// address that is not public.
var ErrPrivateAddress = errors.New("share: the link's server has an address that is not public")

var sharedAddressSpace = netip.MustParsePrefix("100.64.0.0/10")

func publicOnlyControl(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return ErrPrivateAddress
	}
	if !IsPublicAddr(ap.Addr()) {
		return ErrPrivateAddress
	}
	return nil
}

// IsPublicAddr reports whether a is a global unicast address outside the
// private, shared and loopback ranges (an IPv4-mapped IPv6 address is
// judged as the IPv4 address).
func IsPublicAddr(a netip.Addr) bool {
	a = a.Unmap()
	return a.IsValid() && a.IsGlobalUnicast() && !a.IsPrivate() && !a.IsLoopback() &&
		!a.IsLinkLocalUnicast() && !sharedAddressSpace.Contains(a) && a.Zone() == ""
}

// IsLink reports whether s is a SMART Health Link: "shlink:/..." or a
// viewer URL (http or https) whose fragment is one.
func IsLink(s string) bool {
	s = strings.TrimSpace(s)
	if len(s) >= len(LinkPrefix) && strings.EqualFold(s[:len(LinkPrefix)], LinkPrefix) {
		return true
	}
	i := strings.IndexByte(s, '#')
	if i < 0 {
		return false
	}
	f := s[i+1:]
	return len(f) >= len(LinkPrefix) && strings.EqualFold(f[:len(LinkPrefix)], LinkPrefix) &&
		(hasPrefixFold(s, "https://") || hasPrefixFold(s, "http://"))
}

func hasPrefixFold(s, p string) bool { return len(s) >= len(p) && strings.EqualFold(s[:len(p)], p) }
