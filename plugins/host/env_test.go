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
