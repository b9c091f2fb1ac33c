package kafka

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/hookbridge/hookbridge/bridge/config"
)

// brokerTLS returns a server TLS configuration for 127.0.0.1 and localhost
// and the path of the PEM file of the CA that issued it.
func brokerTLS(t *testing.T) (*tls.Config, string) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test kafka ca"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "broker"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames: []string{"localhost", "broker.internal"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}, MinVersion: tls.VersionTLS12}, caFile
}

// kafkaConfig is a kafka section for brokers with TLS (trusting caFile) and
// SASL.
func kafkaConfig(caFile, mechanism, user, password string) config.Kafka {
	k := config.Kafka{ClientID: "test", Version: config.DefaultKafkaVersion, SessionTimeout: config.Duration(10 * time.Second)}
	k.TLS = config.TLS{Enabled: true, CAFile: caFile}
	k.SASL = config.SASL{Mechanism: mechanism, Username: user, Password: password}
	return k
}

// SASL over TLS against an in-process broker: every mechanism it speaks
// connects with the right password and does not with a wrong one.
func TestSASLOverTLS(t *testing.T) {
	serverTLS, caFile := brokerTLS(t)
	for _, mech := range []string{config.SASLPlain, config.SASLScramSHA256, config.SASLScramSHA512} {
		t.Run(mech, func(t *testing.T) {
			c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.TLS(serverTLS), kfake.EnableSASL(),
				kfake.Superuser(mech, "hookbridge", "right-password"), kfake.SeedTopics(1, "t"))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(c.Close)

			k := kafkaConfig(caFile, mech, "hookbridge", "right-password")
			sc, err := NewConfig(k)
			if err != nil {
				t.Fatal(err)
			}
			client, err := NewClient(c.ListenAddrs(), k, sc)
			if err != nil {
				t.Fatalf("connect: %v", err)
			}
			topics, err := client.Topics()
			_ = client.Close()
			if err != nil || len(topics) != 1 {
				t.Fatalf("topics %v, %v", topics, err)
			}

			k.SASL.Password = "wrong-password"
			sc, err = NewConfig(k)
			if err != nil {
				t.Fatal(err)
			}
			sc.Metadata.Retry.Max = 0
			client, err = NewClient(c.ListenAddrs(), k, sc)
			if err == nil {
				_ = client.Close()
				t.Fatal("connected with a wrong password")
			}
			if strings.Contains(err.Error(), "wrong-password") {
				t.Errorf("error shows the password: %v", err)
			}
		})
	}
}

