package kafka

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/hookbridge/hookbridge/bridge/config"
	"github.com/hookbridge/hookbridge/bridge/target"
)

// offsetRecorder is a target that accepts every record and keeps its offset.
type offsetRecorder struct {
	mu      sync.Mutex
	offsets []int64
}

func (r *offsetRecorder) Deliver(_ context.Context, d *target.Delivery) (*target.Result, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.offsets = append(r.offsets, d.Record.Offset)
	return nil, nil
}

func (r *offsetRecorder) seen() []int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Sorted(slices.Values(r.offsets))
}

func newestConfig(t *testing.T) *sarama.Config {
	t.Helper()
	return groupConfigWith(t, config.Kafka{InitialOffset: "newest"})
}

// commitOffset commits offset for partition 0 of topic as a member of
// group that then leaves it.
func commitOffset(t *testing.T, addrs []string, group, topic string, offset int64) {
	t.Helper()
	cg, err := sarama.NewConsumerGroup(addrs, group, groupConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	defer cg.Close()
	ctx, cancel := context.WithTimeout(t.Context(), patience)
	defer cancel()
	h := &committer{offset: offset, done: make(chan struct{})}
	go func() {
		for ctx.Err() == nil && cg.Consume(ctx, []string{topic}, h) == nil {
		}
	}()
	select {
	case <-h.done:
	case <-ctx.Done():
		t.Fatalf("group %s: offset %d not committed", group, offset)
	}
}

// committer marks and commits its offset on its first claim, then waits for
// the session to end.
type committer struct {
	offset int64
	once   sync.Once
	done   chan struct{}
}

func (h *committer) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (h *committer) Cleanup(sarama.ConsumerGroupSession) error { return nil }
func (h *committer) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	if claim.Partition() == 0 { // commitOffset's partition; the others get none
		sess.MarkOffset(claim.Topic(), claim.Partition(), h.offset, "")
		sess.Commit()
		h.once.Do(func() { close(h.done) })
	}
	<-sess.Context().Done()
	return nil
}

// committedNow is committed, -1 while the group does not exist yet.
func committedNow(admin sarama.ClusterAdmin, group, topic string) int64 {
	resp, err := admin.ListConsumerGroupOffsets(group, map[string][]int32{topic: {0}})
	if err != nil {
		return -1
	}
	if b := resp.GetBlock(topic, 0); b != nil {
		return b.Offset
	}
	return -1
}

// With initial_offset: newest a group with no committed offset starts at the
// end of the partition: the records already there are not delivered, the
// ones produced after it joined are.
func TestConsumerInitialOffsetNewest(t *testing.T) {
	t.Parallel()
	const topic = "initial-newest"
	addrs := startCluster(t, topic).ListenAddrs()
	admin := newAdmin(t, addrs)
	produce(t, addrs, topic, "k", "0", "k", "1", "k", "2", "k", "3", "k", "4")

	route := testRoute("newest", topic)
	tg := &offsetRecorder{}
	c, _ := runRouteWith(t, addrs, route, tg, &deadLetters{}, newestConfig(t))
	// The claim's start is committed before it starts.
	waitFor(t, "the newest offset committed", func() bool { return committedNow(admin, route.GroupID(), topic) == 5 },
		func() string { return fmt.Sprintf("committed %d", committedNow(admin, route.GroupID(), topic)) })
	waitFor(t, "the route to join", func() bool { return c.Ready() == nil }, func() string { return fmt.Sprint(c.Ready()) })
	produce(t, addrs, topic, "k", "5", "k", "6")
	waitFor(t, "offsets 5 and 6 delivered", func() bool { return slices.Equal(tg.seen(), []int64{5, 6}) },
		func() string { return fmt.Sprintf("delivered %v", tg.seen()) })
}

