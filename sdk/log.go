package sdk

import (
	"io"
	"log/slog"
	"os"
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
// debug are dropped; the bridge's log level filters the rest.
func NewLogger() *slog.Logger {
	return slog.New(newLogHandler(stderr, slog.LevelDebug))
}

// newLogHandler writes go-plugin's JSON log format to w.
func newLogHandler(w io.Writer, level slog.Leveler) slog.Handler {
	return slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level, ReplaceAttr: hclogAttr})
}

// hclogAttr renames slog's built-in keys to go-plugin's.
func hclogAttr(groups []string, a slog.Attr) slog.Attr {
	if len(groups) > 0 {
		return a
	}
	switch a.Key {
	case slog.TimeKey:
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
