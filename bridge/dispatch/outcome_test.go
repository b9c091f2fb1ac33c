package dispatch_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookbridge/hookbridge/bridge/dispatch"
	"github.com/hookbridge/hookbridge/bridge/target"
)

// The breaker's failure ratio counts requests: a batch counts once, whatever
// the number of records in it. With the defaults (failure_ratio 0.5,
// min_requests 20, consecutive_failures 5), a webhook in batch mode (4
// records per request) that fails two requests in three, never five in a
// row, opens it: 20 of 30 requests. gobreaker's Counts.Requests also counts
// the excluded outcomes (the batch's other records), which made it 20/120.
func TestBreakerRatioCountsABatchOnce(t *testing.T) {
	b := dispatch.NewBreaker(dispatch.BreakerSettings{Name: "t", FailureRatio: 0.5, MinRequests: 20,
		ConsecutiveFailures: 5, OpenTimeout: time.Hour})
	down := &target.Error{Kind: target.Retryable, Status: 503, Err: errors.New("503 Service Unavailable")}
	var failing bool
	var idx int
	tg := dispatch.BreakerLayer(b)(target.Func(func(context.Context, *target.Delivery) (*target.Result, error) {
		switch {
		case !failing && idx == 0:
			return &target.Result{}, nil
		case !failing:
			return &target.Result{Shared: true}, nil
		case idx == 0:
			return nil, down
		default:
			return nil, target.Shared(down)
		}
	}))
	ctx := context.Background()
	for i := range 30 {
		failing = i%3 != 2
		for idx = 0; idx < 4; idx++ {
			_, _ = tg.Deliver(ctx, delivery(testRecord()))
		}
	}
	if got := b.State(); got != dispatch.BreakerOpen {
		t.Fatalf("20 of 30 requests failed (ratio 0.67 >= 0.5, min_requests 20): breaker is %s, want open", got)
	}
}

// The same without batches: records canceled by a rebalance, which the
// breaker does not count, do not dilute its failure ratio either.
func TestBreakerRatioIgnoresCancellations(t *testing.T) {
	b := dispatch.NewBreaker(dispatch.BreakerSettings{Name: "t", FailureRatio: 0.5, MinRequests: 20,
		ConsecutiveFailures: 5, OpenTimeout: time.Hour})
	down := &target.Error{Kind: target.Retryable, Status: 503, Err: errors.New("503")}
	var step int
	tg := dispatch.BreakerLayer(b)(target.Func(func(ctx context.Context, _ *target.Delivery) (*target.Result, error) {
		switch step {
		case 0:
			return nil, down
		case 1:
			return &target.Result{}, nil
		}
		return nil, context.Canceled
	}))
	ctx := context.Background()
	// 30 counted requests: F F S ..., 20 failures (0.67); 40 canceled ones.
	for i := range 30 {
		step = 0
		if i%3 == 2 {
			step = 1
		}
		_, _ = tg.Deliver(ctx, delivery(testRecord()))
		step = 2
		_, _ = tg.Deliver(ctx, delivery(testRecord()))
		_, _ = tg.Deliver(ctx, delivery(testRecord()))
	}
	if got := b.State(); got != dispatch.BreakerOpen {
		t.Fatalf("20 of 30 counted requests failed; cancellations must be ignored: breaker is %s, want open", got)
	}
}

// A half-open probe answered 429 with Retry-After re-opens the breaker; the
// record then waits what the receiver asked for (within max_backoff), as it
// does in the closed state, before it probes again, not only open_timeout.
func TestFailedProbeWaitsForRetryAfter(t *testing.T) {
	b := dispatch.NewBreaker(dispatch.BreakerSettings{Name: "t", FailureRatio: 1, MinRequests: 1000,
		ConsecutiveFailures: 1, OpenTimeout: 20 * time.Millisecond})
	// Trip the breaker with some other record.
	trip := dispatch.BreakerLayer(b)(target.Func(func(context.Context, *target.Delivery) (*target.Result, error) {
		return nil, errors.New("connection refused")
	}))
	_, _ = trip.Deliver(context.Background(), delivery(testRecord()))
	if b.State() != dispatch.BreakerOpen {
		t.Fatal("breaker did not open")
	}
	var calls atomic.Int32
	tooMany := &target.Error{Kind: target.Retryable, Status: 429, RetryAfter: time.Hour, Err: errors.New("429 Too Many Requests")}
	tg := target.Chain(target.Func(func(context.Context, *target.Delivery) (*target.Result, error) {
		calls.Add(1)
		return nil, tooMany
	}),
		dispatch.Retry(dispatch.RetryPolicy{MaxAttempts: 10, InitialBackoff: time.Millisecond, MaxBackoff: 2 * time.Hour}, dispatch.NopEvents{}),
		dispatch.BreakerLayer(b))
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	_, _ = tg.Deliver(ctx, delivery(testRecord()))
	if n := calls.Load(); n > 1 {
		t.Fatalf("target answered 429 Retry-After: 1h (max_backoff 2h), yet got %d requests within 500ms", n)
	}
}

