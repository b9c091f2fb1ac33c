package dispatch

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sony/gobreaker/v2"
	"go.opentelemetry.io/otel/trace"

	"github.com/hookbridge/hookbridge/bridge/internal/monoclock"
	"github.com/hookbridge/hookbridge/bridge/target"
)

// BreakerState is a breaker's state as the rest of the bridge sees it.
type BreakerState int

// Breaker states; the numbers are the values of the breaker-state gauge.
const (
	BreakerClosed   BreakerState = 0
	BreakerHalfOpen BreakerState = 1
	BreakerOpen     BreakerState = 2
)

func (s BreakerState) String() string {
	switch s {
	case BreakerClosed:
		return "closed"
	case BreakerHalfOpen:
		return "half-open"
	case BreakerOpen:
		return "open"
	}
	return fmt.Sprintf("state(%d)", int(s))
}

// BreakerSettings configure a Breaker.
type BreakerSettings struct {
	Name                string
	FailureRatio        float64       // trip at this failure ratio ...
	MinRequests         int           // ... over at least this many requests in the window
	ConsecutiveFailures int           // or after this many failures in a row, however far apart; 0 = off
	OpenTimeout         time.Duration // open → half-open after this long, plus OpenJitter
	Window              time.Duration // rolling window of the ratio; default 60s
	// MaxRetryAfter bounds how long the target's Retry-After keeps an
	// opening going past OpenTimeout: a failure that opens the breaker
	// (the one that trips it, or a failed probe) with a longer Retry-After
	// holds it open that long, up to this. 0 = OpenTimeout only.
	MaxRetryAfter time.Duration
	// OpenJitter returns how much longer than openTimeout an opening lasts,
	// drawn at each opening. Default: at random, up to a fifth of
	// openTimeout, so that the breakers of replicas that opened together
	// (one outage, seen by all) do not probe, and send the target their
	// whole load again, together.
	OpenJitter func(openTimeout time.Duration) time.Duration
}

// defaultOpenJitter is BreakerSettings.OpenJitter's default.
func defaultOpenJitter(openTimeout time.Duration) time.Duration {
	return rand.N(openTimeout/5 + 1)
}

// Breaker is the circuit breaker of one target (a webhook URL or a plugin),
// shared by every route that uses it. Only retryable failures of the target
// count (target.TargetDown); a permanent rejection, or a record a batch answer
// named as failed, means the target is up, and cancellations are ignored. It
// counts requests: the records of one webhook batch count once together
// (target.IsShared).
//
// An open breaker is not a failure: the Breaker layer answers "not now" with a
// *BreakerOpenError, the Retry layer waits for the breaker without spending
// the record's attempts, and subscribers (the routes' consumers) pause their
// partitions while it is open. It turns half-open at the end of the opening
// (the open timeout plus its jitter) whether or not a record asks; there one
// real record is the probe, a record already held or, when none is, the next
// one fetched.
type Breaker struct {
	cb            *gobreaker.TwoStepCircuitBreaker[struct{}]
	timeout       time.Duration
	maxRetryAfter time.Duration
	jitter        func(time.Duration) time.Duration
	name          string

	// lateAfter is how long a call may last and still surely be counted
	// by its own step: gobreaker drops an outcome that comes when the
	// rolling window has moved past the call's start. transitions counts
	// the state changes, so that a late call knows its generation ended.
	lateAfter   time.Duration
	transitions atomic.Uint64

	// streak counts the failures in a row since the last transition or
	// answer that says the target is up. ConsecutiveFailures trips on it:
	// gobreaker's own count forgets failures older than its rolling window,
	// so the failures of a lone record spaced by a long backoff (or
	// Retry-After) never added up, and its target, down, never tripped it.
	// The transition count it belongs to is in its high 32 bits (see
	// note), the failures in its low ones.
	streak atomic.Uint64

	// reopenAt (a monoclock reading) ends the current opening: gobreaker's
	// own open timeout, without the jitter, ends before it, and until
	// reopenAt the breaker holds it open (held).
	reopenAt atomic.Int64

	// state is written under mu, by transition, and read without it on
	// the record path (without the clock reading of gobreaker's State).
	state atomic.Int32 // a BreakerState

	// last is the latest failure the breaker counted, for the log line of
	// a transition to open: which record, and why.
	last atomic.Pointer[Failed]

	mu      sync.Mutex
	changed chan struct{} // closed and replaced at every transition
	subs    map[int]func(BreakerState)
	nextSub int
}

