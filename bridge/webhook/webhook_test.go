package webhook

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
	"sync/atomic"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/hookbridge/hookbridge/bridge/config"
	"github.com/hookbridge/hookbridge/bridge/target"
)

func TestResponseClasses(t *testing.T) {
	tests := []struct {
		name       string
		status     int
		header     map[string]string
		body       string
		capture    bool
		kind       target.Kind // checked when wantErr
		wantErr    bool
		retryAfter time.Duration
		outputs    []target.Output
		errHas     string
	}{
		{name: "200", status: 200, body: "ignored"},
		{name: "202 empty", status: 202},
		{name: "200 captured", status: 200, capture: true, header: map[string]string{"Content-Type": "application/json"}, body: `{"ok":true}`,
			outputs: []target.Output{{Value: []byte(`{"ok":true}`), Headers: []target.Header{{Key: "content-type", Value: []byte("application/json")}}}}},
		{name: "204 captured gives no output", status: 204, capture: true},
		{name: "400", status: 400, body: "field x is required\n", wantErr: true, kind: target.Permanent, errHas: `400 Bad Request: "field x is required"`},
		{name: "401", status: 401, body: "bad token s3cr3t\n", wantErr: true, kind: target.Retryable, errHas: "401 Unauthorized"},
		{name: "403", status: 403, body: "key s3cr3t revoked\n", wantErr: true, kind: target.Retryable, errHas: "403 Forbidden"},
		{name: "404", status: 404, wantErr: true, kind: target.Permanent},
		{name: "413", status: 413, wantErr: true, kind: target.Permanent},
		{name: "408", status: 408, wantErr: true, kind: target.Retryable},
		{name: "410", status: 410, wantErr: true, kind: target.Gone, errHas: "410 Gone"},
		{name: "429 Retry-After seconds", status: 429, header: map[string]string{"Retry-After": "7"}, wantErr: true, kind: target.Retryable, retryAfter: 7 * time.Second},
		{name: "503 Retry-After date", status: 503, header: map[string]string{"Retry-After": fixedNow.Add(30 * time.Second).UTC().Format(http.TimeFormat)}, wantErr: true, kind: target.Retryable, retryAfter: 30 * time.Second, errHas: "503 Service Unavailable"},
		{name: "503 Retry-After in the past", status: 503, header: map[string]string{"Retry-After": fixedNow.Add(-time.Hour).UTC().Format(http.TimeFormat)}, wantErr: true, kind: target.Retryable},
		{name: "503 Retry-After garbage", status: 503, header: map[string]string{"Retry-After": "soon"}, wantErr: true, kind: target.Retryable},
		{name: "500", status: 500, body: "\x00\x01binary", wantErr: true, kind: target.Retryable, errHas: "500 Internal Server Error"},
		{name: "502", status: 502, wantErr: true, kind: target.Retryable},
		{name: "599", status: 599, wantErr: true, kind: target.Retryable},
		{name: "410 ignores Retry-After", status: 410, header: map[string]string{"Retry-After": "7"}, wantErr: true, kind: target.Gone},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, _ := receiver(t, func(w http.ResponseWriter, r *http.Request) {
				for k, v := range tt.header {
					w.Header().Set(k, v)
				}
				w.WriteHeader(tt.status)
				_, _ = w.Write([]byte(tt.body))
			})
			tg := newTarget(t, srv.URL+"/hook?token=s3cret", func(o *Options) { o.CaptureReply = tt.capture })
			res, err := deliver(t, t.Context(), tg, record())
			if !tt.wantErr {
				if err != nil {
					t.Fatalf("Deliver: %v", err)
				}
				if res == nil {
					t.Fatal("Deliver returned a nil result with a nil error")
				}
				if !outputsEqual(res.Outputs, tt.outputs) {
					t.Fatalf("outputs = %+v, want %+v", res.Outputs, tt.outputs)
				}
				return
			}
			wantKind(t, err, tt.kind, tt.status)
			if got := target.RetryAfterOf(err); got != tt.retryAfter {
				t.Errorf("RetryAfterOf = %s, want %s", got, tt.retryAfter)
			}
			msg := err.Error()
			if prefix := "webhook: POST " + srv.URL + "/hook: "; !strings.HasPrefix(msg, prefix) {
				t.Errorf("error %q does not start with %q", msg, prefix)
			}
			if strings.Contains(msg, "s3cret") {
				t.Errorf("error %q holds the query string", msg)
			}
			if strings.Contains(msg, "s3cr3t") {
				t.Errorf("error %q quotes the body of a %d, which may hold the credential", msg, tt.status)
			}
			if !strings.Contains(msg, tt.errHas) {
				t.Errorf("error %q does not contain %q", msg, tt.errHas)
			}
			if res != nil {
				t.Errorf("result = %+v with an error, want nil", res)
			}
		})
	}
}

