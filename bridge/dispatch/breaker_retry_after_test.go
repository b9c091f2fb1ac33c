package dispatch

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/hookbridge/hookbridge/bridge/internal/monoclock"
	"github.com/hookbridge/hookbridge/bridge/target"
)

// A receiver that answers 503 with a Retry-After longer than open_timeout
// asked every sender to stay away that long: the breaker it opens stays
// open that long (up to MaxRetryAfter), whether it was tripped or its probe
// failed, so that no route probes it early. Without a hint, or with a
// shorter one, the opening is open_timeout's.
func TestBreakerOpeningHonoursRetryAfter(t *testing.T) {
	const openTimeout = time.Second
	for _, tc := range []struct {
		name       string
		retryAfter time.Duration
		maxRA      time.Duration
		atLeast    time.Duration // the opening lasts at least, and at most atLeast + the jitter
	}{
		{"longer hint", time.Hour, 2 * time.Hour, time.Hour},
		{"hint above the cap", 10 * time.Hour, 2 * time.Hour, 2 * time.Hour},
		{"shorter hint", time.Millisecond, 2 * time.Hour, openTimeout},
		{"no hint", 0, 2 * time.Hour, openTimeout},
		{"not honoured", time.Hour, 0, openTimeout},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := NewBreaker(BreakerSettings{Name: "t", FailureRatio: 1, MinRequests: 1000, ConsecutiveFailures: 1,
				OpenTimeout: openTimeout, MaxRetryAfter: tc.maxRA, OpenJitter: func(time.Duration) time.Duration { return 0 }})
			var fail error = errors.New("503")
			if tc.retryAfter > 0 {
				fail = target.NewRetryAfter(tc.retryAfter, fail)
			}
			tg := BreakerLayer(b)(target.Func(func(context.Context, *target.Delivery) (*target.Result, error) {
				return nil, fail
			}))
			before := monoclock.Now()
			_, _ = tg.Deliver(t.Context(), &target.Delivery{Record: &target.Record{}})
			if s := b.State(); s != BreakerOpen {
				t.Fatalf("state %s after a failure, want open", s)
			}
			if got := time.Duration(b.reopenAt.Load() - before); got < tc.atLeast || got > tc.atLeast+10*time.Second {
				t.Fatalf("the opening lasts %s, want %s", got, tc.atLeast)
			}
			if left := b.OpenLeft(); left > tc.atLeast || left < tc.atLeast-10*time.Second {
				t.Fatalf("OpenLeft %s, want about %s", left, tc.atLeast)
			}
		})
	}
}

// A half-open probe answered 503 with a long Retry-After re-opens the
// breaker for that long.
func TestBreakerFailedProbeHonoursRetryAfter(t *testing.T) {
	b := NewBreaker(BreakerSettings{Name: "t", FailureRatio: 1, MinRequests: 1000, ConsecutiveFailures: 1,
		OpenTimeout: time.Millisecond, MaxRetryAfter: time.Hour, OpenJitter: func(time.Duration) time.Duration { return 0 }})
	fail := errors.New("503")
	tg := BreakerLayer(b)(target.Func(func(context.Context, *target.Delivery) (*target.Result, error) {
		return nil, fail
	}))
	_, _ = tg.Deliver(t.Context(), &target.Delivery{Record: &target.Record{}})
	for b.State() != BreakerHalfOpen {
		time.Sleep(time.Millisecond)
	}
	fail = target.NewRetryAfter(time.Hour, errors.New("503"))
	before := monoclock.Now()
	_, err := tg.Deliver(t.Context(), &target.Delivery{Record: &target.Record{}})
	if _, ok := errors.AsType[*ProbeError](err); !ok {
		t.Fatalf("probe: %v, want a failed probe", err)
	}
	if got := time.Duration(b.reopenAt.Load() - before); got < time.Hour || got > time.Hour+10*time.Second {
		t.Fatalf("the re-opening lasts %s, want an hour", got)
	}
}
