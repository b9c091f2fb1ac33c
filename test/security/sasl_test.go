package security

import (
	"encoding/base64"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hookbridge/hookbridge/test/internal/testkit"

	"github.com/IBM/sarama"

	"github.com/hookbridge/hookbridge/bridge/config"
	"github.com/hookbridge/hookbridge/bridge/kafka"
	"github.com/hookbridge/hookbridge/bridge/signing"
)

// Environment of the SASL tests (test/e2e.sh sets the first two).
const (
	envSASL         = "HOOKBRIDGE_TEST_KAFKA_SASL"          // host:port of the SASL_SSL listener
	envCA           = "HOOKBRIDGE_TEST_KAFKA_CA"            // PEM file of the CA of its certificate
	envSASLUser     = "HOOKBRIDGE_TEST_KAFKA_SASL_USER"     // default hookbridge
	envSASLPassword = "HOOKBRIDGE_TEST_KAFKA_SASL_PASSWORD" // default hookbridge-secret
)

// saslBroker is the SASL_SSL listener of the test broker.
type saslBroker struct {
	addr, ca, user, password string
}

// saslEnv returns the SASL_SSL listener from the environment, or skips.
func saslEnv(t *testing.T) saslBroker {
	t.Helper()
	b := saslBroker{addr: os.Getenv(envSASL), ca: os.Getenv(envCA), user: os.Getenv(envSASLUser), password: os.Getenv(envSASLPassword)}
	if b.addr == "" || b.ca == "" {
		testkit.E2ESkipf(t, "needs a Kafka SASL_SSL listener: set %s (e.g. 127.0.0.1:9094) and %s (its CA, PEM); "+
			"KAFKA_SASL_SSL=1 test/kafka/start.sh starts one, and test/e2e.sh sets both", envSASL, envCA)
	}
	if _, err := os.Stat(b.ca); err != nil {
		t.Fatalf("%s: %v (start the broker with KAFKA_SASL_SSL=1 test/kafka/start.sh)", envCA, err)
	}
	if b.user == "" {
		b.user = "hookbridge"
	}
	if b.password == "" {
		b.password = "hookbridge-secret"
	}
	return b
}

// kafkaSection is the kafka section of the bridge for b with password.
func (b saslBroker) kafkaSection(password string) config.Kafka {
	return config.Kafka{
		Brokers: []string{b.addr}, ClientID: "security-test", Version: config.DefaultKafkaVersion,
		SessionTimeout: config.Duration(10 * time.Second),
		TLS:            config.TLS{Enabled: true, CAFile: b.ca},
		SASL:           config.SASL{Mechanism: config.SASLScramSHA512, Username: b.user, Password: password},
	}
}

