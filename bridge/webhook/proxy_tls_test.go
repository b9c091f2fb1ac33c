package webhook

import (
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/hookbridge/hookbridge/bridge/config"
)

// tunnelProxy is an https:// proxy (served over TLS with cert) that tunnels
// CONNECT requests, reporting the address each one asks for.
func tunnelProxy(t *testing.T, cert tls.Certificate) (*httptest.Server, <-chan string) {
	t.Helper()
	seen := make(chan string, 16)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodConnect {
			http.Error(w, "CONNECT only", http.StatusMethodNotAllowed)
			return
		}
		seen <- r.Host
		up, err := net.Dial("tcp", r.Host)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		w.WriteHeader(http.StatusOK)
		c, buf, err := w.(http.Hijacker).Hijack()
		if err != nil {
			up.Close()
			return
		}
		go func() { _, _ = io.Copy(up, buf); up.Close() }()
		_, _ = io.Copy(c, up)
		c.Close()
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv, seen
}

// tls.server_name names the receiver's certificate (and is its SNI): it
// does not apply to an https:// proxy, whose certificate carries the proxy's
// own name. Before, the proxy's certificate was checked against server_name,
// so that every delivery through an https proxy failed once server_name was
// set. The proxy is checked against the webhook's other tls settings (its
// CA bundle), as the OAuth 2.0 token endpoint is.
func TestHTTPSProxyIsNotCheckedAgainstServerName(t *testing.T) {
	serverCA, clientCA := newPKI(t, "server"), newPKI(t, "clients")
	srv, names := mtlsReceiver(t, serverCA, clientCA, "receiver.internal")
	_, certFile, keyFile := clientCA.issue(t, "hookbridge-client", false, nil)
	proxyCert, _, _ := serverCA.issue(t, "proxy", true, []string{"proxy.internal"}, net.IPv4(127, 0, 0, 1))
	proxy, seen := tunnelProxy(t, proxyCert)
	tg := newTarget(t, srv.URL, func(o *Options) {
		o.Config.TLS = config.WebhookTLS{CAFile: serverCA.caFile, CertFile: certFile, KeyFile: keyFile, ServerName: "receiver.internal"}
		o.Config.Proxy.URL = proxy.URL
	})
	for range 2 { // a new connection, then (HTTP/2 or not) the pooled one
		if _, err := deliver(t, t.Context(), tg, record()); err != nil {
			t.Fatal(err)
		}
		if cn := <-names; cn != "hookbridge-client" {
			t.Fatalf("receiver saw client %q", cn)
		}
	}
	if got, want := <-seen, srv.Listener.Addr().String(); got != want {
		t.Fatalf("proxy tunnelled to %q, want %q", got, want)
	}

	// With deny_private_networks (and the proxy allowed), the proxy, on
	// loopback here, is still dialled unchecked.
	tg = guarded(t, srv.URL, func(o *Options) {
		o.Config.TLS = config.WebhookTLS{CAFile: serverCA.caFile, CertFile: certFile, KeyFile: keyFile, ServerName: "receiver.internal"}
		o.Config.Proxy.URL = proxy.URL
		o.Config.AllowProxyWithDenyPrivateNetworks = true
	})
	if _, err := deliver(t, t.Context(), tg, record()); err != nil {
		t.Fatalf("with the guard: %v", err)
	}
	<-names
	<-seen

	// server_name still names the receiver through the proxy: a wrong one
	// fails on the receiver's certificate.
	tg = newTarget(t, srv.URL, func(o *Options) {
		o.Config.TLS = config.WebhookTLS{CAFile: serverCA.caFile, CertFile: certFile, KeyFile: keyFile, ServerName: "elsewhere.internal"}
		o.Config.Proxy.URL = proxy.URL
	})
	if _, err := deliver(t, t.Context(), tg, record()); err == nil || !strings.Contains(err.Error(), "elsewhere.internal") {
		t.Fatalf("wrong server_name through the proxy: error %v, want a certificate error naming elsewhere.internal", err)
	}
	<-seen
}
