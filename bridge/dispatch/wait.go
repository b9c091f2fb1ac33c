package dispatch

import (
	"context"
	"errors"
	"time"

	"github.com/hookbridge/hookbridge/bridge/target"
)

type stopKey struct{}

// ErrStopping is returned by a wait that ended because the bridge is shutting
// down: the record is abandoned and will be redelivered after restart. Its
// kind is target.Canceled, as for a call the shutdown cut short.
var ErrStopping error = &target.Error{Kind: target.Canceled, Err: errors.New("dispatch: stopping")}

// WithStop returns a context whose waits (retry backoff, dead-letter retries)
// end early when stop is closed, while calls already made to a target keep
// running until ctx itself ends. It is how a shutdown lets in-flight requests
// finish without waiting out a 60 s backoff.
func WithStop(ctx context.Context, stop <-chan struct{}) context.Context {
	return context.WithValue(ctx, stopKey{}, stop)
}

// Stopping returns the stop channel WithStop put in ctx, or nil (a channel
// that never closes) when there is none.
func Stopping(ctx context.Context) <-chan struct{} {
	stop, _ := ctx.Value(stopKey{}).(<-chan struct{})
	return stop
}

// sleep waits d, or until ctx ends or the stop channel closes.
func sleep(ctx context.Context, d time.Duration) error {
	stop, _ := ctx.Value(stopKey{}).(<-chan struct{})
	if stop != nil {
		select {
		case <-stop:
			return ErrStopping
		default:
		}
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-stop:
		return ErrStopping
	}
}
