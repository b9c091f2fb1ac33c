package dispatch_test

import (
	"slices"
	"testing"
	"time"

	"github.com/hookbridge/hookbridge/bridge/dispatch"
	"github.com/hookbridge/hookbridge/bridge/target"
)

// TestParkedRecordRetriedOncePerCycle: with no dead-letter topic, a record
// that used up max_attempts is parked and tried again once per cycle (every
// max_backoff), not max_attempts times again, and its hookbridge-attempt
// numbers go on from the last one instead of starting again at 1.
func TestParkedRecordRetriedOncePerCycle(t *testing.T) {
	t.Parallel()
	retryable := &target.Error{Kind: target.Retryable, Status: 503, Err: errBoom}
	inner := &script{steps: steps(7, fail(retryable), ok(&target.Result{}))}
	ev := &recorder{}
	p := dlqPolicy()
	p.Topic = ""
	chain := target.Chain(inner,
		dispatch.DeadLetter(p, &producer{}, ev),
		dispatch.Retry(dispatch.RetryPolicy{MaxAttempts: 3, InitialBackoff: time.Millisecond, MaxBackoff: time.Millisecond}, ev),
	)
	d := delivery(testRecord())
	d.Attempt = 1 // as the consumer starts it
	if _, err := deliverNow(t, t.Context(), chain, d); err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	if got, want := inner.seen(), []int{1, 2, 3, 4, 5, 6, 7, 8}; !slices.Equal(got, want) {
		t.Errorf("attempt numbers = %v, want %v", got, want)
	}
	// Backoffs within the first cycle only: after it, every try is a cycle.
	if got := ev.count(evRetrying); got != 2 {
		t.Errorf("retries scheduled = %d, want 2 (max_attempts 3, then once per parked cycle)", got)
	}
	if got := ev.count(evStuck); got != 1 {
		t.Errorf("Stuck events = %d, want 1", got)
	}
}
