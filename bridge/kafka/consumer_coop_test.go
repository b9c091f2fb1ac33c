package kafka

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/hookbridge/hookbridge/bridge/config"
	"github.com/hookbridge/hookbridge/bridge/target"
)

// Under cooperative rebalancing a revoked claim is told only by the end of
// its messages, the session going on. Here the target answers nothing, the
// route's budget is full and both claim loops wait for room. A member joins:
// the claim loop of the partition that moves sees the revocation while it
// waits and lets the partition go at once (not at sarama's rebalance
// timeout, which would end the whole session), and the delivery in flight
// on the partition that stays goes on.
func TestConsumerCooperativeRevocationWhileWaitingForRoom(t *testing.T) {
	const topic = "ledger"
	addrs := startClusterWith(t, topic, 2).ListenAddrs()
	route := testRoute("ledger", topic)
	route.Ordering = config.OrderingPartition
	route.MaxInFlightBytes = 4 << 10
	var mu sync.Mutex
	started, canceled := map[int32]int{}, map[int32]int{}
	tg := target.Func(func(ctx context.Context, d *target.Delivery) (*target.Result, error) {
		mu.Lock()
		started[d.Record.Partition]++
		mu.Unlock()
		<-ctx.Done() // the target never answers
		mu.Lock()
		canceled[d.Record.Partition]++
		mu.Unlock()
		return nil, ctx.Err()
	})
	sc := cooperativeConfig(t)
	c, _ := runRouteWith(t, addrs, route, tg, &deadLetters{}, sc)
	state := func() string {
		mu.Lock()
		defer mu.Unlock()
		return fmt.Sprintf("started %v, canceled %v; %s", started, canceled, describe(c, topic))
	}
	for p := range int32(2) {
		produceTo(t, addrs, topic, p, "first", "x")
	}
	waitFor(t, "a delivery in flight on each partition", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return started[0] == 1 && started[1] == 1
	}, state)
	for p := range int32(2) {
		kvs := make([]string, 0, 120)
		for i := range 60 {
			kvs = append(kvs, fmt.Sprintf("k%02d", i), strings.Repeat("v", 100))
		}
		produceTo(t, addrs, topic, p, kvs...)
	}
	waitFor(t, "both claim loops to wait for room (both partitions paused for backpressure)", func() bool {
		a, okA := partitionStatsOf(c, topic, 0)
		b, okB := partitionStatsOf(c, topic, 1)
		return okA && okB && a.Paused && b.Paused && c.Stats().InFlightBytes > 3<<10
	}, state)

	member := joinMember(t, addrs, route.GroupID(), topic, sc)
	var moved int32
	select {
	case moved = <-member.claimed:
	case <-time.After(patience): // sarama's rebalance timeout here is 60 s
		t.Fatalf("the partition that moves was not handed over; %s", state())
	}
	mu.Lock()
	defer mu.Unlock()
	if canceled[moved] != 1 || canceled[1-moved] != 0 {
		t.Fatalf("partition %d moved: deliveries canceled %v, want the moved partition's only", moved, canceled)
	}
}

// Under cooperative rebalancing sarama commits a revoked partition with a
// few quick tries only, and its next owner starts from what is committed.
// The claim commits and checks its offsets before it lets the partition go,
// as the end of a session does, so a coordinator that refuses commits for a
// moment (here from before the rebalance until 6 s after the member joins)
// does not make the next owner redeliver what was delivered; and the
// partition that left is not counted in the final commit at shutdown.
func TestConsumerCooperativeRevocationChecksItsCommit(t *testing.T) {
	r := newCommitRigWith(t, "handover", kerr.CoordinatorLoadInProgress.Code, 2, cooperativeConfig(t))
	r.run(t)
	stop := sync.OnceValue(r.stop)
	defer func() { _ = stop() }()
	admin := newAdmin(t, r.addrs)
	state := func() string {
		return fmt.Sprintf("%d delivered, committed %d and %d; %s", r.delivered.Load(),
			committedOf(t, admin, r.group(), r.topic, 0), committedOf(t, admin, r.group(), r.topic, 1), describe(r.c, r.topic))
	}
	for p := range int32(2) {
		produceTo(t, r.addrs, r.topic, p, "a", "1", "b", "2")
	}
	waitFor(t, "4 delivered and committed", func() bool {
		return r.delivered.Load() == 4 && committedOf(t, admin, r.group(), r.topic, 0) == 2 &&
			committedOf(t, admin, r.group(), r.topic, 1) == 2
	}, state)

	r.refusing.Store(true)
	for p := range int32(2) {
		produceTo(t, r.addrs, r.topic, p, "c", "3", "d", "4")
	}
	waitFor(t, "8 delivered", func() bool { return r.delivered.Load() == 8 }, state)
	member := joinMember(t, r.addrs, r.group(), r.topic, cooperativeConfig(t))
	stopRefusing := time.AfterFunc(6*time.Second, func() { r.refusing.Store(false) })
	defer stopRefusing.Stop()
	var moved int32
	select {
	case moved = <-member.claimed:
	case <-time.After(patience):
		t.Fatalf("the second member got no partition; %s", state())
	}
	waitFor(t, "both partitions committed past every delivered record", func() bool {
		return committedOf(t, admin, r.group(), r.topic, moved) == 4 && committedOf(t, admin, r.group(), r.topic, 1-moved) == 4
	}, state)
	if err := stop(); err != nil {
		t.Errorf("Run at shutdown = %v, want nil: what this member still owned was committed", err)
	}
}

