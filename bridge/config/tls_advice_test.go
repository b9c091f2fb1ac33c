package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"
)

// expiredKeyPair writes a self-signed certificate that expired an hour ago
// and its key as PEM files in dir and returns their paths.
func expiredKeyPair(t *testing.T, dir, name string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile = writeFile(t, dir, name+".pem", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})), 0o600)
	keyFile = writeFile(t, dir, name+"-key.pem", string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})), 0o600)
	return certFile, keyFile
}

// A client certificate that has expired, and certificate checks turned
// off, are valid but get advice (validate prints it, run logs it): the
// first is refused by every server that checks it, the second hands the
// connection, and the credentials on it, to whoever can intercept it. A
// valid certificate with verification on gets none.
func TestAdviceClientCertificateAndInsecureSkipVerify(t *testing.T) {
	dir := t.TempDir()
	expiredCert, expiredKey := expiredKeyPair(t, dir, "expired")
	validCert, validKey := testKeyPair(t, dir, "valid")
	for _, c := range []struct {
		name, kafkaTLS, hookTLS string
		want                    map[string]string // path → a part of its advice
	}{
		{"valid", "{enabled: true, cert_file: " + validCert + ", key_file: " + validKey + "}",
			"{cert_file: " + validCert + ", key_file: " + validKey + "}", nil},
		{"expired", "{enabled: true, cert_file: " + expiredCert + ", key_file: " + expiredKey + "}",
			"{cert_file: " + expiredCert + ", key_file: " + expiredKey + "}",
			map[string]string{"kafka.tls.cert_file": "expired at", "routes[0].target.webhook.tls.cert_file": "expired at"}},
		{"insecure_skip_verify", "{enabled: true, insecure_skip_verify: true}", "{insecure_skip_verify: true}",
			map[string]string{"kafka.tls.insecure_skip_verify": "verification off", "routes[0].target.webhook.tls.insecure_skip_verify": "verification off"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			src := "kafka:\n  brokers: [\"k:9092\"]\n  tls: " + c.kafkaTLS + "\nroutes:\n  - name: r\n    topics: [t]\n" +
				"    target: {webhook: {url: \"https://h/x\", tls: " + c.hookTLS + "}}\n"
			cfg := mustParse(t, src, nil)
			got := map[string]string{}
			for _, a := range cfg.Advice {
				got[a.Path] = a.Message
			}
			if len(got) != len(c.want) {
				t.Errorf("advice %v, want it for %v", got, c.want)
			}
			for path, part := range c.want {
				if !strings.Contains(got[path], part) {
					t.Errorf("advice for %s = %q, want it to say %q", path, got[path], part)
				}
			}
		})
	}
}
