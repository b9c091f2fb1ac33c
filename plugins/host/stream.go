package host

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

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
// When the plugin takes packed calls (its ready message sets batches), the
// writer sends the calls that queued up while it was sending the last
// message in one message, and the plugin answers the same way: on a busy
// stream, several calls share each message's cost (gRPC's framing and flow
// control, TLS, the wake-ups of the goroutines on both sides).
//
// A call whose message would exceed the message limit, its metadata
// counted, goes as a Handle call instead (call): a message above the limit
// would end the stream.
//
// When the stream ends, every call waiting on it and every later call fails
// with UNAVAILABLE, which Deliver treats as the instance failing: the call
// is retried on another process. Except when the stream ended on a message
// above the limit (see end): the process is fine, and the calls go as
// Handle calls to it instead.
type callStream struct {
	rpc      handlerpb.HandlerClient // for the calls too large for the stream
	st       handlerpb.Handler_HandleStreamClient
	cancel   context.CancelFunc // ends the stream
	tracer   trace.Tracer
	log      *slog.Logger
	maxBytes int
	packs    bool // the plugin takes packed calls

	sendq chan queued   // what write sends, in order
	done  chan struct{} // closed when the stream ends

	packed, packedCalls atomic.Uint64 // packed messages sent, and the calls in them

	mu      sync.Mutex
	next    uint64
	pending map[uint64]chan *handlerpb.StreamResponse // closed when the stream ends
	err     error                                     // why the stream ended; nil while it is open

	strayLogged bool // an answer for a call_id never sent was logged (answer)
}

// errStreamBadMessage is the error of the calls on a stream that ended on
// one bad message, above the message limit or one the host cannot decode
// (see end); call makes them Handle calls instead.
var errStreamBadMessage = errors.New("plugin stream ended on a message above the message limit or that cannot be decoded")

// queued is a message waiting for the writer, with a bound of its size.
type queued struct {
	m    *handlerpb.StreamRequest
	size int
}

// sendQueue is how many messages may wait for the stream's writer.
const sendQueue = 64

// maxPack is the most calls the writer packs into one message.
const maxPack = 64

// envelopeOf bounds what a call's stream message adds to its request, with
// metadata md, inside a packed message too: the call id, each metadata
// entry with its tags and lengths, the tags and lengths of the request and
// of the message itself.
func envelopeOf(md map[string]string) int {
	n := 32
	for k, v := range md {
		n += len(k) + len(v) + 16
	}
	return n
}

// errNoStream is openStream's answer for a plugin that does not implement
// HandleStream: the host then makes a Handle call per record.
var errNoStream = errors.New("plugin does not implement HandleStream")