func TestServerName(t *testing.T) {
	serverTLS, caFile := brokerTLS(t)
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.TLS(serverTLS), kfake.SeedTopics(1, "t"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	for _, tt := range []struct {
		name string
		ok   bool
	}{{"broker.internal", true}, {"elsewhere.internal", false}} {
		k := kafkaConfig(caFile, "", "", "")
		k.TLS.ServerName = tt.name
		sc, err := NewConfig(k)
		if err != nil {
			t.Fatal(err)
		}
		sc.Metadata.Retry.Max = 0
		client, err := NewClient(c.ListenAddrs(), k, sc)
		if (err == nil) != tt.ok {
			t.Errorf("server_name %s: connect error %v", tt.name, err)
		}
		if client != nil {
			_ = client.Close()
		}
	}
}

// A broker's SASL_AUTHENTICATION_FAILED becomes one clear error.
func TestSASLFailureMessage(t *testing.T) {
	const detail = "Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512"
	raw := sarama.Wrap(sarama.ErrOutOfBrokers, sarama.Wrap(sarama.ErrSASLAuthenticationFailed, errors.New(detail)))
	k := config.Kafka{SASL: config.SASL{Mechanism: config.SASLScramSHA512, Username: "hookbridge", Password: "s3cret"}}
	err := saslFailure(raw, k)
	want := `kafka: SASL authentication failed (SCRAM-SHA-512 as user "hookbridge"): ` + detail + "; check kafka.sasl"
	if err.Error() != want {
		t.Errorf("error\n%s\nwant\n%s", err, want)
	}
	if !errors.Is(err, sarama.ErrSASLAuthenticationFailed) {
		t.Error("errors.Is(err, sarama.ErrSASLAuthenticationFailed) is false")
	}
	other := errors.New("dial tcp: connection refused")
	if saslFailure(other, k) != other {
		t.Error("another error was rewritten")
	}
}

// tokenEndpoint issues tokens "tok-N" that expire after expiresIn seconds.
func tokenEndpoint(t *testing.T, expiresIn int) (*httptest.Server, func() int) {
	t.Helper()
	var mu sync.Mutex
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, secret, _ := r.BasicAuth()
		if id != "hookbridge" || secret != "client-secret" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"error":"invalid_client"}`))
			return
		}
		mu.Lock()
		calls++
		n := calls
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": "tok-" + strconv.Itoa(n), "token_type": "bearer", "expires_in": expiresIn})
	}))
	t.Cleanup(srv.Close)
	return srv, func() int { mu.Lock(); defer mu.Unlock(); return calls }
}

func TestOAuthBearerTokenProvider(t *testing.T) {
	srv, calls := tokenEndpoint(t, 3600)
	k := config.Kafka{ClientID: "test", Version: config.DefaultKafkaVersion, SessionTimeout: config.Duration(10 * time.Second),
		TLS: config.TLS{Enabled: true},
		SASL: config.SASL{Mechanism: config.SASLOAuthBearer, OAuthBearer: config.OAuth2{
			TokenURL: srv.URL, ClientID: "hookbridge", ClientSecret: "client-secret", Scopes: []string{"kafka"}}}}
	sc, err := NewConfig(k)
	if err != nil {
		t.Fatal(err)
	}
	if err := sc.Validate(); err != nil {
		t.Fatalf("sarama refuses the configuration: %v", err)
	}
	p, ok := sc.Net.SASL.TokenProvider.(*tokenProvider)
	if !ok || sc.Net.SASL.Mechanism != sarama.SASLTypeOAuth {
		t.Fatalf("mechanism %s, provider %T", sc.Net.SASL.Mechanism, sc.Net.SASL.TokenProvider)
	}
	now := time.Now()
	p.now = func() time.Time { return now }

	for range 3 {
		tok, err := p.Token()
		if err != nil || tok.Token != "tok-1" {
			t.Fatalf("Token = %v, %v", tok, err)
		}
	}
	if calls() != 1 {
		t.Fatalf("%d token requests, want 1 (cached)", calls())
	}
	// Within the last tenth of its lifetime (at most a minute) the token is
	// replaced: it serves while the refresh runs, then the new one does.
	now = now.Add(time.Hour - 30*time.Second)
	if tok, err := p.Token(); err != nil || tok.Token != "tok-1" {
		t.Fatalf("Token near expiry = %v, %v; want tok-1 while the refresh runs", tok, err)
	}
	p.fetching <- struct{}{}
	<-p.fetching
	if tok, err := p.Token(); err != nil || tok.Token != "tok-2" {
		t.Fatalf("Token near expiry, refreshed = %v, %v", tok, err)
	}

	k.SASL.OAuthBearer.ClientSecret = "wrong"
	sc, _ = NewConfig(k)
	_, err = sc.Net.SASL.TokenProvider.Token()
	if err == nil || !strings.Contains(err.Error(), "invalid_client") || strings.Contains(err.Error(), "wrong") {
		t.Fatalf("Token with a wrong secret: %v", err)
	}
}

// The client secret file is read at every token request.
func TestOAuthBearerClientSecretFile(t *testing.T) {
	srv, _ := tokenEndpoint(t, 3600)
	path := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(path, []byte("client-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := newTokenProvider(config.OAuth2{TokenURL: srv.URL, ClientID: "hookbridge", ClientSecretFile: path}, nil)
	if tok, err := p.Token(); err != nil || tok.Token != "tok-1" {
		t.Fatalf("Token = %v, %v", tok, err)
	}
}

// Kafka takes a SCRAM password as its UTF-8 bytes, without SASLprep (its
// Java client and kafka-configs.sh alike), and so does the in-process
// broker. A password SASLprep would change (a soft hyphen it drops, a
// ligature it decomposes) or refuse (a tab) logs in as it is, and so does a
// user name with the characters SCRAM escapes.
func TestSCRAMCredentialsAsKafkaStoresThem(t *testing.T) {
	serverTLS, caFile := brokerTLS(t)
	for _, mech := range []string{config.SASLScramSHA256, config.SASLScramSHA512} {
		for _, cred := range []struct{ name, user, password string }{
			{"soft hyphen", "hookbridge", "pass\u00adword"},
			{"ligature", "hookbridge", "\ufb01le-secret"},
			{"tab", "hookbridge", "tab\tsecret"},
			{"escaped user name", "team=a,b", "secret"},
		} {
			t.Run(mech+"/"+cred.name, func(t *testing.T) {
				c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.TLS(serverTLS), kfake.EnableSASL(),
					kfake.Superuser(mech, cred.user, cred.password), kfake.SeedTopics(1, "t"))
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(c.Close)
				k := kafkaConfig(caFile, mech, cred.user, cred.password)
				sc, err := NewConfig(k)
				if err != nil {
					t.Fatal(err)
				}
				sc.Metadata.Retry.Max = 0
				client, err := NewClient(c.ListenAddrs(), k, sc)
				if err != nil {
					t.Fatalf("connect: %v", err)
				}
				_ = client.Close()
			})
		}
	}
}
