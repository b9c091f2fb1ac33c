package kafka

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hookbridge/hookbridge/bridge/config"
	"github.com/hookbridge/hookbridge/bridge/target"
)

// partitionRecorder is a target that accepts every record and keeps its
// offset by partition.
type partitionRecorder struct {
	mu   sync.Mutex
	seen map[int32][]int64
}

func (r *partitionRecorder) Deliver(_ context.Context, d *target.Delivery) (*target.Result, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.seen == nil {
		r.seen = make(map[int32][]int64)
	}
	r.seen[d.Record.Partition] = append(r.seen[d.Record.Partition], d.Record.Offset)
	return nil, nil
}

// of returns the offsets delivered of partition, in order.
func (r *partitionRecorder) of(partition int32) []int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Sorted(slices.Values(r.seen[partition]))
}

func (r *partitionRecorder) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return fmt.Sprintf("delivered %v", r.seen)
}

// The group's leader watches the partition counts of the subscribed topics
// every Metadata.RefreshFrequency, and the client refreshes its metadata as
// often: sarama's default of 10 minutes left a new partition's records
// undelivered for up to 20.
func TestNewConfigWatchesForAddedPartitions(t *testing.T) {
	sc, err := NewConfig(config.Kafka{Version: config.DefaultKafkaVersion, ClientID: "test", SessionTimeout: config.Duration(10 * time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	if f := sc.Metadata.RefreshFrequency; f <= 0 || f > time.Minute {
		t.Errorf("Metadata.RefreshFrequency = %s, want at most a minute (and not 0, which turns the watch off)", f)
	}
}

// Partitions added to a subscribed topic while the bridge runs are
// consumed from their oldest record (initial_offset oldest) after the
// rebalance the partition watch starts, under either kind of rebalancing;
// the old partition goes on. The watch runs every RefreshFrequency, here
// shortened from NewConfig's minute to keep the test short.
func TestConsumerConsumesPartitionsAddedToItsTopic(t *testing.T) {
	for _, balance := range []string{"sticky", "cooperative-sticky"} {
		t.Run(balance, func(t *testing.T) {
			t.Parallel()
			topic := "grows-" + balance
			addrs := startCluster(t, topic).ListenAddrs()
			admin := newAdmin(t, addrs)
			route := testRoute(topic, topic)
			tg := &partitionRecorder{}
			sc := groupConfigWith(t, config.Kafka{Balance: balance})
			sc.Metadata.RefreshFrequency = 500 * time.Millisecond
			c := NewConsumer(ConsumerOptions{Route: route, Brokers: addrs, Sarama: sc, Target: tg,
				Logger: slog.New(slog.DiscardHandler), ShutdownTimeout: 5 * time.Second})
			startRun(t, c, patience)
			produceTo(t, addrs, topic, 0, "k", "a")
			waitFor(t, "offset 0 of partition 0 delivered", func() bool { return slices.Equal(tg.of(0), []int64{0}) }, tg.String)

			if err := admin.CreatePartitions(topic, 3, nil, false); err != nil {
				t.Fatal(err)
			}
			// Written before the group rebalances for them (the producer's
			// partitions are explicit): they are delivered from the oldest.
			produceTo(t, addrs, topic, 1, "k", "b", "k", "c")
			produceTo(t, addrs, topic, 2, "k", "d")
			produceTo(t, addrs, topic, 0, "k", "e")
			waitFor(t, "the records of the new partitions delivered", func() bool {
				return slices.Equal(tg.of(0), []int64{0, 1}) && slices.Equal(tg.of(1), []int64{0, 1}) && slices.Equal(tg.of(2), []int64{0})
			}, tg.String)
			waitFor(t, "the consumer to own all three partitions", func() bool { return len(c.Stats().Partitions) == 3 },
				func() string { return fmt.Sprintf("%+v", c.Stats().Partitions) })
			for p, want := range []int64{2, 2, 1} {
				waitFor(t, fmt.Sprintf("partition %d committed at %d", p, want), func() bool {
					return committedOf(t, admin, route.GroupID(), topic, int32(p)) == want
				}, func() string {
					return fmt.Sprintf("committed %d", committedOf(t, admin, route.GroupID(), topic, int32(p)))
				})
			}
		})
	}
}
