package kafka

import (
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// refuseFetches makes the cluster answer every fetch of a partition with
// TOPIC_AUTHORIZATION_FAILED while on is set, as a broker does when the ACLs
// grant the client's principal no READ on the topic.
func refuseFetches(cluster *kfake.Cluster, on *atomic.Bool) {
	cluster.ControlKey(int16(kmsg.Fetch), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		cluster.KeepControl()
		if !on.Load() {
			return nil, nil, false
		}
		req := kreq.(*kmsg.FetchRequest)
		resp := req.ResponseKind().(*kmsg.FetchResponse)
		for _, rt := range req.Topics {
			st := kmsg.NewFetchResponseTopic()
			st.Topic = rt.Topic
			for _, rp := range rt.Partitions {
				sp := kmsg.NewFetchResponseTopicPartition()
				sp.Partition, sp.ErrorCode = rp.Partition, kerr.TopicAuthorizationFailed.Code
				sp.HighWatermark, sp.LastStableOffset, sp.LogStartOffset = -1, -1, -1
				sp.RecordBatches = []byte{}
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil, true
	})
}

// A route whose source topic the broker refuses to read (the ACLs grant the
// principal DESCRIBE but no READ, or READ was revoked) joins its group and
// fetches nothing. Before, /readyz said ready all along and the only sign was
// a throttled "kafka consumer error" warning. Now Ready names the partition
// and the refusal, one error line says so, and once the broker answers
// fetches again Ready is nil with no record needed to say so; records
// produced then are delivered and committed.
func TestConsumerReportsASourceTopicItMayNotRead(t *testing.T) {
	const topic = "refused"
	cluster := startCluster(t, topic)
	addrs := cluster.ListenAddrs()
	var refusing atomic.Bool
	refusing.Store(true)
	refuseFetches(cluster, &refusing)
	logs := &logBuffer{}
	tg := &deliveryCounter{}
	c := NewConsumer(ConsumerOptions{Route: testRoute(topic, topic), Brokers: addrs, Sarama: groupConfig(t), Target: tg,
		Logger: slog.New(slog.NewTextHandler(logs, nil)), ShutdownTimeout: 5 * time.Second})
	c.offsetsEvery = 100 * time.Millisecond
	startRun(t, c, patience)
	produceN(t, addrs, topic, 3)
	state := func() string { return describe(c, topic) + "\n" + logs.String() }

	waitFor(t, "Ready to name the refused partition", func() bool {
		err := c.Ready()
		return err != nil && strings.Contains(err.Error(), topic+"/0") && strings.Contains(err.Error(), "not authorized")
	}, state)
	waitFor(t, "sarama to report the refusal three times", func() bool { return c.nErrors.Load() >= 3 }, state)
	if err := c.Ready(); err == nil {
		t.Fatalf("Ready() = nil while every fetch is refused; %s", state())
	}
	if n := strings.Count(logs.String(), "partition cannot be read"); n != 1 {
		t.Errorf("%d lines say the partition cannot be read, want 1:\n%s", n, logs)
	}
	if ps, _ := partitionStats(c, topic); !ps.Stuck {
		t.Errorf("the refused partition is not counted as stuck: %+v", ps)
	}
	if n := tg.distinct(); n != 0 {
		t.Fatalf("%d records delivered while every fetch is refused", n)
	}

	refusing.Store(false)
	admin := newAdmin(t, addrs)
	waitFor(t, "the 3 records delivered and committed, the route ready", func() bool {
		return tg.distinct() == 3 && committed(t, admin, c.opts.Route.GroupID(), topic) == 3 && c.Ready() == nil
	}, state)
}

// A refusal that ends while the topic holds nothing new: no record is read
// to say so, and Ready must turn nil anyway (a readiness probe that stays
// false after the ACL was granted would keep the replica out of service).
func TestConsumerReadyAgainWhenARefusalEndsOnAnIdleTopic(t *testing.T) {
	const topic = "refused-idle"
	cluster := startCluster(t, topic)
	addrs := cluster.ListenAddrs()
	var refusing atomic.Bool
	refuseFetches(cluster, &refusing)
	tg := &deliveryCounter{}
	c := NewConsumer(ConsumerOptions{Route: testRoute(topic, topic), Brokers: addrs, Sarama: groupConfig(t), Target: tg,
		Logger: slog.New(slog.DiscardHandler), ShutdownTimeout: 5 * time.Second})
	c.offsetsEvery = 100 * time.Millisecond
	startRun(t, c, patience)
	produceN(t, addrs, topic, 2)
	state := func() string { return describe(c, topic) }
	waitFor(t, "2 records delivered, the route ready", func() bool { return tg.distinct() == 2 && c.Ready() == nil }, state)

	refusing.Store(true)
	waitFor(t, "Ready to report the refusal", func() bool { return c.Ready() != nil }, state)
	refusing.Store(false)
	waitFor(t, "Ready to be nil again", func() bool { return c.Ready() == nil }, state)
	if n := tg.distinct(); n != 2 {
		t.Errorf("%d records delivered, want 2", n)
	}
}

// A dead-letter or reply topic that exists, but that the ACLs grant the
// client's principal no DESCRIBE on, is left out of a listing of every topic
// as if it did not exist. CheckTopics (run at start and reload) said "do not
// exist; create them first" of it, sending the operator after a topic that
// is there. It names the refusal and the grant instead, and a topic that is
// really missing still reads as missing.
func TestCheckTopicsNamesATopicItMayNotDescribe(t *testing.T) {
	t.Parallel()
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "orders.dlq", "orders.replies"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	cluster.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Metadata}, Topic: "orders.dlq", Err: kerr.TopicAuthorizationFailed, Count: -1})
	_, client := newTestProducer(t, cluster.ListenAddrs())

	err = CheckTopics(client, []string{"orders.dlq", "orders.replies", "orders.replys"})
	if err == nil {
		t.Fatal("CheckTopics = nil, want the refused and the missing topic named")
	}
	msg := err.Error()
	if strings.Contains(msg, "[orders.dlq] do not exist") || strings.Contains(msg, "orders.dlq orders.replys") {
		t.Errorf("CheckTopics: %v; orders.dlq exists, the broker refuses to describe it", err)
	}
	if !strings.Contains(msg, "[orders.dlq]: the broker refuses") || !strings.Contains(msg, "DESCRIBE") ||
		!errors.Is(err, sarama.ErrTopicAuthorizationFailed) {
		t.Errorf("CheckTopics: %v; want orders.dlq named as refused, with the grant it lacks", err)
	}
	if !strings.Contains(msg, "topic(s) [orders.replys] do not exist") {
		t.Errorf("CheckTopics: %v; want orders.replys named as missing", err)
	}
	if err := CheckTopics(client, []string{"orders.replies"}); err != nil {
		t.Errorf("CheckTopics of a topic it may describe: %v", err)
	}
}
