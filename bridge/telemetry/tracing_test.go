package telemetry_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/hookbridge/hookbridge/bridge/config"
	"github.com/hookbridge/hookbridge/bridge/telemetry"
)

// These tests set process-wide OpenTelemetry globals and environment
// variables; none of them runs in parallel.

// clearOTelEnv unsets every variable SetupTracing or the exporters read.
func clearOTelEnv(t *testing.T) {
	t.Helper()
	for _, k := range []string{"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
		"OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_TRACES_EXPORTER",
		"OTEL_RESOURCE_ATTRIBUTES", "OTEL_SERVICE_NAME", "OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT", "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT"} {
		t.Setenv(k, "")
	}
}

func setup(t *testing.T, cfg config.Telemetry) func(context.Context) error {
	t.Helper()
	shutdown, err := telemetry.SetupTracing(t.Context(), cfg, "1.2.3")
	if err != nil {
		t.Fatalf("SetupTracing: %v", err)
	}
	t.Cleanup(func() { _ = shutdown(context.WithoutCancel(t.Context())) })
	return shutdown
}

func ratio(r float64) *float64 { return &r }

func TestSetupTracingWithoutExporter(t *testing.T) {
	clearOTelEnv(t)
	setup(t, config.Telemetry{ServiceName: "hookbridge", SampleRatio: ratio(1)})
	if got := telemetry.ExportTarget(config.Telemetry{}); got != "none" {
		t.Errorf("ExportTarget = %q, want none", got)
	}

	// Spans are created and sampled with nothing to export them to; they
	// record nothing, since nothing would read it.
	rootCtx, root := otel.Tracer("t").Start(t.Context(), "root")
	defer root.End()
	if !root.SpanContext().IsValid() || !root.SpanContext().IsSampled() || root.IsRecording() {
		t.Fatalf("root span %v recording=%v, want a valid, sampled span that records nothing", root.SpanContext(), root.IsRecording())
	}
	// A span started from the provider of the span in the context (as the
	// webhook client span is) is a child of it with an id of its own.
	_, inner := trace.SpanFromContext(rootCtx).TracerProvider().Tracer("t").Start(rootCtx, "inner")
	defer inner.End()
	if inner.SpanContext().TraceID() != root.SpanContext().TraceID() || !inner.SpanContext().IsSampled() ||
		inner.SpanContext().SpanID() == root.SpanContext().SpanID() || !inner.SpanContext().SpanID().IsValid() {
		t.Fatalf("child span %v of root %v: want the root's trace, sampled, with a new span id", inner.SpanContext(), root.SpanContext())
	}
	// A new root starts a new trace.
	_, other := otel.Tracer("t").Start(rootCtx, "other", trace.WithNewRoot())
	defer other.End()
	if other.SpanContext().TraceID() == root.SpanContext().TraceID() || !other.SpanContext().IsValid() {
		t.Fatalf("a new root %v stayed in the trace of %v", other.SpanContext(), root.SpanContext())
	}

	// A child of a remote parent continues its trace, and the global
	// propagator writes W3C trace context.
	remote := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{1}, SpanID: trace.SpanID{2},
		TraceFlags: trace.FlagsSampled, Remote: true})
	ctx, child := otel.Tracer("t").Start(trace.ContextWithRemoteSpanContext(t.Context(), remote), "child")
	defer child.End()
	h := propagation.HeaderCarrier(http.Header{})
	otel.GetTextMapPropagator().Inject(ctx, h)
	want := "00-" + remote.TraceID().String() + "-" + child.SpanContext().SpanID().String() + "-01"
	if got := h.Get("traceparent"); got != want {
		t.Errorf("traceparent = %q, want %q", got, want)
	}
}

func TestSetupTracingSampleRatio(t *testing.T) {
	clearOTelEnv(t)
	setup(t, config.Telemetry{SampleRatio: ratio(0)})
	tr := otel.Tracer("t")
	_, root := tr.Start(t.Context(), "root")
	defer root.End()
	if root.SpanContext().IsSampled() || root.IsRecording() {
		t.Errorf("ratio 0: a root span was sampled")
	}
	if !root.SpanContext().IsValid() {
		t.Errorf("ratio 0: the root span has no valid context; its trace id must still propagate")
	}
	// Parent-based: a sampled producer's trace is sampled whatever the ratio.
	remote := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{1}, SpanID: trace.SpanID{2},
		TraceFlags: trace.FlagsSampled, Remote: true})
	_, child := tr.Start(trace.ContextWithRemoteSpanContext(t.Context(), remote), "child")
	defer child.End()
	if !child.SpanContext().IsSampled() {
		t.Errorf("ratio 0: the child of a sampled remote parent was not sampled")
	}
}

// traceCollector is an OTLP/gRPC trace service that keeps every request.
type traceCollector struct {
	coltracepb.UnimplementedTraceServiceServer
	mu   sync.Mutex
	reqs []*coltracepb.ExportTraceServiceRequest
}

