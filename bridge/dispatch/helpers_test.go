package dispatch_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hookbridge/hookbridge/bridge/dispatch"
	"github.com/hookbridge/hookbridge/bridge/target"
)

// guard bounds how long a test waits for something that must happen. It is a
// deadlock guard, not a timing assertion: everything the tests wait for
// happens within milliseconds, and the waits the code under test could fall
// into by mistake are an hour long.
const guard = 20 * time.Second

// forever is a backoff no test may sit out.
const forever = time.Hour

// Event kinds recorded by recorder.
const (
	evAttempted    = "attempted"
	evRetrying     = "retrying"
	evDelivered    = "delivered"
	evWaiting      = "waiting"
	evDeadLettered = "deadlettered"
	evStuck        = "stuck"
	evUnstuck      = "unstuck"
)

// event is one call to dispatch.Events, copied at the time of the call.
type event struct {
	kind    string
	attempt int // Delivery.Attempt, for delivery events
	route   string
	rec     *target.Record
	wait    time.Duration
	err     error
	failure *dispatch.Failure
}

// recorder is a dispatch.Events that records every call. It is safe for
// concurrent use and never blocks.
type recorder struct {
	mu     sync.Mutex
	events []event
}

var _ dispatch.Events = (*recorder)(nil)

func (r *recorder) add(e event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

func (r *recorder) Attempted(_ context.Context, d *target.Delivery, _ time.Duration, err error) {
	r.add(event{kind: evAttempted, attempt: d.Attempt, route: d.Route, rec: d.Record, err: err})
}

func (r *recorder) Retrying(_ context.Context, d *target.Delivery, wait time.Duration, err error) {
	r.add(event{kind: evRetrying, attempt: d.Attempt, route: d.Route, rec: d.Record, wait: wait, err: err})
}

func (r *recorder) Waiting(_ context.Context, d *target.Delivery, open *dispatch.BreakerOpenError) {
	r.add(event{kind: evWaiting, attempt: d.Attempt, route: d.Route, rec: d.Record, err: open})
}

func (r *recorder) Delivered(_ context.Context, d *target.Delivery) {
	r.add(event{kind: evDelivered, attempt: d.Attempt, route: d.Route, rec: d.Record})
}

func (r *recorder) DeadLettered(_ context.Context, rec *target.Record, f *dispatch.Failure) {
	r.add(event{kind: evDeadLettered, rec: rec, failure: f})
}

func (r *recorder) Stuck(_ context.Context, rec *target.Record, err error) {
	r.add(event{kind: evStuck, rec: rec, err: err})
}

func (r *recorder) Unstuck(_ context.Context, rec *target.Record) {
	r.add(event{kind: evUnstuck, rec: rec})
}

// all returns a copy of the events recorded so far.
func (r *recorder) all() []event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

// of returns the events of one kind, in order.
func (r *recorder) of(kind string) []event {
	var out []event
	for _, e := range r.all() {
		if e.kind == kind {
			out = append(out, e)
		}
	}
	return out
}

// count returns how many events of kind were recorded.
func (r *recorder) count(kind string) int { return len(r.of(kind)) }

// kinds returns the kinds of all events, in order, leaving out the kinds in skip.
func (r *recorder) kinds(skip ...string) []string {
	var out []string
	for _, e := range r.all() {
		if !slices.Contains(skip, e.kind) {
			out = append(out, e.kind)
		}
	}
	return out
}

// producer is a fake dispatch.Producer. fail, when set, decides the outcome of
// call n (starting at 1); a nil error means the write was acknowledged. Every
// call is recorded with a deep copy of its records.
type producer struct {
	fail func(ctx context.Context, n int) error

	mu       sync.Mutex
	calls    [][]target.Output // every call, failed or not
	produced [][]target.Output // acknowledged calls only
}

var _ dispatch.Producer = (*producer)(nil)

func (p *producer) Produce(ctx context.Context, recs []target.Output) error {
	cp := cloneOutputs(recs)
	p.mu.Lock()
	p.calls = append(p.calls, cp)
	n := len(p.calls)
	p.mu.Unlock()
	var err error
	if p.fail != nil {
		err = p.fail(ctx, n)
	}
	if err == nil {
		p.mu.Lock()
		p.produced = append(p.produced, cp)
		p.mu.Unlock()
	}
	return err
}

func (p *producer) callCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.calls)
}

func (p *producer) allCalls() [][]target.Output {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.calls)
}

func (p *producer) acked() [][]target.Output {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.produced)
}

// failTimes returns a producer outcome that fails the first n calls.
func failTimes(n int, err error) func(context.Context, int) error {
	return func(_ context.Context, call int) error {
		if call <= n {
			return err
		}
		return nil
	}
}

// failAlways returns a producer outcome that always fails.
func failAlways(err error) func(context.Context, int) error {
	return func(context.Context, int) error { return err }
}

func cloneOutputs(outs []target.Output) []target.Output {
	if outs == nil {
		return nil
	}
	cp := make([]target.Output, len(outs))
	for i, o := range outs {
		cp[i] = target.Output{
			Topic:   o.Topic,
			Key:     cloneBytes(o.Key),
			Value:   cloneBytes(o.Value),
			Headers: cloneHeaders(o.Headers),
		}
	}
	return cp
}