// NewBreaker builds a closed breaker.
func NewBreaker(s BreakerSettings) *Breaker {
	b := &Breaker{timeout: s.OpenTimeout, maxRetryAfter: s.MaxRetryAfter, jitter: s.OpenJitter, name: s.Name, changed: make(chan struct{}), subs: map[int]func(BreakerState){}}
	if b.jitter == nil {
		b.jitter = defaultOpenJitter
	}
	window := s.Window
	if window <= 0 {
		window = time.Minute
	}
	// Six buckets; a call shorter than five is counted in one of them.
	b.lateAfter = 5 * (window / 6)
	b.cb = gobreaker.NewTwoStepCircuitBreaker[struct{}](gobreaker.Settings{
		Name:         s.Name,
		MaxRequests:  1,
		Interval:     window,
		BucketPeriod: window / 6,
		Timeout:      s.OpenTimeout,
		ReadyToTrip: func(c gobreaker.Counts) bool {
			if s.ConsecutiveFailures > 0 && b.streak.Load()&streakCount >= uint64(s.ConsecutiveFailures) {
				return true
			}
			// Requests also counts the excluded outcomes (the other records
			// of a webhook batch, cancellations) and the requests in flight.
			n := c.TotalSuccesses + c.TotalFailures
			return n >= uint32(max(s.MinRequests, 1)) &&
				float64(c.TotalFailures)/float64(n) >= s.FailureRatio
		},
		IsSuccessful: func(err error) bool { return !target.TargetDown(err) },
		IsExcluded: func(err error) bool {
			return err != nil && (err == errSharedOutcome || target.KindOf(err) == target.Canceled)
		},
		OnStateChange: func(_ string, _, to gobreaker.State) {
			b.transition(fromGobreaker(to))
		},
	})
	return b
}

func fromGobreaker(s gobreaker.State) BreakerState {
	switch s {
	case gobreaker.StateOpen:
		return BreakerOpen
	case gobreaker.StateHalfOpen:
		return BreakerHalfOpen
	}
	return BreakerClosed
}

// Name is the target the breaker guards.
func (b *Breaker) Name() string { return b.name }

// State returns the current state.
func (b *Breaker) State() BreakerState {
	if !b.held() {
		_ = b.cb.State() // lets an expired open state become half-open
	}
	return BreakerState(b.state.Load())
}

// held reports whether the breaker is open and its opening, jitter
// included, has not ended: gobreaker would turn half-open already when asked.
func (b *Breaker) held() bool {
	return BreakerState(b.state.Load()) == BreakerOpen && monoclock.Until(b.reopenAt.Load()) > 0
}

// OpenLeft returns how long the current opening has left (0 when the
// breaker is not open, or its opening ended): open_timeout and its jitter,
// or the target's longer Retry-After.
func (b *Breaker) OpenLeft() time.Duration {
	if BreakerState(b.state.Load()) != BreakerOpen {
		return 0
	}
	return max(monoclock.Until(b.reopenAt.Load()), 0)
}

// Failed is a failure a breaker counted: the record's id, the error, and
// the span context of the delivery (its trace), when it had one.
type Failed struct {
	Record string
	Err    error
	Span   trace.SpanContext
}

// LastFailure returns the latest failure the breaker counted, or nil. A
// subscriber may call it: when the breaker opens, it is the failure that
// tripped it (or the probe's).
func (b *Breaker) LastFailure() *Failed { return b.last.Load() }

