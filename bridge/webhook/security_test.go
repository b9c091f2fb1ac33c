package webhook

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookbridge/hookbridge/bridge/config"
	"github.com/hookbridge/hookbridge/bridge/target"
)

func TestBlockedClass(t *testing.T) {
	tests := []struct {
		addr, class string
	}{
		{"127.0.0.1", "loopback"},
		{"127.1.2.3", "loopback"},
		{"::1", "loopback"},
		{"::ffff:127.0.0.1", "loopback"},
		{"0.0.0.0", "unspecified"},
		{"::", "unspecified"},
		{"10.1.2.3", "private (RFC 1918)"},
		{"172.16.0.1", "private (RFC 1918)"},
		{"172.31.255.255", "private (RFC 1918)"},
		{"192.168.1.1", "private (RFC 1918)"},
		{"::ffff:10.0.0.1", "private (RFC 1918)"},
		{"169.254.169.254", "link-local (cloud metadata endpoint)"},
		{"::ffff:169.254.169.254", "link-local (cloud metadata endpoint)"},
		{"fd00:ec2::254", "link-local (cloud metadata endpoint)"},
		{"169.254.1.1", "link-local"},
		{"fe80::1", "link-local"},
		{"fe80::1%eth0", "link-local"},
		{"100.64.0.1", "shared address space (CGNAT, RFC 6598)"},
		{"100.127.255.255", "shared address space (CGNAT, RFC 6598)"},
		{"fc00::1", "unique local (fc00::/7)"},
		{"fd12:3456::1", "unique local (fc00::/7)"},
		{"224.0.0.1", "multicast"},
		{"ff02::1", "multicast"},
		{"255.255.255.255", "reserved"},
		{"64:ff9b::7f00:1", "loopback (embedded in 64:ff9b::7f00:1)"},
		{"2002:a9fe:a9fe::1", "link-local (cloud metadata endpoint) (embedded in 2002:a9fe:a9fe::1)"},
		// Teredo: the client's address is the last 32 bits, inverted
		// (0x80ffffff is 127.0.0.0; 0xf5fffefe is 10.0.1.1).
		{"2001:0:4136:e378:8000:63bf:80ff:fffe", "loopback (embedded in 2001:0:4136:e378:8000:63bf:80ff:fffe)"},
		{"2001:0:4136:e378:8000:63bf:f5ff:fefe", "private (RFC 1918) (embedded in 2001:0:4136:e378:8000:63bf:f5ff:fefe)"},
		// allowed
		{"8.8.8.8", ""},
		{"172.32.0.1", ""},
		{"100.128.0.1", ""},
		{"169.255.0.1", ""},
		{"2001:4860:4860::8888", ""},
		{"::ffff:8.8.8.8", ""},
		{"64:ff9b::808:808", ""},
		{"2001:0:4136:e378:8000:63bf:f7f7:f7f7", ""}, // Teredo of 8.8.8.8
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			if got := BlockedClass(netip.MustParseAddr(tt.addr)); got != tt.class {
				t.Errorf("BlockedClass(%s) = %q, want %q", tt.addr, got, tt.class)
			}
		})
	}
}

// guarded builds a target for url with deny_private_networks on.
func guarded(t *testing.T, url string, change func(*Options)) *Target {
	t.Helper()
	return newTarget(t, url, func(o *Options) {
		o.Config.DenyPrivateNetworks = true
		if change != nil {
			change(o)
		}
	})
}

// wantBlocked checks that err is a permanent failure naming class, caused by
// a refused dial.
func wantBlocked(t *testing.T, err error, class string) {
	t.Helper()
	var be *BlockedAddressError
	if !errors.As(err, &be) {
		t.Fatalf("error %v is not a *BlockedAddressError", err)
	}
	if target.KindOf(err) != target.Permanent {
		t.Errorf("kind %v, want Permanent", target.KindOf(err))
	}
	if !strings.Contains(err.Error(), class) || !strings.Contains(err.Error(), "deny_private_networks") {
		t.Errorf("error %q does not name %q and deny_private_networks", err, class)
	}
}