// No dead-letter topic: a failed record is parked (Stuck) and tried again
// every Backoff. On a later cycle the target accepts it, the reply write
// fails once and is then refused for good, which fails the record again:
// it is still parked, and the last word the consumer got must be Stuck. Reply
// used to report it moved on (Unstuck) when it gave up, which unpaused the
// partition and cleared /readyz while the record sat parked.
func TestParkedRecordStaysStuckWhenItsReplyIsRefused(t *testing.T) {
	sc := &script{steps: steps(1, fail(target.NewPermanent(errors.New("400"))),
		ok(&target.Result{Outputs: []target.Output{{Value: []byte("reply")}}}))}
	prod := &producer{fail: func(_ context.Context, n int) error {
		if n == 1 {
			return errProduce // transient
		}
		return target.NewPermanent(errors.New("kafka: message too large"))
	}}
	rec := &recorder{}
	tg := target.Chain(sc,
		dispatch.DeadLetter(dispatch.DeadLetterPolicy{Route: "r", Backoff: 50 * time.Millisecond}, prod, rec),
		dispatch.Reply("replies", prod, rec, time.Millisecond),
		dispatch.Retry(dispatch.RetryPolicy{MaxAttempts: 1, InitialBackoff: time.Millisecond, MaxBackoff: time.Millisecond}, rec),
	)
	ctx, cancel := context.WithCancel(context.Background())
	done := start(ctx, tg, delivery(testRecord()))
	// Wait for the second cycle's reply failure, then let the record sit parked.
	waitFor(t, "two produce calls", func() bool { return prod.callCount() >= 2 })
	time.Sleep(20 * time.Millisecond)
	requireNotDone(t, done, "parked record")
	var last string
	for _, e := range rec.all() {
		if e.kind == evStuck || e.kind == evUnstuck {
			last = e.kind
		}
	}
	cancel()
	await(t, done)
	if last != evStuck {
		t.Fatalf("record is still parked, but the last stuck event was %q (events %v)", last, rec.kinds(evAttempted))
	}
}

// A record delivered on its third attempt whose replies the broker refuses
// for good is dead-lettered with hookbridge-error-attempts: 3, the attempt
// that delivered it (it said 1, the consumer's delivery). It counts as
// delivered and then as dead-lettered, as README.md says.
func TestReplyRefusedNamesTheDeliveringAttempt(t *testing.T) {
	retryable := errors.New("503")
	sc := &script{steps: steps(2, fail(retryable), ok(&target.Result{Outputs: []target.Output{{Value: []byte("reply")}}}))}
	prod := &producer{fail: func(_ context.Context, _ int) error { return nil }}
	prod.fail = func(_ context.Context, n int) error {
		calls := prod.allCalls()
		if calls[n-1][0].Topic == "replies" {
			return target.NewPermanent(errors.New("kafka: message too large"))
		}
		return nil
	}
	rec := &recorder{}
	tg := target.Chain(sc,
		dispatch.DeadLetter(dispatch.DeadLetterPolicy{Route: "r", Topic: "dlq", Backoff: time.Millisecond}, prod, rec),
		dispatch.Reply("replies", prod, rec, time.Millisecond),
		dispatch.Retry(dispatch.RetryPolicy{MaxAttempts: 10, InitialBackoff: time.Microsecond, MaxBackoff: time.Microsecond}, rec),
	)
	d := delivery(testRecord())
	d.Attempt = 1 // as the consumer sets it
	if _, err := deliverNow(t, context.Background(), tg, d); err != nil {
		t.Fatal(err)
	}
	var attempts string
	for _, calls := range prod.acked() {
		for _, o := range calls {
			if o.Topic != "dlq" {
				continue
			}
			for _, h := range o.Headers {
				if h.Key == dispatch.HeaderErrorAttempts {
					attempts = string(h.Value)
				}
			}
		}
	}
	if attempts != "3" {
		t.Errorf("hookbridge-error-attempts = %q, want 3 (the target's calls)", attempts)
	}
	if rec.count(evDelivered) != 1 || rec.count(evDeadLettered) != 1 {
		t.Errorf("%d delivered and %d dead-lettered events, want one of each", rec.count(evDelivered), rec.count(evDeadLettered))
	}
}
