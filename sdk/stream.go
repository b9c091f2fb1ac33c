package sdk

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"sync"
	"sync/atomic"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/hookbridge/hookbridge/sdk/handlerpb"
	"github.com/hookbridge/hookbridge/sdk/protocol"
)

// tracerName names the tracer of the spans the SDK starts itself.
const tracerName = "github.com/hookbridge/hookbridge/sdk"

// callContext is the context of a stream call: ctx with the deadline the
// call's metadata gives it (protocol.MetadataTimeout, from when it arrived),
// as gRPC gives one to a unary Handle call; without one, only cancellable.
func callContext(ctx context.Context, md map[string]string) (context.Context, context.CancelFunc) {
	if d, ok := protocol.ParseTimeout(md[protocol.MetadataTimeout]); ok {
		return context.WithTimeout(ctx, d)
	}
	return context.WithCancel(ctx)
}

// HandleStream implements the streaming form of the wire service: it says
// it is ready (and that it takes packed calls), then runs every call the host
// sends concurrently, each in its own span continued from the call's
// metadata, and answers each when its handler returns. A call's context has
// the deadline its metadata gives (grpc-timeout), and a cancellation cancels
// it. When the stream ends (the host closed it, or
// the connection is gone) the calls still running are cancelled and waited
// for.
func (s *service) HandleStream(stream handlerpb.Handler_HandleStreamServer) error {
	if err := stream.Send(&handlerpb.StreamResponse{Batches: true}); err != nil { // ready
		return err
	}
	out := &streamSender{st: stream, maxBytes: s.maxBytes}
	tracer := otel.GetTracerProvider().Tracer(tracerName)
	propagator := otel.GetTextMapPropagator()
	var (
		mu      sync.Mutex
		cancels = make(map[uint64]context.CancelFunc)
		calls   sync.WaitGroup
	)
	defer func() {
		mu.Lock()
		for _, cancel := range cancels {
			cancel()
		}
		mu.Unlock()
		calls.Wait()
	}()
	// handle starts one call, or cancels one.
	handle := func(req *handlerpb.StreamRequest) error {
		id := req.GetCallId()
		switch {
		case len(req.GetCalls()) > 0:
			return status.Errorf(codes.InvalidArgument, "sdk: packed calls inside a packed stream message")
		case id == 0 || (req.GetRequest() == nil && !req.GetCancel()):
			return status.Errorf(codes.InvalidArgument, "sdk: stream message without a call_id or a request (call_id %d)", id)
		case req.GetCancel():
			mu.Lock()
			if cancel := cancels[id]; cancel != nil {
				cancel()
			}
			mu.Unlock()
			return nil
		}
		if !s.begin() {
			return out.send(&handlerpb.StreamResponse{CallId: id, Unavailable: "the plugin is stopping"}, 0)
		}
		ctx, cancel := callContext(propagator.Extract(stream.Context(), propagation.MapCarrier(req.GetMetadata())), req.GetMetadata())
		mu.Lock()
		cancels[id] = cancel
		mu.Unlock()
		calls.Go(func() {
			defer s.end()
			answer := &handlerpb.StreamResponse{CallId: id, Response: s.streamCall(ctx, tracer, req.GetRequest())}
			mu.Lock()
			delete(cancels, id)
			mu.Unlock()
			cancel()
			n := proto.Size(answer)
			if n > s.maxBytes {
				// Sent as is, it would end the stream and every call on it.
				answer.Response = responseToProto(nil, Permanent(fmt.Errorf("sdk: the answer to %s (%d bytes) exceeds the %d-byte message limit (plugins.%s.max_message_bytes)",
					req.GetRequest().GetId(), n, s.maxBytes, pluginName())))
				n = proto.Size(answer)
			}
			// An error here means the stream is gone; the host retries the
			// call on another process.
			_ = out.send(answer, n)
		})
		return nil
	}
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		packed := req.GetCalls()
		if len(packed) == 0 {
			if err := handle(req); err != nil {
				return err
			}
			continue
		}
		if req.GetCallId() != 0 || req.GetRequest() != nil || req.GetCancel() {
			return status.Errorf(codes.InvalidArgument, "sdk: a stream message with packed calls and a call of its own")
		}
		out.packs.Store(true) // a host that packs calls takes packed answers
		for _, r := range packed {
			if err := handle(r); err != nil {
				return err
			}
		}
	}
}

