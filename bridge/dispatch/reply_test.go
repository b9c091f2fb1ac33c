package dispatch_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hookbridge/hookbridge/bridge/dispatch"
	"github.com/hookbridge/hookbridge/bridge/target"
)

const replyTopic = "orders.replies"

func checkOutputs(t *testing.T, got, want []target.Output) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("produced %d records %v, want %d %v", len(got), got, len(want), want)
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Topic != w.Topic {
			t.Errorf("output %d: topic %q, want %q", i, g.Topic, w.Topic)
		}
		if (g.Key == nil) != (w.Key == nil) || !bytes.Equal(g.Key, w.Key) {
			t.Errorf("output %d: key %q (nil %v), want %q (nil %v)", i, g.Key, g.Key == nil, w.Key, w.Key == nil)
		}
		if !bytes.Equal(g.Value, w.Value) {
			t.Errorf("output %d: value %q, want %q", i, g.Value, w.Value)
		}
		if !headersEqual(g.Headers, w.Headers) {
			t.Errorf("output %d: headers %v, want %v", i, g.Headers, w.Headers)
		}
	}
}

// checkReplies checks the records a route's Reply layer produced for
// testRecord, delivered by delivery: each ends with the reply headers (the
// route, the record's ID and the output's index in the answer: indexes[i],
// or i when indexes is nil), and is otherwise want[i].
func checkReplies(t *testing.T, got, want []target.Output, indexes []int) {
	t.Helper()
	trimmed := make([]target.Output, len(got))
	for i, g := range got {
		index := i
		if indexes != nil && i < len(indexes) {
			index = indexes[i]
		}
		n := len(g.Headers) - 3
		if n < 0 {
			t.Fatalf("output %d: headers %v, want the reply headers at the end", i, g.Headers)
		}
		wantTail := []target.Header{
			{Key: dispatch.HeaderReplyRoute, Value: []byte("orders-webhook")},
			{Key: dispatch.HeaderReplySource, Value: []byte("orders-3-42")},
			{Key: dispatch.HeaderReplyIndex, Value: []byte(strconv.Itoa(index))},
		}
		if !headersEqual(g.Headers[n:], wantTail) {
			t.Errorf("output %d: reply headers %v, want %v", i, g.Headers[n:], wantTail)
		}
		g.Headers = g.Headers[:n:n]
		if n == 0 {
			g.Headers = nil
		}
		trimmed[i] = g
	}
	checkOutputs(t, trimmed, want)
}

