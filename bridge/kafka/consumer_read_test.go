package kafka

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/hookbridge/hookbridge/bridge/target"
)

// readTimes records, for every record it delivers, when the consumer read
// it and when the delivery began.
type readTimes struct {
	mu    sync.Mutex
	read  []time.Time
	began []time.Time
}

func (r *readTimes) Deliver(_ context.Context, d *target.Delivery) (*target.Result, error) {
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.read = append(r.read, d.Record.Read)
	r.began = append(r.began, now)
	return &target.Result{}, nil
}

func (r *readTimes) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.read)
}

// The consumer stamps each record with the time it read it: retry.max_age,
// the longest a record may wait in the bridge, counts from there, so that
// the time a record spends queued behind others counts too.
func TestConsumerStampsWhenItReadARecord(t *testing.T) {
	const topic = "stamped"
	cluster := startCluster(t, topic)
	addrs := cluster.ListenAddrs()
	tg := &readTimes{}
	produced := time.Now()
	produce(t, addrs, topic, "a", "1", "b", "2", "c", "3")
	runRoute(t, addrs, testRoute("stamped", topic), tg, &deadLetters{})
	waitFor(t, "three deliveries", func() bool { return tg.count() == 3 }, func() string { return "" })
	tg.mu.Lock()
	defer tg.mu.Unlock()
	for i, read := range tg.read {
		if read.IsZero() || read.Before(produced) || read.After(tg.began[i]) {
			t.Errorf("record %d: read at %v, want a time after it was produced (%v) and not after its delivery began (%v)",
				i, read, produced, tg.began[i])
		}
	}
}
