package main

import (
	"context"
	"io"
	"log/slog"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/hookbridge/hookbridge/bridge/config"
	"github.com/hookbridge/hookbridge/bridge/target"
)

// TestPluginsExportWhereTheBridgeDoes: with telemetry.otlp_endpoint set, the
// bridge exports there whatever the OTEL_EXPORTER_OTLP_* variables say
// (docs/tracing.md: otlp_endpoint wins), and its plugins must too. The
// bridge's OTEL_* variables pass through to plugins, and a traces-specific
// endpoint wins over OTEL_EXPORTER_OTLP_ENDPOINT in the plugin's exporter:
// it must not send the plugin's spans elsewhere (with the protocol forced to
// grpc) than the bridge's.
func TestPluginsExportWhereTheBridgeDoes(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "testplugin")
	if out, err := exec.Command("go", "build", "-o", bin, "../../plugins/host/testdata/testplugin").CombinedOutput(); err != nil {
		t.Fatalf("build testplugin: %v\n%s", err, out)
	}
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://elsewhere:4318/v1/traces")
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://elsewhere:4318")
	const endpoint = "http://collector:4317"
	cfg := &config.Config{Telemetry: config.Telemetry{OTLPEndpoint: endpoint}}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	factory := pluginFactory(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	tg, err := factory("enrich", config.Plugin{Command: []string{bin}, Instances: config.Instances{Min: 0, Max: 1},
		ConcurrencyPerInstance: 1, IdleTimeout: config.Duration(time.Minute), Timeout: config.Duration(20 * time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if c, ok := tg.(interface{ Close(context.Context) error }); ok {
			cctx, ccancel := context.WithTimeout(context.WithoutCancel(t.Context()), 20*time.Second)
			defer ccancel()
			_ = c.Close(cctx)
		}
	})
	for name, want := range map[string]string{
		"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": endpoint,
		"OTEL_EXPORTER_OTLP_ENDPOINT":        endpoint,
		"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc",
	} {
		rec := &target.Record{Topic: "orders", Partition: 0, Offset: 1,
			Headers: []target.Header{{Key: "x-test", Value: []byte("env:" + name)}}}
		res, err := tg.Deliver(ctx, &target.Delivery{Route: "enrich-orders", Record: rec, Attempt: 1})
		if err != nil {
			t.Fatalf("Deliver: %v", err)
		}
		if len(res.Outputs) != 1 {
			t.Fatalf("outputs = %d, want 1", len(res.Outputs))
		}
		// A traces-specific endpoint the plugin sees must be the bridge's,
		// or absent (then the generic one applies).
		if got := string(res.Outputs[0].Value); got != want && !(name == "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT" && got == "") {
			t.Errorf("the plugin's %s = %q, want %q", name, got, want)
		}
	}
}
