package sdk

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/hookbridge/hookbridge/sdk/handlerpb"
	"github.com/hookbridge/hookbridge/sdk/internal/inproc"
	"github.com/hookbridge/hookbridge/sdk/protocol"
)

// streamTimeout bounds a test's stream so that a deadlock fails the test
// (Recv returns DEADLINE_EXCEEDED) instead of hanging it. No assertion
// depends on it.
const streamTimeout = 30 * time.Second

// openStream serves h over gRPC on an in-process connection, with message
// limits of maxBytes on both sides, and opens a HandleStream stream to it.
// The stream's first message (ready) is left for the test to receive. When
// the test ends the stream is cancelled and the server stopped, after
// HandleStream and every call it ran returned.
func openStream(t *testing.T, h Handler, maxBytes int) (*service, handlerpb.Handler_HandleStreamClient) {
	t.Helper()
	svc := newService(h, slogDiscard(), maxBytes)
	srv := grpc.NewServer(append(protocol.ServerOptions(maxBytes), grpc.WaitForHandlers(true))...)
	handlerpb.RegisterHandlerServer(srv, svc)
	conn, stop, err := inproc.Serve(srv, maxBytes)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	ctx, cancel := context.WithTimeout(t.Context(), streamTimeout)
	t.Cleanup(cancel)
	st, err := handlerpb.NewHandlerClient(conn).HandleStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return svc, st
}

// countedEcho answers each message with its id (echoID) and counts the calls
// that ran it in ran.
func countedEcho(ran *atomic.Int32) Handler {
	return HandlerFunc(func(_ context.Context, msg *Message) (*Result, error) {
		ran.Add(1)
		return echoID(msg)
	})
}

// recvReady receives the stream's first message and fails the test unless
// it is the plugin's ready message: call_id 0 and nothing else.
func recvReady(t *testing.T, st handlerpb.Handler_HandleStreamClient) {
	t.Helper()
	m, err := st.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if m.GetCallId() != 0 || m.GetResponse() != nil || m.GetUnavailable() != "" || len(m.GetAnswers()) != 0 || !m.GetBatches() {
		t.Fatalf("first message = %v, want the ready message (call_id 0, batches, nothing else)", m)
	}
}

// streamCall is the StreamRequest of call id, for the record "t-0-<id>"
// whose value is that id.
func streamCall(id uint64) *handlerpb.StreamRequest {
	rid := fmt.Sprintf("t-0-%d", id)
	return &handlerpb.StreamRequest{CallId: id, Request: &handlerpb.HandleRequest{
		Id:      rid,
		Attempt: 1,
		Record:  &handlerpb.Record{Topic: "t", Offset: int64(id), Value: []byte(rid)},
	}}
}

func send(t *testing.T, st handlerpb.Handler_HandleStreamClient, req *handlerpb.StreamRequest) {
	t.Helper()
	if err := st.Send(req); err != nil {
		t.Fatal(err)
	}
}

