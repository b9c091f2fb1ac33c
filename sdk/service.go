package sdk

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/hookbridge/hookbridge/sdk/handlerpb"
	"github.com/hookbridge/hookbridge/sdk/protocol"
)

// Service returns the gRPC service that Serve registers for h: each call's
// request becomes a Message, h handles it, and its result or error goes back
// as the response. A panic in h is recovered, logged with its stack, and
// reported as a retryable error, so one bad record does not take down the
// process and every call in flight on it. Serve and package sdktest use
// Service; call it yourself only to serve h from a gRPC server of your own.
// Of the options, only WithLogger and WithMaxMessageBytes apply; the
// message limit (default: the bridge's, from the environment, else 4 MiB)
// is what a streamed call's answer is checked against.
func Service(h Handler, opts ...Option) handlerpb.HandlerServer {
	o := newOptions(opts)
	maxBytes := o.maxMessageBytes
	if maxBytes <= 0 {
		n, err := protocol.MaxMessageBytesFromEnv(protocol.DefaultMaxMessageBytes)
		if err != nil {
			n = protocol.DefaultMaxMessageBytes
		}
		maxBytes = n
	}
	return newService(h, o.logger, maxBytes)
}

type service struct {
	handlerpb.UnimplementedHandlerServer
	h        Handler
	log      *slog.Logger
	maxBytes int // the message limit: an answer above it is replaced by a permanent error

	mu       sync.Mutex
	active   int           // calls in flight
	draining bool          // stopping: new calls are refused
	idle     chan struct{} // closed once draining and no call is in flight
}

func newService(h Handler, log *slog.Logger, maxBytes int) *service {
	return &service{h: h, log: log, maxBytes: maxBytes, idle: make(chan struct{})}
}

// Handle implements the wire service. Handler failures travel in the
// response with an OK status; a non-OK status means the call itself failed.
// While the plugin stops, new calls fail with UNAVAILABLE, which the bridge
// retries on another process.
func (s *service) Handle(ctx context.Context, req *handlerpb.HandleRequest) (*handlerpb.HandleResponse, error) {
	if !s.begin() {
		return nil, status.Error(codes.Unavailable, "sdk: the plugin is stopping")
	}
	defer s.end()
	return s.respond(ctx, messageFromProto(req)), nil
}

func (s *service) begin() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.draining {
		return false
	}
	s.active++
	return true
}

func (s *service) end() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.active--
	if s.draining && s.active == 0 {
		close(s.idle)
	}
}

// drain refuses new calls and waits until the calls in flight returned or
// ctx ended.
func (s *service) drain(ctx context.Context) {
	s.mu.Lock()
	if !s.draining {
		s.draining = true
		if s.active == 0 {
			close(s.idle)
		}
	}
	s.mu.Unlock()
	select {
	case <-s.idle:
	case <-ctx.Done():
	}
}

// call runs the handler, turning a panic into an error.
// respond runs the handler on msg and converts what it returned into the
// answer. Converting runs the handler's own code too (its error's Error and
// Unwrap methods, which a typed nil pointer makes panic): a panic there is
// recovered as one in Handle is, so that it fails this call only and the
// process keeps serving the others.
func (s *service) respond(ctx context.Context, msg *Message) (resp *handlerpb.HandleResponse) {
	res, err := s.call(ctx, msg)
	defer func() {
		if p := recover(); p != nil {
			s.log.ErrorContext(ctx, "handler's answer panicked", "id", msg.ID, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			resp = responseToProto(nil, fmt.Errorf("sdk: the handler's answer to %s panicked: %v", msg.ID, p))
		}
	}()
	return responseToProto(res, err)
}

func (s *service) call(ctx context.Context, msg *Message) (res *Result, err error) {
	defer func() {
		if p := recover(); p != nil {
			s.log.ErrorContext(ctx, "handler panicked", "id", msg.ID, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			res, err = nil, fmt.Errorf("sdk: handler panicked on %s: %v", msg.ID, p)
		}
	}()
	return s.h.Handle(ctx, msg)
}