func TestDenyPrivateNetworks(t *testing.T) {
	srv, reqs := receiver(t, nil)
	port := srv.Listener.Addr().(*net.TCPAddr).Port

	t.Run("off: loopback is allowed", func(t *testing.T) {
		tg := newTarget(t, srv.URL, nil)
		if _, err := deliver(t, t.Context(), tg, record()); err != nil {
			t.Fatal(err)
		}
		next(t, reqs)
	})

	tests := []struct {
		name, url, class string
	}{
		{"loopback address", srv.URL, "loopback"},
		{"name that resolves to loopback", "http://localhost:" + itoa(port) + "/hook", "loopback"},
		{"cloud metadata", "http://169.254.169.254/latest/meta-data/", "link-local (cloud metadata endpoint)"},
		{"ipv4-mapped ipv6 loopback", "http://[::ffff:127.0.0.1]:" + itoa(port) + "/hook", "loopback"},
		{"private", "http://10.255.255.1/hook", "private"},
		{"unspecified", "http://0.0.0.0:" + itoa(port) + "/hook", "unspecified"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tg := guarded(t, tt.url, nil)
			_, err := deliver(t, t.Context(), tg, record())
			wantBlocked(t, err, tt.class)
			if strings.Contains(err.Error(), "?") {
				t.Errorf("error shows a query: %v", err)
			}
		})
	}
	select {
	case r := <-reqs:
		t.Fatalf("the receiver saw a request with the guard on: %+v", r)
	default:
	}
}

// A batch request refused by the guard fails every record permanently too.
func TestDenyPrivateNetworksBatch(t *testing.T) {
	srv, reqs := receiver(t, nil)
	tg := guarded(t, srv.URL, func(o *Options) {
		o.Config.Batch = config.Batch{MaxMessages: 1, MaxWait: config.Duration(time.Millisecond)}
	})
	_, err := deliver(t, t.Context(), tg, record())
	wantBlocked(t, err, "loopback")
	select {
	case r := <-reqs:
		t.Fatalf("the receiver saw a request: %+v", r)
	default:
	}
}

// A redirect to an internal address is not followed, with the guard on as
// without it: the 302 itself is the (permanent) answer, and the internal
// server is never dialled.
func TestRedirectToInternalNotFollowed(t *testing.T) {
	var internalHits atomic.Int32
	internal := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { internalHits.Add(1) }))
	t.Cleanup(internal.Close)
	srv, reqs := receiver(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, internal.URL+"/latest/meta-data/", http.StatusFound)
	})
	srvAddr := netip.MustParseAddrPort(srv.Listener.Addr().String())

	for _, guardOn := range []bool{false, true} {
		// With the guard on, only the receiver's own address is exempt (the
		// test's receiver is on loopback): the internal server is not.
		tr := newTransport()
		sec, errs := newSecurity(config.Webhook{DenyPrivateNetworks: guardOn})
		if len(errs) > 0 {
			t.Fatal(errs)
		}
		sec.configure(tr)
		if sec.guard != nil {
			sec.guard.allow = func(ap netip.AddrPort) bool { return ap == srvAddr }
		}
		tg := newTarget(t, srv.URL, func(o *Options) { o.Transport = tr; o.Config.DenyPrivateNetworks = guardOn })
		_, err := deliver(t, t.Context(), tg, record())
		var te *target.Error
		if !errors.As(err, &te) || te.Kind != target.Permanent || te.Status != http.StatusFound {
			t.Fatalf("guard %v: error %v, want a permanent 302", guardOn, err)
		}
		next(t, reqs)
	}
	if n := internalHits.Load(); n != 0 {
		t.Fatalf("the internal server saw %d requests", n)
	}
}

// proxyServer is a forward HTTP proxy that answers every request itself,
// recording the absolute URL asked for.
func proxyServer(t *testing.T) (*httptest.Server, <-chan string) {
	t.Helper()
	seen := make(chan string, 16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen <- r.URL.String()
	}))
	t.Cleanup(srv.Close)
	return srv, seen
}

func TestProxy(t *testing.T) {
	proxy, seen := proxyServer(t)
	const hook = "http://receiver.invalid/hook"

	t.Run("explicit", func(t *testing.T) {
		tg := newTarget(t, hook, func(o *Options) { o.Config.Proxy.URL = proxy.URL })
		if _, err := deliver(t, t.Context(), tg, record()); err != nil {
			t.Fatal(err)
		}
		if got := <-seen; got != hook {
			t.Errorf("proxy saw %q, want %q", got, hook)
		}
	})

	t.Run("refused with the guard unless allowed", func(t *testing.T) {
		_, err := New(Options{Route: "r", Config: config.Webhook{URL: hook, DenyPrivateNetworks: true, Proxy: config.Proxy{URL: proxy.URL}}})
		if err == nil || !strings.Contains(err.Error(), "allow_proxy_with_deny_private_networks") {
			t.Fatalf("New = %v, want a refusal naming allow_proxy_with_deny_private_networks", err)
		}
	})

	t.Run("allowed with the guard: the proxy is dialled, unchecked", func(t *testing.T) {
		tg := guarded(t, hook, func(o *Options) {
			o.Config.Proxy.URL = proxy.URL
			o.Config.AllowProxyWithDenyPrivateNetworks = true
		})
		if _, err := deliver(t, t.Context(), tg, record()); err != nil {
			t.Fatal(err)
		}
		if got := <-seen; got != hook {
			t.Errorf("proxy saw %q, want %q", got, hook)
		}
	})

	t.Run("environment ignored unless use_env_proxy", func(t *testing.T) {
		t.Setenv("HTTP_PROXY", proxy.URL)
		t.Setenv("http_proxy", proxy.URL)
		t.Setenv("NO_PROXY", "")
		t.Setenv("no_proxy", "")
		tg := newTarget(t, hook, nil)
		if _, err := deliver(t, t.Context(), tg, record()); target.KindOf(err) != target.Retryable {
			t.Fatalf("without use_env_proxy: error %v, want a retryable dial failure (receiver.invalid does not resolve)", err)
		}
		tg = newTarget(t, hook, func(o *Options) { o.Config.UseEnvProxy = true })
		if _, err := deliver(t, t.Context(), tg, record()); err != nil {
			t.Fatal(err)
		}
		if got := <-seen; got != hook {
			t.Errorf("proxy saw %q, want %q", got, hook)
		}
	})
	select {
	case got := <-seen:
		t.Errorf("unexpected proxied request %q", got)
	default:
	}
}

