package host

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log"
	"log/slog"
	"sync"
	"time"

	hclog "github.com/hashicorp/go-hclog"
)

// hclogLevelTrace is the slog level of hclog's Trace, below Debug.
const hclogLevelTrace = slog.LevelDebug - 4

// goPluginTime is the layout of the "@timestamp" go-plugin reads in a JSON
// log line: six digits of fraction, no fewer.
const goPluginTime = "2006-01-02T15:04:05.000000Z07:00"

// safeLogLine returns a line of a plugin's standard error as go-plugin can
// take it. go-plugin reads the "@message", "@level" and "@timestamp" of a
// JSON object as strings, and one that is not (a number, null, an object: a
// log call given something other than text) panics, which ends the bridge.
// Such a message or level becomes its JSON text. A "@timestamp" that go-plugin
// cannot read (an epoch number, milliseconds instead of microseconds) would
// make it relay the line as plain text at debug level; the bridge stamps the
// line with its own time, so it is dropped and the line keeps its level.
// Any other line is returned as it is.
func safeLogLine(line []byte) []byte {
	trimmed := bytes.TrimSpace(line)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return line
	}
	var entry map[string]json.RawMessage
	if json.Unmarshal(trimmed, &entry) != nil {
		return line
	}
	changed := false
	for _, k := range []string{"@message", "@level"} {
		if v, ok := entry[k]; ok && !jsonString(v) {
			entry[k], _ = json.Marshal(string(v))
			changed = true
		}
	}
	if v, ok := entry["@timestamp"]; ok {
		var ts string
		if !jsonString(v) || json.Unmarshal(v, &ts) != nil {
			delete(entry, "@timestamp")
			changed = true
		} else if _, err := time.Parse(goPluginTime, ts); err != nil {
			delete(entry, "@timestamp")
			changed = true
		}
	}
	if !changed {
		return line
	}
	// Written as the plugin wrote it, "<", ">" and "&" unescaped: json.Marshal
	// would make each six bytes, and a line grown past maxLogLine would
	// reach go-plugin in pieces, relayed at debug level.
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	if enc.Encode(entry) != nil {
		return line
	}
	return out.Bytes() // with its newline
}

// jsonString reports whether v is a JSON string (null is not).
func jsonString(v json.RawMessage) bool {
	v = bytes.TrimSpace(v)
	return len(v) > 0 && v[0] == '"'
}

// slogAdapter is an hclog.Logger that writes to a slog.Logger: go-plugin's
// own messages and the log lines a plugin writes to stderr (which go-plugin
// parses and re-logs at their level) end up in the bridge's log.
type slogAdapter struct {
	log  *slog.Logger
	name string
	args []any
}

var _ hclog.Logger = (*slogAdapter)(nil)

func newHCLogger(log *slog.Logger) hclog.Logger { return &slogAdapter{log: log} }

func slogLevel(l hclog.Level) slog.Level {
	switch l {
	case hclog.Trace:
		return hclogLevelTrace
	case hclog.Debug:
		return slog.LevelDebug
	case hclog.Warn:
		return slog.LevelWarn
	case hclog.Error:
		return slog.LevelError
	}
	return slog.LevelInfo
}

// Log writes msg at level. go-plugin adds a "timestamp" argument to the
// lines it relays from a plugin; slog stamps its own, so it is dropped. Its
// "plugin" argument (the executable) becomes "command", so that plugin=
// stays the configured name.
//
// A relayed line's arguments are the plugin's own attributes, named as its
// author liked: one whose name the line has already (slog's time, level and
// msg, the pool's plugin, an earlier argument) is renamed "arg.<name>", so
// that the line is a JSON object with each key once, which log stores that
// refuse duplicate keys keep.
func (a *slogAdapter) Log(level hclog.Level, msg string, args ...any) {
	l := slogLevel(level)
	ctx := context.Background() // hclog carries no context
	if !a.log.Enabled(ctx, l) {
		return
	}
	attrs := make([]any, 0, len(a.args)+len(args))
	used := map[string]bool{slog.TimeKey: true, slog.LevelKey: true, slog.MessageKey: true, "plugin": true}
	add := func(k string, v any) {
		for used[k] {
			k = "arg." + k
		}
		used[k] = true
		attrs = append(attrs, k, v)
	}
	for i := 0; i+1 < len(a.args); i += 2 {
		k, _ := a.args[i].(string)
		add(k, a.args[i+1])
	}
	for i := 0; i+1 < len(args); i += 2 {
		switch k, _ := args[i].(string); k {
		case "timestamp":
			continue
		case "plugin": // go-plugin's word for the executable; ours is the configured name
			add("command", args[i+1])
		default:
			add(k, args[i+1])
		}
	}
	if len(args)%2 == 1 {
		add("extra", args[len(args)-1])
	}
	a.log.Log(ctx, l, msg, attrs...)
}

