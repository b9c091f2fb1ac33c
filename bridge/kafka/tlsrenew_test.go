package kafka

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hookbridge/hookbridge/bridge/config"
)

// The client certificate of kafka.tls is read again when its files change:
// the next connection's handshake sends the renewed one, as sarama opens
// connections with the same configuration for the client's whole life.
func TestTLSClientCertificateFollowsItsFiles(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "client.pem"), filepath.Join(dir, "client-key.pem")
	write := func(cn string) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		if err != nil {
			t.Fatal(err)
		}
		kd, err := x509.MarshalECPrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		for name, block := range map[string]*pem.Block{certFile: {Type: "CERTIFICATE", Bytes: der}, keyFile: {Type: "EC PRIVATE KEY", Bytes: kd}} {
			if err := os.WriteFile(name+".new", pem.EncodeToMemory(block), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(name+".new", name); err != nil {
				t.Fatal(err)
			}
		}
	}
	write("before")
	tc, err := tlsConfig(config.TLS{Enabled: true, CertFile: certFile, KeyFile: keyFile})
	if err != nil {
		t.Fatal(err)
	}
	if len(tc.Certificates) != 0 || tc.GetClientCertificate == nil {
		t.Fatalf("certificates %d, GetClientCertificate set %v: want the hook only", len(tc.Certificates), tc.GetClientCertificate != nil)
	}
	for _, want := range []string{"before", "renewed"} {
		if want == "renewed" {
			write(want)
		}
		c, err := tc.GetClientCertificate(nil)
		if err != nil || c.Leaf.Subject.CommonName != want {
			t.Fatalf("handshake sends %v (%v), want %s", c, err, want)
		}
	}
}
