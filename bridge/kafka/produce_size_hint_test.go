package kafka

import (
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/hookbridge/hookbridge/bridge/target"
)

// A dead letter larger than its topic allows holds its partition, and the
// error logged for it ("record cannot reach a terminal outcome") is all an
// operator has to go on. The broker's own text ("Message was too large")
// says neither which setting refuses it nor how far to raise it. The error
// names the topic's max.message.bytes and a value that is enough: raised to
// that value, the topic takes the record, and the stuck write goes through.
func TestProduceTooLargeForTheTopicSaysWhatToRaise(t *testing.T) {
	t.Parallel()
	addrs := replyCluster(t, kfake.SeedTopics(1, "orders.dlq"))
	p, client := newTestProducer(t, addrs)
	rec := target.Output{Topic: "orders.dlq", Key: []byte("k1"), Value: make([]byte, 1<<20),
		Headers: []target.Header{{Key: "hookbridge-error-message", Value: []byte(strings.Repeat("e", 1024))}}}

	err := p.Produce(t.Context(), []target.Output{rec})
	if err == nil {
		t.Fatal("a record over the topic's max.message.bytes (1 MiB, the default) was accepted")
	}
	if target.KindOf(err) != target.Permanent {
		t.Fatalf("%v (kind %v), want a permanent failure", err, target.KindOf(err))
	}
	m := regexp.MustCompile(`max\.message\.bytes=(\d+)`).FindStringSubmatch(err.Error())
	if m == nil || !strings.Contains(err.Error(), "orders.dlq") {
		t.Fatalf("error %q: it names neither the topic's max.message.bytes nor a value for it", err)
	}
	enough, _ := strconv.Atoi(m[1])
	if enough <= 1<<20 {
		t.Fatalf("error %q: max.message.bytes=%d cannot hold the record's 1 MiB value", err, enough)
	}
	adm, aerr := sarama.NewClusterAdminFromClient(client)
	if aerr != nil {
		t.Fatal(aerr)
	}
	v := strconv.Itoa(enough)
	if aerr := adm.AlterConfig(sarama.TopicResource, "orders.dlq", map[string]*string{"max.message.bytes": &v}, false); aerr != nil {
		t.Fatal(aerr)
	}
	if err := p.Produce(t.Context(), []target.Output{rec}); err != nil {
		t.Fatalf("with max.message.bytes=%d, as the error said: %v", enough, err)
	}
}

// A record over the producer's own limit (16 MiB) is refused by sarama as
// "invalid configuration ... Producer.MaxMessageBytes", a setting the
// bridge's configuration does not have (kafka.* has none, and
// plugins.*.max_message_bytes is another limit). The error says that the
// limit is the bridge's own and that no setting raises it.
func TestProduceOverTheProducersLimitSaysSo(t *testing.T) {
	t.Parallel()
	p, _ := newTestProducer(t, replyCluster(t, kfake.BrokerConfigs(map[string]string{"message.max.bytes": "67108864"})))

	err := p.Produce(t.Context(), []target.Output{{Topic: "orders.replies", Value: make([]byte, 17<<20)}})
	if err == nil || target.KindOf(err) != target.Permanent {
		t.Fatalf("a 17 MiB record: %v (kind %v), want a permanent failure", err, target.KindOf(err))
	}
	for _, want := range []string{"16 MiB", "no setting raises"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}
