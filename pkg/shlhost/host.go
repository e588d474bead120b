package shlhost

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/phr-project/phr/pkg/share"
	"github.com/phr-project/phr/pkg/sharestore"
)

// PathPrefix is where the public routes live: POST/GET PathPrefix+"/:id"
// and GET PathPrefix+"/:id/f/:token".
const PathPrefix = "/shl"

// Defaults of Options.
const (
	// DefaultEmbedMax is the longest file (JWE length) a manifest embeds
	// when the request gives no embeddedLengthMax; longer files are given
	// by location. The specification leaves the choice to the server; 256
	// KiB keeps a typical record to one request while bounding manifest
	// responses.
	DefaultEmbedMax = 256 << 10
	// DefaultMaxBody bounds a manifest request body.
	DefaultMaxBody = 8 << 10
	// DefaultMaxExpiry is the longest lifetime a share may be given.
	DefaultMaxExpiry = 365 * 24 * time.Hour
	// ViewerPath is the path of phrd's viewer page, the default prefix of
	// links.
	ViewerPath = "/view"
	// maxRecipientBytes bounds a recipient in a request (the log keeps at
	// most sharestore.MaxRecipientLength bytes of it).
	maxRecipientBytes = 1024
	// maxPasscodeBytes bounds a passcode in a request.
	maxPasscodeBytes = 1024
)

// Errors. The handlers and methods of a Host return them; phrd's one
// error table (pkg/server, errorStatus) turns them into HTTP answers, as
// docs/share-protocol.md describes. None of their texts holds an id,
// token, passcode, label or recipient.
var (
	// ErrInvalidRequest means the request breaks a rule (400); errors
	// matching it are *RequestError, whose Msg is fit to show.
	ErrInvalidRequest = errors.New("invalid share request")
	// ErrNotFound means there is no such share (for this owner), or it
	// can no longer be served: the one 404 every refusal of a link gets
	// (NotFoundMessage). A *sharestore.UnavailableError matches it too.
	ErrNotFound = sharestore.ErrNotFound
	// ErrBaseURL means the host's public base URL cannot be the url of a
	// link (the specification wants https; http only on a loopback
	// host), so no share can be made: a configuration mistake (503).
	ErrBaseURL = errors.New("shlhost: the public base URL cannot be used in links: it must be an absolute https URL (http only on a loopback host)")
	// ErrUnsupportedMedia: a manifest request that is not
	// application/json (415).
	ErrUnsupportedMedia = errors.New("the manifest request must be application/json")
	// ErrBusy: too many passcode checks of this share at once (429 with
	// Retry-After, as the specification allows). It is
	// sharestore.ErrBusy.
	ErrBusy = sharestore.ErrBusy
)

// A wrong or missing passcode is a *sharestore.PasscodeError: 401 with
// {"remainingAttempts": n}, the body the specification prescribes.

// NotFoundMessage is the message of the one 404 every refusal of a link
// gets, whatever the reason (unknown, expired, revoked, used up, locked).
const NotFoundMessage = "This link is not available: it may have expired or been revoked."

// RequestError is a request that breaks a rule. Msg says which and is fit
// to show the client. It matches ErrInvalidRequest.
type RequestError struct {
	Msg string
}

func (e *RequestError) Error() string { return "shlhost: " + e.Msg }

// Is makes a *RequestError match ErrInvalidRequest.
func (e *RequestError) Is(target error) bool { return target == ErrInvalidRequest }

func invalidf(format string, args ...any) error {
	return &RequestError{Msg: fmt.Sprintf(format, args...)}
}

// Options tune a Host. The zero value is usable.
type Options struct {
	// ViewerURL prefixes the links CreateShare returns; default
	// publicBaseURL + ViewerPath.
	ViewerURL string
	// Now replaces time.Now (tests use a fake clock).
	Now func() time.Time
	// EmbedMax is the longest file embedded when a manifest request gives
	// no embeddedLengthMax. Default DefaultEmbedMax; negative: never.
	EmbedMax int
	// LocationLifetime is how long a files[].location URL stays valid:
	// at most (and by default) one hour.
	LocationLifetime time.Duration
	// MaxExpiry is the longest lifetime CreateShare accepts. Default
	// DefaultMaxExpiry.
	MaxExpiry time.Duration
	// MaxBody bounds manifest request bodies. Default DefaultMaxBody.
	MaxBody int64
}

// Host serves shares from a sharestore.Store: the public SMART Health
// Links routes (Register) and the owner-side operations (CreateShare,
// ListShares, RevokeShare, ShareLog) that phrd mounts behind its
// authenticated API. Its methods are safe for concurrent use.
type Host struct {
	store  *sharestore.Store
	base   string // public base URL, no trailing slash
	viewer string
	opts   Options
	now    func() time.Time
}

