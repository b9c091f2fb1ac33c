package dispatch_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/hookbridge/hookbridge/bridge/dispatch"
	"github.com/hookbridge/hookbridge/bridge/target"
)

// A receiver that is down and answers every request 503 with a Retry-After
// (a maintenance page, say) spaces a lone record's attempts by that wait,
// capped by max_backoff, which may be as long as the breaker's rolling
// window or longer. consecutive_failures counts failures in a row, however
// far apart: the breaker must open after that many, and the record must wait
// for it, not spend its max_attempts and be dead-lettered while its target
// is down. The streak used to be kept in the rolling window, so failures
// further apart than the window never added up and the breaker never opened.
func TestConsecutiveFailuresFurtherApartThanTheWindowTrip(t *testing.T) {
	t.Parallel()
	const window = 60 * time.Millisecond
	b := dispatch.NewBreaker(dispatch.BreakerSettings{Name: "t", FailureRatio: 1, MinRequests: 1000,
		ConsecutiveFailures: 3, OpenTimeout: forever, Window: window})
	// The hint fixes every wait at max_backoff: twice the window.
	down := &target.Error{Kind: target.Retryable, Status: 503, RetryAfter: 2 * window, Err: errDown}
	sc := &script{steps: steps(1, fail(down))}
	p := dispatch.RetryPolicy{MaxAttempts: 5, InitialBackoff: 2 * window, MaxBackoff: 2 * window}
	chain := dispatch.Retry(p, &recorder{})(dispatch.BreakerLayer(b)(sc))

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	ch := start(ctx, chain, delivery(testRecord()))
	var o *outcome
	waitFor(t, "the breaker to open or the record to fail", func() bool {
		select {
		case got := <-ch:
			o = &got
			return true
		default:
			return b.State() == dispatch.BreakerOpen
		}
	})
	if o != nil {
		var f *dispatch.Failure
		if errors.As(o.err, &f) {
			t.Fatalf("the record failed after %d attempts (breaker %s): its target is down, and %d failures "+
				"in a row must open the breaker first", f.Attempts, b.State(), 3)
		}
		t.Fatalf("the record's delivery returned %v, want it waiting for the open breaker", o.err)
	}
	if got := sc.seen(); len(got) != 3 {
		t.Errorf("attempts %v before the breaker opened, want 3", got)
	}
	cancel()
	if o := await(t, ch); !errors.Is(o.err, context.Canceled) {
		t.Errorf("after cancel: err = %v, want context.Canceled (abandoned, not failed)", o.err)
	}
}
