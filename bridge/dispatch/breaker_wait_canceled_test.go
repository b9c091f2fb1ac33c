package dispatch_test

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/hookbridge/hookbridge/bridge/dispatch"
	"github.com/hookbridge/hookbridge/bridge/target"
)

// A record waiting for an open breaker whose context ends (its partition
// was revoked by a rebalance, the route stopped) leaves nothing behind. The
// wait's goroutine lived on until the breaker changed state or its opening
// ended: with a long open_timeout, every rebalance during an outage left one
// goroutine per waiting record, for up to open_timeout each.
func TestBreakerWaitOfCanceledRecordEnds(t *testing.T) {
	b := newTestBreaker(1, time.Hour) // stays open for the whole test
	tg := target.Func(func(context.Context, *target.Delivery) (*target.Result, error) { return nil, errDown })
	ev := &recorder{}
	chain := target.Chain(tg,
		dispatch.Retry(dispatch.RetryPolicy{MaxAttempts: 100, InitialBackoff: time.Millisecond, MaxBackoff: time.Millisecond}, ev),
		dispatch.BreakerLayer(b))

	// One record trips the breaker and then waits for it, until canceled.
	cycle := func(i int) {
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() {
			_, err := chain.Deliver(ctx, &target.Delivery{Record: &target.Record{Offset: int64(i)}})
			done <- err
		}()
		waitUntil(t, fmt.Sprintf("record %d to wait for the breaker", i), func() bool { return ev.count(evWaiting) > i })
		cancel()
		if err := <-done; err == nil {
			t.Fatalf("record %d delivered through an open breaker", i)
		}
	}
	cycle(0)
	if b.State() != dispatch.BreakerOpen {
		t.Fatalf("breaker %s, want open", b.State())
	}
	base := runtime.NumGoroutine()
	const cycles = 50
	for i := 1; i <= cycles; i++ {
		cycle(i)
	}
	// Every goroutine of a canceled wait ends; a few of the runtime's or the
	// test framework's may come and go meanwhile.
	const slack = 5
	deadline := time.Now().Add(5 * time.Second)
	n := runtime.NumGoroutine()
	for n > base+slack && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
		n = runtime.NumGoroutine()
	}
	if n > base+slack {
		t.Fatalf("%d goroutines after %d canceled waits for an open breaker, %d after the first", n, cycles, base)
	}
}
