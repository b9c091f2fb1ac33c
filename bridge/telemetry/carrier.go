package telemetry

import (
	"context"
	"slices"
	"strings"

	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/hookbridge/hookbridge/bridge/target"
)

// Trace-context header names on Kafka records: W3C Trace Context, and the
// CloudEvents Kafka binding's distributed-tracing extension as a fallback.
const (
	HeaderTraceparent   = "traceparent"
	HeaderTracestate    = "tracestate"
	HeaderCETraceparent = "ce_traceparent"
	HeaderCETracestate  = "ce_tracestate"
)

// RecordPropagator reads and writes the trace context of Kafka records: W3C
// Trace Context plus Baggage. It is fixed, not the global propagator: the
// header names are part of the record contract (docs/tracing.md), whatever
// an operator configures for HTTP.
var RecordPropagator propagation.TextMapPropagator = propagation.NewCompositeTextMapPropagator(
	propagation.TraceContext{}, propagation.Baggage{})

// HeaderCarrier adapts Kafka record headers to propagation.TextMapCarrier.
// Keys match case-insensitively; Get returns the last header of a key (Kafka
// keys may repeat), but every tracestate header joined, and Values every
// header of a key; Set replaces every header of its key with one at the end.
// Set never writes into the backing array of the slice it started from, so a
// carrier over a consumed record's headers never changes the record.
type HeaderCarrier []target.Header

var (
	_ propagation.TextMapCarrier = (*HeaderCarrier)(nil)
	_ propagation.ValuesGetter   = (*HeaderCarrier)(nil)
)

// Get returns the value of the last header named key, or "". For
// tracestate, whose list a producer may split over several headers (W3C
// Trace Context joins them as HTTP joins a repeated field), it returns them
// all, joined with commas.
func (c *HeaderCarrier) Get(key string) string {
	if strings.EqualFold(key, HeaderTracestate) {
		return joined(*c, key)
	}
	v, _ := lookup(*c, key)
	return v
}

// Values returns the values of every header named key, in order: the
// Baggage propagator reads a repeated baggage header this way
// (propagation.ValuesGetter).
func (c *HeaderCarrier) Values(key string) []string {
	var vs []string
	for _, h := range *c {
		if strings.EqualFold(h.Key, key) {
			vs = append(vs, string(h.Value))
		}
	}
	return vs
}

// joined returns the values of the headers named key joined with commas;
// one header's value costs no allocation beyond its string.
func joined(hs []target.Header, key string) string {
	first, n := -1, 0
	for i, h := range hs {
		if strings.EqualFold(h.Key, key) {
			if first < 0 {
				first = i
			}
			n++
		}
	}
	switch n {
	case 0:
		return ""
	case 1:
		return string(hs[first].Value)
	}
	var b strings.Builder
	for _, h := range hs[first:] {
		if strings.EqualFold(h.Key, key) {
			if b.Len() > 0 {
				b.WriteByte(',')
			}
			b.Write(h.Value)
		}
	}
	return b.String()
}

// Set replaces the headers named key with one header key=value.
func (c *HeaderCarrier) Set(key, value string) {
	out := make([]target.Header, 0, len(*c)+1)
	for _, h := range *c {
		if !strings.EqualFold(h.Key, key) {
			out = append(out, h)
		}
	}
	*c = append(out, target.Header{Key: key, Value: []byte(value)})
}

// Keys lists the distinct header keys, in order of first appearance.
func (c *HeaderCarrier) Keys() []string {
	keys := make([]string, 0, len(*c))
	seen := make(map[string]bool, len(*c))
	for _, h := range *c {
		if !seen[h.Key] {
			seen[h.Key] = true
			keys = append(keys, h.Key)
		}
	}
	return keys
}

func lookup(hs []target.Header, key string) (string, bool) {
	for i := len(hs) - 1; i >= 0; i-- {
		if strings.EqualFold(hs[i].Key, key) {
			return string(hs[i].Value), true
		}
	}
	return "", false
}

// ceCarrier reads traceparent and tracestate from their ce_ headers, and
// the rest as HeaderCarrier does: a tracestate or baggage split over several
// headers is read whole.
type ceCarrier []target.Header

var _ propagation.ValuesGetter = ceCarrier(nil)

func (c ceCarrier) Get(key string) string {
	switch {
	case strings.EqualFold(key, HeaderTraceparent):
		v, _ := lookup(c, HeaderCETraceparent)
		return v
	case strings.EqualFold(key, HeaderTracestate):
		return joined(c, "ce_"+HeaderTracestate)
	}
	return (*HeaderCarrier)(&c).Get(key)
}
func (c ceCarrier) Values(key string) []string { return (*HeaderCarrier)(&c).Values(key) }
func (c ceCarrier) Set(string, string)         {}
func (c ceCarrier) Keys() []string             { return (*HeaderCarrier)(&c).Keys() }

