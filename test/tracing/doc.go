// Package tracing is the end-to-end trace test (make e2e): a Go producer, the
// real hookbridge binary, and a Go webhook receiver or a plugin
// (examples/plugin-go, built by the test, exporting through the SDK), each
// exporting its spans over OTLP to a real Jaeger v2 (test/jaeger/start.sh),
// against a real Kafka broker. The test reads the traces back from Jaeger's
// query API and checks their shape: which spans exist, their kinds and who is
// whose parent. It runs only when HOOKBRIDGE_TEST_JAEGER (the query API, e.g.
// 127.0.0.1:16686) and HOOKBRIDGE_TEST_KAFKA are set, and skips otherwise.
package tracing
