package host

import (
	"math"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/hookbridge/hookbridge/sdk/handlerpb"
)

// pack takes what waits behind the first message, in order, up to maxPack
// calls and the message limit, and hands back the message that did not fit.
func TestPackWithinTheLimits(t *testing.T) {
	call := func(id uint64, size int) queued {
		return queued{&handlerpb.StreamRequest{CallId: id}, size}
	}
	ids := func(m *handlerpb.StreamRequest) []uint64 {
		if len(m.GetCalls()) == 0 {
			return []uint64{m.GetCallId()}
		}
		var out []uint64
		for _, c := range m.GetCalls() {
			out = append(out, c.GetCallId())
		}
		return out
	}
	newStream := func(maxBytes int, queue ...queued) *callStream {
		c := &callStream{maxBytes: maxBytes, packs: true, sendq: make(chan queued, sendQueue)}
		for _, q := range queue {
			c.sendq <- q
		}
		return c
	}

	// Nothing waiting: the message goes as it is.
	c := newStream(1000)
	if m, _, ok := c.pack(call(1, 100)); len(m.GetCalls()) != 0 || m.GetCallId() != 1 || ok {
		t.Errorf("alone: %v, a message back: %v", ids(m), ok)
	}

	// Three fit in 1000 bytes, the fourth does not: it comes back, and the
	// fifth stays queued.
	c = newStream(1000, call(2, 300), call(3, 300), call(4, 300), call(5, 10))
	m, rest, ok := c.pack(call(1, 101))
	if got := ids(m); len(got) != 3 || got[0] != 1 || got[1] != 2 || got[2] != 3 {
		t.Errorf("packed %v, want [1 2 3]", got)
	}
	if !ok || rest.m.GetCallId() != 4 || len(c.sendq) != 1 {
		t.Errorf("back: %v %v, %d still queued; want call 4 back and one queued", ok, rest.m, len(c.sendq))
	}
	if msgs, calls := c.packed.Load(), c.packedCalls.Load(); msgs != 1 || calls != 3 {
		t.Errorf("counted %d packed messages with %d calls, want 1 with 3", msgs, calls)
	}

	// The next one does not fit next to the first: both go alone.
	c = newStream(1000, call(2, 950))
	m, rest, ok = c.pack(call(1, 100))
	if len(m.GetCalls()) != 0 || m.GetCallId() != 1 || !ok || rest.m.GetCallId() != 2 {
		t.Errorf("packed %v, back: %v %v; want call 1 alone and call 2 back", ids(m), ok, rest.m)
	}

	// At most maxPack calls in one message.
	var queue []queued
	for i := range sendQueue {
		queue = append(queue, call(uint64(i+2), 1))
	}
	c = newStream(1<<20, queue...)
	m, _, ok = c.pack(call(1, 1))
	if n := len(m.GetCalls()); n != maxPack || ok || len(c.sendq) != sendQueue-maxPack+1 {
		t.Errorf("%d calls packed, a message back: %v, %d still queued; want %d, no, %d", n, ok, len(c.sendq), maxPack, sendQueue-maxPack+1)
	}
}

// envelopeOf bounds the real size of a call's message, packed, for any
// metadata: a trace context, a long tracestate and baggage included.
func TestEnvelopeOfBoundsTheMessage(t *testing.T) {
	req := &handlerpb.HandleRequest{Id: "t-0-1", Route: "r", Attempt: 1,
		Record: &handlerpb.Record{Topic: "t", Offset: 1 << 40, Value: make([]byte, 300)}}
	for name, md := range map[string]map[string]string{
		"none":          nil,
		"traceparent":   {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
		"long metadata": {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "tracestate": strings.Repeat("v=1,", 128), "baggage": strings.Repeat("k=v,", 2000)},
	} {
		m := &handlerpb.StreamRequest{CallId: math.MaxUint64, Request: req, Metadata: md}
		packed := proto.Size(&handlerpb.StreamRequest{Calls: []*handlerpb.StreamRequest{m}})
		if bound := proto.Size(req) + envelopeOf(md); packed > bound {
			t.Errorf("%s: a packed call takes %d bytes, more than its bound %d", name, packed, bound)
		}
	}
	cancel := &handlerpb.StreamRequest{Calls: []*handlerpb.StreamRequest{{CallId: math.MaxUint64, Cancel: true}}}
	if n := proto.Size(cancel); n > envelopeOf(nil) {
		t.Errorf("a packed cancellation takes %d bytes, more than its bound %d", n, envelopeOf(nil))
	}
}
