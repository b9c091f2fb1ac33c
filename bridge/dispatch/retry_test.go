package dispatch_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hookbridge/hookbridge/bridge/dispatch"
	"github.com/hookbridge/hookbridge/bridge/target"
)

const maxDuration = time.Duration(math.MaxInt64)

// samples draws n backoffs, turning a panic into a test failure.
func samples(t *testing.T, p dispatch.RetryPolicy, n int, hint time.Duration, count int) (out []time.Duration) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			t.Fatalf("Backoff(%d, %v) with %+v panicked: %v", n, hint, p, r)
		}
	}()
	out = make([]time.Duration, count)
	for i := range out {
		out[i] = p.Backoff(n, hint)
	}
	return out
}

func TestBackoffFullJitterBounds(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		initial  time.Duration
		max      time.Duration
		n        int
		wantCeil time.Duration // min(max, initial*2^(n-1))
	}{
		{"n=0 waits at most initial", 100 * time.Millisecond, time.Minute, 0, 100 * time.Millisecond},
		{"n=1 waits at most initial", 100 * time.Millisecond, time.Minute, 1, 100 * time.Millisecond},
		{"n=2 doubles", 100 * time.Millisecond, time.Minute, 2, 200 * time.Millisecond},
		{"n=3 doubles twice", 100 * time.Millisecond, time.Minute, 3, 400 * time.Millisecond},
		{"n=8", 200 * time.Millisecond, time.Minute, 8, 25600 * time.Millisecond},
		{"n=9", 200 * time.Millisecond, time.Minute, 9, 51200 * time.Millisecond},
		{"n=10 reaches the cap", 200 * time.Millisecond, time.Minute, 10, time.Minute},
		{"n=11 stays at the cap", 200 * time.Millisecond, time.Minute, 11, time.Minute},
		{"cap not a power-of-two multiple", 3 * time.Millisecond, 10 * time.Millisecond, 3, 10 * time.Millisecond},
		{"initial above max is capped", time.Hour, time.Second, 1, time.Second},
		{"zero max means no wait", time.Second, 0, 4, 0},
		{"zero initial means no wait", 0, time.Second, 4, 0},
		{"huge n", 200 * time.Millisecond, time.Minute, 1 << 40, time.Minute},
		{"max int n", 200 * time.Millisecond, time.Minute, math.MaxInt, time.Minute},
		{"max int n, tiny durations", time.Nanosecond, 3 * time.Nanosecond, math.MaxInt, 3 * time.Nanosecond},
		{"max int n, large cap", time.Millisecond, 1 << 62, math.MaxInt, 1 << 62},
		// A cap of the largest Duration ("no cap") must not make the
		// doubling overflow into a negative or zero ceiling.
		{"max duration cap, n=34", time.Second, maxDuration, 34, time.Second << 33},
		{"max duration cap, n=35", time.Second, maxDuration, 35, maxDuration},
		{"max duration cap, n=100", time.Second, maxDuration, 100, maxDuration},
		{"max duration cap, huge initial", 1 << 62, maxDuration, 2, maxDuration},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := dispatch.RetryPolicy{MaxAttempts: 10, InitialBackoff: tt.initial, MaxBackoff: tt.max}
			got := samples(t, p, tt.n, 0, 1000)
			for _, d := range got {
				if d < 0 || d > tt.wantCeil {
					t.Fatalf("Backoff(%d) = %v, want within [0, %v]", tt.n, d, tt.wantCeil)
				}
			}
			if tt.wantCeil == 0 {
				return
			}
			// Full jitter spreads waits over the whole range: among 1000
			// uniform draws, some fall in each half (the chance that none
			// does is 2^-1000). This also catches a ceiling that came out
			// too low.
			half := tt.wantCeil / 2
			if !slices.ContainsFunc(got, func(d time.Duration) bool { return d > half }) {
				t.Errorf("Backoff(%d): no wait above %v in %d draws (max seen %v); ceiling too low", tt.n, half, len(got), slices.Max(got))
			}
			if tt.wantCeil > 2 && !slices.ContainsFunc(got, func(d time.Duration) bool { return d < half }) {
				t.Errorf("Backoff(%d): no wait below %v in %d draws (min seen %v); not full jitter", tt.n, half, len(got), slices.Min(got))
			}
		})
	}
}

