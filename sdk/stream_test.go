package sdk

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
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
	if m.GetCallId() != 0 || m.GetResponse() != nil || m.GetUnavailable() != "" {
		t.Fatalf("first message = %v, want the ready message (call_id 0, nothing else)", m)
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
