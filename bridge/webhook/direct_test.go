package webhook

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/hookbridge/hookbridge/bridge/config"
	"github.com/hookbridge/hookbridge/bridge/target"
)

// roundTripper makes a target send through its own HTTP/1.1 client as a
// round tripper, the path of targets that cannot take the direct one.
func roundTripper(o *Options) {
	o.Transport = newH1Transport((&net.Dialer{Timeout: time.Second}).DialContext)
}

// clientPaths are the ways a single record's request leaves a target: the
// bridge's own HTTP/1.1 client called directly and as a round tripper, and
// net/http (the path of https), which is the reference for both.
var clientPaths = []struct {
	name   string
	change func(*Options)
}{
	{"direct", nil},
	{"round tripper", roundTripper},
	{"net/http", func(o *Options) { o.Transport = &http.Transport{} }},
}

// Which targets take the direct path: plain HTTP with nothing to add to a
// request but the contract's headers.
func TestDirectPathChoice(t *testing.T) {
	cases := []struct {
		name   string
		url    string
		change func(*Options)
		direct bool
	}{
		{"plain http", "http://127.0.0.1:9/hook?x=1", nil, true},
		{"signed", "http://127.0.0.1:9/hook", func(o *Options) {
			o.Config.SigningSecrets = []string{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}
		}, true},
		{"configured headers", "http://127.0.0.1:9/hook", func(o *Options) {
			o.Config.Headers = map[string]string{"X-Tenant": "acme"}
		}, true},
		{"bearer token", "http://127.0.0.1:9/hook", func(o *Options) { o.Config.BearerToken = "t0ken" }, false},
		{"proxy", "http://127.0.0.1:9/hook", func(o *Options) { o.Config.Proxy.URL = "http://127.0.0.1:3128" }, false},
		{"https", "https://127.0.0.1:9/hook", nil, false},
		{"transport given", "http://127.0.0.1:9/hook", roundTripper, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tg := newTarget(t, tc.url, tc.change)
			if got := tg.direct != nil; got != tc.direct {
				t.Errorf("direct path: %v, want %v", got, tc.direct)
			}
		})
	}
	tg := newTarget(t, "http://127.0.0.1:9/hook?x=1&y=%2F", nil)
	if want := "POST /hook?x=1&y=%2F HTTP/1.1\r\nHost: 127.0.0.1:9\r\n"; tg.head != want || tg.addr != "127.0.0.1:9" {
		t.Errorf("request line %q, address %q; want %q, 127.0.0.1:9", tg.head, tg.addr, want)
	}
}

// The direct path and the round tripper send the same request for the same
// record: method, path, query, every header field and the body.
func TestDirectPathSendsWhatTheRoundTripperSends(t *testing.T) {
	srv, reqs := receiver(t, nil)
	signed := func(o *Options) {
		o.Config.SigningSecrets = []string{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}
		o.Config.Headers = map[string]string{"X-Tenant": "acme", "Content-Type": "application/json"}
	}
	rec := record()
	rec.Key = []byte{0xff, 0x00, 'k'} // not UTF-8: base64
	rec.Headers = []target.Header{
		{Key: "tenant", Value: []byte("acme")},
		{Key: "blob", Value: []byte{0x00, 0x01}},
		{Key: "ce_subject", Value: []byte("order 7")},
		{Key: "tenant", Value: []byte("second")},
	}
	var got []request
	for _, change := range []func(*Options){signed, func(o *Options) { signed(o); roundTripper(o) }} {
		tg := newTarget(t, srv.URL+"/hook?q=1", change)
		if _, err := tg.Deliver(t.Context(), &target.Delivery{Route: "orders-billing", Record: rec, Attempt: 3}); err != nil {
			t.Fatal(err)
		}
		got = append(got, next(t, reqs))
	}
	direct, rt := got[0], got[1]
	if direct.method != rt.method || direct.path != rt.path || direct.query != rt.query || string(direct.body) != string(rt.body) {
		t.Errorf("direct: %s %s?%s %q\nround tripper: %s %s?%s %q", direct.method, direct.path, direct.query, direct.body,
			rt.method, rt.path, rt.query, rt.body)
	}
	for _, h := range []http.Header{direct.header, rt.header} {
		h.Del("Accept-Encoding") // neither sends it; a test server's client might
	}
	if !reflect.DeepEqual(direct.header, rt.header) {
		t.Errorf("header fields differ\n direct:        %v\n round tripper: %v", direct.header, rt.header)
	}
	if direct.header.Get("Webhook-Signature") == "" || direct.header.Get("Kafka-Key-Encoding") != "base64" ||
		len(direct.header.Values("Kafka-Header-Tenant")) != 2 {
		t.Errorf("the request lacks the contract's fields: %v", direct.header)
	}
}