// ---- TLS -------------------------------------------------------------------

// pki is a test CA and the PEM files of the certificates it issued.
type pki struct {
	dir    string
	caCert *x509.Certificate
	caKey  *ecdsa.PrivateKey
	caFile string
	pool   *x509.CertPool
}

func newPKI(t *testing.T, name string) *pki {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	p := &pki{dir: t.TempDir(), caCert: cert, caKey: key, pool: x509.NewCertPool()}
	p.pool.AddCert(cert)
	p.caFile = p.write(t, name+"-ca.pem", "CERTIFICATE", der)
	return p
}

func (p *pki) write(t *testing.T, name, typ string, der []byte) string {
	t.Helper()
	path := filepath.Join(p.dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// issue creates a certificate for cn (server: with the given DNS names and
// IPs; client otherwise) and returns it with the paths of its PEM files.
func (p *pki) issue(t *testing.T, cn string, server bool, dns []string, ips ...net.IP) (tls.Certificate, string, string) {
	t.Helper()
	return p.issueValid(t, cn, server, time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour), dns, ips...)
}

// issueValid is issue of a certificate valid from notBefore to notAfter.
func (p *pki) issueValid(t *testing.T, cn string, server bool, notBefore, notAfter time.Time, dns []string, ips ...net.IP) (tls.Certificate, string, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	usage := x509.ExtKeyUsageClientAuth
	if server {
		usage = x509.ExtKeyUsageServerAuth
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
		DNSNames:     dns,
		IPAddresses:  ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.caCert, &key.PublicKey, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile := p.write(t, cn+".pem", "CERTIFICATE", der)
	keyFile := p.write(t, cn+"-key.pem", "EC PRIVATE KEY", keyDER)
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	return pair, certFile, keyFile
}

// mtlsReceiver starts an HTTPS receiver with a certificate from server for
// dns/127.0.0.1 that requires a client certificate from clients. It records
// the common name of every client.
func mtlsReceiver(t *testing.T, server, clients *pki, dns ...string) (*httptest.Server, <-chan string) {
	t.Helper()
	cert, _, _ := server.issue(t, "receiver", true, dns, net.IPv4(127, 0, 0, 1))
	names := make(chan string, 16)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		names <- r.TLS.PeerCertificates[0].Subject.CommonName
	}))
	srv.TLS = &tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    clients.pool,
		MinVersion:   tls.VersionTLS12,
	}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv, names
}

