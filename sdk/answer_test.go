package sdk

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/hookbridge/hookbridge/sdk/handlerpb"
	"github.com/hookbridge/hookbridge/sdk/internal/inproc"
	"github.com/hookbridge/hookbridge/sdk/protocol"
)

// What a handler returns must reach the host as one answer to its own call,
// whatever it holds: strings that are not UTF-8 (which proto3 cannot carry,
// and which would end the whole stream with every call in flight on it), an
// error whose methods panic, waits too long to count in milliseconds.

// notUTF8 is a record value that is not UTF-8, as any binary payload may be.
var notUTF8 = []byte{'v', 0xff, 0xfe}

// A handler that quotes a binary record in its error: the permanent error
// arrives (its message made UTF-8), and the call in flight beside it is
// answered too.
func TestErrorMessageNotUTF8(t *testing.T) {
	release := make(chan struct{})
	_, st := openStream(t, HandlerFunc(func(ctx context.Context, msg *Message) (*Result, error) {
		if msg.ID == "t-0-1" {
			return nil, Permanent(fmt.Errorf("cannot parse %s", notUTF8))
		}
		select { // call 2 is in flight while call 1 answers
		case <-release:
		case <-ctx.Done():
		}
		return echoID(msg)
	}), protocol.DefaultMaxMessageBytes)
	recvReady(t, st)
	send(t, st, streamCall(2))
	send(t, st, streamCall(1))
	m := recv(t, st)
	close(release)
	if e := m.GetResponse().GetError(); m.GetCallId() != 1 || e.GetKind() != handlerpb.ErrorKind_ERROR_KIND_PERMANENT ||
		e.GetMessage() != "cannot parse v\uFFFD" {
		t.Fatalf("got %v, want call 1's permanent error", m)
	}
	if m := recv(t, st); m.GetCallId() != 2 || m.GetResponse().GetError() != nil {
		t.Fatalf("got %v, want call 2's answer", m)
	}

	// The same through a unary Handle call, which would fail with INTERNAL
	// (retryable for the host) instead of carrying the permanent error.
	svc := newService(HandlerFunc(func(context.Context, *Message) (*Result, error) {
		return nil, Permanent(errors.New("cannot parse " + string(notUTF8)))
	}), slogDiscard(), protocol.DefaultMaxMessageBytes)
	srv := grpc.NewServer(protocol.ServerOptions(protocol.DefaultMaxMessageBytes)...)
	handlerpb.RegisterHandlerServer(srv, svc)
	conn, stop, err := inproc.Serve(srv, protocol.DefaultMaxMessageBytes)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	resp, err := handlerpb.NewHandlerClient(conn).Handle(t.Context(), streamCall(1).GetRequest())
	if err != nil || resp.GetError().GetKind() != handlerpb.ErrorKind_ERROR_KIND_PERMANENT {
		t.Fatalf("Handle = %v, %v; want an OK call carrying the permanent error", resp, err)
	}
}

// An output whose topic or header key is not UTF-8 fails its call
// permanently, naming the field; a panic whose value is not UTF-8 fails it
// as a retryable error. The stream goes on.
func TestOutputsAndPanicsNotUTF8(t *testing.T) {
	for _, tt := range []struct {
		name string
		h    HandlerFunc
		kind handlerpb.ErrorKind
		msg  string
	}{
		{"output topic", func(context.Context, *Message) (*Result, error) {
			return &Result{Outputs: []Output{{Topic: "ok"}, {Topic: string(notUTF8)}}}, nil
		}, handlerpb.ErrorKind_ERROR_KIND_PERMANENT, "sdk: output 1: its topic is not valid UTF-8"},
		{"output header key", func(context.Context, *Message) (*Result, error) {
			return &Result{Outputs: []Output{{Headers: []Header{{Key: "a"}, {Key: string(notUTF8)}}}}}, nil
		}, handlerpb.ErrorKind_ERROR_KIND_PERMANENT, "sdk: output 0: the key of its header 1 is not valid UTF-8"},
		{"panic", func(context.Context, *Message) (*Result, error) {
			panic(string(notUTF8))
		}, handlerpb.ErrorKind_ERROR_KIND_RETRYABLE, "sdk: handler panicked on t-0-1: v\uFFFD"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, st := openStream(t, tt.h, protocol.DefaultMaxMessageBytes)
			recvReady(t, st)
			for id := uint64(1); id <= 2; id++ {
				send(t, st, streamCall(id))
				m := recv(t, st)
				if e := m.GetResponse().GetError(); e.GetKind() != tt.kind || !strings.HasPrefix(e.GetMessage(), strings.Replace(tt.msg, "t-0-1", fmt.Sprintf("t-0-%d", id), 1)) {
					t.Fatalf("call %d: got %v, want %v %q", id, m, tt.kind, tt.msg)
				}
			}
		})
	}
}

