package kafka

import (
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hookbridge/hookbridge/bridge/config"
)

// An https token endpoint whose certificate a private CA signed (an
// in-house identity provider): sasl.oauthbearer.ca_file trusts it. Without
// it the token request fails on the certificate, and a ca_file with no
// certificate in it fails the configuration, naming the key.
func TestOAuthBearerCAFileTrustsTheTokenEndpoint(t *testing.T) {
	idp := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": "tok-1", "token_type": "bearer", "expires_in": 3600})
	}))
	t.Cleanup(idp.Close)
	dir := t.TempDir()
	ca, garbage := filepath.Join(dir, "idp-ca.pem"), filepath.Join(dir, "garbage.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: idp.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(garbage, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	kafkaWith := func(caFile string) config.Kafka {
		return config.Kafka{ClientID: "test", Version: config.DefaultKafkaVersion, SessionTimeout: config.Duration(10 * time.Second),
			TLS: config.TLS{Enabled: true},
			SASL: config.SASL{Mechanism: config.SASLOAuthBearer, OAuthBearer: config.OAuth2{
				TokenURL: idp.URL, ClientID: "hookbridge", ClientSecret: "client-secret", CAFile: caFile}}}
	}

	sc, err := NewConfig(kafkaWith(""))
	if err != nil {
		t.Fatal(err)
	}
	if tok, err := sc.Net.SASL.TokenProvider.Token(); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("Token without ca_file = %v, %v; want a certificate error", tok, err)
	}

	if sc, err = NewConfig(kafkaWith(ca)); err != nil {
		t.Fatal(err)
	}
	if tok, err := sc.Net.SASL.TokenProvider.Token(); err != nil || tok.Token != "tok-1" {
		t.Fatalf("Token with ca_file = %v, %v; want tok-1", tok, err)
	}

	if _, err := NewConfig(kafkaWith(garbage)); err == nil || !strings.Contains(err.Error(), "sasl.oauthbearer.ca_file") {
		t.Fatalf("NewConfig with a ca_file holding no certificate: %v, want an error naming the key", err)
	}
}
