package dispatch_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/hookbridge/hookbridge/bridge/config"
	"github.com/hookbridge/hookbridge/bridge/dispatch"
	"github.com/hookbridge/hookbridge/bridge/kafka"
	"github.com/hookbridge/hookbridge/bridge/target"
)

// realProducer starts an in-process broker (message.max.bytes at Kafka's
// default, 1 MiB) with the reply and dead-letter topics, and the bridge's
// producer on it, configured by kafka.NewConfig as the bridge configures it.
func realProducer(t *testing.T, brokerConfigs map[string]string) (*kafka.Producer, sarama.Client) {
	t.Helper()
	opts := []kfake.Opt{kfake.NumBrokers(1), kfake.SeedTopics(1, "orders.replies", "orders.dlq")}
	if brokerConfigs != nil {
		opts = append(opts, kfake.BrokerConfigs(brokerConfigs))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return producerOn(t, c)
}

// producerOn is the bridge's producer on the broker c.
func producerOn(t *testing.T, c *kfake.Cluster) (*kafka.Producer, sarama.Client) {
	t.Helper()
	sc, err := kafka.NewConfig(config.Kafka{Version: config.DefaultKafkaVersion, ClientID: "test", SessionTimeout: config.Duration(10 * time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	sc.Producer.Retry.Max = 1
	sc.Producer.Retry.Backoff = 10 * time.Millisecond
	sc.Metadata.Retry.Backoff = 10 * time.Millisecond
	client, err := sarama.NewClient(c.ListenAddrs(), sc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Close() })
	p, err := kafka.NewProducer(client)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p, client
}

func highWater(t *testing.T, client sarama.Client, topic string) int64 {
	t.Helper()
	off, err := client.GetOffset(topic, 0, sarama.OffsetNewest)
	if err != nil {
		t.Fatal(err)
	}
	return off
}

// A handler that returns eight 400 KiB outputs (each well under the broker's
// 1 MiB message.max.bytes) is delivered, and its outputs are written. sarama
// packs them into one batch over the limit, which the broker refuses; the
// producer used to call that permanent, and the record was dead-lettered
// with one of its outputs written.
func TestReplyOfOutputsEachWithinTheLimitIsWritten(t *testing.T) {
	t.Parallel()
	prod, client := realProducer(t, nil)
	outs := make([]target.Output, 8)
	for i := range outs {
		outs[i] = target.Output{Value: bytes.Repeat([]byte{'r'}, 400<<10)}
	}
	res := &target.Result{Outputs: outs}
	ev := &recorder{}
	chain := replyChain(prod, ev, res)

	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	got, err := chain.Deliver(ctx, delivery(testRecord()))
	if n := ev.count(evDeadLettered); n != 0 {
		t.Errorf("the record was dead-lettered (%d events; %d record(s) on orders.dlq, %d on orders.replies) although each of its 400 KiB outputs fits message.max.bytes",
			n, highWater(t, client, "orders.dlq"), highWater(t, client, "orders.replies"))
	}
	if err != nil || got == nil {
		t.Errorf("Deliver = %v, %v; want the result, nil", got, err)
	}
	if n := highWater(t, client, "orders.replies"); n != int64(len(outs)) {
		t.Errorf("orders.replies holds %d records, want %d", n, len(outs))
	}
}

// A handler output larger than the producer's own 16 MiB limit can never be
// written. The README: a record whose replies are refused "for what they
// are" is dead-lettered, kind permanent. sarama's local refusal (a
// ConfigurationError) used to be retryable: the record was stuck, and its
// partition stalled for good.
func TestReplyOverTheProducersLimitIsDeadLettered(t *testing.T) {
	t.Parallel()
	prod, client := realProducer(t, map[string]string{"message.max.bytes": "67108864"})
	res := &target.Result{Outputs: []target.Output{{Value: make([]byte, 17<<20)}}}
	ev := &recorder{}
	chain := replyChain(prod, ev, res)

	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	got, err := chain.Deliver(ctx, delivery(testRecord()))
	if err != nil {
		t.Errorf("Deliver = %v, %v; want nil, nil (dead-lettered, kind permanent). Stuck events: %d", got, err, ev.count(evStuck))
	}
	if n := ev.count(evDeadLettered); n != 1 {
		t.Errorf("dead-lettered %d times, want 1; orders.dlq holds %d record(s)", n, highWater(t, client, "orders.dlq"))
	}
}

// replyChain is a target answering res, behind the Reply layer (to
// orders.replies) and the DeadLetter layer (to orders.dlq), both writing
// through prod.
func replyChain(prod dispatch.Producer, ev *recorder, res *target.Result) target.Target {
	return target.Chain(&script{steps: steps(0, nil, ok(res))},
		dispatch.DeadLetter(dispatch.DeadLetterPolicy{Route: "r", Group: "g", Topic: "orders.dlq", Backoff: 10 * time.Millisecond}, prod, ev),
		dispatch.Reply("orders.replies", prod, ev, 10*time.Millisecond))
}