func TestBackoffRetryAfterHint(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		initial time.Duration
		max     time.Duration
		n       int
		hint    time.Duration
		lo, hi  time.Duration // every wait within [lo, hi]
		varies  bool          // waits are not all equal to lo
	}{
		{"hint above the jitter range is honoured exactly", 10 * time.Millisecond, time.Minute, 1, 5 * time.Second, 5 * time.Second, 5 * time.Second, false},
		{"hint equal to max", 10 * time.Millisecond, time.Minute, 3, time.Minute, time.Minute, time.Minute, false},
		{"hint above max is capped by max", 10 * time.Millisecond, time.Minute, 1, time.Hour, time.Minute, time.Minute, false},
		{"huge hint is capped by max", 10 * time.Millisecond, time.Minute, 1, maxDuration, time.Minute, time.Minute, false},
		{"hint above max at the cap", 10 * time.Millisecond, time.Minute, 50, 2 * time.Minute, time.Minute, time.Minute, false},
		{"hint inside the range raises the floor", 100 * time.Millisecond, time.Minute, 1, 30 * time.Millisecond, 30 * time.Millisecond, 100 * time.Millisecond, true},
		{"hint with zero initial backoff", 0, time.Minute, 1, 200 * time.Millisecond, 200 * time.Millisecond, 200 * time.Millisecond, false},
		{"hint with zero max is capped to zero", time.Second, 0, 1, time.Second, 0, 0, false},
		{"negative hint is ignored", 100 * time.Millisecond, time.Minute, 1, -time.Second, 0, 100 * time.Millisecond, true},
		{"zero hint means none", 100 * time.Millisecond, time.Minute, 2, 0, 0, 200 * time.Millisecond, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := dispatch.RetryPolicy{MaxAttempts: 10, InitialBackoff: tt.initial, MaxBackoff: tt.max}
			got := samples(t, p, tt.n, tt.hint, 1000)
			for _, d := range got {
				if d < tt.lo || d > tt.hi {
					t.Fatalf("Backoff(%d, %v) = %v, want within [%v, %v]", tt.n, tt.hint, d, tt.lo, tt.hi)
				}
			}
			if tt.varies && !slices.ContainsFunc(got, func(d time.Duration) bool { return d != tt.lo }) {
				t.Errorf("Backoff(%d, %v) always %v; want jitter above it", tt.n, tt.hint, tt.lo)
			}
		})
	}
}

func TestFailureErrorAndUnwrap(t *testing.T) {
	t.Parallel()
	inner := &target.Error{Kind: target.Permanent, Status: 422, Err: errBoom}
	f := &dispatch.Failure{Attempts: 3, Err: inner}
	if got, want := f.Error(), "failed after 3 attempt(s): boom"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if !errors.Is(f, errBoom) {
		t.Error("errors.Is(failure, cause) = false")
	}
	if got := target.StatusOf(f); got != 422 {
		t.Errorf("StatusOf(failure) = %d, want 422", got)
	}
	if got := target.KindOf(f); got != target.Permanent {
		t.Errorf("KindOf(failure) = %v, want permanent", got)
	}
	var asF *dispatch.Failure
	if !errors.As(fmt.Errorf("route x: %w", f), &asF) || asF != f {
		t.Error("errors.As through a wrapper did not find the failure")
	}
}

// fastPolicy retries quickly, with room for many attempts.
func fastPolicy(maxAttempts int) dispatch.RetryPolicy {
	return dispatch.RetryPolicy{MaxAttempts: maxAttempts, InitialBackoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond}
}

// slowPolicy waits an hour between attempts: a test that must not wait
// hangs (and trips the guard) if it does.
func slowPolicy(maxAttempts int) dispatch.RetryPolicy {
	return dispatch.RetryPolicy{MaxAttempts: maxAttempts, InitialBackoff: forever, MaxBackoff: forever}
}

