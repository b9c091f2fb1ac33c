package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/hookbridge/hookbridge/bridge/config"
	"github.com/hookbridge/hookbridge/bridge/dispatch"
	"github.com/hookbridge/hookbridge/bridge/target"
	"github.com/hookbridge/hookbridge/bridge/telemetry"
)

// patience bounds every wait of these tests. It is a hang guard, not a timing
// assertion: what they wait for takes a few heartbeats at most.
const patience = 30 * time.Second

// waitFor polls cond until it holds and fails the test when it has not held
// within patience; state, called then, says what was seen instead.
func waitFor(t *testing.T, what string, cond func() bool, state func() string) {
	t.Helper()
	deadline := time.Now().Add(patience)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s after %s; %s", what, patience, state())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// startCluster starts a one-broker kfake cluster over TCP with topic, one
// partition; it is closed when the test ends.
func startCluster(t *testing.T, topic string) *kfake.Cluster {
	t.Helper()
	return startClusterWith(t, topic, 1)
}

// startClusterWith is startCluster with topic of the given partitions.
func startClusterWith(t *testing.T, topic string, partitions int32) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(partitions, topic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// groupConfig is the sarama configuration a route's consumer gets, with the
// broker's smallest session timeout.
func groupConfig(t *testing.T) *sarama.Config {
	t.Helper()
	return groupConfigWith(t, config.Kafka{})
}

// groupConfigWith is groupConfig with k's balance and initial offset.
func groupConfigWith(t *testing.T, k config.Kafka) *sarama.Config {
	t.Helper()
	sc, err := NewConfig(config.Kafka{Version: config.DefaultKafkaVersion, ClientID: "consumer-test",
		SessionTimeout: config.Duration(6 * time.Second), Balance: k.Balance, InitialOffset: k.InitialOffset})
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

// plainConfig is a sarama configuration for the test's own clients.
func plainConfig() *sarama.Config {
	sc := sarama.NewConfig()
	sc.Version = sarama.V3_0_0_0
	sc.Producer.Return.Successes = true
	sc.Producer.RequiredAcks = sarama.WaitForAll
	sc.Producer.Partitioner = sarama.NewManualPartitioner
	return sc
}

// produce writes records of key/value pairs to partition 0 of topic, in one
// batch, and returns their offsets.
func produce(t *testing.T, addrs []string, topic string, kvs ...string) []int64 {
	t.Helper()
	return produceTo(t, addrs, topic, 0, kvs...)
}

// produceTo is produce to the given partition.
func produceTo(t *testing.T, addrs []string, topic string, partition int32, kvs ...string) []int64 {
	t.Helper()
	return produceWith(t, plainConfig(), addrs, topic, partition, kvs...)
}

// produceWith is produceTo with a producer of configuration sc.
func produceWith(t *testing.T, sc *sarama.Config, addrs []string, topic string, partition int32, kvs ...string) []int64 {
	t.Helper()
	p, err := sarama.NewSyncProducer(addrs, sc)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var msgs []*sarama.ProducerMessage
	for i := 0; i+1 < len(kvs); i += 2 {
		msgs = append(msgs, &sarama.ProducerMessage{Topic: topic, Partition: partition,
			Key: sarama.StringEncoder(kvs[i]), Value: sarama.StringEncoder(kvs[i+1])})
	}
	if err := p.SendMessages(msgs); err != nil {
		t.Fatalf("produce %v: %v", kvs, err)
	}
	offsets := make([]int64, len(msgs))
	for i, m := range msgs {
		offsets[i] = m.Offset
	}
	return offsets
}

// committed returns group's committed offset of partition 0 of topic (-1
// when there is none).
func committed(t *testing.T, admin sarama.ClusterAdmin, group, topic string) int64 {
	t.Helper()
	return committedOf(t, admin, group, topic, 0)
}

// committedOf is committed of the given partition.
func committedOf(t *testing.T, admin sarama.ClusterAdmin, group, topic string, partition int32) int64 {
	t.Helper()
	resp, err := admin.ListConsumerGroupOffsets(group, map[string][]int32{topic: {partition}})
	if err != nil {
		t.Fatalf("list offsets of group %s: %v", group, err)
	}
	if b := resp.GetBlock(topic, partition); b != nil {
		return b.Offset
	}
	return -1
}

// cooperativeConfig is groupConfig with cooperative-sticky rebalancing.
func cooperativeConfig(t *testing.T) *sarama.Config {
	t.Helper()
	return groupConfigWith(t, config.Kafka{Balance: "cooperative-sticky"})
}

// joinMember runs an idleMember in group on topic until the test ends, with
// the sarama configuration sc; it reports the partitions it is given.
func joinMember(t *testing.T, addrs []string, group, topic string, sc *sarama.Config) *idleMember {
	t.Helper()
	member := &idleMember{claimed: make(chan int32, 8)}
	g, err := sarama.NewConsumerGroup(addrs, group, sc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			if err := g.Consume(ctx, []string{topic}, member); errors.Is(err, sarama.ErrClosedConsumerGroup) {
				return
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		_ = g.Close()
		<-done
	})
	return member
}

func newAdmin(t *testing.T, addrs []string) sarama.ClusterAdmin {
	t.Helper()
	a, err := sarama.NewClusterAdmin(addrs, plainConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Close() })
	return a
}

// deadLetters is a dispatch.Producer for dead letters whose writes fail
// until the test allows the source record's offset.
type deadLetters struct {
	mu      sync.Mutex
	allowed map[int64]bool
	written []int64 // source offsets, in the order written
}

var _ dispatch.Producer = (*deadLetters)(nil)

func (p *deadLetters) Produce(_ context.Context, outs []target.Output) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, o := range outs {
		off, err := sourceOffset(o)
		if err != nil {
			return err
		}
		if !p.allowed[off] {
			return fmt.Errorf("dead letter of offset %d: broker unavailable", off)
		}
	}
	for _, o := range outs {
		off, _ := sourceOffset(o)
		p.written = append(p.written, off)
	}
	return nil
}

// allow lets the dead-letter writes of the record at offset succeed.
func (p *deadLetters) allow(offset int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.allowed == nil {
		p.allowed = make(map[int64]bool)
	}
	p.allowed[offset] = true
}

func (p *deadLetters) writes() []int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.written)
}