func (c *traceCollector) Export(_ context.Context, r *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reqs = append(c.reqs, r)
	return &coltracepb.ExportTraceServiceResponse{}, nil
}

func (c *traceCollector) all() []*coltracepb.ExportTraceServiceRequest {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*coltracepb.ExportTraceServiceRequest(nil), c.reqs...)
}

// exported returns service.name, service.version and the span names of reqs.
func exported(reqs []*coltracepb.ExportTraceServiceRequest) (service, version string, names []string) {
	for _, r := range reqs {
		for _, rs := range r.GetResourceSpans() {
			for _, kv := range rs.GetResource().GetAttributes() {
				switch kv.GetKey() {
				case "service.name":
					service = kv.GetValue().GetStringValue()
				case "service.version":
					version = kv.GetValue().GetStringValue()
				}
			}
			for _, ss := range rs.GetScopeSpans() {
				for _, s := range ss.GetSpans() {
					names = append(names, s.GetName())
				}
			}
		}
	}
	return service, version, names
}

func TestSetupTracingExportsToConfiguredEndpoint(t *testing.T) {
	clearOTelEnv(t)
	// The environment names another endpoint: the configured one wins.
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1")
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	col := &traceCollector{}
	srv := grpc.NewServer()
	coltracepb.RegisterTraceServiceServer(srv, col)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)

	cfg := config.Telemetry{ServiceName: "hookbridge-test", OTLPEndpoint: "http://" + lis.Addr().String(), SampleRatio: ratio(1)}
	if got := telemetry.ExportTarget(cfg); got != "otlp/grpc "+cfg.OTLPEndpoint {
		t.Errorf("ExportTarget = %q", got)
	}
	shutdown := setup(t, cfg)
	_, s := otel.Tracer("t").Start(t.Context(), "exported span")
	s.End()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	// Shutdown flushes the batch.
	if err := shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	service, version, names := exported(col.all())
	if service != "hookbridge-test" || version != "1.2.3" || len(names) != 1 || names[0] != "exported span" {
		t.Errorf("exported service %q version %q spans %q; want hookbridge-test, 1.2.3, [exported span]", service, version, names)
	}
}

// A record key goes on its spans; a megabyte key must not make a megabyte
// attribute (the collector would refuse the batch, and every other record's
// spans with it). The bound is AttributeValueLength unless the standard
// variable sets another.
func TestSetupTracingBoundsAttributeValues(t *testing.T) {
	for _, tt := range []struct {
		name string
		env  string // OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT
		want int
	}{
		{name: "default", want: telemetry.AttributeValueLength},
		{name: "environment", env: "100", want: 100},
	} {
		t.Run(tt.name, func(t *testing.T) {
			clearOTelEnv(t)
			t.Setenv("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", tt.env)
			lis, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			col := &traceCollector{}
			srv := grpc.NewServer(grpc.MaxRecvMsgSize(64 << 20))
			coltracepb.RegisterTraceServiceServer(srv, col)
			go func() { _ = srv.Serve(lis) }()
			t.Cleanup(srv.Stop)

			shutdown := setup(t, config.Telemetry{OTLPEndpoint: "http://" + lis.Addr().String(), SampleRatio: ratio(1)})
			key := bytes.Repeat([]byte("k"), 1<<20)
			_, s := otel.Tracer("t").Start(t.Context(), "process", trace.WithAttributes(telemetry.KeyAttrs(key)...))
			s.End()
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
			defer cancel()
			if err := shutdown(ctx); err != nil {
				t.Fatalf("shutdown: %v", err)
			}
			var got []int
			for _, r := range col.all() {
				for _, rs := range r.GetResourceSpans() {
					for _, ss := range rs.GetScopeSpans() {
						for _, sp := range ss.GetSpans() {
							for _, kv := range sp.GetAttributes() {
								if kv.GetKey() == string(telemetry.KeyMessagingKafkaMessageKey) {
									got = append(got, len(kv.GetValue().GetStringValue()))
								}
							}
						}
					}
				}
			}
			if len(got) != 1 || got[0] != tt.want {
				t.Errorf("exported key attribute lengths %v, want [%d]", got, tt.want)
			}
		})
	}
}