// client connects to b over SCRAM-SHA-512 and TLS.
func (b saslBroker) client(t *testing.T) sarama.Client {
	t.Helper()
	k := b.kafkaSection(b.password)
	sc, err := kafka.NewConfig(k)
	if err != nil {
		t.Fatal(err)
	}
	c, err := kafka.NewClient(k.Brokers, k, sc)
	if err != nil {
		t.Fatalf("test client over SASL_SSL: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// createTopic creates a topic with partitions and waits for it.
func (b saslBroker) createTopic(t *testing.T, c sarama.Client, name string, partitions int32) {
	t.Helper()
	admin, err := sarama.NewClusterAdminFromClient(c)
	if err != nil {
		t.Fatal(err)
	}
	if err := admin.CreateTopic(name, &sarama.TopicDetail{NumPartitions: partitions, ReplicationFactor: 1}, false); err != nil {
		t.Fatalf("create topic %s: %v", name, err)
	}
	t.Cleanup(func() { _ = admin.DeleteTopic(name) })
	waitFor(t, 30*time.Second, "topic "+name, func() bool {
		md, err := admin.DescribeTopics([]string{name})
		return err == nil && len(md) == 1 && md[0].Err == sarama.ErrNoError && len(md[0].Partitions) == int(partitions)
	})
}

// bridgeConfig is a hookbridge configuration consuming topic over SASL_SSL
// from b and posting to url, signed with the secrets of secretsFile and with
// a bearer token. Credentials come from the environment.
func bridgeConfig(b saslBroker, topic, url, secretsFile string) string {
	return fmt.Sprintf(`kafka:
  brokers: [%q]
  client_id: security-test
  tls: {enabled: true, ca_file: %q}
  sasl:
    mechanism: SCRAM-SHA-512
    username: %q
    password: "${KAFKA_PASSWORD}"
admin: {listen: "off"}
log: {level: debug, format: text}
shutdown_timeout: 10s
routes:
  - name: %s
    topics: [%q]
    target:
      webhook:
        url: %q
        signing_secrets_file: %q
        bearer_token: "${RECEIVER_TOKEN}"
`, b.addr, b.ca, b.user, topic, topic, url, secretsFile)
}

// TestSCRAMOverTLS runs the bridge against the real broker's SASL_SSL
// listener with SCRAM-SHA-512: every record reaches the receiver, signed and
// with its bearer token, and no credential shows in the bridge's output.
func TestSCRAMOverTLS(t *testing.T) {
	b := saslEnv(t)
	c := b.client(t)
	topic := "security-scram-" + strconv.Itoa(rand.IntN(1e9))
	b.createTopic(t, c, topic, 3)

	const n = 30
	producer, err := sarama.NewSyncProducerFromClient(c)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		msg := &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder("k" + strconv.Itoa(i%7)), Value: sarama.StringEncoder(fmt.Sprintf(`{"n":%d}`, i))}
		if _, _, err := producer.SendMessage(msg); err != nil {
			t.Fatalf("produce over SASL_SSL: %v", err)
		}
	}
	_ = producer.Close()

	key := make([]byte, 32)
	for i := range key {
		key[i] = byte(rand.IntN(256))
	}
	secret := signing.SecretPrefix + base64.StdEncoding.EncodeToString(key)
	dir := t.TempDir()
	secretsFile := writeFile(t, dir, "whsec", "# test secret\n"+secret+"\n")
	const token = "receiver-bearer-token-e2e"

	var mu sync.Mutex
	seen := map[string]bool{}
	var problems []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		if got := r.Header.Get("Authorization"); got != "Bearer "+token {
			problems = append(problems, "Authorization "+got)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		if err := signing.Verify([][]byte{key}, r.Header.Get("webhook-id"), r.Header.Get("webhook-timestamp"),
			r.Header.Get("webhook-signature"), body, time.Now(), 0); err != nil {
			problems = append(problems, "signature: "+err.Error())
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		seen[r.Header.Get("webhook-id")] = true
	}))
	t.Cleanup(srv.Close)

	cfg := writeFile(t, dir, "hookbridge.yaml", bridgeConfig(b, topic, srv.URL+"/hook", secretsFile))
	p := start(t, []string{"KAFKA_PASSWORD=" + b.password, "RECEIVER_TOKEN=" + token}, "run", "-c", cfg)
	waitFor(t, 90*time.Second, fmt.Sprintf("%d records at the receiver", n), func() bool {
		select {
		case <-p.done:
			t.Fatalf("hookbridge exited early: %v\n%s", p.err, p.stderr)
		default:
		}
		mu.Lock()
		defer mu.Unlock()
		return len(seen) >= n
	})
	if code := p.stop(t); code != 0 {
		t.Fatalf("exit code %d after SIGTERM; stderr:\n%s", code, p.stderr)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(problems) > 0 {
		t.Errorf("the receiver refused requests: %v", problems)
	}
	if len(seen) != n {
		t.Errorf("the receiver saw %d distinct records, want %d", len(seen), n)
	}
	notShown(t, "the bridge's log", p.stderr.String()+p.stdout.String(), b.password, token, secret, secret[len(signing.SecretPrefix):])
}

// TestKafkaAuthFailsFast: with a wrong password (or a CA that does not trust
// the broker) `hookbridge run` exits 1 on its own with a clear error.
func TestKafkaAuthFailsFast(t *testing.T) {
	b := saslEnv(t)
	dir := t.TempDir()
	otherCA := writeFile(t, dir, "other-ca.pem", selfSignedCA(t))
	const wrong = "wrong-password-e2e"
	tests := []struct {
		name, password, ca string
		want               []string
	}{
		{"wrong password", wrong, b.ca, []string{"sasl authentication failed (scram-sha-512 as user", "check kafka.sasl"}},
		{"unknown user", b.password, b.ca, []string{"sasl authentication failed (scram-sha-512 as user", "check kafka.sasl"}},
		{"untrusted certificate", b.password, otherCA, []string{"certificate"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bb := b
			bb.ca = tt.ca
			if tt.name == "unknown user" {
				bb.user = "nobody-" + strconv.Itoa(rand.IntN(1e6))
			}
			srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
			t.Cleanup(srv.Close)
			cfg := writeFile(t, dir, "bad-"+strings.ReplaceAll(tt.name, " ", "-")+".yaml",
				bridgeConfig(bb, "security-never-created", srv.URL, writeFile(t, dir, "whsec", secretLine(t))))
			// The two-minute limit only guards against a hang: the bridge
			// must give up on its own.
			code, stdout, stderr := runToEnd(t, []string{"KAFKA_PASSWORD=" + tt.password, "RECEIVER_TOKEN=x"}, "run", "-c", cfg)
			if code != 1 {
				t.Fatalf("exit code %d, want 1; stderr:\n%s", code, stderr)
			}
			low := strings.ToLower(stderr)
			for _, w := range tt.want {
				if !strings.Contains(low, w) {
					t.Errorf("stderr does not mention %q:\n%s", w, stderr)
				}
			}
			notShown(t, "the output", stdout+stderr, tt.password)
		})
	}
}

// secretLine is a random whsec_ secret and a newline.
func secretLine(t *testing.T) string {
	t.Helper()
	key := make([]byte, 32)
	for i := range key {
		key[i] = byte(rand.IntN(256))
	}
	return signing.SecretPrefix + base64.StdEncoding.EncodeToString(key) + "\n"
}
