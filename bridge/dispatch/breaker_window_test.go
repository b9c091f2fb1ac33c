package dispatch_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/hookbridge/hookbridge/bridge/dispatch"
	"github.com/hookbridge/hookbridge/bridge/target"
)

// A call that outlasts the breaker's rolling window (a receiver that hangs
// until a long webhook timeout, a record that waited long for the target's
// rate_limit) must still count: a target that only fails that way is down,
// and its breaker must open rather than let its records spend their
// attempts and be dead-lettered. Each call counts once, not twice. (The
// calls fail together, as those in flight to a receiver that hangs do: the
// failures of an earlier window have rolled out of the count.)
func TestBreakerCountsCallsLongerThanItsWindow(t *testing.T) {
	const window = 60 * time.Millisecond
	b := dispatch.NewBreaker(dispatch.BreakerSettings{Name: "t", FailureRatio: 1, MinRequests: 1000,
		ConsecutiveFailures: 3, OpenTimeout: time.Hour, Window: window})
	// deliver makes n calls at once, which fail once they lasted twice
	// the window: a receiver that hangs until the request times out.
	deliver := func(n int) {
		t.Helper()
		release := make(chan struct{})
		var started, wg sync.WaitGroup
		started.Add(n)
		tg := dispatch.BreakerLayer(b)(target.Func(func(context.Context, *target.Delivery) (*target.Result, error) {
			started.Done()
			<-release
			return nil, errDown
		}))
		for range n {
			wg.Go(func() { _, _ = tg.Deliver(t.Context(), &target.Delivery{Record: &target.Record{}}) })
		}
		started.Wait()
		time.Sleep(2 * window) // the calls outlast the window
		close(release)
		wg.Wait()
	}
	deliver(2)
	if s := b.State(); s != dispatch.BreakerClosed {
		t.Fatalf("state %s after 2 failures of the 3 that trip it: a call counted twice", s)
	}
	deliver(3)
	if s := b.State(); s != dispatch.BreakerOpen {
		t.Fatalf("state %s after 3 failures in a row, each longer than the window, want open", s)
	}
}