// Subscribe calls fn at every state transition until the returned function
// is called. fn runs within the transition, while gobreaker holds its lock:
// it must be quick and must not call the breaker, but for LastFailure and
// OpenLeft (which read atomics only).
func (b *Breaker) Subscribe(fn func(BreakerState)) (unsubscribe func()) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.subscribeLocked(fn)
}

// Follow calls fn with the current state at once, then at every transition,
// until the returned function is called. The first call and the transitions
// are serialised: fn never sees a state older than one it saw. Its first
// call runs under the breaker's own lock, the others as with Subscribe: the
// same rules hold.
func (b *Breaker) Follow(fn func(BreakerState)) (unsubscribe func()) {
	b.mu.Lock()
	defer b.mu.Unlock()
	fn(BreakerState(b.state.Load()))
	return b.subscribeLocked(fn)
}

func (b *Breaker) subscribeLocked(fn func(BreakerState)) (unsubscribe func()) {
	b.nextSub++
	id := b.nextSub
	b.subs[id] = fn
	return func() {
		b.mu.Lock()
		delete(b.subs, id)
		b.mu.Unlock()
	}
}

func (b *Breaker) transition(to BreakerState) {
	b.mu.Lock()
	if to == BreakerOpen {
		// reopenAt first: held reads the state, then reopenAt.
		// Saturated: an open timeout near the longest duration (the
		// config takes up to 2562047h) must not wrap around to the past.
		now := monoclock.Now()
		left := time.Duration(math.MaxInt64 - now)
		openFor := min(b.timeout, left)
		openFor += min(b.jitter(b.timeout), left-openFor)
		// The failure that opened it was counted just before (last is
		// stored before its outcome): a receiver that asked for a longer
		// pause gets it from every route, not only from its record.
		if f := b.last.Load(); f != nil {
			openFor = max(openFor, min(target.RetryAfterOf(f.Err), b.maxRetryAfter, left))
		}
		b.reopenAt.Store(now + int64(openFor))
		b.state.Store(int32(to))
		// gobreaker turns an expired open state half-open only when asked.
		// Ask at the end of the opening even if no record is waiting
		// (none held when it opened, all dead-lettered by max_age, or
		// handed to another member by a rebalance): the routes that paused
		// for it resume in half-open state, so a new record can probe.
		time.AfterFunc(openFor, func() { _ = b.cb.State() })
	} else {
		b.state.Store(int32(to))
	}
	b.streak.Store(uint64(uint32(b.transitions.Add(1))) << 32)
	close(b.changed)
	b.changed = make(chan struct{})
	subs := make([]func(BreakerState), 0, len(b.subs))
	for _, fn := range b.subs {
		subs = append(subs, fn)
	}
	b.mu.Unlock()
	for _, fn := range subs {
		fn(to)
	}
}

// BreakerOpenError says the target's breaker does not let the record through
// now. It is not a failure of the record. Ready is closed when it is worth
// asking again.
type BreakerOpenError struct {
	Target string
	State  BreakerState
	Ready  <-chan struct{}
}

func (e *BreakerOpenError) Error() string {
	return fmt.Sprintf("breaker of %s is %s", e.Target, e.State)
}

// ProbeError is the failure of a half-open breaker's probe: it re-opens the
// breaker and, like a wait for an open breaker, does not spend the record's
// attempts.
type ProbeError struct{ Err error }

func (e *ProbeError) Error() string { return "probe failed: " + e.Err.Error() }
func (e *ProbeError) Unwrap() error { return e.Err }

// ready returns a channel closed when it is worth asking the breaker again:
// at the next transition, or when the open timeout expires (an open breaker
// turns half-open lazily, on the next request), or after one open timeout in
// half-open state (a probe that was canceled frees its slot without a
// transition). It is closed too when ctx, the waiting record's, ends: the
// record waits no more (its partition was revoked), and the goroutine that
// closes it must not outlive it by up to an open timeout.
func (b *Breaker) ready(ctx context.Context) (BreakerState, <-chan struct{}) {
	b.mu.Lock()
	state, changed := BreakerState(b.state.Load()), b.changed
	b.mu.Unlock()
	wait := b.timeout
	if state == BreakerOpen {
		wait = monoclock.Until(b.reopenAt.Load())
	}
	ch := make(chan struct{})
	go func() {
		t := time.NewTimer(max(wait, time.Millisecond))
		defer t.Stop()
		select {
		case <-t.C:
		case <-changed:
		case <-ctx.Done():
		}
		close(ch)
	}()
	return state, ch
}

