package webhook

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hookbridge/hookbridge/bridge/config"
	"github.com/hookbridge/hookbridge/bridge/target"
)

// issueExpired creates a client certificate for cn that expired an hour ago
// and returns the paths of its PEM files.
func (p *pki) issueExpired(t *testing.T, cn string) (string, string) {
	t.Helper()
	_, certFile, keyFile := p.issueValid(t, cn, false, time.Now().Add(-48*time.Hour), time.Now().Add(-time.Hour), nil)
	return certFile, keyFile
}

// A receiver behind nginx with ssl_verify_client refuses an expired client
// certificate after the handshake, with a bare 400 ("The SSL certificate
// error"). That refuses the bridge's credential, not the record: retryable
// (the breaker pauses the route; nothing is dead-lettered), and the error
// says the certificate expired. A 400 with a valid certificate stays
// permanent. The same holds with GODEBUG=x509keypairleaf=0 (Go's setting
// for programs that relied on tls.LoadX509KeyPair leaving Certificate.Leaf
// nil): the certificate is still judged, instead of the check reading a nil
// leaf.
func TestExpiredClientCertificateRefusedWith400IsRetryable(t *testing.T) {
	for _, godebug := range []string{"", "x509keypairleaf=0"} {
		t.Run("GODEBUG="+godebug, func(t *testing.T) {
			if godebug != "" {
				t.Setenv("GODEBUG", godebug)
			}
			expiredClientCertificateRefusedWith400(t)
		})
	}
}

func expiredClientCertificateRefusedWith400(t *testing.T) {
	serverCA, clientCA := newPKI(t, "server"), newPKI(t, "clients")
	cert, _, _ := serverCA.issue(t, "receiver", true, nil, net.IPv4(127, 0, 0, 1))
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// As nginx does: the handshake takes any certificate, the
		// request is refused when it does not verify.
		_, err := r.TLS.PeerCertificates[0].Verify(x509.VerifyOptions{Roots: clientCA.pool,
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
		if err != nil {
			http.Error(w, "The SSL certificate error", http.StatusBadRequest)
			return
		}
		http.Error(w, "malformed record", http.StatusBadRequest)
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, ClientAuth: tls.RequireAnyClientCert, MinVersion: tls.VersionTLS12}
	srv.StartTLS()
	t.Cleanup(srv.Close)

	expiredCert, expiredKey := clientCA.issueExpired(t, "hookbridge-expired")
	tg := newTarget(t, srv.URL, func(o *Options) {
		o.Config.TLS = config.WebhookTLS{CAFile: serverCA.caFile, CertFile: expiredCert, KeyFile: expiredKey}
	})
	_, err := deliver(t, t.Context(), tg, record())
	wantKind(t, err, target.Retryable, http.StatusBadRequest)
	if !strings.Contains(err.Error(), "client certificate (tls.cert_file) expired") {
		t.Errorf("error %q does not say the client certificate expired", err)
	}

	_, validCert, validKey := clientCA.issue(t, "hookbridge-client", false, nil)
	tg = newTarget(t, srv.URL, func(o *Options) {
		o.Config.TLS = config.WebhookTLS{CAFile: serverCA.caFile, CertFile: validCert, KeyFile: validKey}
	})
	_, err = deliver(t, t.Context(), tg, record())
	wantKind(t, err, target.Permanent, http.StatusBadRequest)
}

// A receiver that refuses an expired client certificate in the handshake
// fails the request as a connection error (retryable), whose message says
// why.
func TestExpiredClientCertificateRefusedInHandshakeSaysSo(t *testing.T) {
	serverCA, clientCA := newPKI(t, "server"), newPKI(t, "clients")
	srv, _ := mtlsReceiver(t, serverCA, clientCA)
	expiredCert, expiredKey := clientCA.issueExpired(t, "hookbridge-expired")
	tg := newTarget(t, srv.URL, func(o *Options) {
		o.Config.TLS = config.WebhookTLS{CAFile: serverCA.caFile, CertFile: expiredCert, KeyFile: expiredKey}
	})
	_, err := deliver(t, t.Context(), tg, record())
	wantKind(t, err, target.Retryable, 0)
	if !strings.Contains(err.Error(), "client certificate (tls.cert_file) expired") {
		t.Errorf("error %q does not say the client certificate expired", err)
	}
}