func sourceOffset(o target.Output) (int64, error) {
	for _, h := range o.Headers {
		if h.Key == dispatch.HeaderErrorOffset {
			return strconv.ParseInt(string(h.Value), 10, 64)
		}
	}
	return 0, errors.New("dead letter without " + dispatch.HeaderErrorOffset)
}

// stuckEvents is what the bridge's routeEvents does for the consumer:
// it forwards Stuck and Unstuck to it. It records each after forwarding, so a
// recorded event is one the consumer has seen.
type stuckEvents struct {
	dispatch.NopEvents
	consumer *Consumer

	mu      sync.Mutex
	stuck   []int64
	unstuck []int64
}

func (e *stuckEvents) Stuck(ctx context.Context, rec *target.Record, err error) {
	e.consumer.Stuck(ctx, rec, err)
	e.mu.Lock()
	defer e.mu.Unlock()
	e.stuck = append(e.stuck, rec.Offset)
}

func (e *stuckEvents) Unstuck(ctx context.Context, rec *target.Record) {
	e.consumer.Unstuck(ctx, rec)
	e.mu.Lock()
	defer e.mu.Unlock()
	e.unstuck = append(e.unstuck, rec.Offset)
}

// sawStuck reports whether every one of offsets was reported Stuck.
func (e *stuckEvents) sawStuck(offsets ...int64) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return containsAll(e.stuck, offsets)
}

// sawUnstuck reports whether every one of offsets was reported Unstuck.
func (e *stuckEvents) sawUnstuck(offsets ...int64) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return containsAll(e.unstuck, offsets)
}

func containsAll(got, want []int64) bool {
	for _, off := range want {
		if !slices.Contains(got, off) {
			return false
		}
	}
	return true
}

func (e *stuckEvents) String() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return fmt.Sprintf("stuck %v, unstuck %v", e.stuck, e.unstuck)
}

// testRoute is a route of topic, ordered by key, with two workers (so that
// two stuck records of different keys are both in flight). NewConsumer takes
// the route as it is, without the config defaults: a zero MaxInFlightBytes
// would admit one record at a time.
func testRoute(name, topic string) config.Route {
	return config.Route{Name: name, Topics: []string{topic}, Ordering: config.OrderingKey, Concurrency: 2,
		MaxInFlightBytes: 1 << 20}
}

