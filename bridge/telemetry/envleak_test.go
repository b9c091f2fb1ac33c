package telemetry_test

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/go-logr/logr/funcr"
	"go.opentelemetry.io/otel"

	"github.com/hookbridge/hookbridge/bridge/config"
	"github.com/hookbridge/hookbridge/bridge/telemetry"
)

// captureOTelLog sends what the OpenTelemetry libraries log through their
// own logger (otel.SetLogger; by default a plain-text line on stderr) to a
// buffer, for the test's duration.
func captureOTelLog(t *testing.T) func() string {
	t.Helper()
	var mu sync.Mutex
	var b strings.Builder
	otel.SetLogger(funcr.New(func(prefix, args string) {
		mu.Lock()
		defer mu.Unlock()
		b.WriteString(prefix + " " + args + "\n")
	}, funcr.Options{Verbosity: 10}))
	return func() string {
		mu.Lock()
		defer mu.Unlock()
		return b.String()
	}
}

type syncBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (b *syncBuf) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuf) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// TestSetupTracingEnvironmentHidesCredentials: an OTLP endpoint or headers
// from the environment that the exporter cannot parse must not reach any log
// whole. The exporters log such a value with its credentials through the
// OpenTelemetry logger (stderr by default), and then export elsewhere.
func TestSetupTracingEnvironmentHidesCredentials(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
	}{
		{name: "unparsable endpoint, http", env: map[string]string{
			"OTEL_EXPORTER_OTLP_ENDPOINT": "http://user:PW@a b:4318/?token=Q"}},
		{name: "unparsable traces endpoint, grpc", env: map[string]string{
			"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://user:PW@a b:4317/?token=Q", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}},
		{name: "unparsable generic endpoint behind a traces one", env: map[string]string{
			"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces",
			"OTEL_EXPORTER_OTLP_ENDPOINT":        "http://user:PW@a b:4318/?token=Q"}},
		{name: "headers with a colon", env: map[string]string{
			"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318",
			"OTEL_EXPORTER_OTLP_HEADERS":  "Authorization: Bearer PW"}},
		{name: "traces headers with a bad escape", env: map[string]string{
			"OTEL_EXPORTER_OTLP_ENDPOINT":       "http://127.0.0.1:4318",
			"OTEL_EXPORTER_OTLP_TRACES_HEADERS": "x-api-key=PW%zz"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearOTelEnv(t)
			t.Setenv("OTEL_EXPORTER_OTLP_HEADERS", "")
			t.Setenv("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "")
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			// As the process starts: the libraries' logger is the default
			// one (captured here; stderr in the process), then LogErrors and
			// SetupTracing run (cmd/hookbridge startTracing).
			logged := captureOTelLog(t)
			var buf syncBuf
			telemetry.LogErrors(telemetry.NewLogger(&buf, "json", "debug"))
			shutdown, err := telemetry.SetupTracing(t.Context(), config.Telemetry{}, "1")
			if err == nil {
				_ = shutdown(context.WithoutCancel(t.Context()))
			} else {
				notShown(t, "SetupTracing error", err.Error())
			}
			if got := logged(); strings.Contains(got, "PW") {
				t.Errorf("the OpenTelemetry log shows a credential: %q", got)
			}
			if got := buf.String(); strings.Contains(got, "PW") {
				t.Errorf("the bridge's log shows a credential: %q", got)
			}
			// The problem is still reported: as SetupTracing's error, or as
			// a line of the bridge's log.
			if err == nil && !strings.Contains(buf.String(), `"msg":"opentelemetry"`) {
				t.Errorf("nothing says the variable was not understood; log %q", buf.String())
			}
		})
	}
}
