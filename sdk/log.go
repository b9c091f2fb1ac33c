package sdk

import (
	"context"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"

	"go.opentelemetry.io/otel/trace"
)

// stderr is the process's standard error as it was before Serve started:
// go-plugin then points os.Stderr at a pipe of its own, while the bridge
// reads log lines from the original one.
var stderr io.Writer = os.Stderr

// hclogTimeFormat is the @timestamp layout go-plugin parses.
const hclogTimeFormat = "2006-01-02T15:04:05.000000Z07:00"

// NewLogger returns a logger for a plugin's own log. It writes JSON lines in
// go-plugin's log format (@level, @message, @timestamp and the attributes)
// to the process's standard error, which the bridge reads: each line shows
// up in the bridge's log at its level, with plugin=<name>. Records below
// debug are dropped; the bridge's log level filters the rest. Attributes
// may have any key, "time", "level" and "msg" included: they are logged as
// they are and do not replace the line's own. A line logged with a *Context
// method whose ctx carries a span (the ctx passed to Handle does: the
// bridge's delivery span, or a span started from it) has that span's
// trace_id and span_id, the keys of the bridge's own lines, so a search for
// a record's trace finds the handler's lines too.
func NewLogger() *slog.Logger {
	return slog.New(newLogHandler(stderr, slog.LevelDebug))
}

// newLogHandler writes go-plugin's JSON log format to w.
func newLogHandler(w io.Writer, level slog.Leveler) slog.Handler {
	return &logHandler{h: slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level, ReplaceAttr: hclogAttr})}
}

// userKeyMark marks a top-level attribute of the caller's whose key is one
// of slog's built-in keys ("time", "level", "msg", "source"). ReplaceAttr
// is called for those built-ins and for the caller's attributes alike, with
// no way to tell them apart: unmarked, a caller's "time" that is not a
// time.Time made the renaming panic (and with it the handler's call), and
// a caller's "level" or "msg" became a second @level or @message, which
// go-plugin reads in place of the line's own. hclogAttr removes the mark.
const userKeyMark = "\x00hookbridge-user-key:"

// logHandler is the JSON handler with the caller's top-level attributes
// named like slog's built-in keys marked (userKeyMark), so that only the
// built-ins are renamed to go-plugin's keys.
type logHandler struct {
	h       slog.Handler
	grouped bool // a group is open: attributes are not at the top level
}

func (l *logHandler) Enabled(ctx context.Context, level slog.Level) bool {
	return l.h.Enabled(ctx, level)
}

func (l *logHandler) Handle(ctx context.Context, r slog.Record) error {
	if ctx != nil {
		if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
			r = r.Clone()
			r.AddAttrs(slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String()))
		}
	}
	if l.grouped {
		return l.h.Handle(ctx, r)
	}
	clash := false
	r.Attrs(func(a slog.Attr) bool {
		clash = builtinKey(a.Key) || a.Key == "" && a.Value.Kind() == slog.KindGroup
		return !clash
	})
	if !clash {
		return l.h.Handle(ctx, r)
	}
	marked := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
	r.Attrs(func(a slog.Attr) bool {
		marked.AddAttrs(markUserKey(a))
		return true
	})
	return l.h.Handle(ctx, marked)
}

func (l *logHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	if !l.grouped {
		attrs = slices.Clone(attrs)
		for i := range attrs {
			attrs[i] = markUserKey(attrs[i])
		}
	}
	return &logHandler{h: l.h.WithAttrs(attrs), grouped: l.grouped}
}

func (l *logHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return l
	}
	return &logHandler{h: l.h.WithGroup(name), grouped: true}
}

// builtinKey reports whether key is one of slog's built-in keys.
func builtinKey(key string) bool {
	switch key {
	case slog.TimeKey, slog.LevelKey, slog.MessageKey, slog.SourceKey:
		return true
	}
	return false
}

// markUserKey marks a with userKeyMark when its key is a built-in one.
// A group keeps its key (ReplaceAttr is not called for groups), but the
// members of one without a key are inlined at the level of the group, so
// they are marked in turn.
func markUserKey(a slog.Attr) slog.Attr {
	switch {
	case a.Key == "" && a.Value.Kind() == slog.KindGroup:
		members := slices.Clone(a.Value.Group())
		for i := range members {
			members[i] = markUserKey(members[i])
		}
		return slog.Attr{Value: slog.GroupValue(members...)}
	case !builtinKey(a.Key):
		return a
	case a.Value.Resolve().Kind() == slog.KindGroup:
		return a
	}
	a.Key = userKeyMark + a.Key
	return a
}

// hclogAttr renames slog's built-in keys to go-plugin's.
func hclogAttr(groups []string, a slog.Attr) slog.Attr {
	if len(groups) > 0 {
		return a
	}
	if k, ok := strings.CutPrefix(a.Key, userKeyMark); ok {
		a.Key = k // the caller's own attribute
		return a
	}
	switch a.Key {
	case slog.TimeKey:
		if a.Value.Kind() != slog.KindTime {
			return a // never panic in a log call
		}
		return slog.String("@timestamp", a.Value.Time().Format(hclogTimeFormat))
	case slog.LevelKey:
		level, _ := a.Value.Any().(slog.Level)
		return slog.String("@level", hclogLevel(level))
	case slog.MessageKey:
		return slog.String("@message", a.Value.String())
	}
	return a
}

// hclogLevel names a slog level the way go-plugin reads it.
func hclogLevel(l slog.Level) string {
	switch {
	case l < slog.LevelDebug:
		return "trace"
	case l < slog.LevelInfo:
		return "debug"
	case l < slog.LevelWarn:
		return "info"
	case l < slog.LevelError:
		return "warn"
	}
	return "error"
}
