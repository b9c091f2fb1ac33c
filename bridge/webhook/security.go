package webhook

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/net/http/httpproxy"

	"github.com/hookbridge/hookbridge/bridge/config"
	"github.com/hookbridge/hookbridge/bridge/internal/keypair"
	"github.com/hookbridge/hookbridge/bridge/target"
)

// security is what a webhook's security settings build: the TLS
// configuration, the proxy, the private-network guard and the source of the
// Authorization header. It changes the target's one pooled transport; it
// does not make a client of its own.
type security struct {
	tls   *tls.Config                           // nil: Go's defaults
	cert  *keypair.Pair                         // the client certificate; nil: none
	proxy func(*http.Request) (*url.URL, error) // nil: no proxy
	guard *guard                                // nil: every address may be dialled
	auth  credential                            // nil: no Authorization header
}

// newSecurity reads the CA bundle, the client key pair and the token file of
// cfg and builds its security. Errors never contain a secret, a token or a
// URL. A URL whose host is a blocked address literally is not refused here:
// like a name that resolves to one, it is refused when dialled, so that both
// fail the same way.
func newSecurity(cfg config.Webhook) (*security, []error) {
	s := &security{}
	var errs []error

	tc, cert, err := clientTLS(cfg.TLS)
	if err != nil {
		errs = append(errs, err)
	}
	s.tls, s.cert = tc, cert

	switch {
	case cfg.Proxy.URL != "" && cfg.UseEnvProxy:
		errs = append(errs, errors.New("proxy: set proxy.url or use_env_proxy, not both"))
	case cfg.Proxy.URL != "":
		pu, err := url.Parse(cfg.Proxy.URL)
		if err != nil || pu.Host == "" {
			errs = append(errs, errors.New("proxy.url is not a valid proxy URL"))
		} else {
			s.proxy = http.ProxyURL(pu)
		}
	case cfg.UseEnvProxy:
		// The environment as it is when the target is built (net/http's
		// ProxyFromEnvironment would keep the first value it ever read).
		env := httpproxy.FromEnvironment()
		errs = append(errs, checkEnvProxy("HTTPS_PROXY", env.HTTPSProxy)...)
		errs = append(errs, checkEnvProxy("HTTP_PROXY", env.HTTPProxy)...)
		proxyFor := env.ProxyFunc()
		s.proxy = func(r *http.Request) (*url.URL, error) { return proxyFor(r.URL) }
	}

	if cfg.DenyPrivateNetworks {
		if s.proxy != nil && !cfg.AllowProxyWithDenyPrivateNetworks {
			errs = append(errs, errors.New("deny_private_networks: a proxy resolves and dials the host, so the guard "+
				"cannot check it; set allow_proxy_with_deny_private_networks only if the proxy enforces its own egress policy"))
		}
		s.guard = &guard{}
	}

	auth, authErrs := newCredential(cfg, s)
	errs = append(errs, authErrs...)
	s.auth = auth
	for name := range cfg.Headers {
		if auth != nil && http.CanonicalHeaderKey(name) == "Authorization" {
			errs = append(errs, errors.New("headers: Authorization conflicts with url credentials, bearer_token, bearer_token_file or oauth2"))
		}
	}
	return s, errs
}

// checkEnvProxy refuses a proxy variable that httpproxy would ignore: it
// drops a value it cannot parse without a word, and the requests it should
// have carried would go straight to the receiver, past the proxy and the
// egress policy it stands for. The value is not quoted: it may hold the
// proxy's password.
func checkEnvProxy(name, value string) []error {
	if value == "" {
		return nil
	}
	if u, err := url.Parse(value); err == nil && u.Scheme != "" && u.Host != "" {
		return nil
	}
	if _, err := url.Parse("http://" + value); err == nil {
		return nil // httpproxy reads it as an http:// proxy
	}
	return []error{fmt.Errorf("use_env_proxy: %s (or %s) is not a valid proxy URL; requests would go direct",
		name, strings.ToLower(name))}
}