func TestReplyProducesOutputs(t *testing.T) {
	t.Parallel()
	hdrs := []target.Header{{Key: "content-type", Value: []byte("application/json")}, {Key: "bin", Value: []byte{0xff, 0x00}}}
	recKey := []byte("customer-7")
	tests := []struct {
		name   string
		topic  string // the route's reply topic
		recKey []byte
		outs   []target.Output
		want   []target.Output // nil: nothing produced
		from   []int           // the index in outs of each of want; nil: 0, 1, ...
	}{
		{
			name:   "nil key takes the record's key",
			topic:  replyTopic,
			recKey: recKey,
			outs:   []target.Output{{Value: []byte(`{"ok":true}`), Headers: hdrs}},
			want:   []target.Output{{Topic: replyTopic, Key: recKey, Value: []byte(`{"ok":true}`), Headers: hdrs}},
		},
		{
			name:   "nil key and nil record key stay nil",
			topic:  replyTopic,
			recKey: nil,
			outs:   []target.Output{{Value: []byte("v")}},
			want:   []target.Output{{Topic: replyTopic, Key: nil, Value: []byte("v")}},
		},
		{
			name:   "own key is kept",
			topic:  replyTopic,
			recKey: recKey,
			outs:   []target.Output{{Key: []byte("other"), Value: []byte("v")}},
			want:   []target.Output{{Topic: replyTopic, Key: []byte("other"), Value: []byte("v")}},
		},
		{
			name:   "empty key is not nil and is kept",
			topic:  replyTopic,
			recKey: recKey,
			outs:   []target.Output{{Key: []byte{}, Value: []byte("v")}},
			want:   []target.Output{{Topic: replyTopic, Key: []byte{}, Value: []byte("v")}},
		},
		{
			name:   "own topic is kept",
			topic:  replyTopic,
			recKey: recKey,
			outs:   []target.Output{{Topic: "audit", Value: []byte("v")}},
			want:   []target.Output{{Topic: "audit", Key: recKey, Value: []byte("v")}},
		},
		{
			name:   "own topic without a reply topic",
			topic:  "",
			recKey: recKey,
			outs:   []target.Output{{Topic: "audit", Key: []byte("k"), Value: []byte("v"), Headers: hdrs}},
			want:   []target.Output{{Topic: "audit", Key: []byte("k"), Value: []byte("v"), Headers: hdrs}},
		},
		{
			name:   "no topic at all is discarded",
			topic:  "",
			recKey: recKey,
			outs:   []target.Output{{Value: []byte("v")}, {Key: []byte("k"), Value: []byte("w")}},
			want:   nil,
		},
		{
			name:   "only outputs with a topic are produced, in order",
			topic:  "",
			recKey: recKey,
			outs: []target.Output{
				{Value: []byte("dropped")},
				{Topic: "a", Value: []byte("1")},
				{Value: []byte("dropped too")},
				{Topic: "b", Key: []byte("kb"), Value: []byte("2")},
			},
			want: []target.Output{
				{Topic: "a", Key: recKey, Value: []byte("1")},
				{Topic: "b", Key: []byte("kb"), Value: []byte("2")},
			},
			from: []int{1, 3},
		},
		{
			name:   "reply headers the handler set are replaced",
			topic:  replyTopic,
			recKey: recKey,
			outs: []target.Output{{Value: []byte("v"), Headers: []target.Header{
				{Key: dispatch.HeaderReplySource, Value: []byte("upstream-0-1")},
				{Key: "x", Value: []byte("1")},
				{Key: dispatch.HeaderReplyIndex, Value: []byte("7")},
				{Key: dispatch.HeaderReplyRoute, Value: []byte("upstream")},
			}}},
			want: []target.Output{{Topic: replyTopic, Key: recKey, Value: []byte("v"), Headers: []target.Header{{Key: "x", Value: []byte("1")}}}},
		},
		{
			name:   "several outputs in one write, in order",
			topic:  replyTopic,
			recKey: recKey,
			outs: []target.Output{
				{Value: []byte("1")},
				{Topic: "audit", Value: []byte("2")},
				{Key: []byte("k3"), Value: []byte{0x00, 0xff}, Headers: hdrs},
				{Value: nil},
			},
			want: []target.Output{
				{Topic: replyTopic, Key: recKey, Value: []byte("1")},
				{Topic: "audit", Key: recKey, Value: []byte("2")},
				{Topic: replyTopic, Key: []byte("k3"), Value: []byte{0x00, 0xff}, Headers: hdrs},
				{Topic: replyTopic, Key: recKey, Value: nil},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rec := testRecord()
			rec.Key = tt.recKey
			res := &target.Result{Outputs: tt.outs}
			orig := cloneOutputs(tt.outs)
			prod := &producer{}
			ev := &recorder{}
			inner := &script{steps: steps(0, nil, ok(res))}
			got, err := deliverNow(t, t.Context(), dispatch.Reply(tt.topic, prod, ev, time.Millisecond)(inner), delivery(rec))
			if err != nil {
				t.Fatalf("Deliver: %v", err)
			}
			if got != res {
				t.Errorf("result = %v, want the target's result", got)
			}
			acked := prod.acked()
			if tt.want == nil {
				if n := prod.callCount(); n != 0 {
					t.Errorf("producer called %d times (%v), want 0", n, acked)
				}
			} else {
				if len(acked) != 1 {
					t.Fatalf("producer acked %d calls, want one write with every output", len(acked))
				}
				checkReplies(t, acked[0], tt.want, tt.from)
			}
			// The target's result is left as it was.
			checkOutputs(t, res.Outputs, orig)
			if got := ev.kinds(); len(got) != 0 {
				t.Errorf("events = %v, want none", got)
			}
		})
	}
}

func TestReplyNothingToProduce(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		res  *target.Result
	}{
		{"nil result", nil},
		{"nil outputs", &target.Result{}},
		{"empty outputs", &target.Result{Outputs: []target.Output{}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			prod := &producer{}
			got, err := deliverNow(t, t.Context(), dispatch.Reply(replyTopic, prod, &recorder{}, time.Millisecond)(&script{steps: steps(0, nil, ok(tt.res))}), delivery(testRecord()))
			if err != nil || got != tt.res {
				t.Errorf("Deliver = %v, %v; want %v, nil", got, err, tt.res)
			}
			if n := prod.callCount(); n != 0 {
				t.Errorf("producer called %d times, want 0", n)
			}
		})
	}
}