func TestMutualTLS(t *testing.T) {
	serverCA, clientCA, otherCA := newPKI(t, "server"), newPKI(t, "clients"), newPKI(t, "other")
	srv, names := mtlsReceiver(t, serverCA, clientCA, "receiver.internal")
	_, certFile, keyFile := clientCA.issue(t, "hookbridge-client", false, nil)
	_, otherCert, otherKey := otherCA.issue(t, "stranger", false, nil)
	good := config.WebhookTLS{CAFile: serverCA.caFile, CertFile: certFile, KeyFile: keyFile}

	t.Run("client certificate accepted", func(t *testing.T) {
		tg := newTarget(t, srv.URL, func(o *Options) { o.Config.TLS = good })
		if _, err := deliver(t, t.Context(), tg, record()); err != nil {
			t.Fatal(err)
		}
		if cn := <-names; cn != "hookbridge-client" {
			t.Errorf("receiver saw client %q", cn)
		}
	})

	t.Run("server_name", func(t *testing.T) {
		// The URL names 127.0.0.1; the certificate is checked against server_name.
		tls := good
		tls.ServerName = "receiver.internal"
		tg := newTarget(t, srv.URL, func(o *Options) { o.Config.TLS = tls })
		if _, err := deliver(t, t.Context(), tg, record()); err != nil {
			t.Fatal(err)
		}
		<-names
		tls.ServerName = "elsewhere.internal"
		tg = newTarget(t, srv.URL, func(o *Options) { o.Config.TLS = tls })
		if _, err := deliver(t, t.Context(), tg, record()); err == nil || !strings.Contains(err.Error(), "certificate") {
			t.Fatalf("wrong server_name: error %v, want a certificate error", err)
		}
	})

	failures := []struct {
		name string
		tls  config.WebhookTLS
	}{
		{"no client certificate", config.WebhookTLS{CAFile: serverCA.caFile}},
		{"client certificate of another CA", config.WebhookTLS{CAFile: serverCA.caFile, CertFile: otherCert, KeyFile: otherKey}},
		{"server not trusted", config.WebhookTLS{CAFile: otherCA.caFile, CertFile: certFile, KeyFile: keyFile}},
		{"system roots only", config.WebhookTLS{CertFile: certFile, KeyFile: keyFile}},
	}
	for _, tt := range failures {
		t.Run(tt.name, func(t *testing.T) {
			tg := newTarget(t, srv.URL, func(o *Options) { o.Config.TLS = tt.tls })
			if _, err := deliver(t, t.Context(), tg, record()); err == nil {
				t.Fatal("delivered")
			}
		})
	}
	select {
	case cn := <-names:
		t.Errorf("receiver accepted client %q", cn)
	default:
	}

	t.Run("insecure_skip_verify", func(t *testing.T) {
		tg := newTarget(t, srv.URL, func(o *Options) {
			o.Config.TLS = config.WebhookTLS{CertFile: certFile, KeyFile: keyFile, InsecureSkipVerify: true}
		})
		if _, err := deliver(t, t.Context(), tg, record()); err != nil {
			t.Fatal(err)
		}
		<-names
	})
}

func TestNewSecurityErrors(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		cfg  config.Webhook
		msg  string
	}{
		{"ca file missing", config.Webhook{TLS: config.WebhookTLS{CAFile: filepath.Join(dir, "none.pem")}}, "tls.ca_file"},
		{"ca file without certificates", config.Webhook{TLS: config.WebhookTLS{CAFile: garbage}}, "no PEM certificates"},
		{"key pair", config.Webhook{TLS: config.WebhookTLS{CertFile: garbage, KeyFile: garbage}}, "tls client certificate"},
		{"two proxies", config.Webhook{Proxy: config.Proxy{URL: "http://p:3128"}, UseEnvProxy: true}, "not both"},
		{"env proxy with the guard", config.Webhook{UseEnvProxy: true, DenyPrivateNetworks: true}, "allow_proxy_with_deny_private_networks"},
		{"env proxy that does not parse", config.Webhook{UseEnvProxy: true}, "HTTPS_PROXY (or https_proxy) is not a valid proxy URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A password with a stray %: httpproxy would drop the variable
			// and go direct. Not quoted in the error.
			t.Setenv("HTTPS_PROXY", "http://user:pa%ss@proxy.internal:3128")
			t.Setenv("https_proxy", "")
			tt.cfg.URL = "https://h/x"
			_, err := New(Options{Route: "r", Config: tt.cfg})
			if err == nil || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("New = %v, want an error containing %q", err, tt.msg)
			}
			if strings.Contains(err.Error(), "pa%ss") {
				t.Errorf("the error quotes the proxy's password: %v", err)
			}
		})
	}
}

// canonicalAddr is the address a transport dials: the URL's host with its
// port, or with the scheme's default port, IPv6 literals in brackets.
func TestCanonicalAddr(t *testing.T) {
	for raw, want := range map[string]string{
		"http://receiver.internal:8080/hooks": "receiver.internal:8080",
		"http://Receiver.Internal/hooks":      "Receiver.Internal:80",
		"https://receiver.internal/hooks":     "receiver.internal:443",
		"HTTPS://receiver.internal/hooks":     "receiver.internal:443",
		"socks5://proxy.internal":             "proxy.internal:1080",
		"http://127.0.0.1:9000":               "127.0.0.1:9000",
		"http://[::1]:9000/x":                 "[::1]:9000",
		"http://[::1]/x":                      "[::1]:80",
		"http://[fe80::1%25eth0]:8080/":       "[fe80::1%eth0]:8080",
	} {
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatalf("%s: %v", raw, err)
		}
		if got := canonicalAddr(u); got != want {
			t.Errorf("canonicalAddr(%s) = %q, want %q", raw, got, want)
		}
	}
}