// configure applies the TLS configuration, the proxy and the guard to the
// target's pooled transport.
func (s *security) configure(tr *http.Transport) {
	if s.tls != nil {
		tr.TLSClientConfig = s.tls
	}
	tr.Proxy = s.proxy
	if s.proxy != nil {
		tr.OnProxyConnectResponse = proxyConnectAnswer
	}
	if s.guard != nil {
		tr.DialContext = s.dialContext()
	}
	if s.proxy != nil && s.tls != nil && s.tls.ServerName != "" {
		// server_name names the receiver; net/http would check an https
		// proxy's certificate against it too.
		p := &tlsProxies{cfg: s.tls.Clone(), dial: tr.DialContext}
		p.cfg.ServerName, p.cfg.NextProtos = "", []string{"http/1.1"}
		tr.Proxy, tr.DialContext = p.proxy(tr.Proxy), p.dialContext
	}
	if s.guard != nil && s.proxy != nil {
		tr.Proxy = s.guard.recordProxy(tr.Proxy)
	}
}

// proxyConnectAnswer fails a CONNECT the proxy refused with an error that
// says the proxy answered: net/http's own is the bare status text ("Bad
// Gateway"), which reads as the receiver's answer. The proxy is named by its
// host and port only (its URL may hold credentials). Such a failure is a
// connection error: retryable.
func proxyConnectAnswer(_ context.Context, proxy *url.URL, _ *http.Request, res *http.Response) error {
	if res.StatusCode == http.StatusOK {
		return nil
	}
	return fmt.Errorf("the proxy %s refused the CONNECT: %s", proxy.Host, statusText(res.StatusCode))
}

// tlsProxies makes the TLS connections to https:// proxies itself, checked
// against the proxy's own name. net/http checks them with TLSClientConfig,
// whose ServerName, when tls.server_name is set, names the receiver, so
// that no https proxy would pass. Such a proxy goes to the transport as an
// http:// proxy with its port, and the dial of its address adds the TLS
// layer (the webhook's tls settings but server_name, as for the OAuth 2.0
// token endpoint). The receiver's own TLS, inside the CONNECT tunnel, is
// still net/http's, with server_name.
type tlsProxies struct {
	cfg   *tls.Config
	dial  func(ctx context.Context, network, addr string) (net.Conn, error)
	names sync.Map // host:port of an https proxy → its host name
}

// proxy wraps the transport's proxy function.
func (p *tlsProxies) proxy(next func(*http.Request) (*url.URL, error)) func(*http.Request) (*url.URL, error) {
	return func(r *http.Request) (*url.URL, error) {
		u, err := next(r)
		if err != nil || u == nil || !strings.EqualFold(u.Scheme, "https") {
			return u, err
		}
		addr := canonicalAddr(u)
		p.names.Store(addr, u.Hostname())
		plain := *u
		plain.Scheme, plain.Host = "http", addr
		return &plain, nil
	}
}

// dialContext dials addr and, when it is an https proxy's, makes the TLS
// handshake, bounded as net/http bounds one.
func (p *tlsProxies) dialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	conn, err := p.dial(ctx, network, addr)
	name, ok := p.names.Load(addr)
	if err != nil || !ok {
		return conn, err
	}
	cfg := p.cfg.Clone()
	cfg.ServerName = name.(string)
	tc := tls.Client(conn, cfg)
	hctx, cancel := context.WithTimeout(ctx, tlsHandshakeTimeout)
	defer cancel()
	if err := tc.HandshakeContext(hctx); err != nil {
		_ = conn.Close()
		return nil, err
	}
	return tc, nil
}

// dialContext is how the target's connections are dialled: through the
// guard when deny_private_networks is on.
func (s *security) dialContext() func(ctx context.Context, network, addr string) (net.Conn, error) {
	d := &net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}
	if s.guard == nil {
		return d.DialContext
	}
	s.guard.dial = d.DialContext
	s.guard.guarded = (&net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second, ControlContext: s.guard.control}).DialContext
	return s.guard.dialContext
}

// wrap adds the Authorization header to every request, when there is one.
// pace waits for the rate limiter's turn of the request sent again after a
// 401 (the first one waited for its own before it reached rt), and resign
// gives it a new timestamp and signature.
func (s *security) wrap(rt http.RoundTripper, pace func(context.Context) error, resign func(http.Header, []byte)) http.RoundTripper {
	if s.auth == nil {
		return rt
	}
	return &authTransport{next: rt, cred: s.auth, pace: pace, resign: resign}
}

