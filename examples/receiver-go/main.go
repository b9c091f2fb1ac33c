// Command receiver-go is a webhook receiver for Hookbridge written with the
// receiver toolkit, package sdk/webhook: it verifies every request's
// Standard Webhooks signature, skips records it has already handled
// (webhook-id is stable across redeliveries), and prints each record, single
// or batched. Like any Hookbridge receiver it has no Kafka consumer: the
// bridge owns consumption, ordering, retries and dead-lettering.
//
// # Running it next to hookbridge
//
// Pick a secret (whsec_ + base64 of 24 to 64 random bytes) and give it to
// both sides:
//
//	export WEBHOOK_SECRETS="whsec_$(head -c 32 /dev/urandom | base64)"
//	go run ./examples/receiver-go -listen 127.0.0.1:8000
//
// and route a topic to it in hookbridge.yaml (hookbridge expands
// ${WEBHOOK_SECRETS}):
//
//	routes:
//	  - name: orders-to-go
//	    topics: [orders]
//	    target:
//	      webhook:
//	        url: http://127.0.0.1:8000/webhook
//	        signing_secrets: ["${WEBHOOK_SECRETS}"]
//	        # batch: {max_messages: 50}   # batches work unchanged
//
//	go run ./cmd/hookbridge run -c hookbridge.yaml
//
// Each record prints as one line:
//
//	orders-2-17 key="customer-9" attempt=1 trace=4bf92f3577b34da6a3ce929d0e0e4736 {"order":17}
//
// During a secret rotation list both secrets, separated by a comma, in the
// receiver's WEBHOOK_SECRETS. The bridge's signing_secrets takes one secret
// per item, so there they are two items, each its own variable
// (signing_secrets: ["${OLD_SECRET}", "${NEW_SECRET}"]: the bridge signs
// with both); a comma-separated value in one item is refused.
// A request that fails verification is answered 401 and logged; the bridge
// retries it, and its breaker pauses the route while every request fails. The trace of each request continues the bridge's
// traceparent (otelhttp with the W3C propagator); set up an exporter as in
// any OpenTelemetry program to see the receiver's spans next to the bridge's.
//
// Flags: -listen (default 127.0.0.1:8000), -path (default /webhook).
// See docs/receivers.md for what the toolkit does and why.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/hookbridge/hookbridge/sdk/webhook"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:8000", "address to listen on")
	path := flag.String("path", "/webhook", "path of the webhook endpoint")
	flag.Parse()

	h, err := newHandler(splitSecrets(os.Getenv("WEBHOOK_SECRETS")), os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "receiver-go:", err)
		os.Exit(2)
	}
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	mux := http.NewServeMux()
	mux.Handle("POST "+*path, otelhttp.NewHandler(h, "webhook"))
	srv := &http.Server{Addr: *listen, Handler: mux, ReadHeaderTimeout: 10 * time.Second}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	fmt.Fprintf(os.Stderr, "receiver-go: listening on http://%s%s\n", *listen, *path)
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintln(os.Stderr, "receiver-go:", err)
		os.Exit(1)
	}
}

// splitSecrets reads a list separated by commas or white space.
func splitSecrets(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\t' })
}

// newHandler verifies, dedupes in memory and prints each record to out.
func newHandler(secrets []string, out io.Writer) (http.Handler, error) {
	if len(secrets) == 0 {
		return nil, errors.New("set WEBHOOK_SECRETS to the route's signing secret(s), whsec_...")
	}
	v, err := webhook.NewVerifier(secrets)
	if err != nil {
		return nil, err
	}
	var mu sync.Mutex // one line at a time
	return &webhook.Handler{
		Verifier: v,
		Store:    webhook.NewMemoryStore(100_000, time.Hour),
		Logger:   slog.New(slog.NewTextHandler(os.Stderr, nil)),
		Func: func(ctx context.Context, d *webhook.Delivery) error {
			// The application's work goes here. Return an error to have the
			// record retried, webhook.Permanent(err) to dead-letter it.
			key := "<null>"
			if d.Key != nil {
				key = fmt.Sprintf("%q", d.Key)
			}
			mu.Lock()
			defer mu.Unlock()
			fmt.Fprintf(out, "%s key=%s attempt=%d trace=%s %s\n", d.ID, key, d.Attempt,
				trace.SpanContextFromContext(ctx).TraceID(), printable(d.Body))
			return nil
		},
		Duplicate: func(ctx context.Context, d *webhook.Delivery) {
			mu.Lock()
			defer mu.Unlock()
			fmt.Fprintf(out, "%s duplicate (handled before), skipped\n", d.ID)
		},
	}, nil
}

// printable shows a body as text when it is short, readable text.
func printable(b []byte) string {
	const max = 200
	if !utf8.Valid(b) || bytes.ContainsFunc(b, func(r rune) bool { return r < 0x20 && r != '\t' || r == 0x7f }) {
		return fmt.Sprintf("<%d bytes of binary>", len(b))
	}
	if len(b) > max {
		return string(b[:max]) + "..."
	}
	return string(b)
}
