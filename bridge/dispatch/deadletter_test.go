package dispatch_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hookbridge/hookbridge/bridge/dispatch"
	"github.com/hookbridge/hookbridge/bridge/target"
)

const dlqTopic = "orders.dlq"

func dlqPolicy() dispatch.DeadLetterPolicy {
	return dispatch.DeadLetterPolicy{Route: "orders-webhook", Group: "hookbridge-orders", Topic: dlqTopic, Backoff: time.Millisecond}
}

// errorHeaders lists every header the dead-letter layer adds.
var errorHeaders = []string{
	dispatch.HeaderErrorRoute,
	dispatch.HeaderErrorGroup,
	dispatch.HeaderErrorTopic,
	dispatch.HeaderErrorPartition,
	dispatch.HeaderErrorOffset,
	dispatch.HeaderErrorAttempts,
	dispatch.HeaderErrorStatus,
	dispatch.HeaderErrorKind,
	dispatch.HeaderErrorMessage,
	dispatch.HeaderErrorFirstFailed,
	dispatch.HeaderErrorLastFailed,
	dispatch.HeaderErrorTimestamp,
}

// failing is a target that always returns err.
func failing(err error) *script { return &script{steps: steps(0, nil, fail(err))} }

// lastHeader returns the value of the last header named key.
func lastHeader(hs []target.Header, key string) (string, bool) {
	for i := len(hs) - 1; i >= 0; i-- {
		if hs[i].Key == key {
			return string(hs[i].Value), true
		}
	}
	return "", false
}

// checkDeadLetter checks that out is rec dead-lettered with want's error headers.
func checkDeadLetter(t *testing.T, out target.Output, rec *target.Record, want map[string]string) {
	t.Helper()
	if out.Topic != dlqTopic {
		t.Errorf("topic = %q, want %q", out.Topic, dlqTopic)
	}
	if (out.Key == nil) != (rec.Key == nil) || !bytes.Equal(out.Key, rec.Key) {
		t.Errorf("key = %q (nil %v), want %q (nil %v)", out.Key, out.Key == nil, rec.Key, rec.Key == nil)
	}
	if !bytes.Equal(out.Value, rec.Value) {
		t.Errorf("value = %q, want %q", out.Value, rec.Value)
	}
	if len(out.Headers) < len(rec.Headers) || !headersEqual(out.Headers[:len(rec.Headers)], rec.Headers) {
		t.Fatalf("headers = %v, want the original headers %v first, unchanged", out.Headers, rec.Headers)
	}
	added := out.Headers[len(rec.Headers):]
	var keys []string
	for _, h := range added {
		keys = append(keys, h.Key)
	}
	if got, want := slices.Sorted(slices.Values(keys)), slices.Sorted(slices.Values(errorHeaders)); !slices.Equal(got, want) {
		t.Errorf("added headers = %v, want each of %v once", keys, errorHeaders)
	}
	for k, v := range want {
		got, found := lastHeader(added, k)
		if !found {
			t.Errorf("header %s missing", k)
			continue
		}
		if got != v {
			t.Errorf("header %s = %q, want %q", k, got, v)
		}
	}
}

