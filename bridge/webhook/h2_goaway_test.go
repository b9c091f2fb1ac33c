package webhook

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"golang.org/x/net/http2"

	"github.com/hookbridge/hookbridge/bridge/config"
	"github.com/hookbridge/hookbridge/bridge/target"
)

// A load balancer in front of an HTTP/2 receiver rotates its connections:
// after some requests it sends GOAWAY naming the last stream it takes,
// answers the streams up to it, and closes the connection. Requests the
// bridge had started on that connection above the last stream were never
// processed. net/http sends those again only when it read the GOAWAY before
// the close; when the close came first (a write reset by the peer, the
// connection closed under them) each came back as a connection error: a
// failed attempt, counted against the breaker, for a record the receiver
// never saw. Such a request, on a reused connection with no byte of an
// answer, is sent again: a record fails only when the receiver did take it
// (its answer was lost with the connection), never for the rotation alone.
func TestHTTP2GoAwayRotationFailsNoUnprocessedRecord(t *testing.T) {
	r := newH2Receiver(t, goAwayAfter(10, false))
	tg := newTarget(t, r.url(), func(o *Options) { o.Config.TLS = config.WebhookTLS{CAFile: r.ca.caFile} })

	const records, parallel = 600, 16
	var next atomic.Int64
	var mu sync.Mutex
	failed := map[string]error{} // webhook-id → the failure
	var wg sync.WaitGroup
	for range parallel {
		wg.Go(func() {
			for {
				off := next.Add(1)
				if off > records {
					return
				}
				rec := record()
				rec.Offset = off
				if _, err := deliver(t, t.Context(), tg, rec); err != nil {
					mu.Lock()
					failed[hookID(off)] = err
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	unprocessed := 0
	for id, err := range failed {
		if _, ok := r.answered.Load(id); !ok {
			unprocessed++
			t.Errorf("%s failed, and the receiver never took it: %v", id, err)
		}
	}
	if unprocessed > 0 {
		t.Errorf("%d of %d records failed an attempt for a connection rotation alone (%d connections)", unprocessed, records, r.handshakes.Load())
	}
	for off := int64(1); off <= records; off++ {
		if _, ok := r.answered.Load(hookID(off)); !ok && failed[hookID(off)] == nil {
			t.Errorf("%s delivered, and the receiver never answered it", hookID(off))
		}
	}
}

// hookID is the webhook-id of record() at offset off.
func hookID(off int64) string { return fmt.Sprintf("orders-3-%d", off) }

// A stream the receiver resets is its answer, not a lost connection: a
// reset with REFUSED_STREAM (not processed) is sent again by net/http and
// delivered; one with another code is a retryable failure, and is not sent
// again at once by the bridge.
func TestHTTP2StreamResetIsNotReplayed(t *testing.T) {
	for _, tc := range []struct {
		code    http2.ErrCode
		streams int32 // requests the receiver got for the two records
		fails   bool
	}{
		{http2.ErrCodeRefusedStream, 3, false},
		{http2.ErrCodeInternal, 2, true},
	} {
		t.Run(tc.code.String(), func(t *testing.T) {
			r := newH2Receiver(t, &h2Receiver{done: func(c *h2Conn, id uint32, n int32, _ string, _ []byte) {
				if n == 2 {
					c.reset(id, tc.code)
					return
				}
				c.respond(id, "200")
			}})
			tg := newTarget(t, r.url(), func(o *Options) { o.Config.TLS = config.WebhookTLS{CAFile: r.ca.caFile} })
			if _, err := deliver(t, t.Context(), tg, record()); err != nil {
				t.Fatalf("first record: %v", err)
			}
			_, err := deliver(t, t.Context(), tg, record())
			if tc.fails {
				wantKind(t, err, target.Retryable, 0)
			} else if err != nil {
				t.Fatalf("record reset with %s: %v", tc.code, err)
			}
			if got := r.streams.Load(); got != tc.streams {
				t.Errorf("the receiver got %d requests, want %d", got, tc.streams)
			}
		})
	}
}