// Members with eager and cooperative strategies cannot share a group: the
// broker refuses the one that does not match. The consumer keeps trying,
// and Ready says why, naming kafka.balance, instead of only that the route
// has not joined.
func TestConsumerReportsAMixedStrategyGroup(t *testing.T) {
	const topic = "mixed"
	addrs := startClusterWith(t, topic, 2).ListenAddrs()
	route := testRoute("mixed", topic)
	member := joinMember(t, addrs, route.GroupID(), topic, groupConfig(t)) // eager sticky
	select {
	case <-member.claimed:
	case <-time.After(patience):
		t.Fatal("the eager member got no partition")
	}
	c, _ := runRouteWith(t, addrs, route, target.Func(func(context.Context, *target.Delivery) (*target.Result, error) {
		return &target.Result{}, nil
	}), &deadLetters{}, cooperativeConfig(t))
	waitFor(t, "Ready to name the mixed strategies", func() bool {
		err := c.Ready()
		return err != nil && strings.Contains(err.Error(), "kafka.balance, cooperative-sticky")
	}, func() string { return fmt.Sprintf("Ready() = %v", c.Ready()) })
}

// While a claim loop waits for room it reads its claim's messages (so that
// it sees a revocation), but not the whole partition: waits shorter than
// pauseAfter, the steady state of a busy route, used to let it read records
// into memory as fast as the broker served them, far past the route's
// budget (a drain of 200,000 records grew the bridge's RSS to 280 MB). At
// maxHeld the partition pauses; what it holds is then at most what sarama
// had fetched.
func TestConsumerHoldsFewRecordsWhileWaitingForRoom(t *testing.T) {
	const topic = "ledger"
	addrs := startCluster(t, topic).ListenAddrs()
	route := testRoute("ledger", topic)
	route.Concurrency = 1
	var delivered atomic.Int32
	tg := target.Func(func(ctx context.Context, d *target.Delivery) (*target.Result, error) {
		time.Sleep(time.Millisecond) // a slow receiver: the budget is full and refills by the record
		delivered.Add(1)
		return &target.Result{}, nil
	})
	// In batches of 100: the broker hands over at least one whole batch per
	// fetch, whatever sarama asks for.
	for range 200 {
		kvs := make([]string, 0, 2*100)
		for i := range 100 {
			kvs = append(kvs, fmt.Sprintf("k%d", i), strings.Repeat("v", 100))
		}
		produce(t, addrs, topic, kvs...)
	}
	sc := groupConfig(t)
	sc.Consumer.Fetch.Default = 64 << 10 // what sarama fetches at once, and may still hand over once paused
	c, _ := runRouteWith(t, addrs, route, tg, &deadLetters{}, sc)
	held := func() int32 {
		c.mu.Lock()
		defer c.mu.Unlock()
		if p := c.parts[topicPartition{topic, 0}]; p != nil {
			return p.nHeld.Load()
		}
		return 0
	}
	// maxHeld, sarama's channel, and the fetches of 64 KiB (about 500 of
	// these records each) it had made or had under way when the partition
	// paused: nowhere near the 20,000 the partition has.
	bound := int32(maxHeld + sc.ChannelBufferSize + 4*500)
	var most int32
	waitFor(t, "500 deliveries", func() bool {
		most = max(most, held())
		return delivered.Load() >= 500
	}, func() string {
		return fmt.Sprintf("%d delivered, at most %d held; %s", delivered.Load(), most, describe(c, topic))
	})
	t.Logf("at most %d records held (bound %d)", most, bound)
	if most > bound {
		t.Errorf("the claim loop held up to %d records while it waited for room, want at most %d", most, bound)
	}
}
