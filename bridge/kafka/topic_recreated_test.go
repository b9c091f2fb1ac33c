package kafka

import (
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
)

// missingOf returns those of values r has not delivered.
func missingOf(r *valueRecorder, values []string) []string {
	seen := r.seen()
	var out []string
	for _, v := range values {
		if !slices.Contains(seen, v) {
			out = append(out, v)
		}
	}
	return out
}

func (r *valueRecorder) String() string { return fmt.Sprintf("delivered %v", r.seen()) }

// A topic deleted and created again under the bridge (same name, same
// partition count) starts at offset 0, and the broker drops the group's
// committed offsets of the old one. sarama reads the partition on at the
// offset it had reached in the old topic: when the new topic holds that
// many records by then, it read them from there with no error, and the new
// topic's first records were never delivered while the group committed
// past them. The route delivers every record of the new topic and commits
// its end.
func TestConsumerReadsATopicCreatedAgainFromItsStart(t *testing.T) {
	const topic = "recreated"
	topicRecreatedIsReadFromItsStart(t, startCluster(t, topic).ListenAddrs(), topic)
}

// TestRealKafkaReadsATopicCreatedAgainFromItsStart is the test above on the
// real broker, whose deletion runs in the background: the topic is created
// again once the broker takes it.
func TestRealKafkaReadsATopicCreatedAgainFromItsStart(t *testing.T) {
	addrs := realBroker(t)
	topicRecreatedIsReadFromItsStart(t, addrs, createRealTopic(t, addrs, 1, 1024))
}

func topicRecreatedIsReadFromItsStart(t *testing.T, addrs []string, topic string) {
	admin := newAdmin(t, addrs)
	route := testRoute(topic, topic)
	tg := &valueRecorder{}
	logs := &logBuffer{}
	c := NewConsumer(ConsumerOptions{Route: route, Brokers: addrs, Sarama: groupConfig(t), Target: tg,
		Logger: slog.New(slog.NewTextHandler(logs, nil)), ShutdownTimeout: 5 * time.Second})
	startRun(t, c, patience)
	var old, fresh []string
	for i := range 5 {
		old = append(old, fmt.Sprintf("old-%d", i))
	}
	for i := range 8 {
		fresh = append(fresh, fmt.Sprintf("new-%d", i))
	}
	kvs := func(values []string) []string {
		var out []string
		for _, v := range values {
			out = append(out, "k", v)
		}
		return out
	}
	committed := func() string {
		return fmt.Sprintf("committed %d", committedOf(t, admin, route.GroupID(), topic, 0))
	}
	produce(t, addrs, topic, kvs(old)...)
	waitFor(t, "the old topic's records delivered", func() bool { return len(missingOf(tg, old)) == 0 }, tg.String)
	waitFor(t, "the old topic committed", func() bool { return committedOf(t, admin, route.GroupID(), topic, 0) == 5 }, committed)

	if err := admin.DeleteTopic(topic); err != nil {
		t.Fatal(err)
	}
	var createErr error
	waitFor(t, "the topic created again", func() bool {
		createErr = admin.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: 1, ReplicationFactor: 1}, false)
		return createErr == nil
	}, func() string { return fmt.Sprint(createErr) })
	produce(t, addrs, topic, kvs(fresh)...)
	waitFor(t, "every record of the new topic delivered", func() bool { return len(missingOf(tg, fresh)) == 0 },
		func() string { return fmt.Sprintf("missing %v; %s; log:\n%s", missingOf(tg, fresh), tg, logs) })
	waitFor(t, "the new topic committed at its end", func() bool { return committedOf(t, admin, route.GroupID(), topic, 0) == 8 }, committed)
	if !strings.Contains(logs.String(), `msg="the topic was deleted and created again`) {
		t.Errorf("no log line says the topic was created again:\n%s", logs)
	}
}