// errSharedOutcome stands, for gobreaker, for the outcome of a record whose
// request (a webhook batch) another record reports: it is not counted.
var errSharedOutcome = errors.New("dispatch: outcome counted through another record of its request")

// count reports a call's outcome to gobreaker through done, the step that
// let the call through. gobreaker counts it only while its rolling window
// still holds the call's start, so the outcome of a call that lasted most
// of the window or longer (a receiver that hangs until a long timeout, a
// long wait for the target's rate_limit) would be lost, and a target that
// fails only that way would never trip its breaker. Such a call, made while
// the breaker stayed closed, is counted as a new step instead, once. A
// half-open probe's outcome is always counted: gobreaker keeps no window
// then.
func (b *Breaker) count(done func(error), err error, probe bool, began int64, gen uint64) {
	if !probe && monoclock.Since(began) >= b.lateAfter && b.transitions.Load() == gen {
		if now, aerr := b.cb.Allow(); aerr == nil {
			done(errSharedOutcome) // excluded: counted through now
			now(err)
			return
		}
	}
	done(err)
}

// note keeps the streak of failures in a row as gobreaker counts outcomes:
// a failure of the target adds one, a cancellation nothing, any other
// outcome ends it. A call made before the last transition is not counted,
// as gobreaker does not count it.
func (b *Breaker) note(err error, gen uint64) {
	for {
		old := b.streak.Load()
		if old>>32 != uint64(uint32(gen)) {
			return // a transition came since the call began
		}
		n := old & streakCount
		switch {
		case target.TargetDown(err):
			n = min(n+1, streakCount)
		case err == nil || target.KindOf(err) != target.Canceled:
			n = 0
		default:
			return
		}
		// In one step with the check: a transition between the two would
		// otherwise have a stale failure counted in the new state.
		if b.streak.CompareAndSwap(old, old&^streakCount|n) {
			return
		}
	}
}

// streakCount masks the failures in a row in Breaker.streak.
const streakCount = 1<<32 - 1

// BreakerLayer puts b in front of the target.
func BreakerLayer(b *Breaker) target.Layer {
	return func(next target.Target) target.Target {
		return target.Func(func(ctx context.Context, d *target.Delivery) (*target.Result, error) {
			if b.held() {
				state, ready := b.ready(ctx)
				return nil, &BreakerOpenError{Target: b.name, State: state, Ready: ready}
			}
			began, gen := monoclock.Now(), b.transitions.Load()
			done, err := b.cb.Allow()
			if err != nil {
				if errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests) {
					state, ready := b.ready(ctx)
					if state == BreakerClosed || (state == BreakerHalfOpen && errors.Is(err, gobreaker.ErrOpenState)) {
						// Changed under us (closed, or half-open with
						// nobody probing yet): ask again at once.
						c := make(chan struct{})
						close(c)
						ready = c
					}
					return nil, &BreakerOpenError{Target: b.name, State: state, Ready: ready}
				}
				return nil, err
			}
			// Allow brought gobreaker's state up to date (an expired open
			// state became half-open) and told transition before returning.
			probe := BreakerState(b.state.Load()) == BreakerHalfOpen
			res, err := next.Deliver(ctx, d)
			if target.IsShared(res, err) {
				done(errSharedOutcome) // counted through another record of its request
			} else {
				if target.TargetDown(err) {
					b.last.Store(&Failed{Record: d.Record.ID(), Err: err, Span: trace.SpanContextFromContext(ctx)}) // before done, which may trip it
				}
				b.note(err, gen)
				b.count(done, err, probe, began, gen)
			}
			if probe && target.TargetDown(err) {
				return nil, &ProbeError{Err: err}
			}
			return res, err
		})
	}
}
