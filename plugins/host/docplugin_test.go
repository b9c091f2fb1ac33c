package host_test

import (
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/hookbridge/hookbridge/bridge/config"
	"github.com/hookbridge/hookbridge/bridge/target"
	"github.com/hookbridge/hookbridge/plugins/host"
)

// buildDocPlugin builds testdata/docplugin, a plugin written from
// docs/plugins.md and handler.proto alone (no SDK, no go-plugin).
func buildDocPlugin(t *testing.T) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "docplugin")
	if b, err := exec.Command("go", "build", "-o", out, "./testdata/docplugin").CombinedOutput(); err != nil {
		t.Fatalf("build docplugin: %v\n%s", err, b)
	}
	return out
}

// TestDocOnlyPlugin runs the doc-only plugin under the host, with Handle
// calls only and with HandleStream: an ack, a reply (with the call's
// deadline and trace context), a permanent error, a retryable error with
// Retry-After and a crash.
func TestDocOnlyPlugin(t *testing.T) {
	bin := buildDocPlugin(t)
	prevProp := otel.GetTextMapPropagator()
	otel.SetTextMapPropagator(propagation.TraceContext{})
	t.Cleanup(func() { otel.SetTextMapPropagator(prevProp) })
	tp := sdktrace.NewTracerProvider()
	t.Cleanup(func() { _ = tp.Shutdown(t.Context()) })

	for _, stream := range []bool{false, true} {
		t.Run("stream="+strconv.FormatBool(stream), func(t *testing.T) {
			cfg := testConfig(bin)
			cfg.Instances = config.Instances{Min: 1, Max: 1}
			cfg.Timeout = config.Duration(5 * time.Second)
			if stream {
				cfg.Env = map[string]string{"DOCPLUGIN_STREAM": "1"}
			}
			p, logs := newPool(t, cfg, host.Options{})
			if err := p.Start(t.Context()); err != nil {
				t.Fatal(err)
			}
			if got := p.Stats().Streams; got != map[bool]int{false: 0, true: 1}[stream] {
				t.Errorf("streams open = %d", got)
			}

			res, err := p.Deliver(t.Context(), delivery(1, "ack", []byte("a")))
			if err != nil || len(res.Outputs) != 0 {
				t.Errorf("ack: %+v, %v; want no outputs, no error", res, err)
			}

			ctx, span := tp.Tracer("test").Start(t.Context(), "delivery")
			res, err = p.Deliver(ctx, delivery(2, "reply", []byte("hello")))
			span.End()
			if err != nil || len(res.Outputs) != 1 || string(res.Outputs[0].Value) != "hello" {
				t.Fatalf("reply: %+v, %v", res, err)
			}
			hdr := map[string]string{}
			for _, h := range res.Outputs[0].Headers {
				hdr[h.Key] = string(h.Value)
			}
			if ms, err := strconv.Atoi(hdr["deadline-ms"]); err != nil || ms <= 0 || ms > 5000 {
				t.Errorf("deadline the handler saw: %q ms, want within the 5 s timeout", hdr["deadline-ms"])
			}
			if want := span.SpanContext().TraceID().String(); !strings.Contains(hdr["traceparent"], want) {
				t.Errorf("traceparent the handler saw: %q, want trace %s", hdr["traceparent"], want)
			}

			_, err = p.Deliver(t.Context(), delivery(3, "permanent", nil))
			if target.KindOf(err) != target.Permanent || !strings.Contains(err.Error(), "docplugin: refused orders-1-3") {
				t.Errorf("permanent: %v", err)
			}
			_, err = p.Deliver(t.Context(), delivery(4, "retry-after", nil))
			if target.KindOf(err) != target.Retryable || target.RetryAfterOf(err) != 1500*time.Millisecond {
				t.Errorf("retry-after: %v (kind %v, after %v)", err, target.KindOf(err), target.RetryAfterOf(err))
			}

			// A record that kills every process it reaches: retried on a
			// new process each time, then a retryable failure.
			_, err = p.Deliver(t.Context(), delivery(5, "crash", nil))
			if target.KindOf(err) != target.Retryable || !strings.Contains(err.Error(), "processes died handling orders-1-5") {
				t.Errorf("crash: %v", err)
			}
			// The pool replaced the process: the next record is delivered.
			if res, err := p.Deliver(t.Context(), delivery(6, "reply", []byte("after"))); err != nil || string(res.Outputs[0].Value) != "after" {
				t.Errorf("after the crashes: %+v, %v", res, err)
			}
			if t.Failed() {
				t.Logf("log:\n%s", logs)
			}
		})
	}
}

// TestDocOnlyPluginCommonNameCertificate: a certificate that names
// localhost only as its common name, which "a self-signed certificate for
// localhost" may be read as, fails the start with an error that says why,
// as docs/plugins.md now says.
func TestDocOnlyPluginCommonNameCertificate(t *testing.T) {
	cfg := testConfig(buildDocPlugin(t))
	cfg.Instances = config.Instances{Min: 1, Max: 1}
	cfg.Env = map[string]string{"DOCPLUGIN_CERT": "cn-only"}
	p, _ := newPool(t, cfg, host.Options{})
	if err := p.Start(t.Context()); err == nil || !strings.Contains(err.Error(), "legacy Common Name field") {
		t.Fatalf("start: %v; want the refusal of a certificate without a subject alternative name", err)
	}
}
