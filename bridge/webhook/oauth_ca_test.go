package webhook

import (
	"encoding/pem"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hookbridge/hookbridge/bridge/target"
)

// An https token endpoint whose certificate a private CA signed, one the
// receiver's does not share: oauth2.ca_file trusts it for the token
// requests alone. Without it the token request fails on the certificate,
// as a retryable error that names the token endpoint's.
func TestOAuth2CAFileTrustsTheTokenEndpoint(t *testing.T) {
	ts := startTokenServer(t, "client-secret", 3600, (*httptest.Server).StartTLS)
	ca := filepath.Join(t.TempDir(), "idp-ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ts.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	srv, reqs := receiver(t, nil)

	untrusted := newTarget(t, srv.URL, func(o *Options) { o.Config.OAuth2 = oauthConfig(ts, "client-secret") })
	_, err := deliver(t, t.Context(), untrusted, record())
	if target.KindOf(err) != target.Retryable || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("without ca_file: error %v (kind %v), want a retryable certificate error", err, target.KindOf(err))
	}

	tg := newTarget(t, srv.URL, func(o *Options) {
		o.Config.OAuth2 = oauthConfig(ts, "client-secret")
		o.Config.OAuth2.CAFile = ca
	})
	if _, err := deliver(t, t.Context(), tg, record()); err != nil {
		t.Fatal(err)
	}
	if got := next(t, reqs).header.Get("Authorization"); got != "Bearer tok-1" {
		t.Fatalf("Authorization = %q, want the token of the https endpoint", got)
	}
}
