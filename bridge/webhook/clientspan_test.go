package webhook

import (
	"context"
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// The client span of a request has the attributes the HTTP semantic
// conventions require of a client span: server.port even when the URL
// leaves it to its scheme (443, 80), and error.type when the request
// failed (the status code of an answer from 400 on, else the kind of
// error); url.full without user info or query.
func TestClientSpanSemanticConventions(t *testing.T) {
	answer := func(status int) roundTripFunc {
		return func(*http.Request) (*http.Response, error) {
			return &http.Response{StatusCode: status, Header: http.Header{}, Body: io.NopCloser(strings.NewReader(""))}, nil
		}
	}
	refused := roundTripFunc(func(*http.Request) (*http.Response, error) { return nil, syscall.ECONNREFUSED })
	for _, c := range []struct {
		name, url string
		rt        http.RoundTripper
		want      []attribute.KeyValue
		errorType string // "" = none
	}{
		{"https, 503", "https://receiver.example/hooks?token=s3cret", answer(503), []attribute.KeyValue{
			attribute.String("url.full", "https://receiver.example/hooks"), attribute.String("server.address", "receiver.example"),
			attribute.Int("server.port", 443), attribute.Int("http.response.status_code", 503)}, "503"},
		{"http, refused", "http://user:pw@receiver.example/hooks", refused, []attribute.KeyValue{
			attribute.String("url.full", "http://receiver.example/hooks"), attribute.Int("server.port", 80)}, "*"},
		{"explicit port, 204", "http://receiver.example:8080/hooks", answer(204), []attribute.KeyValue{
			attribute.Int("server.port", 8080), attribute.Int("http.response.status_code", 204)}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			rec := tracetest.NewSpanRecorder()
			tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
			t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
			tg := newTarget(t, c.url, func(o *Options) { o.Transport = c.rt })
			ctx, parent := tp.Tracer("test").Start(t.Context(), "deliver orders-billing")
			_, err := deliver(t, ctx, tg, record())
			parent.End()
			if (err != nil) != (c.errorType != "") {
				t.Fatalf("err = %v", err)
			}
			client := clientSpan(rec)
			if client == nil {
				t.Fatal("no client span")
			}
			got := map[attribute.Key]attribute.Value{}
			for _, kv := range client.Attributes() {
				got[kv.Key] = kv.Value
			}
			for _, w := range c.want {
				if got[w.Key] != w.Value {
					t.Errorf("%s = %q, want %q", w.Key, got[w.Key].String(), w.Value.String())
				}
			}
			et, has := got["error.type"]
			switch {
			case c.errorType == "" && has:
				t.Errorf("error.type = %q on a request that succeeded", et.String())
			case c.errorType == "*" && (!has || et.AsString() == ""):
				t.Errorf("no error.type on a request that failed (attributes %v)", client.Attributes())
			case c.errorType != "" && c.errorType != "*" && et.AsString() != c.errorType:
				t.Errorf("error.type = %q, want %q", et.String(), c.errorType)
			}
			if wantErr := c.errorType != ""; (client.Status().Code == codes.Error) != wantErr {
				t.Errorf("status %v", client.Status())
			}
		})
	}
}
