package telemetry_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/trace"

	"github.com/hookbridge/hookbridge/bridge/target"
	"github.com/hookbridge/hookbridge/bridge/telemetry"
)

func hdrs(kv ...string) []target.Header {
	var hs []target.Header
	for i := 0; i < len(kv); i += 2 {
		hs = append(hs, target.Header{Key: kv[i], Value: []byte(kv[i+1])})
	}
	return hs
}

func flat(hs []target.Header) []string {
	var out []string
	for _, h := range hs {
		out = append(out, h.Key+"="+string(h.Value))
	}
	return out
}

func TestHeaderCarrier(t *testing.T) {
	t.Parallel()
	orig := hdrs("a", "1", "Traceparent", "old", "b", "2", "traceparent", "older", "a", "3")
	c := telemetry.HeaderCarrier(orig)
	if got := c.Get("TRACEPARENT"); got != "older" {
		t.Errorf("Get = %q, want the last of the keys matching case-insensitively", got)
	}
	if got := c.Get("a"); got != "3" {
		t.Errorf("Get(a) = %q, want the last one", got)
	}
	if got := c.Get("missing"); got != "" {
		t.Errorf("Get(missing) = %q", got)
	}
	if got := c.Keys(); !slices.Equal(got, []string{"a", "Traceparent", "b", "traceparent"}) {
		t.Errorf("Keys = %q", got)
	}
	c.Set("traceparent", "new")
	if got, want := flat(c), []string{"a=1", "b=2", "a=3", "traceparent=new"}; !slices.Equal(got, want) {
		t.Errorf("after Set: %q, want %q", got, want)
	}
	if got, want := flat(orig), []string{"a=1", "Traceparent=old", "b=2", "traceparent=older", "a=3"}; !slices.Equal(got, want) {
		t.Errorf("Set changed the original headers: %q", got)
	}
}

func TestInjectRecord(t *testing.T) {
	t.Parallel()
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{0xab}, SpanID: trace.SpanID{0xcd}, TraceFlags: trace.FlagsSampled})
	ctx := trace.ContextWithSpanContext(context.Background(), sc)
	m, _ := baggage.NewMember("tenant", "acme")
	bg, _ := baggage.New(m)
	ctx = baggage.ContextWithBaggage(ctx, bg)

	orig := hdrs("content-type", "application/json", "traceparent", "00-x", "TraceState", "v=old",
		"ce_traceparent", "00-ce", "baggage", "tenant=old")
	got := telemetry.InjectRecord(ctx, orig)
	want := []string{"content-type=application/json", "ce_traceparent=00-ce",
		"traceparent=00-ab000000000000000000000000000000-cd00000000000000-01", "baggage=tenant=acme"}
	if !slices.Equal(flat(got), want) {
		t.Errorf("InjectRecord = %q, want %q", flat(got), want)
	}
	if len(orig) != 5 || string(orig[1].Value) != "00-x" {
		t.Errorf("InjectRecord changed its input: %q", flat(orig))
	}

	// No span in ctx: the stale trace context is dropped, nothing replaces it.
	got = telemetry.InjectRecord(context.Background(), hdrs("traceparent", "00-x", "tracestate", "v=1", "k", "v"))
	if !slices.Equal(flat(got), []string{"k=v"}) {
		t.Errorf("InjectRecord without a span = %q, want [k=v]", flat(got))
	}
}

func TestExtractRecordRoundTrip(t *testing.T) {
	t.Parallel()
	ts, _ := trace.ParseTraceState("vendor=x")
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{1, 2}, SpanID: trace.SpanID{3}, TraceFlags: trace.FlagsSampled, TraceState: ts})
	hs := telemetry.InjectRecord(trace.ContextWithSpanContext(context.Background(), sc), nil)
	ctx, got := telemetry.ExtractRecord(context.Background(), hs)
	if !got.IsRemote() || got.TraceID() != sc.TraceID() || got.SpanID() != sc.SpanID() || got.TraceState().String() != "vendor=x" {
		t.Errorf("ExtractRecord = %v, want %v, remote", got, sc)
	}
	if !trace.SpanContextFromContext(ctx).Equal(got) {
		t.Errorf("the returned ctx does not carry the extracted span context")
	}
}

