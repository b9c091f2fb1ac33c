package kafka

import (
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/hookbridge/hookbridge/bridge/config"
)

// startCappedCluster starts a one-broker kfake cluster over TCP that takes
// only the API versions of a Kafka release (kversion.V2_0_0(), say), with
// topic of the given partitions; it is closed when the test ends.
func startCappedCluster(t *testing.T, versions *kversion.Versions, topic string, partitions int32) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(partitions, topic), kfake.MaxVersions(versions))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// Against a Kafka 2.0 coordinator, which has no static membership (KIP-345
// came with 2.3), a replica with kafka.group_instance_id joins as a dynamic
// member, as its JoinGroup request cannot carry the id. sarama still took
// it for a static one and did not leave the group when it stopped: its
// partitions stayed with a member that was gone, their records waiting for
// the session timeout, at every restart, with nothing logged. The replica
// says once that the setting is not in effect, and leaves the group when it
// stops.
func TestStaticMemberOnABrokerWithoutStaticMembershipLeavesItsGroup(t *testing.T) {
	const topic = "static-old"
	addrs := startCappedCluster(t, kversion.V2_0_0(), topic, 2).ListenAddrs()
	route := testRoute(topic, topic)
	logs := &logBuffer{}
	d := &deliveries{by: map[string]string{}}
	a, stopA := runReplica(t, addrs, route, d.target("a"), staticConfig(t, "replica-a"),
		slog.New(slog.NewTextHandler(logs, nil)))
	waitFor(t, "the replica to own both partitions", func() bool { return len(owned(a, topic)) == 2 },
		func() string { return logs.String() })
	produceTo(t, addrs, topic, 1, "k", "v")
	waitFor(t, "the record delivered", func() bool { return d.of(1, "v") == "a" }, func() string { return logs.String() })

	stopA()
	members, state := describeGroup(t, addrs, route.GroupID())
	if len(members) != 0 {
		t.Errorf("after the replica stopped the group is %s with members %v, want it left (no members)", state, members)
	}
	if n := strings.Count(logs.String(), "does not support static membership"); n != 1 {
		t.Errorf("%d lines say static membership is not in effect, want 1:\n%s", n, logs.String())
	}
}

// The check for a topic deleted and created again needs topic IDs, which
// the brokers give from Kafka 2.8 on, and only to a client that speaks 2.8
// (kafka.version). Below either, nothing was checked and nothing said so:
// a recreated topic's first records could be skipped without a word. A
// warning says so, once per route however often the offsets are looked
// up; with both at 2.8 or later, none.
func TestConsumerWarnsOnceWhenTopicsHaveNoID(t *testing.T) {
	for _, tc := range []struct {
		name    string
		broker  *kversion.Versions // nil: kfake's own, the newest
		version string             // kafka.version
		warned  int
	}{
		{"broker 2.4", kversion.V2_4_0(), "3.0.0", 1},
		{"kafka.version 2.7.0", nil, "2.7.0", 1},
		{"both 2.8 or later", nil, "3.0.0", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const topic = "ids"
			var addrs []string
			if tc.broker != nil {
				addrs = startCappedCluster(t, tc.broker, topic, 1).ListenAddrs()
			} else {
				addrs = startCluster(t, topic).ListenAddrs()
			}
			sc, err := NewConfig(config.Kafka{Version: tc.version, ClientID: "ids-test", SessionTimeout: config.Duration(6 * time.Second)})
			if err != nil {
				t.Fatal(err)
			}
			logs := &logBuffer{}
			tg := &valueRecorder{}
			route := testRoute(topic, topic)
			c := NewConsumer(ConsumerOptions{Route: route, Brokers: addrs, Sarama: sc, Target: tg,
				Logger: slog.New(slog.NewTextHandler(logs, nil)), ShutdownTimeout: 5 * time.Second})
			c.offsetsEvery = 20 * time.Millisecond // many lookups while the records go through
			startRun(t, c, patience)
			admin := newAdmin(t, addrs)
			values := []string{"k", "a", "k", "b", "k", "c"}
			produce(t, addrs, topic, values...)
			waitFor(t, "the records delivered and committed", func() bool {
				return len(tg.seen()) == 3 && committedOf(t, admin, route.GroupID(), topic, 0) == 3
			}, func() string { return fmt.Sprintf("%s; log:\n%s", tg, logs) })
			if tc.warned > 0 {
				waitFor(t, "the warning", func() bool { return logs.contains("the brokers give topics no ID") }, logs.String)
				// Then more lookups: more records, delivered and committed.
				produce(t, addrs, topic, values...)
				waitFor(t, "the next records committed", func() bool {
					return committedOf(t, admin, route.GroupID(), topic, 0) == 6
				}, func() string { return fmt.Sprintf("%s; log:\n%s", tg, logs) })
			}
			if n := strings.Count(logs.String(), "the brokers give topics no ID"); n != tc.warned {
				t.Errorf("%d warnings that topics have no ID, want %d:\n%s", n, tc.warned, logs)
			}
		})
	}
}