func TestReplyRetriesProduceUntilSuccess(t *testing.T) {
	t.Parallel()
	for _, failures := range []int{1, 2} {
		t.Run(fmt.Sprintf("%d failures", failures), func(t *testing.T) {
			t.Parallel()
			rec := testRecord()
			res := &target.Result{Outputs: []target.Output{{Value: []byte("reply")}}}
			prod := &producer{fail: failTimes(failures, errProduce)}
			ev := &recorder{}
			inner := &script{steps: steps(0, nil, ok(res))}
			got, err := deliverNow(t, t.Context(), dispatch.Reply(replyTopic, prod, ev, time.Millisecond)(inner), delivery(rec))
			if err != nil || got != res {
				t.Fatalf("Deliver = %v, %v; want the target's result", got, err)
			}
			// Success is reported only after the write was acknowledged.
			if n := prod.callCount(); n != failures+1 {
				t.Errorf("producer called %d times, want %d", n, failures+1)
			}
			acked := prod.acked()
			if len(acked) != 1 {
				t.Fatalf("acked %d writes, want 1", len(acked))
			}
			checkReplies(t, acked[0], []target.Output{{Topic: replyTopic, Key: rec.Key, Value: []byte("reply")}}, nil)
			if got := inner.calls(); got != 1 {
				t.Errorf("target called %d times, want 1: a failed reply write must not redeliver", got)
			}
			if got, want := ev.kinds(), []string{evStuck, evUnstuck}; !slices.Equal(got, want) {
				t.Fatalf("events = %v, want %v", got, want)
			}
			if s := ev.of(evStuck)[0]; s.rec != rec || !errors.Is(s.err, errProduce) {
				t.Errorf("Stuck event = %+v, want the record and the producer's error", s)
			}
		})
	}
}

func TestReplyProduceFailsUntilContextEnds(t *testing.T) {
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
			res := &target.Result{Outputs: []target.Output{{Value: []byte("reply")}}}
			prod := &producer{fail: failAlways(errProduce)}
			ev := &recorder{}
			ch := start(ctx, dispatch.Reply(replyTopic, prod, ev, forever)(&script{steps: steps(0, nil, ok(res))}), delivery(testRecord()))
			waitFor(t, "the record to be stuck", func() bool { return ev.count(evStuck) == 1 })
			requireNotDone(t, ch, "Reply")
			tt.end(cancel, stop)
			o := await(t, ch)
			if o.err == nil {
				t.Fatal("Reply returned nil although its outputs were never written")
			}
			if !errors.Is(o.err, tt.wantErr) {
				t.Errorf("err = %v, want %v", o.err, tt.wantErr)
			}
			if o.res != nil {
				t.Errorf("result = %v, want nil", o.res)
			}
		})
	}
}

func TestReplyPassesErrorsThrough(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		err  error
	}{
		{"plain error", errBoom},
		{"failure", &dispatch.Failure{Attempts: 3, Err: errBoom}},
		{"gone", &target.Error{Kind: target.Gone, Status: 410, Err: errBoom}},
		{"canceled", context.Canceled},
		{"stopping", dispatch.ErrStopping},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			// Even a result with outputs is not produced when the call failed.
			res := &target.Result{Outputs: []target.Output{{Topic: "audit", Value: []byte("v")}}}
			inner := &script{steps: steps(0, nil, func(context.Context, *target.Delivery) (*target.Result, error) { return res, tt.err })}
			prod := &producer{}
			ev := &recorder{}
			_, err := deliverNow(t, t.Context(), dispatch.Reply(replyTopic, prod, ev, time.Millisecond)(inner), delivery(testRecord()))
			if err != tt.err {
				t.Errorf("err = %v, want %v unchanged", err, tt.err)
			}
			if n := prod.callCount(); n != 0 {
				t.Errorf("producer called %d times, want 0", n)
			}
			if got := ev.kinds(); len(got) != 0 {
				t.Errorf("events = %v, want none", got)
			}
		})
	}
}