func TestRetrySucceedsFirstTry(t *testing.T) {
	t.Parallel()
	want := &target.Result{Outputs: []target.Output{{Value: []byte("reply")}}}
	tg := &script{steps: steps(0, nil, ok(want))}
	ev := &recorder{}
	rec := testRecord()
	d := delivery(rec)

	res, err := deliverNow(t, t.Context(), dispatch.Retry(slowPolicy(5), ev)(tg), d)
	if err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	if res != want {
		t.Errorf("result = %v, want the target's result %v", res, want)
	}
	if got := tg.seen(); !slices.Equal(got, []int{1}) {
		t.Errorf("attempts seen by target = %v, want [1]", got)
	}
	if d.Attempt != 0 {
		t.Errorf("caller's delivery was modified: Attempt = %d", d.Attempt)
	}
	if got, want := ev.kinds(), []string{evAttempted, evDelivered}; !slices.Equal(got, want) {
		t.Fatalf("events = %v, want %v", got, want)
	}
	del := ev.of(evDelivered)[0]
	if del.attempt != 1 || del.rec != rec || del.route != d.Route {
		t.Errorf("Delivered event = %+v, want attempt 1 of the record on route %q", del, d.Route)
	}
	if a := ev.of(evAttempted)[0]; a.err != nil || a.attempt != 1 {
		t.Errorf("Attempted event = %+v, want attempt 1 with nil error", a)
	}
}

func TestRetryRetryableThenSuccess(t *testing.T) {
	t.Parallel()
	errs := []struct {
		name string
		err  error
		hint time.Duration
	}{
		{"plain error", errBoom, 0},
		{"retryable 503", &target.Error{Kind: target.Retryable, Status: 503, Err: errBoom}, 0},
		{"429 with Retry-After", &target.Error{Kind: target.Retryable, Status: 429, RetryAfter: time.Millisecond, Err: errBoom}, time.Millisecond},
		{"NewRetryAfter", target.NewRetryAfter(2*time.Millisecond, errBoom), 2 * time.Millisecond},
		{"wrapped retryable", fmt.Errorf("webhook: %w", &target.Error{Kind: target.Retryable, Status: 502, Err: errBoom}), 0},
		{"attempt timeout", context.DeadlineExceeded, 0},
	}
	for _, e := range errs {
		for _, failures := range []int{1, 2, 4} {
			t.Run(fmt.Sprintf("%s/%d failures", e.name, failures), func(t *testing.T) {
				t.Parallel()
				want := &target.Result{}
				tg := &script{steps: steps(failures, fail(e.err), ok(want))}
				ev := &recorder{}
				rec := testRecord()
				p := fastPolicy(failures + 1) // the last allowed attempt succeeds

				res, err := deliverNow(t, t.Context(), dispatch.Retry(p, ev)(tg), delivery(rec))
				if err != nil {
					t.Fatalf("Deliver: %v", err)
				}
				if res != want {
					t.Errorf("result = %v, want the target's result", res)
				}
				wantSeen := make([]int, failures+1)
				for i := range wantSeen {
					wantSeen[i] = i + 1
				}
				if got := tg.seen(); !slices.Equal(got, wantSeen) {
					t.Errorf("attempts seen by target = %v, want %v", got, wantSeen)
				}

				retrying := ev.of(evRetrying)
				if len(retrying) != failures {
					t.Fatalf("Retrying events = %d, want %d", len(retrying), failures)
				}
				for i, r := range retrying {
					if r.attempt != i+1 {
						t.Errorf("Retrying event %d: attempt %d, want %d", i, r.attempt, i+1)
					}
					if r.err != e.err {
						t.Errorf("Retrying event %d: err %v, want the target's error", i, r.err)
					}
					if r.wait < e.hint || r.wait > p.MaxBackoff {
						t.Errorf("Retrying event %d: wait %v, want within [%v, %v]", i, r.wait, e.hint, p.MaxBackoff)
					}
					if r.rec != rec {
						t.Errorf("Retrying event %d: wrong record", i)
					}
				}
				attempted := ev.of(evAttempted)
				if len(attempted) != failures+1 {
					t.Fatalf("Attempted events = %d, want %d", len(attempted), failures+1)
				}
				for i, a := range attempted {
					wantErr := e.err
					if i == failures {
						wantErr = nil
					}
					if a.attempt != i+1 || a.err != wantErr {
						t.Errorf("Attempted event %d = attempt %d err %v, want attempt %d err %v", i, a.attempt, a.err, i+1, wantErr)
					}
				}
				delivered := ev.of(evDelivered)
				if len(delivered) != 1 || delivered[0].attempt != failures+1 {
					t.Errorf("Delivered events = %+v, want one with attempt %d", delivered, failures+1)
				}
				if n := ev.count(evDeadLettered) + ev.count(evStuck) + ev.count(evUnstuck); n != 0 {
					t.Errorf("unexpected dead-letter/stuck events: %v", ev.kinds())
				}
			})
		}
	}
}

