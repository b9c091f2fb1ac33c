package config_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/hookbridge/hookbridge/bridge/config"
	"github.com/hookbridge/hookbridge/bridge/kafka"
	"github.com/hookbridge/hookbridge/bridge/webhook"
)

// The tests of this file hold validate to its promise: a configuration it
// accepts is one run accepts. Each builds what run builds from the same
// configuration (a webhook target, the Kafka client's configuration) and
// checks that validate refuses exactly what those refuse. config cannot
// import the packages run uses, so its checks are copies; these tests keep
// them in step.

// baseConfig is a valid configuration with one webhook route.
func baseConfig() *config.Config {
	return &config.Config{
		Kafka:  config.Kafka{Brokers: []string{"k:9092"}},
		Routes: []config.Route{{Name: "r", Topics: []string{"t"}, Target: config.RouteTarget{Webhook: &config.Webhook{URL: "https://h/x"}}}},
	}
}

// validateUnder applies defaults to c, validates it and returns the problems
// at or below path.
func validateUnder(t *testing.T, c *config.Config, path string) config.Errors {
	t.Helper()
	c.ApplyDefaults()
	var errs, under config.Errors
	if err := c.Validate(); err != nil && !errors.As(err, &errs) {
		t.Fatalf("Validate: %v", err)
	}
	for _, p := range errs {
		if p.Path == path || strings.HasPrefix(p.Path, path+".") || strings.HasPrefix(p.Path, path+"[") {
			under = append(under, p)
		}
	}
	return under
}

func TestValidateRefusesHeadersRunRefuses(t *testing.T) {
	names := []string{
		"X-Api-Key", "Authorization", "Content-Type", "User-Agent", "Accept", "!#$%&'*+-.^_`|~",
		"X Bad", "a:b", "Äpfel", "a\tb", "a\nb", "(x)", "a/b", "a@b", "\"q\"",
		"Webhook-Id", "webhook-signature", "WEBHOOK-X", "Webhook", "Webhooks-X",
		"ce-id", "CE-TYPE", "ce", "ce_id", "kafka-topic", "Kafka-Header-X", "kafka", "hookbridge-attempt", "Hookbridge-X",
		"traceparent", "TraceState", "Baggage", "Host", "Hosts", "Content-Length", "Transfer-Encoding",
		"Connection", "Keep-Alive", "TE", "TEA", "Trailer", "Trailers", "Upgrade", "Proxy-Connection", "Expect", "Expect-CT",
	}
	values := []string{"v", "", "a\tb", " padded ", "é", "a\rb", "a\nb", "a\x00b", "a\x01b", "a\x1fb", "a\x7fb"}
	for _, name := range names {
		for _, value := range values {
			c := baseConfig()
			c.Routes[0].Target.Webhook.Headers = map[string]string{name: value}
			problems := validateUnder(t, c, "routes[0].target.webhook.headers")
			_, runErr := webhook.New(webhook.Options{Route: "r", Config: *c.Routes[0].Target.Webhook})
			if (len(problems) > 0) != (runErr != nil) {
				t.Errorf("header %q: %q: validate says %v, webhook.New says %v", name, value, problems, runErr)
			}
		}
	}
}

// configOnly is a sarama client that has nothing but a configuration: enough
// for sarama.NewConsumerGroupFromClient to check it, which is all these
// tests ask of it.
type configOnly struct {
	sarama.Client
	sc *sarama.Config
}

func (c configOnly) Config() *sarama.Config { return c.sc }
func (c configOnly) Closed() bool           { return false }

// runKafka does with k what run does before it dials a broker: it builds the
// Kafka client's configuration, has sarama check it, and makes a consumer
// group of it.
func runKafka(k config.Kafka) error {
	sc, err := kafka.NewConfig(k)
	if err != nil {
		return err
	}
	if err := sc.Validate(); err != nil {
		return err
	}
	_, err = sarama.NewConsumerGroupFromClient("hookbridge.r", configOnly{sc: sc})
	return err
}