func TestDeadLetterWritesRecord(t *testing.T) {
	t.Parallel()
	cet := time.FixedZone("CET", 3600)
	first := time.Date(2024, 1, 2, 3, 4, 5, 123456789, cet)
	last := time.Date(2024, 1, 2, 3, 5, 0, 500, cet)
	withKey := testRecord()
	nilKey := testRecord()
	nilKey.Key = nil
	emptyKey := testRecord()
	emptyKey.Key = []byte{}
	binaryKey := testRecord()
	binaryKey.Key = []byte{0xff, 0x00, 0xfe}
	noHeaders := testRecord()
	noHeaders.Headers = nil
	nilValue := testRecord()
	nilValue.Value = nil
	nilValue.Key = nil
	nilValue.Headers = nil

	tests := []struct {
		name       string
		rec        *target.Record
		failure    *dispatch.Failure
		wantStatus string
		wantKind   string
		wantMsg    string
	}{
		{
			name:       "permanent 400",
			rec:        withKey,
			failure:    &dispatch.Failure{Attempts: 1, FirstFailed: first, LastFailed: first, Err: &target.Error{Kind: target.Permanent, Status: 400, Err: errors.New("webhook: 400 Bad Request")}},
			wantStatus: "400",
			wantKind:   "permanent",
			wantMsg:    "webhook: 400 Bad Request",
		},
		{
			name:       "exhausted 503, nil key",
			rec:        nilKey,
			failure:    &dispatch.Failure{Attempts: 10, FirstFailed: first, LastFailed: last, Err: fmt.Errorf("route: %w", &target.Error{Kind: target.Retryable, Status: 503, Err: errors.New("webhook: 503 Service Unavailable")})},
			wantStatus: "503",
			wantKind:   "retryable",
			wantMsg:    "route: webhook: 503 Service Unavailable",
		},
		{
			name:       "plain error, empty key",
			rec:        emptyKey,
			failure:    &dispatch.Failure{Attempts: 3, FirstFailed: first, LastFailed: last, Err: errors.New("dial tcp: connection refused")},
			wantStatus: "0",
			wantKind:   "retryable",
			wantMsg:    "dial tcp: connection refused",
		},
		{
			name:       "binary key",
			rec:        binaryKey,
			failure:    &dispatch.Failure{Attempts: 2, FirstFailed: first, LastFailed: last, Err: target.NewPermanent(errors.New("plugin: invalid payload"))},
			wantStatus: "0",
			wantKind:   "permanent",
			wantMsg:    "plugin: invalid payload",
		},
		{
			name:       "no headers",
			rec:        noHeaders,
			failure:    &dispatch.Failure{Attempts: 1, FirstFailed: first, LastFailed: first, Err: &target.Error{Kind: target.Permanent, Status: 404, Err: errors.New("not found")}},
			wantStatus: "404",
			wantKind:   "permanent",
			wantMsg:    "not found",
		},
		{
			name:       "nil key, value and headers",
			rec:        nilValue,
			failure:    &dispatch.Failure{Attempts: 1, FirstFailed: first, LastFailed: first, Err: target.NewPermanent(errors.New("empty"))},
			wantStatus: "0",
			wantKind:   "permanent",
			wantMsg:    "empty",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			orig := cloneRecord(tt.rec)
			prod := &producer{}
			ev := &recorder{}
			inner := failing(tt.failure)
			res, err := deliverNow(t, t.Context(), dispatch.DeadLetter(dlqPolicy(), prod, ev)(inner), delivery(tt.rec))
			if err != nil || res != nil {
				t.Fatalf("Deliver = %v, %v; want nil, nil once dead-lettered", res, err)
			}
			acked := prod.acked()
			if len(acked) != 1 || len(acked[0]) != 1 {
				t.Fatalf("produced %v, want one call with one record", acked)
			}
			checkDeadLetter(t, acked[0][0], orig, map[string]string{
				dispatch.HeaderErrorRoute:       "orders-webhook",
				dispatch.HeaderErrorGroup:       "hookbridge-orders",
				dispatch.HeaderErrorTopic:       "orders",
				dispatch.HeaderErrorPartition:   "3",
				dispatch.HeaderErrorOffset:      "42",
				dispatch.HeaderErrorAttempts:    fmt.Sprint(tt.failure.Attempts),
				dispatch.HeaderErrorStatus:      tt.wantStatus,
				dispatch.HeaderErrorKind:        tt.wantKind,
				dispatch.HeaderErrorMessage:     tt.wantMsg,
				dispatch.HeaderErrorFirstFailed: tt.failure.FirstFailed.UTC().Format(time.RFC3339Nano),
				dispatch.HeaderErrorLastFailed:  tt.failure.LastFailed.UTC().Format(time.RFC3339Nano),
				dispatch.HeaderErrorTimestamp:   tt.rec.Timestamp.UTC().Format(time.RFC3339Nano),
			})
			// The times go out in UTC, to the nanosecond.
			for k, want := range map[string]time.Time{dispatch.HeaderErrorFirstFailed: tt.failure.FirstFailed, dispatch.HeaderErrorLastFailed: tt.failure.LastFailed} {
				v, _ := lastHeader(acked[0][0].Headers, k)
				got, err := time.Parse(time.RFC3339Nano, v)
				if err != nil || !got.Equal(want) || !strings.HasSuffix(v, "Z") {
					t.Errorf("header %s = %q, want %v in UTC", k, v, want)
				}
			}
			if tt.rec.Key == nil && acked[0][0].Key != nil {
				t.Errorf("nil key became %q", acked[0][0].Key)
			}
			// The consumed record is never modified.
			if !headersEqual(tt.rec.Headers, orig.Headers) || len(tt.rec.Headers) != len(orig.Headers) ||
				!bytes.Equal(tt.rec.Key, orig.Key) || !bytes.Equal(tt.rec.Value, orig.Value) {
				t.Errorf("the original record was modified: %+v", tt.rec)
			}
			if got := ev.kinds(); !slices.Equal(got, []string{evDeadLettered}) {
				t.Fatalf("events = %v, want [deadlettered]", got)
			}
			if e := ev.of(evDeadLettered)[0]; e.rec != tt.rec || e.failure != tt.failure {
				t.Errorf("DeadLettered event = %+v, want the record and its failure", e)
			}
			if got := inner.calls(); got != 1 {
				t.Errorf("inner target called %d times, want 1", got)
			}
		})
	}
}