func TestRetryExhausted(t *testing.T) {
	t.Parallel()
	for _, maxAttempts := range []int{1, 2, 5} {
		for _, status := range []int{0, 503} {
			t.Run(fmt.Sprintf("max %d status %d", maxAttempts, status), func(t *testing.T) {
				t.Parallel()
				causes := numbered("attempt", maxAttempts)
				var stepList []func(context.Context, *target.Delivery) (*target.Result, error)
				for _, c := range causes {
					var err error = c
					if status != 0 {
						err = &target.Error{Kind: target.Retryable, Status: status, Err: c}
					}
					stepList = append(stepList, fail(err))
				}
				// Anything past the budget would succeed: a Failure proves
				// the budget was respected.
				stepList = append(stepList, ok(&target.Result{}))
				tg := &script{steps: stepList}
				ev := &recorder{}

				res, err := deliverNow(t, t.Context(), dispatch.Retry(fastPolicy(maxAttempts), ev)(tg), delivery(testRecord()))
				if res != nil {
					t.Errorf("result = %v, want nil", res)
				}
				var f *dispatch.Failure
				if !errors.As(err, &f) {
					t.Fatalf("err = %v (%T), want *Failure", err, err)
				}
				if f.Attempts != maxAttempts {
					t.Errorf("Attempts = %d, want %d", f.Attempts, maxAttempts)
				}
				if f.FirstFailed.IsZero() || f.LastFailed.IsZero() {
					t.Errorf("failure times not set: first %v last %v", f.FirstFailed, f.LastFailed)
				}
				if f.LastFailed.Before(f.FirstFailed) {
					t.Errorf("LastFailed %v before FirstFailed %v", f.LastFailed, f.FirstFailed)
				}
				last := causes[maxAttempts-1]
				if !errors.Is(err, last) {
					t.Errorf("errors.Is(err, last attempt's error) = false; err = %v", err)
				}
				if maxAttempts > 1 && errors.Is(err, causes[0]) {
					t.Errorf("failure wraps the first attempt's error, want the last: %v", err)
				}
				if got := target.StatusOf(err); got != status {
					t.Errorf("StatusOf(err) = %d, want %d", got, status)
				}
				if got := target.KindOf(err); got != target.Retryable {
					t.Errorf("KindOf(err) = %v, want retryable", got)
				}
				if got := tg.calls(); got != maxAttempts {
					t.Errorf("target called %d times, want %d", got, maxAttempts)
				}
				if got := ev.count(evRetrying); got != maxAttempts-1 {
					t.Errorf("Retrying events = %d, want %d", got, maxAttempts-1)
				}
				if got := ev.count(evAttempted); got != maxAttempts {
					t.Errorf("Attempted events = %d, want %d", got, maxAttempts)
				}
				if got := ev.count(evDelivered); got != 0 {
					t.Errorf("Delivered events = %d, want 0", got)
				}
			})
		}
	}
}

func TestRetryPermanentFailsAtOnce(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		err        error
		wantStatus int
	}{
		{"NewPermanent", target.NewPermanent(errBoom), 0},
		{"400", &target.Error{Kind: target.Permanent, Status: 400, Err: errBoom}, 400},
		{"wrapped 422", fmt.Errorf("webhook: %w", &target.Error{Kind: target.Permanent, Status: 422, Err: errBoom}), 422},
		{"permanent with a Retry-After", &target.Error{Kind: target.Permanent, Status: 404, RetryAfter: forever, Err: errBoom}, 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tg := &script{steps: steps(1, fail(tt.err), ok(&target.Result{}))}
			ev := &recorder{}
			// An hour between attempts: a wait would trip the guard.
			res, err := deliverNow(t, t.Context(), dispatch.Retry(slowPolicy(10), ev)(tg), delivery(testRecord()))
			if res != nil {
				t.Errorf("result = %v, want nil", res)
			}
			var f *dispatch.Failure
			if !errors.As(err, &f) {
				t.Fatalf("err = %v (%T), want *Failure", err, err)
			}
			if f.Attempts != 1 {
				t.Errorf("Attempts = %d, want 1", f.Attempts)
			}
			if f.Err != tt.err {
				t.Errorf("Failure.Err = %v, want the target's error", f.Err)
			}
			if !f.FirstFailed.Equal(f.LastFailed) || f.FirstFailed.IsZero() {
				t.Errorf("FirstFailed %v, LastFailed %v; want equal and set after one attempt", f.FirstFailed, f.LastFailed)
			}
			if !errors.Is(err, errBoom) {
				t.Error("errors.Is(err, cause) = false")
			}
			if got := target.KindOf(err); got != target.Permanent {
				t.Errorf("KindOf(err) = %v, want permanent", got)
			}
			if got := target.StatusOf(err); got != tt.wantStatus {
				t.Errorf("StatusOf(err) = %d, want %d", got, tt.wantStatus)
			}
			if got := tg.calls(); got != 1 {
				t.Errorf("target called %d times, want 1", got)
			}
			if got := ev.kinds(); !slices.Equal(got, []string{evAttempted}) {
				t.Errorf("events = %v, want [attempted]", got)
			}
		})
	}
}