func TestReplyOnceAfterRetries(t *testing.T) {
	t.Parallel()
	res := &target.Result{Outputs: []target.Output{{Value: []byte("reply")}}}
	tg := &script{steps: steps(2, fail(errBoom), ok(res))}
	prod := &producer{}
	ev := &recorder{}
	rec := testRecord()
	chain := target.Chain(tg,
		dispatch.DeadLetter(dlqPolicy(), prod, ev),
		dispatch.Reply(replyTopic, prod, ev, time.Millisecond),
		dispatch.Retry(fastPolicy(5), ev),
	)
	got, err := deliverNow(t, t.Context(), chain, delivery(rec))
	if err != nil || got != res {
		t.Fatalf("Deliver = %v, %v; want the target's result", got, err)
	}
	acked := prod.acked()
	if len(acked) != 1 {
		t.Fatalf("acked %d writes, want 1 (outputs of the successful attempt only)", len(acked))
	}
	checkReplies(t, acked[0], []target.Output{{Topic: replyTopic, Key: rec.Key, Value: []byte("reply")}}, nil)
	if got := ev.count(evDeadLettered); got != 0 {
		t.Errorf("DeadLettered events = %d, want 0", got)
	}
}

// A reply the broker refuses for what it is (too large for its
// message.max.bytes, say: target.Permanent from the producer) cannot be
// written by trying again. The record fails and is dead-lettered with the
// reason, instead of holding its partition for good, and the target is not
// called again. A dead-letter write refused the same way is never given up:
// the record stays stuck.
func TestReplyRefusedByTheBrokerIsDeadLettered(t *testing.T) {
	t.Parallel()
	const dlq = "orders.dlq"
	refused := target.NewPermanent(errors.New("kafka server: Message was too large, server rejected it to avoid allocation error"))
	for _, dlqRefused := range []bool{false, true} {
		t.Run(fmt.Sprintf("dead-letter write refused: %v", dlqRefused), func(t *testing.T) {
			t.Parallel()
			rec := testRecord()
			res := &target.Result{Outputs: []target.Output{{Value: []byte("a reply too large")}}}
			prod := &producer{}
			prod.fail = func(context.Context, int) error {
				calls := prod.allCalls()
				if last := calls[len(calls)-1]; last[0].Topic == replyTopic || dlqRefused {
					return refused
				}
				return nil
			}
			ev := &recorder{}
			inner := &script{steps: steps(0, nil, ok(res))}
			chain := target.Chain(inner,
				dispatch.DeadLetter(dispatch.DeadLetterPolicy{Route: "r", Group: "g", Topic: dlq, Backoff: time.Millisecond}, prod, ev),
				dispatch.Reply(replyTopic, prod, ev, time.Millisecond))
			if dlqRefused {
				ctx, cancel := context.WithCancel(t.Context())
				ch := start(ctx, chain, delivery(rec))
				waitFor(t, "the record to be stuck on its dead-letter write", func() bool { return ev.count(evStuck) == 1 && prod.callCount() >= 3 })
				requireNotDone(t, ch, "a record whose dead-letter write is refused")
				cancel()
				if o := await(t, ch); o.err == nil {
					t.Fatal("nil after a dead-letter write that never succeeded")
				}
				return
			}
			got, err := deliverNow(t, t.Context(), chain, delivery(rec))
			if err != nil || got != nil {
				t.Fatalf("Deliver = %v, %v; want nil, nil (dead-lettered)", got, err)
			}
			acked := prod.acked()
			if len(acked) != 1 || acked[0][0].Topic != dlq {
				t.Fatalf("acknowledged writes %v, want the record on %s", acked, dlq)
			}
			h := map[string]string{}
			for _, hd := range acked[0][0].Headers {
				h[hd.Key] = string(hd.Value)
			}
			if msg := h[dispatch.HeaderErrorMessage]; !strings.Contains(msg, "writing its replies") || !strings.Contains(msg, "too large") {
				t.Errorf("%s = %q, want the refused reply named", dispatch.HeaderErrorMessage, msg)
			}
			if k := h[dispatch.HeaderErrorKind]; k != target.Permanent.String() {
				t.Errorf("%s = %q, want %q", dispatch.HeaderErrorKind, k, target.Permanent)
			}
			if n := inner.calls(); n != 1 {
				t.Errorf("target called %d times, want 1", n)
			}
			if got, want := ev.kinds(), []string{evDeadLettered}; !slices.Equal(got, want) {
				t.Errorf("events = %v, want %v", got, want)
			}
		})
	}
}