func TestDeadLetterThroughChain(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		errs        []error // one per attempt, the last repeated
		maxAttempts int
		want        map[string]string
	}{
		{
			name:        "permanent on the first attempt",
			errs:        []error{&target.Error{Kind: target.Permanent, Status: 422, Err: errors.New("webhook: 422 Unprocessable Entity")}},
			maxAttempts: 5,
			want: map[string]string{
				dispatch.HeaderErrorAttempts: "1",
				dispatch.HeaderErrorStatus:   "422",
				dispatch.HeaderErrorKind:     "permanent",
				dispatch.HeaderErrorMessage:  "webhook: 422 Unprocessable Entity",
			},
		},
		{
			name: "retries exhausted",
			errs: []error{
				&target.Error{Kind: target.Retryable, Status: 500, Err: errors.New("webhook: 500 Internal Server Error")},
				errors.New("webhook: connection refused"),
				&target.Error{Kind: target.Retryable, Status: 503, Err: errors.New("webhook: 503 Service Unavailable")},
			},
			maxAttempts: 3,
			want: map[string]string{
				dispatch.HeaderErrorAttempts: "3",
				dispatch.HeaderErrorStatus:   "503",
				dispatch.HeaderErrorKind:     "retryable",
				dispatch.HeaderErrorMessage:  "webhook: 503 Service Unavailable",
			},
		},
		{
			name: "permanent after retries",
			errs: []error{
				errors.New("webhook: timeout"),
				&target.Error{Kind: target.Permanent, Status: 401, Err: errors.New("webhook: 401 Unauthorized")},
			},
			maxAttempts: 5,
			want: map[string]string{
				dispatch.HeaderErrorAttempts: "2",
				dispatch.HeaderErrorStatus:   "401",
				dispatch.HeaderErrorKind:     "permanent",
				dispatch.HeaderErrorMessage:  "webhook: 401 Unauthorized",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var stepList []func(context.Context, *target.Delivery) (*target.Result, error)
			for _, err := range tt.errs {
				stepList = append(stepList, fail(err))
			}
			tg := &script{steps: stepList}
			prod := &producer{}
			ev := &recorder{}
			rec := testRecord()
			chain := target.Chain(tg,
				dispatch.DeadLetter(dlqPolicy(), prod, ev),
				dispatch.Reply("orders.replies", prod, ev, time.Millisecond),
				dispatch.Retry(fastPolicy(tt.maxAttempts), ev),
			)
			res, err := deliverNow(t, t.Context(), chain, delivery(rec))
			if err != nil || res != nil {
				t.Fatalf("Deliver = %v, %v; want nil, nil", res, err)
			}
			acked := prod.acked()
			if len(acked) != 1 || len(acked[0]) != 1 {
				t.Fatalf("produced %v, want one dead-letter record", acked)
			}
			out := acked[0][0]
			want := map[string]string{
				dispatch.HeaderErrorRoute:     "orders-webhook",
				dispatch.HeaderErrorTopic:     "orders",
				dispatch.HeaderErrorPartition: "3",
				dispatch.HeaderErrorOffset:    "42",
			}
			for k, v := range tt.want {
				want[k] = v
			}
			checkDeadLetter(t, out, rec, want)
			dl := ev.of(evDeadLettered)
			if len(dl) != 1 {
				t.Fatalf("DeadLettered events = %d, want 1", len(dl))
			}
			f := dl[0].failure
			for k, tm := range map[string]time.Time{dispatch.HeaderErrorFirstFailed: f.FirstFailed, dispatch.HeaderErrorLastFailed: f.LastFailed} {
				if v, _ := lastHeader(out.Headers, k); v != tm.UTC().Format(time.RFC3339Nano) {
					t.Errorf("header %s = %q, want %q", k, v, tm.UTC().Format(time.RFC3339Nano))
				}
			}
			if f.LastFailed.Before(f.FirstFailed) {
				t.Errorf("LastFailed %v before FirstFailed %v", f.LastFailed, f.FirstFailed)
			}
		})
	}
}