func TestRetryPermanentAfterRetries(t *testing.T) {
	t.Parallel()
	perm := target.NewPermanent(errBoom)
	tg := &script{steps: steps(2, fail(errors.New("503")), fail(perm), ok(&target.Result{}))}
	ev := &recorder{}
	_, err := deliverNow(t, t.Context(), dispatch.Retry(fastPolicy(10), ev)(tg), delivery(testRecord()))
	var f *dispatch.Failure
	if !errors.As(err, &f) {
		t.Fatalf("err = %v, want *Failure", err)
	}
	if f.Attempts != 3 || f.Err != perm {
		t.Errorf("failure = %+v, want 3 attempts ending in the permanent error", f)
	}
	if f.LastFailed.Before(f.FirstFailed) {
		t.Errorf("LastFailed %v before FirstFailed %v", f.LastFailed, f.FirstFailed)
	}
	if got := ev.count(evRetrying); got != 2 {
		t.Errorf("Retrying events = %d, want 2", got)
	}
}

func TestRetryPassesGoneAndCanceledThrough(t *testing.T) {
	t.Parallel()
	gone := &target.Error{Kind: target.Gone, Status: 410, Err: errors.New("webhook: 410 Gone")}
	tests := []struct {
		name     string
		err      error
		failures int // retryable failures before err
	}{
		{"gone", gone, 0},
		{"wrapped gone", fmt.Errorf("route a: %w", gone), 0},
		{"gone after a retry", gone, 1},
		{"canceled kind", &target.Error{Kind: target.Canceled, Err: errors.New("abandoned")}, 0},
		{"context.Canceled", context.Canceled, 0},
		{"wrapped context.Canceled", fmt.Errorf("plugin: %w", context.Canceled), 0},
		{"canceled after retries", context.Canceled, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tg := &script{steps: steps(tt.failures, fail(errBoom), fail(tt.err), ok(&target.Result{}))}
			ev := &recorder{}
			p := slowPolicy(10)
			if tt.failures > 0 {
				p = fastPolicy(10)
			}
			res, err := deliverNow(t, t.Context(), dispatch.Retry(p, ev)(tg), delivery(testRecord()))
			if err != tt.err {
				t.Fatalf("err = %v (%T), want the target's error unchanged", err, err)
			}
			if res != nil {
				t.Errorf("result = %v, want nil", res)
			}
			var f *dispatch.Failure
			if errors.As(err, &f) {
				t.Errorf("err is a *Failure; it must not be dead-lettered")
			}
			if got := tg.calls(); got != tt.failures+1 {
				t.Errorf("target called %d times, want %d", got, tt.failures+1)
			}
			if got := ev.count(evRetrying); got != tt.failures {
				t.Errorf("Retrying events = %d, want %d", got, tt.failures)
			}
			if got := ev.count(evDelivered); got != 0 {
				t.Errorf("Delivered events = %d, want 0", got)
			}
		})
	}
}

