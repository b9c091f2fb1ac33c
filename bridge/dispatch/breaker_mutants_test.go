package dispatch_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/hookbridge/hookbridge/bridge/dispatch"
	"github.com/hookbridge/hookbridge/bridge/target"
)

// A failed half-open probe whose receiver asked for a long Retry-After makes
// the record wait at most max_backoff before it asks the breaker again, as
// any other Retry-After does; the breaker, not the record, keeps the target
// left alone for the rest.
func TestFailedProbeRetryAfterCappedByMaxBackoff(t *testing.T) {
	const maxBackoff = time.Millisecond
	probe := &dispatch.ProbeError{Err: &target.Error{Kind: target.Retryable, Status: 503,
		RetryAfter: forever, Err: errors.New("503 Service Unavailable")}}
	s := &script{steps: steps(1, fail(probe), ok(nil))}
	rec := &recorder{}
	chain := dispatch.Retry(dispatch.RetryPolicy{MaxAttempts: 1, MaxBackoff: maxBackoff}, rec)(s)
	ch := start(t.Context(), chain, delivery(testRecord()))
	waitFor(t, "the retry after the failed probe", func() bool { return rec.count(evRetrying) > 0 })
	if w := rec.of(evRetrying)[0].wait; w > maxBackoff {
		t.Fatalf("waits %s after the failed probe, want at most max_backoff %s", w, maxBackoff)
	}
	if o := await(t, ch); o.err != nil {
		t.Fatalf("record failed: %v", o.err)
	}
	if got := s.calls(); got != 2 {
		t.Fatalf("%d calls, want 2 (the failed probe, the delivery)", got)
	}
}

// testBreaker returns a breaker with these trip settings that stays open
// for an hour once it opens.
func testBreaker(ratio float64, minRequests, consecutive int) *dispatch.Breaker {
	return dispatch.NewBreaker(dispatch.BreakerSettings{Name: "test", FailureRatio: ratio, MinRequests: minRequests,
		ConsecutiveFailures: consecutive, OpenTimeout: time.Hour})
}

// deliverOutcomes calls b's layer once per outcome, each call ending with
// the next outcome.
func deliverOutcomes(t *testing.T, b *dispatch.Breaker, outcomes ...error) {
	n := 0
	tg := dispatch.BreakerLayer(b)(target.Func(func(context.Context, *target.Delivery) (*target.Result, error) {
		err := outcomes[n]
		n++
		return nil, err
	}))
	for i := range outcomes {
		_, _ = tg.Deliver(t.Context(), &target.Delivery{Record: &target.Record{Offset: int64(i)}})
	}
}

// A receiver that refuses records (4xx, permanent) is up: however many it
// refuses, the breaker stays closed, so the route does not pause.
func TestBreakerIgnoresPermanentFailures(t *testing.T) {
	b := testBreaker(0.5, 2, 0)
	tg := dispatch.BreakerLayer(b)(target.Func(func(context.Context, *target.Delivery) (*target.Result, error) {
		return nil, &target.Error{Kind: target.Permanent, Status: 400, Err: errors.New("400 Bad Request")}
	}))
	for i := range 5 {
		_, err := tg.Deliver(t.Context(), &target.Delivery{Record: &target.Record{Offset: int64(i)}})
		if target.KindOf(err) != target.Permanent {
			t.Fatalf("call %d: %v, want the permanent failure", i, err)
		}
	}
	if s := b.State(); s != dispatch.BreakerClosed {
		t.Fatalf("state %s after permanent failures only, want closed", s)
	}
}

// failure_ratio: 1 trips the breaker when every request of the window failed.
func TestBreakerTripsAtFailureRatioOne(t *testing.T) {
	b := testBreaker(1, 3, 0)
	tg := dispatch.BreakerLayer(b)(target.Func(func(context.Context, *target.Delivery) (*target.Result, error) {
		return nil, errDown
	}))
	for i := range 3 {
		_, _ = tg.Deliver(t.Context(), &target.Delivery{Record: &target.Record{Offset: int64(i)}})
	}
	if s := b.State(); s != dispatch.BreakerOpen {
		t.Fatalf("state %s after 3 failures of 3 with failure_ratio 1, want open", s)
	}
}

// A cancellation (a rebalance, a shutdown) between failures neither counts
// as one nor ends the streak of consecutive_failures.
func TestBreakerStreakSurvivesCancellation(t *testing.T) {
	b := testBreaker(1, 1000, 3)
	deliverOutcomes(t, b, errDown, errDown, context.Canceled, errDown)
	if s := b.State(); s != dispatch.BreakerOpen {
		t.Fatalf("state %s after failure, failure, cancellation, failure with consecutive_failures 3, want open", s)
	}
}

// A permanent refusal means the target answered: it ends the streak of
// consecutive_failures, so failures around it do not trip the breaker.
func TestBreakerStreakEndsAtPermanentFailure(t *testing.T) {
	b := testBreaker(1, 1000, 3)
	refused := &target.Error{Kind: target.Permanent, Status: 400, Err: errors.New("400 Bad Request")}
	deliverOutcomes(t, b, errDown, errDown, refused, errDown)
	if s := b.State(); s != dispatch.BreakerClosed {
		t.Fatalf("state %s after failure, failure, 400, failure with consecutive_failures 3, want closed", s)
	}
}
