package host

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/pem"
	"testing"
)

// The host's one-time certificate must use a curve every gRPC stack accepts
// (P-256: BoringSSL does not offer P-521, go-plugin's choice) and be its own
// CA, since the plugin trusts exactly it.
func TestClientCertificate(t *testing.T) {
	cfg, certPEM, err := newClientTLS()
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(certPEM)
	if block == nil || block.Type != "CERTIFICATE" {
		t.Fatalf("PEM = %q", certPEM)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if key, ok := cert.PublicKey.(*ecdsa.PublicKey); !ok || key.Curve != elliptic.P256() {
		t.Errorf("key %T, want ECDSA P-256", cert.PublicKey)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, DNSName: "localhost", KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("the certificate does not verify against itself as a client certificate: %v", err)
	}
	if cfg.ServerName != "localhost" || len(cfg.Certificates) != 1 || cfg.RootCAs != nil {
		t.Errorf("tls config: server name %q, %d certificates, roots %v", cfg.ServerName, len(cfg.Certificates), cfg.RootCAs)
	}
	if _, other, _ := newClientTLS(); string(other) == string(certPEM) {
		t.Error("certificates must be one-time")
	}
}