// Values up to maxFlat go copied behind the header, larger ones from where
// they are; the receiver gets each whole.
func TestDirectPathBodiesOfEverySize(t *testing.T) {
	srv, reqs := receiver(t, nil)
	tg := newTarget(t, srv.URL, nil)
	for _, size := range []int{0, 1, 256, maxFlat, maxFlat + 1, 1 << 20} {
		rec := record()
		rec.Value = bytes.Repeat([]byte{'v'}, size)
		if size > 0 {
			rec.Value[size-1] = 'z'
		}
		if _, err := deliver(t, t.Context(), tg, rec); err != nil {
			t.Fatalf("%d bytes: %v", size, err)
		}
		if got := next(t, reqs); !bytes.Equal(got.body, rec.Value) {
			t.Errorf("%d bytes: the receiver got %d bytes, not the value", size, len(got.body))
		}
	}
}

// Both paths give each request a client span with the answer's status, an
// error status from 400 on, and send its context as traceparent.
func TestClientSpanOnBothPaths(t *testing.T) {
	for name, change := range map[string]func(*Options){"direct": nil, "round tripper": roundTripper} {
		t.Run(name, func(t *testing.T) {
			rec := tracetest.NewSpanRecorder()
			tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
			t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
			srv, reqs := receiver(t, func(w http.ResponseWriter, r *http.Request) {
				if strings.HasSuffix(r.URL.Path, "/busy") {
					w.WriteHeader(http.StatusServiceUnavailable)
				}
			})
			for _, path := range []string{"/ok", "/busy"} {
				tg := newTarget(t, srv.URL+path, change)
				ctx, parent := tp.Tracer("test").Start(t.Context(), "attempt")
				_, err := deliver(t, ctx, tg, record())
				parent.End()
				if (err != nil) != (path == "/busy") {
					t.Fatalf("%s: err = %v", path, err)
				}
				tparent := next(t, reqs).header.Get("Traceparent")
				var client sdktrace.ReadOnlySpan
				for _, s := range rec.Ended() {
					if s.SpanKind() == trace.SpanKindClient && s.Parent().SpanID() == parent.SpanContext().SpanID() {
						client = s
					}
				}
				if client == nil {
					t.Fatalf("%s: no ended client span under the attempt", path)
				}
				if want := "00-" + client.SpanContext().TraceID().String() + "-" + client.SpanContext().SpanID().String() + "-01"; tparent != want {
					t.Errorf("%s: traceparent %q, want %q", path, tparent, want)
				}
				status := 200
				wantCode := codes.Unset
				if path == "/busy" {
					status, wantCode = 503, codes.Error
				}
				if !hasAttr(client.Attributes(), attribute.Int("http.response.status_code", status)) ||
					!hasAttr(client.Attributes(), attribute.String("http.request.method", "POST")) || client.Status().Code != wantCode {
					t.Errorf("%s: client span %q attributes %v status %v", path, client.Name(), client.Attributes(), client.Status())
				}
			}
		})
	}
}

func hasAttr(attrs []attribute.KeyValue, want attribute.KeyValue) bool {
	for _, a := range attrs {
		if a == want {
			return true
		}
	}
	return false
}

