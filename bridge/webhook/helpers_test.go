package webhook

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"

	"github.com/hookbridge/hookbridge/bridge/target"
)

// The engine sets this propagator at start-up; tests do the same once. With
// no span in the context it injects nothing, so header assertions stay exact.
func TestMain(m *testing.M) {
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	os.Exit(m.Run())
}

// fixedNow is the clock of every target built by newTarget.
var fixedNow = time.Unix(1700000000, 0)

// request is what a receiver saw.
type request struct {
	method string
	path   string
	query  string
	header http.Header
	body   []byte
}

// receiver starts an httptest server that records every request and then
// calls handle (nil answers 200 with no body).
func receiver(t *testing.T, handle http.HandlerFunc) (*httptest.Server, <-chan request) {
	t.Helper()
	reqs := make(chan request, 128)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		reqs <- request{method: r.Method, path: r.URL.Path, query: r.URL.RawQuery, header: r.Header.Clone(), body: body}
		if handle != nil {
			handle(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv, reqs
}

// newTarget builds a target for url with a fixed clock; change adjusts the options.
func newTarget(t testing.TB, url string, change func(*Options)) *Target {
	t.Helper()
	opts := Options{Route: "orders-billing", Group: "hookbridge.orders-billing", Version: "1.2.3", Now: func() time.Time { return fixedNow }}
	opts.Config.URL = url
	if change != nil {
		change(&opts)
	}
	tg, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = tg.Close(t.Context()) })
	return tg
}

// deliver sends one record with attempt 1.
func deliver(t *testing.T, ctx context.Context, tg *Target, rec *target.Record) (*target.Result, error) {
	t.Helper()
	return tg.Deliver(ctx, &target.Delivery{Route: "orders-billing", Record: rec, Attempt: 1})
}

// next returns the next request a receiver saw, failing the test if none comes.
func next(t *testing.T, reqs <-chan request) request {
	t.Helper()
	select {
	case r := <-reqs:
		return r
	case <-time.After(5 * time.Second):
		t.Fatal("the receiver got no request")
		return request{}
	}
}

// record returns a small record on orders/3@42.
func record() *target.Record {
	return &target.Record{Topic: "orders", Partition: 3, Offset: 42, Key: []byte("user-1"), Value: []byte(`{"a":1}`)}
}

// wantKind checks err's classification.
func wantKind(t *testing.T, err error, kind target.Kind, status int) {
	t.Helper()
	if err == nil {
		t.Fatalf("err = nil, want a %s failure", kind)
	}
	if got := target.KindOf(err); got != kind {
		t.Fatalf("KindOf(%v) = %s, want %s", err, got, kind)
	}
	if got := target.StatusOf(err); got != status {
		t.Fatalf("StatusOf(%v) = %d, want %d", err, got, status)
	}
}
