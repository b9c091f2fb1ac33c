package host

import (
	"slices"
	"testing"
)

func TestPluginEnv(t *testing.T) {
	host := []string{"PATH=/bin", "HOME=/root", "LC_ALL=C", "OTEL_SERVICE_NAME=hb", "AWS_SECRET_ACCESS_KEY=x", "BILLING_WHSEC=whsec_x", "PATHOLOGICAL=1", "HOOKBRIDGE_PLUGIN_NAME=spoof"}
	got := pluginEnv(host, map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_SERVICE_NAME": "bridge-set"},
		map[string]string{"DSN": "postgres://", "OTEL_SERVICE_NAME": "configured", "HOOKBRIDGE_PLUGIN_MAX_MESSAGE_BYTES": "1"}, "enrich", 4096)
	want := []string{
		"DSN=postgres://",
		"HOME=/root",
		"HOOKBRIDGE_PLUGIN_MAX_MESSAGE_BYTES=4096",
		"HOOKBRIDGE_PLUGIN_NAME=enrich",
		"LC_ALL=C",
		"OTEL_EXPORTER_OTLP_ENDPOINT=http://c:4317",
		"OTEL_SERVICE_NAME=configured",
		"PATH=/bin",
	}
	if !slices.Equal(got, want) {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}

// The bridge names its service and samples by its configuration, whatever
// OTEL_SERVICE_NAME, service.name in OTEL_RESOURCE_ATTRIBUTES and
// OTEL_TRACES_SAMPLER say in its environment: a plugin inherits none of
// them, so that its spans go under hookbridge-plugin-<name> and follow the
// bridge's sampling decision (parent-based), instead of taking the bridge's
// environment's service name, or being exported (always_on) under bridge
// spans that never are. Set in the plugin's env they apply; the other
// resource attributes pass.
func TestPluginEnvKeepsTheBridgesServiceAndSampling(t *testing.T) {
	host := []string{"OTEL_SERVICE_NAME=orders-bridge", "OTEL_TRACES_SAMPLER=always_on", "OTEL_TRACES_SAMPLER_ARG=1",
		"OTEL_RESOURCE_ATTRIBUTES=k8s.pod.name=p-1,service.name=orders-bridge,deployment.environment.name=prod",
		"OTEL_EXPORTER_OTLP_HEADERS=x=1"}
	got := pluginEnv(host, nil, nil, "enrich", 4096)
	want := []string{
		"HOOKBRIDGE_PLUGIN_MAX_MESSAGE_BYTES=4096",
		"HOOKBRIDGE_PLUGIN_NAME=enrich",
		"OTEL_EXPORTER_OTLP_HEADERS=x=1",
		"OTEL_RESOURCE_ATTRIBUTES=k8s.pod.name=p-1,deployment.environment.name=prod",
	}
	if !slices.Equal(got, want) {
		t.Errorf("got  %q\nwant %q", got, want)
	}

	configured := map[string]string{"OTEL_SERVICE_NAME": "enricher", "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
		"OTEL_RESOURCE_ATTRIBUTES": "service.name=enricher"}
	got = pluginEnv(host, nil, configured, "enrich", 4096)
	for _, kv := range []string{"OTEL_SERVICE_NAME=enricher", "OTEL_TRACES_SAMPLER=parentbased_traceidratio",
		"OTEL_RESOURCE_ATTRIBUTES=service.name=enricher"} {
		if !slices.Contains(got, kv) {
			t.Errorf("the plugin's own %s is missing: %q", kv, got)
		}
	}
}
