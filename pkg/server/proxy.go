package server

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"

	"github.com/labstack/echo/v4"
	"github.com/phr-project/phr/pkg/server/api"
)

// Behind a reverse proxy every request comes from the proxy's address;
// the client's is in X-Forwarded-For, which each proxy on the way extends
// on the right and which the client itself can start with anything. So
// phrd trusts the header only from the networks it is told are its
// proxies (Config.TrustedProxies), and takes as the client the rightmost
// address of the chain (the peer's own address last) that is not in one
// of them: the address the first trusted proxy saw. Entries left of it,
// which the client may have written, never count. From a peer outside
// those networks the header is ignored.

// loopbackAndPrivate is what `--trust-proxy` alone (older phrd's boolean
// flag) trusts: loopback, private and link-local networks.
var loopbackAndPrivate = []netip.Prefix{
	netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128"),
	netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("172.16.0.0/12"), netip.MustParsePrefix("192.168.0.0/16"),
	netip.MustParsePrefix("fc00::/7"),
	netip.MustParsePrefix("169.254.0.0/16"), netip.MustParsePrefix("fe80::/10"),
}

// ParseTrustedProxies reads the value of --trust-proxy: networks in CIDR
// notation or single addresses, separated by commas; "" or "false" for
// none; "true" (the flag alone) for loopback, private and link-local
// networks, as older phrd trusted.
func ParseTrustedProxies(s string) ([]netip.Prefix, error) {
	switch strings.TrimSpace(strings.ToLower(s)) {
	case "", "false":
		return nil, nil
	case "true":
		return append([]netip.Prefix(nil), loopbackAndPrivate...), nil
	}
	var out []netip.Prefix
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if p, err := netip.ParsePrefix(f); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(f)
		if err != nil {
			return nil, fmt.Errorf("trusted proxies: %q is neither a network (10.0.0.0/8) nor an address", f)
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, nil
}

// ipExtractor finds a request's client address: the peer's, or behind
// trusted proxies the rightmost untrusted address of X-Forwarded-For.
func ipExtractor(trusted []netip.Prefix) echo.IPExtractor {
	if len(trusted) == 0 {
		return echo.ExtractIPDirect()
	}
	opts := []echo.TrustOption{echo.TrustLoopback(false), echo.TrustLinkLocal(false), echo.TrustPrivateNet(false)}
	for _, p := range trusted {
		opts = append(opts, echo.TrustIPRange(&net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}))
	}
	return echo.ExtractIPFromXFFHeader(opts...)
}

// registrationGate lets POST /api/v1/accounts through in loopback mode
// (the default) only for a client on this machine: a loopback client
// address, and no forwarding header (a proxy on this machine relays
// requests from anywhere; behind trusted proxies the client address is
// the real client's, which is not loopback). --registration open lets
// anyone through; closed, the handler refuses everyone.
func (s *Server) registrationGate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if s.cfg.Registration == RegistrationLoopback && !localClient(c) {
			return newError(http.StatusForbidden, api.CodeForbidden, "registration is open only on phrd's own machine; ask the operator for an account (phrd account create), or start phrd with --registration open")
		}
		return next(c)
	}
}

// localClient reports whether the request comes from this machine itself,
// not relayed by a proxy.
func localClient(c echo.Context) bool {
	if !clientAddr(c).IsLoopback() {
		return false
	}
	h := c.Request().Header
	return h.Get("X-Forwarded-For") == "" && h.Get("Forwarded") == "" && h.Get("X-Real-Ip") == ""
}