// runRoute runs a consumer of route whose chain is tg behind the real
// dead-letter layer (and Retry, which makes a permanent error a *Failure),
// writing dead letters to dl. The consumer stops when the test ends.
func runRoute(t *testing.T, addrs []string, route config.Route, tg target.Target, dl dispatch.Producer) (*Consumer, *stuckEvents) {
	t.Helper()
	return runRouteWith(t, addrs, route, tg, dl, groupConfig(t))
}

// runRouteWith is runRoute with the sarama configuration sc. The consumer
// looks up the latest offsets of its partitions more often than it would in
// production, so that waiting for them is short.
func runRouteWith(t *testing.T, addrs []string, route config.Route, tg target.Target, dl dispatch.Producer, sc *sarama.Config) (*Consumer, *stuckEvents) {
	t.Helper()
	ev := &stuckEvents{}
	chain := target.Chain(tg,
		dispatch.DeadLetter(dispatch.DeadLetterPolicy{Route: route.Name, Group: route.GroupID(),
			Topic: "dead-letters", Backoff: 100 * time.Millisecond}, dl, ev),
		dispatch.Retry(dispatch.RetryPolicy{MaxAttempts: 1, InitialBackoff: time.Millisecond,
			MaxBackoff: time.Millisecond}, ev),
	)
	c := NewConsumer(ConsumerOptions{Route: route, Brokers: addrs, Sarama: sc, Target: chain,
		Logger: slog.New(slog.DiscardHandler), ShutdownTimeout: 5 * time.Second})
	c.offsetsEvery = 100 * time.Millisecond
	ev.consumer = c
	startRun(t, c, patience)
	return c, ev
}

// startRun runs c until the test ends, and then checks that Run returned
// within wait of its context ending.
func startRun(t *testing.T, c *Consumer, wait time.Duration) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(wait):
			t.Errorf("route %s: Run did not return within %s of its context ending", c.opts.Route.Name, wait)
		}
	})
}

// partitionStats returns the consumer's stats of partition 0 of topic, and
// whether it holds that partition.
func partitionStats(c *Consumer, topic string) (telemetry.PartitionStats, bool) {
	return partitionStatsOf(c, topic, 0)
}

// partitionStatsOf is partitionStats of the given partition.
func partitionStatsOf(c *Consumer, topic string, partition int32) (telemetry.PartitionStats, bool) {
	for _, ps := range c.Stats().Partitions {
		if ps.Topic == topic && ps.Partition == partition {
			return ps, true
		}
	}
	return telemetry.PartitionStats{}, false
}

// describe renders what a failed wait saw of the consumer.
func describe(c *Consumer, topic string) string {
	ps, owned := partitionStats(c, topic)
	return fmt.Sprintf("Ready() = %v; partition owned %t, stuck %t, paused %t, lag %d",
		c.Ready(), owned, ps.Stuck, ps.Paused, ps.Lag)
}

// permanent is a target that refuses every record for good.
var permanent = target.Func(func(context.Context, *target.Delivery) (*target.Result, error) {
	return nil, target.NewPermanent(errors.New("receiver: 422 unprocessable"))
})

