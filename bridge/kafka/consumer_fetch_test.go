package kafka

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookbridge/hookbridge/bridge/config"
	"github.com/hookbridge/hookbridge/bridge/target"
)

// heldTarget holds every delivery until released, then records the offsets
// delivered by partition.
type heldTarget struct {
	release chan struct{}
	partitionRecorder
}

func (h *heldTarget) Deliver(ctx context.Context, d *target.Delivery) (*target.Result, error) {
	select {
	case <-h.release:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return h.partitionRecorder.Deliver(ctx, d)
}

// runHeldRoute runs route with a heldTarget; release lets its deliveries
// through (it is called when the test ends too, before the consumer stops).
func runHeldRoute(t *testing.T, addrs []string, route config.Route) (*Consumer, *heldTarget, func()) {
	t.Helper()
	tg := &heldTarget{release: make(chan struct{})}
	c, _ := runRouteWith(t, addrs, route, tg, &deadLetters{}, groupConfig(t))
	var once sync.Once
	release := func() { once.Do(func() { close(tg.release) }) }
	t.Cleanup(release)
	return c, tg, release
}

// waitForEveryPartitionPaused waits until c owns partitions partitions and
// has paused each: the route is full.
func waitForEveryPartitionPaused(t *testing.T, c *Consumer, partitions int) {
	t.Helper()
	waitFor(t, "every partition to pause, the route full", func() bool {
		st := c.Stats()
		if len(st.Partitions) != partitions {
			return false
		}
		for _, ps := range st.Partitions {
			if !ps.Paused {
				return false
			}
		}
		return true
	}, func() string { return fmt.Sprintf("%d records read", readSoFar(c)) })
}

// readSoFar is what the route's claims have read from Kafka and hold: the
// records admitted to the budget and those held read ahead, in records.
func readSoFar(c *Consumer) int64 {
	recs, _ := c.budget.held()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range c.parts {
		recs += int64(p.nHeld.Load())
	}
	return recs
}

// A route over many partitions with a backlog reads, while its target holds
// everything, about its max_in_flight_bytes and as much again read ahead,
// plus what the Kafka client fetched for each partition before it paused.
// At sarama's fetch size of 1 MiB a partition, that last part was the whole
// backlog of every partition up to 1 MiB: 500 partitions of a topic held
// some 500 MiB for a route of 64 MiB. The fetch size follows the route's
// budget over its partitions; a record larger than that is still read.
func TestConsumerFetchesWithinItsBudgetOverManyPartitions(t *testing.T) {
	const (
		topic      = "wide"
		partitions = 32
		perPart    = 1024 // records of recSize: 1 MiB a partition
		recSize    = 1 << 10
		budget     = 512 << 10
		bigSize    = 256 << 10 // past the fetch size of a partition
	)
	addrs := startClusterWith(t, topic, partitions).ListenAddrs()
	// Batches of at most 16 KiB, as the Java producer's default batch.size
	// makes them (the broker answers a fetch with whole batches), and not
	// compressed: a fetch's size counts the bytes the broker sends.
	var recs []*kgo.Record
	for p := range int32(partitions) {
		for range perPart {
			recs = append(recs, &kgo.Record{Topic: topic, Partition: p, Value: make([]byte, recSize)})
		}
	}
	big := &kgo.Record{Topic: topic, Partition: 0, Value: make([]byte, bigSize)}
	for _, batch := range []struct {
		max  int32
		recs []*kgo.Record
	}{{16 << 10, recs}, {2 * bigSize, []*kgo.Record{big}}} {
		cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.RecordPartitioner(kgo.ManualPartitioner()),
			kgo.ProducerBatchMaxBytes(batch.max), kgo.ProducerBatchCompression(kgo.NoCompression()))
		if err != nil {
			t.Fatal(err)
		}
		if err := cl.ProduceSync(t.Context(), batch.recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
		cl.Close()
	}
	recs = append(recs, big)

	route := config.Route{Name: topic, Topics: []string{topic}, Ordering: config.OrderingPartition, Concurrency: 2,
		MaxInFlightBytes: budget}
	c, tg, release := runHeldRoute(t, addrs, route)
	waitForEveryPartitionPaused(t, c, partitions)
	// What the client fetched before a partition paused still arrives: look
	// for a while at what has been read. Each partition may have one fetch
	// under way when it pauses, beyond the one that filled its share.
	fetch := max(int64(budget/partitions), minPartitionFetch)
	bound := (2*int64(budget) + 2*partitions*fetch) / recSize
	peak := int64(0)
	for range 50 {
		peak = max(peak, readSoFar(c))
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("read %d records of %d bytes (%d KiB) for a budget of %d KiB over %d partitions; bound %d records",
		peak, recSize, peak*recSize>>10, budget>>10, partitions, bound)
	if peak > bound {
		t.Errorf("the route read %d records (%d KiB) ahead of its target, past %d (%d KiB): "+
			"its budget of %d KiB, as much read ahead, and two fetches of %d KiB per partition",
			peak, peak*recSize>>10, bound, bound*recSize>>10, budget>>10, fetch>>10)
	}

	release()
	waitFor(t, "every record delivered", func() bool {
		tg.mu.Lock()
		defer tg.mu.Unlock()
		n := 0
		for _, offs := range tg.seen {
			n += len(offs)
		}
		return n >= len(recs)
	}, tg.String)
	for p := range int32(partitions) {
		want := perPart
		if p == 0 {
			want++ // the large record
		}
		tg.mu.Lock()
		got := slices.Clone(tg.seen[p])
		tg.mu.Unlock()
		if len(got) != want || !slices.IsSorted(got) || got[0] != 0 || got[len(got)-1] != int64(want-1) {
			t.Errorf("partition %d: delivered %d records (first %v), want offsets 0..%d once each, in order", p, len(got), got[:min(len(got), 3)], want-1)
		}
	}
}
