package tracing

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hookbridge/hookbridge/test/internal/testkit"

	"github.com/IBM/sarama"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
	"go.opentelemetry.io/otel/trace"
)

// Environment of the e2e tier (test/e2e.sh sets both).
const (
	envJaeger     = "HOOKBRIDGE_TEST_JAEGER"      // query API host:port, e.g. 127.0.0.1:16686
	envJaegerOTLP = "HOOKBRIDGE_TEST_JAEGER_OTLP" // OTLP/gRPC URL; default http://<jaeger host>:4317
	envKafka      = "HOOKBRIDGE_TEST_KAFKA"       // broker addresses, comma-separated
)

// OTLP span kinds as the Jaeger API returns them.
const (
	kindInternal = 1
	kindServer   = 2
	kindClient   = 3
	kindProducer = 4
	kindConsumer = 5
)

const route = "e2e-trace"

var bridgeBin string

func TestMain(m *testing.M) {
	if os.Getenv(envJaeger) == "" || os.Getenv(envKafka) == "" {
		os.Exit(m.Run()) // every test skips, saying why
	}
	dir, err := os.MkdirTemp("", "hookbridge-tracing")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if bridgeBin, err = testkit.BuildBridge(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// env returns the Jaeger query address, the OTLP/gRPC URL and the brokers,
// or skips the test.
func env(t *testing.T) (query, otlp string, brokers []string) {
	t.Helper()
	query, kafka := os.Getenv(envJaeger), os.Getenv(envKafka)
	if query == "" || kafka == "" {
		testkit.E2ESkipf(t, "end-to-end trace test: set %s (Jaeger query API, e.g. 127.0.0.1:16686) and %s (Kafka brokers); "+
			"`make e2e` starts both (test/e2e.sh)", envJaeger, envKafka)
	}
	otlp = os.Getenv(envJaegerOTLP)
	if otlp == "" {
		host, _, err := net.SplitHostPort(query)
		if err != nil {
			t.Fatalf("%s=%q: %v", envJaeger, query, err)
		}
		otlp = "http://" + net.JoinHostPort(host, "4317")
	}
	return query, otlp, strings.Split(kafka, ",")
}

// waitFor is testkit's: the limit only bounds a hang.
var waitFor = testkit.WaitFor

// tracerProvider exports the spans of one test participant to Jaeger.
func tracerProvider(t *testing.T, otlp, service string) *sdktrace.TracerProvider {
	t.Helper()
	exp, err := otlptracegrpc.New(t.Context(), otlptracegrpc.WithEndpointURL(otlp))
	if err != nil {
		t.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp),
		sdktrace.WithResource(resource.NewSchemaless(semconv.ServiceName(service))))
	t.Cleanup(func() { _ = tp.Shutdown(context.WithoutCancel(t.Context())) })
	return tp
}

func saramaConfig() *sarama.Config {
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V3_0_0_0
	cfg.Producer.Return.Successes = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	return cfg
}

func createTopic(t *testing.T, brokers []string, name string, partitions int32) {
	t.Helper()
	a, err := sarama.NewClusterAdmin(brokers, saramaConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if err := a.CreateTopic(name, &sarama.TopicDetail{NumPartitions: partitions, ReplicationFactor: 1}, false); err != nil {
		t.Fatalf("create topic %s: %v", name, err)
	}
	waitFor(t, 30*time.Second, "topic "+name, func() bool {
		md, err := a.DescribeTopics([]string{name})
		return err == nil && len(md) == 1 && md[0].Err == sarama.ErrNoError && len(md[0].Partitions) == int(partitions)
	})
	t.Cleanup(func() {
		if a, err := sarama.NewClusterAdmin(brokers, saramaConfig()); err == nil {
			_ = a.DeleteTopic(name)
			_ = a.Close()
		}
	})
}

// headerCarrier is a TextMapCarrier over a sarama message's headers.
type headerCarrier struct{ m *sarama.ProducerMessage }

func (c headerCarrier) Get(key string) string {
	for _, h := range c.m.Headers {
		if string(h.Key) == key {
			return string(h.Value)
		}
	}
	return ""
}

func (c headerCarrier) Set(key, value string) {
	c.m.Headers = append(c.m.Headers, sarama.RecordHeader{Key: []byte(key), Value: []byte(value)})
}

func (c headerCarrier) Keys() []string {
	var ks []string
	for _, h := range c.m.Headers {
		ks = append(ks, string(h.Key))
	}
	return ks
}

// produced is a record the test's producer sent inside its own PRODUCER span.
type produced struct {
	key       string
	traceID   string
	spanID    string
	partition int32
	offset    int64
}

// produce sends one record per key, each inside a PRODUCER span "send
// <topic>" whose context goes into the record's traceparent header.
func produce(t *testing.T, tp *sdktrace.TracerProvider, brokers []string, topic string, keys ...string) []produced {
	t.Helper()
	p, err := sarama.NewSyncProducer(brokers, saramaConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	tr := tp.Tracer("e2e-producer")
	var out []produced
	for _, k := range keys {
		ctx, span := tr.Start(t.Context(), "send "+topic, trace.WithSpanKind(trace.SpanKindProducer))
		m := &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(k), Value: sarama.StringEncoder(`{"key":"` + k + `"}`),
			Headers: []sarama.RecordHeader{{Key: []byte("content-type"), Value: []byte("application/json")}}}
		propagation.TraceContext{}.Inject(ctx, headerCarrier{m})
		part, off, err := p.SendMessage(m)
		span.End()
		if err != nil {
			t.Fatalf("produce %s: %v", k, err)
		}
		out = append(out, produced{key: k, traceID: span.SpanContext().TraceID().String(),
			spanID: span.SpanContext().SpanID().String(), partition: part, offset: off})
	}
	return out
}

// receiver is the webhook endpoint: an otelhttp server handler, so its SERVER
// span continues the trace from the request's traceparent. Records whose key
// starts with "fail" get 422 (dead-lettered at once), the others 204.
type receiver struct {
	mu   sync.Mutex
	seen map[string]int // webhook-id -> requests
	srv  *http.Server
	addr string
}

func newReceiver(t *testing.T, tp *sdktrace.TracerProvider) *receiver {
	t.Helper()
	r := &receiver{seen: map[string]int{}}
	h := http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		_, _ = io.Copy(io.Discard, req.Body)
		r.mu.Lock()
		r.seen[req.Header.Get("webhook-id")]++
		r.mu.Unlock()
		if strings.HasPrefix(req.Header.Get("kafka-key"), "fail") {
			w.WriteHeader(http.StatusUnprocessableEntity)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.addr = ln.Addr().String()
	r.srv = &http.Server{Handler: otelhttp.NewHandler(h, "receive webhook",
		otelhttp.WithTracerProvider(tp), otelhttp.WithPropagators(propagation.TraceContext{})),
		ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = r.srv.Serve(ln) }()
	t.Cleanup(func() { _ = r.srv.Close() })
	return r
}

func (r *receiver) requests(id string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.seen[id]
}

// ---- the bridge ------------------------------------------------------------

type bridgeProc struct {
	cmd  *exec.Cmd
	log  *lockedBuffer
	done chan struct{}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// bridgeConfig is the common head of the bridge's configuration: the
// brokers, no admin listener, export to Jaeger, debug logs.
func bridgeConfig(brokers []string, otlp string) string {
	bs, _ := json.Marshal(brokers)
	return fmt.Sprintf(`kafka:
  brokers: %s
  session_timeout: 6s
admin:
  listen: "off"
telemetry:
  service_name: hookbridge
  otlp_endpoint: %s
log:
  level: debug
shutdown_timeout: 10s
`, bs, otlp)
}

func startBridge(t *testing.T, brokers []string, otlp, topic, dlq, url string) *bridgeProc {
	t.Helper()
	cfg := bridgeConfig(brokers, otlp) + fmt.Sprintf(`routes:
  - name: %s
    topics: [%s]
    group: hookbridge.e2e-trace.%s
    target:
      webhook:
        url: %s
        timeout: 5s
    retry: {max_attempts: 3, initial_backoff: 10ms, max_backoff: 100ms}
    dead_letter: {topic: %s}
`, route, topic, topic, url, dlq)
	return runBridge(t, cfg)
}

// runBridge starts the hookbridge binary with the configuration cfg; the
// test's cleanup kills it if it still runs and logs its output on failure.
func runBridge(t *testing.T, cfg string) *bridgeProc {
	t.Helper()
	path := filepath.Join(t.TempDir(), "hookbridge.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	p := &bridgeProc{log: &lockedBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(bridgeBin, "run", "-c", path)
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("hookbridge log:\n%s", p.log.String())
		}
	})
	return p
}

// stop sends SIGTERM and waits: the bridge flushes its spans on the way out.
func (p *bridgeProc) stop(t *testing.T) {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(60 * time.Second):
		t.Fatal("hookbridge did not exit after SIGTERM")
	}
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("hookbridge exited with %d", code)
	}
}

