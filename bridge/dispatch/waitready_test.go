package dispatch

import (
	"context"
	"errors"
	"math"
	"testing"
	"time"
)

// A max_age at the longest duration bounds nothing: waiting for the
// breaker lasts until it is ready or the record's context ends. The limit's
// timer, max_age plus a millisecond, wrapped around to a negative duration
// and fired at once, which made the record ask the open breaker again.
func TestWaitReadyLongestMaxAgeWaits(t *testing.T) {
	ctx, cancel := context.WithTimeoutCause(t.Context(), 50*time.Millisecond, errors.New("record's context ended"))
	defer cancel()
	err := waitReady(ctx, make(chan struct{}), math.MaxInt64, time.Now())
	if err == nil || err.Error() != "record's context ended" {
		t.Fatalf("waitReady = %v, want it to wait until the context ended", err)
	}
}