// Two records of one partition cannot be dead-lettered: the partition stays
// stuck (paused, not ready) until the last of them moved on, and only then
// commits past both.
func TestConsumerStuckCountsRecords(t *testing.T) {
	const topic = "orders"
	cluster := startCluster(t, topic)
	addrs := cluster.ListenAddrs()
	route := testRoute("stuck", topic)
	// Both are written before the consumer starts, so that its first fetch
	// holds both: the first stuck record pauses the partition.
	offsets := produce(t, addrs, topic, "a", "first", "b", "second")
	if !slices.Equal(offsets, []int64{0, 1}) {
		t.Fatalf("produced at offsets %v, want [0 1]", offsets)
	}
	dl := &deadLetters{}
	c, ev := runRoute(t, addrs, route, permanent, dl)

	waitFor(t, "both records to be reported stuck", func() bool { return ev.sawStuck(0, 1) },
		func() string { return ev.String() + "; " + describe(c, topic) })
	err := c.Ready()
	if err == nil || !strings.Contains(err.Error(), "offset 0") || !strings.Contains(err.Error(), "offset 1") {
		t.Errorf("with both records stuck, Ready() = %v, want an error naming offsets 0 and 1", err)
	}
	if ps, owned := partitionStats(c, topic); !owned || !ps.Stuck || !ps.Paused {
		t.Errorf("with both records stuck: %s, want the partition owned, stuck and paused", describe(c, topic))
	}

	dl.allow(0)
	waitFor(t, "the first record to move on", func() bool { return ev.sawUnstuck(0) },
		func() string { return ev.String() + "; " + describe(c, topic) })
	err = c.Ready()
	if err == nil {
		t.Errorf("with the second record still stuck, Ready() = nil, want an error naming offset 1")
	} else if !strings.Contains(err.Error(), "offset 1") || strings.Contains(err.Error(), "offset 0") {
		t.Errorf("with the second record still stuck, Ready() = %q, want it to name offset 1 and not offset 0", err)
	}
	if ps, owned := partitionStats(c, topic); !owned || !ps.Stuck || !ps.Paused {
		t.Errorf("with the second record still stuck: %s, want the partition owned, stuck and paused", describe(c, topic))
	}

	dl.allow(1)
	waitFor(t, "the second record to move on", func() bool { return ev.sawUnstuck(1) },
		func() string { return ev.String() + "; " + describe(c, topic) })
	if err := c.Ready(); err != nil {
		t.Errorf("with no record stuck, Ready() = %v, want nil", err)
	}
	if ps, owned := partitionStats(c, topic); !owned || ps.Stuck || ps.Paused {
		t.Errorf("with no record stuck: %s, want the partition owned, neither stuck nor paused", describe(c, topic))
	}
	if w := dl.writes(); !slices.Equal(slices.Sorted(slices.Values(w)), []int64{0, 1}) {
		t.Errorf("dead letters written for offsets %v, want 0 and 1 once each", w)
	}
	admin := newAdmin(t, addrs)
	var last int64
	waitFor(t, "the group to commit past both records", func() bool {
		last = committed(t, admin, route.GroupID(), topic)
		return last == 2
	}, func() string { return fmt.Sprintf("committed offset %d, want 2", last) })
}

// idleMember is a plain consumer group member that holds what it is given
// and marks nothing. It sends each partition it is given to claimed, when
// set.
type idleMember struct {
	sessions atomic.Int32
	memberID atomic.Pointer[string]
	claimed  chan int32
}

func (m *idleMember) Setup(sess sarama.ConsumerGroupSession) error {
	id := sess.MemberID()
	m.memberID.Store(&id)
	m.sessions.Add(1)
	return nil
}

func (m *idleMember) Cleanup(sarama.ConsumerGroupSession) error { return nil }

func (m *idleMember) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	if m.claimed != nil {
		m.claimed <- claim.Partition()
	}
	for {
		select {
		case _, ok := <-claim.Messages():
			if !ok {
				return nil
			}
		case <-sess.Context().Done():
			return nil
		}
	}
}