func TestDeadLetterWrappedFailure(t *testing.T) {
	t.Parallel()
	f := &dispatch.Failure{Attempts: 2, FirstFailed: time.Now(), LastFailed: time.Now(), Err: errBoom}
	prod := &producer{}
	ev := &recorder{}
	res, err := deliverNow(t, t.Context(), dispatch.DeadLetter(dlqPolicy(), prod, ev)(failing(fmt.Errorf("breaker: %w", f))), delivery(testRecord()))
	if err != nil || res != nil {
		t.Fatalf("Deliver = %v, %v; want nil, nil", res, err)
	}
	if got := len(prod.acked()); got != 1 {
		t.Errorf("produced %d calls, want 1", got)
	}
	if dl := ev.of(evDeadLettered); len(dl) != 1 || dl[0].failure != f {
		t.Errorf("DeadLettered events = %+v, want one with the wrapped failure", dl)
	}
}

func TestDeadLetterProducerRecovers(t *testing.T) {
	t.Parallel()
	for _, failures := range []int{1, 2} {
		t.Run(fmt.Sprintf("%d failures", failures), func(t *testing.T) {
			t.Parallel()
			rec := testRecord()
			f := &dispatch.Failure{Attempts: 1, FirstFailed: time.Now(), LastFailed: time.Now(), Err: target.NewPermanent(errBoom)}
			prod := &producer{fail: failTimes(failures, errProduce)}
			ev := &recorder{}
			p := dlqPolicy()
			res, err := deliverNow(t, t.Context(), dispatch.DeadLetter(p, prod, ev)(failing(f)), delivery(rec))
			if err != nil || res != nil {
				t.Fatalf("Deliver = %v, %v; want nil, nil", res, err)
			}
			if got := prod.callCount(); got != failures+1 {
				t.Errorf("producer called %d times, want %d", got, failures+1)
			}
			calls := prod.allCalls()
			for i, c := range calls {
				if len(c) != 1 || c[0].Topic != dlqTopic || !bytes.Equal(c[0].Value, rec.Value) {
					t.Errorf("produce call %d = %v, want the dead-letter record", i, c)
				}
			}
			if got, want := ev.kinds(), []string{evStuck, evUnstuck, evDeadLettered}; !slices.Equal(got, want) {
				t.Fatalf("events = %v, want %v", got, want)
			}
			stuck := ev.of(evStuck)[0]
			if stuck.rec != rec || !errors.Is(stuck.err, errProduce) {
				t.Errorf("Stuck event = %+v, want the record and the producer's error", stuck)
			}
			if u := ev.of(evUnstuck)[0]; u.rec != rec {
				t.Errorf("Unstuck event for the wrong record")
			}
		})
	}
}

