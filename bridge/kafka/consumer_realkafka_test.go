package kafka

import (
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookbridge/hookbridge/bridge/config"
)

// realBroker returns the brokers HOOKBRIDGE_TEST_KAFKA names, or skips: these
// tests check against Apache Kafka what kfake cannot show (KIP-74's first
// batch returned whole, a response ending in a partial batch, compressed
// batches, fetch sessions).
func realBroker(t *testing.T) []string {
	t.Helper()
	addr := os.Getenv("HOOKBRIDGE_TEST_KAFKA")
	switch {
	case addr == "" && os.Getenv("HOOKBRIDGE_E2E") != "":
		t.Fatal("HOOKBRIDGE_TEST_KAFKA is not set in the e2e tier (test/e2e.sh sets it)")
	case addr == "":
		t.Skip("HOOKBRIDGE_TEST_KAFKA is not set: a real-Kafka test, run by make e2e")
	}
	return strings.Split(addr, ",")
}

// createRealTopic creates a topic of partitions on the real broker, unique
// to this run, and fails unless its max.message.bytes admits a batch of
// largest bytes.
func createRealTopic(t *testing.T, addrs []string, partitions int32, largest int) string {
	t.Helper()
	name := fmt.Sprintf("%s-%d", strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name())), rand.IntN(1e6))
	a, err := sarama.NewClusterAdmin(addrs, plainConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if err := a.CreateTopic(name, &sarama.TopicDetail{NumPartitions: partitions, ReplicationFactor: 1}, false); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "topic "+name, func() bool {
		md, err := a.DescribeTopics([]string{name})
		return err == nil && len(md) == 1 && md[0].Err == sarama.ErrNoError && len(md[0].Partitions) == int(partitions)
	}, func() string { return "" })
	entries, err := a.DescribeConfig(sarama.ConfigResource{Type: sarama.TopicResource, Name: name, ConfigNames: []string{"max.message.bytes"}})
	if err != nil || len(entries) != 1 {
		t.Fatalf("describe %s: %v %v", name, entries, err)
	}
	if n, _ := strconv.Atoi(entries[0].Value); n < largest+1024 {
		t.Fatalf("topic %s: max.message.bytes %d, want room for a batch of %d", name, n, largest)
	}
	return name
}

