package main

import (
	"context"
	"log/slog"
	"path/filepath"

	"github.com/hookbridge/hookbridge/bridge"
	"github.com/hookbridge/hookbridge/bridge/config"
	"github.com/hookbridge/hookbridge/plugins/host"
)

// pluginFactory returns the constructor of plugin targets the bridge calls
// for every route whose target is a plugin: a supervised pool of the
// plugin's processes (plugins/host), its instances.min processes started
// before the route consumes. Relative commands are resolved against the
// configuration file's directory; telemetry.otlp_endpoint, when set,
// reaches the plugins as OTEL_EXPORTER_OTLP_ENDPOINT so that their spans go
// where the bridge's go.
func pluginFactory(ctx context.Context, cfg *config.Config, log *slog.Logger) bridge.PluginFactory {
	opts := host.Options{Logger: log}
	if cfg.File != "" {
		opts.ConfigDir = filepath.Dir(cfg.File)
	}
	if cfg.Telemetry.OTLPEndpoint != "" {
		// The configured endpoint is OTLP/gRPC, whatever the environment
		// says; the traces-specific endpoint too, which would otherwise pass
		// through from the bridge's environment and win in the plugin's
		// exporter, as otlp_endpoint wins in the bridge's.
		opts.Env = map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": cfg.Telemetry.OTLPEndpoint,
			"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": cfg.Telemetry.OTLPEndpoint,
			"OTEL_EXPORTER_OTLP_PROTOCOL":        "grpc", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc",
			// otlp_endpoint exports whatever the environment says
			"OTEL_TRACES_EXPORTER": "otlp"}
	}
	return host.Factory(ctx, opts)
}
