package kafka

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/hookbridge/hookbridge/bridge/target"
)

// The Kafka tools (kafka-configs.sh, kafka-consumer-groups.sh,
// kafka-topics.sh, kafka-transactions.sh) refuse to run without
// --bootstrap-server (or --bootstrap-controller): "Either --bootstrap-server
// or --bootstrap-controller must be specified." A command the bridge's error
// hands an operator, copied as written, must run. The error of a dead letter
// too large for its topic gave one without it.
func TestProduceTooLargeHintIsACommandThatRuns(t *testing.T) {
	t.Parallel()
	addrs := replyCluster(t, kfake.SeedTopics(1, "orders.dlq"))
	p, _ := newTestProducer(t, addrs)
	err := p.Produce(t.Context(), []target.Output{{Topic: "orders.dlq", Value: make([]byte, 1<<20+1)}})
	if err == nil {
		t.Fatal("a record over the topic's max.message.bytes was accepted")
	}
	cmd := regexp.MustCompile(`kafka-configs\.sh[^)]*`).FindString(err.Error())
	if cmd == "" {
		t.Fatalf("error %q names no kafka-configs.sh command", err)
	}
	if !strings.Contains(cmd, "--bootstrap-server ") {
		t.Errorf("the command %q lacks --bootstrap-server, without which kafka-configs.sh does not run", cmd)
	}
}

// Every Kafka tool command of docs/operations.md names the brokers, as the
// tools require, and the arguments its action requires: kafka-transactions.sh
// abort refuses to run without --topic, --partition and (brokers 3.0 or
// later) --start-offset; kafka-topics.sh --alter without --topic.
func TestOperationsKafkaCommandsNameTheBrokers(t *testing.T) {
	raw, err := os.ReadFile("../../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, m := range regexp.MustCompile("`(kafka-[a-z-]+\\.sh [^`]*)`").FindAllStringSubmatch(string(raw), -1) {
		n++
		if !strings.Contains(m[1], "--bootstrap-server ") {
			t.Errorf("docs/operations.md: %q lacks --bootstrap-server, without which the tool does not run", m[1])
		}
		var need []string
		switch {
		case strings.Contains(m[1], " abort"):
			need = []string{"--topic ", "--partition ", "--start-offset "}
		case strings.HasPrefix(m[1], "kafka-topics.sh") && strings.Contains(m[1], "--alter"):
			need = []string{"--topic "}
		}
		for _, arg := range need {
			if !strings.Contains(m[1], arg) {
				t.Errorf("docs/operations.md: %q lacks %s, which the tool requires", m[1], arg)
			}
		}
	}
	if n == 0 {
		t.Fatal("docs/operations.md names no Kafka tool command")
	}
}