// clientTLS builds the TLS configuration of a webhook and its client
// certificate; nil when nothing is configured. The CA bundle replaces the
// system roots. The client certificate's files are loaded again when they
// change (keypair.Pair): a renewed certificate goes in the next handshake.
func clientTLS(t config.WebhookTLS) (*tls.Config, *keypair.Pair, error) {
	if !t.Set() {
		return nil, nil, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName, InsecureSkipVerify: t.InsecureSkipVerify} //nolint:gosec // opt-in
	if t.CAFile != "" {
		pool, err := keypair.CAPool(t.CAFile)
		if err != nil {
			return nil, nil, fmt.Errorf("tls.ca_file: %w", err)
		}
		tc.RootCAs = pool
	}
	var cert *keypair.Pair
	if t.CertFile != "" || t.KeyFile != "" {
		var err error
		if cert, err = keypair.Load(t.CertFile, t.KeyFile); err != nil {
			return nil, nil, fmt.Errorf("tls client certificate: %w", err)
		}
		tc.GetClientCertificate = cert.GetClientCertificate
	}
	return tc, cert, nil
}

// BlockedAddressError is the error of a dial refused by
// deny_private_networks. Deliver reports it as a permanent failure: a
// security setting does not heal by retrying.
type BlockedAddressError struct {
	// Addr is the resolved address that was refused.
	Addr netip.Addr
	// Class names the range it is in, e.g. "loopback".
	Class string
}

func (e *BlockedAddressError) Error() string {
	return fmt.Sprintf("address %s is %s, refused by deny_private_networks", e.Addr, e.Class)
}

// blockedRange is a range of addresses deny_private_networks refuses.
type blockedRange struct {
	prefix netip.Prefix
	class  string
}

// blockedRanges are checked in order; the first that contains an address
// names its class.
var blockedRanges = func() []blockedRange {
	var rs []blockedRange
	add := func(class string, prefixes ...string) {
		for _, p := range prefixes {
			rs = append(rs, blockedRange{netip.MustParsePrefix(p), class})
		}
	}
	add("link-local (cloud metadata endpoint)", "169.254.169.254/32", "169.254.170.2/32", "fd00:ec2::254/128")
	add("unspecified", "0.0.0.0/8", "::/128")
	add("loopback", "127.0.0.0/8", "::1/128")
	add("private (RFC 1918)", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")
	add("link-local", "169.254.0.0/16", "fe80::/10")
	add("shared address space (CGNAT, RFC 6598)", "100.64.0.0/10")
	add("unique local (fc00::/7)", "fc00::/7")
	add("site-local (deprecated)", "fec0::/10")
	add("multicast", "224.0.0.0/4", "ff00::/8")
	add("reserved", "240.0.0.0/4", "192.0.0.0/24", "198.18.0.0/15", "::/96", "100::/64")
	add("local-use NAT64", "64:ff9b:1::/48")
	return rs
}()

// Prefixes of IPv6 addresses that embed an IPv4 address; the embedded address
// is checked too.
var (
	nat64Prefix = netip.MustParsePrefix("64:ff9b::/96") // RFC 6052: the last 32 bits
	sixToFour   = netip.MustParsePrefix("2002::/16")    // RFC 3056: bits 16-47
	teredo      = netip.MustParsePrefix("2001::/32")    // RFC 4380: the last 32 bits, inverted
)

// BlockedClass returns the class of ip when deny_private_networks refuses it
// ("loopback", "private (RFC 1918)", ...), or "" when it is allowed.
// IPv4-mapped IPv6 addresses are checked as IPv4, and so are the IPv4
// addresses embedded in NAT64, 6to4 and Teredo addresses. A zone is ignored.
func BlockedClass(ip netip.Addr) string {
	ip = ip.WithZone("").Unmap()
	if !ip.IsValid() {
		return "invalid"
	}
	for _, r := range blockedRanges {
		if r.prefix.Contains(ip) {
			return r.class
		}
	}
	if ip.Is6() {
		b := ip.As16()
		var v4 netip.Addr
		switch {
		case nat64Prefix.Contains(ip):
			v4 = netip.AddrFrom4([4]byte(b[12:16]))
		case sixToFour.Contains(ip):
			v4 = netip.AddrFrom4([4]byte(b[2:6]))
		case teredo.Contains(ip):
			v4 = netip.AddrFrom4([4]byte{^b[12], ^b[13], ^b[14], ^b[15]})
		default:
			return ""
		}
		if class := BlockedClass(v4); class != "" {
			return class + " (embedded in " + ip.String() + ")"
		}
	}
	return ""
}

// guard refuses connections to blocked addresses. It checks the resolved
// address in net.Dialer.Control, after DNS and for every address tried, so a
// name that resolves (or re-resolves) to an internal address is refused too.
// Connections to a proxy the transport chose are not checked: the proxy is
// configured by the operator, who allowed it explicitly.
type guard struct {
	dial    func(ctx context.Context, network, addr string) (net.Conn, error) // unchecked, for proxies
	guarded func(ctx context.Context, network, addr string) (net.Conn, error)
	proxies sync.Map // canonical host:port of the proxies in use → true
	// allow, when set, exempts addresses from the check (tests only).
	allow func(netip.AddrPort) bool
}

// control runs after the address is resolved, before the connection is made.
func (g *guard) control(ctx context.Context, _, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("deny_private_networks: cannot check address %q", address)
	}
	if class := BlockedClass(ap.Addr()); class != "" && (g.allow == nil || !g.allow(ap)) {
		return &BlockedAddressError{Addr: ap.Addr().WithZone(""), Class: class}
	}
	if tried, ok := ctx.Value(allowedTriedKey{}).(*atomic.Bool); ok {
		tried.Store(true)
	}
	return nil
}

