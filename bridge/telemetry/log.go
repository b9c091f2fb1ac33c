package telemetry

import (
	"context"
	"io"
	"log/slog"
	"strings"

	"go.opentelemetry.io/otel/trace"
)

// Log attribute keys of the trace context of a log line.
const (
	LogTraceID = "trace_id"
	LogSpanID  = "span_id"
)

// NewLogger returns the process logger: JSON or text, at level ("debug",
// "info", "warn", "error"). A line logged with a *Context method whose ctx
// carries a span (a record's process span, say) has that span's trace_id and
// span_id, so it can be found from the trace and the other way round.
func NewLogger(w io.Writer, format, level string) *slog.Logger {
	var lv slog.Level
	switch strings.ToLower(level) {
	case "debug":
		lv = slog.LevelDebug
	case "warn":
		lv = slog.LevelWarn
	case "error":
		lv = slog.LevelError
	default:
		lv = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: lv, ReplaceAttr: durationText}
	if format == "text" {
		return slog.New(NewTraceHandler(slog.NewTextHandler(w, opts)))
	}
	return slog.New(NewTraceHandler(slog.NewJSONHandler(w, opts)))
}

// durationText writes a duration as Go writes it ("1.5s"), in JSON too,
// whose handler would write its nanoseconds (1500000000), which reads as
// anything but a duration.
func durationText(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		return slog.String(a.Key, a.Value.Duration().String())
	}
	return a
}

// TraceHandler is a slog.Handler that adds trace_id and span_id to every
// record whose context carries a valid span context, then passes it on. The
// two attributes sit at the top level unless the logger was given a group
// with WithGroup (then they sit inside it, like every attribute of the line).
type TraceHandler struct{ next slog.Handler }

var _ slog.Handler = TraceHandler{}

// NewTraceHandler wraps next.
func NewTraceHandler(next slog.Handler) TraceHandler { return TraceHandler{next: next} }

// Enabled reports whether next handles level.
func (h TraceHandler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.next.Enabled(ctx, level)
}

// Handle adds the trace context of ctx, if any, and calls next.
func (h TraceHandler) Handle(ctx context.Context, r slog.Record) error {
	if ctx != nil {
		if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
			r = r.Clone()
			r.AddAttrs(slog.String(LogTraceID, sc.TraceID().String()), slog.String(LogSpanID, sc.SpanID().String()))
		}
	}
	return h.next.Handle(ctx, r)
}

// WithAttrs returns a TraceHandler over next.WithAttrs.
func (h TraceHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return TraceHandler{next: h.next.WithAttrs(attrs)}
}

// WithGroup returns a TraceHandler over next.WithGroup.
func (h TraceHandler) WithGroup(name string) slog.Handler {
	return TraceHandler{next: h.next.WithGroup(name)}
}
