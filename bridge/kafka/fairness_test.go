package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hookbridge/hookbridge/bridge/config"
	"github.com/hookbridge/hookbridge/bridge/dispatch"
	"github.com/hookbridge/hookbridge/bridge/target"
)

// keyedTarget fails the records whose key starts with "bad" retryably, for
// ever; holds those of key "slow" until its gate opens; and counts the
// others it delivers, by partition.
type keyedTarget struct {
	slow *gate
	mu   sync.Mutex
	n    map[int32]int
}

func newKeyedTarget(t *testing.T) *keyedTarget {
	kt := &keyedTarget{slow: newGate(), n: map[int32]int{}}
	t.Cleanup(kt.slow.Open)
	return kt
}

func (kt *keyedTarget) Deliver(ctx context.Context, d *target.Delivery) (*target.Result, error) {
	key := string(d.Record.Key)
	if strings.HasPrefix(key, "bad") {
		return nil, errors.New("receiver: 503 service unavailable")
	}
	if key == "slow" {
		if _, err := kt.slow.Deliver(ctx, d); err != nil {
			return nil, err
		}
	}
	kt.mu.Lock()
	defer kt.mu.Unlock()
	kt.n[d.Record.Partition]++
	return &target.Result{}, nil
}

func (kt *keyedTarget) delivered(p int32) int {
	kt.mu.Lock()
	defer kt.mu.Unlock()
	return kt.n[p]
}

// runWithoutDeadLetters runs route with no dead-letter topic: a record that
// spends its attempts is parked (reported stuck) and tried again every
// 50ms.
func runWithoutDeadLetters(t *testing.T, addrs []string, route config.Route, tg target.Target, attempts int) (*Consumer, *stuckEvents) {
	t.Helper()
	ev := &stuckEvents{}
	chain := target.Chain(tg,
		dispatch.DeadLetter(dispatch.DeadLetterPolicy{Route: route.Name, Group: route.GroupID(),
			Backoff: 50 * time.Millisecond}, nil, ev),
		dispatch.Retry(dispatch.RetryPolicy{MaxAttempts: attempts, InitialBackoff: time.Millisecond,
			MaxBackoff: 10 * time.Millisecond}, ev),
	)
	c := NewConsumer(ConsumerOptions{Route: route, Brokers: addrs, Sarama: groupConfig(t), Target: chain,
		Logger: slog.New(slog.DiscardHandler), ShutdownTimeout: 5 * time.Second})
	c.offsetsEvery = 100 * time.Millisecond
	ev.consumer = c
	startRun(t, c, patience)
	return c, ev
}

// smallRecords is n key/value pairs of distinct keys.
func smallRecords(n int) []string {
	var kvs []string
	for i := range n {
		kvs = append(kvs, fmt.Sprintf("k%03d", i), "v")
	}
	return kvs
}

// A record parked on a route without a dead-letter topic parks its own
// partition only. It holds the worker that delivers it for as long as it is
// parked: as many parked records as the route's concurrency (one under
// ordering: partition with concurrency 1, two keys of one partition with
// concurrency 2) took every worker, and the route's other partitions, with
// nothing wrong with them, were never delivered again.
func TestParkedRecordsLeaveOtherPartitionsGoing(t *testing.T) {
	for _, tc := range []struct {
		name        string
		ordering    string
		concurrency int
		bad         []string
	}{
		{"partition", config.OrderingPartition, 1, []string{"bad", "b"}},
		{"key", config.OrderingKey, 2, []string{"bad1", "b", "bad2", "b"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			topic := "parked-" + tc.name
			addrs := startClusterWith(t, topic, 2).ListenAddrs()
			route := testRoute(topic, topic)
			route.Ordering = tc.ordering
			route.Concurrency = tc.concurrency
			kt := newKeyedTarget(t)
			c, ev := runWithoutDeadLetters(t, addrs, route, kt, 2)
			seen := func() string {
				return fmt.Sprintf("delivered %d and %d; %s; %s", kt.delivered(0), kt.delivered(1), ev, describe(c, topic))
			}

			offs := produceTo(t, addrs, topic, 0, tc.bad...)
			waitFor(t, "the bad records to be parked", func() bool { return ev.sawStuck(offs...) }, seen)
			produceTo(t, addrs, topic, 1, smallRecords(50)...)
			waitFor(t, "the 50 records of partition 1", func() bool { return kt.delivered(1) == 50 }, seen)

			admin := newAdmin(t, addrs)
			waitFor(t, "partition 1 committed past its records", func() bool {
				return committedOf(t, admin, route.GroupID(), topic, 1) == 50
			}, seen)
			if got := committedOf(t, admin, route.GroupID(), topic, 0); got > 0 {
				t.Fatalf("partition 0 committed up to %d, past its parked record at 0", got)
			}
		})
	}
}

// A record larger than the whole max_in_flight_bytes is taken in when its
// partition holds nothing else, without waiting for the route's other
// records. It waited until the route held nothing but stuck records, and
// every partition in line behind it with it: a key retrying (before it is
// parked or dead-lettered, or for ever with a large max_attempts) or a slow
// key on another partition stopped the whole route, and the large record
// was never delivered while it lasted.
func TestRecordLargerThanTheBudgetPassesAHeldKey(t *testing.T) {
	for _, held := range []string{"bad", "slow"} {
		t.Run(held, func(t *testing.T) {
			topic := "large-" + held
			addrs := startClusterWith(t, topic, 3).ListenAddrs()
			route := testRoute(topic, topic)
			route.Concurrency = 4
			route.MaxInFlightBytes = 4 << 10
			kt := newKeyedTarget(t)
			c, ev := runWithoutDeadLetters(t, addrs, route, kt, 1_000_000)
			seen := func() string {
				st := c.Stats()
				return fmt.Sprintf("delivered %d, %d, %d; route holds %d records, %d bytes; %s; %s",
					kt.delivered(0), kt.delivered(1), kt.delivered(2), st.InFlightRecords, st.InFlightBytes, ev, describe(c, topic))
			}

			produceTo(t, addrs, topic, 0, held, "h")
			waitFor(t, "the held key's record to be taken in", func() bool { return c.Stats().InFlightRecords == 1 }, seen)
			produceTo(t, addrs, topic, 1, "large", strings.Repeat("x", 5<<10))
			produceTo(t, addrs, topic, 2, smallRecords(50)...)
			waitFor(t, "the large record and the 50 records of partition 2", func() bool {
				return kt.delivered(1) == 1 && kt.delivered(2) == 50
			}, seen)
			if n := kt.delivered(0); n != 0 {
				t.Fatalf("the held key's record was delivered (%d)", n)
			}
			if st := c.Stats(); st.InFlightRecords != 1 {
				t.Fatalf("the route holds %d records, want the held key's one", st.InFlightRecords)
			}
		})
	}
}
