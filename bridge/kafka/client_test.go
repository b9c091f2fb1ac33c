package kafka

import (
	"strings"
	"testing"
	"time"

	"github.com/hookbridge/hookbridge/bridge/config"
)

// The settings that sarama's defaults get wrong for the bridge: a metadata
// request against brokers that never answer is bounded (unbounded, it takes
// nine minutes for one broker before the bridge can report it), and no
// metadata request asks a broker to create a topic.
func TestNewConfigMetadata(t *testing.T) {
	sc, err := NewConfig(config.Kafka{Version: config.DefaultKafkaVersion, ClientID: "test", SessionTimeout: config.Duration(10 * time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	if sc.Metadata.Timeout <= 0 || sc.Metadata.Timeout > 2*time.Minute {
		t.Errorf("Metadata.Timeout = %s, want a bound of at most two minutes", sc.Metadata.Timeout)
	}
	if sc.Metadata.AllowAutoTopicCreation {
		t.Error("Metadata.AllowAutoTopicCreation is on: Hookbridge never creates topics")
	}
}

// The group's rebalance timeout covers a member's drain: with a
// shutdown_timeout longer than sarama's 60 s, a draining member would be
// expelled while still delivering, and the partition's next owner would
// deliver the same records alongside it.
func TestRebalanceTimeoutCoversTheDrain(t *testing.T) {
	for _, c := range []struct{ shutdown, want time.Duration }{
		{25 * time.Second, 60 * time.Second},
		{2 * time.Minute, 2*time.Minute + rebalanceMargin},
	} {
		sc, err := NewConfig(config.Kafka{Version: config.DefaultKafkaVersion, ClientID: "test", SessionTimeout: config.Duration(10 * time.Second)})
		if err != nil {
			t.Fatal(err)
		}
		NewConsumer(ConsumerOptions{Route: testRoute("r", "t"), Sarama: sc, ShutdownTimeout: c.shutdown})
		if got := sc.Consumer.Group.Rebalance.Timeout; got != c.want {
			t.Errorf("shutdown_timeout %s: rebalance timeout %s, want %s", c.shutdown, got, c.want)
		}
	}
}

// A kafka.tls section with a CA bundle or server name but without
// "enabled: true" would leave the client in plaintext, the settings unused:
// NewConfig refuses it, as validation does.
func TestTLSSettingsWithoutEnabledAreRefused(t *testing.T) {
	_, caFile := brokerTLS(t)
	for _, tls := range []config.TLS{{CAFile: caFile}, {ServerName: "broker.internal"}, {InsecureSkipVerify: true}} {
		_, err := NewConfig(config.Kafka{Version: config.DefaultKafkaVersion, ClientID: "test",
			SessionTimeout: config.Duration(10 * time.Second), TLS: tls})
		if err == nil || !strings.Contains(err.Error(), "tls.enabled is false") {
			t.Errorf("%+v: %v, want it refused", tls, err)
		}
	}
}
