package sdk

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/go-logr/logr/funcr"
	"go.opentelemetry.io/otel"
	semconv "go.opentelemetry.io/otel/semconv/v1.37.0"

	"github.com/hookbridge/hookbridge/sdk/protocol"
)

func serviceName(t *testing.T) string {
	t.Helper()
	res := pluginResource(context.Background())
	v, ok := res.Set().Value(semconv.ServiceNameKey)
	if !ok {
		t.Fatalf("resource %v has no service.name", res)
	}
	return v.AsString()
}

func TestPluginResourceServiceName(t *testing.T) {
	t.Setenv("OTEL_SERVICE_NAME", "")
	t.Setenv("OTEL_RESOURCE_ATTRIBUTES", "")
	t.Setenv(protocol.EnvPluginName, "enrich")
	if got, want := serviceName(t), "hookbridge-plugin-enrich"; got != want {
		t.Errorf("service.name = %q, want %q", got, want)
	}

	t.Setenv(protocol.EnvPluginName, "")
	if got, want := serviceName(t), "hookbridge-plugin"; got != want {
		t.Errorf("without a plugin name: service.name = %q, want %q", got, want)
	}
}

func TestPluginResourceEnvironmentWins(t *testing.T) {
	t.Setenv(protocol.EnvPluginName, "enrich")
	t.Setenv("OTEL_SERVICE_NAME", "")
	t.Setenv("OTEL_RESOURCE_ATTRIBUTES", "service.name=from-attributes,deployment.environment.name=test")
	if got, want := serviceName(t), "from-attributes"; got != want {
		t.Errorf("OTEL_RESOURCE_ATTRIBUTES: service.name = %q, want %q", got, want)
	}
	res := pluginResource(context.Background())
	if v, _ := res.Set().Value("deployment.environment.name"); v.AsString() != "test" {
		t.Errorf("deployment.environment.name = %q, want test", v.AsString())
	}

	t.Setenv("OTEL_SERVICE_NAME", "from-service-name")
	if got, want := serviceName(t), "from-service-name"; got != want {
		t.Errorf("OTEL_SERVICE_NAME: service.name = %q, want %q", got, want)
	}
}

// With only an endpoint in the environment a plugin exports as the bridge
// does, over OTLP/HTTP (the specification's default), and not at all with
// OTEL_TRACES_EXPORTER=none.
func TestSetupTelemetryExportsAsTheBridge(t *testing.T) {
	for name, tc := range map[string]struct {
		env  map[string]string
		want bool
	}{
		"endpoint only":        {map[string]string{}, true},
		"http/protobuf":        {map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "HTTP/protobuf"}, true},
		"traces exporter none": {map[string]string{"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}, false},
	} {
		t.Run(name, func(t *testing.T) {
			var mu sync.Mutex
			var got []string
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				got = append(got, r.Method+" "+r.URL.Path)
				mu.Unlock()
			}))
			t.Cleanup(srv.Close)
			for _, k := range []string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
				"OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_TRACES_EXPORTER"} {
				t.Setenv(k, "")
			}
			t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", srv.URL)
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			prevTP, prevProp := otel.GetTracerProvider(), otel.GetTextMapPropagator()
			t.Cleanup(func() { otel.SetTracerProvider(prevTP); otel.SetTextMapPropagator(prevProp) })

			shutdown, err := setupTelemetry(t.Context(), slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			_, span := otel.Tracer("t").Start(t.Context(), "handle")
			span.End()
			if err := shutdown(context.WithoutCancel(t.Context())); err != nil {
				t.Fatalf("flushing: %v", err)
			}
			mu.Lock()
			defer mu.Unlock()
			if exported := len(got) > 0 && got[0] == "POST /v1/traces"; exported != tc.want {
				t.Errorf("requests to the endpoint %q, want an OTLP/HTTP export: %v", got, tc.want)
			}
		})
	}
}

// TestSetupTelemetryHidesCredentials: the exporters log an OTLP header or
// endpoint from the environment that they cannot parse, value and all,
// through the OpenTelemetry logger (plain text on stderr by default, which
// the bridge logs): the plugin's log must say so without the value.
func TestSetupTelemetryHidesCredentials(t *testing.T) {
	for name, env := range map[string]map[string]string{
		"headers with a colon": {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1",
			"OTEL_EXPORTER_OTLP_HEADERS": "Authorization: Bearer PW"},
		"unparsable endpoint": {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://user:PW@a b:4318/?token=Q"},
	} {
		t.Run(name, func(t *testing.T) {
			for _, k := range []string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
				"OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_HEADERS"} {
				t.Setenv(k, "")
			}
			for k, v := range env {
				t.Setenv(k, v)
			}
			prevTP, prevProp := otel.GetTracerProvider(), otel.GetTextMapPropagator()
			t.Cleanup(func() { otel.SetTracerProvider(prevTP); otel.SetTextMapPropagator(prevProp) })
			// The default logger of the libraries, captured.
			var mu sync.Mutex
			var stderr strings.Builder
			otel.SetLogger(funcr.New(func(prefix, args string) {
				mu.Lock()
				defer mu.Unlock()
				stderr.WriteString(args + "\n")
			}, funcr.Options{}))
			var logged strings.Builder
			shutdown, err := setupTelemetry(t.Context(), slog.New(slog.NewJSONHandler(&logged, nil)))
			if err == nil {
				_ = shutdown(context.WithoutCancel(t.Context()))
			}
			mu.Lock()
			defer mu.Unlock()
			for what, s := range map[string]string{"the OpenTelemetry log": stderr.String(), "the plugin's log": logged.String()} {
				if strings.Contains(s, "PW") {
					t.Errorf("%s shows a credential: %q", what, s)
				}
			}
			if !strings.Contains(logged.String(), `"msg":"opentelemetry"`) {
				t.Errorf("the plugin's log %q does not say the variable was not understood", logged.String())
			}
		})
	}
}
