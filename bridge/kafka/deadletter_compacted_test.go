package kafka

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/hookbridge/hookbridge/bridge/dispatch"
	"github.com/hookbridge/hookbridge/bridge/target"
)

// A dead-letter topic a platform team created compacted keeps only each
// key's last dead letter, and its broker refuses the dead letter of a record
// without a key. The bridge started with one anyway. CheckDeadLetterTopics
// names every compacted one (compact alone, or with delete) and the setting
// that fixes it, and leaves a topic of the default policy alone.
func TestCheckDeadLetterTopicsRefusesACompactedTopic(t *testing.T) {
	t.Parallel()
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	for topic, policy := range map[string]string{"a.dlq": "compact", "b.dlq": "compact,delete", "c.dlq": "delete"} {
		if err := cluster.CreateTopic(topic, 1, map[string]string{"cleanup.policy": policy}); err != nil {
			t.Fatal(err)
		}
	}
	if err := cluster.CreateTopic("d.dlq", 1, nil); err != nil {
		t.Fatal(err)
	}
	_, client := newTestProducer(t, cluster.ListenAddrs())
	assertCompactedRefused(t, client, []string{"a.dlq", "b.dlq"}, []string{"c.dlq", "d.dlq"})
}

// The same against Apache Kafka, whose DescribeConfigs answer (the
// version the client speaks, a topic's default policy coming from the
// broker's log.cleanup.policy) kfake only imitates.
func TestRealKafkaCheckDeadLetterTopicsRefusesACompactedTopic(t *testing.T) {
	addrs := realBroker(t)
	a, err := sarama.NewClusterAdmin(addrs, plainConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	run := rand.IntN(1e6)
	names := map[string]string{}
	for _, policy := range []string{"compact", "compact,delete", "delete", ""} {
		name := fmt.Sprintf("dlq-policy-%s-%d", strings.NewReplacer(",", "-").Replace(cmp.Or(policy, "default")), run)
		names[cmp.Or(policy, "default")] = name
		detail := &sarama.TopicDetail{NumPartitions: 1, ReplicationFactor: 1}
		if policy != "" {
			detail.ConfigEntries = map[string]*string{"cleanup.policy": &policy}
		}
		if err := a.CreateTopic(name, detail, false); err != nil {
			t.Fatal(err)
		}
	}
	_, client := newTestProducer(t, addrs)
	assertCompactedRefused(t, client, []string{names["compact"], names["compact,delete"]}, []string{names["delete"], names["default"]})
}

// assertCompactedRefused checks that CheckDeadLetterTopics refuses the
// compacted topics, naming each and the fix, and none of the others, and
// accepts the others alone.
func assertCompactedRefused(t *testing.T, client sarama.Client, compacted, others []string) {
	t.Helper()
	err := CheckDeadLetterTopics(client, append(slices.Clone(compacted), others...))
	if err == nil {
		t.Fatal("dead-letter topics with cleanup.policy=compact were accepted")
	}
	for _, want := range append(slices.Clone(compacted), "cleanup.policy=delete") {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
	for _, not := range others {
		if strings.Contains(err.Error(), not) {
			t.Errorf("error %q names %s, whose cleanup.policy is delete", err, not)
		}
	}
	if err := CheckDeadLetterTopics(client, others); err != nil {
		t.Errorf("dead-letter topics with cleanup.policy=delete: %v", err)
	}
}

// refuseKeylessWrites makes the cluster answer a produce to topic with
// INVALID_RECORD while on is set, as a broker answers a record without a key
// for a topic with cleanup.policy=compact (kfake does not check that).
func refuseKeylessWrites(cluster *kfake.Cluster, topic string, on *atomic.Bool) {
	refuseWrites(cluster, topic, func(kmsg.ProduceRequestTopicPartition) bool { return on.Load() })
}

// refuseWrites answers a write to topic with INVALID_RECORD for each of
// its partitions when refuse holds for one of them, as the broker refuses a
// batch it finds invalid.
func refuseWrites(cluster *kfake.Cluster, topic string, refuse func(kmsg.ProduceRequestTopicPartition) bool) {
	cluster.ControlKey(int16(kmsg.Produce), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		cluster.KeepControl()
		req := kreq.(*kmsg.ProduceRequest)
		if len(req.Topics) != 1 || req.Topics[0].Topic != topic || !slices.ContainsFunc(req.Topics[0].Partitions, refuse) {
			return nil, nil, false
		}
		resp := req.ResponseKind().(*kmsg.ProduceResponse)
		st := kmsg.NewProduceResponseTopic()
		st.Topic = topic
		for _, rp := range req.Topics[0].Partitions {
			sp := kmsg.NewProduceResponseTopicPartition()
			sp.Partition, sp.ErrorCode = rp.Partition, kerr.InvalidRecord.Code
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
		return resp, nil, true
	})
}

// A record without a key that fails is dead-lettered into a compacted
// topic (one the start-up check could not describe): the broker refuses it
// with INVALID_RECORD, "This record has failed the validation on broker",
// which says nothing of the topic's compaction. The record holds its
// partition (nothing committed past it, Ready names it) and its one error
// line names cleanup.policy and the topic; once the topic takes the record,
// it is dead-lettered and its offset committed.
func TestConsumerKeylessDeadLetterToACompactedTopic(t *testing.T) {
	const topic, dlq = "keyless", "keyless.dlq"
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, topic, dlq))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	addrs := cluster.ListenAddrs()
	var compacted atomic.Bool
	compacted.Store(true)
	refuseKeylessWrites(cluster, dlq, &compacted)

	p, err := sarama.NewSyncProducer(addrs, plainConfig())
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := p.SendMessage(&sarama.ProducerMessage{Topic: topic, Value: sarama.StringEncoder("no key")}); err != nil {
		t.Fatal(err)
	}
	_ = p.Close()

	prod, _ := newTestProducer(t, addrs)
	route := testRoute("keyless", topic)
	refuse := target.Func(func(context.Context, *target.Delivery) (*target.Result, error) {
		return nil, target.NewPermanent(errors.New("422 from the receiver"))
	})
	ev := &stuckEvents{}
	chain := target.Chain(refuse,
		dispatch.DeadLetter(dispatch.DeadLetterPolicy{Route: route.Name, Group: route.GroupID(),
			Topic: dlq, Backoff: 100 * time.Millisecond}, prod, ev),
		dispatch.Retry(dispatch.RetryPolicy{MaxAttempts: 1, InitialBackoff: time.Millisecond, MaxBackoff: time.Millisecond}, ev),
	)
	logs := &logBuffer{}
	c := NewConsumer(ConsumerOptions{Route: route, Brokers: addrs, Sarama: groupConfig(t), Target: chain,
		Logger: slog.New(slog.NewTextHandler(logs, nil)), ShutdownTimeout: 5 * time.Second})
	c.offsetsEvery = 100 * time.Millisecond
	ev.consumer = c
	startRun(t, c, patience)
	admin := newAdmin(t, addrs)

	waitFor(t, "the record to be reported stuck", func() bool { return ev.sawStuck(0) },
		func() string { return ev.String() + "; " + describe(c, topic) })
	if err := c.Ready(); err == nil || !strings.Contains(err.Error(), topic+"/0 at offset 0") {
		t.Errorf("with its dead letter refused, Ready() = %v, want an error naming %s/0 at offset 0", err, topic)
	}
	if !logs.contains("cleanup.policy") || !logs.contains(dlq) {
		t.Errorf("the stuck record's log does not name the dead-letter topic's cleanup.policy:\n%s", logs)
	}
	if off := committed(t, admin, route.GroupID(), topic); off > 0 {
		t.Fatalf("committed offset %d, past the record whose dead letter was refused", off)
	}

	compacted.Store(false) // the topic's cleanup.policy set to delete
	waitFor(t, "the record to be dead-lettered and committed", func() bool {
		return ev.sawUnstuck(0) && committed(t, admin, route.GroupID(), topic) == 1
	}, func() string { return ev.String() + "; " + describe(c, topic) })
	client, err := sarama.NewClient(addrs, plainConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	if hw, err := client.GetOffset(dlq, 0, sarama.OffsetNewest); err != nil || hw != 1 {
		t.Errorf("dead-letter topic holds %d records (%v), want the one record", hw, err)
	}
}

// refuseBatchesWithKeylessRecords answers a write to topic as a compacted
// topic's broker does: a partition's batch that holds a record without a
// key is refused whole (INVALID_RECORD), its keyed records with it.
func refuseBatchesWithKeylessRecords(cluster *kfake.Cluster, topic string) {
	refuseWrites(cluster, topic, holdsKeyless)
}

// holdsKeyless reports whether a produce request's partition holds a
// record without a key (in uncompressed batches, the producer's default).
func holdsKeyless(rp kmsg.ProduceRequestTopicPartition) bool {
	for src := rp.Records; len(src) > 0; {
		var batch kmsg.RecordBatch
		if batch.ReadFrom(src) != nil {
			return false
		}
		src = src[12+int(batch.Length):] // the offset and length before the batch
		for recs := batch.Records; len(recs) > 0; {
			var r kmsg.Record
			if r.ReadFrom(recs) != nil {
				return false
			}
			if r.Key == nil {
				return true
			}
			recs = recs[len(r.AppendTo(nil)):]
		}
	}
	return false
}

// A reply with a key that went in one batch with a reply without one, to a
// compacted topic, was refused with it: the broker refuses the whole batch
// (INVALID_RECORD), and its record was dead-lettered for another record's
// missing key. Refused records are written again one at a time, as records
// refused for their batch's size are: only the keyless one stays refused.
func TestProduceKeyedRecordRefusedWithAKeylessOneIsWrittenAlone(t *testing.T) {
	const topic = "orders.replies"
	cluster := startCluster(t, topic)
	refuseBatchesWithKeylessRecords(cluster, topic)
	addrs := cluster.ListenAddrs()
	sc := plainConfig()
	sc.Producer.Partitioner = sarama.NewHashPartitioner
	sc.Producer.Flush.Messages, sc.Producer.Flush.Frequency = 2, 200*time.Millisecond // the two records in one batch
	p, client := newProducerOn(t, addrs, sc)

	err := p.Produce(t.Context(), []target.Output{
		{Topic: topic, Key: []byte("k"), Value: []byte("keyed")},
		{Topic: topic, Value: []byte("keyless")},
	})
	pe, ok := errors.AsType[*dispatch.ProduceError](err)
	if !ok || !slices.Equal(pe.Unwritten, []int{1}) || !strings.Contains(err.Error(), "cleanup.policy") {
		t.Fatalf("Produce: %v; want a ProduceError naming the keyless record 1 alone as unwritten, and cleanup.policy", err)
	}
	if hw, err := client.GetOffset(topic, 0, sarama.OffsetNewest); err != nil || hw != 1 {
		t.Errorf("%s holds %d records (%v), want the keyed one", topic, hw, err)
	}
}