// cloneBytes copies b, keeping nil distinct from empty.
func cloneBytes(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append([]byte{}, b...)
}

func cloneHeaders(hs []target.Header) []target.Header {
	if hs == nil {
		return nil
	}
	cp := make([]target.Header, len(hs))
	for i, h := range hs {
		cp[i] = target.Header{Key: h.Key, Value: cloneBytes(h.Value)}
	}
	return cp
}

func cloneRecord(r *target.Record) *target.Record {
	cp := *r
	cp.Key = cloneBytes(r.Key)
	cp.Value = cloneBytes(r.Value)
	cp.Headers = cloneHeaders(r.Headers)
	return &cp
}

// script is a fake target that returns the outcomes in order, one per call,
// repeating the last one once they run out. It records the Attempt of every
// call. A nil step delivers with no result.
type script struct {
	steps []func(ctx context.Context, d *target.Delivery) (*target.Result, error)

	mu       sync.Mutex
	attempts []int
}

func (s *script) Deliver(ctx context.Context, d *target.Delivery) (*target.Result, error) {
	s.mu.Lock()
	s.attempts = append(s.attempts, d.Attempt)
	n := len(s.attempts)
	s.mu.Unlock()
	if len(s.steps) == 0 {
		return nil, nil
	}
	step := s.steps[min(n, len(s.steps))-1]
	if step == nil {
		return nil, nil
	}
	return step(ctx, d)
}

func (s *script) seen() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.attempts)
}

func (s *script) calls() int { return len(s.seen()) }

// fail is a script step that returns err.
func fail(err error) func(context.Context, *target.Delivery) (*target.Result, error) {
	return func(context.Context, *target.Delivery) (*target.Result, error) { return nil, err }
}

// ok is a script step that delivers with res.
func ok(res *target.Result) func(context.Context, *target.Delivery) (*target.Result, error) {
	return func(context.Context, *target.Delivery) (*target.Result, error) { return res, nil }
}

// steps builds n copies of step followed by the rest.
func steps(n int, step func(context.Context, *target.Delivery) (*target.Result, error), rest ...func(context.Context, *target.Delivery) (*target.Result, error)) []func(context.Context, *target.Delivery) (*target.Result, error) {
	out := make([]func(context.Context, *target.Delivery) (*target.Result, error), 0, n+len(rest))
	for range n {
		out = append(out, step)
	}
	return append(out, rest...)
}

// numbered returns distinct errors "<prefix> 1", "<prefix> 2", ... so a test
// can tell which attempt's error came back.
func numbered(prefix string, n int) []error {
	errs := make([]error, n)
	for i := range errs {
		errs[i] = fmt.Errorf("%s %d", prefix, i+1)
	}
	return errs
}

// testRecord returns a record with a key, a binary value and headers,
// including a repeated key and an empty value.
func testRecord() *target.Record {
	return &target.Record{
		Topic:     "orders",
		Partition: 3,
		Offset:    42,
		Key:       []byte("customer-7"),
		Value:     []byte{0x00, 0xff, 0xfe, '{', '}', 0x80},
		Headers: []target.Header{
			{Key: "content-type", Value: []byte("application/json")},
			{Key: "traceparent", Value: []byte("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")},
			{Key: "dup", Value: []byte("one")},
			{Key: "dup", Value: []byte("two")},
			{Key: "empty", Value: []byte{}},
			{Key: "bin", Value: []byte{0xc3, 0x28, 0x00}},
		},
		Timestamp: time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC),
	}
}

func delivery(rec *target.Record) *target.Delivery {
	return &target.Delivery{Route: "orders-webhook", Record: rec}
}

// outcome is what one call to Deliver returned.
type outcome struct {
	res *target.Result
	err error
}

// start calls tg.Deliver in a goroutine and returns a channel with its outcome.
func start(ctx context.Context, tg target.Target, d *target.Delivery) <-chan outcome {
	ch := make(chan outcome, 1)
	go func() {
		res, err := tg.Deliver(ctx, d)
		ch <- outcome{res, err}
	}()
	return ch
}

// await returns the outcome of a call started with start, failing the test
// if it does not come before the guard.
func await(t *testing.T, ch <-chan outcome) outcome {
	t.Helper()
	select {
	case o := <-ch:
		return o
	case <-time.After(guard):
		t.Fatalf("call did not return (deadlock guard %v)", guard)
		return outcome{}
	}
}

// deliverNow calls tg.Deliver under the deadlock guard.
func deliverNow(t *testing.T, ctx context.Context, tg target.Target, d *target.Delivery) (*target.Result, error) {
	t.Helper()
	o := await(t, start(ctx, tg, d))
	return o.res, o.err
}

// waitFor polls cond until it holds, failing the test at the guard.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(guard)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// requireNotDone fails the test if ch is already closed or ready.
func requireNotDone(t *testing.T, ch <-chan outcome, what string) {
	t.Helper()
	select {
	case o := <-ch:
		t.Fatalf("%s returned early: res=%v err=%v", what, o.res, o.err)
	default:
	}
}

func headersEqual(a, b []target.Header) bool {
	return slices.EqualFunc(a, b, func(x, y target.Header) bool {
		return x.Key == y.Key && bytes.Equal(x.Value, y.Value)
	})
}

var (
	errBoom    = errors.New("boom")
	errProduce = errors.New("kafka: not enough in-sync replicas")
)
