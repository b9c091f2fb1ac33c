// Package otellog is the logger Hookbridge gives the OpenTelemetry
// libraries (otel.SetLogger), in the bridge and in plugins built with the
// SDK. By default those libraries write plain-text lines on stderr, and the
// OTLP exporters log through that logger an OTEL_EXPORTER_OTLP_* endpoint
// or header they cannot parse, value and all: credentials included, into the
// bridge's log (a plugin's stderr ends up there too). This logger keeps the
// message and the names of the values, and drops the values and the error's
// text, which quote the same input.
package otellog

import (
	"log/slog"
	"strings"

	"github.com/go-logr/logr"
)

// New returns a logr.Logger for otel.SetLogger that writes the libraries'
// error lines to log at warn level, as "opentelemetry", without their values,
// and drops their informational lines.
func New(log *slog.Logger) logr.Logger {
	return logr.New(&sink{log: log})
}

type sink struct {
	log  *slog.Logger
	name string
}

func (s *sink) Init(logr.RuntimeInfo)          {}
func (s *sink) Enabled(int) bool               { return false }
func (s *sink) Info(int, string, ...any)       {}
func (s *sink) WithValues(...any) logr.LogSink { return s }
func (s *sink) WithName(name string) logr.LogSink {
	if s.name != "" {
		name = s.name + "/" + name
	}
	return &sink{log: s.log, name: name}
}

func (s *sink) Error(_ error, msg string, kv ...any) {
	var keys []string
	for i := 0; i < len(kv); i += 2 {
		if k, ok := kv[i].(string); ok {
			keys = append(keys, k)
		}
	}
	args := []any{"error", msg + " (value not shown: it may hold credentials)"}
	if len(keys) > 0 {
		args = append(args, "of", strings.Join(keys, ", "))
	}
	if s.name != "" {
		args = append(args, "logger", s.name)
	}
	s.log.Warn("opentelemetry", args...)
}
