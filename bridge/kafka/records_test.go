package kafka

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookbridge/hookbridge/bridge/target"
)

// valueRecorder is a target that accepts every record and keeps its value.
type valueRecorder struct {
	mu     sync.Mutex
	values []string
}

func (r *valueRecorder) Deliver(_ context.Context, d *target.Delivery) (*target.Result, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.values = append(r.values, string(d.Record.Value))
	return nil, nil
}

func (r *valueRecorder) seen() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.values)
}

// produceTxn writes values to partition 0 of topic in one transaction of
// producer id, then commits it, or aborts it when abort is set.
func produceTxn(t *testing.T, addrs []string, topic, id string, abort bool, values ...string) {
	t.Helper()
	p := openTxn(t, addrs, topic, id, values...)
	var err error
	if abort {
		err = p.AbortTxn()
	} else {
		err = p.CommitTxn()
	}
	if err != nil {
		t.Fatal(err)
	}
}

// openTxn writes values to partition 0 of topic in a transaction of
// producer id that it leaves open, for the caller to end; the producer is
// closed when the test ends.
func openTxn(t *testing.T, addrs []string, topic, id string, values ...string) sarama.SyncProducer {
	t.Helper()
	sc := plainConfig()
	sc.Producer.Idempotent = true
	sc.Producer.Transaction.ID = id
	sc.Net.MaxOpenRequests = 1
	p, err := sarama.NewSyncProducer(addrs, sc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	if err := p.BeginTxn(); err != nil {
		t.Fatal(err)
	}
	for _, v := range values {
		if _, _, err := p.SendMessage(&sarama.ProducerMessage{Topic: topic, Partition: 0,
			Key: sarama.StringEncoder("k"), Value: sarama.StringEncoder(v)}); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

// A transactional producer that aborts its transaction takes its records
// back: a consumer reading committed data never sees them. The bridge must
// not deliver them to the target (a webhook would act on records the
// producer rolled back), and it still commits past them.
func TestConsumerSkipsAbortedTransactions(t *testing.T) {
	const topic = "txn-abort"
	addrs := startCluster(t, topic).ListenAddrs()
	produceTxn(t, addrs, topic, "tx-a", true, "aborted-0", "aborted-1", "aborted-2") // 0-2, abort marker 3
	produceTxn(t, addrs, topic, "tx-b", false, "committed-0", "committed-1")         // 4-5, commit marker 6
	produceTxn(t, addrs, topic, "tx-c", true, "aborted-3")                           // 7, abort marker 8
	last := produce(t, addrs, topic, "k", "plain")                                   // 9
	if !slices.Equal(last, []int64{9}) {
		t.Fatalf("plain record at offset %v, want 9", last)
	}
	route := testRoute("txn-abort", topic)
	rec := &valueRecorder{}
	c, _ := runRoute(t, addrs, route, rec, &deadLetters{})
	admin := newAdmin(t, addrs)
	waitFor(t, "the partition's claim", func() bool { _, owned := partitionStats(c, topic); return owned },
		func() string { return describe(c, topic) })
	waitFor(t, "offset 10 committed", func() bool { return committed(t, admin, route.GroupID(), topic) == 10 },
		func() string { return fmt.Sprintf("delivered %q; %s", rec.seen(), describe(c, topic)) })
	want := []string{"committed-0", "committed-1", "plain"}
	if got := rec.seen(); !slices.Equal(got, want) {
		t.Errorf("delivered %q, want only the committed records %q", got, want)
	}
	waitForLag(t, c, topic, 0)
	// An aborted transaction at the tail (offset 10, abort marker 11)
	// holds nothing to deliver: the lag is 0 again, not 2 for good.
	produceTxn(t, addrs, topic, "tx-d", true, "aborted-4")
	waitFor(t, "the latest offset 12", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		p := c.parts[topicPartition{topic, 0}]
		return p != nil && p.latest.Load() == 12
	}, func() string { return describe(c, topic) })
	waitForLag(t, c, topic, 0)
	if got := rec.seen(); !slices.Equal(got, want) {
		t.Errorf("delivered %q, want only the committed records %q", got, want)
	}
}

// heapInUse is the live heap after a collection.
func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// decodedWithHeaders returns a message as sarama decodes one from a fetch
// response: n headers named name with empty values, each its own
// *RecordHeader whose bytes lie in the response's buffer.
func decodedWithHeaders(topic string, n int, name string) *sarama.ConsumerMessage {
	buf := make([]byte, 0, n*(len(name)+2)) // the response's bytes: varint lengths and the name
	m := &sarama.ConsumerMessage{Topic: topic, Key: []byte("k"), Value: []byte("v"), Headers: make([]*sarama.RecordHeader, n)}
	for i := range n {
		buf = append(buf, byte(2*len(name)))
		start := len(buf)
		buf = append(buf, name...)
		m.Headers[i] = &sarama.RecordHeader{Key: buf[start:len(buf):len(buf)], Value: buf[len(buf):len(buf):len(buf)]}
		buf = append(buf, 0)
	}
	return m
}

// Record.Size is "the number of bytes the record holds in memory, roughly",
// and the route's max_in_flight_bytes budget counts records by it. A record
// with many small headers holds tens of bytes per header (the bridge's own
// Header and the copy of its name, besides the name's bytes in the fetched
// buffer), not the one byte of its name: measured, its Size must be within
// a factor of two of what it holds.
func TestRecordSizeCountsWhatHeadersHold(t *testing.T) {
	const n = 20000
	recs := make([]*target.Record, 20)
	before := heapInUse()
	for i := range recs {
		recs[i] = fromSarama(decodedWithHeaders("topic", n, "h"))
	}
	held := int64(heapInUse()-before) / int64(len(recs))
	runtime.KeepAlive(recs)
	size := int64(recs[0].Size())
	t.Logf("a record with %d headers holds %d bytes; Size() = %d", n, held, size)
	if size < held/2 || size > 2*held {
		t.Errorf("a record with %d one-byte headers holds %d bytes of memory, but Size() = %d: the route's max_in_flight_bytes miscounts it %.1fx",
			n, held, size, float64(held)/float64(size))
	}
}

// A route admits records into its lanes while their Size fits
// max_in_flight_bytes. Records with thousands of headers each hold a few
// hundred KiB: a route of 1 MiB must hold a handful of them in its lanes,
// not 256 (its record limit), which is fifty times its byte budget.
func TestConsumerBudgetCountsHeaders(t *testing.T) {
	const (
		topic   = "many-headers"
		headers = 2000
		records = 300
	)
	// What one such record holds once consumed.
	sample := make([]*target.Record, 50)
	before := heapInUse()
	for i := range sample {
		sample[i] = fromSarama(decodedWithHeaders(topic, headers, "h"))
	}
	perRecord := int64(heapInUse()-before) / int64(len(sample))
	runtime.KeepAlive(sample)

	addrs := startCluster(t, topic).ListenAddrs()
	p, err := sarama.NewSyncProducer(addrs, plainConfig())
	if err != nil {
		t.Fatal(err)
	}
	hs := make([]sarama.RecordHeader, headers)
	for i := range hs {
		hs[i] = sarama.RecordHeader{Key: []byte("h")} // duplicate keys, null values
	}
	for i := 0; i < records; i += 50 {
		msgs := make([]*sarama.ProducerMessage, 50)
		for j := range msgs {
			msgs[j] = &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder("k"),
				Value: sarama.StringEncoder("v"), Headers: hs}
		}
		if err := p.SendMessages(msgs); err != nil {
			t.Fatal(err)
		}
	}
	_ = p.Close()

	route := testRoute("many-headers", topic)
	route.Concurrency = 1
	route.MaxInFlightBytes = 1 << 20
	g := newGate()
	c, _ := runRoute(t, addrs, route, g, &deadLetters{})
	t.Cleanup(g.Open)
	part := func() *partition {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.parts[topicPartition{topic, 0}]
	}
	// Once the claim loop holds records back, the budget is full: nothing
	// more goes into the lanes while the gate is closed.
	waitFor(t, "the claim loop to wait for room", func() bool {
		pt := part()
		return pt != nil && pt.nHeld.Load() > 0
	}, func() string { return describe(c, topic) })
	_, inLanes, _ := part().tr.state()
	held := int64(inLanes) * perRecord
	st := c.Stats()
	t.Logf("%d records in the lanes, holding about %d bytes (%d each); the budget counts %d bytes", inLanes, held, perRecord, st.InFlightBytes)
	if held > 2*int64(route.MaxInFlightBytes) {
		t.Errorf("the route holds %d records of %d headers in its lanes, about %d bytes of memory, over its max_in_flight_bytes %d (it counts %d bytes)",
			inLanes, headers, held, int64(route.MaxInFlightBytes), st.InFlightBytes)
	}
}

// sizeRecorder is a target that accepts every record and keeps the size of
// its value.
type sizeRecorder struct {
	mu    sync.Mutex
	sizes []int
}

func (r *sizeRecorder) Deliver(_ context.Context, d *target.Delivery) (*target.Result, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sizes = append(r.sizes, len(d.Record.Value))
	return nil, nil
}

func (r *sizeRecorder) seen() []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.sizes)
}

