// Package telemetry owns the bridge's metrics (OpenTelemetry instruments
// exported in Prometheus text format at /metrics), its structured logger
// (whose lines carry trace_id and span_id), and its tracing: the process's
// TracerProvider and propagator (SetupTracing), the trace-context carrier over
// Kafka record headers (ExtractRecord, InjectRecord), and every span attribute
// key and name (semconv.go). docs/tracing.md describes the spans.
package telemetry
