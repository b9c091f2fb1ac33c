package kafka

import (
	"crypto/tls"
	"errors"
	"strings"
	"testing"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/hookbridge/hookbridge/bridge/config"
)

// connectErr connects with k to c once (no metadata retries) and returns
// the error, failing when it connects.
func connectErr(t *testing.T, c *kfake.Cluster, k config.Kafka) error {
	t.Helper()
	sc, err := NewConfig(k)
	if err != nil {
		t.Fatal(err)
	}
	sc.Metadata.Retry.Max = 0
	client, err := NewClient(c.ListenAddrs(), k, sc)
	if err == nil {
		_ = client.Close()
		t.Fatal("connected")
	}
	return err
}

// A connection that fails in its set-up says why and which settings to
// check: a SASL mechanism the listener does not enable (sarama drops the
// broker's UNSUPPORTED_SASL_MECHANISM and said only "run out of available
// brokers"), a listener that closes the connection (SASL settings against a
// listener without SASL), and a listener that requires a client certificate.
func TestConnectFailureSaysWhy(t *testing.T) {
	serverTLS, caFile := brokerTLS(t)
	t.Run("mechanism not enabled", func(t *testing.T) {
		c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.TLS(serverTLS), kfake.EnableSASL(),
			kfake.Superuser(config.SASLScramSHA512, "hookbridge", "right-password"), kfake.SeedTopics(1, "t"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		// kfake speaks PLAIN and SCRAM only.
		k := kafkaConfig(caFile, config.SASLOAuthBearer, "", "")
		k.SASL.OAuthBearer = config.OAuth2{TokenURL: "http://127.0.0.1:1/token", ClientID: "hookbridge", ClientSecret: "client-secret"}
		err = connectErr(t, c, k)
		if !errors.Is(err, sarama.ErrUnsupportedSASLMechanism) || !strings.Contains(err.Error(), "does not enable SASL mechanism OAUTHBEARER") ||
			!strings.Contains(err.Error(), "kafka.sasl.mechanism") {
			t.Errorf("error %q: want the broker's UNSUPPORTED_SASL_MECHANISM and a hint at kafka.sasl.mechanism", err)
		}
	})
	t.Run("listener without SASL", func(t *testing.T) {
		c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.TLS(serverTLS), kfake.SeedTopics(1, "t"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		err = connectErr(t, c, kafkaConfig(caFile, config.SASLScramSHA512, "hookbridge", "right-password"))
		if !strings.Contains(err.Error(), "closed the connection") || !strings.Contains(err.Error(), "kafka.tls.enabled and kafka.sasl") {
			t.Errorf("error %q: want a hint at kafka.tls and kafka.sasl", err)
		}
		if strings.Contains(err.Error(), "right-password") {
			t.Errorf("error shows the password: %v", err)
		}
	})
	t.Run("client certificate required", func(t *testing.T) {
		mtls := serverTLS.Clone()
		mtls.ClientAuth = tls.RequireAnyClientCert
		c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.TLS(mtls), kfake.SeedTopics(1, "t"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		err = connectErr(t, c, kafkaConfig(caFile, "", "", ""))
		if !strings.Contains(err.Error(), "refused the TLS handshake") || !strings.Contains(err.Error(), "kafka.tls.cert_file") {
			t.Errorf("error %q: want a hint at kafka.tls.cert_file", err)
		}
	})
}

// The hint for a listener that takes no SASL: Apache Kafka answers a SASL
// handshake on a PLAINTEXT or SSL listener with ILLEGAL_SASL_STATE (kfake
// closes the connection instead).
func TestConnectHintIllegalSASLState(t *testing.T) {
	k := config.Kafka{SASL: config.SASL{Mechanism: config.SASLScramSHA512}}
	hint := connectHint(sarama.Wrap(sarama.ErrOutOfBrokers, sarama.ErrIllegalSASLState), k)
	if !strings.Contains(hint, "takes no SASL on this listener") {
		t.Errorf("hint %q", hint)
	}
	if h := connectHint(sarama.ErrOutOfBrokers, k); h != "" {
		t.Errorf("hint %q for an error with no reason", h)
	}
}