// streamSender sends a stream's answers. Whoever finds it idle sends the
// answers waiting, its own and those queued while it sends, so a handler's
// goroutine never waits for another's send; and once the host packs its
// calls, answers that finish together go out packed in one message.
type streamSender struct {
	st       handlerpb.Handler_HandleStreamServer
	maxBytes int
	packs    atomic.Bool // the host takes packed answers

	mu      sync.Mutex
	queue   []sized
	sending bool  // a goroutine is sending the queue
	err     error // the stream failed
}

// sized is an answer and its size on the wire (0: not known yet).
type sized struct {
	r    *handlerpb.StreamResponse
	size int
}

// send queues r, of size bytes (0 if not known), and sends the queue unless
// another goroutine is doing so. It returns the stream's error once a send
// failed.
func (o *streamSender) send(r *handlerpb.StreamResponse, size int) error {
	o.mu.Lock()
	if o.err != nil {
		defer o.mu.Unlock()
		return o.err
	}
	o.queue = append(o.queue, sized{r, size})
	if o.sending {
		o.mu.Unlock()
		return nil
	}
	o.sending = true
	if o.packs.Load() {
		// Let the answers about to be sent join this one: a yield, not a
		// wait (see the host's writer).
		o.mu.Unlock()
		runtime.Gosched()
		o.mu.Lock()
	}
	var err error
	for len(o.queue) > 0 && err == nil {
		batch := o.queue
		o.queue = nil
		o.mu.Unlock()
		err = o.flush(batch)
		o.mu.Lock()
	}
	o.err = err
	o.sending = false
	o.mu.Unlock()
	return err
}

// maxPack is the most answers packed into one message.
const maxPack = 64

// flush sends batch: one message per answer, or, when the host takes them,
// packed messages within the message limit.
func (o *streamSender) flush(batch []sized) error {
	if len(batch) == 1 || !o.packs.Load() {
		for _, a := range batch {
			if err := o.st.Send(a.r); err != nil {
				return err
			}
		}
		return nil
	}
	const tag = 6 // an answer's tag and length inside a packed message
	for len(batch) > 0 {
		n, size := 0, 0
		for n < len(batch) && n < maxPack {
			if batch[n].size == 0 {
				batch[n].size = proto.Size(batch[n].r)
			}
			if n > 0 && size+batch[n].size+tag > o.maxBytes {
				break
			}
			size += batch[n].size + tag
			n++
		}
		m := batch[0].r
		if n > 1 {
			answers := make([]*handlerpb.StreamResponse, n)
			for i := range n {
				answers[i] = batch[i].r
			}
			m = &handlerpb.StreamResponse{Answers: answers}
		}
		if err := o.st.Send(m); err != nil {
			return err
		}
		batch = batch[n:]
	}
	return nil
}

// streamCall runs one call of a stream in its server span.
func (s *service) streamCall(ctx context.Context, tracer trace.Tracer, req *handlerpb.HandleRequest) *handlerpb.HandleResponse {
	ctx, span := protocol.StartCallSpan(ctx, tracer, trace.SpanKindServer)
	resp := s.respond(ctx, messageFromProto(req))
	protocol.EndCallSpan(span, nil)
	return resp
}

// pluginName is the plugin's name in the bridge's configuration, for
// messages that name a setting.
func pluginName() string {
	if n := os.Getenv(protocol.EnvPluginName); n != "" {
		return n
	}
	return "<name>"
}
