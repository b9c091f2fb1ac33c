package kafka

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/hookbridge/hookbridge/bridge/config"
	"github.com/hookbridge/hookbridge/bridge/target"
)

// A record larger than the producer's own limit (Producer.MaxMessageBytes,
// 16 MiB) is refused by sarama before it is sent, with a ConfigurationError.
// Writing it again can never succeed, exactly like the broker's
// MESSAGE_TOO_LARGE, so it must be a permanent failure: otherwise the Reply
// layer retries it forever and the record's partition stalls instead of the
// record being dead-lettered.
func TestProduceOverTheProducersLimitIsPermanent(t *testing.T) {
	t.Parallel()
	p, _ := newTestProducer(t, replyCluster(t, kfake.BrokerConfigs(map[string]string{"message.max.bytes": "67108864"})))

	err := p.Produce(t.Context(), []target.Output{{Topic: "orders.replies", Value: make([]byte, 17<<20)}})
	if err == nil {
		t.Fatal("a 17 MiB record was accepted")
	}
	if target.KindOf(err) != target.Permanent {
		t.Errorf("a 17 MiB record (over Producer.MaxMessageBytes): %v (kind %v), want a permanent failure", err, target.KindOf(err))
	}
}

// Records that each fit the broker's message.max.bytes (1 MiB, the Kafka
// default) are accepted when produced together. sarama packs up to 16 MiB of
// records of one partition into one batch; the broker checks
// message.max.bytes against the whole batch and answers MESSAGE_TOO_LARGE:
// the producer sends the refused records again one at a time.
func TestProduceRecordsThatFitAloneTogether(t *testing.T) {
	t.Parallel()
	p, _ := newTestProducer(t, replyCluster(t))

	// Each record is 400 KiB: well under 1 MiB on its own.
	for round := range 3 {
		outs := make([]target.Output, 8)
		for i := range outs {
			outs[i] = target.Output{Topic: "orders.replies", Key: []byte("k"), Value: bytes.Repeat([]byte{'x'}, 400<<10)}
		}
		// One at a time, each record is accepted.
		if err := p.Produce(t.Context(), outs[:1]); err != nil {
			t.Fatalf("round %d: one 400 KiB record: %v", round, err)
		}
		if err := p.Produce(t.Context(), outs); err != nil {
			t.Fatalf("round %d: eight 400 KiB records, each acceptable alone: %v (kind %v), want them written",
				round, err, target.KindOf(err))
		}
	}
}

// When one record of a batch is refused for what it is (too large) and
// another failed for a passing reason (its topic is missing), writing the
// batch again can never succeed: Produce reports it permanent, whatever the
// order of the records.
func TestProduceRefusedRecordAnywhereIsPermanent(t *testing.T) {
	t.Parallel()
	p, _ := newTestProducer(t, replyCluster(t))

	tooLarge := target.Output{Topic: "orders.replies", Value: make([]byte, 2<<20)}
	missing := target.Output{Topic: "orders.replys", Value: []byte("x")}
	for _, tt := range []struct {
		name string
		outs []target.Output
	}{
		{"refused first", []target.Output{tooLarge, missing}},
		{"refused second", []target.Output{missing, tooLarge}},
	} {
		err := p.Produce(t.Context(), tt.outs)
		if err == nil || target.KindOf(err) != target.Permanent {
			t.Errorf("%s: %v (kind %v), want a permanent failure (the 2 MiB record can never be written)",
				tt.name, err, target.KindOf(err))
		}
	}
}

// sarama cannot produce record headers before Kafka 0.11, and every
// dead-letter record carries hookbridge-error-* headers: with such a version
// no failed record could be dead-lettered, and NewConfig refuses it.
func TestOldVersionIsRefused(t *testing.T) {
	t.Parallel()
	for _, v := range []string{"0.10.2.0", "0.8.2.0"} {
		_, err := NewConfig(config.Kafka{Version: v, ClientID: "test", SessionTimeout: config.Duration(10 * time.Second)})
		if err == nil || !strings.Contains(err.Error(), "must be 0.11.0.0 or later (record headers)") {
			t.Errorf("version %s: %v, want it refused", v, err)
		}
	}
	if _, err := NewConfig(config.Kafka{Version: "0.11.0.0", ClientID: "test", SessionTimeout: config.Duration(10 * time.Second)}); err != nil {
		t.Errorf("version 0.11.0.0: %v", err)
	}
}

// Producing after Close fails with an error; sarama's own send would panic
// ("send on closed channel") and end the process. The check runs in a child
// process, so that a panic fails the test and not the test binary.
func TestProduceAfterClose(t *testing.T) {
	if os.Getenv("HOOKBRIDGE_TEST_CHILD") == "1" {
		emb, err := StartEmbedded("", 1, "orders.dlq")
		if err != nil {
			t.Fatal(err)
		}
		defer emb.Close()
		p, _ := newTestProducer(t, emb.Addrs())
		_ = p.Close()
		time.Sleep(200 * time.Millisecond) // let sarama finish shutting down
		err = p.Produce(t.Context(), []target.Output{{Topic: "orders.dlq", Value: []byte("x")}})
		if err == nil {
			t.Fatal("Produce after Close succeeded")
		}
		return
	}
	t.Parallel()
	cmd := exec.Command(os.Args[0], "-test.run=^TestProduceAfterClose$", "-test.count=1")
	cmd.Env = append(os.Environ(), "HOOKBRIDGE_TEST_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		tail := out
		if len(tail) > 1500 {
			tail = tail[:1500]
		}
		t.Fatalf("Produce after Close: the process died (%v):\n%s", err, tail)
	}
}

// A record for a topic whose name is not legal is refused for good
// (permanent). A broker asked for metadata without auto-creation answers
// UNKNOWN_TOPIC_OR_PARTITION for such a name, which is retryable: a plugin
// output naming "orders replies" would be retried for ever, though no such
// topic can exist.
func TestProduceToAnIllegalTopicIsPermanent(t *testing.T) {
	t.Parallel()
	p, _ := newTestProducer(t, replyCluster(t))
	for _, topic := range []string{"orders replies", "orders/replies", ".."} {
		err := p.Produce(t.Context(), []target.Output{{Topic: topic, Value: []byte("x")}})
		if err == nil || target.KindOf(err) != target.Permanent {
			t.Errorf("topic %q (not a legal Kafka topic name): %v (kind %v), want a permanent failure", topic, err, target.KindOf(err))
		}
	}
}

// replyCluster starts a broker with the topic orders.replies (and opts) and
// returns its addresses.
func replyCluster(t *testing.T, opts ...kfake.Opt) []string {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1), kfake.SeedTopics(1, "orders.replies")}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()
}

// Close a second time does nothing: sarama's own Close, run twice, sends on
// its closed input channel in one of its goroutines, and the panic ends the
// test binary. Produce of no records, on a closed producer too, does
// nothing.
func TestProducerCloseTwice(t *testing.T) {
	t.Parallel()
	p, _ := newTestProducer(t, replyCluster(t))
	if err := p.Produce(t.Context(), nil); err != nil {
		t.Errorf("Produce of no records: %v", err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Errorf("the second Close: %v", err)
	}
	if err := p.Produce(t.Context(), []target.Output{}); err != nil {
		t.Errorf("Produce of no records after Close: %v", err)
	}
}