// On the direct path the request timeout is a deadline on the connection: a
// request it cut fails as a timeout and its connection is dropped; the next
// requests get fresh deadlines; and a connection idle for longer than its
// last deadline is still reused (the deadline is cleared before the check
// that it is alive).
func TestDirectPathDeadlines(t *testing.T) {
	var conns, reqs atomic.Int32
	release := make(chan struct{})
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if reqs.Add(1) == 1 {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) }) // before the server closes: it waits for its handlers
	// The timeout cuts the first request, and is also all the time each of
	// the four after it has: a loaded machine must not make one of them a
	// timeout too.
	tg := newTarget(t, srv.URL, func(o *Options) { o.Config.Timeout = config.Duration(time.Second) })

	_, err := deliver(t, t.Context(), tg, record())
	wantKind(t, err, target.Retryable, 0)
	if !strings.Contains(err.Error(), "no response within 1s") || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want the request timeout", err)
	}
	for i := range 3 {
		if _, err := deliver(t, t.Context(), tg, record()); err != nil {
			t.Fatalf("request %d after the timeout: %v", i, err)
		}
	}
	time.Sleep(1200 * time.Millisecond) // idle past its deadline (1 s after the last request started), and checked before reuse
	if _, err := deliver(t, t.Context(), tg, record()); err != nil {
		t.Fatal(err)
	}
	if n := conns.Load(); n != 2 {
		t.Errorf("%d connections, want 2: the one the timeout cut, and one for the four requests after it", n)
	}
}

// On the wire, the direct path's request line and header lines are those
// the round tripper writes, in another order: same names (in canonical
// form), same values, same framing.
func TestDirectPathWireFormat(t *testing.T) {
	heads := make(chan []string, 4)
	srv := newRawServer(t, func(s *rawServer, c net.Conn, br *bufio.Reader) {
		for {
			var lines []string
			for {
				line, err := br.ReadString('\n')
				if err != nil {
					return
				}
				if !strings.HasSuffix(line, "\r\n") {
					t.Errorf("line %q does not end with CRLF", line)
				}
				if line == "\r\n" {
					break
				}
				lines = append(lines, strings.TrimSuffix(line, "\r\n"))
			}
			var n int
			for _, l := range lines {
				if v, ok := strings.CutPrefix(l, "Content-Length: "); ok {
					n, _ = strconv.Atoi(v)
				}
			}
			if _, err := io.CopyN(io.Discard, br, int64(n)); err != nil {
				return
			}
			heads <- lines
			_, _ = io.WriteString(c, "HTTP/1.1 204 No Content\r\n\r\n")
		}
	})
	rec := record()
	rec.Timestamp = time.Date(2026, 11, 26, 12, 0, 0, 5, time.UTC)
	rec.Headers = []target.Header{{Key: "x_Tenant-id", Value: []byte("acme")}, {Key: "bin", Value: []byte{0}},
		{Key: "ce_subject", Value: []byte("a b")}}
	var got [][]string
	for _, change := range []func(*Options){nil, roundTripper} {
		tg := newTarget(t, srv.url(), func(o *Options) {
			o.Config.Headers = map[string]string{"X-Env": "prod", "Content-Type": "text/plain"}
			if change != nil {
				change(o)
			}
		})
		if _, err := deliver(t, t.Context(), tg, rec); err != nil {
			t.Fatal(err)
		}
		lines := <-heads
		slices.Sort(lines[1:]) // the request line stays first
		got = append(got, lines)
	}
	if !slices.Equal(got[0], got[1]) {
		t.Errorf("direct path:\n  %s\nround tripper:\n  %s", strings.Join(got[0], "\n  "), strings.Join(got[1], "\n  "))
	}
	if got[0][0] != "POST /hook?x=1 HTTP/1.1" || !slices.Contains(got[0], "Kafka-Header-X_tenant-Id: acme") ||
		!slices.Contains(got[0], "Ce-Subject: a%20b") || !slices.Contains(got[0], "Kafka-Base64-Headers: bin") {
		t.Errorf("request head:\n  %s", strings.Join(got[0], "\n  "))
	}
}