// allowedTriedKey marks, in a dial's context, that the dial tried an address
// the guard allowed.
type allowedTriedKey struct{}

// dialContext dials a proxy unchecked and everything else checked. A name
// with blocked and allowed addresses whose allowed ones did not answer
// fails as a receiver that is down (retryable), not as refused by the guard:
// net.Dialer reports the first address's error, which may be the blocked
// one's.
func (g *guard) dialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	if _, ok := g.proxies.Load(addr); ok {
		return g.dial(ctx, network, addr)
	}
	var tried atomic.Bool
	conn, err := g.guarded(context.WithValue(ctx, allowedTriedKey{}, &tried), network, addr)
	if err != nil && tried.Load() {
		if be, ok := errors.AsType[*BlockedAddressError](err); ok {
			return nil, fmt.Errorf("dial %s: its allowed addresses did not answer (%s, %s, was refused by deny_private_networks)", addr, be.Addr, be.Class)
		}
	}
	return conn, err
}

// recordProxy wraps the transport's proxy function so that the guard knows
// which addresses are proxies (NO_PROXY hosts are dialled directly, checked).
func (g *guard) recordProxy(proxy func(*http.Request) (*url.URL, error)) func(*http.Request) (*url.URL, error) {
	return func(r *http.Request) (*url.URL, error) {
		u, err := proxy(r)
		if u != nil && err == nil {
			g.proxies.Store(canonicalAddr(u), true)
		}
		return u, err
	}
}

// canonicalAddr is host:port of a URL (a proxy's, or an HTTP webhook's), with
// the scheme's default port, as a transport dials it.
func canonicalAddr(u *url.URL) string {
	host, port := u.Hostname(), u.Port()
	if port != "" && !strings.Contains(host, ":") {
		return u.Host // host:port, as JoinHostPort would write it, without building it again
	}
	if port == "" {
		switch strings.ToLower(u.Scheme) {
		case "https":
			port = "443"
		case "socks5", "socks5h":
			port = "1080"
		default:
			port = "80"
		}
	}
	return net.JoinHostPort(host, port)
}

// failureKind classifies an error that left no HTTP status: a dial refused by
// deny_private_networks is Permanent (a setting does not heal by retrying,
// and the record is dead-lettered), and so is a request whose header is
// larger than an HTTP/2 receiver said it takes (see errHeaderListSize);
// everything else is Retryable.
func failureKind(err error) target.Kind {
	if be := (*BlockedAddressError)(nil); errors.As(err, &be) {
		return target.Permanent
	}
	if strings.Contains(err.Error(), errHeaderListSize) {
		return target.Permanent
	}
	return target.Retryable
}

// errHeaderListSize is the message of the error net/http's HTTP/2 client
// returns, without sending anything, for a request whose header is larger
// than the receiver's SETTINGS_MAX_HEADER_LIST_SIZE (a record's key and
// headers). Over HTTP/1.1 the same receiver answers 431, permanent; as a
// connection error it would be retried and count against the breaker, and
// one such record would pause its route. (net/http does not export it.)
const errHeaderListSize = "request header list larger than peer's advertised limit"
