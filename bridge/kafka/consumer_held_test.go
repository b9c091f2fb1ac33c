package kafka

import (
	"bytes"
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/hookbridge/hookbridge/bridge/config"
	"github.com/hookbridge/hookbridge/bridge/target"
)

// While a route is full, the records its claim loop reads ahead are bounded
// in bytes as well as in number: large records stop the read-ahead at the
// claim's share of max_in_flight_bytes (plus the fetch under way), not at
// 256 records, which at 64 KiB each would be 16 MiB for one partition of a
// route allowed 256 KiB. Nothing is lost: once the target accepts again,
// every record is delivered, in order.
func TestConsumerReadAheadIsBoundedInBytes(t *testing.T) {
	const topic = "large-records"
	checkReadAheadBoundedInBytes(t, startCluster(t, topic).ListenAddrs(), topic)
}

// checkReadAheadBoundedInBytes produces 300 records of 64 KiB, one a batch,
// to partition 0 of topic (of one partition) on the brokers at addrs, runs
// a route of max_in_flight_bytes 256 KiB behind a closed gate, and checks
// that its claim loop reads at most the bound ahead, for a while after the
// partition paused; then opens the gate and checks that every record is
// delivered, in order.
func checkReadAheadBoundedInBytes(t *testing.T, addrs []string, topic string) {
	t.Helper()
	const (
		records = 300
		size    = 64 << 10
	)
	p, err := sarama.NewSyncProducer(addrs, plainConfig())
	if err != nil {
		t.Fatal(err)
	}
	for i := range records {
		// One record a batch: a fetch returns whole batches, so a batch of
		// all of them would be read ahead whole, whatever the bound.
		v := append([]byte(strconv.Itoa(i)+":"), bytes.Repeat([]byte("x"), size)...)
		if _, _, err := p.SendMessage(&sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder("k"), Value: sarama.ByteEncoder(v)}); err != nil {
			t.Fatal(err)
		}
	}
	_ = p.Close()

	route := testRoute(topic, topic)
	route.Ordering = config.OrderingPartition
	route.Concurrency = 1
	route.MaxInFlightBytes = 256 << 10
	g := newGate()
	rec := &gatedRecorder{gate: g}
	c, _ := runRoute(t, addrs, route, rec, &deadLetters{})
	t.Cleanup(g.Open)

	// The bound: the read-ahead's limit (the whole budget, for the route's
	// one partition), the record that crossed it, and what sarama had
	// fetched by the time the partition paused: its fetches run ahead of
	// the claim loop, up to Fetch.Default a partition each. Four of them
	// leave room for a slow claim loop; without the bound in bytes the
	// claim loop reads ahead 256 records, 16 MiB.
	bound := int64(route.MaxInFlightBytes) + size + 4*int64(sarama.NewConfig().Consumer.Fetch.Default)
	tp := topicPartition{topic, 0}
	heldBytes := func() int64 {
		c.mu.Lock()
		defer c.mu.Unlock()
		if pt := c.parts[tp]; pt != nil {
			return int64(pt.nHeld.Load()) * size
		}
		return 0
	}
	pausedForHeld := func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.reasons[tp][pauseHeld]
	}
	waitFor(t, "the read-ahead to pause or pass its bound", func() bool {
		return pausedForHeld() || heldBytes() > bound
	}, func() string { return describe(c, topic) })
	// What sarama had fetched when the partition paused still arrives: look
	// at the read-ahead for a while.
	peak := int64(0)
	for range 50 {
		peak = max(peak, heldBytes())
		time.Sleep(20 * time.Millisecond)
	}
	if peak > bound {
		t.Fatalf("the claim loop read ahead %d bytes (%d records of %d KiB) for a route of max_in_flight_bytes %d; want at most %d",
			peak, peak/size, size>>10, route.MaxInFlightBytes, bound)
	}

	g.Open()
	waitFor(t, "every record delivered", func() bool { return len(rec.values()) == records },
		func() string { return describe(c, topic) })
	for i, v := range rec.values() {
		if want := strconv.Itoa(i) + ":"; !bytes.HasPrefix(v, []byte(want)) {
			t.Fatalf("delivery %d is record %.8q, want %q: order lost", i, v, want)
		}
	}
}

// gatedRecorder waits for its gate, then keeps every record's value in the
// order delivered.
type gatedRecorder struct {
	gate *gate
	mu   sync.Mutex
	vals [][]byte
}

func (r *gatedRecorder) Deliver(ctx context.Context, d *target.Delivery) (*target.Result, error) {
	if _, err := r.gate.Deliver(ctx, d); err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.vals = append(r.vals, d.Record.Value)
	return &target.Result{}, nil
}

func (r *gatedRecorder) values() [][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([][]byte(nil), r.vals...)
}