// TestConsumerFetchesWithinItsBudgetOverManyPartitions and
// TestConsumerReadAheadIsBoundedInBytes against Apache Kafka: a topic of 16
// partitions with a backlog of 1 KiB records, in uncompressed and in
// compressed batches (the producer's default codec), and records of 256 KiB,
// past a partition's fetch size, in the middle and at the end of two
// partitions. While the target holds everything the route reads about its
// budget and as much again read ahead, plus two fetches a partition; each
// claim's read-ahead stops at its share of the budget plus what sarama had
// fetched; once released, every record is delivered once, in order per
// partition: no partition is left waiting on a batch larger than its fetch.
func TestRealKafkaFetchesWithinBudget(t *testing.T) {
	for _, tc := range []struct {
		name  string
		codec []kgo.CompressionCodec // nil: the producer's default
		ratio int64                  // of a record's bytes to what it takes in a batch
	}{{"uncompressed", []kgo.CompressionCodec{kgo.NoCompression()}, 1}, {"compressed", nil, 2}} {
		t.Run(tc.name, func(t *testing.T) {
			const (
				partitions = 16
				perPart    = 512
				recSize    = 1 << 10
				budget     = 512 << 10
				bigSize    = 256 << 10
			)
			addrs := realBroker(t)
			topic := createRealTopic(t, addrs, partitions, bigSize+4096)
			// Values random for 1/ratio of their bytes, zeros for the rest:
			// a compressed batch takes about 1/ratio of its records' bytes,
			// so a fetch reads ratio times its size in records.
			rnd := rand.NewChaCha8([32]byte{1})
			value := func(n int) []byte {
				v := make([]byte, n)
				_, _ = rnd.Read(v[:n/int(tc.ratio)])
				return v
			}
			bigs := map[int32]int{0: 2, 1: 1} // partition: large records in it
			produce := func(max int32, recs []*kgo.Record) {
				opts := []kgo.Opt{kgo.SeedBrokers(addrs...), kgo.RecordPartitioner(kgo.ManualPartitioner()),
					kgo.ProducerBatchMaxBytes(max)}
				if tc.codec != nil {
					opts = append(opts, kgo.ProducerBatchCompression(tc.codec...))
				}
				cl, err := kgo.NewClient(opts...)
				if err != nil {
					t.Fatal(err)
				}
				defer cl.Close()
				if err := cl.ProduceSync(t.Context(), recs...).FirstErr(); err != nil {
					t.Fatal(err)
				}
			}
			small := func(from, to int) []*kgo.Record {
				var recs []*kgo.Record
				for p := range int32(partitions) {
					for range to - from {
						recs = append(recs, &kgo.Record{Topic: topic, Partition: p, Value: value(recSize)})
					}
				}
				return recs
			}
			produce(16<<10, small(0, perPart/2))
			produce(2*bigSize, []*kgo.Record{{Topic: topic, Partition: 0, Value: value(bigSize)},
				{Topic: topic, Partition: 1, Value: value(bigSize)}})
			produce(16<<10, small(perPart/2, perPart))
			produce(2*bigSize, []*kgo.Record{{Topic: topic, Partition: 0, Value: value(bigSize)}})

			route := config.Route{Name: topic, Topics: []string{topic}, Ordering: config.OrderingPartition, Concurrency: 2,
				MaxInFlightBytes: budget}
			c, tg, release := runHeldRoute(t, addrs, route)
			waitForEveryPartitionPaused(t, c, partitions)
			if got := c.opts.Sarama.Consumer.Fetch.Default; got != budget/partitions {
				t.Errorf("Fetch.Default = %d, want %d", got, budget/partitions)
			}
			fetch := tc.ratio * max(int64(budget/partitions), minPartitionFetch)
			// Bounds in records of recSize (the large ones counted as many).
			bound := (2*int64(budget) + 2*partitions*fetch + 3*bigSize) / recSize
			ahead := (int64(budget)/partitions + 4*fetch) / recSize
			peak, peakHeld := int64(0), map[int32]int64{}
			for range 50 {
				peak = max(peak, readSoFar(c))
				c.mu.Lock()
				for tp, p := range c.parts {
					peakHeld[tp.partition] = max(peakHeld[tp.partition], int64(p.nHeld.Load()))
				}
				c.mu.Unlock()
				time.Sleep(20 * time.Millisecond)
			}
			t.Logf("read %d records (bound %d); held ahead by partition %v (bound %d + large ones)", peak, bound, peakHeld, ahead)
			if peak > bound {
				t.Errorf("the route read %d records ahead of its target, past %d", peak, bound)
			}
			for p, n := range peakHeld {
				if n > ahead+int64(bigs[p]) {
					t.Errorf("partition %d held %d records read ahead, past %d", p, n, ahead+int64(bigs[p]))
				}
			}

			release()
			total := partitions*perPart + 3
			waitFor(t, "every record delivered", func() bool {
				tg.mu.Lock()
				defer tg.mu.Unlock()
				n := 0
				for _, offs := range tg.seen {
					n += len(offs)
				}
				return n >= total
			}, tg.String)
			for p := range int32(partitions) {
				want := perPart + bigs[p]
				tg.mu.Lock()
				got := slices.Clone(tg.seen[p])
				tg.mu.Unlock()
				if !slices.Equal(got, offsetsTo(want)) {
					t.Errorf("partition %d: delivered %d records (first %v), want offsets 0..%d once each, in order",
						p, len(got), got[:min(len(got), 3)], want-1)
				}
			}
		})
	}
}

// offsetsTo returns the offsets 0 to n-1.
func offsetsTo(n int) []int64 {
	out := make([]int64, n)
	for i := range out {
		out[i] = int64(i)
	}
	return out
}

// TestConsumerReadAheadIsBoundedInBytes against Apache Kafka, with a record
// a batch: the claim loop's read-ahead stops at the budget (the route's one
// partition) plus what sarama had fetched; every record is delivered, in
// order.
func TestRealKafkaReadAheadIsBoundedInBytes(t *testing.T) {
	addrs := realBroker(t)
	checkReadAheadBoundedInBytes(t, addrs, createRealTopic(t, addrs, 1, 64<<10+64))
}