// A partition paused in sarama because its record was stuck when a rebalance
// ended the claim fetches again when it comes back to the same consumer:
// once the dead letter can be written, a new record is delivered.
func TestConsumerResumesAPartitionPausedBeforeARebalance(t *testing.T) {
	const topic = "payments"
	cluster := startCluster(t, topic)
	addrs := cluster.ListenAddrs()
	route := testRoute("rebalance", topic)
	dl := &deadLetters{}
	var mu sync.Mutex
	var delivered []string
	tg := target.Func(func(_ context.Context, d *target.Delivery) (*target.Result, error) {
		if string(d.Record.Value) == "poison" {
			return nil, target.NewPermanent(errors.New("receiver: 422 unprocessable"))
		}
		mu.Lock()
		defer mu.Unlock()
		delivered = append(delivered, string(d.Record.Value))
		return &target.Result{}, nil
	})
	c, ev := runRoute(t, addrs, route, tg, dl)

	produce(t, addrs, topic, "k", "poison")
	waitFor(t, "the poison record to be stuck and its partition paused", func() bool {
		ps, owned := partitionStats(c, topic)
		return ev.sawStuck(0) && owned && ps.Stuck && ps.Paused
	}, func() string { return ev.String() + "; " + describe(c, topic) })

	// A second member joins (a rebalance ends the claim) and leaves again
	// (another one hands the partition back).
	member := &idleMember{}
	group, err := sarama.NewConsumerGroup(addrs, route.GroupID(), groupConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	memberDone := make(chan struct{})
	go func() {
		defer close(memberDone)
		for {
			err := group.Consume(t.Context(), []string{topic}, member)
			if errors.Is(err, sarama.ErrClosedConsumerGroup) || t.Context().Err() != nil {
				return
			}
		}
	}()
	stopMember := sync.OnceFunc(func() {
		if err := group.Close(); err != nil {
			t.Errorf("second member: close: %v", err)
		}
		<-memberDone
	})
	t.Cleanup(stopMember)
	waitFor(t, "the second member to join the group", func() bool { return member.sessions.Load() > 0 },
		func() string { return describe(c, topic) })
	stopMember()

	admin := newAdmin(t, addrs)
	second := *member.memberID.Load()
	var seen string
	waitFor(t, "the partition to come back to the first consumer alone", func() bool {
		groups, err := admin.DescribeConsumerGroups([]string{route.GroupID()})
		if err != nil || len(groups) != 1 {
			seen = fmt.Sprintf("describe: %v, %d groups", err, len(groups))
			return false
		}
		g := groups[0]
		seen = fmt.Sprintf("group %s with %d members", g.State, len(g.Members))
		if g.State != "Stable" || len(g.Members) != 1 {
			return false
		}
		for id, m := range g.Members {
			a, err := m.GetMemberAssignment()
			if id == second || err != nil || a == nil || !slices.Contains(a.Topics[topic], 0) {
				return false
			}
		}
		_, owned := partitionStats(c, topic)
		return owned
	}, func() string { return seen + "; " + describe(c, topic) })

	dl.allow(0)
	produce(t, addrs, topic, "k", "fresh")
	waitFor(t, "the new record to be delivered", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return slices.Contains(delivered, "fresh")
	}, func() string {
		return fmt.Sprintf("dead letters %v, %s; %s", dl.writes(), ev.String(), describe(c, topic))
	})
	if w := dl.writes(); !slices.Contains(w, 0) {
		t.Errorf("dead letters written for offsets %v, want the poison record's, 0", w)
	}
	if err := c.Ready(); err != nil {
		t.Errorf("after the new record was delivered, Ready() = %v, want nil", err)
	}
}

// Once the group is gone (its broker stopped), the consumer is not ready.
func TestConsumerNotReadyAfterLosingTheGroup(t *testing.T) {
	const topic = "events"
	cluster := startCluster(t, topic)
	route := testRoute("lost", topic)
	c, _ := runRoute(t, cluster.ListenAddrs(), route, permanent, &deadLetters{})

	waitFor(t, "the consumer to join its group", func() bool { return c.Ready() == nil },
		func() string { return fmt.Sprintf("Ready() = %v", c.Ready()) })
	cluster.Close()
	waitFor(t, "Ready to report the lost group", func() bool { return c.Ready() != nil },
		func() string { return "Ready() = nil" })
}

// poisonTarget fails permanently the records whose key is "poison" (so they
// go to the dead-letter layer) and keeps the keys of the others it delivers,
// by partition.
type poisonTarget struct {
	mu   sync.Mutex
	keys map[int32][]string
}

func (pt *poisonTarget) Deliver(_ context.Context, d *target.Delivery) (*target.Result, error) {
	if string(d.Record.Key) == "poison" {
		return nil, target.NewPermanent(errors.New("receiver: 422 unprocessable"))
	}
	pt.mu.Lock()
	defer pt.mu.Unlock()
	if pt.keys == nil {
		pt.keys = map[int32][]string{}
	}
	pt.keys[d.Record.Partition] = append(pt.keys[d.Record.Partition], string(d.Record.Key))
	return &target.Result{}, nil
}

// delivered returns the keys delivered on partition p, in order.
func (pt *poisonTarget) delivered(p int32) []string {
	pt.mu.Lock()
	defer pt.mu.Unlock()
	return slices.Clone(pt.keys[p])
}

// state describes the route for a failed wait.
func (pt *poisonTarget) state(c *Consumer, ev *stuckEvents, topic string) func() string {
	return func() string {
		pt.mu.Lock()
		keys := fmt.Sprint(pt.keys)
		pt.mu.Unlock()
		st := c.Stats()
		return fmt.Sprintf("delivered %s; %d records, %d bytes held; %s; %s",
			keys, st.InFlightRecords, st.InFlightBytes, ev.String(), describe(c, topic))
	}
}