func recv(t *testing.T, st handlerpb.Handler_HandleStreamClient) *handlerpb.StreamResponse {
	t.Helper()
	m, err := st.Recv()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// echoID answers a record with one output whose value is the record's ID,
// after checking that the record arrived intact.
func echoID(msg *Message) (*Result, error) {
	if string(msg.Value) != msg.ID {
		return nil, Permanent(fmt.Errorf("record %s has value %q", msg.ID, msg.Value))
	}
	return &Result{Outputs: []Output{{Value: []byte(msg.ID)}}}, nil
}

// outputValue is the value of the single output of a successful answer, or
// fails the test.
func outputValue(t *testing.T, m *handlerpb.StreamResponse) string {
	t.Helper()
	r := m.GetResponse()
	if m.GetUnavailable() != "" || r.GetError() != nil || len(r.GetOutputs()) != 1 {
		t.Fatalf("answer to call %d = %v, want one output", m.GetCallId(), m)
	}
	return string(r.GetOutputs()[0].GetValue())
}

// TestHandleStreamRunsCallsConcurrently proves that the plugin says it is
// ready first, then runs the calls of a stream concurrently and answers each
// exactly once, in the order they finish rather than the order they came:
// call 1 cannot finish until the host has call 2's answer.
func TestHandleStreamRunsCallsConcurrently(t *testing.T) {
	const n = 50
	answered2 := make(chan struct{})
	_, st := openStream(t, HandlerFunc(func(ctx context.Context, msg *Message) (*Result, error) {
		if msg.ID == "t-0-1" {
			select {
			case <-answered2:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		return echoID(msg)
	}), protocol.DefaultMaxMessageBytes)
	recvReady(t, st)
	for id := uint64(1); id <= n; id++ {
		send(t, st, streamCall(id))
	}
	got := make(map[uint64]string, n)
	var order []uint64
	for range n {
		m := recv(t, st)
		id := m.GetCallId()
		if _, dup := got[id]; dup {
			t.Fatalf("call %d answered twice", id)
		}
		got[id] = outputValue(t, m)
		order = append(order, id)
		if id == 2 {
			close(answered2)
		}
	}
	for id := uint64(1); id <= n; id++ {
		v, ok := got[id]
		switch {
		case !ok:
			t.Errorf("call %d not answered", id)
		case v != fmt.Sprintf("t-0-%d", id):
			t.Errorf("call %d answered with %q, want its own record's ID", id, v)
		}
	}
	if i1, i2 := slices.Index(order, 1), slices.Index(order, 2); i1 < i2 {
		t.Errorf("answer order %v: call 1 answered before call 2, want after", order)
	}
}

// TestHandleStreamCancelCancelsTheCall proves that a cancellation cancels
// the context of the call it names.
func TestHandleStreamCancelCancelsTheCall(t *testing.T) {
	started := make(chan struct{})
	ended := make(chan error, 1)
	_, st := openStream(t, HandlerFunc(func(ctx context.Context, _ *Message) (*Result, error) {
		close(started)
		<-ctx.Done()
		ended <- ctx.Err()
		return nil, ctx.Err()
	}), protocol.DefaultMaxMessageBytes)
	recvReady(t, st)
	send(t, st, streamCall(7))
	<-started
	send(t, st, &handlerpb.StreamRequest{CallId: 7, Cancel: true})
	if err := <-ended; !errors.Is(err, context.Canceled) {
		t.Errorf("handler's context ended with %v, want context.Canceled", err)
	}
}

// A call whose metadata carries grpc-timeout runs with that deadline, so its
// handler stops on time even if the host's cancel message never comes; one
// without it gets none of its own (only the stream's, here the test's).
func TestHandleStreamGivesTheCallItsDeadline(t *testing.T) {
	ended := make(chan error, 2)
	_, st := openStream(t, HandlerFunc(func(ctx context.Context, msg *Message) (*Result, error) {
		if dl, ok := ctx.Deadline(); !ok || time.Until(dl) > 5*time.Second {
			ended <- nil
			return echoID(msg)
		}
		<-ctx.Done()
		ended <- ctx.Err()
		return nil, ctx.Err()
	}), protocol.DefaultMaxMessageBytes)
	recvReady(t, st)
	timed := streamCall(7)
	timed.Metadata = map[string]string{protocol.MetadataTimeout: protocol.EncodeTimeout(20 * time.Millisecond)}
	send(t, st, timed) // no cancel message follows
	if err := <-ended; !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("the handler's context ended with %v, want its deadline", err)
	}
	if m := recv(t, st); m.GetCallId() != 7 || m.GetResponse().GetError() == nil {
		t.Fatalf("answer %v, want call 7's error", m)
	}
	send(t, st, streamCall(8))
	if err := <-ended; err != nil {
		t.Fatalf("a call without grpc-timeout: %v", err)
	}
}

// TestHandleStreamContinuesTheCallsTrace proves that a call's handler runs
// in the trace whose context came in the call's metadata.
func TestHandleStreamContinuesTheCallsTrace(t *testing.T) {
	prev := otel.GetTextMapPropagator()
	otel.SetTextMapPropagator(propagation.TraceContext{})
	t.Cleanup(func() { otel.SetTextMapPropagator(prev) })

	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	want, err := trace.TraceIDFromHex(traceID)
	if err != nil {
		t.Fatal(err)
	}
	seen := make(chan trace.TraceID, 1)
	_, st := openStream(t, HandlerFunc(func(ctx context.Context, msg *Message) (*Result, error) {
		seen <- trace.SpanContextFromContext(ctx).TraceID()
		return echoID(msg)
	}), protocol.DefaultMaxMessageBytes)
	recvReady(t, st)
	req := streamCall(1)
	req.Metadata = map[string]string{"traceparent": "00-" + traceID + "-00f067aa0ba902b7-01"}
	send(t, st, req)
	if v := outputValue(t, recv(t, st)); v != "t-0-1" {
		t.Errorf("answer = %q, want t-0-1", v)
	}
	if got := <-seen; got != want {
		t.Errorf("handler's trace ID = %s, want %s (from the call's traceparent)", got, want)
	}
}

// TestHandleStreamAnswerAboveTheLimitFailsOnlyItsCall proves that an answer
// above the message limit becomes a permanent error naming the setting to
// raise, instead of a send that would end the stream: the next call on the
// stream is answered.
func TestHandleStreamAnswerAboveTheLimitFailsOnlyItsCall(t *testing.T) {
	const maxBytes = 64 << 10
	_, st := openStream(t, HandlerFunc(func(_ context.Context, msg *Message) (*Result, error) {
		if msg.ID == "t-0-1" {
			return &Result{Outputs: []Output{{Value: make([]byte, 100<<10)}}}, nil
		}
		return echoID(msg)
	}), maxBytes)
	recvReady(t, st)
	send(t, st, streamCall(1))
	m := recv(t, st)
	e := m.GetResponse().GetError()
	if m.GetCallId() != 1 || e.GetKind() != handlerpb.ErrorKind_ERROR_KIND_PERMANENT || !strings.Contains(e.GetMessage(), "max_message_bytes") {
		t.Errorf("answer = %v, want call 1 failed permanently, naming max_message_bytes", m)
	}
	if len(m.GetResponse().GetOutputs()) != 0 {
		t.Errorf("answer to call 1 has %d outputs, want none", len(m.GetResponse().GetOutputs()))
	}
	send(t, st, streamCall(2))
	m = recv(t, st)
	if v := outputValue(t, m); m.GetCallId() != 2 || v != "t-0-2" {
		t.Errorf("answer = call %d with %q, want call 2 with t-0-2", m.GetCallId(), v)
	}
}

// TestHandleStreamDrainingRefusesNewCalls proves that once the plugin
// stops, a call on an open stream is answered unavailable (for the host to
// retry elsewhere) without running the handler.
func TestHandleStreamDrainingRefusesNewCalls(t *testing.T) {
	var ran atomic.Int32
	svc, st := openStream(t, countedEcho(&ran), protocol.DefaultMaxMessageBytes)
	recvReady(t, st)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	svc.drain(ctx)
	send(t, st, streamCall(1))
	m := recv(t, st)
	if m.GetCallId() != 1 || m.GetUnavailable() == "" {
		t.Errorf("answer = %v, want call 1 unavailable", m)
	}
	if n := ran.Load(); n != 0 {
		t.Errorf("handler ran %d times while draining, want 0", n)
	}
}

// TestHandleStreamTakesPackedCalls proves that the calls of a packed message
// all run and are answered, each once; that a host which packs its calls
// gets answers packed once several finish together; and that a host which
// does not pack gets one answer per message.
func TestHandleStreamTakesPackedCalls(t *testing.T) {
	const n = 16
	var gate atomic.Pointer[sync.WaitGroup] // the calls of a round finish together
	_, st := openStream(t, HandlerFunc(func(ctx context.Context, msg *Message) (*Result, error) {
		if g := gate.Load(); g != nil {
			g.Done()
			g.Wait()
		}
		return echoID(msg)
	}), protocol.DefaultMaxMessageBytes)
	recvReady(t, st)

	// Before any packed call: one answer per message.
	for id := uint64(1); id <= n; id++ {
		send(t, st, streamCall(id))
	}
	for range n {
		if m := recv(t, st); len(m.GetAnswers()) != 0 {
			t.Fatalf("packed answers %v to a host that sent no packed call", m)
		}
	}

	next := uint64(100)
	for round := 0; ; round++ {
		var g sync.WaitGroup
		g.Add(n)
		gate.Store(&g)
		calls := []*handlerpb.StreamRequest{{CallId: 99, Cancel: true}} // a call that is not running: ignored
		for range n {
			next++
			calls = append(calls, streamCall(next))
		}
		send(t, st, &handlerpb.StreamRequest{Calls: calls})
		got := make(map[uint64]string, n)
		packed := false
		for len(got) < n {
			m := recv(t, st)
			answers := []*handlerpb.StreamResponse{m}
			if len(m.GetAnswers()) > 0 {
				answers, packed = m.GetAnswers(), true
			}
			for _, a := range answers {
				if _, dup := got[a.GetCallId()]; dup {
					t.Fatalf("call %d answered twice", a.GetCallId())
				}
				got[a.GetCallId()] = outputValue(t, a)
			}
		}
		for id := next - n + 1; id <= next; id++ {
			if v := got[id]; v != fmt.Sprintf("t-0-%d", id) {
				t.Errorf("call %d answered with %q, want its own record's ID", id, v)
			}
		}
		if packed {
			break
		}
		// The answers of a round finish together, but which of them wait
		// for another's send is up to the scheduler.
		if round == 20 {
			t.Fatal("21 rounds of 16 calls finishing together, and not one packed answer")
		}
	}
}

// TestHandleStreamRejectsMalformedPackedMessages proves that a packed
// message with a call of its own, or with a packed message inside, ends the
// stream with INVALID_ARGUMENT.
func TestHandleStreamRejectsMalformedPackedMessages(t *testing.T) {
	for name, req := range map[string]*handlerpb.StreamRequest{
		"a call of its own": {CallId: 1, Calls: []*handlerpb.StreamRequest{streamCall(2)}},
		"packed inside":     {Calls: []*handlerpb.StreamRequest{{Calls: []*handlerpb.StreamRequest{streamCall(3)}}}},
	} {
		t.Run(name, func(t *testing.T) {
			var ran atomic.Int32
			_, st := openStream(t, countedEcho(&ran), protocol.DefaultMaxMessageBytes)
			recvReady(t, st)
			send(t, st, req)
			if m, err := st.Recv(); status.Code(err) != codes.InvalidArgument {
				t.Errorf("Recv = %v, %v; want INVALID_ARGUMENT", m, err)
			}
			if n := ran.Load(); n != 0 {
				t.Errorf("handler ran %d times, want 0", n)
			}
		})
	}
}

// TestHandleStreamRejectsCallIDZero proves that a call with call_id 0 (the
// id of the ready message) ends the stream with INVALID_ARGUMENT.
func TestHandleStreamRejectsCallIDZero(t *testing.T) {
	var ran atomic.Int32
	_, st := openStream(t, countedEcho(&ran), protocol.DefaultMaxMessageBytes)
	recvReady(t, st)
	req := streamCall(1)
	req.CallId = 0
	send(t, st, req)
	if m, err := st.Recv(); status.Code(err) != codes.InvalidArgument {
		t.Errorf("Recv = %v, %v; want INVALID_ARGUMENT", m, err)
	}
	if n := ran.Load(); n != 0 {
		t.Errorf("handler ran %d times, want 0", n)
	}
}

// TestHandleStreamRecoversPanics proves that a handler panic in a streamed
// call is answered as a retryable error of that call, and the stream goes
// on to answer the next one.
func TestHandleStreamRecoversPanics(t *testing.T) {
	_, st := openStream(t, HandlerFunc(func(_ context.Context, msg *Message) (*Result, error) {
		if msg.ID == "t-0-1" {
			panic("bad handler")
		}
		return echoID(msg)
	}), protocol.DefaultMaxMessageBytes)
	recvReady(t, st)
	send(t, st, streamCall(1))
	m := recv(t, st)
	e := m.GetResponse().GetError()
	if m.GetCallId() != 1 || e.GetKind() != handlerpb.ErrorKind_ERROR_KIND_RETRYABLE || !strings.Contains(e.GetMessage(), "panicked on t-0-1: bad handler") {
		t.Errorf("answer = %v, want call 1 failed with a retryable panic error", m)
	}
	send(t, st, streamCall(2))
	m = recv(t, st)
	if v := outputValue(t, m); m.GetCallId() != 2 || v != "t-0-2" {
		t.Errorf("answer = call %d with %q, want call 2 with t-0-2", m.GetCallId(), v)
	}
}

// heldStream is a stream whose first Send waits until release is closed,
// and which records what it sent.
type heldStream struct {
	handlerpb.Handler_HandleStreamServer
	entered chan struct{} // gets a token when the first Send starts
	release chan struct{}
	mu      sync.Mutex
	sent    []*handlerpb.StreamResponse
}

func (h *heldStream) Send(r *handlerpb.StreamResponse) error {
	h.mu.Lock()
	first := len(h.sent) == 0
	h.sent = append(h.sent, r)
	h.mu.Unlock()
	if first {
		h.entered <- struct{}{}
		<-h.release
	}
	return nil
}

// TestStreamSenderPacksWhatQueuedDuringASend proves that answers queued
// while another answer is being sent go out in one packed message when the
// host takes packed answers, within the message limit, and one by one when
// it does not; and that queueing an answer never waits for a send.
func TestStreamSenderPacksWhatQueuedDuringASend(t *testing.T) {
	answer := func(id uint64) *handlerpb.StreamResponse {
		return &handlerpb.StreamResponse{CallId: id, Response: &handlerpb.HandleResponse{}}
	}
	ids := func(m *handlerpb.StreamResponse) []uint64 {
		if len(m.GetAnswers()) == 0 {
			return []uint64{m.GetCallId()}
		}
		var out []uint64
		for _, a := range m.GetAnswers() {
			out = append(out, a.GetCallId())
		}
		return out
	}
	for _, tc := range []struct {
		name     string
		packs    bool
		maxBytes int
		want     [][]uint64 // the calls of each message sent, in order
	}{
		{"host packs", true, 1 << 20, [][]uint64{{1}, {2, 3, 4, 5}}},
		{"host does not pack", false, 1 << 20, [][]uint64{{1}, {2}, {3}, {4}, {5}}},
		// Each answer is 4 bytes, 10 with its tag and length in a packed
		// message: two fit in 20 bytes.
		{"message limit", true, 20, [][]uint64{{1}, {2, 3}, {4, 5}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := &heldStream{entered: make(chan struct{}, 1), release: make(chan struct{})}
			o := &streamSender{st: st, maxBytes: tc.maxBytes}
			o.packs.Store(tc.packs)
			done := make(chan error, 1)
			go func() { done <- o.send(answer(1), 0) }()
			<-st.entered // answer 1 is being sent, and its sender waits
			for id := uint64(2); id <= 5; id++ {
				if err := o.send(answer(id), 0); err != nil {
					t.Fatal(err)
				}
			}
			close(st.release)
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			var got [][]uint64
			for _, m := range st.sent {
				got = append(got, ids(m))
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("sent %v, want %v", got, tc.want)
			}
		})
	}
}
