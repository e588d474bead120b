package server

import (
	"io"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/phr-project/phr/pkg/server/api"
)

func TestParseTrustedProxies(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want string // prefixes joined by spaces, or "error"
	}{
		{"", ""},
		{"false", ""},
		{"10.0.0.5", "10.0.0.5/32"},
		{"10.0.0.0/8, fd00::/64,::1", "10.0.0.0/8 fd00::/64 ::1/128"},
		{"10.1.2.3/8", "10.0.0.0/8"},
		{"::ffff:10.0.0.5", "10.0.0.5/32"},
		{"true", "127.0.0.0/8 ::1/128 10.0.0.0/8 172.16.0.0/12 192.168.0.0/16 fc00::/7 169.254.0.0/16 fe80::/10"},
		{"proxy.example", "error"},
		{"10.0.0.0/33", "error"},
	} {
		got, err := ParseTrustedProxies(tt.in)
		var s []string
		for _, p := range got {
			s = append(s, p.String())
		}
		switch {
		case tt.want == "error" && err == nil:
			t.Errorf("%q: no error", tt.in)
		case tt.want != "error" && (err != nil || strings.Join(s, " ") != tt.want):
			t.Errorf("%q: %v %v, want %s", tt.in, s, err, tt.want)
		}
	}
}

// TestTrustedProxies: the client address that rate limits and the audit
// log see. Behind trusted proxies it is the rightmost X-Forwarded-For
// address outside them, so addresses a client puts in front of the chain
// never count; from a peer that is not a trusted proxy (every test
// request comes from 127.0.0.1) the header is ignored. The audit log
// shows the address's /24.
func TestTrustedProxies(t *testing.T) {
	loop := "127.0.0.1/32"
	for _, tt := range []struct {
		name    string
		trusted []string
		xff     []string // X-Forwarded-For headers of the login
		want    string
	}{
		{"no proxies: header ignored", nil, []string{"203.0.113.7"}, "127.0.0.0/24"},
		{"behind the proxy", []string{loop}, []string{"198.51.100.7"}, "198.51.100.0/24"},
		{"spoofed start of the chain", []string{loop}, []string{"6.6.6.6, 198.51.100.7"}, "198.51.100.0/24"},
		{"spoofed in a header of its own", []string{loop}, []string{"6.6.6.6", "198.51.100.7"}, "198.51.100.0/24"},
		{"two proxies", []string{loop, "10.0.0.0/8"}, []string{"6.6.6.6, 203.0.113.9, 10.1.2.3"}, "203.0.113.0/24"},
		// Older phrd trusted any private address: the client would have
		// been 203.0.113.5, an address it chose.
		{"a private hop is no proxy unless listed", []string{loop}, []string{"203.0.113.5, 192.168.1.1"}, "192.168.1.0/24"},
		// A peer outside the trusted networks: its header is a client's.
		{"untrusted peer", []string{"10.0.0.0/8"}, []string{"203.0.113.9"}, "127.0.0.0/24"},
		{"unparsable rightmost entry", []string{loop}, []string{"198.51.100.7, not-an-ip"}, "127.0.0.0/24"},
		{"all trusted", []string{loop, "10.0.0.0/8"}, []string{"10.4.4.4, 10.5.5.5"}, "10.4.4.0/24"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTestServer(t, func(c *Config) {
				for _, p := range tt.trusted {
					c.TrustedProxies = append(c.TrustedProxies, netip.MustParsePrefix(p))
				}
			})
			c := ts.client()
			want(t, c.do("POST", "/api/v1/accounts", api.CreateAccountRequest{Username: "alice", Passphrase: testPass}), http.StatusCreated)
			req, _ := http.NewRequest("POST", ts.url+"/api/v1/sessions", strings.NewReader(`{"username":"alice","passphrase":"`+testPass+`"}`))
			req.Header.Set("Content-Type", "application/json")
			for _, h := range tt.xff {
				req.Header.Add("X-Forwarded-For", h)
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			r := &resp{status: res.StatusCode, body: body}
			want(t, r, http.StatusCreated)
			var s api.Session
			r.decode(t, &s)
			c.token = s.Token
			var audit api.Audit
			c.do("GET", "/api/v1/audit", nil).decode(t, &audit)
			i := slices.IndexFunc(audit.Entries, func(e api.AuditEntry) bool { return e.Event == AuditLogin })
			if i < 0 || audit.Entries[i].Client != tt.want {
				t.Fatalf("login seen from %+v, want %s", audit.Entries, tt.want)
			}
		})
	}
}

// TestRegistrationModes: by default accounts are made only by a client on
// phrd's own machine (a loopback address, no proxy in between);
// --registration open lets anyone, closed no one (phrd account create
// still works).
func TestRegistrationModes(t *testing.T) {
	body := func(u string) api.CreateAccountRequest {
		return api.CreateAccountRequest{Username: u, Passphrase: testPass}
	}
	local := netip.MustParsePrefix("127.0.0.1/32")
	for _, tt := range []struct {
		name    string
		mode    string
		trusted []netip.Prefix
		hdr     []string
		status  int
	}{
		{"default, local", "", nil, nil, http.StatusCreated},
		{"default, through a proxy on this machine", "", nil, []string{"X-Forwarded-For", "203.0.113.5"}, http.StatusForbidden},
		{"default, Forwarded header", "", nil, []string{"Forwarded", "for=203.0.113.5"}, http.StatusForbidden},
		{"default, behind a trusted proxy", "", []netip.Prefix{local}, []string{"X-Forwarded-For", "203.0.113.5"}, http.StatusForbidden},
		{"default, spoofing loopback behind a trusted proxy", "", []netip.Prefix{local}, []string{"X-Forwarded-For", "127.0.0.1"}, http.StatusForbidden},
		{"loopback", RegistrationLoopback, nil, nil, http.StatusCreated},
		{"open, through a proxy", RegistrationOpen, nil, []string{"X-Forwarded-For", "203.0.113.5"}, http.StatusCreated},
		{"closed, local", RegistrationClosed, nil, nil, http.StatusForbidden},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTestServer(t, func(c *Config) { c.Registration, c.TrustedProxies = tt.mode, tt.trusted })
			r := ts.client().do("POST", "/api/v1/accounts", body("alice"), tt.hdr...)
			want(t, r, tt.status)
			if tt.status == http.StatusForbidden && r.errCode() != api.CodeForbidden {
				t.Fatalf("code %s", r.errCode())
			}
		})
	}
	if _, err := New(Config{DataDir: t.TempDir(), Registration: "sometimes"}); err == nil {
		t.Error("an unknown registration mode was accepted")
	}
}
