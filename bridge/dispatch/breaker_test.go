package dispatch_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/hookbridge/hookbridge/bridge/dispatch"
	"github.com/hookbridge/hookbridge/bridge/target"
)

func newTestBreaker(consecutive int, open time.Duration) *dispatch.Breaker {
	return dispatch.NewBreaker(dispatch.BreakerSettings{Name: "t", FailureRatio: 1, MinRequests: 1000,
		ConsecutiveFailures: consecutive, OpenTimeout: open})
}

var errDown = errors.New("503")

func TestBreakerCountsOnlyRetryableFailures(t *testing.T) {
	b := newTestBreaker(3, time.Hour)
	fails := target.Func(func(ctx context.Context, d *target.Delivery) (*target.Result, error) {
		switch d.Record.Offset {
		case 0:
			return nil, target.NewPermanent(errors.New("400"))
		case 1:
			return nil, context.Canceled
		}
		return nil, errDown
	})
	tg := dispatch.BreakerLayer(b)(fails)
	call := func(off int64) error {
		_, err := tg.Deliver(t.Context(), &target.Delivery{Record: &target.Record{Offset: off}})
		return err
	}
	for range 10 { // permanent rejections and cancellations never trip it
		_ = call(0)
		_ = call(1)
	}
	if s := b.State(); s != dispatch.BreakerClosed {
		t.Fatalf("state %s after permanent and canceled outcomes", s)
	}
	for range 3 {
		if err := call(2); !errors.Is(err, errDown) {
			t.Fatalf("closed breaker returned %v", err)
		}
	}
	if s := b.State(); s != dispatch.BreakerOpen {
		t.Fatalf("state %s after 3 consecutive failures", s)
	}
	var open *dispatch.BreakerOpenError
	if err := call(2); !errors.As(err, &open) || open.State != dispatch.BreakerOpen {
		t.Fatalf("open breaker returned %v", err)
	}
}

