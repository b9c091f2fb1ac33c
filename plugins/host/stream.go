package host

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/hookbridge/hookbridge/sdk/handlerpb"
	"github.com/hookbridge/hookbridge/sdk/protocol"
)

// tracerName names the tracer of the call spans the host starts itself.
const tracerName = "github.com/hookbridge/hookbridge/plugins/host"

// callStream is an instance's HandleStream stream: every call to the
// process travels on it, multiplexed by call id. A call is one message each
// way instead of a gRPC call of its own, which roughly halves the CPU a
// small record costs on both sides.
//
// When the stream ends, for whatever reason, every call waiting on it and
// every later call fails with UNAVAILABLE, which Deliver treats as the
// instance failing: the call is retried on another process.
type callStream struct {
	st       handlerpb.Handler_HandleStreamClient
	cancel   context.CancelFunc // ends the stream
	tracer   trace.Tracer
	maxBytes int

	sendq chan *handlerpb.StreamRequest // what write sends, in order
	done  chan struct{}                 // closed when the stream ends

	mu      sync.Mutex
	next    uint64
	pending map[uint64]chan *handlerpb.StreamResponse // closed when the stream ends
	err     error                                     // why the stream ended; nil while it is open
}

// sendQueue is how many messages may wait for the stream's writer.
const sendQueue = 64

// errNoStream is openStream's answer for a plugin that does not implement
// HandleStream: the host then makes a Handle call per record.
var errNoStream = errors.New("plugin does not implement HandleStream")

// openStream opens the HandleStream stream of a process that just started
// and waits, at most timeout, for the plugin's ready message.
func openStream(rpc handlerpb.HandlerClient, timeout time.Duration, maxBytes int) (*callStream, error) {
	ctx, cancel := context.WithCancel(context.Background())
	st, err := rpc.HandleStream(ctx)
	if err != nil {
		cancel()
		return nil, streamOpenError(err)
	}
	timer := time.AfterFunc(timeout, cancel)
	first, err := st.Recv()
	if !timer.Stop() {
		cancel()
		return nil, fmt.Errorf("HandleStream: no ready message within %s", timeout)
	}
	if err != nil {
		cancel()
		return nil, streamOpenError(err)
	}
	if first.GetCallId() != 0 {
		cancel()
		return nil, fmt.Errorf("HandleStream: the first message answers call %d instead of saying the plugin is ready", first.GetCallId())
	}
	c := &callStream{
		st:       st,
		cancel:   cancel,
		tracer:   otel.GetTracerProvider().Tracer(tracerName),
		maxBytes: maxBytes,
		sendq:    make(chan *handlerpb.StreamRequest, sendQueue),
		done:     make(chan struct{}),
		pending:  make(map[uint64]chan *handlerpb.StreamResponse),
	}
	go c.write()
	go c.read()
	return c, nil
}

func streamOpenError(err error) error {
	if status.Code(err) == codes.Unimplemented {
		return errNoStream
	}
	return fmt.Errorf("HandleStream: %w", err)
}

// fits reports whether the call of req fits the message limit in its
// stream envelope; one that does not goes as a Handle call, whose limit
// applies to req alone. (A message above the limit would end the stream.)
func (c *callStream) fits(req *handlerpb.HandleRequest) bool {
	const envelope = 512 // call id, metadata keys and trace context, tags
	return proto.Size(req)+envelope <= c.maxBytes
}

// call makes one call on the stream, in a client span whose context travels
// in the call's metadata, and waits for its answer or for ctx to end.
func (c *callStream) call(ctx context.Context, req *handlerpb.HandleRequest) (*handlerpb.HandleResponse, error) {
	ctx, span := protocol.StartCallSpan(ctx, c.tracer, trace.SpanKindClient)
	md := make(map[string]string, 2)
	otel.GetTextMapPropagator().Inject(ctx, propagation.MapCarrier(md))
	resp, err := c.roundTrip(ctx, req, md)
	protocol.EndCallSpan(span, err)
	return resp, err
}

func (c *callStream) roundTrip(ctx context.Context, req *handlerpb.HandleRequest, md map[string]string) (*handlerpb.HandleResponse, error) {
	answer := make(chan *handlerpb.StreamResponse, 1)
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return nil, c.err
	}
	c.next++
	id := c.next
	c.pending[id] = answer
	c.mu.Unlock()

	select {
	case c.sendq <- &handlerpb.StreamRequest{CallId: id, Request: req, Metadata: md}:
	case <-ctx.Done():
		c.forget(id)
		return nil, status.FromContextError(ctx.Err()).Err()
	case <-c.done:
		return nil, c.ended()
	}
	select {
	case r, ok := <-answer:
		switch {
		case !ok:
			return nil, c.ended()
		case r.GetUnavailable() != "":
			return nil, status.Errorf(codes.Unavailable, "plugin process did not take the call: %s", r.GetUnavailable())
		}
		return r.GetResponse(), nil
	case <-ctx.Done():
		if c.forget(id) {
			// Best effort: with the queue full the plugin is not reading,
			// and the call is over for the host either way.
			select {
			case c.sendq <- &handlerpb.StreamRequest{CallId: id, Cancel: true}:
			default:
			}
		}
		return nil, status.FromContextError(ctx.Err()).Err()
	}
}

// forget drops a call that gave up; it reports whether the call was still
// waiting for its answer.
func (c *callStream) forget(id uint64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, waiting := c.pending[id]
	delete(c.pending, id)
	return waiting
}

// write sends the queued messages, in order, until the stream ends. It is
// the only goroutine that sends (Send is not safe for concurrent use), so
// when a plugin stops reading and HTTP/2 flow control holds the sends, it
// holds this goroutine, not the callers: their calls still time out.
func (c *callStream) write() {
	for {
		select {
		case m := <-c.sendq:
			err := c.st.Send(m)
			if errors.Is(err, io.EOF) {
				// The stream ended; Recv, in read, has the reason.
				<-c.done
				return
			}
			if err != nil {
				c.end(err)
				return
			}
		case <-c.done:
			return
		}
	}
}

// read hands each answer to the call waiting for it, until the stream ends.
func (c *callStream) read() {
	for {
		r, err := c.st.Recv()
		if err != nil {
			c.end(err)
			return
		}
		c.mu.Lock()
		answer := c.pending[r.GetCallId()]
		delete(c.pending, r.GetCallId())
		c.mu.Unlock()
		if answer != nil { // nil: the call gave up (timeout), or a stray id
			answer <- r
		}
	}
}

// end records why the stream ended (the first reason wins), fails every
// call waiting on it and releases the stream.
func (c *callStream) end(cause error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err == nil {
		c.err = status.Errorf(codes.Unavailable, "plugin stream ended: %v", cause)
		close(c.done)
	}
	for id, answer := range c.pending {
		close(answer)
		delete(c.pending, id)
	}
	c.cancel()
}

// ended returns why the stream ended.
func (c *callStream) ended() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// close ends the stream from the host's side.
func (c *callStream) close() { c.end(errors.New("closed by the host")) }