func TestDeadLetterProducerNeverRecovers(t *testing.T) {
	t.Parallel()
	cause := errors.New("partition revoked")
	tests := []struct {
		name    string
		fail    func(ctx context.Context, n int) error
		end     func(cancel context.CancelCauseFunc, stop chan struct{})
		wantErr error
	}{
		{
			name:    "cancel",
			fail:    failAlways(errProduce),
			end:     func(cancel context.CancelCauseFunc, _ chan struct{}) { cancel(nil) },
			wantErr: context.Canceled,
		},
		{
			name:    "cancel with cause",
			fail:    failAlways(errProduce),
			end:     func(cancel context.CancelCauseFunc, _ chan struct{}) { cancel(cause) },
			wantErr: cause,
		},
		{
			name:    "stop",
			fail:    failAlways(errProduce),
			end:     func(_ context.CancelCauseFunc, stop chan struct{}) { close(stop) },
			wantErr: dispatch.ErrStopping,
		},
		{
			name: "producer blocks until canceled",
			fail: func(ctx context.Context, n int) error {
				if n == 1 {
					return errProduce
				}
				<-ctx.Done()
				return ctx.Err()
			},
			end:     func(cancel context.CancelCauseFunc, _ chan struct{}) { cancel(cause) },
			wantErr: cause,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithCancelCause(t.Context())
			defer cancel(nil)
			stop := make(chan struct{})
			ctx = dispatch.WithStop(ctx, stop)
			f := &dispatch.Failure{Attempts: 1, Err: target.NewPermanent(errBoom)}
			prod := &producer{fail: tt.fail}
			ev := &recorder{}
			p := dlqPolicy()
			p.Backoff = forever
			ch := start(ctx, dispatch.DeadLetter(p, prod, ev)(failing(f)), delivery(testRecord()))
			waitFor(t, "the record to be stuck", func() bool { return ev.count(evStuck) == 1 && prod.callCount() >= 1 })
			requireNotDone(t, ch, "DeadLetter")

			tt.end(cancel, stop)
			o := await(t, ch)
			if o.err == nil {
				t.Fatal("DeadLetter returned nil although the record was never written")
			}
			if !errors.Is(o.err, tt.wantErr) {
				t.Errorf("err = %v, want %v", o.err, tt.wantErr)
			}
			if o.res != nil {
				t.Errorf("result = %v, want nil", o.res)
			}
			if got := ev.count(evDeadLettered); got != 0 {
				t.Errorf("DeadLettered events = %d, want 0", got)
			}
			if got := len(prod.acked()); got != 0 {
				t.Errorf("acked %d writes, want 0", got)
			}
		})
	}
}

func TestDeadLetterContextAlreadyEnded(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	f := &dispatch.Failure{Attempts: 1, Err: target.NewPermanent(errBoom)}
	prod := &producer{fail: func(ctx context.Context, _ int) error { return ctx.Err() }}
	ev := &recorder{}
	_, err := deliverNow(t, ctx, dispatch.DeadLetter(dlqPolicy(), prod, ev)(failing(f)), delivery(testRecord()))
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
	if got := ev.count(evDeadLettered); got != 0 {
		t.Errorf("DeadLettered events = %d, want 0", got)
	}
}

