package kafka

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/hookbridge/hookbridge/bridge/config"
	"github.com/hookbridge/hookbridge/bridge/target"
)

// staticConfig is the sarama configuration of a replica that is a static
// member of its groups under id, with a session timeout of 12 s: longer
// than a restart here takes, so that the coordinator keeps the member.
func staticConfig(t *testing.T, id string) *sarama.Config {
	t.Helper()
	sc, err := NewConfig(config.Kafka{Version: config.DefaultKafkaVersion, ClientID: "static-test",
		SessionTimeout: config.Duration(12 * time.Second), Balance: "cooperative-sticky", GroupInstanceID: id})
	if err != nil {
		t.Fatal(err)
	}
	if sc.Consumer.Group.InstanceId != id {
		t.Fatalf("InstanceId = %q, want %q", sc.Consumer.Group.InstanceId, id)
	}
	return sc
}

// deliveries records which replica delivered each record.
type deliveries struct {
	mu sync.Mutex
	by map[string]string // "partition/value" -> replica
}

func (d *deliveries) target(replica string) target.Target {
	return target.Func(func(_ context.Context, dl *target.Delivery) (*target.Result, error) {
		d.mu.Lock()
		defer d.mu.Unlock()
		d.by[fmt.Sprintf("%d/%s", dl.Record.Partition, dl.Record.Value)] = replica
		return &target.Result{}, nil
	})
}

func (d *deliveries) of(partition int32, value string) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.by[fmt.Sprintf("%d/%s", partition, value)]
}

// runReplica runs a consumer of route as the replica named replica with
// the sarama configuration sc; stop ends it and waits for Run to return.
func runReplica(t *testing.T, addrs []string, route config.Route, tg target.Target, sc *sarama.Config, log *slog.Logger) (c *Consumer, stop func()) {
	t.Helper()
	c = NewConsumer(ConsumerOptions{Route: route, Brokers: addrs, Sarama: sc, Target: tg, Logger: log, ShutdownTimeout: 5 * time.Second})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("replica of group %s: %v", route.GroupID(), err)
			}
		case <-time.After(patience):
			t.Errorf("Run did not return within %s of its context ending", patience)
		}
	}
	t.Cleanup(stop)
	return c, stop
}

// owned returns the partitions of topic that c owns, in order.
func owned(c *Consumer, topic string) []int32 {
	var ps []int32
	for _, p := range c.Stats().Partitions {
		if p.Topic == topic {
			ps = append(ps, p.Partition)
		}
	}
	slices.Sort(ps)
	return ps
}

// A replica with kafka.group_instance_id is a static member of its group:
// stopped, it does not leave the group, so the other replica does not take
// its partitions; restarted under the same id within the session timeout,
// it gets them back. The records written meanwhile to its partitions wait
// for it (none is lost), and none of them is delivered by the other.
// With dynamic membership the other replica would take them over at once.
func TestStaticMemberRestartKeepsItsPartitions(t *testing.T) {
	const topic = "static"
	staticRestartKeepsPartitions(t, startClusterWith(t, topic, 4).ListenAddrs(), topic)
}

// TestStaticMemberRestartKeepsItsPartitions against Apache Kafka's
// coordinator, the one users run (kfake implements KIP-345 on its own).
func TestRealKafkaStaticMemberRestartKeepsItsPartitions(t *testing.T) {
	addrs := realBroker(t)
	staticRestartKeepsPartitions(t, addrs, createRealTopic(t, addrs, 4, 1024))
}