// An open breaker turns half-open at the end of its open timeout although no
// record asks it (none was held when it opened, or they all went elsewhere):
// the routes that paused for it must get a chance to fetch a probe.
func TestOpenBreakerTurnsHalfOpenUnasked(t *testing.T) {
	b := newTestBreaker(1, 20*time.Millisecond)
	states := make(chan dispatch.BreakerState, 8)
	defer b.Subscribe(func(to dispatch.BreakerState) { states <- to })()
	tg := dispatch.BreakerLayer(b)(target.Func(func(context.Context, *target.Delivery) (*target.Result, error) {
		return nil, errDown
	}))
	if _, err := tg.Deliver(t.Context(), &target.Delivery{Record: &target.Record{}}); !errors.Is(err, errDown) {
		t.Fatalf("first delivery: %v", err)
	}
	// Nothing calls the breaker from here on.
	for _, want := range []dispatch.BreakerState{dispatch.BreakerOpen, dispatch.BreakerHalfOpen} {
		select {
		case got := <-states:
			if got != want {
				t.Fatalf("transition to %s, want %s", got, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no transition to %s with nothing asking the breaker", want)
		}
	}
}

// Follow tells a follower the state the breaker is in when it starts
// following (a route started while its target's breaker is open must start
// paused), then the transitions; Subscribe tells transitions only.
func TestFollowStartsWithTheCurrentState(t *testing.T) {
	b := newTestBreaker(1, time.Hour)
	tg := dispatch.BreakerLayer(b)(target.Func(func(context.Context, *target.Delivery) (*target.Result, error) {
		return nil, errDown
	}))
	if _, err := tg.Deliver(t.Context(), &target.Delivery{Record: &target.Record{}}); !errors.Is(err, errDown) {
		t.Fatalf("first delivery: %v", err)
	}
	var followed, subscribed []dispatch.BreakerState
	defer b.Follow(func(s dispatch.BreakerState) { followed = append(followed, s) })()
	defer b.Subscribe(func(s dispatch.BreakerState) { subscribed = append(subscribed, s) })()
	if !slices.Equal(followed, []dispatch.BreakerState{dispatch.BreakerOpen}) || len(subscribed) != 0 {
		t.Errorf("followed %v, subscribed %v; want [open] and []", followed, subscribed)
	}
}

// While the breaker is open, records wait without spending attempts and
// nothing fails for good; once the target is back every record is delivered.
func TestRetryWaitsForOpenBreaker(t *testing.T) {
	b := newTestBreaker(2, 20*time.Millisecond)
	var states []dispatch.BreakerState
	var mu sync.Mutex
	b.Subscribe(func(s dispatch.BreakerState) { mu.Lock(); states = append(states, s); mu.Unlock() })

	var calls, down atomic.Int64
	down.Store(1)
	tg := target.Func(func(ctx context.Context, d *target.Delivery) (*target.Result, error) {
		calls.Add(1)
		if down.Load() == 1 {
			return nil, errDown
		}
		return &target.Result{}, nil
	})
	ev := &recorder{}
	chain := target.Chain(tg,
		dispatch.Retry(dispatch.RetryPolicy{MaxAttempts: 3, InitialBackoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond}, ev),
		dispatch.BreakerLayer(b))

	const n = 8
	errs := make(chan error, n)
	for i := range n {
		go func() {
			_, err := chain.Deliver(t.Context(), &target.Delivery{Record: &target.Record{Offset: int64(i)}})
			errs <- err
		}()
	}
	waitUntil(t, "breaker to open and probe at least twice", func() bool {
		mu.Lock()
		defer mu.Unlock()
		opens := 0
		for _, s := range states {
			if s == dispatch.BreakerOpen {
				opens++
			}
		}
		return opens >= 3
	})
	down.Store(0)
	for range n {
		if err := <-errs; err != nil {
			t.Fatalf("record failed during an outage: %v", err)
		}
	}
	mu.Lock()
	last := states[len(states)-1]
	mu.Unlock()
	if last != dispatch.BreakerClosed {
		t.Fatalf("breaker ended %s", last)
	}
	if len(ev.of(evWaiting)) == 0 {
		t.Fatal("no record waited for the breaker")
	}
}

// A failed half-open probe does not spend the probing record's attempts: a
// record with a budget of one attempt survives any number of failed probes.
func TestFailedProbeSpendsNoAttempt(t *testing.T) {
	b := newTestBreaker(1, 5*time.Millisecond)
	var calls atomic.Int64
	tg := target.Func(func(ctx context.Context, d *target.Delivery) (*target.Result, error) {
		if calls.Add(1) <= 4 { // the tripping call and three probes fail
			return nil, errDown
		}
		return &target.Result{}, nil
	})
	layer := dispatch.BreakerLayer(b)(tg)
	_, _ = layer.Deliver(t.Context(), &target.Delivery{Record: &target.Record{Offset: 0}}) // trips the breaker
	chain := dispatch.Retry(dispatch.RetryPolicy{MaxAttempts: 1, MaxBackoff: time.Millisecond}, &recorder{})(layer)
	if _, err := chain.Deliver(t.Context(), &target.Delivery{Record: &target.Record{Offset: 1}}); err != nil {
		t.Fatalf("record with one attempt failed through failed probes: %v", err)
	}
	if got := calls.Load(); got != 5 {
		t.Fatalf("%d calls, want 5 (trip, 3 failed probes, success)", got)
	}
}

// max_age bounds the wait for an open breaker: past it the record fails for
// good (and would be dead-lettered), as the operator asked.
func TestMaxAgeBoundsBreakerWait(t *testing.T) {
	b := newTestBreaker(1, time.Hour)
	tg := dispatch.BreakerLayer(b)(target.Func(func(ctx context.Context, d *target.Delivery) (*target.Result, error) {
		return nil, errDown
	}))
	_, _ = tg.Deliver(t.Context(), &target.Delivery{Record: &target.Record{}}) // trips
	chain := dispatch.Retry(dispatch.RetryPolicy{MaxAttempts: 10, MaxBackoff: time.Millisecond, MaxAge: 20 * time.Millisecond}, &recorder{})(tg)
	_, err := chain.Deliver(t.Context(), &target.Delivery{Record: &target.Record{Offset: 1}})
	var f *dispatch.Failure
	if !errors.As(err, &f) {
		t.Fatalf("err %v, want a *Failure after max_age", err)
	}
	if f.Attempts != 0 {
		t.Fatalf("%d attempts spent while the breaker was open", f.Attempts)
	}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(guard)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// A subscriber told that the breaker opened can ask which failure tripped
// it: the record and its error (the log line of the transition names them,
// so that a record failing alone, which cannot be told from an outage, can
// be found). A permanent failure or a cancellation is never the one named.
func TestBreakerLastFailureNamesWhatTrippedIt(t *testing.T) {
	b := newTestBreaker(2, time.Hour)
	if f := b.LastFailure(); f != nil {
		t.Fatalf("LastFailure of a new breaker: %+v", f)
	}
	tg := dispatch.BreakerLayer(b)(target.Func(func(ctx context.Context, d *target.Delivery) (*target.Result, error) {
		if d.Record.Offset == 9 {
			return nil, target.NewPermanent(errors.New("400"))
		}
		return nil, errDown
	}))
	var atOpen *dispatch.Failed
	unsubscribe := b.Subscribe(func(to dispatch.BreakerState) {
		if to == dispatch.BreakerOpen {
			atOpen = b.LastFailure()
		}
	})
	defer unsubscribe()
	spanOf := func(off int64) trace.SpanContext {
		return trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{0xab, byte(off)}, SpanID: trace.SpanID{1}})
	}
	for _, off := range []int64{9, 3, 4} { // 9 is refused for good: the target is up, and it is not named
		ctx := trace.ContextWithSpanContext(t.Context(), spanOf(off))
		_, _ = tg.Deliver(ctx, &target.Delivery{Record: &target.Record{Topic: "orders", Partition: 1, Offset: off}})
	}
	if b.State() != dispatch.BreakerOpen || atOpen == nil {
		t.Fatalf("state %s, failure at open %+v", b.State(), atOpen)
	}
	if atOpen.Record != "orders-1-4" || !errors.Is(atOpen.Err, errDown) {
		t.Fatalf("failure at open: %s %v, want orders-1-4 and the 503", atOpen.Record, atOpen.Err)
	}
	if atOpen.Span.TraceID() != spanOf(4).TraceID() {
		t.Fatalf("failure at open in trace %s, want the delivery's %s", atOpen.Span.TraceID(), spanOf(4).TraceID())
	}
}

// An opening lasts the open timeout plus its jitter: until then the breaker
// stays open, although gobreaker's own timeout (without the jitter) has
// passed, and then it turns half-open by itself.
func TestBreakerOpeningLastsItsJitterToo(t *testing.T) {
	extra := make(chan time.Duration, 1)
	extra <- time.Hour // the first opening: held for an hour past the timeout
	b := dispatch.NewBreaker(dispatch.BreakerSettings{Name: "t", FailureRatio: 1, MinRequests: 1000,
		ConsecutiveFailures: 1, OpenTimeout: 10 * time.Millisecond,
		OpenJitter: func(open time.Duration) time.Duration {
			if open != 10*time.Millisecond {
				t.Errorf("jitter asked for an open timeout of %s", open)
			}
			select {
			case d := <-extra:
				return d
			default:
				return 0
			}
		}})
	calls := 0
	tg := dispatch.BreakerLayer(b)(target.Func(func(context.Context, *target.Delivery) (*target.Result, error) {
		calls++
		return nil, errDown
	}))
	deliver := func() error {
		_, err := tg.Deliver(t.Context(), &target.Delivery{Record: &target.Record{}})
		return err
	}
	if err := deliver(); !errors.Is(err, errDown) {
		t.Fatalf("first delivery: %v", err)
	}
	time.Sleep(50 * time.Millisecond) // past gobreaker's own timeout, not past the jitter
	var open *dispatch.BreakerOpenError
	if err := deliver(); !errors.As(err, &open) || open.State != dispatch.BreakerOpen {
		t.Fatalf("within the jitter: %v, want the breaker still open", err)
	}
	if s := b.State(); s != dispatch.BreakerOpen || calls != 1 {
		t.Fatalf("within the jitter: state %s and %d calls of the target, want open and 1", s, calls)
	}
	select {
	case <-open.Ready:
		t.Fatal("Ready closed within the jitter")
	default:
	}
}

// The default jitter lies between nothing and a fifth of the open timeout,
// and varies.
func TestBreakerDefaultJitter(t *testing.T) {
	const open = 15 * time.Second
	seen := map[time.Duration]bool{}
	for range 1000 {
		d := dispatch.DefaultOpenJitter(open)
		if d < 0 || d > open/5 {
			t.Fatalf("jitter %s, want 0 to %s", d, open/5)
		}
		seen[d] = true
	}
	if len(seen) < 100 {
		t.Errorf("%d distinct jitters in 1000 draws", len(seen))
	}
}
