package otellog

import (
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
)

// An error line keeps its message and the names of its values, never the
// values or the error's text; informational lines are dropped.
func TestErrorLinesKeepNoValues(t *testing.T) {
	var out strings.Builder
	l := New(slog.New(slog.NewJSONHandler(&out, nil))).WithName("otlp").WithValues("endpoint", "http://u:SECRET1@h")
	l.Info("exporting", "headers", "Authorization=Bearer SECRET2")
	l.V(0).Info("exporting", "headers", "Authorization=Bearer SECRET3")
	l.Error(errors.New(`parse "http://u:SECRET4@a b": invalid character`), "could not parse the endpoint", "OTEL_EXPORTER_OTLP_ENDPOINT", "http://u:SECRET5@a b")
	if strings.Contains(out.String(), "SECRET") {
		t.Fatalf("a value reached the log: %s", out.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 1 {
		t.Fatalf("%d lines, want only the error's: %s", len(lines), out.String())
	}
	var line map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &line); err != nil {
		t.Fatal(err)
	}
	if line["level"] != "WARN" || line["msg"] != "opentelemetry" || line["of"] != "OTEL_EXPORTER_OTLP_ENDPOINT" || line["logger"] != "otlp" ||
		!strings.HasPrefix(line["error"].(string), "could not parse the endpoint") {
		t.Errorf("line %v", line)
	}
}