func outputsEqual(a, b []target.Output) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Topic != b[i].Topic || !bytes.Equal(a[i].Key, b[i].Key) || !bytes.Equal(a[i].Value, b[i].Value) || len(a[i].Headers) != len(b[i].Headers) {
			return false
		}
		for j := range a[i].Headers {
			if a[i].Headers[j].Key != b[i].Headers[j].Key || !bytes.Equal(a[i].Headers[j].Value, b[i].Headers[j].Value) {
				return false
			}
		}
	}
	return true
}

func TestRedirectNotFollowed(t *testing.T) {
	var followed atomic.Int32
	mux := http.NewServeMux()
	mux.HandleFunc("/old", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/new", http.StatusFound) })
	mux.HandleFunc("/perm", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/new", http.StatusPermanentRedirect)
	})
	mux.HandleFunc("/new", func(w http.ResponseWriter, r *http.Request) { followed.Add(1) })
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	for path, status := range map[string]int{"/old": 302, "/perm": 308} {
		tg := newTarget(t, srv.URL+path, nil)
		_, err := deliver(t, t.Context(), tg, record())
		wantKind(t, err, target.Permanent, status)
	}
	if n := followed.Load(); n != 0 {
		t.Fatalf("the redirect target got %d requests, want 0", n)
	}
}

func TestTimeout(t *testing.T) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	srv, _ := receiver(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	tg := newTarget(t, srv.URL+"/hook?sig=s3cret", func(o *Options) { o.Config.Timeout = config.Duration(150 * time.Millisecond) })
	start := time.Now()
	_, err := deliver(t, t.Context(), tg, record())
	wantKind(t, err, target.Retryable, 0)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error %v does not wrap context.DeadlineExceeded", err)
	}
	if msg := err.Error(); !strings.Contains(msg, "no response within 150ms") || strings.Contains(msg, "s3cret") {
		t.Errorf("error = %q", msg)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Deliver took %s with a 150ms timeout", d)
	}
}

// A receiver that answers 200 at once and then trickles its body: with reply
// capture the timeout covers reading the body; without, the status decides.
func TestSlowBody(t *testing.T) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	srv, _ := receiver(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(200)
		_, _ = w.Write([]byte("partial"))
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	timeout := func(o *Options) { o.Config.Timeout = config.Duration(150 * time.Millisecond) }

	tg := newTarget(t, srv.URL, func(o *Options) { timeout(o); o.CaptureReply = true })
	_, err := deliver(t, t.Context(), tg, record())
	wantKind(t, err, target.Retryable, 200)

	tg = newTarget(t, srv.URL, timeout)
	if _, err := deliver(t, t.Context(), tg, record()); err != nil {
		t.Fatalf("without capture a 200 is delivered, got %v", err)
	}
}

func TestHugeBody(t *testing.T) {
	big := bytes.Repeat([]byte("x"), 5<<20)
	exact := bytes.Repeat([]byte("y"), MaxResponseBody)
	srv, _ := receiver(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/big":
			_, _ = w.Write(big)
		case "/exact":
			_, _ = w.Write(exact)
		case "/big-error":
			w.WriteHeader(500)
			_, _ = w.Write(big)
		}
	})

	if _, err := deliver(t, t.Context(), newTarget(t, srv.URL+"/big", nil), record()); err != nil {
		t.Errorf("5 MiB 200 without capture: %v", err)
	}

	_, err := deliver(t, t.Context(), newTarget(t, srv.URL+"/big", func(o *Options) { o.CaptureReply = true }), record())
	wantKind(t, err, target.Permanent, 200)
	if !strings.Contains(err.Error(), "reply body over 1 MiB") {
		t.Errorf("error = %q", err)
	}

	res, err := deliver(t, t.Context(), newTarget(t, srv.URL+"/exact", func(o *Options) { o.CaptureReply = true }), record())
	if err != nil {
		t.Fatalf("1 MiB reply: %v", err)
	}
	if len(res.Outputs) != 1 || !bytes.Equal(res.Outputs[0].Value, exact) {
		t.Errorf("1 MiB reply: got %d outputs", len(res.Outputs))
	}

	_, err = deliver(t, t.Context(), newTarget(t, srv.URL+"/big-error", nil), record())
	wantKind(t, err, target.Retryable, 500)
	if len(err.Error()) > 512 {
		t.Errorf("error message is %d bytes long", len(err.Error()))
	}
}

func TestConnectionRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()

	tg := newTarget(t, "http://user:pa55word@"+addr+"/hook?token=s3cret", nil)
	_, err = deliver(t, t.Context(), tg, record())
	wantKind(t, err, target.Retryable, 0)
	msg := err.Error()
	if !strings.HasPrefix(msg, "webhook: POST http://"+addr+"/hook: ") {
		t.Errorf("error = %q", msg)
	}
	for _, secret := range []string{"s3cret", "pa55word", "user"} {
		if strings.Contains(msg, secret) {
			t.Errorf("error %q contains %q", msg, secret)
		}
	}
	var opErr *net.OpError
	if !errors.As(err, &opErr) {
		t.Errorf("error %v does not wrap the *net.OpError", err)
	}
}

func TestCallerCancellation(t *testing.T) {
	arrived := make(chan struct{}, 1)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	srv, _ := receiver(t, func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	tg := newTarget(t, srv.URL, nil)

	t.Run("in flight", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		go func() {
			<-arrived
			cancel()
		}()
		_, err := deliver(t, ctx, tg, record())
		if got := target.KindOf(err); got != target.Canceled {
			t.Fatalf("KindOf(%v) = %s, want canceled", err, got)
		}
		if !errors.Is(err, context.Canceled) {
			t.Errorf("error %v does not wrap context.Canceled", err)
		}
		var te *target.Error
		if errors.As(err, &te) {
			t.Errorf("error %v is a *target.Error", err)
		}
	})

	t.Run("before the request", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		_, err := deliver(t, ctx, tg, record())
		if got := target.KindOf(err); got != target.Canceled {
			t.Fatalf("KindOf(%v) = %s, want canceled", err, got)
		}
	})

	t.Run("caller deadline is retryable", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
		defer cancel()
		_, err := deliver(t, ctx, tg, record())
		wantKind(t, err, target.Retryable, 0)
		<-arrived
	})
}

