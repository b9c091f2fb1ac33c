package kafka

import (
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
