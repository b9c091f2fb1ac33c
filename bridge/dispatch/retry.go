package dispatch

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/hookbridge/hookbridge/bridge/target"
)

// RetryPolicy bounds the retries of one record.
type RetryPolicy struct {
	MaxAttempts    int           // attempts before the record fails; >= 1
	InitialBackoff time.Duration // first wait; waits double, with full jitter
	MaxBackoff     time.Duration // cap of one wait, Retry-After included
	// MaxAge bounds how long a record may wait in total, from when it was
	// read (target.Record.Read; from its first attempt when that is not
	// known); 0 = none.
	MaxAge time.Duration
}

// Backoff returns the wait before attempt n+1 after n failed attempts: a
// uniformly random duration in [0, min(MaxBackoff, InitialBackoff*2^(n-1))]
// ("full jitter"), raised to the target's Retry-After hint and capped at MaxBackoff.
func (p RetryPolicy) Backoff(n int, hint time.Duration) time.Duration {
	ceil := min(p.InitialBackoff, p.MaxBackoff)
	for i := 1; i < n && ceil > 0 && ceil < p.MaxBackoff; i++ {
		if ceil > p.MaxBackoff/2 {
			ceil = p.MaxBackoff
			break
		}
		ceil *= 2
	}
	var d time.Duration
	if ceil > 0 {
		d = time.Duration(rand.Uint64N(uint64(ceil) + 1))
	}
	if hint > d {
		d = hint
	}
	return min(d, p.MaxBackoff)
}

// Failure is the terminal failure of a record: a permanent error, or a
// retryable one that exhausted the policy.
type Failure struct {
	Attempts int
	// LastAttempt is the number of the last attempt made (its
	// hookbridge-attempt); 0 when none was.
	LastAttempt int
	FirstFailed time.Time
	LastFailed  time.Time
	Err         error // the last attempt's error
}

func (f *Failure) Error() string {
	return fmt.Sprintf("failed after %d attempt(s): %v", f.Attempts, f.Err)
}

func (f *Failure) Unwrap() error { return f.Err }

// Retry retries retryable failures per p. It returns nil once the target
// accepted the record, a *Failure when the record failed for good, and any
// other error (cancellation, stop, a Gone target) unchanged.
//
// A *BreakerOpenError from below is not a failure: Retry waits until the
// breaker is ready and asks again, spending none of MaxAttempts; so does a
// failed half-open probe (*ProbeError). Only MaxAge bounds that wait.
//
// A record DeadLetter parked (no dead-letter topic) is tried once per call,
// its attempts numbered on from d.Attempt: after MaxAttempts it is retried
// once every cycle of DeadLetter, not MaxAttempts times again.
func Retry(p RetryPolicy, ev Events) target.Layer {
	return func(next target.Target) target.Target {
		return target.Func(func(ctx context.Context, d *target.Delivery) (*target.Result, error) {
			// began is when the record's MaxAge starts: when it was read,
			// when known; called is the start of its first call.
			var began, called, first, last time.Time
			var lastErr error
			spent := 0 // attempts that count against MaxAttempts
			for n := max(d.Attempt, 1); ; {
				attempt := *d
				attempt.Attempt = n
				start := time.Now()
				if called.IsZero() {
					called, began = start, start
					if d.Record != nil && !d.Record.Read.IsZero() && d.Record.Read.Before(start) {
						began = d.Record.Read
					}
				}
				res, err := next.Deliver(ctx, &attempt)
				if open, ok := errors.AsType[*BreakerOpenError](err); ok {
					if p.MaxAge > 0 && time.Since(began) > p.MaxAge {
						if lastErr == nil {
							first, last, lastErr = called, time.Now(), err
						}
						return nil, &Failure{Attempts: spent, LastAttempt: n - 1, FirstFailed: first, LastFailed: last, Err: lastErr}
					}
					ev.Waiting(ctx, &attempt, open)
					if err := waitReady(ctx, open.Ready, p.MaxAge, began); err != nil {
						return nil, err
					}
					continue
				}
				n++
				ev.Attempted(ctx, &attempt, time.Since(start), err)
				if err == nil {
					ev.Delivered(ctx, &attempt)
					if res != nil && len(res.Outputs) > 0 {
						res.Attempt = attempt.Attempt // for Reply, whose dead letter names it
						res.Attempts = spent + 1
					}
					return res, nil
				}
				now := time.Now()
				if first.IsZero() {
					first = now
				}
				last, lastErr = now, err
				if _, ok := errors.AsType[*ProbeError](err); ok {
					// The breaker is open again; the next call waits for it,
					// and for the wait the receiver asked for, if longer.
					// That call is a retry as any other (unless max_age,
					// past already, makes the record fail at the breaker).
					wait := min(target.RetryAfterOf(err), p.MaxBackoff)
					if p.MaxAge > 0 {
						wait = min(wait, time.Until(began.Add(p.MaxAge)))
					}
					if p.MaxAge == 0 || now.Sub(began) < p.MaxAge {
						ev.Retrying(ctx, &attempt, max(wait, 0), err)
					}
					if wait > 0 {
						if err := sleep(ctx, wait); err != nil {
							return nil, err
						}
					}
					continue
				}
				spent++
				switch target.KindOf(err) {
				case target.Canceled, target.Gone:
					return nil, err
				case target.Permanent:
					return nil, &Failure{Attempts: spent, LastAttempt: n - 1, FirstFailed: first, LastFailed: now, Err: err}
				}
				if ctx.Err() != nil {
					return nil, context.Cause(ctx)
				}
				wait := p.Backoff(spent, target.RetryAfterOf(err))
				// A parked record gets one attempt a call (read only on this
				// failure path, not for every record).
				if spent >= p.MaxAttempts || ctx.Value(parkedKey{}) != nil || (p.MaxAge > 0 && now.Add(wait).Sub(began) > p.MaxAge) {
					return nil, &Failure{Attempts: spent, LastAttempt: n - 1, FirstFailed: first, LastFailed: now, Err: err}
				}
				ev.Retrying(ctx, &attempt, wait, err)
				if err := sleep(ctx, wait); err != nil {
					return nil, err
				}
			}
		})
	}
}

// waitReady waits for an open breaker to be worth asking again, for at most
// until maxAge after began when maxAge is set.
func waitReady(ctx context.Context, ready <-chan struct{}, maxAge time.Duration, began time.Time) error {
	var limit <-chan time.Time
	if maxAge > 0 {
		left := max(time.Until(began.Add(maxAge)), 0) // saturated at the longest duration
		t := time.NewTimer(left + min(time.Millisecond, math.MaxInt64-left))
		defer t.Stop()
		limit = t.C
	}
	stop, _ := ctx.Value(stopKey{}).(<-chan struct{})
	select {
	case <-ready:
	case <-limit:
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-stop:
		return ErrStopping
	}
	return nil
}