func (a *slogAdapter) Trace(msg string, args ...any) { a.Log(hclog.Trace, msg, args...) }
func (a *slogAdapter) Debug(msg string, args ...any) { a.Log(hclog.Debug, msg, args...) }
func (a *slogAdapter) Info(msg string, args ...any)  { a.Log(hclog.Info, msg, args...) }
func (a *slogAdapter) Warn(msg string, args ...any)  { a.Log(hclog.Warn, msg, args...) }
func (a *slogAdapter) Error(msg string, args ...any) { a.Log(hclog.Error, msg, args...) }

func (a *slogAdapter) enabled(l hclog.Level) bool {
	return a.log.Enabled(context.Background(), slogLevel(l))
}

func (a *slogAdapter) IsTrace() bool { return a.enabled(hclog.Trace) }
func (a *slogAdapter) IsDebug() bool { return a.enabled(hclog.Debug) }
func (a *slogAdapter) IsInfo() bool  { return a.enabled(hclog.Info) }
func (a *slogAdapter) IsWarn() bool  { return a.enabled(hclog.Warn) }
func (a *slogAdapter) IsError() bool { return a.enabled(hclog.Error) }

func (a *slogAdapter) ImpliedArgs() []any { return a.args }

func (a *slogAdapter) With(args ...any) hclog.Logger {
	return &slogAdapter{log: a.log, name: a.name, args: append(append([]any(nil), a.args...), args...)}
}

func (a *slogAdapter) Name() string { return a.name }

func (a *slogAdapter) Named(name string) hclog.Logger {
	if a.name != "" {
		name = a.name + "." + name
	}
	return &slogAdapter{log: a.log, name: name, args: a.args}
}

func (a *slogAdapter) ResetNamed(name string) hclog.Logger {
	return &slogAdapter{log: a.log, name: name, args: a.args}
}

// SetLevel is a no-op: the slog handler decides.
func (a *slogAdapter) SetLevel(hclog.Level) {}

// GetLevel reports the lowest level the slog handler takes.
func (a *slogAdapter) GetLevel() hclog.Level {
	for _, l := range []hclog.Level{hclog.Trace, hclog.Debug, hclog.Info, hclog.Warn, hclog.Error} {
		if a.enabled(l) {
			return l
		}
	}
	return hclog.Off
}

func (a *slogAdapter) StandardLogger(opts *hclog.StandardLoggerOptions) *log.Logger {
	return log.New(a.StandardWriter(opts), "", 0)
}

func (a *slogAdapter) StandardWriter(*hclog.StandardLoggerOptions) io.Writer {
	return &lineWriter{emit: func(line string, cut bool) {
		if cut {
			a.Info(line, "cut", true)
			return
		}
		a.Info(line)
	}}
}

// maxLine bounds the part of a line a lineWriter holds while it waits for
// the line's newline. A plugin that writes to stdout without ever ending a
// line would otherwise grow the bridge's memory without limit.
const maxLine = 64 << 10

// lineWriter calls emit once per complete line written to it; the rest of
// a line waits for its newline (or Flush). A line longer than maxLine is
// emitted in pieces of maxLine bytes, each but the last with cut set: the
// line goes on in the next piece. Empty lines are dropped, and so is the
// "\r" of a "\r\n" ending.
type lineWriter struct {
	mu   sync.Mutex
	buf  []byte // the start of the current line, at most maxLine bytes
	emit func(line string, cut bool)
}

// Write looks for each newline once, in p only: what buf holds has none,
// and scanning it again on every Write made a long line cost quadratic time.
func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := len(p)
	for len(p) > 0 {
		end := bytes.IndexByte(p, '\n')
		line := p
		if end >= 0 {
			line = p[:end]
		}
		for len(w.buf)+len(line) > maxLine {
			room := maxLine - len(w.buf)
			w.buf = append(w.buf, line[:room]...)
			line = line[room:]
			w.emitLocked(true)
		}
		w.buf = append(w.buf, line...)
		if end < 0 {
			break
		}
		p = p[end+1:]
		w.buf = bytes.TrimRight(w.buf, "\r")
		w.emitLocked(false)
	}
	return n, nil
}

// emitLocked emits what buf holds, unless it is empty, and empties it.
func (w *lineWriter) emitLocked(cut bool) {
	if len(w.buf) > 0 {
		w.emit(string(w.buf), cut)
	}
	w.buf = w.buf[:0]
}

// Flush emits what is left of an unterminated line.
func (w *lineWriter) Flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.emitLocked(false)
}
