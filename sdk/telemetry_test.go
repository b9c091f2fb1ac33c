package sdk

import (
	"context"
	"testing"

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
