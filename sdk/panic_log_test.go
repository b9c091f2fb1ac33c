package sdk

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"testing"

	"go.opentelemetry.io/otel/trace"

	"github.com/hookbridge/hookbridge/sdk/handlerpb"
	"github.com/hookbridge/hookbridge/sdk/protocol"
)

// The SDK's own error line about a call that panicked (in Handle, or while
// its answer was built) is a line about the record like the handler's: it
// carries the call's trace_id and span_id, so that a search for the
// record's trace finds the stack of its panic beside the bridge's lines.
func TestPanicLinesCarryTheCallsTrace(t *testing.T) {
	sc := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36},
		SpanID:  trace.SpanID{0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7},
		Remote:  true,
	})
	for name, h := range map[string]HandlerFunc{
		"handler": func(context.Context, *Message) (*Result, error) { panic("bad handler") },
		"answer":  func(context.Context, *Message) (*Result, error) { return nil, panicky{} },
	} {
		t.Run(name, func(t *testing.T) {
			var buf bytes.Buffer
			svc := newService(h, slog.New(newLogHandler(&buf, slog.LevelDebug)), protocol.DefaultMaxMessageBytes)
			resp, err := svc.Handle(trace.ContextWithSpanContext(t.Context(), sc), &handlerpb.HandleRequest{Id: "t-0-1"})
			if err != nil || resp.GetError().GetKind() != handlerpb.ErrorKind_ERROR_KIND_RETRYABLE {
				t.Fatalf("answer = %v, %v; want a retryable error", resp, err)
			}
			var line map[string]any
			if err := json.Unmarshal(bytes.TrimSpace(buf.Bytes()), &line); err != nil {
				t.Fatalf("log %q: %v", buf.String(), err)
			}
			if line["@level"] != "error" || line["id"] != "t-0-1" || line["stack"] == nil {
				t.Fatalf("line = %v, want the panic's error line", line)
			}
			if line["trace_id"] != sc.TraceID().String() || line["span_id"] != sc.SpanID().String() {
				t.Errorf("panic line has trace_id %v and span_id %v, want the call's %s and %s", line["trace_id"], line["span_id"], sc.TraceID(), sc.SpanID())
			}
		})
	}
}
