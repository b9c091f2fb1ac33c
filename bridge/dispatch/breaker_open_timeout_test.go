package dispatch

import (
	"context"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/hookbridge/hookbridge/bridge/internal/monoclock"
	"github.com/hookbridge/hookbridge/bridge/target"
)

// An open_timeout near the longest duration the config accepts
// (2562047h47m16s) keeps the breaker open for that long: the opening, with
// its jitter added, must not wrap around to the past, which would let every
// record waiting for the breaker ask it again at once, over and over.
func TestBreakerLongestOpenTimeoutStaysHeld(t *testing.T) {
	for _, open := range []time.Duration{math.MaxInt64, math.MaxInt64 - time.Hour} {
		b := NewBreaker(BreakerSettings{Name: "t", FailureRatio: 1, MinRequests: 1000,
			ConsecutiveFailures: 1, OpenTimeout: open})
		tg := BreakerLayer(b)(target.Func(func(context.Context, *target.Delivery) (*target.Result, error) {
			return nil, errors.New("503")
		}))
		_, _ = tg.Deliver(t.Context(), &target.Delivery{Record: &target.Record{}})
		if s := b.State(); s != BreakerOpen {
			t.Fatalf("open_timeout %s: state %s after a failure, want open", open, s)
		}
		if !b.held() {
			t.Errorf("open_timeout %s: the opening ends %s from now, want it ahead", open, monoclock.Until(b.reopenAt.Load()))
		}
	}
}
