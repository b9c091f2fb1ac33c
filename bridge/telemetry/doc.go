// Package telemetry owns the bridge's metrics (OpenTelemetry instruments
// exported in Prometheus text format at /metrics) and its structured logger.
package telemetry