func TestRetryMaxAge(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		p     dispatch.RetryPolicy
		err   error
		check func(t *testing.T, f *dispatch.Failure, tg *script, ev *recorder)
	}{
		{
			name: "a Retry-After beyond max age fails at once",
			p:    dispatch.RetryPolicy{MaxAttempts: 100, InitialBackoff: time.Millisecond, MaxBackoff: 2 * forever, MaxAge: time.Minute},
			err:  target.NewRetryAfter(forever, errBoom),
			check: func(t *testing.T, f *dispatch.Failure, tg *script, ev *recorder) {
				if f.Attempts != 1 {
					t.Errorf("Attempts = %d, want 1", f.Attempts)
				}
				if got := ev.count(evRetrying); got != 0 {
					t.Errorf("Retrying events = %d, want 0 (no wait)", got)
				}
			},
		},
		{
			name: "max age ends retries long before max attempts",
			p:    dispatch.RetryPolicy{MaxAttempts: math.MaxInt, InitialBackoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond, MaxAge: 30 * time.Millisecond},
			err:  errBoom,
			check: func(t *testing.T, f *dispatch.Failure, tg *script, ev *recorder) {
				// The first wait (<= 2ms) fits in max age, so there are at
				// least two attempts.
				if f.Attempts < 2 {
					t.Errorf("Attempts = %d, want >= 2", f.Attempts)
				}
				if got := tg.calls(); got != f.Attempts {
					t.Errorf("target called %d times, Failure says %d", got, f.Attempts)
				}
				if got := ev.count(evRetrying); got != f.Attempts-1 {
					t.Errorf("Retrying events = %d, want %d", got, f.Attempts-1)
				}
			},
		},
		{
			name: "zero max age means no bound",
			p:    dispatch.RetryPolicy{MaxAttempts: 3, InitialBackoff: time.Millisecond, MaxBackoff: time.Hour},
			err:  target.NewRetryAfter(2*time.Millisecond, errBoom),
			check: func(t *testing.T, f *dispatch.Failure, tg *script, ev *recorder) {
				if f.Attempts != 3 {
					t.Errorf("Attempts = %d, want 3", f.Attempts)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tg := &script{steps: steps(0, nil, fail(tt.err))}
			ev := &recorder{}
			_, err := deliverNow(t, t.Context(), dispatch.Retry(tt.p, ev)(tg), delivery(testRecord()))
			var f *dispatch.Failure
			if !errors.As(err, &f) {
				t.Fatalf("err = %v, want *Failure", err)
			}
			if !errors.Is(err, errBoom) {
				t.Errorf("errors.Is(err, cause) = false")
			}
			if f.LastFailed.Before(f.FirstFailed) {
				t.Errorf("LastFailed %v before FirstFailed %v", f.LastFailed, f.FirstFailed)
			}
			tt.check(t, f, tg, ev)
		})
	}
}

// RetryPolicy.MaxAge is documented as the "total time from the first
// attempt", so a first attempt that alone outlasts MaxAge leaves no room for
// another. Retry measures it from the end of the first attempt (the first
// failure) instead, so a slow first attempt is not counted.
func TestRetryMaxAgeCountsFromFirstAttemptStart(t *testing.T) {
	t.Parallel()
	slow := func(ctx context.Context, d *target.Delivery) (*target.Result, error) {
		// The attempt alone takes longer than MaxAge (a target that timed out).
		time.Sleep(40 * time.Millisecond)
		return nil, errBoom
	}
	tg := &script{steps: steps(0, nil, slow)}
	p := dispatch.RetryPolicy{MaxAttempts: 100, InitialBackoff: time.Millisecond, MaxBackoff: time.Millisecond, MaxAge: 10 * time.Millisecond}
	_, err := deliverNow(t, t.Context(), dispatch.Retry(p, &recorder{})(tg), delivery(testRecord()))
	var f *dispatch.Failure
	if !errors.As(err, &f) {
		t.Fatalf("err = %v, want *Failure", err)
	}
	if f.Attempts != 1 {
		t.Errorf("Attempts = %d, want 1: the first attempt alone outlasted MaxAge (%v), measured from the first attempt", f.Attempts, p.MaxAge)
	}
}