// openStream opens the HandleStream stream of a process that just started
// and waits, at most timeout, for the plugin's ready message. log gets the
// stream's events.
func openStream(rpc handlerpb.HandlerClient, timeout time.Duration, maxBytes int, log *slog.Logger) (*callStream, error) {
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
		rpc:      rpc,
		st:       st,
		cancel:   cancel,
		tracer:   otel.GetTracerProvider().Tracer(tracerName),
		log:      log,
		maxBytes: maxBytes,
		packs:    first.GetBatches(),
		sendq:    make(chan queued, sendQueue),
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

// fits reports whether a call whose request has size bytes may fit the
// message limit in its stream envelope: with the smallest envelope, that of
// a call without metadata. One that does not goes as a Handle call, whose
// limit applies to the request alone; call decides for the others, with
// their metadata.
func (c *callStream) fits(size int) bool {
	return size+envelopeOf(nil) <= c.maxBytes
}

// call makes one call on the stream, in a client span whose context travels
// in the call's metadata, and waits for its answer, for ctx to end or for
// deadline. size is proto.Size(req). A call that reaches its deadline fails
// with DEADLINE_EXCEEDED, as a call whose context has that deadline would;
// the deadline is a timer rather than a context of the call's own, which
// spares each call a lock and a map entry in the caller's context, shared by
// all the calls of a partition (BenchmarkDeliverOnTheStream: 41 → 36
// allocations and about 14 → 13 µs of the host's CPU per call).
//
// The metadata carries the tracestate and baggage of ctx, which come from
// the record's headers and may take kilobytes: a call whose message would
// exceed the limit with them goes as a Handle call, under the call's span
// (the gRPC instrumentation adds the Handle call's own span below it). So
// does a call on a stream that one bad answer ended (see end), within the
// time the call had left.
func (c *callStream) call(ctx context.Context, req *handlerpb.HandleRequest, size int, deadline time.Time) (*handlerpb.HandleResponse, error) {
	ctx, span := protocol.StartCallSpan(ctx, c.tracer, trace.SpanKindClient)
	md := make(map[string]string, 3)
	otel.GetTextMapPropagator().Inject(ctx, propagation.MapCarrier(md))
	md[protocol.MetadataTimeout] = protocol.EncodeTimeout(time.Until(deadline))
	var resp *handlerpb.HandleResponse
	var err error
	n := size + envelopeOf(md)
	if n <= c.maxBytes {
		resp, err = c.roundTrip(ctx, req, md, n, deadline)
	}
	if n > c.maxBytes || err == errStreamBadMessage {
		resp, err = c.handle(ctx, req, deadline)
	}
	protocol.EndCallSpan(span, err)
	return resp, err
}

// handle makes the call as a Handle call of its own, which ends at deadline.
func (c *callStream) handle(ctx context.Context, req *handlerpb.HandleRequest, deadline time.Time) (*handlerpb.HandleResponse, error) {
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	return c.rpc.Handle(ctx, req)
}

// roundTrip sends the call's message, of at most size bytes (within the
// limit), and waits for its answer.
func (c *callStream) roundTrip(ctx context.Context, req *handlerpb.HandleRequest, md map[string]string, size int, deadline time.Time) (*handlerpb.HandleResponse, error) {
	timer := getTimer(time.Until(deadline))
	defer putTimer(timer)
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
	case c.sendq <- queued{&handlerpb.StreamRequest{CallId: id, Request: req, Metadata: md}, size}:
	case <-ctx.Done():
		c.forget(id)
		return nil, status.FromContextError(ctx.Err()).Err()
	case <-timer.C:
		c.forget(id)
		return nil, errCallDeadline
	case <-c.done:
		return nil, c.ended()
	}
	select {
	case r, ok := <-answer:
		switch {
		case !ok:
			return nil, c.ended()
		case r.GetUnavailable() != "":
			return nil, status.Errorf(codes.Unavailable, "plugin process did not take the call: %s", protocol.CutMessage(r.GetUnavailable(), maxHandlerError))
		case r.GetResponse() == nil:
			// Neither an answer nor a refusal breaks the protocol: the
			// handler may not have run, so the record is not delivered.
			return nil, status.Errorf(codes.Internal, "plugin answered call %d with neither a response nor unavailable", id)
		}
		return r.GetResponse(), nil
	case <-ctx.Done():
		c.cancelCall(id)
		return nil, status.FromContextError(ctx.Err()).Err()
	case <-timer.C:
		c.cancelCall(id)
		return nil, errCallDeadline
	}
}

// errCallDeadline is the error of a call on the stream that reached its
// deadline.
var errCallDeadline = status.FromContextError(context.DeadlineExceeded).Err()

// cancelCall gives up call id: if it was still waiting for its answer, the
// plugin is told to cancel it.
func (c *callStream) cancelCall(id uint64) {
	if c.forget(id) {
		// Best effort: with the queue full the plugin is not reading, and
		// the call is over for the host either way.
		select {
		case c.sendq <- queued{&handlerpb.StreamRequest{CallId: id, Cancel: true}, envelopeOf(nil)}:
		default:
		}
	}
}

// timers holds stopped timers for the calls' deadlines.
var timers sync.Pool

// getTimer returns a timer that fires after d.
func getTimer(d time.Duration) *time.Timer {
	if t, ok := timers.Get().(*time.Timer); ok {
		t.Reset(d)
		return t
	}
	return time.NewTimer(d)
}

// putTimer stops t and keeps it for another call. (Since Go 1.23 a stopped
// or reset timer delivers no stale value.)
func putTimer(t *time.Timer) {
	t.Stop()
	timers.Put(t)
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
	var next queued
	held := false // next was taken from the queue and is not sent yet
	for {
		q := next
		if !held {
			select {
			case q = <-c.sendq:
			case <-c.done:
				return
			}
		}
		m := q.m
		held = false
		if c.packs {
			m, next, held = c.pack(q)
		}
		err := c.st.Send(m)
		if errors.Is(err, io.EOF) {
			// The stream ended; Recv, in read, has the reason.
			<-c.done
			return
		}
		if err != nil {
			// gRPC has ended the stream already: a SendMsg that fails
			// for a reason of the client's own (a message above the
			// limit: RESOURCE_EXHAUSTED) finishes the stream with that
			// error. So no message may go above the limit: call keeps
			// each call's bound (envelopeOf) within it, pack the sum.
			c.end(err)
			return
		}
	}
}