// A record without a valid trace context starts a new trace, whatever span
// the context had; a record without headers, read in a context without a
// span, costs nothing.
func TestExtractRecordWithoutTraceContext(t *testing.T) {
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{1}, SpanID: trace.SpanID{2}, TraceFlags: trace.FlagsSampled})
	withSpan := trace.ContextWithSpanContext(context.Background(), sc)
	for name, hs := range map[string][]target.Header{
		"no headers":  nil,
		"others only": {{Key: "tenant", Value: []byte("acme")}},
		"malformed":   {{Key: "traceparent", Value: []byte("00-zz-zz-01")}},
	} {
		for _, ctx := range []context.Context{context.Background(), withSpan} {
			out, got := telemetry.ExtractRecord(ctx, hs)
			if got.IsValid() || trace.SpanContextFromContext(out).IsValid() {
				t.Errorf("%s: parent %v, context's %v; want none", name, got, trace.SpanContextFromContext(out))
			}
		}
	}
	if n := testing.AllocsPerRun(100, func() { _, _ = telemetry.ExtractRecord(context.Background(), nil) }); n != 0 {
		t.Errorf("%v allocations for a record without headers, want 0", n)
	}
}

// A tracestate longer than 512 characters is shortened as W3C Trace Context
// says: entries over 128 characters go first (from the end, only as many as
// needed), then entries from the end; the CloudEvents fallback likewise.
func TestExtractRecordBoundsTraceState(t *testing.T) {
	t.Parallel()
	entry := func(k string, n int) string { return k + "=" + strings.Repeat("v", n-len(k)-1) }
	var long []string
	for i := range 32 {
		long = append(long, entry(fmt.Sprintf("v%02d", i), 250))
	}
	for _, c := range []struct {
		name, in, want string
	}{
		{"short", "a=1,b=2", "a=1,b=2"},
		{"exactly 512", strings.Join([]string{entry("a", 255), entry("b", 256)}, ","), strings.Join([]string{entry("a", 255), entry("b", 256)}, ",")},
		{"32 long entries", strings.Join(long, ","), strings.Join(long[:2], ",")},
		{"one long entry is enough", strings.Join([]string{entry("a", 100), entry("b", 250), entry("c", 100), entry("d", 140), entry("e", 10)}, ","),
			strings.Join([]string{entry("a", 100), entry("b", 250), entry("c", 100), entry("e", 10)}, ",")},
		{"then from the end", strings.Join([]string{entry("a", 120), entry("b", 120), entry("c", 120), entry("d", 120), entry("e", 120), entry("f", 120)}, ","),
			strings.Join([]string{entry("a", 120), entry("b", 120), entry("c", 120), entry("d", 120)}, ",")},
	} {
		for _, prefix := range []string{"", "ce_"} {
			hs := []target.Header{
				{Key: prefix + "traceparent", Value: []byte("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")},
				{Key: prefix + "tracestate", Value: []byte(c.in)},
			}
			ctx, sc := telemetry.ExtractRecord(context.Background(), hs)
			if got := sc.TraceState().String(); got != c.want {
				t.Errorf("%s%s: tracestate %q (%d), want %q", prefix, c.name, got, len(got), c.want)
			}
			if len(sc.TraceState().String()) > telemetry.MaxTraceState {
				t.Errorf("%s%s: %d characters", prefix, c.name, len(sc.TraceState().String()))
			}
			if got := trace.SpanContextFromContext(ctx); !got.Equal(sc) || !got.IsRemote() {
				t.Errorf("%s%s: the context carries %v, want %v (remote)", prefix, c.name, got, sc)
			}
		}
	}
}

// A producer may split tracestate, and baggage, over several headers, as an
// HTTP client may split a field: all of them are read, in order (W3C Trace
// Context and Baggage), not only the last.
func TestExtractRecordJoinsRepeatedHeaders(t *testing.T) {
	t.Parallel()
	hs := []target.Header{
		{Key: "traceparent", Value: []byte("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")},
		{Key: "tracestate", Value: []byte("a=1")},
		{Key: "baggage", Value: []byte("user=alice")},
		{Key: "Tracestate", Value: []byte("b=2,c=3")},
		{Key: "baggage", Value: []byte("tenant=acme")},
	}
	ctx, sc := telemetry.ExtractRecord(context.Background(), hs)
	if got := sc.TraceState().String(); got != "a=1,b=2,c=3" {
		t.Errorf("tracestate %q, want a=1,b=2,c=3", got)
	}
	bg := baggage.FromContext(ctx)
	if bg.Member("user").Value() != "alice" || bg.Member("tenant").Value() != "acme" {
		t.Errorf("baggage %q, want both headers' members", bg.String())
	}
	one := hs[:3]
	if _, sc := telemetry.ExtractRecord(context.Background(), one); sc.TraceState().String() != "a=1" {
		t.Errorf("one tracestate header: %q", sc.TraceState().String())
	}
}