// ExtractRecord returns ctx carrying the trace context a record's producer
// left in its headers, as the remote parent span context, plus any baggage;
// and that span context. It reads traceparent/tracestate, and when they give
// no valid context (absent or malformed), ce_traceparent/ce_tracestate. When
// neither does, the returned ctx carries no parent at all (not even one ctx
// had), so a span started from it is a new root, and the span context is the
// zero value. A malformed header is never an error.
func ExtractRecord(ctx context.Context, hs []target.Header) (context.Context, trace.SpanContext) {
	if len(hs) == 0 && !trace.SpanContextFromContext(ctx).IsValid() {
		return ctx, trace.SpanContext{} // nothing to read, and no parent to drop: ctx as it is
	}
	// Drop a span ctx may carry: the record alone decides the parent.
	base := trace.ContextWithSpanContext(ctx, trace.SpanContext{})
	c := HeaderCarrier(hs)
	out := boundBaggage(RecordPropagator.Extract(base, &c))
	if sc := trace.SpanContextFromContext(out); sc.IsValid() {
		return boundTraceState(out, sc)
	}
	if _, ok := lookup(hs, HeaderCETraceparent); ok {
		ceOut := boundBaggage(RecordPropagator.Extract(base, ceCarrier(hs)))
		if sc := trace.SpanContextFromContext(ceOut); sc.IsValid() {
			return boundTraceState(ceOut, sc)
		}
	}
	return out, trace.SpanContext{}
}

// MaxBaggage is the most baggage the bridge passes on, in bytes as encoded.
// W3C Baggage allows 8192, which with the header's name is more than
// nginx's default limit of 8 KB per header line, and with the rest of a
// plugin call's metadata more than gRPC's default of 8 KB: a receiver would
// refuse every request of such a record, and the record would end in the
// dead-letter topic for a header its producer set.
const MaxBaggage = 4096

// boundBaggage keeps the baggage of ctx within MaxBaggage: the largest
// members go first (the same record always keeps the same ones).
func boundBaggage(ctx context.Context) context.Context {
	b := baggage.FromContext(ctx)
	if b.Len() == 0 || len(b.String()) <= MaxBaggage {
		return ctx
	}
	ms := b.Members()
	slices.SortFunc(ms, func(x, y baggage.Member) int {
		if d := len(y.String()) - len(x.String()); d != 0 {
			return d
		}
		return strings.Compare(x.Key(), y.Key())
	})
	for len(ms) > 0 {
		if kept, err := baggage.New(ms...); err == nil && len(kept.String()) <= MaxBaggage {
			return baggage.ContextWithBaggage(ctx, kept)
		}
		ms = ms[1:]
	}
	return baggage.ContextWithoutBaggage(ctx)
}

// MaxTraceState is the longest tracestate the bridge passes on, in
// characters: what W3C Trace Context asks every vendor to propagate at least.
// The parser takes up to 32 entries of 512 characters each, 16 KB that would
// go with every request and plugin call and exceed the header limits of
// common servers (gRPC C-core's 8 KB, nginx's 8 KB per line).
const MaxTraceState = 512

// boundTraceState shortens the tracestate of sc to MaxTraceState characters
// the way the specification says: entries longer than 128 characters go
// first (from the end, until it fits), then other entries from the end.
func boundTraceState(ctx context.Context, sc trace.SpanContext) (context.Context, trace.SpanContext) {
	ts := sc.TraceState()
	if len(ts.String()) <= MaxTraceState {
		return ctx, sc
	}
	var kept []string
	ts.Walk(func(k, v string) bool {
		kept = append(kept, k+"="+v)
		return true
	})
	for i := len(kept) - 1; i >= 0 && len(strings.Join(kept, ",")) > MaxTraceState; i-- {
		if len(kept[i]) > 128 {
			kept = slices.Delete(kept, i, i+1)
		}
	}
	for len(strings.Join(kept, ",")) > MaxTraceState {
		kept = kept[:len(kept)-1]
	}
	short, err := trace.ParseTraceState(strings.Join(kept, ","))
	if err != nil { // entries of a parsed tracestate always parse again
		short = trace.TraceState{}
	}
	sc = sc.WithTraceState(short)
	return trace.ContextWithRemoteSpanContext(ctx, sc), sc
}

// InjectRecord returns a copy of hs carrying ctx's span context (and baggage)
// for a record about to be produced: any traceparent and tracestate in hs are
// replaced (a tracestate never outlives the traceparent it belonged to), other
// headers are kept in order. The ce_traceparent/ce_tracestate of a
// CloudEvent are left alone: they name the event's origin, which
// intermediaries do not change. hs is not modified.
func InjectRecord(ctx context.Context, hs []target.Header) []target.Header {
	c := make(HeaderCarrier, 0, len(hs)+2)
	for _, h := range hs {
		if !strings.EqualFold(h.Key, HeaderTraceparent) && !strings.EqualFold(h.Key, HeaderTracestate) {
			c = append(c, h)
		}
	}
	RecordPropagator.Inject(ctx, &c)
	return c
}
