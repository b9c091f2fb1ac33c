package dispatch_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/hookbridge/hookbridge/bridge/dispatch"
	"github.com/hookbridge/hookbridge/bridge/target"
)

// A record delivered by a half-open probe after failed ones, whose replies
// the broker then refuses for good, is dead-lettered with
// hookbridge-error-attempts counting the attempts that counted against
// max_attempts (its one failure with the breaker closed, and the attempt
// that delivered it), as for any other dead letter: failed probes do not
// count. It used to be the last request's hookbridge-attempt, failed
// probes included.
func TestReplyRefusedAfterProbesCountsAttemptsAsRetry(t *testing.T) {
	t.Parallel()
	b := newTestBreaker(1, time.Millisecond)
	reply := &target.Result{Outputs: []target.Output{{Value: []byte("answer")}}}
	sc := &script{steps: steps(2, fail(errDown), func(context.Context, *target.Delivery) (*target.Result, error) {
		r := *reply
		return &r, nil
	})}
	prod := &producer{fail: func(_ context.Context, n int) error {
		if n == 1 {
			return target.NewPermanent(errors.New("kafka: message too large"))
		}
		return nil
	}}
	ev := &recorder{}
	chain := target.Chain(sc,
		dispatch.DeadLetter(dlqPolicy(), prod, ev),
		dispatch.Reply("replies", prod, ev, time.Millisecond),
		dispatch.Retry(dispatch.RetryPolicy{MaxAttempts: 10, InitialBackoff: time.Millisecond, MaxBackoff: time.Millisecond}, ev),
		dispatch.BreakerLayer(b),
	)
	d := delivery(testRecord())
	d.Attempt = 1
	if _, err := deliverNow(t, t.Context(), chain, d); err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	if got, want := sc.seen(), []int{1, 2, 3}; !slices.Equal(got, want) {
		t.Fatalf("attempt numbers %v, want %v (a failure, a failed probe, a probe that delivered)", got, want)
	}
	acked := prod.acked()
	if len(acked) != 1 || len(acked[0]) != 1 {
		t.Fatalf("acknowledged writes %d, want one dead letter", len(acked))
	}
	var attempts string
	for _, h := range acked[0][0].Headers {
		if h.Key == dispatch.HeaderErrorAttempts {
			attempts = string(h.Value)
		}
	}
	if attempts != "2" {
		t.Errorf("%s = %q, want 2: the failure with the breaker closed and the delivering attempt, not the failed probe", dispatch.HeaderErrorAttempts, attempts)
	}
	if f := ev.of(evDeadLettered); len(f) != 1 || f[0].failure.Attempts != 2 || f[0].failure.LastAttempt != 3 {
		t.Errorf("dead-lettered events %+v, want one with Attempts 2 and LastAttempt 3", f)
	}
}