// pack packs first and the messages queued behind it into one message, at
// most maxPack of them and within the message limit. It returns the message
// to send and, with ok, the queued message that did not fit in it.
func (c *callStream) pack(first queued) (m *handlerpb.StreamRequest, rest queued, ok bool) {
	if len(c.sendq) == 0 {
		// Let the callers that are about to queue a call do so first: a
		// yield, not a wait. Without it a stream that is not saturated
		// almost never finds more than one call waiting (under 1 % of the
		// messages were packed in the bench's plugin route; with it, seven
		// calls per message).
		runtime.Gosched()
		if len(c.sendq) == 0 {
			return first.m, rest, false
		}
	}
	calls := []*handlerpb.StreamRequest{first.m}
	size := first.size
loop:
	for len(calls) < maxPack {
		select {
		case q := <-c.sendq:
			if size+q.size > c.maxBytes {
				rest, ok = q, true
				break loop
			}
			calls = append(calls, q.m)
			size += q.size
		default:
			break loop
		}
	}
	if len(calls) == 1 {
		return first.m, rest, ok
	}
	c.packed.Add(1)
	c.packedCalls.Add(uint64(len(calls)))
	return &handlerpb.StreamRequest{Calls: calls}, rest, ok
}

// read hands each answer to the call waiting for it, until the stream ends.
func (c *callStream) read() {
	for {
		r, err := c.st.Recv()
		if err != nil {
			c.end(err)
			return
		}
		if answers := r.GetAnswers(); len(answers) > 0 {
			for _, a := range answers {
				c.answer(a)
			}
			continue
		}
		c.answer(r)
	}
}

// answer hands r to the call waiting for it. An answer for a call that
// gave up (its time ran out) is ignored, as is a second answer to a call.
// So is one for a call_id the host never sent on the stream, which breaks
// the protocol (a plugin that mixes up its calls' ids, whose calls then
// time out for no visible reason): the first such is logged.
func (c *callStream) answer(r *handlerpb.StreamResponse) {
	id := r.GetCallId()
	c.mu.Lock()
	answer := c.pending[id]
	delete(c.pending, id)
	stray := answer == nil && (id == 0 || id > c.next) && !c.strayLogged
	if stray {
		c.strayLogged = true
	}
	c.mu.Unlock()
	if stray {
		c.log.Warn("plugin answered a call_id never sent on its HandleStream; ignoring it (logged once per process)", "call_id", id)
	}
	if answer != nil {
		answer <- r
	}
}

// end records why the stream ended (the first reason wins), fails every
// call waiting on it and releases the stream.
//
// A stream that ended on a message above the limit (RESOURCE_EXHAUSTED
// "larger than max": an answer the plugin's gRPC refused to send, or the
// host's refused to take) did not end because the process failed, and
// taking it for that would retry the call on process after process, each
// of which would end its stream the same way. Instead the calls that were
// waiting on it, and every later call to the process, go as Handle calls
// to the same process: there an answer above the limit fails only its own
// call, with a permanent error (callError). The stream is not reopened:
// the next such answer would end it again with every call on it, and a
// plugin that lets its stream end so (sdk.Serve does not) loses only the
// stream's lower cost per call, for the life of the process.
//
// The same goes for a stream that ended on an answer the host cannot decode
// (INTERNAL "failed to unmarshal": a string that is not UTF-8, from a
// plugin in another language): the answer is the plugin's fault, not the
// process's, and as a Handle call it fails only its own call, as
// retryable.
func (c *callStream) end(cause error) {
	c.mu.Lock()
	bad := ""
	if c.err == nil {
		switch {
		case tooLarge(cause):
			bad = "above the message limit"
		case undecodable(cause):
			bad = "that cannot be decoded"
		}
		if bad != "" {
			c.err = errStreamBadMessage
		} else {
			c.err = status.Errorf(codes.Unavailable, "plugin stream ended: %v", cause)
		}
		close(c.done)
	}
	for id, answer := range c.pending {
		close(answer)
		delete(c.pending, id)
	}
	c.cancel()
	c.mu.Unlock()
	if bad != "" {
		c.log.Warn("plugin's HandleStream ended on a message "+bad+"; making a Handle call per record to this process from now on", "error", cause)
	}
}

// open reports whether the stream still carries calls.
func (c *callStream) open() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err == nil
}

// ended returns why the stream ended.
func (c *callStream) ended() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// close ends the stream from the host's side.
func (c *callStream) close() { c.end(errors.New("closed by the host")) }