// A compressed batch of a few KiB may inflate to any size: a record of
// 256 MiB of zeros is 8 KiB once zstd-compressed, well under any broker's
// message.max.bytes. Decompressed without a bound, a handful of them
// exhaust the bridge's memory (it reads up to 512 records of a partition
// ahead): a crash, and again after every restart. The bridge bounds a
// decompressed batch as sarama bounds a whole uncompressed response
// (sarama.MaxResponseSize): the partition stops before the batch, is
// reported by Ready, and commits nothing past it. (A record before it in
// the same fetch response waits too: sarama fails the whole response.)
func TestConsumerBoundsDecompressedBatches(t *testing.T) {
	const topic = "bomb"
	addrs := startCluster(t, topic).ListenAddrs()
	produce(t, addrs, topic, "k", "small") // offset 0
	route := testRoute("bomb", topic)
	rec := &sizeRecorder{}
	c, _ := runRoute(t, addrs, route, rec, &deadLetters{})
	admin := newAdmin(t, addrs)
	waitFor(t, "the small record delivered", func() bool { return len(rec.seen()) >= 1 },
		func() string { return describe(c, topic) })
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ProducerBatchCompression(kgo.ZstdCompression()),
		kgo.ProducerBatchMaxBytes(512<<20), kgo.BrokerMaxWriteBytes(1<<30), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	bomb := make([]byte, 256<<20)
	if err := cl.ProduceSync(t.Context(), &kgo.Record{Topic: topic, Partition: 0, Key: []byte("k"), Value: bomb}).FirstErr(); err != nil { // offset 1
		t.Fatal(err)
	}
	bomb = nil
	cl.Close()

	waitFor(t, "Ready to report the partition", func() bool {
		err := c.Ready()
		return err != nil && strings.Contains(err.Error(), topic+"/0")
	}, func() string { return fmt.Sprintf("delivered sizes %v; %s", rec.seen(), describe(c, topic)) })
	t.Logf("Ready: %v", c.Ready())
	if got := rec.seen(); !slices.Equal(got, []int{len("small")}) {
		t.Errorf("delivered records of sizes %v, want only the small one: the batch that inflates to 256 MiB must not be read", got)
	}
	if off := committed(t, admin, route.GroupID(), topic); off > 1 {
		t.Errorf("committed offset %d, past the record that could not be read", off)
	}
}
