package kafka

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"

	"github.com/IBM/sarama"

	"github.com/hookbridge/hookbridge/bridge/target"
)

// gate is a target that holds every record until Open: what it holds stays
// unacknowledged, so nothing is marked meanwhile. A delivery whose context
// ends first fails without a terminal outcome.
type gate struct {
	opened chan struct{}
	once   sync.Once
}

func newGate() *gate { return &gate{opened: make(chan struct{})} }

// Open lets every delivery, held or future, succeed.
func (g *gate) Open() { g.once.Do(func() { close(g.opened) }) }

func (g *gate) Deliver(ctx context.Context, _ *target.Delivery) (*target.Result, error) {
	select {
	case <-g.opened:
		return &target.Result{}, nil
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
}

// produceN writes n records of key k to partition 0 of topic.
func produceN(t *testing.T, addrs []string, topic string, n int) {
	t.Helper()
	kvs := make([]string, 0, 2*n)
	for i := range n {
		kvs = append(kvs, "k", "v"+strconv.Itoa(i))
	}
	produce(t, addrs, topic, kvs...)
}

// waitForLag waits until partition 0 of topic reports lag want.
func waitForLag(t *testing.T, c *Consumer, topic string, want int64) {
	t.Helper()
	waitFor(t, fmt.Sprintf("lag %d", want), func() bool {
		ps, owned := partitionStats(c, topic)
		return owned && ps.Lag == want
	}, func() string { return describe(c, topic) })
}

// Before the group has marked anything, the lag is counted from where the
// claim started, resolved to a real offset: an empty partition has none, a
// new group that starts at the oldest offset has the whole backlog, one that
// starts at the newest has none. A record produced then adds one, and once
// everything is delivered and marked the lag is zero again.
func TestConsumerLagBeforeAnythingIsMarked(t *testing.T) {
	for _, tc := range []struct {
		name    string
		initial int64
		backlog int
		want    int64
	}{
		{"empty partition", sarama.OffsetOldest, 0, 0},
		{"backlog from the oldest offset", sarama.OffsetOldest, 100, 100},
		{"backlog from the newest offset", sarama.OffsetNewest, 100, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const topic = "lag"
			cluster := startCluster(t, topic)
			addrs := cluster.ListenAddrs()
			if tc.backlog > 0 {
				produceN(t, addrs, topic, tc.backlog)
			}
			sc := groupConfig(t)
			sc.Consumer.Offsets.Initial = tc.initial
			route := testRoute("lag", topic)
			g := newGate()
			c, _ := runRouteWith(t, addrs, route, g, &deadLetters{}, sc)
			t.Cleanup(g.Open) // before the consumer stops

			waitForLag(t, c, topic, tc.want)
			produce(t, addrs, topic, "k", "one more")
			waitForLag(t, c, topic, tc.want+1)

			g.Open()
			waitForLag(t, c, topic, 0)
			admin := newAdmin(t, addrs)
			var last int64
			want := int64(tc.backlog + 1)
			waitFor(t, "the group to commit past the last record", func() bool {
				last = committed(t, admin, route.GroupID(), topic)
				return last == want
			}, func() string { return fmt.Sprintf("committed offset %d, want %d", last, want) })
		})
	}
}

// A partition paused by an open breaker fetches nothing, yet its lag counts
// every record produced to it meanwhile.
func TestConsumerLagOfPausedPartitionGrows(t *testing.T) {
	const topic = "paused"
	cluster := startCluster(t, topic)
	addrs := cluster.ListenAddrs()
	g := newGate()
	c, _ := runRoute(t, addrs, testRoute("paused", topic), g, &deadLetters{})
	t.Cleanup(g.Open)

	waitForLag(t, c, topic, 0)
	c.PauseAll("breaker", true)
	waitFor(t, "the partition to pause", func() bool {
		ps, owned := partitionStats(c, topic)
		return owned && ps.Paused
	}, func() string { return describe(c, topic) })

	produceN(t, addrs, topic, 20)
	waitForLag(t, c, topic, 20)
	produceN(t, addrs, topic, 30)
	waitForLag(t, c, topic, 50)
	if ps, _ := partitionStats(c, topic); !ps.Paused {
		t.Errorf("with the breaker open: %s, want the partition paused", describe(c, topic))
	}
}

// After transactions, the partition's latest offset is a commit marker
// that no consumer receives: once every record is delivered the lag is 0,
// not 1 for good (an alert that never clears, a replica never scaled to
// zero). The tracker commits across the markers' offsets, the last one
// included; a record produced afterwards counts again.
func TestConsumerLagAfterTransactions(t *testing.T) {
	const topic = "txn"
	cluster := startCluster(t, topic)
	addrs := cluster.ListenAddrs()
	produceTxn(t, addrs, topic, "tx1", false, "0", "1", "2") // offsets 0-2, marker 3
	produceTxn(t, addrs, topic, "tx2", false, "0", "1", "2") // offsets 4-6, marker 7
	route := testRoute("txn", topic)
	g := newGate()
	g.Open()
	c, _ := runRoute(t, addrs, route, g, &deadLetters{})
	admin := newAdmin(t, addrs)
	waitFor(t, "the partition's claim", func() bool { _, owned := partitionStats(c, topic); return owned },
		func() string { return describe(c, topic) })
	waitFor(t, "offset 8 committed", func() bool { return committed(t, admin, route.GroupID(), topic) == 8 },
		func() string { return describe(c, topic) })
	waitForLag(t, c, topic, 0)
	produceN(t, addrs, topic, 1) // offset 8, delivered at once
	waitFor(t, "offset 9 committed", func() bool { return committed(t, admin, route.GroupID(), topic) == 9 },
		func() string { return describe(c, topic) })
	waitForLag(t, c, topic, 0)
}