func TestKeepAlive(t *testing.T) {
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/fail" {
			w.WriteHeader(503)
			_, _ = w.Write([]byte("busy"))
			return
		}
		_, _ = w.Write([]byte("ok, and some reply text the target reads and drops"))
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)

	tg := newTarget(t, srv.URL, nil)
	for i := range 50 {
		if _, err := deliver(t, t.Context(), tg, record()); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	failing := newTarget(t, srv.URL+"/fail", nil)
	for range 20 {
		_, err := deliver(t, t.Context(), failing, record())
		wantKind(t, err, target.Retryable, 503)
	}
	if n := conns.Load(); n > 3 {
		t.Fatalf("70 sequential requests from two targets opened %d connections, want at most 3", n)
	}

	// Concurrent rounds reuse the pool too: far more than 2 idle per host.
	conns.Store(0)
	const workers = 32
	for range 5 {
		var wg sync.WaitGroup
		for range workers {
			wg.Go(func() {
				if _, err := deliver(t, t.Context(), tg, record()); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
	}
	if n := conns.Load(); n > workers+8 {
		t.Fatalf("5 rounds of %d concurrent requests opened %d connections", workers, n)
	}
}

func TestTraceContext(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })

	srv, reqs := receiver(t, nil)
	tg := newTarget(t, srv.URL, nil)

	ctx, parent := tp.Tracer("test").Start(t.Context(), "process orders")
	r := record()
	r.Headers = []target.Header{
		{Key: "traceparent", Value: []byte("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")},
		{Key: "tracestate", Value: []byte("vendor=1")},
	}
	if _, err := deliver(t, ctx, tg, r); err != nil {
		t.Fatal(err)
	}
	parent.End()
	got := next(t, reqs).header

	if got.Values("Kafka-Header-Traceparent") != nil || got.Values("Kafka-Header-Tracestate") != nil || got.Get("Tracestate") != "" {
		t.Errorf("the record's trace headers were forwarded: %v", got)
	}
	tp0 := got.Get("Traceparent")
	parts := strings.Split(tp0, "-")
	if len(parts) != 4 {
		t.Fatalf("traceparent = %q", tp0)
	}
	psc := parent.SpanContext()
	if parts[1] != psc.TraceID().String() {
		t.Errorf("traceparent trace id %s, want the delivery's %s", parts[1], psc.TraceID())
	}
	client := clientSpan(rec)
	if client == nil {
		t.Fatal("no client span was recorded")
	}
	if client.Parent().SpanID() != psc.SpanID() {
		t.Errorf("client span parent = %s, want %s", client.Parent().SpanID(), psc.SpanID())
	}
	if parts[2] != client.SpanContext().SpanID().String() {
		t.Errorf("traceparent span id %s, want the client span's %s", parts[2], client.SpanContext().SpanID())
	}
}

func TestTLSWithTransportOverride(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("webhook-id") == "" {
			w.WriteHeader(400)
		}
	}))
	t.Cleanup(srv.Close)
	tg := newTarget(t, srv.URL, func(o *Options) { o.Transport = srv.Client().Transport })
	if _, err := deliver(t, t.Context(), tg, record()); err != nil {
		t.Fatal(err)
	}
	if err := tg.Close(t.Context()); err != nil {
		t.Fatal(err)
	}

	// Our own transport does not trust the test certificate: a retryable failure.
	_, err := deliver(t, t.Context(), newTarget(t, srv.URL, nil), record())
	wantKind(t, err, target.Retryable, 0)
}

func TestNilValueSendsEmptyBody(t *testing.T) {
	srv, reqs := receiver(t, nil)
	tg := newTarget(t, srv.URL, nil)
	r := record()
	r.Value = nil
	if _, err := deliver(t, t.Context(), tg, r); err != nil {
		t.Fatal(err)
	}
	got := next(t, reqs)
	if len(got.body) != 0 || got.header.Get("Content-Length") != "0" {
		t.Errorf("body %q, Content-Length %q; want empty, 0", got.body, got.header.Get("Content-Length"))
	}
}

func TestDeliverWithoutRecord(t *testing.T) {
	tg := newTarget(t, "http://127.0.0.1:1/", nil)
	_, err := tg.Deliver(t.Context(), &target.Delivery{})
	wantKind(t, err, target.Permanent, 0)
}