// typedNil is an error type with a pointer receiver, as most are.
type typedNil struct{ msg string }

func (e *typedNil) Error() string { return "lookup: " + e.msg }

// lookup returns the classic typed nil: a nil *typedNil as an error.
func lookup() error {
	var e *typedNil
	return e
}

// A handler that returns a typed nil error, whose Error method panics, or
// an error whose Unwrap panics: the call fails as retryable, the process
// keeps serving (the panic happens while the answer is built, after the
// handler returned).
func TestAnswerThatPanicsFailsOnlyItsCall(t *testing.T) {
	for name, h := range map[string]HandlerFunc{
		"typed nil": func(context.Context, *Message) (*Result, error) { return nil, lookup() },
		"Unwrap panics": func(context.Context, *Message) (*Result, error) {
			return nil, errors.Join(panicky{})
		},
	} {
		t.Run(name, func(t *testing.T) {
			_, st := openStream(t, h, protocol.DefaultMaxMessageBytes)
			recvReady(t, st)
			for id := uint64(1); id <= 2; id++ {
				send(t, st, streamCall(id))
				m := recv(t, st)
				if e := m.GetResponse().GetError(); m.GetCallId() != id || e.GetKind() != handlerpb.ErrorKind_ERROR_KIND_RETRYABLE ||
					!strings.Contains(e.GetMessage(), "the handler's answer to t-0-") {
					t.Fatalf("call %d: got %v, want a retryable error", id, m)
				}
			}
		})
	}
}

// panicky is an error whose Unwrap panics.
type panicky struct{}

func (panicky) Error() string { return "panicky" }
func (panicky) Unwrap() error { panic("unwrap") }

// A wait too long for milliseconds in an int64 once rounded up (time.Until
// of a far-future Retry-After date) stays a long wait on the wire.
func TestRetryAfterOfTheLongestWait(t *testing.T) {
	for _, tt := range []struct {
		d    time.Duration
		want int64
	}{
		{math.MaxInt64, math.MaxInt64/int64(time.Millisecond) + 1},
		{time.Microsecond, 1},
		{time.Millisecond, 1},
		{1500 * time.Microsecond, 2},
	} {
		e := errorToProto(RetryAfter(tt.d, errors.New("rate limited")))
		if e.GetKind() != handlerpb.ErrorKind_ERROR_KIND_RETRY_AFTER || e.GetRetryAfterMs() != tt.want {
			t.Errorf("RetryAfter(%v): %v %d ms, want %d", tt.d, e.GetKind(), e.GetRetryAfterMs(), tt.want)
		}
	}
}

// Permanent wins wherever it is in an error's tree: behind a RetryAfter, or
// in an errors.Join beside one.
func TestPermanentBehindRetryAfter(t *testing.T) {
	for name, err := range map[string]error{
		"RetryAfter(Permanent)":       RetryAfter(time.Second, Permanent(errors.New("bad record"))),
		"Join(RetryAfter, Permanent)": errors.Join(RetryAfter(time.Second, errors.New("slow down")), Permanent(errors.New("bad record"))),
		"wrapped":                     fmt.Errorf("x: %w", errors.Join(errors.New("a"), fmt.Errorf("b: %w", Permanent(errors.New("c"))))),
	} {
		if !IsPermanent(err) || errorToProto(err).GetKind() != handlerpb.ErrorKind_ERROR_KIND_PERMANENT {
			t.Errorf("%s: not permanent", name)
		}
	}
	if IsPermanent(RetryAfter(time.Second, errors.New("slow down"))) || IsPermanent(errors.Join(nil, errors.New("x"))) {
		t.Errorf("permanent without a Permanent mark")
	}
}
