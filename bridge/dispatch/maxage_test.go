package dispatch_test

import (
	"errors"
	"testing"
	"time"

	"github.com/hookbridge/hookbridge/bridge/dispatch"
	"github.com/hookbridge/hookbridge/bridge/target"
)

// max_age bounds how long a record may wait in total, and a record waits
// from when it was read: behind the records before it in its lane too
// (during an outage, behind a head record that waits for the breaker). It
// used to count from the record's own first attempt, so the records held
// behind a head record each waited max_age more: one of them was
// dead-lettered per max_age, and the others were delivered hours late.
func TestMaxAgeCountsFromWhenTheRecordWasRead(t *testing.T) {
	t.Parallel()
	p := dispatch.RetryPolicy{MaxAttempts: 10, InitialBackoff: time.Millisecond, MaxBackoff: time.Millisecond, MaxAge: time.Minute}
	readAgo := func(d time.Duration) *target.Delivery {
		rec := testRecord()
		rec.Read = time.Now().Add(-d)
		return delivery(rec)
	}

	t.Run("a record read longer ago than max_age fails at its first failure", func(t *testing.T) {
		t.Parallel()
		sc := &script{steps: steps(1, fail(errBoom), ok(&target.Result{}))}
		_, err := deliverNow(t, t.Context(), dispatch.Retry(p, &recorder{})(sc), readAgo(time.Hour))
		var f *dispatch.Failure
		if !errors.As(err, &f) {
			t.Fatalf("err = %v, want a *Failure: the record was read an hour ago, max_age is a minute", err)
		}
		if f.Attempts != 1 || sc.calls() != 1 {
			t.Errorf("%d attempts spent, %d calls; want 1 and 1", f.Attempts, sc.calls())
		}
	})

	t.Run("a record held past max_age through an outage fails at once", func(t *testing.T) {
		t.Parallel()
		b := newTestBreaker(1, forever)
		sc := &script{steps: steps(0, nil, fail(errDown))}
		tg := dispatch.BreakerLayer(b)(sc)
		_, _ = tg.Deliver(t.Context(), delivery(testRecord())) // another record trips the breaker
		_, err := deliverNow(t, t.Context(), dispatch.Retry(p, &recorder{})(tg), readAgo(time.Hour))
		var f *dispatch.Failure
		if !errors.As(err, &f) {
			t.Fatalf("err = %v, want a *Failure", err)
		}
		if f.Attempts != 0 || sc.calls() != 1 {
			t.Errorf("%d attempts spent, target called %d times; want 0 and 1 (the tripping call)", f.Attempts, sc.calls())
		}
		if !errors.As(err, new(*dispatch.BreakerOpenError)) {
			t.Errorf("err = %v, want the open breaker as the reason", err)
		}
	})

	t.Run("a record read within max_age is retried", func(t *testing.T) {
		t.Parallel()
		sc := &script{steps: steps(1, fail(errBoom), ok(&target.Result{}))}
		if _, err := deliverNow(t, t.Context(), dispatch.Retry(p, &recorder{})(sc), readAgo(time.Second)); err != nil {
			t.Fatalf("err = %v, want delivered on the second attempt", err)
		}
	})

	// A read time that is not before the first attempt (not known, or
	// from a clock that moved back) leaves max_age to count from the
	// first attempt, as for a record whose read time is not known.
	for _, read := range []time.Time{{}, time.Now().Add(time.Hour)} {
		sc := &script{steps: steps(1, fail(errBoom), ok(&target.Result{}))}
		rec := testRecord()
		rec.Read = read
		if _, err := deliverNow(t, t.Context(), dispatch.Retry(p, &recorder{})(sc), delivery(rec)); err != nil {
			t.Errorf("read %v: err = %v, want delivered on the second attempt", read, err)
		}
	}
}