// New returns a Host serving store's shares at publicBaseURL (the https
// origin, and optional path, phrd is reached at from outside, e.g.
// "https://phr.example.org"). Manifest URLs are publicBaseURL + "/shl/" +
// id, which the specification limits to 128 characters: publicBaseURL
// must be at most 80.
func New(store *sharestore.Store, publicBaseURL string, opts Options) *Host {
	h := &Host{store: store, base: strings.TrimRight(publicBaseURL, "/"), opts: opts, now: opts.Now}
	if h.now == nil {
		h.now = time.Now
	}
	h.viewer = opts.ViewerURL
	if h.viewer == "" {
		h.viewer = h.base + ViewerPath
	}
	if h.opts.EmbedMax == 0 {
		h.opts.EmbedMax = DefaultEmbedMax
	}
	if h.opts.LocationLifetime <= 0 || h.opts.LocationLifetime > share.MaxLocationLifetime {
		h.opts.LocationLifetime = share.MaxLocationLifetime
	}
	if h.opts.MaxExpiry <= 0 {
		h.opts.MaxExpiry = DefaultMaxExpiry
	}
	if h.opts.MaxBody <= 0 {
		h.opts.MaxBody = DefaultMaxBody
	}
	return h
}

// CheckBaseURL reports whether links can be made with the host's public
// base URL: nil, or an error wrapping ErrBaseURL that says why.
func (h *Host) CheckBaseURL() error {
	p := share.Payload{URL: h.manifestURL(strings.Repeat("A", 43)), Key: share.EncodeKey(make([]byte, 32)), V: share.Version}
	if err := p.Validate(); err != nil {
		return fmt.Errorf("%w (%v)", ErrBaseURL, err)
	}
	// Payload.Validate takes "https://:8443" (a port, no host).
	if u, err := url.Parse(h.base); err != nil || u.Hostname() == "" {
		return fmt.Errorf("%w (no host name)", ErrBaseURL)
	}
	return nil
}

// MaxBody is the largest manifest request body the host reads.
func (h *Host) MaxBody() int64 { return h.opts.MaxBody }

// Register mounts the public routes on e:
//
//	POST    /shl/:id           manifest request
//	GET     /shl/:id           direct file (U flag), ?recipient=
//	GET     /shl/:id/f/:token  a files[].location download
//	OPTIONS /shl/:id, /shl/:id/f/:token   CORS preflight
//
// CORS headers (any origin) are set on these routes only. No route needs
// authentication: the manifest id and the token are the capabilities.
// Request loggers must not log these paths as they are (see RedactPath).
func (h *Host) Register(e *echo.Echo) {
	e.POST(PathPrefix+"/:id", h.handleManifest, h.cors)
	e.GET(PathPrefix+"/:id", h.handleDirect, h.cors)
	e.GET(PathPrefix+"/:id/f/:token", h.handleFile, h.cors)
	e.OPTIONS(PathPrefix+"/:id", h.preflight, h.cors)
	e.OPTIONS(PathPrefix+"/:id/f/:token", h.preflight, h.cors)
}

// RedactPath returns path with the capability parts of the public routes
// (manifest id, location token) replaced, for request logs:
// "/shl/AbC.../f/xyz" becomes "/shl/:id/f/:token". Other paths are
// returned unchanged.
func RedactPath(path string) string {
	rest, ok := strings.CutPrefix(path, PathPrefix+"/")
	if !ok {
		return path
	}
	i := strings.IndexByte(rest, '/')
	switch {
	case i < 0:
		return PathPrefix + "/:id"
	case strings.HasPrefix(rest[i:], "/f/"):
		return PathPrefix + "/:id/f/:token"
	}
	return PathPrefix + "/:id/..."
}

// cors marks every response of the public routes as readable from any
// origin (SMART Health Links are opened by viewers on other hosts), never
// cached, never sniffed and without referrer.
func (h *Host) cors(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		hd := c.Response().Header()
		hd.Set("Access-Control-Allow-Origin", "*")
		hd.Set("Cache-Control", "no-store")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "no-referrer")
		return next(c)
	}
}

func (h *Host) preflight(c echo.Context) error {
	hd := c.Response().Header()
	hd.Set("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
	hd.Set("Access-Control-Allow-Headers", "Content-Type")
	hd.Set("Access-Control-Max-Age", "86400")
	return c.NoContent(http.StatusNoContent)
}