func TestValidateRefusesKafkaRunRefuses(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := config.TestKeyPair(t, dir, "client")
	_, otherKey := config.TestKeyPair(t, dir, "other")
	garbage := filepath.Join(dir, "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not a pem\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		set  func(k *config.Kafka)
	}{
		{"defaults", func(*config.Kafka) {}},
		{"version 4.3.1", func(k *config.Kafka) { k.Version = "4.3.1" }},
		{"version 1.0.0", func(k *config.Kafka) { k.Version = "1.0.0" }},
		{"version 0.11.0.2", func(k *config.Kafka) { k.Version = "0.11.0.2" }},
		{"version 0.10.2.0", func(k *config.Kafka) { k.Version = "0.10.2.0" }},
		{"version 0.10.1.1", func(k *config.Kafka) { k.Version = "0.10.1.1" }},
		{"version 0.8.2.0", func(k *config.Kafka) { k.Version = "0.8.2.0" }},
		{"version 0.8.0", func(k *config.Kafka) { k.Version = "0.8.0" }},
		{"version 0.11.0", func(k *config.Kafka) { k.Version = "0.11.0" }},
		{"version 3.0", func(k *config.Kafka) { k.Version = "3.0" }},
		{"version 3.0.0.1", func(k *config.Kafka) { k.Version = "3.0.0.1" }},
		{"client id with a space, 0.11.0.2", func(k *config.Kafka) { k.Version, k.ClientID = "0.11.0.2", "my client" }},
		{"client id with a space, 1.0.0", func(k *config.Kafka) { k.Version, k.ClientID = "1.0.0", "my client" }},
		{"session timeout 1ns", func(k *config.Kafka) { k.SessionTimeout = config.Duration(time.Nanosecond) }},
		{"session timeout 2ms", func(k *config.Kafka) { k.SessionTimeout = config.Duration(2 * time.Millisecond) }},
		{"session timeout 3ms", func(k *config.Kafka) { k.SessionTimeout = config.Duration(3 * time.Millisecond) }},
		{"session timeout 100ms", func(k *config.Kafka) { k.SessionTimeout = config.Duration(100 * time.Millisecond) }},
		{"session timeout 100.5ms", func(k *config.Kafka) { k.SessionTimeout = config.Duration(100500 * time.Microsecond) }},
		{"session timeout 101ms", func(k *config.Kafka) { k.SessionTimeout = config.Duration(101 * time.Millisecond) }},
		{"session timeout 400ms", func(k *config.Kafka) { k.SessionTimeout = config.Duration(400 * time.Millisecond) }},
		{"session timeout 1h", func(k *config.Kafka) { k.SessionTimeout = config.Duration(time.Hour) }},
		{"tls ca file", func(k *config.Kafka) { k.TLS = config.TLS{Enabled: true, CAFile: certFile} }},
		{"tls ca file not PEM", func(k *config.Kafka) { k.TLS = config.TLS{Enabled: true, CAFile: garbage} }},
		{"tls key pair", func(k *config.Kafka) { k.TLS = config.TLS{Enabled: true, CertFile: certFile, KeyFile: keyFile} }},
		{"tls key of another certificate", func(k *config.Kafka) { k.TLS = config.TLS{Enabled: true, CertFile: certFile, KeyFile: otherKey} }},
		{"tls certificate not PEM", func(k *config.Kafka) { k.TLS = config.TLS{Enabled: true, CertFile: garbage, KeyFile: keyFile} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := baseConfig()
			tt.set(&c.Kafka)
			problems := validateUnder(t, c, "kafka")
			runErr := runKafka(c.Kafka)
			if (len(problems) > 0) != (runErr != nil) {
				t.Errorf("validate says %v, run says %v", problems, runErr)
			}
		})
	}
}