func TestDeadLetterPassesOtherOutcomesThrough(t *testing.T) {
	t.Parallel()
	res := &target.Result{Outputs: []target.Output{{Value: []byte("x")}}}
	tests := []struct {
		name string
		res  *target.Result
		err  error
	}{
		{"success with result", res, nil},
		{"success without result", nil, nil},
		{"plain error", nil, errBoom},
		{"gone", nil, &target.Error{Kind: target.Gone, Status: 410, Err: errBoom}},
		{"permanent error that is not a Failure", nil, target.NewPermanent(errBoom)},
		{"canceled", nil, context.Canceled},
		{"stopping", nil, dispatch.ErrStopping},
		{"wrapped stopping", nil, fmt.Errorf("retry: %w", dispatch.ErrStopping)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			inner := &script{steps: steps(0, nil, func(context.Context, *target.Delivery) (*target.Result, error) { return tt.res, tt.err })}
			prod := &producer{}
			ev := &recorder{}
			gotRes, err := deliverNow(t, t.Context(), dispatch.DeadLetter(dlqPolicy(), prod, ev)(inner), delivery(testRecord()))
			if err != tt.err {
				t.Errorf("err = %v, want %v unchanged", err, tt.err)
			}
			if gotRes != tt.res {
				t.Errorf("result = %v, want %v", gotRes, tt.res)
			}
			if got := prod.callCount(); got != 0 {
				t.Errorf("producer called %d times, want 0", got)
			}
			if got := ev.kinds(); len(got) != 0 {
				t.Errorf("events = %v, want none", got)
			}
			if got := inner.calls(); got != 1 {
				t.Errorf("inner target called %d times, want 1", got)
			}
		})
	}
}

func TestDeadLetterNoTopicParks(t *testing.T) {
	t.Parallel()
	for _, failures := range []int{1, 3} {
		t.Run(fmt.Sprintf("%d failures", failures), func(t *testing.T) {
			t.Parallel()
			want := &target.Result{}
			f := &dispatch.Failure{Attempts: 1, Err: target.NewPermanent(errBoom)}
			inner := &script{steps: steps(failures, fail(f), ok(want))}
			prod := &producer{}
			ev := &recorder{}
			rec := testRecord()
			p := dlqPolicy()
			p.Topic = ""
			res, err := deliverNow(t, t.Context(), dispatch.DeadLetter(p, prod, ev)(inner), delivery(rec))
			if err != nil || res != want {
				t.Fatalf("Deliver = %v, %v; want the eventual result", res, err)
			}
			if got := inner.calls(); got != failures+1 {
				t.Errorf("inner target called %d times, want %d", got, failures+1)
			}
			if got := prod.callCount(); got != 0 {
				t.Errorf("producer called %d times, want 0", got)
			}
			if got, want := ev.kinds(), []string{evStuck, evUnstuck}; !slices.Equal(got, want) {
				t.Fatalf("events = %v, want %v", got, want)
			}
			stuck := ev.of(evStuck)[0]
			var sf *dispatch.Failure
			if stuck.rec != rec || !errors.As(stuck.err, &sf) || sf != f {
				t.Errorf("Stuck event = %+v, want the record and its failure", stuck)
			}
		})
	}
}

func TestDeadLetterNoTopicRedeliversAfterBackoff(t *testing.T) {
	t.Parallel()
	f := &dispatch.Failure{Attempts: 1, Err: target.NewPermanent(errBoom)}
	inner := &script{steps: steps(1, fail(f), ok(&target.Result{}))}
	ev := &recorder{}
	p := dlqPolicy()
	p.Topic = ""
	p.Backoff = forever
	stop := make(chan struct{})
	ch := start(dispatch.WithStop(t.Context(), stop), dispatch.DeadLetter(p, &producer{}, ev)(inner), delivery(testRecord()))
	waitFor(t, "the record to be parked", func() bool { return ev.count(evStuck) == 1 })
	requireNotDone(t, ch, "DeadLetter")
	if got := inner.calls(); got != 1 {
		t.Errorf("inner target called %d times while parked, want 1: it must wait Backoff before the next cycle", got)
	}
	close(stop)
	o := await(t, ch)
	if !errors.Is(o.err, dispatch.ErrStopping) {
		t.Errorf("err = %v, want ErrStopping", o.err)
	}
}

