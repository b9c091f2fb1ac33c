package host_test

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/trace"

	"github.com/hookbridge/hookbridge/bridge/telemetry"
	"github.com/hookbridge/hookbridge/plugins/host"
)

// The line that says a call is retried on another process, after the one
// it was on died, is about one record: it names it as every other line
// about a record does, record=<webhook-id>, with the delivery's trace_id.
// It said id=<webhook-id>, which a search for record=orders-1-7 missed.
func TestCrashRetryLineNamesTheRecordAsTheOthersDo(t *testing.T) {
	logs := &syncBuffer{}
	cfg := testConfig(testPlugin)
	p, _ := newPool(t, cfg, host.Options{Logger: telemetry.NewLogger(logs, "json", "debug")})
	if err := p.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	tid, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	sid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	ctx := trace.ContextWithSpanContext(t.Context(), trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid}))
	marker := filepath.Join(t.TempDir(), "crashed")
	if _, err := p.Deliver(ctx, delivery(7, "crash-once:"+marker, []byte("v"))); err != nil {
		t.Fatal(err)
	}
	var found bool
	for line := range strings.Lines(logs.String()) {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if m["msg"] != "plugin process failed during a call; retrying the call on another" {
			continue
		}
		found = true
		if m["record"] != "orders-1-7" || m["trace_id"] != tid.String() {
			t.Errorf("retry line = %v, want record=orders-1-7 and trace_id=%s", m, tid)
		}
	}
	if !found {
		t.Fatalf("no line says the call is retried on another process:\n%s", logs)
	}
}
