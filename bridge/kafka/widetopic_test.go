package kafka

import (
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/hookbridge/hookbridge/bridge/config"
)

// produceEach writes n small records to every partition of topic, of
// partitions, at once.
func produceEach(t *testing.T, addrs []string, topic string, partitions int32, n int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var recs []*kgo.Record
	for p := range partitions {
		for i := range n {
			recs = append(recs, &kgo.Record{Topic: topic, Partition: p, Value: fmt.Appendf(nil, "%d-%d", p, i)})
		}
	}
	if err := cl.ProduceSync(t.Context(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// takeOffline makes the metadata of topic, on a one-broker kfake cluster,
// say what a Kafka broker says of a partition whose leader is down and
// which no replica in sync took over: leader -1, LEADER_NOT_AVAILABLE. kfake
// itself has no such state. It lasts while offline holds.
func takeOffline(t *testing.T, cluster *kfake.Cluster, topic string, partition int32, offline *atomic.Bool) {
	t.Helper()
	id := cluster.TopicInfo(topic).TopicID
	infos := cluster.PartitionInfos(topic)
	host, port, err := net.SplitHostPort(cluster.ListenAddrs()[0])
	if err != nil {
		t.Fatal(err)
	}
	portNum, _ := strconv.Atoi(port)
	cluster.ControlKey(int16(kmsg.Metadata), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		cluster.KeepControl()
		if !offline.Load() {
			return nil, nil, false
		}
		req := kreq.(*kmsg.MetadataRequest)
		resp := req.ResponseKind().(*kmsg.MetadataResponse)
		b := kmsg.NewMetadataResponseBroker()
		b.NodeID, b.Host, b.Port = 0, host, int32(portNum)
		resp.Brokers = []kmsg.MetadataResponseBroker{b}
		asked := req.Topics == nil
		for _, rt := range req.Topics {
			switch {
			case rt.Topic == nil:
			case *rt.Topic == topic:
				asked = true
			default:
				st := kmsg.NewMetadataResponseTopic()
				st.Topic = kmsg.StringPtr(*rt.Topic)
				st.ErrorCode = kerr.UnknownTopicOrPartition.Code
				resp.Topics = append(resp.Topics, st)
			}
		}
		if asked {
			st := kmsg.NewMetadataResponseTopic()
			st.Topic = kmsg.StringPtr(topic)
			st.TopicID = id
			for _, pi := range infos {
				sp := kmsg.NewMetadataResponseTopicPartition()
				sp.Partition, sp.Leader, sp.LeaderEpoch = pi.Partition, 0, pi.Epoch
				sp.Replicas, sp.ISR = []int32{0}, []int32{0}
				if pi.Partition == partition {
					sp.ErrorCode = kerr.LeaderNotAvailable.Code
					sp.Leader, sp.ISR = -1, nil
				}
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil, true
	})
}

// One partition of a wide topic without a leader (its broker down, no
// replica in sync to take over) must not hold up the others. sarama's
// consumer group refreshes the topic's metadata before it joins, and fails
// the join when a partition has no leader: the route never joined, and none
// of the 256 partitions was consumed until the one had a leader again.
func TestOfflinePartitionLeavesTheOthersConsumed(t *testing.T) {
	const (
		topic      = "wide"
		partitions = 256
		offline    = 7
		each       = 2
	)
	cluster := startClusterWith(t, topic, partitions)
	addrs := cluster.ListenAddrs()
	produceEach(t, addrs, topic, partitions, each)
	var down atomic.Bool
	down.Store(true)
	takeOffline(t, cluster, topic, offline, &down)

	tg := &deliveryCounter{}
	route := config.Route{Name: topic, Topics: []string{topic}, Ordering: config.OrderingPartition, Concurrency: 8,
		MaxInFlightBytes: 64 << 20}
	sc := groupConfig(t)
	// sarama looks again at a partition without a leader at each metadata
	// refresh (every minute in production).
	sc.Metadata.RefreshFrequency = 500 * time.Millisecond
	c := NewConsumer(ConsumerOptions{Route: route, Brokers: addrs, Sarama: sc, Target: tg,
		Logger: slog.New(slog.DiscardHandler), ShutdownTimeout: 5 * time.Second})
	startRun(t, c, patience)

	waitFor(t, "every partition but the offline one delivered", func() bool {
		return tg.distinct() >= (partitions-1)*each
	}, func() string {
		return fmt.Sprintf("%d of %d records delivered; ready: %v", tg.distinct(), (partitions-1)*each, c.Ready())
	})
	if _, held := partitionStatsOf(c, topic, offline); held {
		t.Errorf("partition %d has no leader, yet the route reads it", offline)
	}

	// Back with a leader: its records are delivered and committed too.
	down.Store(false)
	waitFor(t, "the partition that came back delivered", func() bool { return tg.distinct() == partitions*each },
		func() string { return fmt.Sprintf("%d of %d records delivered", tg.distinct(), partitions*each) })
	admin := newAdmin(t, addrs)
	waitFor(t, "the partition that came back committed", func() bool {
		return committedOf(t, admin, route.GroupID(), topic, offline) == each
	}, func() string {
		return fmt.Sprintf("committed %d", committedOf(t, admin, route.GroupID(), topic, offline))
	})
}

// initial_offset: newest starts a new group at every partition's newest
// offset, looked up one partition at a time when the group joins. A lookup
// that failed part way (a partition's leader moving as the route starts)
// failed the join, but sarama committed the offsets of the partitions
// marked before it; the next try took the topic for one the group knew, and
// started every partition not reached yet at its oldest record: the route
// delivered the topic's history it was told to skip.
func TestNewestStartIsAllOrNothing(t *testing.T) {
	const (
		topic      = "wide"
		partitions = 32
		failing    = 7 // the lookups go in partition order: the ones below it were marked
	)
	cluster := startClusterWith(t, topic, partitions)
	addrs := cluster.ListenAddrs()
	produceEach(t, addrs, topic, partitions, 1) // history, before the route starts
	// Each of sarama's lookups asks twice (once after a metadata refresh):
	// the join's first try fails, the next one finds the leader.
	fault := cluster.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.ListOffsets}, Topic: topic, Partitions: []int32{failing},
		Err: kerr.NotLeaderForPartition, Count: 2})

	tg := &deliveryCounter{}
	route := config.Route{Name: topic, Topics: []string{topic}, Ordering: config.OrderingPartition, Concurrency: 4,
		MaxInFlightBytes: 1 << 20}
	c := NewConsumer(ConsumerOptions{Route: route, Brokers: addrs, Sarama: newestConfig(t), Target: tg,
		Logger: slog.New(slog.DiscardHandler), ShutdownTimeout: 5 * time.Second})
	startRun(t, c, patience)
	waitFor(t, "the join's first try to fail on the lookup", func() bool { return fault.Hits() >= 2 },
		func() string { return fmt.Sprintf("%d lookups failed", fault.Hits()) })
	waitFor(t, "the route to join", func() bool { return len(c.Stats().Partitions) == partitions },
		func() string { return fmt.Sprintf("ready: %v", c.Ready()) })

	produceEach(t, addrs, topic, partitions, 1) // after the start: these are the route's
	waitFor(t, "the records produced after the start", func() bool { return tg.distinct() >= partitions },
		func() string { return fmt.Sprintf("%d of %d delivered", tg.distinct(), partitions) })
	tg.mu.Lock()
	defer tg.mu.Unlock()
	var history []string
	for p := range int32(partitions) {
		if tg.seen[fmt.Sprintf("%d/0", p)] > 0 {
			history = append(history, strconv.Itoa(int(p)))
		}
	}
	if len(history) > 0 {
		t.Errorf("initial_offset newest, yet the records produced before the route started were delivered on partitions %v", history)
	}
}
