package sdk

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"
)

// The bridge (go-plugin) reads @level, @message and @timestamp, the last in
// one exact layout; a line it cannot parse is logged raw at debug.
func TestLogLinesAreInGoPluginsFormat(t *testing.T) {
	cases := []struct {
		level slog.Level
		want  string
	}{
		{slog.LevelDebug - 4, "trace"},
		{slog.LevelDebug, "debug"},
		{slog.LevelInfo, "info"},
		{slog.LevelWarn, "warn"},
		{slog.LevelError, "error"},
	}
	for _, tc := range cases {
		var buf bytes.Buffer
		log := slog.New(newLogHandler(&buf, slog.LevelDebug-4))
		log.Log(t.Context(), tc.level, "hello", "id", "orders-0-1", slog.Group("g", "k", "v"))
		var entry map[string]any
		if err := json.Unmarshal(buf.Bytes(), &entry); err != nil {
			t.Fatalf("%s: %v", buf.String(), err)
		}
		if entry["@level"] != tc.want || entry["@message"] != "hello" || entry["id"] != "orders-0-1" {
			t.Errorf("entry = %v, want level %s", entry, tc.want)
		}
		if g, _ := entry["g"].(map[string]any); g["k"] != "v" {
			t.Errorf("group = %v", entry["g"])
		}
		ts, _ := entry["@timestamp"].(string)
		if _, err := time.Parse(hclogTimeFormat, ts); err != nil {
			t.Errorf("@timestamp %q: %v", ts, err)
		}
		for _, k := range []string{"level", "msg", "time"} {
			if _, ok := entry[k]; ok {
				t.Errorf("slog key %q left in %v", k, entry)
			}
		}
	}
}

// A line logged with a ctx that carries a span has the span's trace_id and
// span_id, under the keys the bridge's own lines use; a line without one
// has neither.
func TestLogLinesCarryTheTraceOfTheirContext(t *testing.T) {
	sc := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36},
		SpanID:  trace.SpanID{0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7},
		Remote:  true,
	})
	var buf bytes.Buffer
	log := slog.New(newLogHandler(&buf, slog.LevelDebug))
	log.InfoContext(trace.ContextWithSpanContext(t.Context(), sc), "written", "id", "orders-0-1", "time", 3)
	log.InfoContext(t.Context(), "no span")
	lines := bytes.Split(bytes.TrimSpace(buf.Bytes()), []byte("\n"))
	if len(lines) != 2 {
		t.Fatalf("%d lines: %s", len(lines), buf.String())
	}
	var withSpan, without map[string]any
	if err := json.Unmarshal(lines[0], &withSpan); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(lines[1], &without); err != nil {
		t.Fatal(err)
	}
	if withSpan["trace_id"] != sc.TraceID().String() || withSpan["span_id"] != sc.SpanID().String() {
		t.Errorf("line = %s, want trace_id %s and span_id %s", lines[0], sc.TraceID(), sc.SpanID())
	}
	if withSpan["time"] != float64(3) || withSpan["id"] != "orders-0-1" || withSpan["@message"] != "written" {
		t.Errorf("line = %s: the handler's own attributes changed", lines[0])
	}
	if _, ok := without["trace_id"]; ok {
		t.Errorf("line without a span = %s, want no trace_id", lines[1])
	}
}
