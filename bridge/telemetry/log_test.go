package telemetry_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/hookbridge/hookbridge/bridge/telemetry"
)

func TestLoggerTraceContext(t *testing.T) {
	t.Parallel()
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{0xab, 1}, SpanID: trace.SpanID{0xcd, 2}, TraceFlags: trace.FlagsSampled})
	ctx := trace.ContextWithSpanContext(context.Background(), sc)
	var buf bytes.Buffer
	log := telemetry.NewLogger(&buf, "json", "debug").With("route", "orders")
	log.InfoContext(ctx, "delivered", "record", "orders-3-42")
	log.InfoContext(context.Background(), "no span")
	log.Info("no context")

	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("lines = %q", lines)
	}
	var first map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil {
		t.Fatal(err)
	}
	if first["trace_id"] != sc.TraceID().String() || first["span_id"] != sc.SpanID().String() ||
		first["route"] != "orders" || first["record"] != "orders-3-42" {
		t.Errorf("line with a span = %v, want trace_id %s, span_id %s and the other attributes", first, sc.TraceID(), sc.SpanID())
	}
	for _, l := range lines[1:] {
		if strings.Contains(l, "trace_id") || strings.Contains(l, "span_id") {
			t.Errorf("line without a span has trace attributes: %s", l)
		}
	}

	buf.Reset()
	telemetry.NewLogger(&buf, "text", "info").InfoContext(ctx, "hello")
	if !strings.Contains(buf.String(), "trace_id="+sc.TraceID().String()) || !strings.Contains(buf.String(), "span_id="+sc.SpanID().String()) {
		t.Errorf("text line = %q, want trace_id and span_id", buf.String())
	}
}

// A duration in a JSON line reads as a duration ("1.5s"), not as its
// nanoseconds (1500000000), as the text format writes it too.
func TestLoggerDurations(t *testing.T) {
	t.Parallel()
	for _, format := range []string{"json", "text"} {
		var buf bytes.Buffer
		log := telemetry.NewLogger(&buf, format, "info").With("timeout", 25*time.Second)
		log.Info("shutdown timeout reached", "in", 1500*time.Millisecond)
		for _, want := range []string{"25s", "1.5s"} {
			if !strings.Contains(buf.String(), want) {
				t.Errorf("%s line %q does not say %s", format, buf.String(), want)
			}
		}
		if strings.Contains(buf.String(), "1500000000") {
			t.Errorf("%s line %q holds a duration's nanoseconds", format, buf.String())
		}
	}
}