// A record that cannot be dead-lettered holds its share of the budget until
// it moves on. A record larger than the whole byte budget, on another
// partition, is still admitted next to it, and the partitions whose records
// wait in line behind that one deliver too.
func TestConsumerStuckPartitionLetsAnOversizedRecordIn(t *testing.T) {
	const topic = "mixed"
	addrs, c, ev, tg, dl, seen := stuckRig(t, "oversized", topic, 3, "")

	produceTo(t, addrs, topic, 0, "poison", "p")
	waitFor(t, "partition 0 to be stuck and paused", func() bool {
		ps, owned := partitionStats(c, topic)
		return ev.sawStuck(0) && owned && ps.Stuck && ps.Paused
	}, seen)

	produceTo(t, addrs, topic, 1, "big", strings.Repeat("x", 5<<10))
	produceTo(t, addrs, topic, 2, "small", "small")
	waitFor(t, "partitions 1 and 2 to deliver", func() bool {
		return slices.Equal(tg.delivered(1), []string{"big"}) && slices.Equal(tg.delivered(2), []string{"small"})
	}, seen)
	if err := c.Ready(); err == nil || !strings.Contains(err.Error(), "offset 0") {
		t.Errorf("with partition 0 still stuck, Ready() = %v, want an error naming offset 0", err)
	}

	dl.allow(0)
	waitFor(t, "the stuck record to move on and the budget to empty", func() bool {
		st := c.Stats()
		return ev.sawUnstuck(0) && st.InFlightRecords == 0 && st.InFlightBytes == 0
	}, seen)
	if err := c.Ready(); err != nil {
		t.Errorf("with no record stuck, Ready() = %v, want nil", err)
	}
}

// The records queued behind a stuck record (ordering: partition, so the
// whole partition queues behind it) give their room in the budget back: a
// small record on another partition is delivered although they would fill
// the route's max_in_flight_bytes, and once the stuck record moves on they
// are delivered and the budget is empty again.
func TestConsumerStuckLaneGivesItsQueueRoomBack(t *testing.T) {
	const topic = "queued"
	addrs, c, ev, tg, dl, seen := stuckRig(t, "queued", topic, 2, config.OrderingPartition)

	kvs := []string{"poison", "p"}
	for i := range 60 {
		kvs = append(kvs, fmt.Sprintf("q%02d", i), strings.Repeat("v", 100))
	}
	produceTo(t, addrs, topic, 0, kvs...) // 60 x ~100 B behind the poison: more than the 4 KiB budget
	waitFor(t, "partition 0 to be stuck", func() bool { return ev.sawStuck(0) }, seen)

	produceTo(t, addrs, topic, 1, "other", "small")
	waitFor(t, "the record of partition 1", func() bool { return len(tg.delivered(1)) == 1 }, seen)

	dl.allow(0)
	waitFor(t, "partition 0 to deliver its queue and the budget to empty", func() bool {
		st := c.Stats()
		return len(tg.delivered(0)) == 60 && st.InFlightRecords == 0 && st.InFlightBytes == 0
	}, seen)
	if err := c.Ready(); err != nil {
		t.Errorf("Ready() = %v after the stuck record moved on", err)
	}
}

// stuckRig runs a route over topic (partitions partitions; ordering "" for
// the default) with a 4 KiB budget and a poisonTarget, whose dead letters dl
// refuses until allowed.
func stuckRig(t *testing.T, name, topic string, partitions int32, ordering string) (addrs []string, c *Consumer, ev *stuckEvents, tg *poisonTarget, dl *deadLetters, seen func() string) {
	t.Helper()
	addrs = startClusterWith(t, topic, partitions).ListenAddrs()
	route := testRoute(name, topic)
	if ordering != "" {
		route.Ordering = ordering
	}
	route.MaxInFlightBytes = 4 << 10
	tg, dl = &poisonTarget{}, &deadLetters{}
	c, ev = runRoute(t, addrs, route, tg, dl)
	return addrs, c, ev, tg, dl, tg.state(c, ev, topic)
}