// With initial_offset newest, startAtNewest asks the coordinator for the
// group's committed offsets. An answer with an error for a partition (the
// coordinator is still loading the group's offsets, as right after it
// moved) does not say the partition has none: the session's Setup fails and
// is tried again. Taken for "none", it committed the newest offset, and the
// records after the committed one were skipped.
func TestConsumerNewestWhenTheCoordinatorCannotAnswer(t *testing.T) {
	t.Parallel()
	const topic = "newest-fetch-error"
	cluster := startCluster(t, topic)
	addrs := cluster.ListenAddrs()
	admin := newAdmin(t, addrs)
	var kvs []string
	for i := range 10 {
		kvs = append(kvs, "k", fmt.Sprint(i))
	}
	produce(t, addrs, topic, kvs...)
	route := testRoute("newest-fetch-error", topic)
	commitOffset(t, addrs, route.GroupID(), topic, 2)
	if got := committedNow(admin, route.GroupID(), topic); got != 2 {
		t.Fatalf("committed %d, want 2", got)
	}

	// The consumer's first OffsetFetch (sarama's offset manager) is
	// answered normally; its second (startAtNewest's) with
	// COORDINATOR_LOAD_IN_PROGRESS, a transient error; later ones normally.
	var fetches atomic.Int32
	cluster.ControlKey(int16(kmsg.OffsetFetch), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		cluster.KeepControl()
		req := kreq.(*kmsg.OffsetFetchRequest)
		group := req.Group
		if len(req.Groups) > 0 {
			group = req.Groups[0].Group
		}
		if group != route.GroupID() || fetches.Add(1) != 2 {
			return nil, nil, false
		}
		code := kerr.CoordinatorLoadInProgress.Code
		resp := req.ResponseKind().(*kmsg.OffsetFetchResponse)
		resp.ErrorCode = code
		for _, rt := range req.Topics {
			st := kmsg.NewOffsetFetchResponseTopic()
			st.Topic = rt.Topic
			for _, p := range rt.Partitions {
				sp := kmsg.NewOffsetFetchResponseTopicPartition()
				sp.Partition, sp.Offset, sp.ErrorCode = p, -1, code
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		for _, rg := range req.Groups {
			g := kmsg.NewOffsetFetchResponseGroup()
			g.Group, g.ErrorCode = rg.Group, code
			for _, rt := range rg.Topics {
				st := kmsg.NewOffsetFetchResponseGroupTopic()
				st.Topic = rt.Topic
				for _, p := range rt.Partitions {
					sp := kmsg.NewOffsetFetchResponseGroupTopicPartition()
					sp.Partition, sp.Offset, sp.ErrorCode = p, -1, code
					st.Partitions = append(st.Partitions, sp)
				}
				g.Topics = append(g.Topics, st)
			}
			resp.Groups = append(resp.Groups, g)
		}
		return resp, nil, true
	})

	tg := &offsetRecorder{}
	c, _ := runRouteWith(t, addrs, route, tg, &deadLetters{}, newestConfig(t))
	waitFor(t, "the route to join", func() bool { return c.Ready() == nil }, func() string { return fmt.Sprint(c.Ready()) })
	if n := fetches.Load(); n < 2 {
		t.Fatalf("only %d OffsetFetch requests: the error was never injected", n)
	}
	want := []int64{2, 3, 4, 5, 6, 7, 8, 9}
	waitFor(t, "offsets 2 to 9 delivered", func() bool { return slices.Equal(tg.seen(), want) },
		func() string {
			return fmt.Sprintf("delivered %v, committed %d", tg.seen(), committedNow(admin, route.GroupID(), topic))
		})
}

// A group commits where it started on every partition it reads, an empty
// one included: a partition that never got a record kept no committed
// offset, so a later switch to initial_offset: newest (or an expiry of the
// group's offsets) started it past the records produced there while the
// bridge was stopped, and lag tools could not tell its lag.
func TestConsumerCommitsTheStartOfAnEmptyPartition(t *testing.T) {
	t.Parallel()
	const topic = "empty-start"
	addrs := startClusterWith(t, topic, 3).ListenAddrs()
	admin := newAdmin(t, addrs)
	route := testRoute("empty-start", topic)
	tg := &offsetRecorder{}
	c, _ := runRoute(t, addrs, route, tg, &deadLetters{})
	committedAt := func(p int32) int64 {
		resp, err := admin.ListConsumerGroupOffsets(route.GroupID(), map[string][]int32{topic: {p}})
		if err != nil {
			return -1 // the group is not there yet
		}
		if b := resp.GetBlock(topic, p); b != nil {
			return b.Offset
		}
		return -1
	}
	for p := range int32(3) {
		waitFor(t, fmt.Sprintf("offset 0 of partition %d committed", p), func() bool { return committedAt(p) == 0 },
			func() string { return fmt.Sprintf("committed %d, ready: %v", committedAt(p), c.Ready()) })
	}
	produce(t, addrs, topic, "k", "0")
	waitFor(t, "the record delivered", func() bool { return len(tg.seen()) == 1 },
		func() string { return fmt.Sprintf("delivered %v", tg.seen()) })
}

// initial_offset: newest applies to a topic the group has no committed
// offset of. A partition without one of a topic the group committed offsets
// of (it had no record when the group last ran under oldest, say) starts at
// its oldest record: moved to its newest, it skipped what was produced there
// while the bridge was stopped.
func TestConsumerNewestKeepsAKnownTopicsPartitionsWithoutOffsets(t *testing.T) {
	t.Parallel()
	const topic = "newest-known-topic"
	addrs := startClusterWith(t, topic, 3).ListenAddrs()
	route := testRoute("newest-known-topic", topic)
	produceTo(t, addrs, topic, 0, "a", "0", "a", "1")
	commitOffset(t, addrs, route.GroupID(), topic, 1) // offset 0 of partition 0 was delivered; the others have none
	if got := committedNow(newAdmin(t, addrs), route.GroupID(), topic); got != 1 {
		t.Fatalf("committed %d, want 1", got)
	}
	produceTo(t, addrs, topic, 1, "b", "0")
	produceTo(t, addrs, topic, 2, "c", "0")

	tg := &offsetRecorder{}
	runRouteWith(t, addrs, route, tg, &deadLetters{}, newestConfig(t))
	waitFor(t, "offset 1 of partition 0 and offset 0 of partitions 1 and 2 delivered",
		func() bool { return slices.Equal(tg.seen(), []int64{0, 0, 1}) },
		func() string { return fmt.Sprintf("delivered %v", tg.seen()) })
}