// carriesContext checks that rec, a record Hookbridge wrote, has exactly one
// traceparent header and that it is the sampled context of the span spanID
// in trace traceID: a consumer of rec's topic continues that trace.
func carriesContext(t *testing.T, what string, rec *sarama.ConsumerMessage, traceID, spanID string) {
	t.Helper()
	var tps []string
	for _, h := range rec.Headers {
		if string(h.Key) == "traceparent" {
			tps = append(tps, string(h.Value))
		}
	}
	if want := "00-" + traceID + "-" + spanID + "-01"; len(tps) != 1 || tps[0] != want {
		t.Errorf("%s traceparent = %q, want [%q]", what, tps, want)
	}
}

// readTopic reads every record of a one-partition topic (the dead-letter or
// reply topic).
func readTopic(t *testing.T, brokers []string, topic string) []*sarama.ConsumerMessage {
	t.Helper()
	client, err := sarama.NewClient(brokers, saramaConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	hwm, err := client.GetOffset(topic, 0, sarama.OffsetNewest)
	if err != nil || hwm == 0 {
		return nil
	}
	c, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	pc, err := c.ConsumePartition(topic, 0, sarama.OffsetOldest)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	var out []*sarama.ConsumerMessage
	for m := range pc.Messages() {
		out = append(out, m)
		if m.Offset+1 >= hwm {
			break
		}
	}
	return out
}

// ---- Jaeger's API ------------------------------------------------------------

// span is one span of a trace read back from Jaeger.
type span struct {
	Service  string
	TraceID  string
	SpanID   string
	ParentID string
	Name     string
	Kind     int
	Attrs    map[string]any // stringValue as string, intValue as int64, ...
	Events   []string
}

type otlpKV struct {
	Key   string         `json:"key"`
	Value map[string]any `json:"value"`
}

type otlpResponse struct {
	Result struct {
		ResourceSpans []struct {
			Resource struct {
				Attributes []otlpKV `json:"attributes"`
			} `json:"resource"`
			ScopeSpans []struct {
				Spans []struct {
					TraceID      string          `json:"traceId"`
					SpanID       string          `json:"spanId"`
					ParentSpanID string          `json:"parentSpanId"`
					Name         string          `json:"name"`
					Kind         json.RawMessage `json:"kind"`
					Attributes   []otlpKV        `json:"attributes"`
					Events       []struct {
						Name string `json:"name"`
					} `json:"events"`
				} `json:"spans"`
			} `json:"scopeSpans"`
		} `json:"resourceSpans"`
	} `json:"result"`
}

// hexID normalises an id from OTLP JSON: hex (what Jaeger writes) or base64
// (the protobuf JSON default).
func hexID(s string, n int) string {
	if len(s) == 2*n {
		if _, err := hex.DecodeString(s); err == nil {
			return strings.ToLower(s)
		}
	}
	if b, err := base64.StdEncoding.DecodeString(s); err == nil && len(b) == n {
		return hex.EncodeToString(b)
	}
	return s
}

var kindNames = map[string]int{"SPAN_KIND_INTERNAL": kindInternal, "SPAN_KIND_SERVER": kindServer,
	"SPAN_KIND_CLIENT": kindClient, "SPAN_KIND_PRODUCER": kindProducer, "SPAN_KIND_CONSUMER": kindConsumer}

func kindOf(raw json.RawMessage) int {
	var n int
	if json.Unmarshal(raw, &n) == nil {
		return n
	}
	var s string
	_ = json.Unmarshal(raw, &s)
	return kindNames[s]
}

func attrValue(v map[string]any) any {
	for k, x := range v {
		switch k {
		case "stringValue":
			return x.(string)
		case "intValue": // int64 is a JSON string in protobuf JSON
			switch n := x.(type) {
			case string:
				i, _ := strconv.ParseInt(n, 10, 64)
				return i
			case float64:
				return int64(n)
			}
		case "boolValue":
			return x.(bool)
		case "doubleValue":
			return x.(float64)
		}
	}
	return nil
}

// getTrace returns the spans of a trace Jaeger holds, or nil when it holds none yet.
func getTrace(t *testing.T, query, traceID string) []span {
	t.Helper()
	resp, err := http.Get("http://" + query + "/api/v3/traces/" + traceID)
	if err != nil {
		t.Fatalf("jaeger query: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusNotFound {
		return nil
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /api/v3/traces/%s: %d %s", traceID, resp.StatusCode, body)
	}
	var r otlpResponse
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatalf("trace %s: %v\n%s", traceID, err, body)
	}
	var out []span
	for _, rs := range r.Result.ResourceSpans {
		service := ""
		for _, kv := range rs.Resource.Attributes {
			if kv.Key == "service.name" {
				service, _ = attrValue(kv.Value).(string)
			}
		}
		for _, ss := range rs.ScopeSpans {
			for _, s := range ss.Spans {
				sp := span{Service: service, TraceID: hexID(s.TraceID, 16), SpanID: hexID(s.SpanID, 8),
					ParentID: hexID(s.ParentSpanID, 8), Name: s.Name, Kind: kindOf(s.Kind), Attrs: map[string]any{}}
				for _, kv := range s.Attributes {
					sp.Attrs[kv.Key] = attrValue(kv.Value)
				}
				for _, e := range s.Events {
					sp.Events = append(sp.Events, e.Name)
				}
				out = append(out, sp)
			}
		}
	}
	return out
}

// find returns the spans of service with kind and, when name is not "",
// that name.
func find(spans []span, service string, kind int, name string) []span {
	var out []span
	for _, s := range spans {
		if s.Service == service && s.Kind == kind && (name == "" || s.Name == name) {
			out = append(out, s)
		}
	}
	return out
}

func describe(spans []span) string {
	var b strings.Builder
	for _, s := range spans {
		fmt.Fprintf(&b, "\n  %s %q kind=%d span=%s parent=%s", s.Service, s.Name, s.Kind, s.SpanID, s.ParentID)
	}
	return b.String()
}

// shape is the spans one record's trace must hold, by role.
type shape struct {
	producer, process, attempt, client, server span
	dlqSend                                    *span
}

// traceShape polls Jaeger until the trace of p holds every span the record's
// path makes (with dlq, the dead-letter send span too), then returns them.
func traceShape(t *testing.T, query string, p produced, topic, dlq string) shape {
	t.Helper()
	var spans []span
	var sh shape
	complete := func() bool {
		spans = getTrace(t, query, p.traceID)
		one := func(ss []span) (span, bool) {
			if len(ss) == 1 {
				return ss[0], true
			}
			return span{}, false
		}
		var ok [5]bool
		sh.producer, ok[0] = one(find(spans, "e2e-producer", kindProducer, "send "+topic))
		sh.process, ok[1] = one(find(spans, "hookbridge", kindConsumer, "process "+topic))
		sh.attempt, ok[2] = one(find(spans, "hookbridge", kindInternal, "deliver "+route))
		sh.client, ok[3] = one(find(spans, "hookbridge", kindClient, ""))
		sh.server, ok[4] = one(find(spans, "e2e-receiver", kindServer, ""))
		sh.dlqSend = nil
		if dlq != "" {
			s, found := one(find(spans, "hookbridge", kindProducer, "send "+dlq))
			if !found {
				return false
			}
			sh.dlqSend = &s
		}
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
	return sh
}

func parentIs(t *testing.T, child, parent span, what string) {
	t.Helper()
	if child.ParentID != parent.SpanID {
		t.Errorf("%s: %q has parent %s, want %q %s", what, child.Name, child.ParentID, parent.Name, parent.SpanID)
	}
}

// checkPath checks the chain producer → process → attempt → HTTP client →
// receiver, and the process span's messaging attributes.
func checkPath(t *testing.T, sh shape, p produced, topic string) {
	t.Helper()
	if sh.producer.SpanID != p.spanID {
		t.Errorf("producer span %s, want the one the test made (%s)", sh.producer.SpanID, p.spanID)
	}
	parentIs(t, sh.process, sh.producer, "process span")
	parentIs(t, sh.attempt, sh.process, "attempt span")
	parentIs(t, sh.client, sh.attempt, "HTTP client span")
	parentIs(t, sh.server, sh.client, "receiver span")
	want := map[string]any{
		"messaging.system":                   "kafka",
		"messaging.operation.type":           "process",
		"messaging.destination.name":         topic,
		"messaging.consumer.group.name":      "hookbridge.e2e-trace." + topic,
		"messaging.destination.partition.id": strconv.Itoa(int(p.partition)), // a string
		"messaging.kafka.offset":             p.offset,                       // an int
		"messaging.kafka.message.key":        p.key,
		"messaging.message.id":               fmt.Sprintf("%s-%d-%d", topic, p.partition, p.offset),
		"hookbridge.route":                   route,
		"hookbridge.attempt":                 nil, // not on the process span
	}
	for k, v := range want {
		if got := sh.process.Attrs[k]; got != v {
			t.Errorf("process span %s = %#v, want %#v", k, got, v)
		}
	}
	if got := sh.attempt.Attrs["hookbridge.attempt"]; got != int64(1) {
		t.Errorf("attempt span hookbridge.attempt = %#v, want 1", got)
	}
}

func TestJaegerOneTracePerRecord(t *testing.T) {
	query, otlp, brokers := env(t)
	suffix := strconv.Itoa(rand.IntN(1e6))
	topic, dlq := "e2e-trace-"+suffix, "e2e-trace-"+suffix+".dlq"
	createTopic(t, brokers, topic, 3)
	createTopic(t, brokers, dlq, 1)

	producerTP := tracerProvider(t, otlp, "e2e-producer")
	receiverTP := tracerProvider(t, otlp, "e2e-receiver")
	recv := newReceiver(t, receiverTP)
	bridge := startBridge(t, brokers, otlp, topic, dlq, "http://"+recv.addr+"/hook")

	recs := produce(t, producerTP, brokers, topic, "ok-"+suffix, "fail-"+suffix)
	ok, failed := recs[0], recs[1]
	idOf := func(p produced) string { return fmt.Sprintf("%s-%d-%d", topic, p.partition, p.offset) }
	waitFor(t, 90*time.Second, "both records to reach the receiver", func() bool {
		return recv.requests(idOf(ok)) > 0 && recv.requests(idOf(failed)) > 0
	})
	var dl []*sarama.ConsumerMessage
	waitFor(t, 60*time.Second, "the dead-letter record", func() bool {
		dl = readTopic(t, brokers, dlq)
		return len(dl) > 0
	})

	// Flush every participant's spans: the bridge on SIGTERM, the test's own
	// providers on Shutdown.
	bridge.stop(t)
	for _, tp := range []*sdktrace.TracerProvider{producerTP, receiverTP} {
		if err := tp.Shutdown(t.Context()); err != nil {
			t.Fatalf("flushing the test's spans: %v", err)
		}
	}

	t.Run("delivered", func(t *testing.T) {
		sh := traceShape(t, query, ok, topic, "")
		checkPath(t, sh, ok, topic)
		if got := sh.process.Attrs["hookbridge.outcome"]; got != "delivered" {
			t.Errorf("process span hookbridge.outcome = %#v, want delivered", got)
		}
	})

	t.Run("dead-lettered", func(t *testing.T) {
		sh := traceShape(t, query, failed, topic, dlq)
		checkPath(t, sh, failed, topic)
		if got := sh.process.Attrs["hookbridge.outcome"]; got != "dead_lettered" {
			t.Errorf("process span hookbridge.outcome = %#v, want dead_lettered", got)
		}
		if !slices.Contains(sh.process.Events, "dead_lettered") {
			t.Errorf("process span events = %q, want dead_lettered", sh.process.Events)
		}
		parentIs(t, *sh.dlqSend, sh.process, "dead-letter send span")
		// The dead-letter record carries the send span's context: a consumer
		// of the dead-letter topic continues this trace.
		if len(dl) != 1 {
			t.Fatalf("dead-letter records = %d, want 1", len(dl))
		}
		carriesContext(t, "dead-letter record", dl[0], failed.traceID, sh.dlqSend.SpanID)
	})
}
