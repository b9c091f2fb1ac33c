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

	"github.com/IBM/sarama"

	"github.com/hookbridge/hookbridge/bridge/config"
	"github.com/hookbridge/hookbridge/bridge/dispatch"
	"github.com/hookbridge/hookbridge/bridge/target"
)

// deliveryOutcomes records, per record, how its delivery through the whole
// chain ended (outermost layer): what the claim loop's lane saw.
type deliveryOutcomes struct {
	mu    sync.Mutex
	ended []deliveryEnd
}

type deliveryEnd struct {
	partition int32
	value     string
	err       error
}

func (o *deliveryOutcomes) layer(next target.Target) target.Target {
	return target.Func(func(ctx context.Context, d *target.Delivery) (*target.Result, error) {
		res, err := next.Deliver(ctx, d)
		o.mu.Lock()
		o.ended = append(o.ended, deliveryEnd{d.Record.Partition, string(d.Record.Value), err})
		o.mu.Unlock()
		return res, err
	})
}

func (o *deliveryOutcomes) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return fmt.Sprintf("%+v", o.ended)
}

func (o *deliveryOutcomes) of(partition int32) []deliveryEnd {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []deliveryEnd
	for _, e := range o.ended {
		if e.partition == partition {
			out = append(out, e)
		}
	}
	return out
}

// logBuffer collects the consumer's log lines.
type logBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) contains(s string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Contains(l.b.String(), s)
}

// String returns what was logged so far.
func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// runBreakerRoute runs route with the chain the bridge builds around a
// target's breaker (Retry over BreakerLayer) and follows the breaker as
// bridge.startRoute does (PauseAll("breaker") while open).
func runBreakerRoute(t *testing.T, addrs []string, route config.Route, tg target.Target, br *dispatch.Breaker,
	sc *sarama.Config, shutdown time.Duration, outcomes *deliveryOutcomes, logs *logBuffer) *Consumer {
	t.Helper()
	chain := target.Chain(tg,
		outcomes.layer,
		dispatch.Retry(dispatch.RetryPolicy{MaxAttempts: 100, InitialBackoff: time.Millisecond,
			MaxBackoff: time.Millisecond}, dispatch.NopEvents{}),
		dispatch.BreakerLayer(br),
	)
	c := NewConsumer(ConsumerOptions{Route: route, Brokers: addrs, Sarama: sc, Target: chain,
		Logger: slog.New(slog.NewTextHandler(logs, nil)), ShutdownTimeout: shutdown})
	c.offsetsEvery = 100 * time.Millisecond
	t.Cleanup(br.Follow(func(to dispatch.BreakerState) { c.PauseAll("breaker", to == dispatch.BreakerOpen) }))
	startRun(t, c, 2*patience) // its cleanup runs before the unsubscription's
	return c
}

// A cooperative rebalance during an outage hands the moved partition over at
// once. The route has one worker, held by a lane of one partition that waits
// for the open breaker (as every lane does during an outage); lanes of both
// partitions are queued behind it. A member joins and one partition moves.
// The partition that stays keeps its claim and its waiting record: nothing
// of it is canceled, as TestConsumerCooperativeRebalanceKeepsInFlightWork
// shows for a healthy target. Before, the revoked claim waited for its
// queued lane task, which no worker took while the worker waited for the
// breaker; sarama gave up at the rebalance timeout and ended the whole
// session, canceling the partition that stays too.
func TestConsumerCooperativeRevokeDuringOutage(t *testing.T) {
	const topic = "outage"
	addrs := startClusterWith(t, topic, 2).ListenAddrs()
	route := testRoute("outage", topic)
	route.Concurrency = 1
	route.Ordering = config.OrderingKey

	br := dispatch.NewBreaker(dispatch.BreakerSettings{Name: "receiver", ConsecutiveFailures: 1,
		FailureRatio: 1, MinRequests: 1000, OpenTimeout: 10 * time.Minute})
	release := make(chan struct{})
	var mu sync.Mutex
	var reached []string
	tg := target.Func(func(ctx context.Context, d *target.Delivery) (*target.Result, error) {
		mu.Lock()
		reached = append(reached, string(d.Record.Value))
		mu.Unlock()
		if string(d.Record.Value) == "a" {
			select {
			case <-release:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		return nil, errors.New("receiver: 503") // retryable: the target is down
	})
	sc := cooperativeConfig(t)
	sc.Consumer.Group.Rebalance.Timeout = time.Second // NewConsumer raises it to shutdown + 15 s
	outcomes := &deliveryOutcomes{}
	logs := &logBuffer{}
	c := runBreakerRoute(t, addrs, route, tg, br, sc, time.Second, outcomes, logs)
	state := func() string {
		mu.Lock()
		defer mu.Unlock()
		return fmt.Sprintf("target reached by %v; outcomes %s; breaker %s; held %d; %s / p1 %v",
			reached, outcomes, br.State(), c.Stats().InFlightRecords, describe(c, topic), func() bool {
				ps, _ := partitionStatsOf(c, topic, 1)
				return ps.Paused
			}())
	}
	waitFor(t, "the consumer to own both partitions", func() bool { return len(c.Stats().Partitions) == 2 }, state)

	produceTo(t, addrs, topic, 0, "ka", "a")
	waitFor(t, "record a to reach the target", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(reached) == 1
	}, state)
	produceTo(t, addrs, topic, 1, "kx", "x")
	waitFor(t, "record x to be queued", func() bool { return c.Stats().InFlightRecords == 2 }, state)
	produceTo(t, addrs, topic, 0, "kb", "b")
	waitFor(t, "record b to be queued", func() bool { return c.Stats().InFlightRecords == 3 }, state)

	close(release) // a fails: the breaker opens, the route pauses, a waits for the breaker
	waitFor(t, "the breaker to open and both partitions to pause", func() bool {
		p0, ok0 := partitionStatsOf(c, topic, 0)
		p1, ok1 := partitionStatsOf(c, topic, 1)
		return br.State() == dispatch.BreakerOpen && ok0 && ok1 && p0.Paused && p1.Paused
	}, state)

	member := joinMember(t, addrs, route.GroupID(), topic, sc)
	var moved int32
	select {
	case moved = <-member.claimed:
	case <-time.After(3 * patience): // a hang guard well past the rebalance timeout (16 s here)
		t.Fatalf("no partition was handed over; %s", state())
	}
	stays := 1 - moved
	for _, e := range outcomes.of(stays) {
		t.Errorf("partition %d stays with the consumer, yet its record %q ended with %v: the cooperative "+
			"rebalance ended the whole session (rebalance timeout)", stays, e.value, e.err)
	}
	if logs.contains(sarama.ErrRebalanceTimedOut.Error()) {
		t.Errorf("the consumer logged %q: the revoked claim did not end within the rebalance timeout", sarama.ErrRebalanceTimedOut)
	}
}
