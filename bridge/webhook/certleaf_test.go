package webhook

import (
	"crypto/tls"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/hookbridge/hookbridge/bridge/config"
	"github.com/hookbridge/hookbridge/bridge/target"
)

// With GODEBUG=x509keypairleaf=0 (Go's setting for programs that relied on
// tls.LoadX509KeyPair leaving Certificate.Leaf nil), the client certificate
// is still judged: a receiver's 400 to an expired one is retryable and says
// why, instead of the check reading a nil leaf.
func TestClientCertificateWithoutLeafIsStillChecked(t *testing.T) {
	t.Setenv("GODEBUG", "x509keypairleaf=0")
	serverCA, clientCA := newPKI(t, "server"), newPKI(t, "clients")
	cert, _, _ := serverCA.issue(t, "receiver", true, nil, net.IPv4(127, 0, 0, 1))
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "The SSL certificate error", http.StatusBadRequest)
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
	if err == nil || !strings.Contains(err.Error(), "client certificate (tls.cert_file) expired") {
		t.Errorf("error %v does not say the client certificate expired", err)
	}
}