func TestRetryContextEndsDuringBackoff(t *testing.T) {
	t.Parallel()
	cause := errors.New("partition revoked")
	tests := []struct {
		name    string
		ctx     func(parent context.Context) (context.Context, func())
		wantErr error
	}{
		{
			name: "cancel",
			ctx: func(parent context.Context) (context.Context, func()) {
				ctx, cancel := context.WithCancel(parent)
				return ctx, cancel
			},
			wantErr: context.Canceled,
		},
		{
			name: "cancel with cause",
			ctx: func(parent context.Context) (context.Context, func()) {
				ctx, cancel := context.WithCancelCause(parent)
				return ctx, func() { cancel(cause) }
			},
			wantErr: cause,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := tt.ctx(t.Context())
			defer cancel()
			tg := &script{steps: steps(0, nil, fail(errBoom))}
			ev := &recorder{}
			ch := start(ctx, dispatch.Retry(slowPolicy(10), ev)(tg), delivery(testRecord()))
			waitFor(t, "the first backoff", func() bool { return ev.count(evRetrying) == 1 })
			requireNotDone(t, ch, "Retry")

			cancel()
			o := await(t, ch) // the backoff is an hour: returning at all is prompt
			if !errors.Is(o.err, tt.wantErr) {
				t.Errorf("err = %v, want %v", o.err, tt.wantErr)
			}
			var f *dispatch.Failure
			if errors.As(o.err, &f) {
				t.Errorf("err is a *Failure; a canceled record must not be dead-lettered")
			}
			if o.res != nil {
				t.Errorf("result = %v, want nil", o.res)
			}
			if got := tg.calls(); got != 1 {
				t.Errorf("target called %d times, want 1", got)
			}
		})
	}
}

func TestRetryDeadlineDuringBackoff(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Millisecond)
	defer cancel()
	tg := &script{steps: steps(0, nil, fail(errBoom))}
	_, err := deliverNow(t, ctx, dispatch.Retry(slowPolicy(10), &recorder{})(tg), delivery(testRecord()))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want context.DeadlineExceeded", err)
	}
	var f *dispatch.Failure
	if errors.As(err, &f) {
		t.Errorf("err is a *Failure")
	}
}

func TestRetryRetryableErrorAfterContextEnded(t *testing.T) {
	t.Parallel()
	cause := errors.New("shutdown")
	ctx, cancel := context.WithCancelCause(t.Context())
	defer cancel(nil)
	tg := &script{steps: steps(0, nil, func(context.Context, *target.Delivery) (*target.Result, error) {
		// The context ends while the request is in flight and the target
		// reports a plain (retryable) error, as an HTTP client does.
		cancel(cause)
		return nil, errors.New("webhook: connection reset")
	})}
	ev := &recorder{}
	_, err := deliverNow(t, ctx, dispatch.Retry(fastPolicy(10), ev)(tg), delivery(testRecord()))
	if !errors.Is(err, cause) {
		t.Errorf("err = %v, want the context's cause", err)
	}
	if got := tg.calls(); got != 1 {
		t.Errorf("target called %d times, want 1", got)
	}
	if got := ev.count(evRetrying); got != 0 {
		t.Errorf("Retrying events = %d, want 0", got)
	}
}

func TestRetryStopDuringBackoff(t *testing.T) {
	t.Parallel()
	stop := make(chan struct{})
	ctx := dispatch.WithStop(t.Context(), stop)
	tg := &script{steps: steps(0, nil, fail(errBoom))}
	ev := &recorder{}
	ch := start(ctx, dispatch.Retry(slowPolicy(10), ev)(tg), delivery(testRecord()))
	waitFor(t, "the first backoff", func() bool { return ev.count(evRetrying) == 1 })
	requireNotDone(t, ch, "Retry")

	close(stop)
	o := await(t, ch) // the backoff is an hour: returning at all is prompt
	if !errors.Is(o.err, dispatch.ErrStopping) {
		t.Errorf("err = %v, want ErrStopping", o.err)
	}
	if ctx.Err() != nil {
		t.Errorf("closing stop ended the context: %v", ctx.Err())
	}
	if got := tg.calls(); got != 1 {
		t.Errorf("target called %d times, want 1", got)
	}
}

