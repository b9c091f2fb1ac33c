package tracing

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/IBM/sarama"
)

// The plugin route of TestJaegerPluginRouteTrace: examples/plugin-go under
// the name pluginName, so the SDK exports its spans as service
// "hookbridge-plugin-" + pluginName (sdk/telemetry.go).
const (
	pluginRoute   = "e2e-trace-plugin"
	pluginName    = "enrich"
	pluginService = "hookbridge-plugin-" + pluginName
	// handleMethod is the otelgrpc span name of the handler call, on both
	// sides: the gRPC method without its leading slash.
	handleMethod = "hookbridge.handler.v1.Handler/Handle"
)

// buildPlugin builds examples/plugin-go into a temporary directory and
// returns the binary's path.
func buildPlugin(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "plugin-go")
	build := exec.Command("go", "build", "-o", bin, "github.com/hookbridge/hookbridge/examples/plugin-go")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		t.Fatalf("building examples/plugin-go: %v", err)
	}
	return bin
}

// pluginShape is the spans a record's trace must hold on a plugin route
// with a reply topic, by role.
type pluginShape struct {
	producer, process, attempt, client, server, replySend span
}

// pluginTraceShape polls Jaeger until the trace of p holds every span the
// record's path through the plugin route makes, then returns them.
func pluginTraceShape(t *testing.T, query string, p produced, topic, reply string) (pluginShape, []span) {
	t.Helper()
	var spans []span
	var sh pluginShape
	complete := func() bool {
		spans = getTrace(t, query, p.traceID)
		var ok [6]bool
		one := func(ss []span, i int) span {
			if len(ss) == 1 {
				ok[i] = true
				return ss[0]
			}
			return span{}
		}
		sh.producer = one(find(spans, "e2e-producer", kindProducer, "send "+topic), 0)
		sh.process = one(find(spans, "hookbridge", kindConsumer, "process "+topic), 1)
		sh.attempt = one(find(spans, "hookbridge", kindInternal, "deliver "+pluginRoute), 2)
		sh.client = one(find(spans, "hookbridge", kindClient, handleMethod), 3)
		sh.server = one(find(spans, pluginService, kindServer, handleMethod), 4)
		sh.replySend = one(find(spans, "hookbridge", kindProducer, "send "+reply), 5)
		return !slices.Contains(ok[:], false)
	}
	deadline := time.Now().Add(90 * time.Second) // a hang guard only
	for !complete() {
		if time.Now().After(deadline) {
			t.Fatalf("trace %s of record %s is incomplete in Jaeger; it holds:%s", p.traceID, p.key, describe(spans))
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Logf("trace %s (record %s):%s", p.traceID, p.key, describe(spans))
	return sh, spans
}

// TestJaegerPluginRouteTrace follows one record through a plugin route with
// a reply topic: the test's producer, the bridge, the plugin process
// (examples/plugin-go, exporting through the SDK to the endpoint the bridge
// passes it) and the reply record must all be one trace.
func TestJaegerPluginRouteTrace(t *testing.T) {
	query, otlp, brokers := env(t)
	plugin := buildPlugin(t)
	suffix := strconv.Itoa(rand.IntN(1e6))
	topic, reply := "e2e-trace-plugin-"+suffix, "e2e-trace-plugin-"+suffix+".reply"
	createTopic(t, brokers, topic, 3)
	createTopic(t, brokers, reply, 1)

	cmd, _ := json.Marshal([]string{plugin})
	cfg := bridgeConfig(brokers, otlp) + fmt.Sprintf(`plugins:
  %s:
    command: %s
    instances: {min: 0, max: 1}
    timeout: 10s
routes:
  - name: %s
    topics: [%s]
    group: hookbridge.e2e-trace.%s
    target: {plugin: %s}
    reply: {topic: %s}
    retry: {max_attempts: 3, initial_backoff: 10ms, max_backoff: 100ms}
`, pluginName, cmd, pluginRoute, topic, topic, pluginName, reply)
	bridge := runBridge(t, cfg)

	producerTP := tracerProvider(t, otlp, "e2e-producer")
	rec := produce(t, producerTP, brokers, topic, "plugin-"+suffix)[0]
	var replies []*sarama.ConsumerMessage
	waitFor(t, 90*time.Second, "the reply record", func() bool {
		replies = readTopic(t, brokers, reply)
		return len(replies) > 0
	})

	// Flush every participant's spans: the bridge on SIGTERM (it stops the
	// plugin, whose SDK flushes on the way out), the producer on Shutdown.
	bridge.stop(t)
	if err := producerTP.Shutdown(t.Context()); err != nil {
		t.Fatalf("flushing the test's spans: %v", err)
	}

	sh, spans := pluginTraceShape(t, query, rec, topic, reply)
	if sh.producer.SpanID != rec.spanID {
		t.Errorf("producer span %s, want the one the test made (%s)", sh.producer.SpanID, rec.spanID)
	}
	parentIs(t, sh.process, sh.producer, "process span")
	parentIs(t, sh.attempt, sh.process, "attempt span")
	parentIs(t, sh.client, sh.attempt, "gRPC client span")
	parentIs(t, sh.server, sh.client, "plugin's gRPC server span")
	parentIs(t, sh.replySend, sh.process, "reply send span")
	if got := sh.process.Attrs["hookbridge.outcome"]; got != "delivered" {
		t.Errorf("process span hookbridge.outcome = %#v, want delivered", got)
	}
	if got := sh.attempt.Attrs["hookbridge.route"]; got != pluginRoute {
		t.Errorf("attempt span hookbridge.route = %#v, want %s", got, pluginRoute)
	}
	if got := sh.attempt.Attrs["hookbridge.attempt"]; got != int64(1) {
		t.Errorf("attempt span hookbridge.attempt = %#v, want 1", got)
	}
	// The bridge's only gRPC client span in this trace is the handler call:
	// starting the plugin process (handshake, health check) is not part of
	// the record's trace.
	if cs := find(spans, "hookbridge", kindClient, ""); len(cs) != 1 {
		t.Errorf("hookbridge CLIENT spans in the trace = %d, want 1 (the handler call):%s", len(cs), describe(cs))
	}

	// The reply record carries the reply send span's context: a consumer of
	// the reply topic continues this trace.
	if len(replies) != 1 {
		t.Fatalf("reply records = %d, want 1", len(replies))
	}
	carriesContext(t, "reply record", replies[0], rec.traceID, sh.replySend.SpanID)
	var body map[string]any
	if err := json.Unmarshal(replies[0].Value, &body); err != nil || body["enriched_by"] != "plugin-go" {
		t.Errorf("reply record value = %s, want the plugin's enrichment (err %v)", replies[0].Value, err)
	}
}