// A record that gave its room back while it was queued behind a stuck record
// holds none when it gets stuck itself (the first record's dead-letter write
// went through, its own does not): the budget must not count it as a stuck
// holder, or a record larger than the whole budget, admitted once only stuck
// records are held, would wait for ever at the head of the budget's line,
// and every other partition behind it.
func TestConsumerStuckRecordThatHeldNoRoom(t *testing.T) {
	const topic = "unheld"
	addrs, c, ev, tg, dl, seen := stuckRig(t, "unheld", topic, 3, config.OrderingPartition)

	produceTo(t, addrs, topic, 0, "poison", "a", "poison", "b")
	waitFor(t, "offset 0 to be stuck", func() bool { return ev.sawStuck(0) }, seen)
	dl.allow(0) // offset 0's dead letter goes through; offset 1's does not
	waitFor(t, "offset 1 to be stuck after offset 0 moved on", func() bool { return ev.sawUnstuck(0) && ev.sawStuck(1) }, seen)

	produceTo(t, addrs, topic, 1, "big", strings.Repeat("x", 5<<10)) // larger than the whole budget
	produceTo(t, addrs, topic, 2, "small", "small")
	waitFor(t, "partitions 1 and 2 to deliver", func() bool {
		return len(tg.delivered(1)) == 1 && len(tg.delivered(2)) == 1
	}, seen)
	if st := c.Stats(); st.InFlightRecords > 1 || st.InFlightBytes > 4<<10 {
		t.Errorf("the route holds %d records, %d bytes; want at most the stuck one", st.InFlightRecords, st.InFlightBytes)
	}
}

// With kafka.balance cooperative-sticky, a member joining takes partitions
// from the consumer without ending its other claims: the delivery in flight
// on the partition that moves is canceled (its next owner delivers it
// again), the one on the partition that stays goes on and is committed.
// With eager rebalances (sticky) both would be canceled.
func TestConsumerCooperativeRebalanceKeepsInFlightWork(t *testing.T) {
	const topic = "invoices"
	cluster := startClusterWith(t, topic, 2)
	addrs := cluster.ListenAddrs()
	sc := cooperativeConfig(t)
	release := make(chan struct{})
	type outcome struct {
		partition int32
		canceled  bool
	}
	started, ended := make(chan int32, 2), make(chan outcome, 4)
	tg := target.Func(func(ctx context.Context, d *target.Delivery) (*target.Result, error) {
		started <- d.Record.Partition
		select {
		case <-release:
			ended <- outcome{d.Record.Partition, false}
			return &target.Result{}, nil
		case <-ctx.Done():
			ended <- outcome{d.Record.Partition, true}
			return nil, ctx.Err()
		}
	})
	route := testRoute("cooperative", topic)
	route.Ordering = config.OrderingPartition
	c, _ := runRouteWith(t, addrs, route, tg, &deadLetters{}, sc)
	produceTo(t, addrs, topic, 0, "k", "a")
	produceTo(t, addrs, topic, 1, "k", "b")
	for range 2 {
		select {
		case <-started:
		case <-time.After(patience):
			t.Fatalf("two deliveries did not start; %s", describe(c, topic))
		}
	}

	member := joinMember(t, addrs, route.GroupID(), topic, sc)
	var moved int32
	select {
	case moved = <-member.claimed:
	case <-time.After(patience):
		t.Fatalf("the second member got no partition; %s", describe(c, topic))
	}
	// The moved partition's delivery was canceled before sarama handed it
	// over: the consumer's claim had to end first.
	select {
	case o := <-ended:
		if o.partition != moved || !o.canceled {
			t.Fatalf("delivery on partition %d ended (canceled %v) before the release; want partition %d's, canceled", o.partition, o.canceled, moved)
		}
	case <-time.After(patience):
		t.Fatal("the delivery on the partition that moved was not canceled")
	}
	close(release)
	stays := 1 - moved
	select {
	case o := <-ended:
		if o.partition != stays || o.canceled {
			t.Fatalf("delivery on partition %d: canceled %v; want partition %d's delivered", o.partition, o.canceled, stays)
		}
	case <-time.After(patience):
		t.Fatal("the delivery on the partition that stays did not end")
	}
	admin := newAdmin(t, addrs)
	waitFor(t, "the partition that stayed to be committed past its record", func() bool {
		return committedOf(t, admin, route.GroupID(), topic, stays) == 1
	}, func() string { return describe(c, topic) })
}