func TestDeadLetterNoTopicParkedUntilContextEnds(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		end     func(cancel context.CancelFunc, stop chan struct{})
		wantErr error
	}{
		{"cancel", func(cancel context.CancelFunc, _ chan struct{}) { cancel() }, context.Canceled},
		{"stop", func(_ context.CancelFunc, stop chan struct{}) { close(stop) }, dispatch.ErrStopping},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			stop := make(chan struct{})
			ctx = dispatch.WithStop(ctx, stop)
			f := &dispatch.Failure{Attempts: 1, Err: target.NewPermanent(errBoom)}
			ev := &recorder{}
			p := dlqPolicy()
			p.Topic = ""
			// Backoff short: the record cycles while the test waits.
			ch := start(ctx, dispatch.DeadLetter(p, &producer{}, ev)(failing(f)), delivery(testRecord()))
			waitFor(t, "the record to be parked", func() bool { return ev.count(evStuck) == 1 })
			tt.end(cancel, stop)
			o := await(t, ch)
			if o.err == nil {
				t.Fatal("DeadLetter returned nil for a record that never reached a terminal outcome")
			}
			if !errors.Is(o.err, tt.wantErr) {
				t.Errorf("err = %v, want %v", o.err, tt.wantErr)
			}
			if got := ev.count(evStuck); got != 1 {
				t.Errorf("Stuck events = %d, want 1 however many cycles", got)
			}
			if got := ev.count(evDeadLettered); got != 0 {
				t.Errorf("DeadLettered events = %d, want 0", got)
			}
		})
	}
}

func TestDeadLetterTruncatesErrorMessage(t *testing.T) {
	t.Parallel()
	for _, n := range []int{0, 1, 1023, 1024, 1025, 4096, 100_000} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			t.Parallel()
			msg := strings.Repeat("abcdefghij", n/10+1)[:n]
			f := &dispatch.Failure{Attempts: 1, Err: target.NewPermanent(errors.New(msg))}
			prod := &producer{}
			_, err := deliverNow(t, t.Context(), dispatch.DeadLetter(dlqPolicy(), prod, &recorder{})(failing(f)), delivery(testRecord()))
			if err != nil {
				t.Fatalf("Deliver: %v", err)
			}
			acked := prod.acked()
			if len(acked) != 1 {
				t.Fatalf("produced %d calls, want 1", len(acked))
			}
			got, found := lastHeader(acked[0][0].Headers, dispatch.HeaderErrorMessage)
			if !found {
				t.Fatal("error header missing")
			}
			want := msg[:min(n, 1024)]
			if got != want {
				t.Errorf("error header has %d bytes, want the first %d bytes of the message", len(got), len(want))
			}
		})
	}
}

// A record's timestamp goes into hookbridge-error-timestamp as RFC 3339 when
// RFC 3339 can write it, and as Unix milliseconds past year 9999; either
// reads back as the same instant, to the millisecond Kafka keeps.
func TestRecordTimeRoundTrip(t *testing.T) {
	for _, tt := range []struct {
		at   time.Time
		text string
	}{
		{time.Date(2001, 2, 3, 4, 5, 6, 7_000_000, time.UTC), "2001-02-03T04:05:06.007Z"},
		{time.UnixMilli(-1), "1969-12-31T23:59:59.999Z"},
		{time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), "253402300800000"},
	} {
		got := dispatch.FormatRecordTime(tt.at)
		if got != tt.text {
			t.Errorf("FormatRecordTime(%s) = %q, want %q", tt.at, got, tt.text)
		}
		back, ok := dispatch.ParseRecordTime(got)
		if !ok || !back.Equal(tt.at) {
			t.Errorf("ParseRecordTime(%q) = %s, %t; want %s", got, back, ok, tt.at)
		}
	}
	if _, ok := dispatch.ParseRecordTime("yesterday"); ok {
		t.Error(`ParseRecordTime("yesterday") succeeded`)
	}
}
