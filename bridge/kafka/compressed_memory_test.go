package kafka

import (
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookbridge/hookbridge/bridge/config"
)

// ratioHook adds up what the producer's batches held before and after
// compression.
type ratioHook struct {
	mu                       sync.Mutex
	uncompressed, compressed int64
}

func (h *ratioHook) OnProduceBatchWritten(_ kgo.BrokerMetadata, _ string, _ int32, m kgo.ProduceBatchMetrics) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.uncompressed += int64(m.UncompressedBytes)
	h.compressed += int64(m.CompressedBytes)
}

// liveHeap is the heap in use after a collection.
func liveHeap() int64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}

// A route over a compressed topic holds, besides its max_in_flight_bytes
// and as much again read ahead, one fetch a partition decompressed: the
// broker sizes a fetch by compressed bytes and sarama decompresses all of it
// when it arrives. docs/operations.md gives that term as the fetch size
// times the partitions times the compression ratio; a ratio of 1 (what the
// rule of thumb assumed) puts the bound at a fraction of what the route
// holds. This measures the live heap while the target holds everything,
// against the documented bound.
func TestCompressedFetchesHoldTheirRatio(t *testing.T) {
	const (
		topic      = "compressed"
		partitions = 16
		perPart    = 640 // records of recSize: 10 MiB a partition, past one fetch decompressed
		recSize    = 16 << 10
		budget     = 4 << 20 // 256 KiB fetches
	)
	addrs := startClusterWith(t, topic, partitions).ListenAddrs()
	hook := &ratioHook{}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerBatchCompression(kgo.ZstdCompression()), kgo.WithHooks(hook))
	if err != nil {
		t.Fatal(err)
	}
	// 1 KiB of random bytes and 15 KiB of zeros: about 15 to 1 compressed.
	rng := rand.New(rand.NewPCG(1, 2))
	var recs []*kgo.Record
	for p := range int32(partitions) {
		for range perPart {
			v := make([]byte, recSize)
			for i := range 1 << 10 {
				v[i] = byte(rng.Uint32())
			}
			recs = append(recs, &kgo.Record{Topic: topic, Partition: p, Value: v})
		}
	}
	if err := cl.ProduceSync(t.Context(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	cl.Close()
	recs = nil
	hook.mu.Lock()
	ratio := float64(hook.uncompressed) / float64(hook.compressed)
	hook.mu.Unlock()
	if ratio < 5 {
		t.Fatalf("records compressed %.1f to 1, want well past 1 for the test to mean anything", ratio)
	}

	base := liveHeap()
	route := config.Route{Name: topic, Topics: []string{topic}, Ordering: config.OrderingPartition, Concurrency: 2,
		MaxInFlightBytes: budget}
	c, _, release := runHeldRoute(t, addrs, route)
	waitForEveryPartitionPaused(t, c, partitions)
	peak := int64(0)
	for range 25 {
		peak = max(peak, liveHeap()-base)
		time.Sleep(20 * time.Millisecond)
	}
	fetch := max(int64(budget/partitions), minPartitionFetch)
	fetched := int64(float64(partitions*fetch) * ratio)
	// The documented bound, with 0.15 MiB a partition at rest and half as
	// much again for what the Kafka client keeps beside the records.
	bound := 3 * (2*int64(budget) + fetched + partitions*(150<<10)) / 2
	uncompressed := 3*int64(budget) + partitions*(150<<10)
	t.Logf("compression %.1f to 1; live heap grew %d MiB, %d records read; documented bound %d MiB "+
		"(%d MiB if fetches held their compressed size)", ratio, peak>>20, readSoFar(c), bound>>20, uncompressed>>20)
	if peak > bound {
		t.Errorf("the route held %d MiB, past %d MiB: its budget of %d MiB, as much read ahead, and a fetch of %d KiB a partition decompressed %.1f to 1",
			peak>>20, bound>>20, budget>>20, fetch>>10, ratio)
	}
	release()
}