func TestRetryStopDoesNotInterruptCallInProgress(t *testing.T) {
	t.Parallel()
	want := &target.Result{}
	tests := []struct {
		name    string
		outcome error // what the blocked call returns once released
		check   func(t *testing.T, o outcome, ev *recorder)
	}{
		{
			name: "success is returned",
			check: func(t *testing.T, o outcome, ev *recorder) {
				if o.err != nil || o.res != want {
					t.Errorf("Deliver = %v, %v; want the target's result", o.res, o.err)
				}
				if got := ev.count(evDelivered); got != 1 {
					t.Errorf("Delivered events = %d, want 1", got)
				}
			},
		},
		{
			name:    "retryable failure stops without waiting",
			outcome: errBoom,
			check: func(t *testing.T, o outcome, ev *recorder) {
				if !errors.Is(o.err, dispatch.ErrStopping) {
					t.Errorf("err = %v, want ErrStopping", o.err)
				}
			},
		},
		{
			name:    "permanent failure is still a failure",
			outcome: target.NewPermanent(errBoom),
			check: func(t *testing.T, o outcome, ev *recorder) {
				var f *dispatch.Failure
				if !errors.As(o.err, &f) || f.Attempts != 1 {
					t.Errorf("err = %v, want *Failure after 1 attempt", o.err)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			stop := make(chan struct{})
			ctx := dispatch.WithStop(t.Context(), stop)
			entered := make(chan struct{})
			release := make(chan struct{})
			ctxErr := make(chan error, 1)
			tg := &script{steps: steps(0, nil, func(ctx context.Context, d *target.Delivery) (*target.Result, error) {
				close(entered)
				select {
				case <-release:
				case <-ctx.Done():
				}
				ctxErr <- ctx.Err()
				if tt.outcome != nil {
					return nil, tt.outcome
				}
				return want, nil
			})}
			ev := &recorder{}
			ch := start(ctx, dispatch.Retry(slowPolicy(10), ev)(tg), delivery(testRecord()))
			<-entered
			close(stop)
			requireNotDone(t, ch, "Retry")
			close(release)
			o := await(t, ch)
			if err := <-ctxErr; err != nil {
				t.Errorf("the call in progress saw its context end: %v", err)
			}
			if got := tg.calls(); got != 1 {
				t.Errorf("target called %d times, want 1", got)
			}
			tt.check(t, o, ev)
		})
	}
}

func TestRetryStopClosedBeforeSuccessfulCall(t *testing.T) {
	t.Parallel()
	stop := make(chan struct{})
	close(stop)
	want := &target.Result{}
	tg := &script{steps: steps(0, nil, ok(want))}
	res, err := deliverNow(t, dispatch.WithStop(t.Context(), stop), dispatch.Retry(slowPolicy(10), &recorder{})(tg), delivery(testRecord()))
	if err != nil || res != want {
		t.Errorf("Deliver = %v, %v; want the target's result: stop must not turn a success into an error", res, err)
	}
}

func TestRetryConcurrentRecords(t *testing.T) {
	t.Parallel()
	const records = 32
	var mu sync.Mutex
	seen := map[int64]int{}
	tg := target.Func(func(ctx context.Context, d *target.Delivery) (*target.Result, error) {
		mu.Lock()
		seen[d.Record.Offset]++
		n := seen[d.Record.Offset]
		mu.Unlock()
		if n != d.Attempt {
			return nil, target.NewPermanent(fmt.Errorf("record %d: call %d has attempt %d", d.Record.Offset, n, d.Attempt))
		}
		if n < 3 {
			return nil, errBoom
		}
		return &target.Result{}, nil
	})
	ev := &recorder{}
	chain := dispatch.Retry(fastPolicy(5), ev)(tg)
	var wg sync.WaitGroup
	errs := make(chan error, records)
	for i := range records {
		wg.Go(func() {
			rec := testRecord()
			rec.Offset = int64(i)
			if _, err := chain.Deliver(t.Context(), delivery(rec)); err != nil {
				errs <- fmt.Errorf("record %d: %w", i, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	delivered := ev.of(evDelivered)
	if len(delivered) != records {
		t.Fatalf("Delivered events = %d, want %d", len(delivered), records)
	}
	offsets := map[int64]bool{}
	for _, e := range delivered {
		if e.attempt != 3 {
			t.Errorf("record %d delivered at attempt %d, want 3", e.rec.Offset, e.attempt)
		}
		offsets[e.rec.Offset] = true
	}
	if len(offsets) != records {
		t.Errorf("Delivered events cover %d records, want %d", len(offsets), records)
	}
	if got := ev.count(evRetrying); got != 2*records {
		t.Errorf("Retrying events = %d, want %d", got, 2*records)
	}
}
