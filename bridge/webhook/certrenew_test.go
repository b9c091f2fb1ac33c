package webhook

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"

	"github.com/hookbridge/hookbridge/bridge/config"
	"github.com/hookbridge/hookbridge/bridge/target"
)

// renew puts the content of the certificate and key files from over the
// files to, as a renewal does: each written aside and renamed into place.
func renew(t *testing.T, toCert, toKey, fromCert, fromKey string) {
	t.Helper()
	for _, f := range [][2]string{{fromCert, toCert}, {fromKey, toKey}} {
		b, err := os.ReadFile(f[0])
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f[1]+".new", b, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(f[1]+".new", f[1]); err != nil {
			t.Fatal(err)
		}
	}
}

// A client certificate renewed on disk is sent in the next handshake,
// without a restart or a reload.
func TestRenewedClientCertificateIsSentWithoutARestart(t *testing.T) {
	serverCA, clientCA := newPKI(t, "server"), newPKI(t, "clients")
	srv, names := mtlsReceiver(t, serverCA, clientCA)
	_, certFile, keyFile := clientCA.issue(t, "client-before", false, nil)
	tg := newTarget(t, srv.URL, func(o *Options) {
		o.Config.TLS = config.WebhookTLS{CAFile: serverCA.caFile, CertFile: certFile, KeyFile: keyFile}
	})
	if _, err := deliver(t, t.Context(), tg, record()); err != nil {
		t.Fatal(err)
	}
	if cn := <-names; cn != "client-before" {
		t.Fatalf("receiver saw %q", cn)
	}
	_, newCert, newKey := clientCA.issue(t, "client-renewed", false, nil)
	renew(t, certFile, keyFile, newCert, newKey)
	// The next request opens a connection. (Closing the receiver's end
	// instead raced with the client: a pooled connection it had not seen
	// closed yet failed the request with EOF, a retry in the bridge.)
	tg.idle.CloseIdleConnections()
	if _, err := deliver(t, t.Context(), tg, record()); err != nil {
		t.Fatal(err)
	}
	if cn := <-names; cn != "client-renewed" {
		t.Errorf("after the renewal the receiver saw %q, want client-renewed", cn)
	}
}

// A certificate that expired is refused with a 400 by a receiver behind
// nginx, on a connection it keeps open. Once the certificate is renewed on
// disk, no 400 of a connection that still sends the expired one is taken
// for a refusal of the record (permanent, dead-lettered): every failure
// stays retryable until a connection with the renewed certificate delivers.
func TestExpiredClientCertificateRenewedOnDiskNeverDeadLetters(t *testing.T) {
	serverCA, clientCA := newPKI(t, "server"), newPKI(t, "clients")
	cert, _, _ := serverCA.issue(t, "receiver", true, nil, net.IPv4(127, 0, 0, 1))
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := r.TLS.PeerCertificates[0].Verify(x509.VerifyOptions{Roots: clientCA.pool,
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
		if err != nil {
			http.Error(w, "The SSL certificate error", http.StatusBadRequest) // the connection stays open
		}
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, ClientAuth: tls.RequireAnyClientCert, MinVersion: tls.VersionTLS12}
	srv.StartTLS()
	t.Cleanup(srv.Close)

	certFile, keyFile := clientCA.issueExpired(t, "hookbridge-expired")
	tg := newTarget(t, srv.URL, func(o *Options) {
		o.Config.TLS = config.WebhookTLS{CAFile: serverCA.caFile, CertFile: certFile, KeyFile: keyFile}
	})
	_, err := deliver(t, t.Context(), tg, record())
	wantKind(t, err, target.Retryable, http.StatusBadRequest)

	_, newCert, newKey := clientCA.issue(t, "hookbridge-renewed", false, nil)
	renew(t, certFile, keyFile, newCert, newKey)
	for attempt := 1; ; attempt++ {
		_, err := deliver(t, t.Context(), tg, record())
		if err == nil {
			break
		}
		if k := target.KindOf(err); k != target.Retryable {
			t.Fatalf("attempt %d after the renewal: %v (kind %v), want retryable", attempt, err, k)
		}
		if attempt == 50 {
			t.Fatalf("50 attempts after the renewal failed; the last: %v", err)
		}
	}
}
