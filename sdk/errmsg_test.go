package sdk

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/hookbridge/hookbridge/sdk/handlerpb"
	"github.com/hookbridge/hookbridge/sdk/internal/inproc"
	"github.com/hookbridge/hookbridge/sdk/protocol"
)

// A handler error is classified by its markers, not by the length of its
// message: one that quotes a large downstream answer or record must still
// reach the host as retryable (or retry-after), on the stream as on a Handle
// call. Its message used to go out whole, so that an error message above the
// message limit became the permanent "answer exceeds the limit" error on the
// stream (the record was dead-lettered instead of retried) and a failed
// Handle call (RESOURCE_EXHAUSTED, permanent for the host).
func TestLongErrorMessageKeepsItsKind(t *testing.T) {
	const maxBytes = 64 << 10
	long := strings.Repeat("é", maxBytes) // twice the limit in bytes
	h := HandlerFunc(func(_ context.Context, msg *Message) (*Result, error) {
		switch msg.ID {
		case "t-0-1":
			return nil, errors.New("downstream answered " + long)
		case "t-0-2":
			return nil, RetryAfter(time.Second, errors.New("slow down: "+long))
		case "t-0-3":
			panic("cannot go on: " + long)
		}
		return echoID(msg)
	})
	want := map[uint64]handlerpb.ErrorKind{
		1: handlerpb.ErrorKind_ERROR_KIND_RETRYABLE,
		2: handlerpb.ErrorKind_ERROR_KIND_RETRY_AFTER,
		3: handlerpb.ErrorKind_ERROR_KIND_RETRYABLE,
	}
	check := func(t *testing.T, id uint64, e *handlerpb.Error) {
		t.Helper()
		if e.GetKind() != want[id] {
			t.Errorf("call %d: kind %v (%.100s), want %v", id, e.GetKind(), e.GetMessage(), want[id])
		}
		if n := len(e.GetMessage()); n == 0 || n >= maxBytes/2 {
			t.Errorf("call %d: message of %d bytes, want a shortened one", id, n)
		}
	}

	t.Run("stream", func(t *testing.T) {
		_, st := openStream(t, h, maxBytes)
		recvReady(t, st)
		for id := range uint64(3) {
			send(t, st, streamCall(id+1))
			m := recv(t, st)
			if m.GetCallId() != id+1 {
				t.Fatalf("answer to call %d, want %d", m.GetCallId(), id+1)
			}
			check(t, id+1, m.GetResponse().GetError())
		}
		send(t, st, streamCall(4)) // the stream carries on
		if v := outputValue(t, recv(t, st)); v != "t-0-4" {
			t.Errorf("answer %q, want t-0-4", v)
		}
	})

	t.Run("unary", func(t *testing.T) {
		srv := grpc.NewServer(protocol.ServerOptions(maxBytes)...)
		handlerpb.RegisterHandlerServer(srv, newService(h, slogDiscard(), maxBytes))
		conn, stop, err := inproc.Serve(srv, maxBytes)
		if err != nil {
			t.Fatal(err)
		}
		defer stop()
		for id := range uint64(3) {
			resp, err := handlerpb.NewHandlerClient(conn).Handle(t.Context(), streamCall(id+1).GetRequest())
			if err != nil {
				t.Fatalf("call %d: Handle failed: %v", id+1, err)
			}
			check(t, id+1, resp.GetError())
		}
	})
}