// staticRestartKeepsPartitions runs the test of that name on a topic of four
// partitions; the route, and so the group, is named after the topic.
func staticRestartKeepsPartitions(t *testing.T, addrs []string, topic string) {
	route := testRoute(topic, topic)
	d := &deliveries{by: map[string]string{}}
	quiet := slog.New(slog.DiscardHandler)
	a, stopA := runReplica(t, addrs, route, d.target("a"), staticConfig(t, "replica-a"), quiet)
	b, _ := runReplica(t, addrs, route, d.target("b"), staticConfig(t, "replica-b"), quiet)
	state := func() string { return fmt.Sprintf("a owns %v, b owns %v", owned(a, topic), owned(b, topic)) }
	waitFor(t, "each replica to own two partitions", func() bool {
		return len(owned(a, topic)) == 2 && len(owned(b, topic)) == 2
	}, state)
	ofA, ofB := owned(a, topic), owned(b, topic)
	for p := range int32(4) {
		produceTo(t, addrs, topic, p, "k", "before")
	}
	waitFor(t, "the first records delivered", func() bool {
		for p := range int32(4) {
			if d.of(p, "before") == "" {
				return false
			}
		}
		return true
	}, state)

	stopA()
	// a did not leave: the coordinator still counts it a member, under its
	// instance id, in a stable group (a member that left would be gone, and
	// the group rebalancing its partitions to b).
	members, groupState := describeGroup(t, addrs, route.GroupID())
	if groupState != "Stable" || !slices.Contains(members, "replica-a") || !slices.Contains(members, "replica-b") {
		t.Fatalf("after a stopped the group is %s with members %v, want Stable with replica-a and replica-b", groupState, members)
	}
	for p := range int32(4) {
		produceTo(t, addrs, topic, p, "k", "while-a-was-down")
	}
	waitFor(t, "b to deliver its own partitions' records", func() bool {
		for _, p := range ofB {
			if d.of(p, "while-a-was-down") != "b" {
				return false
			}
		}
		return true
	}, state)
	if got := owned(b, topic); len(got) != 2 {
		t.Fatalf("b owns %v after a stopped, want only its own %v: a left the group", got, ofB)
	}
	for _, p := range ofA {
		if who := d.of(p, "while-a-was-down"); who != "" {
			t.Fatalf("partition %d's record written while a was down was delivered by %s, want it to wait for a", p, who)
		}
	}

	a2, _ := runReplica(t, addrs, route, d.target("a-restarted"), staticConfig(t, "replica-a"), quiet)
	waitFor(t, "the restarted a to deliver its partitions' records", func() bool {
		for _, p := range ofA {
			if d.of(p, "while-a-was-down") != "a-restarted" {
				return false
			}
		}
		return true
	}, func() string { return state() + fmt.Sprintf(", restarted a owns %v", owned(a2, topic)) })
	if got := owned(a2, topic); fmt.Sprint(got) != fmt.Sprint(ofA) {
		t.Errorf("the restarted a owns %v, want %v, what it owned before", got, ofA)
	}
	// a committed what it delivered when it stopped, though it did not
	// leave: the restarted a starts after it, delivering nothing twice.
	for _, p := range ofA {
		if who := d.of(p, "before"); who != "a" {
			t.Errorf("partition %d's first record was delivered again, by %s: a's offsets were not committed when it stopped", p, who)
		}
	}
}

// lockedLog is a log the test reads while consumers write it.
type lockedLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Of two replicas configured with one group_instance_id, the one fenced
// says so at error level, names the id and what to do.
func TestStaticMemberIDSharedIsNamed(t *testing.T) {
	const topic = "fenced"
	staticIDSharedIsNamed(t, startClusterWith(t, topic, 2).ListenAddrs(), topic)
}

// TestStaticMemberIDSharedIsNamed against Apache Kafka's coordinator, which
// fences the member that loses the id (FENCED_INSTANCE_ID).
func TestRealKafkaStaticMemberIDSharedIsNamed(t *testing.T) {
	addrs := realBroker(t)
	staticIDSharedIsNamed(t, addrs, createRealTopic(t, addrs, 2, 1024))
}

// staticIDSharedIsNamed runs the test of that name on a topic of two
// partitions; the route, and so the group, is named after the topic.
func staticIDSharedIsNamed(t *testing.T, addrs []string, topic string) {
	route := testRoute(topic, topic)
	var log lockedLog
	logger := slog.New(slog.NewTextHandler(&log, nil))
	d := &deliveries{by: map[string]string{}}
	runReplica(t, addrs, route, d.target("one"), staticConfig(t, "same-id"), logger)
	runReplica(t, addrs, route, d.target("two"), staticConfig(t, "same-id"), logger)
	waitFor(t, "the error line naming the shared group_instance_id", func() bool {
		for _, line := range strings.Split(log.String(), "\n") {
			if strings.Contains(line, "level=ERROR") && strings.Contains(line, `kafka.group_instance_id \"same-id\"`) &&
				strings.Contains(line, "needs an id of its own") {
				return true
			}
		}
		return false
	}, log.String)
}

// describeGroup returns the instance ids of group's members (the member id
// for a dynamic one) and the group's state, as the coordinator describes
// them.
func describeGroup(t *testing.T, addrs []string, group string) ([]string, string) {
	t.Helper()
	sc := plainConfig()
	admin, err := sarama.NewClusterAdmin(addrs, sc)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	gs, err := admin.DescribeConsumerGroups([]string{group})
	if err != nil || len(gs) != 1 {
		t.Fatalf("describe group %s: %v, %d groups", group, err, len(gs))
	}
	var ids []string
	for _, m := range gs[0].Members {
		if m.GroupInstanceId != nil {
			ids = append(ids, *m.GroupInstanceId)
		} else {
			ids = append(ids, m.MemberId)
		}
	}
	return ids, gs[0].State
}