func TestSetupTracingExportsToEnvironment(t *testing.T) {
	clearOTelEnv(t)
	var mu sync.Mutex
	var got []*coltracepb.ExportTraceServiceRequest
	var paths []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		req := &coltracepb.ExportTraceServiceRequest{}
		if err := proto.Unmarshal(body, req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		mu.Lock()
		got = append(got, req)
		paths = append(paths, r.URL.Path)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	defer srv.Close()
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", srv.URL)
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
	t.Setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment.name=test")
	if got := telemetry.ExportTarget(config.Telemetry{}); got != "otlp/http/protobuf "+srv.URL {
		t.Errorf("ExportTarget = %q", got)
	}
	shutdown := setup(t, config.Telemetry{ServiceName: "hookbridge", SampleRatio: ratio(1)})
	_, s := otel.Tracer("t").Start(t.Context(), "env span")
	s.End()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	if err := shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	service, _, names := exported(got)
	if service != "hookbridge" || len(names) != 1 || names[0] != "env span" || paths[0] != "/v1/traces" {
		t.Errorf("exported service %q spans %q to %q; want hookbridge, [env span], /v1/traces", service, names, paths)
	}
}

func TestSetupTracingEnvironmentChoices(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		target  string
		wantErr string
	}{
		{name: "grpc", env: map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
			target: "otlp/grpc http://127.0.0.1:4317"},
		{name: "default protocol", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"},
			target: "otlp/http/protobuf http://127.0.0.1:4318"},
		{name: "traces protocol wins", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317",
			"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc"},
			target: "otlp/grpc http://127.0.0.1:4317"},
		{name: "exporter none", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_TRACES_EXPORTER": "none"},
			target: "none"},
		{name: "unknown protocol", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_EXPORTER_OTLP_PROTOCOL": "carrier-pigeon"},
			target: "otlp/carrier-pigeon http://127.0.0.1:4318", wantErr: "unsupported protocol carrier-pigeon"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearOTelEnv(t)
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			if got := telemetry.ExportTarget(config.Telemetry{}); got != tt.target {
				t.Errorf("ExportTarget = %q, want %q", got, tt.target)
			}
			shutdown, err := telemetry.SetupTracing(t.Context(), config.Telemetry{SampleRatio: ratio(1)}, "1")
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("SetupTracing error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("SetupTracing: %v", err)
			}
			// Nothing listens: shutdown must still return within its bound.
			ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
			defer cancel()
			_ = shutdown(ctx)
		})
	}
}

// secretEndpoint is an OTLP endpoint whose user info and query hold
// credentials; none of secrets may show in a log line or an error.
const secretEndpoint = "http://user:PW@127.0.0.1:4317/?token=Q"

var secrets = []string{"PW", "token", "user"}

func notShown(t *testing.T, what, s string) {
	t.Helper()
	for _, secret := range secrets {
		if strings.Contains(s, secret) {
			t.Errorf("%s = %q shows %q", what, s, secret)
		}
	}
}

func TestExportTargetHidesCredentials(t *testing.T) {
	tests := []struct {
		name string
		cfg  string // otlp_endpoint
		env  map[string]string
		want string
	}{
		{name: "configured", cfg: secretEndpoint, want: "otlp/grpc http://127.0.0.1:4317/"},
		{name: "OTEL_EXPORTER_OTLP_ENDPOINT", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": secretEndpoint},
			want: "otlp/http/protobuf http://127.0.0.1:4317/"},
		{name: "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", env: map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": secretEndpoint + "#frag",
			"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
			want: "otlp/grpc http://127.0.0.1:4317/"},
		{name: "not a URL", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "user:PW@127.0.0.1:4317?token=Q"},
			want: "otlp/http/protobuf OTEL_EXPORTER_OTLP_ENDPOINT (not a valid URL)"},
		{name: "unparsable", cfg: "http://user:PW@a b:4317/?token=Q", want: "otlp/grpc otlp_endpoint (not a valid URL)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearOTelEnv(t)
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			got := telemetry.ExportTarget(config.Telemetry{OTLPEndpoint: tt.cfg})
			notShown(t, "ExportTarget", got)
			if got != tt.want {
				t.Errorf("ExportTarget = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestSetupTracingErrorHidesCredentials(t *testing.T) {
	tests := []struct {
		name     string
		endpoint string
		wantErr  string
	}{
		// gRPC cannot parse the zone escape of the host: the exporter fails.
		{name: "exporter fails", endpoint: "http://user:PW@[::1%25en0]:4317/?token=Q",
			wantErr: "telemetry: otlp exporter for http://[::1%25en0]:4317/: "},
		// The exporter would log this one whole and carry on.
		{name: "unparsable", endpoint: "http://user:PW@a b:4317/?token=Q",
			wantErr: "telemetry: otlp_endpoint is not a valid URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearOTelEnv(t)
			shutdown, err := telemetry.SetupTracing(t.Context(), config.Telemetry{OTLPEndpoint: tt.endpoint}, "1")
			if err == nil {
				_ = shutdown(context.WithoutCancel(t.Context()))
				t.Fatal("SetupTracing succeeded, want an error")
			}
			notShown(t, "SetupTracing error", err.Error())
			if !strings.HasPrefix(err.Error(), tt.wantErr) {
				t.Errorf("SetupTracing error = %q, want it to start with %q", err, tt.wantErr)
			}
		})
	}
}

func TestLogErrors(t *testing.T) {
	var buf bytes.Buffer
	telemetry.LogErrors(telemetry.NewLogger(&buf, "json", "info"))
	otel.Handle(errors.New("traces export: connection refused"))
	if !strings.Contains(buf.String(), `"msg":"opentelemetry"`) || !strings.Contains(buf.String(), "connection refused") {
		t.Errorf("log = %q, want a JSON warn line with the error", buf.String())
	}
}
