package host

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"time"
)

// Automatic mutual TLS, as go-plugin's AutoMTLS does it, with one change.
//
// The protocol is go-plugin's: the host makes a one-time certificate and
// passes it to the plugin in PLUGIN_CLIENT_CERT; the plugin makes its own,
// accepts only clients that present the host's, and returns its certificate
// in the handshake line; the host trusts only that one. Any plugin that
// speaks AutoMTLS (a Go plugin on go-plugin, the Python example) works
// unchanged.
//
// The change is the key: go-plugin's AutoMTLS signs with ECDSA P-521, which
// the TLS stack of gRPC's C core (BoringSSL: Python, Ruby, C++, PHP, ...)
// does not offer for certificate verification, so its server never gets the
// host's certificate and the handshake fails. A P-256 key works everywhere.
// go-plugin uses ClientConfig.TLSConfig as it would its own (it adds the
// plugin's certificate as the only root of trust), so ClientConfig.AutoMTLS
// stays false and the pool sets TLSConfig and PLUGIN_CLIENT_CERT itself.

// clientCertEnv is the variable go-plugin's AutoMTLS passes the host's
// certificate in.
const clientCertEnv = "PLUGIN_CLIENT_CERT"

// newClientTLS returns the TLS configuration of one plugin process and the
// PEM certificate to pass to it. RootCAs stays empty until go-plugin adds
// the certificate the plugin returns in its handshake; a plugin that
// returns none is not trusted.
func newClientTLS() (*tls.Config, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("mtls: key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, nil, fmt.Errorf("mtls: serial: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "localhost", Organization: []string{"Hookbridge"}},
		DNSNames:              []string{"localhost"},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(10 * 365 * 24 * time.Hour), // lives as long as the process
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment | x509.KeyUsageKeyAgreement | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true, // self-signed: the plugin uses it as the CA of its client
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("mtls: certificate: %w", err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("mtls: key: %w", err)
	}
	cert, err := tls.X509KeyPair(certPEM, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}))
	if err != nil {
		return nil, nil, fmt.Errorf("mtls: key pair: %w", err)
	}
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   tls.VersionTLS12,
		ServerName:   "localhost",
	}, certPEM, nil
}
