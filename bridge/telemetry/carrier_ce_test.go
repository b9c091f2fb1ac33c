package telemetry_test

import (
	"context"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/baggage"

	"github.com/hookbridge/hookbridge/bridge/target"
	"github.com/hookbridge/hookbridge/bridge/telemetry"
)

// A tracestate or baggage split over several headers is read whole
// (docs/tracing.md), on the CloudEvent path too: a record whose context is
// only in ce_traceparent. Before, that path read the last baggage header
// and the last ce_tracestate header only.
func TestExtractRecordCEReadsSplitBaggageWhole(t *testing.T) {
	hs := []target.Header{
		{Key: "ce_traceparent", Value: []byte("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")},
		{Key: "baggage", Value: []byte("user=alice")},
		{Key: "baggage", Value: []byte("tenant=acme")},
	}
	ctx, sc := telemetry.ExtractRecord(context.Background(), hs)
	if !sc.IsValid() {
		t.Fatal("ce_traceparent not extracted")
	}
	bg := baggage.FromContext(ctx)
	if bg.Member("user").Value() != "alice" || bg.Member("tenant").Value() != "acme" {
		t.Errorf("CE fallback: baggage %q, want both headers' members (user=alice,tenant=acme)", bg.String())
	}
	// The same record with a plain traceparent reads both (control).
	hs[0].Key = "traceparent"
	ctx, _ = telemetry.ExtractRecord(context.Background(), hs)
	if bg := baggage.FromContext(ctx); bg.Len() != 2 {
		t.Errorf("control (traceparent): baggage %q", bg.String())
	}
}

func TestExtractRecordCEReadsSplitTraceStateWhole(t *testing.T) {
	hs := []target.Header{
		{Key: "ce_traceparent", Value: []byte("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")},
		{Key: "ce_tracestate", Value: []byte("a=1")},
		{Key: "ce_tracestate", Value: []byte("b=2")},
	}
	_, sc := telemetry.ExtractRecord(context.Background(), hs)
	if got := sc.TraceState().String(); got != "a=1,b=2" {
		t.Errorf("CE fallback: tracestate %q, want a=1,b=2 (split headers read whole)", got)
	}
}

// Baggage over MaxBaggage is cut down, the largest members first, so that
// the context passed on fits receivers' and plugins' header limits; baggage
// within it passes whole.
func TestExtractRecordBoundsBaggage(t *testing.T) {
	small := "s1=1,s2=2,s3=3"
	big := "a=" + strings.Repeat("x", 3000) + ",b=" + strings.Repeat("y", 2000) + "," + small
	hs := []target.Header{
		{Key: "traceparent", Value: []byte("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")},
		{Key: "baggage", Value: []byte(big)},
	}
	ctx, _ := telemetry.ExtractRecord(context.Background(), hs)
	bg := baggage.FromContext(ctx)
	if n := len(bg.String()); n > telemetry.MaxBaggage {
		t.Fatalf("baggage of %d bytes passed on, over %d", n, telemetry.MaxBaggage)
	}
	if bg.Member("a").Key() != "" || bg.Member("b").Value() != strings.Repeat("y", 2000) || bg.Member("s2").Value() != "2" {
		t.Fatalf("kept members %d: want all but the largest, a", bg.Len())
	}
	hs[1].Value = []byte(small)
	ctx, _ = telemetry.ExtractRecord(context.Background(), hs)
	if got := baggage.FromContext(ctx); got.Len() != 3 {
		t.Fatalf("baggage within the limit: %q", got.String())
	}
}