func TestNewRejects(t *testing.T) {
	const secret = "whsec_bm90LWxvbmctZW5vdWdo" // 15 bytes
	tests := []struct {
		name   string
		cfg    config.Webhook
		errHas []string
		never  []string
	}{
		{name: "no url", cfg: config.Webhook{}, errHas: []string{"url is required"}},
		{name: "bad scheme", cfg: config.Webhook{URL: "ftp://host/x"}, errHas: []string{`url scheme "ftp"`}},
		{name: "no host", cfg: config.Webhook{URL: "http:///path"}, errHas: []string{"url has no host"}},
		{name: "unparsable url", cfg: config.Webhook{URL: "http://host:port:bad/\x00?token=s3cret"}, errHas: []string{"url does not parse"}, never: []string{"s3cret"}},
		{name: "bad secret", cfg: config.Webhook{URL: "http://h/", SigningSecrets: []string{secret}}, errHas: []string{"signing_secrets", "secret 0"}, never: []string{"bm90LWxvbmctZW5vdWdo"}},
		{name: "reserved headers", cfg: config.Webhook{URL: "http://h/", Headers: map[string]string{
			"webhook-id": "x", "Kafka-Topic": "x", "ce-id": "x", "traceparent": "x", "Host": "x", "Hookbridge-Attempt": "x",
		}}, errHas: []string{`"webhook-id"`, `"Kafka-Topic"`, `"ce-id"`, `"traceparent"`, `"Host"`, `"Hookbridge-Attempt"`}},
		{name: "bad header", cfg: config.Webhook{URL: "http://h/", Headers: map[string]string{"bad name": "x", "X-Token": "t0k\r\nen"}},
			errHas: []string{`"bad name" is not a valid header name`, `the value of "X-Token"`}, never: []string{"t0k"}},
		{name: "everything at once", cfg: config.Webhook{URL: "gopher://h/", SigningSecrets: []string{"nope"}, Headers: map[string]string{"ce-type": "x"}},
			errHas: []string{"url scheme", "signing_secrets", `"ce-type"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(Options{Route: "r1", Config: tt.cfg})
			if err == nil {
				t.Fatal("New accepted the config")
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, `webhook: route "r1": `) {
				t.Errorf("error %q lacks the prefix", msg)
			}
			for _, s := range tt.errHas {
				if !strings.Contains(msg, s) {
					t.Errorf("error %q does not contain %q", msg, s)
				}
			}
			for _, s := range tt.never {
				if strings.Contains(msg, s) {
					t.Errorf("error %q contains %q", msg, s)
				}
			}
		})
	}
}

func TestRetryAfter(t *testing.T) {
	now := fixedNow
	tests := map[string]time.Duration{
		"":                     0,
		"0":                    0,
		"120":                  2 * time.Minute,
		" 5 ":                  5 * time.Second,
		"-5":                   0,
		"1.5":                  0,
		"99999999999999999999": time.Duration(1<<63 - 1).Truncate(time.Second), // past uint64: still digits, a very long wait
		"9999999999999":        time.Duration(1<<63 - 1).Truncate(time.Second),
		"1e3":                  0,
		now.Add(90 * time.Second).UTC().Format(http.TimeFormat): 90 * time.Second,
		now.Add(-time.Second).UTC().Format(http.TimeFormat):     0,
		"Sun, 06 Nov 1994 08:49:37 GMT":                         0,
	}
	for in, want := range tests {
		if got := retryAfter(in, now); got != want {
			t.Errorf("retryAfter(%q) = %s, want %s", in, got, want)
		}
	}
}

// An https:// webhook (net/http's client, HTTP/1.1 or HTTP/2) sends what a
// plain-HTTP one sends: no Accept-Encoding of its own, so no answer is
// decoded on the way and both read the same bytes. net/http asked for gzip
// by itself and decoded the answer: a receiver's compressed reply was
// captured decoded over https and as sent over http, and a 2xx labelled
// Content-Encoding: gzip whose body was not gzip failed (retryable) over
// https while it was delivered over http.
func TestEveryPathReadsTheAnswerAsSent(t *testing.T) {
	const reply = "not gzip at all"
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if ae := r.Header.Values("Accept-Encoding"); len(ae) > 0 {
			t.Errorf("%s request carries Accept-Encoding %q, which the contract does not send", r.Proto, ae)
		}
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("Content-Encoding", "gzip")
		_, _ = io.WriteString(w, reply)
	})
	plain := httptest.NewServer(handler)
	t.Cleanup(plain.Close)
	h1 := httptest.NewTLSServer(handler)
	t.Cleanup(h1.Close)
	h2 := httptest.NewUnstartedServer(handler)
	h2.EnableHTTP2 = true
	h2.StartTLS()
	t.Cleanup(h2.Close)

	insecure := func(o *Options) { o.Config.TLS = config.WebhookTLS{InsecureSkipVerify: true} }
	for _, tc := range []struct {
		name   string
		url    string
		change func(*Options)
	}{
		{"http, direct", plain.URL, nil},
		{"https, HTTP/1.1", h1.URL, insecure},
		{"https, HTTP/2", h2.URL, insecure},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tg := newTarget(t, tc.url, func(o *Options) {
				o.CaptureReply = true
				if tc.change != nil {
					tc.change(o)
				}
			})
			res, err := deliver(t, t.Context(), tg, record())
			if err != nil {
				t.Fatalf("Deliver: %v", err)
			}
			if len(res.Outputs) != 1 || string(res.Outputs[0].Value) != reply {
				t.Errorf("outputs = %+v, want the reply %q as sent", res.Outputs, reply)
			}
		})
	}
}

// clientSpan returns the last client span rec recorded, nil when none.
func clientSpan(rec *tracetest.SpanRecorder) sdktrace.ReadOnlySpan {
	var client sdktrace.ReadOnlySpan
	for _, s := range rec.Ended() {
		if s.SpanKind() == trace.SpanKindClient {
			client = s
		}
	}
	return client
}
